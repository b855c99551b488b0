"""Progress: a live display when stderr is a terminal (a real pseudo-terminal here), never on
stdout, plain lines when stderr is a pipe."""

from __future__ import annotations

import io
import os
import pty
import re
import select
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from auditor.app.progress import PlainProgress, RichProgress
from connectors.base import PullProgress
from tests.app.conftest import ROOT, write_config

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _run_with_terminal_stderr(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """Run with stderr on a pty and stdout on a pipe; (exit code, terminal text, stdout)."""
    master, slave = pty.openpty()
    env = {
        "PYTHONPATH": str(ROOT),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "TERM": "xterm-256color",
        "COLUMNS": "120",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "auditor.app.cli", *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    chunks: list[bytes] = []
    while True:
        ready, _, _ = select.select([master], [], [], 120)
        if not ready:
            break
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    stdout = proc.stdout.read().decode() if proc.stdout else ""
    code = proc.wait(timeout=60)
    return code, b"".join(chunks).decode(errors="replace"), stdout


def test_progress_on_a_terminal_and_not_in_piped_stdout(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    code, terminal, stdout = _run_with_terminal_stderr(["run", "--config", str(cfg)], tmp_path)
    assert code == 0, terminal
    screen = ANSI.sub("", terminal)
    # the pull with its counts, then every phase with its time, as rich draws them
    assert "pull  sf_report_opportunities.csv: 6 records, 1 page" in screen
    for phase in ("rules", "metrics", "reports", "history store", "delivery"):
        assert re.search(rf"✓ {phase}\s+\(\d+\.\d s\)", screen), phase
    assert "\x1b[" in terminal  # drawn with terminal control codes (a live display)
    # stdout got the result and nothing else
    assert stdout.startswith("Audited 6 opportunities from sf-report as of 2025-03-31")
    assert "\x1b" not in stdout and "records, 1 page" not in stdout and "✓" not in stdout


def test_quiet_on_a_terminal_draws_nothing(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    code, terminal, stdout = _run_with_terminal_stderr(
        ["run", "--config", str(cfg), "--quiet"], tmp_path
    )
    assert code == 0
    assert ANSI.sub("", terminal).strip() == ""
    assert stdout.startswith("Audited 6 opportunities")


def test_rich_display_shows_counts_total_and_api_calls() -> None:
    buf = io.StringIO()
    display = RichProgress(Console(file=buf, force_terminal=True, width=140))
    display.start("pull")
    display.pulled(PullProgress("Opportunity", 2000, 1, api_calls=3, total=5000))
    display.pulled(PullProgress("Opportunity", 4000, 2, api_calls=4, total=5000))
    task = display.progress.tasks[0]
    assert (task.completed, task.total) == (4000, 5000)
    display.done("pull", 2.5)
    display.close()
    text = ANSI.sub("", buf.getvalue())
    assert "pull  Opportunity: 4,000/5,000 records, 2 pages, 4 API calls  (2.5 s)" in text


def test_plain_lines_are_throttled() -> None:
    buf = io.StringIO()
    plain = PlainProgress(buf, interval=3600)
    plain.start("pull")
    for n in range(1, 50):
        plain.pulled(PullProgress("deals", n * 100, n, api_calls=n))
    plain.done("pull", 12.0)
    lines = buf.getvalue().splitlines()
    # no page line within the interval; the phase line carries the final counts
    assert len(lines) == 1
    assert lines[0].endswith("pull: done in 12.0 s (deals: 4,900 records, 49 pages, 49 API calls)")


def test_eta_from_the_pace_of_the_pull() -> None:
    clock = [0.0]
    buf = io.StringIO()
    display = RichProgress(Console(file=buf, force_terminal=True, width=160))
    display.progress.get_time = lambda: clock[0]
    display.start("pull")
    clock[0] = 5.0
    display.pulled(PullProgress("Opportunity", 1000, 1, api_calls=1, total=5000))
    clock[0] = 10.0
    display.pulled(PullProgress("Opportunity", 2000, 2, api_calls=2, total=5000))
    task = display.progress.tasks[0]
    # 1,000 records in the last 5 s: 3,000 left at 200 a second
    assert task.time_remaining == 15
    from auditor.app.progress import _Eta

    assert _Eta().render(task).plain == "ETA 0:15"
    display.close()
