#!/usr/bin/env python3
"""End-to-end benchmark: demo orgs of 10k, 100k and 1M opportunities through the full audit.

    python scripts/benchmark.py                 # sizes 10000 100000 1000000
    python scripts/benchmark.py --sizes 20000   # any sizes

For each size, a demo org (about five stage-history rows per opportunity) is generated once and
saved as Parquet, the format the history store keeps snapshots in; that is setup, not measured.
The measured run is `auditor.app.run.execute()` exactly as `crm-audit run` calls it, with a source
that loads that Parquet snapshot: load → all rules → metrics → history diff → reports → history
store commit (delivery off). Each size runs in a fresh subprocess, so peak RSS is its own.

One JSON line per size: phase times (s), total wall time of execute(), peak RSS (MiB), the
report.html size and the number of findings. Targets (issue 8): 1M end to end <= 20 s and
<= 4 GiB, rules <= 3 s, time(1M) / time(100k) <= 12, report.html <= 5 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import ClassVar

ROOT = Path(__file__).resolve().parents[1]
AS_OF = date(2026, 6, 30)
sys.path.insert(0, str(ROOT))

from auditor.snapshot import Snapshot  # noqa: E402
from connectors.base import Connector, SourceOptions  # noqa: E402


class ParquetOptions(SourceOptions):
    folder: str


class ParquetSnapshotConnector(Connector):
    """Loads a Snapshot saved by `save_snapshot` (the history store's Parquet format)."""

    type_name: ClassVar[str] = "parquet_snapshot"
    Options = ParquetOptions

    def pull(self, since=None) -> Snapshot:  # noqa: ANN001
        from auditor.history.frames import snapshot_from_blobs

        folder = Path(self.options.folder)
        return snapshot_from_blobs(
            (folder / "meta.json").read_text(),
            (folder / "opportunities.parquet").read_bytes(),
            (folder / "stage_history.parquet").read_bytes(),
            (folder / "owners.parquet").read_bytes(),
        )


def save_snapshot(n: int, folder: Path) -> float:
    from auditor.history.frames import snapshot_to_blobs
    from connectors.demo import generate_demo_org

    t = time.perf_counter()
    snap = generate_demo_org(n, seed=7, as_of=AS_OF).snapshot
    blobs = snapshot_to_blobs(snap)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meta.json").write_text(blobs["meta"])
    for name in ("opportunities", "stage_history", "owners"):
        (folder / f"{name}.parquet").write_bytes(blobs[name])
    return time.perf_counter() - t


def one_size(n: int, workdir: Path) -> dict:
    from auditor.app.run import execute
    from auditor.config import parse_config
    from connectors import registry

    registry.CONNECTORS["parquet_snapshot"] = "__main__:ParquetSnapshotConnector"
    snap_dir = workdir / f"snapshot-{n}"
    if not (snap_dir / "meta.json").exists():
        save_snapshot(n, snap_dir)
    hist = workdir / f"history-{n}.sqlite"
    hist.unlink(missing_ok=True)
    config = parse_config(
        {
            "source": {"type": "parquet_snapshot", "name": "demo", "folder": str(snap_dir)},
            "audit": {"as_of": AS_OF},
            "report": {"out_dir": str(workdir / f"out-{n}")},
            "history": {"path": str(hist)},
        },
        origin="<benchmark>",
        base_dir=workdir,
    )
    t = time.perf_counter()
    run = execute(config, as_of=AS_OF, deliver=False)
    total = time.perf_counter() - t
    html = workdir / f"out-{n}" / "report.html"
    return {
        "opportunities": n,
        "history_rows": int(len(run.snapshot.stage_history)),
        "violations": int(len(run.result.violations)),
        "phases_s": {k: round(v, 3) for k, v in run.timings.items()},
        "total_s": round(total, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "report_html_bytes": html.stat().st_size,
        "history_file_mib": round(hist.stat().st_size / 2**20, 1),
        "slowest_rules_s": dict(
            sorted(
                ((k, round(v, 3)) for k, v in run.result.timings.items()),
                key=lambda kv: -kv[1],
            )[:3]
        ),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--workdir", type=Path, help="where snapshots and outputs go (default: temp)")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--setup", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="crm-audit-bench-"))
    if args.setup:
        save_snapshot(args.setup, workdir / f"snapshot-{args.setup}")
        return
    if args.one:
        print(json.dumps(one_size(args.one, workdir)))
        return
    print(json.dumps({"machine": platform.platform(), "cpus": os.cpu_count(),
                      "python": platform.python_version()}), flush=True)
    results = {}
    for n in args.sizes:
        snap_dir = workdir / f"snapshot-{n}"
        if not (snap_dir / "meta.json").exists():  # setup in its own process, not measured
            subprocess.run(
                [sys.executable, __file__, "--setup", str(n), "--workdir", str(workdir)],
                check=True,
            )
        proc = subprocess.run(
            [sys.executable, __file__, "--one", str(n), "--workdir", str(workdir)],
            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        if proc.returncode != 0:
            sys.exit(f"benchmark at {n} failed:\n{proc.stderr[-3000:]}")
        line = proc.stdout.strip().splitlines()[-1]
        print(line, flush=True)
        results[n] = json.loads(line)
    if 1_000_000 in results and 100_000 in results:
        ratio = results[1_000_000]["total_s"] / results[100_000]["total_s"]
        print(json.dumps({"growth_1m_over_100k": round(ratio, 2)}))


if __name__ == "__main__":
    main()
