"""explorer.html: every finding in one self-contained page (data embedded, vanilla script).

The findings are embedded as column arrays, repeated texts (owners, teams, stages, rules,
currencies) as small dictionaries indexed per row, so 100,000 findings stay about 20 MB at
most and load offline. The JSON sits in a ``<script type="application/json">`` element with
``<``, ``>`` and ``&`` escaped as ``\\u003c`` etc., so no CRM text can close the element.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
from markupsafe import Markup

from auditor.derived import positions
from auditor.results import SEVERITY_RANK, AuditRun
from auditor.stages import STAGE_LABELS
from reports.context import fix_now_mask, owner_table, process_findings, rule_docs
from reports.format import human, oneline, rule_label, sentence
from reports.vector import safe_urls

_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026",
            0x2028: "\\u2028", 0x2029: "\\u2029"}  # fmt: skip


def embed_json(data: Any) -> str:
    """JSON safe inside an HTML <script> element (no ``</script>``, no ``<!--``)."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).translate(_ESCAPES)


def _dictionary(values: pd.Series) -> tuple[list[int], list[str]]:
    codes, uniques = pd.factorize(values.astype(object).fillna(""), sort=True)
    return codes.tolist(), [oneline(u) for u in uniques]


def _human_texts(values: pd.Series) -> list[str]:
    """human() per distinct text (messages repeat), not per row."""
    codes, uniques = pd.factorize(values.astype(object).fillna(""))
    texts = np.array([human(u) for u in uniques], dtype=object)
    return texts[codes].tolist() if len(codes) else []


def explorer_data(run: AuditRun, max_rows: int) -> dict[str, Any]:
    """Column arrays of the findings, fix-now first, then by severity and amount."""
    todo = run.result.violations
    history = process_findings(run)
    fix = np.concatenate(
        [fix_now_mask(run).to_numpy(dtype=bool), np.zeros(len(history), dtype=bool)]
    )
    v = pd.concat([todo, history[todo.columns.intersection(history.columns)]], ignore_index=True)
    order = pd.DataFrame(
        {
            "fix": ~fix,
            "sev": v["severity"].astype(str).map(SEVERITY_RANK).fillna(1).to_numpy(),
            "amount": -v["amount"].astype("Float64").fillna(0.0).astype(float).to_numpy(),
        }
    ).sort_values(["fix", "sev", "amount"], kind="stable")
    take = order.index.to_numpy()[:max_rows]
    sub = v.iloc[take]
    fix = fix[take]
    opp = run.snapshot.opportunities
    pos = positions(opp["id"], sub["opportunity_id"])
    ok = pos >= 0
    safe_pos = np.where(ok, pos, 0)
    currency = pd.Series(opp["currency"].astype(object).to_numpy()[safe_pos]).where(ok, None)
    owners = owner_table(run)
    oid = sub["owner_id"].astype(object)
    owner_name = oid.map(owners["name"]).fillna(oid).fillna("(no owner)")
    team = oid.map(owners["team"]).fillna("(no team)")
    raw_stage = sub["stage"].astype(object)
    stage = raw_stage.map(STAGE_LABELS).fillna(raw_stage)
    docs = rule_docs(run)
    codes = sorted(docs)
    rule_idx = sub["rule_code"].astype(str).map({c: i for i, c in enumerate(codes)}).fillna(-1)
    cols: dict[str, Any] = {}
    for name, series in (("owner", owner_name), ("team", team), ("stage", stage),
                         ("currency", currency), ("severity", sub["severity"])):  # fmt: skip
        cols[name], cols[name + "_values"] = _dictionary(series)
    urls = safe_urls(sub["url"])
    amount = sub["amount"].astype("Float64").astype(object)
    return {
        "total": int(len(v)),
        "rows": int(len(sub)),
        "rules": [
            {
                "code": c,
                "name": rule_label(docs[c].get("name", c)),
                "fix": sentence(human(docs[c].get("fix"))),
            }
            for c in codes
        ],
        "rule": rule_idx.astype(int).tolist(),
        "deal": sub["opportunity_name"].astype(object).fillna(sub["opportunity_id"]).tolist(),
        "deal_id": sub["opportunity_id"].astype(str).tolist(),
        "account": sub["account_name"].astype(object).fillna("").tolist(),
        "url": urls.tolist(),  # http(s) links only
        "amount": [None if pd.isna(a) else float(a) for a in amount],
        "message": _human_texts(sub["message"]),
        "fix_now": fix.astype(int).tolist(),
        **cols,
    }


def explorer_context(run: AuditRun, base: dict[str, Any]) -> dict[str, Any]:
    data = explorer_data(run, run.config.report.explorer_max_rows)
    # Markup: embed_json has escaped every character that could end the <script> element
    # (HTML-escaping would corrupt the JSON instead)
    return {
        **base,
        "data_json": Markup(embed_json(data)),
        "shown": data["rows"],
        "all": data["total"],
    }
