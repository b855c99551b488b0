"""A third-party connector registered through the entry point is used by ``crm-audit run``.

The distribution is laid out in a temp folder (module + dist-info with entry_points.txt) that
is put on the path of a ``crm-audit run`` subprocess, as ``pip install`` would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from auditor.errors import ConfigError
from auditor.plugins import CONNECTORS_GROUP, connector_class

ROOT = Path(__file__).resolve().parents[2]

CONNECTOR_MODULE = '''
"""A tiny third-party source: deals from a JSON lines file."""

import json
from datetime import datetime
from typing import ClassVar

import pandas as pd

from auditor.snapshot import (
    Snapshot, SnapshotMeta, make_opportunities, make_owners, make_stage_history,
)
from connectors.base import Connector, SourceOptions


class JsonlOptions(SourceOptions):
    path: str


class JsonlConnector(Connector):
    type_name: ClassVar[str] = "jsonl"
    Options: ClassVar[type[SourceOptions]] = JsonlOptions

    def pull(self, since: datetime | None = None) -> Snapshot:
        lines = self.resolve(self.options.path).read_text(encoding="utf-8").splitlines()
        frame = pd.DataFrame([json.loads(line) for line in lines])
        frame["source"] = self.source_name
        meta = SnapshotMeta(
            source=self.source_name, source_type=self.type_name,
            provided_fields=frozenset(frame.columns) | {"stage"}, loaded_rows=len(frame),
        )
        return Snapshot(
            make_opportunities(frame), make_stage_history(), make_owners(), meta
        ).validate()
'''

DEALS = [
    # open, past its close date: CD01 (close-date-past) must flag it
    {"id": "J1", "name": "Late deal", "stage": "proposal", "source_stage": "proposal",
     "close_date": "2026-05-01", "amount": 1000.0, "next_step": "call",
     "next_step_due": "2026-07-01", "created_at": "2026-01-02T00:00:00Z",
     "last_activity_at": "2026-06-01T00:00:00Z", "stage_entered_at": "2026-05-20T00:00:00Z"},
    # closed won: no open-deal rule applies
    {"id": "J2", "name": "Won deal", "stage": "closed_won", "source_stage": "closed_won",
     "close_date": "2026-05-01", "amount": 500.0, "created_at": "2026-01-02T00:00:00Z",
     "handoff_at": "2026-05-02T00:00:00Z"},
]


def _install(site: Path) -> None:
    (site / "xjsonl_source.py").write_text(textwrap.dedent(CONNECTOR_MODULE), encoding="utf-8")
    info = site / "xjsonl_source-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: xjsonl-source\nVersion: 0.1\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        f"[{CONNECTORS_GROUP}]\njsonl = xjsonl_source:JsonlConnector\n", encoding="utf-8"
    )


def test_third_party_connector_is_used_by_crm_audit_run(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    _install(site)
    (tmp_path / "deals.jsonl").write_text(
        "\n".join(json.dumps(d) for d in DEALS) + "\n", encoding="utf-8"
    )
    (tmp_path / "audit.toml").write_text(
        '[source]\ntype = "jsonl"\nname = "shop"\npath = "deals.jsonl"\n\n'
        '[rules]\nselect = ["CD01"]\n\n[history]\nenabled = false\n',
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    proc = subprocess.run(
        [sys.executable, "-c", "from auditor.app.cli import main; main()", "run",
         "--config", str(tmp_path / "audit.toml"), "--out", str(tmp_path / "out"),
         "--as-of", "2026-06-30"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Audited 2 opportunities from shop as of 2026-06-30" in proc.stdout
    found = json.loads((tmp_path / "out" / "violations.json").read_text(encoding="utf-8"))
    rows = found["violations"] if isinstance(found, dict) else found
    assert [(v["rule_code"], v["opportunity_id"]) for v in rows] == [("CD01", "J1")]


def test_unknown_source_type_lists_the_registered_ones() -> None:
    with pytest.raises(ConfigError) as err:
        connector_class("nosuch", "audit.toml")
    assert str(err.value) == (
        "audit.toml: key `source.type`: unknown source type 'nosuch'; allowed: csv, demo, "
        "hubspot, hubspot_export, salesforce, salesforce_export, warehouse"
    )
