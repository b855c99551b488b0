#!/usr/bin/env python3
"""What one audit run costs per 100k opportunities: CPU, memory, SQL queries, database rows.

    python scripts/scale_measure.py                # 100000 opportunities
    python scripts/scale_measure.py --size 20000

Cases, each `crm-audit run` in a fresh process (CPU = user + sys of that process tree, peak RSS
its own), run twice so the second run shows the steady state (diff against the previous run):

- demo source, SQLite history (the default);
- demo source, PostgreSQL history (a throwaway cluster, like the tests');
- warehouse source: the same demo org landed as Fivetran Salesforce tables in DuckDB.

Prints one JSON line per run and the history rows / bytes each run added. Needs the PostgreSQL
server binaries (scripts/ci-deps.sh) and the test extras (duckdb, duckdb-engine).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
AS_OF = date(2026, 6, 30)
TABLES = ("runs", "violations", "metrics", "snapshots", "derived_history")

MEASURE = """
import resource, subprocess, sys, time, json
t = time.perf_counter()
p = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - t
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"rc": p.returncode, "wall_s": round(wall, 2),
                  "cpu_s": round(ru.ru_utime + ru.ru_stime, 2),
                  "peak_rss_mib": round(ru.ru_maxrss / 1024), "stderr": p.stderr[-500:]}))
"""


def run_case(cfg: Path, out: Path) -> dict:
    cmd = [sys.executable, "-c", MEASURE, sys.executable, "-m", "auditor.app.cli", "run",
           "-c", str(cfg), "-o", str(out)]
    res = json.loads(subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT,
                                    check=True).stdout)
    if res["rc"] != 0:
        raise SystemExit(f"run failed: {res['stderr']}")
    res.pop("stderr")
    return res


def sqlite_rows(path: Path) -> dict:
    with sqlite3.connect(path) as db:
        rows = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    return {"rows": rows, "bytes": path.stat().st_size + (path.with_name(path.name + "-wal")
                                                          .stat().st_size
                                                          if path.with_name(path.name + "-wal")
                                                          .exists() else 0)}


def pg_rows(server, db: str) -> dict:
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=server.port, user=server.user,
                         password=server.password, dbname=db) as c:
        rows = {t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
        size = c.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    return {"rows": rows, "bytes": size}


def land_fivetran(size: int, path: Path) -> dict[str, str]:
    """The demo org as Fivetran Salesforce tables in a DuckDB file; returns its stage map."""
    import pandas as pd

    from connectors.demo import generate_demo_org
    from tests.connectors.warehouse.landing import load

    snap = generate_demo_org(size, seed=7, as_of=AS_OF).snapshot
    o, h, u = snap.opportunities, snap.stage_history, snap.owners
    opp = pd.DataFrame({
        "id": o["id"], "name": o["name"], "account_id": o.get("account_id"),
        "owner_id": o["owner_id"], "stage_name": o["source_stage"],
        "is_closed": o["is_closed"], "is_won": o["is_won"], "amount": o["amount"],
        "probability": o["probability"] * 100, "close_date": o["close_date"],
        "created_date": o["created_at"], "last_modified_date": o["updated_at"],
        "system_modstamp": o["updated_at"], "next_step": o["next_step"],
        "lead_source": o["lead_source"], "is_deleted": False, "_fivetran_deleted": False,
        "_fivetran_synced": pd.Timestamp.now(tz="UTC")})
    hist = pd.DataFrame({"id": [f"h{i}" for i in range(len(h))],
                         "opportunity_id": h["opportunity_id"], "stage_name": h["source_stage"],
                         "created_date": h["entered_at"], "is_deleted": False})
    user = pd.DataFrame({"id": u["id"], "name": u["name"], "email": u["email"],
                         "is_active": u["active"], "is_deleted": False})
    load(f"duckdb:///{path}", {"opportunity": opp, "opportunity_history": hist, "user": user})
    pairs = o[["source_stage", "stage"]].dropna().drop_duplicates("source_stage")
    return {str(a): str(b) for a, b in zip(pairs["source_stage"], pairs["stage"], strict=True)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--no-warehouse", action="store_true",
                    help="skip the warehouse case (landing 1M rows in DuckDB takes long)")
    args = ap.parse_args()
    from tests.support.postgres import PgCluster

    work = Path(tempfile.mkdtemp(prefix="crm-audit-scale-"))
    base = (f'[audit]\nas_of = {AS_OF}\n[report]\nformats = ["json", "html", "md"]\n'
            'digests = false\n')
    demo = f'[source]\ntype = "demo"\nsize = {args.size}\nname = "demo"\n'
    cluster = PgCluster()
    server = cluster.start()
    try:
        server.create_database("scale")
        os.environ["SCALE_PG_PASSWORD"] = server.password
        cases = {
            "demo+sqlite": base + demo + '[history]\npath = "h.sqlite"\n',
            "demo+postgresql": base + demo + f'[history]\nurl = "{server.url("scale")}"\n'
                                             'password_env = "SCALE_PG_PASSWORD"\n',
        }
        t = time.perf_counter()
        if args.no_warehouse:
            _measure(cases, work, server, args.size)
            return
        stage_map = land_fivetran(args.size, work / "wh.duckdb")
        print(json.dumps({"setup": "fivetran tables landed", "s": round(time.perf_counter() - t,
                                                                         1)}), flush=True)
        sm = ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in stage_map.items())
        cases["warehouse(duckdb)+sqlite"] = base + (
            f'[source]\ntype = "warehouse"\nname = "wh"\ncrm = "salesforce"\n'
            f'layout = "fivetran"\nurl = "duckdb:///{work / "wh.duckdb"}"\n'
            f'stage_map = {{{sm}}}\n[history]\npath = "hw.sqlite"\n')
        _measure(cases, work, server, args.size)
    finally:
        cluster.stop()


def _measure(cases: dict[str, str], work: Path, server: object, size: int) -> None:
    for name, text in cases.items():
        cfg = work / f"{name.replace('+', '_').replace('(', '').replace(')', '')}.toml"
        cfg.write_text(text)
        before = None
        for i in (1, 2):
            m = run_case(cfg, work / "out" / name)
            store = (pg_rows(server, "scale") if "postgresql" in name else
                     sqlite_rows(work / ("hw.sqlite" if "warehouse" in name else "h.sqlite")))
            added = ({t: store["rows"][t] - before["rows"][t] for t in TABLES}
                     if before else store["rows"])
            print(json.dumps({"case": name, "run": i, "opportunities": size, **m,
                              "rows_added": added, "history_bytes": store["bytes"]}), flush=True)
            before = store


if __name__ == "__main__":
    main()
