"""Turn the metrics dict into display blocks, whatever shape each metric has.

The metrics module grows independently of the reports, so nothing here knows a metric by name.
Each metric is a dict with ``name`` and ``definition`` plus values; values are shown by shape:

- a scalar → a fact line ("Median days: 42");
- a dict of numbers → a bar chart (one bar per key, in the given order);
- a dict of dicts, or a list of dicts → a table (columns = union of the inner keys), with a bar
  next to the first rate / share / score column;
- anything deeper → compact JSON text in a cell.

Keys that are owner ids or stage names are shown as names / labels. Shares (0..1) whose key says
rate / share / ratio / conversion are shown as percentages.
"""

from __future__ import annotations

import json
from typing import Any

from reports.format import humanize, is_missing, is_number, number, oneline, pct

META_KEYS = ("name", "definition", "title", "unit", "description")
SKIP_TOP = ("as_of",)
PERCENT_HINTS = ("rate", "share", "ratio", "conversion", "percent", "pct", "fraction")
BAR_HINTS = (*PERCENT_HINTS, "score", "median", "mean", "count", "coverage")
MAX_ROWS = 40


def _hint(key: Any, hints: tuple[str, ...]) -> bool:
    k = str(key).casefold()
    return any(h in k for h in hints)


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, str | int | float | bool) or is_missing(v)


def _is_share(v: Any) -> bool:
    return is_number(v) and 0.0 <= float(v) <= 1.0


def _cell(key: Any, v: Any) -> str:
    if _is_scalar(v):
        if _hint(key, PERCENT_HINTS) and _is_share(v):
            return pct(v)
        return number(v)
    try:
        return oneline(json.dumps(v, ensure_ascii=False, default=str, sort_keys=True))
    except (TypeError, ValueError):
        return oneline(v)


def _label(key: Any, labels: dict[str, str]) -> str:
    return labels.get(str(key), oneline(key))


def _chart(
    title: str, data: dict[Any, Any], percent: bool, labels: dict[str, str], score: bool = False
) -> dict:
    items = list(data.items())
    nums = [float(v) for _, v in items if is_number(v)]
    percent = percent and all(0.0 <= x <= 1.0 for x in nums)
    top = 1.0 if percent else max((abs(x) for x in nums), default=0.0)
    if score and not percent and all(0.0 <= x <= 100.0 for x in nums):
        top = 100.0  # a 0..100 score: bars on the absolute scale, not relative to the best
    rows = []
    for k, v in items[:MAX_ROWS]:
        width = 0.0
        if is_number(v) and top > 0:
            width = round(100.0 * abs(float(v)) / top, 1)
        rows.append(
            {
                "label": _label(k, labels),
                "value": pct(v) if percent and is_number(v) else number(v),
                "width": width,
            }
        )
    return {"title": title, "rows": rows, "more": max(len(items) - MAX_ROWS, 0)}


def _table(title: str, rows_in: list[tuple[Any, dict]], key_title: str | None, labels) -> dict:
    columns: list[str] = []
    for _, row in rows_in:
        for c in row:
            if c not in columns:
                columns.append(c)
    bar_col = next(
        (
            c
            for c in columns
            if _hint(c, BAR_HINTS) and any(is_number(r.get(c)) for _, r in rows_in)
        ),
        None,
    )
    top = 1.0
    if bar_col is not None:
        vals = [abs(float(r[bar_col])) for _, r in rows_in if is_number(r.get(bar_col))]
        shares = _hint(bar_col, PERCENT_HINTS) and all(v <= 1.0 for v in vals)
        top = 1.0 if shares else max(vals, default=0.0)
    rows = []
    for key, row in rows_in[:MAX_ROWS]:
        cells = [_cell(c, row.get(c)) for c in columns]
        width = 0.0
        if bar_col is not None and is_number(row.get(bar_col)) and top > 0:
            width = round(min(100.0, 100.0 * abs(float(row[bar_col])) / top), 1)
        rows.append(
            {
                "key": _label(key, labels) if key is not None else None,
                "cells": cells,
                "width": width,
            }
        )
    return {
        "title": title,
        "key_title": key_title,
        "columns": [humanize(c) for c in columns],
        "bar_column": humanize(bar_col) if bar_col else None,
        "rows": rows,
        "more": max(len(rows_in) - MAX_ROWS, 0),
    }


def metric_view(key: str, metric: dict[str, Any], labels: dict[str, str] | None = None) -> dict:
    """One metric as {key, title, definition, facts, charts, tables}."""
    labels = labels or {}
    title = metric.get("title") or metric.get("name") or key
    view: dict[str, Any] = {
        "key": key,
        "title": humanize(title),
        "definition": oneline(metric.get("definition") or ""),
        "facts": [],
        "charts": [],
        "tables": [],
    }
    metric_is_share = _hint(key, PERCENT_HINTS)
    for k, v in metric.items():
        if k in META_KEYS:
            continue
        name = humanize(k)
        if _is_scalar(v):
            share = _hint(k, PERCENT_HINTS) or (metric_is_share and k in ("value", "overall"))
            view["facts"].append(
                {"label": name, "value": pct(v) if share and _is_share(v) else number(v)}
            )
        elif isinstance(v, dict) and not v:
            view["facts"].append({"label": name, "value": "—"})
        elif isinstance(v, dict) and all(_is_scalar(x) for x in v.values()):
            if any(is_number(x) for x in v.values()) and all(
                is_number(x) or is_missing(x) for x in v.values()
            ):
                share = _hint(k, PERCENT_HINTS) or metric_is_share
                score = _hint(k, ("score",)) or _hint(key, ("score",))
                view["charts"].append(_chart(name, v, share, labels, score))
            else:
                rows = [(kk, {"value": vv}) for kk, vv in v.items()]
                view["tables"].append(_table(name, rows, None, labels))
        elif isinstance(v, dict):
            rows = [(kk, vv if isinstance(vv, dict) else {"value": vv}) for kk, vv in v.items()]
            view["tables"].append(_table(name, rows, "", labels))
        elif isinstance(v, list | tuple):
            if v and all(isinstance(x, dict) for x in v):
                view["tables"].append(_table(name, [(None, x) for x in v], None, labels))
            else:
                view["facts"].append({"label": name, "value": ", ".join(_cell(k, x) for x in v)})
        else:
            view["facts"].append({"label": name, "value": _cell(k, v)})
    return view


def metric_views(metrics: dict[str, Any], labels: dict[str, str] | None = None) -> list[dict]:
    """Every metric in the dict, in its order; loose top-level values gathered under "Other"."""
    views = []
    loose: dict[str, Any] = {}
    for key, m in (metrics or {}).items():
        if key in SKIP_TOP:
            continue
        if isinstance(m, dict):
            views.append(metric_view(str(key), m, labels))
        else:
            loose[str(key)] = m
    if loose:
        views.append(metric_view("other", {"name": "other", **loose}, labels))
    return views
