"""Render an AuditRun into the report files of the output folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from auditor.run import AuditRun
from auditor.stages import STAGE_LABELS
from reports.machine import write_json, write_violations_csv, write_violations_json

TEMPLATES = Path(__file__).parent / "templates"


def environment(template_dir: Path | None = None) -> jinja2.Environment:
    """Jinja environment with autoescape for HTML; user templates first, then the shipped ones.

    A user template may extend a shipped one as ``{% extends "default:report.html.j2" %}``.
    """
    shipped = jinja2.FileSystemLoader(str(TEMPLATES))
    loaders: list[jinja2.BaseLoader] = []
    if template_dir is not None:
        loaders.append(jinja2.FileSystemLoader(str(template_dir)))
    loaders.append(shipped)
    loader = jinja2.PrefixLoader({"default": shipped}, delimiter=":")
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader([loader, *loaders]),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "htm", "xml", "html.j2"), default_for_string=True
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["stage_label"] = lambda s: STAGE_LABELS.get(str(s), str(s)) if s else "—"
    env.filters["money"] = _money
    return env


def _money(v: Any) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NA:
        return "—"
    return f"{float(v):,.0f}"


def report_context(run: AuditRun) -> dict[str, Any]:
    """The data every template sees (plain Python values, no DataFrames)."""
    res = run.result
    v = res.violations
    docs = {r.code: r.describe() for r in res.rules}
    sev_rank = v["severity"].astype(str).map({"error": 0, "warning": 1, "info": 2})
    worst = v.assign(_r=sev_rank, _a=v["amount"].fillna(0)).sort_values(
        ["_r", "_a"], ascending=[True, False], kind="stable"
    )
    limit = run.config.report.max_deals
    deals = worst.head(limit).astype(object)
    deals = deals.where(deals.notna(), None).to_dict(orient="records")
    for d in deals:
        d["fix"] = docs.get(d["rule_code"], {}).get("fix", "")
    by_rule = (
        v.groupby("rule_code", observed=True).size().rename("count").reset_index()
        if len(v)
        else pd.DataFrame(columns=["rule_code", "count"])
    )
    by_rule_rows = [
        {
            "code": r.code,
            "name": r.name,
            "severity": r.severity,
            "count": int(by_rule.loc[by_rule["rule_code"] == r.code, "count"].sum()),
        }
        for r in res.rules
    ]
    owners = run.snapshot.owners.set_index(run.snapshot.owners["id"].astype(str))["name"]
    by_owner = v["owner_id"].astype(str).fillna("(none)").value_counts()
    by_owner_rows = [
        {"owner_id": k, "owner": str(owners.get(k, k)), "count": int(c)}
        for k, c in by_owner.items()
    ]
    cov = res.coverage.to_dict(orient="records") if len(res.coverage) else []
    return {
        "title": run.config.report.title,
        "facts": run.facts(),
        "score": run.score,
        "metrics": run.metrics,
        "total": int(len(v)),
        "by_rule": by_rule_rows,
        "by_owner": by_owner_rows,
        "deals": deals,
        "deals_shown": len(deals),
        "deals_limit": limit,
        "coverage": cov,
        "rejected": [r.to_dict() for r in run.snapshot.meta.rejected[:limit]],
        "suppressions": res.suppressions,
        "history": run.history,
        "docs": docs,
    }


def write_reports(run: AuditRun, out_dir: Path) -> list[Path]:
    """Write the configured formats into ``out_dir``; returns the files written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    formats = run.config.report.formats
    written: list[Path] = []
    ctx = report_context(run)
    tdir = run.config.report.template_dir
    env = environment(run.config.resolve(tdir) if tdir else None)
    if "html" in formats:
        html = env.get_template("report.html.j2").render(**ctx)
        (out_dir / "report.html").write_text(html, encoding="utf-8")
        written.append(out_dir / "report.html")
    if "md" in formats:
        md = env.get_template("report.md.j2").render(**ctx)
        (out_dir / "report.md").write_text(md, encoding="utf-8")
        written.append(out_dir / "report.md")
    if "csv" in formats:
        written.append(write_violations_csv(run.result.violations, out_dir / "violations.csv"))
    if "json" in formats:
        written.append(write_violations_json(run.result.violations, out_dir / "violations.json"))
        written.append(write_json(run.metrics, out_dir / "metrics.json"))
    return written
