"""File sources read the export they are given (#13 item 1): a rerun on next week's export
audits next week's export.

One runner over tests/connectors/reruns/<source type>/: week1/ and week2/ are exports in the
vendor's documented shape (week 2: one deal closed won, one removed, a stage-history file or
columns added), week1.toml / week2.toml the configs, expected.json the findings written by hand
before the tool ran. Each week's files replace the previous ones in export/, as a user unpacks
a new export over the old, and the history store is kept between the weeks. The second run's
findings must equal a fresh full audit of week 2 (a new store), and both the expected ones.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.app.cli import main

DATA = Path(__file__).parent / "reruns"
SOURCES = sorted(p.name for p in DATA.iterdir() if p.is_dir())


def _audit(folder: Path, week: str, source: str, as_of: str) -> list[dict]:
    export = folder / "export"
    if export.exists():
        shutil.rmtree(export)
    shutil.copytree(DATA / source / week, export)
    shutil.copy(DATA / source / f"{week}.toml", folder / "audit.toml")
    res = CliRunner().invoke(main, ["run", "-c", str(folder / "audit.toml"), "--as-of", as_of])
    assert res.exit_code == 0, res.output
    run = json.loads((folder / "out" / "run.json").read_text())
    assert run["facts"]["incremental"] is False
    return json.loads((folder / "out" / "violations.json").read_text())


def _keys(rows: list[dict]) -> list[list[str]]:
    return sorted([r["rule_code"], r["opportunity_id"]] for r in rows)


def _comparable(rows: list[dict]) -> list[tuple]:
    return sorted((r["rule_code"], r["opportunity_id"], r["stage"], r["amount"], r["message"],
                   r["fingerprint"]) for r in rows)


def test_every_file_source_type_has_a_case():
    assert SOURCES == ["csv", "hubspot_export", "salesforce_export"]


@pytest.mark.parametrize("source", SOURCES)
def test_second_run_on_a_new_export_equals_a_fresh_audit_of_it(tmp_path, source):
    expected = json.loads((DATA / source / "expected.json").read_text())
    w1, w2 = expected["week1"], expected["week2"]

    nightly = tmp_path / "nightly"  # one folder, one history store, week after week
    nightly.mkdir()
    assert _keys(_audit(nightly, "week1", source, w1["as_of"])) == w1["findings"]
    second = _audit(nightly, "week2", source, w2["as_of"])

    fresh = tmp_path / "fresh"  # week 2 alone, new store
    fresh.mkdir()
    once = _audit(fresh, "week2", source, w2["as_of"])

    assert _keys(second) == w2["findings"]
    assert _comparable(second) == _comparable(once)
    assert (nightly / "history.sqlite").exists() and (fresh / "history.sqlite").exists()
