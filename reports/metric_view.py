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
import re
from typing import Any

from reports.format import human, humanize, is_missing, is_number, number, oneline, pct

META_KEYS = ("name", "definition", "title", "unit", "description")
#: top-level keys that describe the metrics rather than being one
SKIP_TOP = ("as_of", "schema_version", "timezone", "periods", "metric_names")
#: keys inside a metric that only steer its computation or display
SKIP_KEYS = ("stages", "weights")
PERCENT_HINTS = ("rate", "share", "ratio", "conversion", "percent", "pct", "fraction")
BAR_HINTS = (*PERCENT_HINTS, "score")
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


_SNAKE_KEY = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)+")


def _label(key: Any, labels: dict[str, str]) -> str:
    """Display name of a key: owner name, stage label, or a snake_case metric key in words."""
    text = labels.get(str(key), oneline(key))
    return humanize(text) if _SNAKE_KEY.fullmatch(text) else text


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
    numeric = [
        all(is_number(r.get(c)) or is_missing(r.get(c)) for _, r in rows_in) for c in columns
    ]
    return {
        "title": title,
        "key_title": key_title,
        "numeric": numeric,
        "columns": [humanize(c) for c in columns],
        "bar_column": humanize(bar_col) if bar_col else None,
        "rows": rows,
        "more": max(len(rows_in) - MAX_ROWS, 0),
    }


MAX_COLUMNS = 8  # wider than this, a table of dicts is split into one table per row key
FLAGS = ("available", "reason")


def _flatten(row: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
    """One table row: nested dicts of scalars become "parent · child" columns; deeper
    structures (dicts of dicts, lists of dicts) are returned to be shown as their own tables."""
    flat: dict[str, Any] = {}
    subs: list[tuple[str, Any]] = []
    for c, x in row.items():
        if _is_scalar(x):
            flat[c] = x
        elif isinstance(x, list | tuple) and all(_is_scalar(i) for i in x):
            flat[c] = ", ".join(oneline(i) for i in x)
        elif isinstance(x, dict) and x and all(_is_scalar(i) for i in x.values()):
            for cc, xx in x.items():
                flat[f"{c} · {cc}"] = xx
        elif isinstance(x, dict | list | tuple) and not x:
            flat[c] = None
        else:
            subs.append((c, x))
    return flat, subs


def _transpose(table: dict, outer: list[str], flat_rows: list[dict], columns: list[str]) -> dict:
    """A wide table with few rows (e.g. two periods × ten figures) reads better turned."""
    rows = [
        {"key": humanize(c), "cells": [_cell(c, r.get(c)) for r in flat_rows], "width": 0.0}
        for c in columns
    ]
    return {
        **table,
        "key_title": "",
        "columns": outer,
        "numeric": [True] * len(outer),
        "bar_column": None,
        "rows": rows,
    }


def _blocks(
    view: dict,
    title: str,
    value: Any,
    labels: dict[str, str],
    share: bool,
    depth: int = 0,
    score: bool = False,
) -> None:
    """Append facts / charts / tables for one value of a metric to ``view``."""
    if _is_scalar(value):
        shown = pct(value) if share and _is_share(value) else number(value)
        view["facts"].append({"label": title, "value": shown})
        return
    if isinstance(value, list | tuple):
        if value and all(isinstance(x, dict) for x in value):
            rows = [_flatten(x)[0] for x in value]
            view["tables"].append(_table(title, [(None, r) for r in rows], None, labels))
        else:
            text = ", ".join(_cell("", x) for x in value)
            view["facts"].append({"label": title, "value": text or "—"})
        return
    if not isinstance(value, dict):
        view["facts"].append({"label": title, "value": _cell("", value)})
        return
    if not value:
        view["facts"].append({"label": title, "value": "—"})
        return
    if all(_is_scalar(x) for x in value.values()):
        if any(is_number(x) for x in value.values()) and all(
            is_number(x) or is_missing(x) for x in value.values()
        ):
            score = score or "score" in title.lower()
            view["charts"].append(_chart(title, value, share, labels, score))
        else:
            rows = [(k, {"value": x}) for k, x in value.items()]
            view["tables"].append(_table(title, rows, None, labels))
        return
    # a mapping of rows: flatten each; split per key when it would be too wide
    flat_rows, subs = [], []
    for k, row in value.items():
        flat, nested = _flatten(row if isinstance(row, dict) else {"value": row})
        flat_rows.append((k, flat))
        subs += [(k, name, x) for name, x in nested]
    columns: list[str] = []
    for _, r in flat_rows:
        columns += [c for c in r if c not in columns]
    # flattened nested dicts ("lead · stays") read better as one table per row key
    nested_cols = any(" · " in c for c in columns)
    if len(columns) > MAX_COLUMNS and nested_cols and depth < 3:
        for k, row in value.items():
            _blocks(view, f"{title}: {_label(k, labels)}", row, labels, share, depth + 1, score)
        return
    if columns:
        table = _table(title, flat_rows, "", labels)
        if len(columns) > 5 and len(columns) > len(flat_rows):
            outer = [_label(k, labels) for k, _ in flat_rows]
            table = _transpose(table, outer, [r for _, r in flat_rows], columns)
        view["tables"].append(table)
    for k, name, x in subs:
        if depth < 3:
            sub_title = f"{humanize(name)}: {_label(k, labels)}"
            sub_share = share or _hint(name, PERCENT_HINTS)
            _blocks(view, sub_title, x, labels, sub_share, depth + 1, score)
        else:
            view["facts"].append({"label": humanize(name), "value": _cell(name, x)})


def metric_view(key: str, metric: dict[str, Any], labels: dict[str, str] | None = None) -> dict:
    """One metric as {key, title, definition, facts, charts, tables}."""
    labels = labels or {}
    title = metric.get("title") or metric.get("name") or key
    view: dict[str, Any] = {
        "key": key,
        "title": humanize(title),
        "definition": human(metric.get("definition") or ""),
        "facts": [],
        "charts": [],
        "tables": [],
    }
    if metric.get("available") is False:
        view["facts"].append(
            {"label": "Not available", "value": oneline(metric.get("reason")) or "—"}
        )
        return view
    metric_is_share = _hint(key, PERCENT_HINTS)
    for k, v in metric.items():
        if k in META_KEYS or k in FLAGS or k in SKIP_KEYS:
            continue
        if k.endswith("_available") and v is not False:
            continue
        if k.endswith("_reason"):
            continue
        if k.endswith("_available"):  # a part of the metric that could not be computed
            why = metric.get(k[: -len("_available")] + "_reason")
            view["facts"].append(
                {
                    "label": humanize(k[: -len("_available")]),
                    "value": "not available" + (f" ({oneline(why)})" if why else ""),
                }
            )
            continue
        name = humanize(k)
        if _is_scalar(v):
            share = _hint(k, PERCENT_HINTS) or (metric_is_share and k in ("value", "overall"))
            view["facts"].append(
                {"label": name, "value": pct(v) if share and _is_share(v) else number(v)}
            )
        else:
            share = _hint(k, PERCENT_HINTS) or metric_is_share
            _blocks(view, name, v, labels, share, 0, _hint(key, ("score",)))
    return view


def periods_line(metrics: dict[str, Any]) -> str:
    """ "2026-Q3 (2026-07-01 – 2026-09-30) · 2026-Q4 (...)" from metrics["periods"], if any."""
    out = []
    for p in (metrics or {}).get("periods") or []:
        if isinstance(p, dict):
            span = (
                f" ({oneline(p.get('start'))} – {oneline(p.get('end'))})" if p.get("start") else ""
            )
            out.append(f"{oneline(p.get('label') or p.get('key'))}{span}")
    return " · ".join(out)


def metric_views(metrics: dict[str, Any], labels: dict[str, str] | None = None) -> list[dict]:
    """Every metric, in ``metric_names`` order when given; loose top-level values under "Other"."""
    metrics = metrics or {}
    order = [n for n in (metrics.get("metric_names") or []) if n in metrics]
    keys = list(
        dict.fromkeys([*(k for k in metrics if k not in order and k == "counts"), *order, *metrics])
    )
    views = []
    loose: dict[str, Any] = {}
    for key in keys:
        m = metrics[key]
        if key in SKIP_TOP:
            continue
        if isinstance(m, dict):
            views.append(metric_view(str(key), m, labels))
        else:
            loose[str(key)] = m
    if loose:
        views.append(metric_view("other", {"name": "other", **loose}, labels))
    return views
