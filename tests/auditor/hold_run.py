"""Subprocess for the concurrency tests: `crm-audit ARGS…` whose CSV pull pauses.

usage: python -m tests.auditor.hold_run MARKER GO crm-audit-args…

The pull (which runs holding the run lock) touches MARKER, then waits until GO exists.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path

from auditor.app.cli import main as cli
from auditor.snapshot import Snapshot
from connectors.csv_source import CsvConnector


def main() -> None:
    marker, go = Path(sys.argv[1]), Path(sys.argv[2])
    pull = CsvConnector.pull

    def paused(self: CsvConnector, since: datetime | None = None) -> Snapshot:
        marker.touch()
        deadline = time.monotonic() + 60
        while not go.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return pull(self, since)

    CsvConnector.pull = paused  # type: ignore[method-assign]
    cli(sys.argv[3:], prog_name="crm-audit")


if __name__ == "__main__":
    main()
