"""The demo audit's outputs are exactly the committed baseline (tests/data/baseline/).

The baseline was produced from commit 5df7631 (before the kernel/shell refactor of issue #12) by
``python scripts/make_baseline.py --tree <that checkout>``: fingerprints with rule codes, the
metrics and the Markdown / text reports and digests of two 20,000-record demo runs a week apart.
An intended change of findings or metrics regenerates it with ``python scripts/make_baseline.py``
(and the diff is reviewed like code).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _script():  # noqa: ANN202 - the script module
    path = ROOT / "scripts" / "make_baseline.py"
    spec = importlib.util.spec_from_file_location("make_baseline", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run_here(tree: Path, args: list[str]) -> None:
    """``crm-audit`` in this process, from ``tree`` like the script's subprocess."""
    from click.testing import CliRunner

    from auditor.app.cli import main

    cwd = os.getcwd()
    os.chdir(tree)
    try:
        res = CliRunner().invoke(main, args)
    finally:
        os.chdir(cwd)
    assert res.exit_code == 0, (res.output, res.exception)


def test_demo_outputs_match_the_baseline() -> None:
    # in this process: the files are the point (real-process demo runs: tests/test_cli.py)
    mb = _script()
    expected = mb.read_baseline()
    assert sorted(expected) == [
        f"run{i}-{kind}" for i in (1, 2)
        for kind in ("fingerprints.txt", "metrics.json", "reports.txt")
    ]
    actual = mb.produce(ROOT, mb.TEXT_ONLY, run=_run_here)  # no HTML: the baseline holds none
    assert sorted(actual) == sorted(expected)
    for name in sorted(expected):
        if actual[name] != expected[name]:
            old = expected[name].decode().splitlines()
            new = actual[name].decode().splitlines()
            first = next(
                (i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b),
                min(len(old), len(new)),
            )
            raise AssertionError(
                f"{name} differs from the baseline at line {first + 1}:\n"
                f"  baseline: {old[first] if first < len(old) else '<end>'}\n"
                f"  now:      {new[first] if first < len(new) else '<end>'}"
            )
    assert len(actual["run1-fingerprints.txt"].splitlines()) > 1000  # the demo has findings
