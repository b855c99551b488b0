from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from auditor.config import AuditConfig, parse_config
from connectors import registry
from tests.auditor.fakes import ScriptedConnector

AS_OF = "2026-06-15"


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> type[ScriptedConnector]:
    monkeypatch.setitem(registry.CONNECTORS, "scripted", "tests.auditor.fakes:ScriptedConnector")
    ScriptedConnector.script = []
    ScriptedConnector.calls = []
    return ScriptedConnector


def make_config(tmp_path: Path, **sections: Any) -> AuditConfig:
    """A config for the scripted source (named "demo"), history in tmp_path/history.sqlite."""
    data: dict[str, Any] = {
        "audit": {"as_of": AS_OF},
        "source": {"type": "scripted", "name": "demo"},
        "history": {"path": "history.sqlite", "trend_runs": 3},
        "report": {"formats": ["json"]},
    }
    for k, v in sections.items():
        data[k] = {**data.get(k, {}), **v}
    return parse_config(data, origin=str(tmp_path / "audit.toml"), base_dir=tmp_path)
