"""Regenerate the behaviour baseline in tests/data/baseline/ (or compare against it).

The baseline pins what the auditor outputs on the 20,000-record demo organisation at a fixed
as-of day, in two runs a week apart (the second one has history to diff against): every
finding's fingerprint with its rule code, metrics.json and the Markdown / text reports and
digests, with the fields that change from run to run (timings, clock times, paths) removed.
It exists so that refactors can prove they change no output; an intended change of findings
or metrics regenerates it:

    python scripts/make_baseline.py            # rewrite tests/data/baseline/
    python scripts/make_baseline.py --check    # compare, exit 1 on a difference

The runs go through the CLI in a subprocess, so the script works on any checkout given as
``--tree`` (for example an older commit extracted with ``git archive``).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = ROOT / "tests" / "data" / "baseline"
SIZE = 20_000
RUNS = ("2026-06-30", "2026-07-07")
#: keys whose values depend on the clock, the machine or the output folder
VOLATILE_KEYS = {"timings", "started_at", "finished_at", "duration_s", "generated_at", "pulled_at"}
TEXT_OUTPUTS = ("report.md", "report.txt", "assessment.md")
#: run-dependent fragments of the rendered text: durations, clock times, folders
_VOLATILE_TEXT = [
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)?"), "<time>"),
    (re.compile(r"\d\d:\d\d(:\d\d)? UTC"), "<clock> UTC"),
    (re.compile(r"\b\d+(\.\d+)? ?(s|ms|seconds)\b"), "<duration>"),
]

CLI = (
    "import sys\n"
    "try:\n    from auditor.app.cli import main\n"
    "except ImportError:\n    from auditor.cli import main\n"
    "sys.argv[0] = 'crm-audit'\nmain()\n"
)


def _scrub(obj):  # noqa: ANN001, ANN202 - JSON values
    if isinstance(obj, dict):
        return {k: _scrub(v) for k, v in obj.items() if k not in VOLATILE_KEYS}
    if isinstance(obj, list):
        return [_scrub(v) for v in obj]
    return obj


def _scrub_text(text: str, tmp: str) -> str:
    text = text.replace(tmp, "<tmp>")
    for pattern, repl in _VOLATILE_TEXT:
        text = pattern.sub(repl, text)
    return text


#: report settings that skip the outputs the baseline does not hold (HTML, the explorer): the
#: same baseline files, a third faster (the test uses them; an old ``--tree`` may not know them)
TEXT_ONLY = 'formats = ["md", "txt", "csv", "json"]\nexplorer = false\n'


def _run_process(tree: Path, args: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    subprocess.run([sys.executable, "-c", CLI, *args], cwd=tree, env=env, check=True,
                   stdout=subprocess.DEVNULL)


def produce(
    tree: Path, report_extra: str = "", run: Callable[[Path, list[str]], None] = _run_process
) -> dict[str, bytes]:
    """Run the demo audits with the code in ``tree``; the baseline files by name.

    ``report_extra``: more ``[report]`` settings (e.g. ``TEXT_ONLY``); ``run(tree, args)`` runs
    ``crm-audit`` with ``args`` (a process by default, so any ``--tree`` works; the test runs
    it in its own process, saving two interpreter starts)."""
    files: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="crm-baseline-") as tmp:
        cfg = Path(tmp) / "audit.toml"
        cfg.write_text(
            f'[source]\ntype = "demo"\nsize = {SIZE}\n\n[report]\ndigests = true\n'
            f'out_dir = "out"\n{report_extra}\n[history]\npath = "history.sqlite"\n',
            encoding="utf-8",
        )
        for i, day in enumerate(RUNS, 1):
            out = Path(tmp) / f"out{i}"
            run(tree, ["run", "--config", str(cfg), "--out", str(out), "--as-of", day])
            with open(out / "violations.csv", encoding="utf-8", newline="") as fh:
                rows = sorted(
                    f"{r['fingerprint']} {r['rule_code']} {r['opportunity_id']}"
                    for r in csv.DictReader(fh)
                )
            files[f"run{i}-fingerprints.txt"] = ("\n".join(rows) + "\n").encode()
            metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
            files[f"run{i}-metrics.json"] = (
                json.dumps(_scrub(metrics), indent=1, sort_keys=True) + "\n"
            ).encode()
            names = list(TEXT_OUTPUTS) + sorted(
                f"digests/{p.name}" for p in (out / "digests").glob("*.txt")
            )
            texts = []
            for name in names:
                body = _scrub_text((out / name).read_text(encoding="utf-8"), tmp)
                texts.append(f"===== {name}\n{body}")
            files[f"run{i}-reports.txt"] = "\n".join(texts).encode()
    return files


def _write(files: dict[str, bytes], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        # mtime=0: the same content gives the same bytes, so git sees no change
        (folder / f"{name}.gz").write_bytes(gzip.compress(data, mtime=0))


def read_baseline(folder: Path = BASELINE) -> dict[str, bytes]:
    return {p.name[:-3]: gzip.decompress(p.read_bytes()) for p in sorted(folder.glob("*.gz"))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", type=Path, default=ROOT, help="checkout whose code runs")
    ap.add_argument("--out", type=Path, default=BASELINE, help="baseline folder")
    ap.add_argument("--check", action="store_true", help="compare instead of writing")
    args = ap.parse_args()
    files = produce(args.tree.resolve())
    if not args.check:
        _write(files, args.out)
        print(f"wrote {len(files)} files to {args.out}")
        return 0
    old = read_baseline(args.out)
    bad = sorted(n for n in files.keys() | old.keys() if files.get(n) != old.get(n))
    for n in bad:
        print(f"differs: {n}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
