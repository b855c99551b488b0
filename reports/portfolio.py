"""The portfolio overview of a many-source run: one line per source, written as JSON, Markdown
and HTML next to the per-source report folders.

Numbers come from each source's own run (score, findings, open amount on flagged deals — the
assessment's "at risk" figure), so the overview always equals the per-source reports.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from markupsafe import escape

COLUMNS = ("source", "type", "status", "records", "findings", "score", "at_risk", "report")


def _num(v: Any, fmt: str = ",") -> str:
    return "-" if v is None else format(v, fmt)


def _md_cell(v: Any) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def write_portfolio(rows: list[dict[str, Any]], out: Path, *, as_of: str | None) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    ok = [r for r in rows if r["status"] == "success"]
    totals = {
        "sources": len(rows),
        "succeeded": len(ok),
        "failed": len(rows) - len(ok),
        "records": sum(r["records"] or 0 for r in ok),
        "findings": sum(r["findings"] or 0 for r in ok),
        "at_risk": sum(r["at_risk"] or 0.0 for r in ok),
    }
    doc = {"as_of": as_of, "totals": totals, "sources": rows}
    paths = [out / "portfolio.json", out / "portfolio.md", out / "portfolio.html"]
    paths[0].write_text(json.dumps(doc, indent=2, default=str) + "\n", encoding="utf-8")

    md = [f"# Portfolio overview{f' as of {as_of}' if as_of else ''}", "",
          f"{totals['succeeded']} of {totals['sources']} sources audited; "
          f"{_num(totals['records'])} opportunities, {_num(totals['findings'])} findings, "
          f"{_num(totals['at_risk'], ',.0f')} open amount on flagged deals.", "",
          "| source | type | status | opportunities | findings | score | open amount on "
          "flagged deals | report |", "| --- | --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        status = r["status"] if r["status"] == "success" else f"failed: {r['error']}"
        md.append("| " + " | ".join(_md_cell(x) for x in (
            r["source"], r["type"], status, _num(r["records"]), _num(r["findings"]),
            _num(r["score"], ".1f"), _num(r["at_risk"], ",.0f"),
            f"[{r['source']}/]({r['report']})" if r["report"] else "-")) + " |")
    paths[1].write_text("\n".join(md) + "\n", encoding="utf-8")

    cells = []
    for r in rows:
        link = (f'<a href="{escape(r["report"])}">report</a>' if r["report"] else "-")
        status = "success" if r["status"] == "success" else f"failed: {escape(r['error'])}"
        cells.append(
            f"<tr><td>{escape(r['source'])}</td><td>{escape(r['type'])}</td><td>{status}</td>"
            f"<td align=right>{_num(r['records'])}</td><td align=right>{_num(r['findings'])}</td>"
            f"<td align=right>{_num(r['score'], '.1f')}</td>"
            f"<td align=right>{_num(r['at_risk'], ',.0f')}</td><td>{link}</td></tr>")
    title = f"Portfolio overview{f' as of {escape(as_of)}' if as_of else ''}"
    paths[2].write_text(
        f"<!doctype html><html><head><meta charset=utf-8><title>{title}</title></head><body>"
        f"<h1>{title}</h1><p>{totals['succeeded']} of {totals['sources']} sources audited; "
        f"{_num(totals['records'])} opportunities, {_num(totals['findings'])} findings, "
        f"{_num(totals['at_risk'], ',.0f')} open amount on flagged deals.</p>"
        "<table border=1 cellpadding=4 cellspacing=0><tr><th>source</th><th>type</th>"
        "<th>status</th><th>opportunities</th><th>findings</th><th>score</th>"
        "<th>open amount on flagged deals</th><th>report</th></tr>"
        + "".join(cells) + "</table></body></html>\n", encoding="utf-8")
    return paths
