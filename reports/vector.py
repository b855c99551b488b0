"""Text formatting over whole columns: a formatter from reports.format applied to every value,
with values it would leave unchanged recognised by one Arrow regex (C speed) instead of a
Python call each. Used where thousands of rows are formatted (digests, the explorer)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from markupsafe import escape

from reports.format import safe_url

# What formatters leave as they are: one-line text without control characters, words split by
# single spaces (str.split()'s whitespace excluded, see plain_words), and plain http(s) URLs.
WS = r"\x00-\x20\x7f\x85\xa0\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
NO_HTML_SPECIAL = "^[^&<>\"']*$"
PLAIN_URL = r"^https?://[A-Za-z0-9.-]+(?::[0-9]+)?(?:/[A-Za-z0-9._~/?#=&%+:@!$,;*-]*)?$"


def arrow_text(s: pd.Series) -> pa.Array:
    """Text values as an Arrow array; anything that is not text becomes null (slow path)."""
    if isinstance(s.dtype, pd.StringDtype):
        return pa.array(s.array, type=pa.large_string())
    try:  # text and missing values only (the usual case): converted in C
        return pa.array(s.to_numpy(dtype=object), type=pa.large_string(), from_pandas=True)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return pa.array([x if isinstance(x, str) else None for x in s.tolist()], pa.large_string())


def map_text(values: pd.Series, fn: Callable[[Any], str], plain: str) -> np.ndarray:
    """``fn`` applied to each value, as an object array. Values matching the regex ``plain``
    (which ``fn`` is known to return unchanged) skip the Python call."""
    arr = arrow_text(values)
    out = np.empty(len(arr), dtype=object)
    if not len(arr):
        return out
    ok = pc.fill_null(pc.match_substring_regex(arr, plain), False)
    fast = np.asarray(ok.to_numpy(zero_copy_only=False), dtype=bool)
    out[fast] = np.asarray(arr.filter(ok).to_pylist(), dtype=object)
    slow = np.flatnonzero(~fast)
    if len(slow):
        raw = values.iloc[slow].to_numpy(dtype=object, na_value=None)
        out[slow] = np.array([fn(x) for x in raw] + [None], dtype=object)[:-1]
    return out


def escape_text(value: Any) -> str:
    return str(escape(value))


def plain_words(exclude: str = "") -> str:
    """Regex of one plain line (words split by single spaces) without the characters
    ``exclude`` (a regex character-class body)."""
    return rf"^[^{WS}{exclude}]+(?: [^{WS}{exclude}]+)*$"


def map_texts(
    values: pd.Series, fns: dict[str, Callable[[Any], str]], plain: str
) -> dict[str, list[Any]]:
    """Several formatters of the same column at once (HTML and text forms of a name): one
    regex pass finds the values every formatter leaves unchanged; the others are formatted in
    Python, once per formatter. Returns a list per formatter name."""
    arr = arrow_text(values)
    n = len(arr)
    if not n:
        return {k: [] for k in fns}
    ok = pc.fill_null(pc.match_substring_regex(arr, plain), False)
    fast = np.asarray(ok.to_numpy(zero_copy_only=False), dtype=bool)
    if fast.all():
        shared = arr.to_pylist()
        return {k: shared for k in fns}
    base = np.empty(n, dtype=object)
    base[fast] = np.asarray(arr.filter(ok).to_pylist() + [None], dtype=object)[:-1]
    slow = np.flatnonzero(~fast)
    raw = values.iloc[slow].to_numpy(dtype=object, na_value=None).tolist()
    out = {}
    for k, fn in fns.items():
        col = base.copy()
        col[slow] = np.asarray([fn(x) for x in raw] + [None], dtype=object)[:-1]
        out[k] = col.tolist()
    return out


def safe_urls(values: pd.Series) -> np.ndarray:
    """:func:`reports.format.safe_url` of each value, "" where it gives None."""
    return map_text(values, lambda u: safe_url(u) or "", PLAIN_URL)
