#!/usr/bin/env python3
"""End-to-end benchmark (issue 19): demo orgs of 10k, 100k and 1M opportunities through the full
audit, the rules against an independent DuckDB implementation, and the nightly incremental run.

    python scripts/benchmark.py --out bench.jsonl     # sizes 10000 100000 1000000 + incremental
    python scripts/benchmark.py --sizes 100000 --no-incremental
    python scripts/benchmark.py --docs bench.jsonl    # rewrite docs/performance.md's tables

Per size (each in a fresh process, so peak RSS is its own; the demo org is generated once and
saved as Parquet, the history store's snapshot format — setup, not measured):

- the measured run: ``auditor.app.run.execute()`` exactly as ``crm-audit run`` calls it, with a
  source that loads that snapshot: load → rules → metrics → history diff → reports → history
  store commit (delivery off). Phases as execute() times them, its wall time, peak RSS;
- findings: their number and the sha256 of the sorted ``kind fingerprint`` lines (kind = fix /
  process), compared with scripts/benchmark_baseline.json (the values of commit b12a0ae);
- rules vs DuckDB: after the run, in the same process on the same snapshot, the rule engine
  (memo cleared before each run) and tests/reference/duckdb_rules.py ``reference_findings()``
  (2 threads) alternate ``--repeats`` times; ratio = median engine / median DuckDB.

Then the growth of every phase per 10x more data (target <= 10.5x) and the nightly incremental
run at the largest size (scripts/bench_incremental.py: 1 % of deals changed, pulled from the
fake Salesforce org on https://127.0.0.1). Every output line is one JSON object with a "kind".
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar

ROOT = Path(__file__).resolve().parents[1]
AS_OF = date(2026, 6, 30)
BASELINE = Path(__file__).with_name("benchmark_baseline.json")
DOC = ROOT / "docs" / "performance.md"
sys.path.insert(0, str(ROOT))

from auditor.snapshot import Snapshot  # noqa: E402
from connectors.base import Connector, SourceOptions  # noqa: E402


class ParquetOptions(SourceOptions):
    folder: str


def load_snapshot(folder: Path) -> Snapshot:
    from auditor.history.frames import snapshot_from_blobs

    return snapshot_from_blobs(
        (folder / "meta.json").read_text(),
        (folder / "opportunities.parquet").read_bytes(),
        (folder / "stage_history.parquet").read_bytes(),
        (folder / "owners.parquet").read_bytes(),
    )


class ParquetSnapshotConnector(Connector):
    """Loads a Snapshot saved by `save_snapshot` (the history store's Parquet format)."""

    type_name: ClassVar[str] = "parquet_snapshot"
    Options = ParquetOptions

    def pull(self, since=None) -> Snapshot:  # noqa: ANN001
        return load_snapshot(Path(self.options.folder))


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


def cpu_s() -> float:
    """CPU seconds this process used so far, all threads (user + system): on a shared machine
    it moves far less than wall time."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def fingerprint_digest(violations: Any, process: Any) -> tuple[int, str]:
    """(findings, sha256 of the sorted "kind fingerprint" lines): the format of the baseline."""
    lines = sorted(
        [f"fix {f}" for f in violations["fingerprint"].astype(str)]
        + [f"process {f}" for f in process["fingerprint"].astype(str)]
    )
    return len(lines), hashlib.sha256("\n".join(lines).encode()).hexdigest()


def reference_settings(config: Any, as_of: date) -> Any:
    """The config as the DuckDB reference takes it (as tests/rules/test_differential.py does)."""
    from auditor.engine import select_rules
    from tests.reference.duckdb_rules import Settings

    return Settings(
        as_of=as_of.isoformat(),
        stage_limits=dict(config.process.stage_limits),
        exit_criteria={k: list(v) for k, v in config.process.exit_criteria.items()},
        params={r.code: dict(r.p) for r in select_rules(config)},
        stage_probability=dict(config.process.stage_probability),
        fix_window_days=config.audit.fix_window_days,
        strict_history=config.audit.strict_history,
        import_min_records=config.audit.import_min_records,
    )


def rules_vs_reference(snap: Snapshot, config: Any, repeats: int) -> dict[str, Any]:
    """Engine and DuckDB reference alternately on the same snapshot, ``repeats`` times each.

    Alternating spreads the machine's load over both alike; the snapshot's memo is cleared
    before each engine run, so nothing computed by the run before is reused.
    """
    from auditor.engine import run_audit
    from tests.reference.duckdb_rules import reference_findings

    settings = reference_settings(config, AS_OF)
    engine, ref = [], []
    for _ in range(repeats):
        snap.memo.clear()
        gc.collect()
        t = time.perf_counter()
        run_audit(snap, config, as_of=AS_OF)
        engine.append(time.perf_counter() - t)
        gc.collect()
        t = time.perf_counter()
        reference_findings(snap, settings, threads=2)
        ref.append(time.perf_counter() - t)
    e, r = statistics.median(engine), statistics.median(ref)
    return {"rules_s": round(e, 3), "duckdb_s": round(r, 3), "ratio": round(e / r, 2),
            "runs": repeats, "duckdb_threads": 2,
            "rules_runs_s": [round(x, 3) for x in engine],
            "duckdb_runs_s": [round(x, 3) for x in ref]}


def _history_bytes(hist: Path) -> int:
    snapshots = hist.with_name(hist.name + ".snapshots")
    files = [f for f in snapshots.glob("*") if f.is_file()] if snapshots.is_dir() else []
    return hist.stat().st_size + sum(f.stat().st_size for f in files)


def one_size(n: int, workdir: Path, repeats: int) -> dict[str, Any]:
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
    cpu0, t = cpu_s(), time.perf_counter()
    run = execute(config, as_of=AS_OF, deliver=False)
    total, cpu = time.perf_counter() - t, cpu_s() - cpu0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the comparison
    phases = {k: round(v, 3) for k, v in run.timings.items()}
    count, digest = fingerprint_digest(run.result.violations, run.result.process)
    base = json.loads(BASELINE.read_text()).get(str(n)) if BASELINE.exists() else None
    out: dict[str, Any] = {
        "kind": "size",
        "opportunities": n,
        "history_rows": int(len(run.snapshot.stage_history)),
        "owners": int(len(run.snapshot.owners)),
        "phases_s": phases,
        "other_s": round(total - sum(run.timings.values()), 3),
        "total_s": round(total, 3),
        "cpu_s": round(cpu, 2),
        "peak_rss_mib": round(rss, 1),
        "violations": int(len(run.result.violations)),
        "findings": count,
        "fingerprints_sha256": digest,
        "fingerprints_match_baseline": None if base is None else digest == base["sha256"],
        "report_html_bytes": (workdir / f"out-{n}" / "report.html").stat().st_size,
        # the database plus its snapshot folder (<history>.snapshots/, schema 2)
        "history_file_mib": round(_history_bytes(hist) / 2**20, 1),
        "slowest_rules_s": dict(
            sorted(((k, round(v, 3)) for k, v in run.result.timings.items()),
                   key=lambda kv: -kv[1])[:3]
        ),
    }
    if repeats:
        snap = run.snapshot
        del run
        out["reference"] = rules_vs_reference(snap, config, repeats)
    return out


def machine() -> dict[str, Any]:
    import pandas as pd
    import pyarrow as pa

    mem = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), 0)
    return {"kind": "machine", "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "platform": platform.platform(), "cpus": os.cpu_count(),
            "memory_gib": round(mem / 2**20, 1), "python": platform.python_version(),
            "pandas": pd.__version__, "pyarrow": pa.__version__,
            "load_avg_1m": round(os.getloadavg()[0], 2)}


def _child(args: list[str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if proc.returncode != 0:
        sys.exit(f"benchmark step {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--workdir", type=Path, help="where snapshots and outputs go (default: temp); "
                    "a ready snapshot-<n> folder in it is used as it is")
    ap.add_argument("--repeats", type=int, default=3,
                    help="engine / DuckDB runs each, alternating (0: no comparison)")
    ap.add_argument("--no-incremental", action="store_true", help="skip the incremental run")
    ap.add_argument("--incremental-size", type=int,
                    help="opportunities of the incremental run (default: the largest size)")
    ap.add_argument("--out", type=Path, help="also write the JSON lines to this file")
    ap.add_argument("--docs", type=Path, metavar="JSONL",
                    help="rewrite docs/performance.md's tables from saved JSON lines, run nothing")
    ap.add_argument("--doc", type=Path, default=DOC, help=argparse.SUPPRESS)
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--setup", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--setup-incremental", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--incremental", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.docs:
        from bench_docs import write_docs

        lines = [json.loads(x) for x in args.docs.read_text().splitlines() if x.strip()]
        write_docs(lines, args.doc)
        print(f"rewrote {args.doc}")
        return
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="crm-audit-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if args.setup:
        save_snapshot(args.setup, workdir / f"snapshot-{args.setup}")
        return
    if args.one:
        print(json.dumps(one_size(args.one, workdir, args.repeats)))
        return
    if args.setup_incremental or args.incremental:
        import bench_incremental

        if args.setup_incremental:
            print(json.dumps(bench_incremental.setup(args.setup_incremental, workdir, AS_OF)))
        else:
            print(json.dumps(bench_incremental.measure(args.incremental, workdir, AS_OF)))
        return

    sink = args.out.open("w") if args.out else None

    def emit(obj: dict[str, Any]) -> None:
        line = json.dumps(obj)
        print(line, flush=True)
        if sink:
            sink.write(line + "\n")
            sink.flush()

    emit(machine())
    results: dict[int, dict[str, Any]] = {}
    sizes = sorted(args.sizes)
    for n in sizes:
        if not (workdir / f"snapshot-{n}" / "meta.json").exists():  # setup, not measured
            subprocess.run([sys.executable, __file__, "--setup", str(n), "--workdir",
                            str(workdir)], check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        results[n] = _child(["--one", str(n), "--workdir", str(workdir),
                             "--repeats", str(args.repeats)])
        emit(results[n])
    from bench_docs import growth

    emit(growth(results))
    if not args.no_incremental:
        n = args.incremental_size or sizes[-1]
        if not (workdir / f"snapshot-{n}" / "meta.json").exists():
            subprocess.run([sys.executable, __file__, "--setup", str(n), "--workdir",
                            str(workdir)], check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        _child(["--setup-incremental", str(n), "--workdir", str(workdir)])
        emit(_child(["--incremental", str(n), "--workdir", str(workdir)]))
    emit({"kind": "end", "load_avg_1m": round(os.getloadavg()[0], 2),
          "at": datetime.now(UTC).isoformat(timespec="seconds")})
    if sink:
        sink.close()


if __name__ == "__main__":
    main()
