"""Subprocess for the output fault scenarios: a run that stops dead at a named point.

usage: python -m tests.security.kill_point TMP POINT

TMP/audit.toml configures a scripted demo org (see test_output_faults.py). At POINT the run
touches TMP/marker and sleeps until the test SIGKILLs it:

- ``reports``: after the third report file was written into the staging folder;
- ``stored``: after the store commit, before manifest.json and the swap;
- ``swap``: just before the staging folder is swapped in.
"""

from __future__ import annotations

import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import reports.render as render
from auditor.app import publish
from auditor.app.run import execute
from auditor.config import load_config
from connectors import registry
from connectors.demo import generate_demo_org
from tests.auditor.fakes import ScriptedConnector


def _hang(tmp: Path) -> None:
    (tmp / "marker").touch()
    time.sleep(120)


def main() -> None:
    tmp, point = Path(sys.argv[1]), sys.argv[2]
    registry.CONNECTORS["scripted"] = "tests.auditor.fakes:ScriptedConnector"
    ScriptedConnector.script = [generate_demo_org(400, seed=2, as_of=date(2026, 6, 15)).snapshot]
    if point == "reports":
        write, calls = render._write, []

        def third(path: Path, text: str) -> Path:
            out = write(path, text)
            calls.append(path)
            if len(calls) == 3:
                _hang(tmp)
            return out

        render._write = third
    elif point == "stored":
        manifest = publish.OutputFolder.write_manifest

        def late(self: Any, info: dict) -> dict:
            _hang(tmp)
            return manifest(self, info)

        publish.OutputFolder.write_manifest = late  # type: ignore[method-assign]
    else:
        swap = publish.OutputFolder.publish

        def before(self: Any) -> None:
            _hang(tmp)
            swap(self)

        publish.OutputFolder.publish = before  # type: ignore[method-assign]
    execute(load_config(tmp / "audit.toml"))


if __name__ == "__main__":
    main()
