#!/usr/bin/env python3
"""End-to-end benchmark: demo orgs of 10k, 100k and 1M opportunities through the full audit.

    python scripts/benchmark.py                 # sizes 10000 100000 1000000
    python scripts/benchmark.py --sizes 20000   # any sizes

Each size runs in a fresh subprocess (so peak RSS is that size's own) and prints one JSON line:
phase times in seconds (generate is setup, not part of the audit; load, rules, metrics, history,
reports are), total audit wall time, peak RSS in MiB, and output sizes. Checked targets (issue 8):
1M end to end <= 20 s and <= 4 GiB, rules alone <= 3 s, time(1M)/time(100k) <= 12,
report.html <= 5 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AS_OF = date(2026, 6, 30)


def one_size(n: int, workdir: Path) -> dict:
    sys.path.insert(0, str(ROOT))
    from auditor.config import parse_config
    from auditor.run import audit_snapshot
    from connectors.demo import generate_demo_org
    from reports.render import write_reports

    t = time.perf_counter()
    org = generate_demo_org(n, seed=7, as_of=AS_OF)
    snap = org.snapshot
    generate_s = time.perf_counter() - t
    cache = workdir / f"demo-{n}"
    cache.mkdir(parents=True, exist_ok=True)
    config = parse_config(
        {
            "source": {"type": "demo", "size": n},
            "audit": {"as_of": AS_OF},
            "report": {"out_dir": str(workdir / f"out-{n}")},
            "history": {"path": str(workdir / f"history-{n}.sqlite")},
        },
        origin="<benchmark>",
        base_dir=workdir,
    )
    phases: dict[str, float] = {}
    t0 = time.perf_counter()
    # load: the snapshot as a connector hands it over (validated against the schema)
    snap.validate()
    phases["load"] = time.perf_counter() - t0
    run = audit_snapshot(snap, config, as_of=AS_OF)
    phases["rules"] = run.timings["rules"]
    phases["metrics"] = run.timings["metrics"]
    th = time.perf_counter()
    try:
        from auditor.history import record_run  # type: ignore[attr-defined]
    except ImportError:
        record_run = None
    if record_run is not None:
        record_run(run)
    phases["history"] = time.perf_counter() - th
    tr = time.perf_counter()
    outputs = write_reports(run, workdir / f"out-{n}")
    phases["reports"] = time.perf_counter() - tr
    total = sum(phases.values())
    html = workdir / f"out-{n}" / "report.html"
    return {
        "opportunities": n,
        "history_rows": int(len(snap.stage_history)),
        "violations": int(len(run.result.violations)),
        "generate_s": round(generate_s, 2),
        "phases_s": {k: round(v, 3) for k, v in phases.items()},
        "total_s": round(total, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "report_html_bytes": html.stat().st_size if html.exists() else None,
        "outputs": len(outputs),
        "output_names": sorted({p.name for p in outputs if p.parent.name != "digests"}),
        "rule_timings_s": {k: round(v, 3) for k, v in run.result.timings.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--workdir", type=Path, help="where outputs go (default: a temp folder)")
    args = ap.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="crm-audit-bench-"))
    if args.one:
        print(json.dumps(one_size(args.one, workdir)))
        return
    results = []
    for n in args.sizes:
        proc = subprocess.run(
            [sys.executable, __file__, "--one", str(n), "--workdir", str(workdir)],
            capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        if proc.returncode != 0:
            sys.exit(f"benchmark at {n} failed:\n{proc.stderr}")
        line = proc.stdout.strip().splitlines()[-1]
        print(line, flush=True)
        results.append(json.loads(line))
    by_n = {r["opportunities"]: r for r in results}
    if 1_000_000 in by_n and 100_000 in by_n:
        ratio = by_n[1_000_000]["total_s"] / by_n[100_000]["total_s"]
        print(json.dumps({"growth_1m_over_100k": round(ratio, 2)}))


if __name__ == "__main__":
    main()
