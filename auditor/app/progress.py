"""Signs of life on stderr while ``crm-audit run`` works (stdout carries only the result).

On a terminal: a rich progress display (records and pages read, API calls, ETA when the source
says how many records to expect, then each phase with its time). Otherwise (cron, CI, a pipe):
plain lines, one per phase and at most one pull line every ``interval`` seconds.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from connectors.base import PullProgress


def _pull_text(p: PullProgress) -> str:
    of = f"/{p.total:,}" if p.total is not None else ""
    calls = f", {p.api_calls:,} API calls" if p.api_calls else ""
    pages = "page" if p.pages == 1 else "pages"
    return f"{p.what}: {p.records:,}{of} records, {p.pages:,} {pages}{calls}"


class PlainProgress:
    """One line per finished phase, and a pull line at most every ``interval`` seconds."""

    def __init__(self, stream: TextIO | None = None, interval: float = 10.0) -> None:
        self.stream = stream
        self.interval = interval
        self._last = 0.0
        self._pull = ""

    def _say(self, text: str) -> None:
        out = self.stream or sys.stderr
        out.write(f"{time.strftime('%H:%M:%S')} {text}\n")
        out.flush()

    def start(self, phase: str) -> None:
        self._last = time.monotonic()

    def pulled(self, progress: PullProgress) -> None:
        self._pull = _pull_text(progress)
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._say(f"pull: {self._pull}")

    def done(self, phase: str, seconds: float) -> None:
        extra = f" ({self._pull})" if phase == "pull" and self._pull else ""
        self._say(f"{phase}: done in {seconds:.1f} s{extra}")

    def close(self) -> None:
        pass


class _Eta(ProgressColumn):
    """Time left, only while a task with a known total runs (the pull of a counted source)."""

    def render(self, task: Task) -> Text:
        left = task.time_remaining
        if task.total is None or task.finished or left is None:
            return Text("")
        return Text(f"ETA {int(left) // 60}:{int(left) % 60:02d}", style="cyan")


class RichProgress:
    """A live display on the terminal: a bar for the pull, a line per phase with its time."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            SpinnerColumn(finished_text="[green]✓"),
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            TimeElapsedColumn(),
            _Eta(),
            console=self.console,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}
        self.progress.start()

    def start(self, phase: str) -> None:
        self.tasks[phase] = self.progress.add_task(phase, total=None)

    def pulled(self, progress: PullProgress) -> None:
        task = self.tasks.get("pull")
        if task is None:
            task = self.tasks["pull"] = self.progress.add_task("pull", total=None)
        self.progress.update(
            task,
            description=f"pull  {_pull_text(progress)}",
            completed=progress.records,
            total=progress.total,
        )

    def done(self, phase: str, seconds: float) -> None:
        task = self.tasks.get(phase)
        if task is None:
            task = self.tasks[phase] = self.progress.add_task(phase, total=None)
        desc = self.progress.tasks[task].description
        self.progress.update(task, description=f"{desc}  ({seconds:.1f} s)", total=1, completed=1)

    def close(self) -> None:
        self.progress.stop()


def make_progress(enabled: bool) -> RichProgress | PlainProgress | None:
    """The display for this process: rich on a terminal, plain lines otherwise, or none."""
    if not enabled:
        return None
    console = Console(stderr=True)
    return RichProgress(console) if console.is_terminal else PlainProgress()
