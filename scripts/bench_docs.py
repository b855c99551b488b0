"""docs/performance.md's tables from the benchmark's JSON lines (``benchmark.py --docs FILE``).

The page's prose is written by hand; each table sits between ``<!-- BEGIN generated:NAME -->``
and ``<!-- END generated:NAME -->`` and is replaced whole, so regenerating never touches the
prose. Numbers are printed as measured; a target is "met" or "NOT met" by the same numbers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

PHASES = [("pull", "load"), ("rules", "rules"), ("metrics", "metrics"),
          ("history_diff", "history diff"), ("reports", "reports"),
          ("history_store", "history store")]
TARGETS = {"total_1m_s": 8.0, "rss_1m_gib": 1.5, "total_100k_s": 1.5, "growth": 10.5,
           "ratio": 1.0, "incremental_s": 6.0}


def growth(results: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """time(10n) / time(n) per phase and in total, for each 10x step among the sizes run."""
    steps = [(a, b) for a in results for b in results if b == 10 * a]
    out: dict[str, Any] = {"kind": "growth", "target": TARGETS["growth"], "steps": {}}
    for a, b in steps:
        ra, rb = results[a], results[b]
        ratios = {}
        for phase in rb["phases_s"]:
            small = ra["phases_s"].get(phase)
            # a phase of a few milliseconds is all fixed cost: its ratio says nothing
            ratios[phase] = (round(rb["phases_s"][phase] / small, 2)
                             if small and small >= 0.005 else None)
        ratios["total"] = round(rb["total_s"] / ra["total_s"], 2)
        ratios["peak_rss"] = round(rb["peak_rss_mib"] / ra["peak_rss_mib"], 2)
        out["steps"][f"{a}->{b}"] = ratios
    return out


def _s(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v:.2f} s" if v < 10 else f"{v:.1f} s"


def _n(v: int) -> str:
    return f"{v:,}"


def _mib(v: float) -> str:
    return f"{v / 1024:.2f} GiB" if v >= 1024 else f"{v:.0f} MiB"


def _ok(ok: bool | None) -> str:
    return "–" if ok is None else ("met" if ok else "**NOT met**")


def _size_label(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k"


def tables(lines: list[dict[str, Any]]) -> dict[str, str]:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for d in lines:
        by_kind.setdefault(d.get("kind", ""), []).append(d)
    # lines of several runs may be concatenated: the last line of each size counts, and growth
    # is computed again from those
    by_size = {d["opportunities"]: d for d in by_kind.get("size", [])}
    sizes = [by_size[n] for n in sorted(by_size)]
    machine = (by_kind.get("machine") or [{}])[0]
    end = (by_kind.get("end") or [{}])[-1]
    grown = growth(by_size) if by_size else {"steps": {}}
    inc = (by_kind.get("incremental") or [None])[-1]
    out: dict[str, str] = {}

    out["machine"] = (
        f"Measured {machine.get('at', '?')}: {machine.get('cpus', '?')} CPUs, "
        f"{machine.get('memory_gib', '?')} GiB, {machine.get('platform', '?')}, Python "
        f"{machine.get('python', '?')}, pandas {machine.get('pandas', '?')}, pyarrow "
        f"{machine.get('pyarrow', '?')}. Load average (1 min) at the start "
        f"{machine.get('load_avg_1m', '?')}, at the end {end.get('load_avg_1m', '?')}."
    )

    head = ("| opportunities | history rows | findings | " + " | ".join(p for _, p in PHASES)
            + " | other | **total** | CPU | peak RSS | fingerprints |")
    rows = [head, "| " + " | ".join(["---:"] * (len(PHASES) + 8)) + " |"]
    for d in sizes:
        ph = d["phases_s"]
        match = d.get("fingerprints_match_baseline")
        fp = "as baseline" if match else ("no baseline" if match is None else "**CHANGED**")
        rows.append(
            f"| {_n(d['opportunities'])} | {_n(d['history_rows'])} | {_n(d['findings'])} | "
            + " | ".join(_s(ph.get(k)) for k, _ in PHASES)
            + f" | {_s(d.get('other_s'))} | **{_s(d['total_s'])}** | {_s(d.get('cpu_s'))} | "
            f"{_mib(d['peak_rss_mib'])} | {fp} |"
        )
    out["sizes"] = "\n".join(rows)

    rows = ["| opportunities | rules (engine) | DuckDB reference | ratio "
            "| runs (engine / DuckDB) |", "| ---: | ---: | ---: | ---: | --- |"]
    for d in sizes:
        r = d.get("reference")
        if r:
            runs = (", ".join(f"{x:.2f}" for x in r["rules_runs_s"]) + " / "
                    + ", ".join(f"{x:.2f}" for x in r["duckdb_runs_s"]))
            rows.append(f"| {_n(d['opportunities'])} | {_s(r['rules_s'])} | {_s(r['duckdb_s'])} "
                        f"| {r['ratio']:.2f} | {runs} |")
    out["reference"] = "\n".join(rows)

    steps = list(grown["steps"])

    def step(s: str) -> str:
        a, b = s.split("->")
        return f"{_size_label(int(a))} → {_size_label(int(b))}"

    rows = ["| phase | " + " | ".join(step(s) for s in steps) + " | target |",
            "| --- | " + " | ".join(["---:"] * len(steps)) + " | ---: |"]
    for key, label in [*PHASES, ("total", "**total**"), ("peak_rss", "peak RSS")]:
        vals = [grown["steps"][s].get(key) for s in steps]
        cells = [("–" if v is None else (f"**{v:.1f}×**" if v > TARGETS["growth"] and
                                          key != "peak_rss" else f"{v:.1f}×")) for v in vals]
        target = "–" if key == "peak_rss" else f"≤ {TARGETS['growth']}×"
        rows.append(f"| {label} | " + " | ".join(cells) + f" | {target} |")
    out["growth"] = "\n".join(rows)

    if inc:
        ph = inc["phases_s"]
        det = inc.get("pull_detail_s") or {}
        checks = inc.get("checks") or {}
        rows = [
            "| | |", "| --- | ---: |",
            f"| stored snapshot | {_n(inc['opportunities'])} opportunities |",
            f"| changed since the last run (1 %) | {_n(inc['changed'])} |",
            f"| deleted (Recycle Bin + purged) | {inc['deleted']} |",
            f"| new history rows pulled | {_n(inc['history_rows_pulled'])} |",
            f"| API calls made | {inc['api_calls']} |",
            f"| API calls by the formula | {inc['predicted_calls']} |",
            *[f"| {label} | {_s(ph.get(k))} |" for k, label in
              [("pull", "pull + merge (all of it)"), *PHASES[1:]]],
            *[f"| – of which {k.replace('_', ' ')} | {_s(v)} |" for k, v in det.items()],
            f"| **total** | **{_s(inc['total_s'])}** |",
            f"| CPU (all threads) | {_s(inc.get('cpu_s'))} |",
            f"| peak RSS | {_mib(inc['peak_rss_mib'])} |",
            "| checks (bookmark in both queries, merge counts, calls) | "
            + ("all passed" if checks and all(checks.values()) else
               "FAILED: " + ", ".join(k for k, v in checks.items() if not v)) + " |",
        ]
        out["incremental"] = "\n".join(rows)

    big = next((d for d in sizes if d["opportunities"] == 1_000_000), None)
    mid = next((d for d in sizes if d["opportunities"] == 100_000), None)
    worst = max((v for s in grown["steps"].values() for k, v in s.items()
                 if v is not None and k != "peak_rss"), default=None)
    ratios = [d["reference"]["ratio"] for d in sizes if d.get("reference")]
    rows = ["| target (issue 19) | measured | |", "| --- | --- | --- |"]
    if big:
        rows.append(f"| 1M end to end ≤ {TARGETS['total_1m_s']:g} s | {_s(big['total_s'])} | "
                    f"{_ok(big['total_s'] <= TARGETS['total_1m_s'])} |")
        rss = big["peak_rss_mib"] / 1024
        rows.append(f"| peak RSS at 1M ≤ {TARGETS['rss_1m_gib']} GiB | {rss:.2f} GiB | "
                    f"{_ok(rss <= TARGETS['rss_1m_gib'])} |")
    if mid:
        rows.append(f"| 100k end to end ≤ {TARGETS['total_100k_s']} s | {_s(mid['total_s'])} | "
                    f"{_ok(mid['total_s'] <= TARGETS['total_100k_s'])} |")
    if worst is not None:
        rows.append(f"| every phase grows ≤ {TARGETS['growth']}× per 10× data | worst "
                    f"{worst:.1f}× | {_ok(worst <= TARGETS['growth'])} |")
    if ratios:
        rows.append(f"| rules / DuckDB reference ≤ {TARGETS['ratio']:.1f} | "
                    + ", ".join(f"{_size_label(d['opportunities'])} {d['reference']['ratio']:.2f}"
                                for d in sizes if d.get("reference"))
                    + f" | {_ok(max(ratios) <= TARGETS['ratio'])} |")
    if inc:
        at_1m = inc["opportunities"] == 1_000_000
        rows.append(f"| nightly incremental at 1M (1 % changed) ≤ {TARGETS['incremental_s']:g} s"
                    f" | {_s(inc['total_s'])} at {_size_label(inc['opportunities'])} | "
                    + (_ok(inc["total_s"] <= TARGETS["incremental_s"]) if at_1m else "–")
                    + " |")
        rows.append(f"| incremental API calls ∝ changes (formula) | {inc['api_calls']} made, "
                    f"{inc['predicted_calls']} predicted | "
                    f"{_ok(inc['api_calls'] == inc['predicted_calls'])} |")
    judged = [d for d in sizes if d.get("fingerprints_match_baseline") is not None]
    if sizes:
        word = {True: "same", False: "DIFFERENT", None: "no baseline"}
        rows.append("| findings identical to b12a0ae (fingerprints) | "
                    + ", ".join(f"{_size_label(d['opportunities'])} "
                                f"{word[d.get('fingerprints_match_baseline')]}" for d in sizes)
                    + " | " + (_ok(all(d["fingerprints_match_baseline"] for d in judged))
                               if judged else "–") + " |")
    out["targets"] = "\n".join(rows)
    return out


def write_docs(lines: list[dict[str, Any]], doc: Path) -> None:
    text = doc.read_text()
    for name, table in tables(lines).items():
        pattern = re.compile(rf"(<!-- BEGIN generated:{name} -->\n).*?(\n<!-- END generated:"
                             rf"{name} -->)", re.DOTALL)
        if not pattern.search(text):
            raise SystemExit(f"{doc}: no generated:{name} block")
        text = pattern.sub(lambda m, t=table: m.group(1) + t + m.group(2), text)
    doc.write_text(text)
