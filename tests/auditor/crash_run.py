"""Subprocess for the SIGKILL test: starts an audit run and hangs at a chosen point.

usage: python -m tests.auditor.crash_run TMP_DIR (pull|commit)

It touches TMP_DIR/marker when it reaches the point, then sleeps until the test kills it.
"""

from __future__ import annotations

import sys
import time
from datetime import date
from pathlib import Path

from auditor.app.run import execute
from auditor.history.store import HistoryStore
from connectors import registry
from connectors.demo import generate_demo_org
from tests.auditor.conftest import make_config
from tests.auditor.fakes import ScriptedConnector


def main() -> None:
    tmp, phase = Path(sys.argv[1]), sys.argv[2]
    registry.CONNECTORS["scripted"] = "tests.auditor.fakes:ScriptedConnector"
    snap = generate_demo_org(300, seed=12, as_of=date(2026, 6, 15)).snapshot

    def hang() -> None:
        (tmp / "marker").touch()
        time.sleep(120)

    if phase == "pull":
        ScriptedConnector.script = [lambda since: (hang(), snap)[1]]
    else:
        insert_metrics = HistoryStore._insert_metrics

        def slow(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            insert_metrics(self, *args, **kwargs)  # violations and metrics are written …
            hang()  # … but the transaction never commits

        HistoryStore._insert_metrics = slow
        ScriptedConnector.script = [snap]
    execute(make_config(tmp), out_dir=tmp / "out")


if __name__ == "__main__":
    main()
