"""The run in phases (auditor.app.run): run.json written once, after delivery, with the final
facts; the stored summary is a selection of the run facts."""

from __future__ import annotations

import json
from pathlib import Path

import reports.machine
import reports.render
from auditor.app.run import execute
from auditor.history import HistoryStore
from connectors.demo import generate_demo_org
from tests.auditor.conftest import make_config
from tests.auditor.test_publish import DAY


def test_run_json_is_written_once_after_delivery(tmp_path: Path, scripted, monkeypatch) -> None:
    scripted.script = [generate_demo_org(300, seed=3, as_of=DAY).snapshot]
    writes: list[Path] = []
    real = reports.machine.write_run_json

    def counting(run, path):  # noqa: ANN001, ANN202
        writes.append(path)
        return real(run, path)

    monkeypatch.setattr(reports.machine, "write_run_json", counting)
    monkeypatch.setattr(reports.render, "write_run_json", counting)
    cfg = make_config(tmp_path, report={"formats": ["json", "md"]},
                      delivery={"managers": ["boss@example.com"]})
    run = execute(cfg, out_dir=tmp_path / "out", dry_run=True)
    assert len(writes) == 1
    data = json.loads((tmp_path / "out" / "run.json").read_text(encoding="utf-8"))
    # the one write holds what only exists after delivery, and lists itself
    assert data["delivery"] == json.loads(json.dumps(run.delivery, default=str))
    assert [d["status"] for d in data["delivery"]] == ["dry-run"]
    assert "delivery" in data["facts"]["timings_s"]
    assert data["finished_at"] == run.finished_at.isoformat()
    assert "run.json" in data["outputs"]
    with HistoryStore(tmp_path / "history.sqlite") as store:
        stored = store.last_successful_run("demo")
    facts = run.facts()
    for k in ("as_of", "records", "violations", "suppressed"):
        assert stored[k] == facts[k], k
