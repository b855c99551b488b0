"""Vectorized parsers for CSV cells: dates, timestamps, amounts, booleans, numbers.

Every parser takes a column of stripped strings (missing = NA) and returns the parsed column plus
a boolean mask of cells that held text but could not be parsed. The connector turns those masks
into rejected rows; nothing here loops over rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

from connectors.file_dates import is_slash, parse_slash

DEFAULT_TRUE = ("true", "yes", "y", "1", "t")
DEFAULT_FALSE = ("false", "no", "n", "0", "f")

# Date forms tried after ISO 8601, in order. None of them is ambiguous: "%d.%m.%Y" is the
# dotted European form, which nobody writes month-first.
_UNAMBIGUOUS_FORMATS = (
    "%d.%m.%Y",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y %H:%M:%S",
    "%d %b %Y",
    "%d %B %Y",
    "%b %d, %Y",
    "%B %d, %Y",
    "%d-%b-%Y",
    "%d-%b-%y",
)
# "03/04/2017" is 3 April or March 4: only parsed once ``dayfirst`` says which (the connector
# decides it per file, see connectors.file_dates).
_AWARE_RE = r"\d[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}:?\d{2})$"

_SYMBOLS = {"€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR", "₩": "KRW", "₽": "RUB", "$": None}
_CUR = r"[A-Za-z]{3}|[$€£¥₹₩₽]"
_AMOUNT_RE = (
    r"^(?P<open>\()?\s*(?P<sign1>[-+])?\s*(?P<cur1>" + _CUR + r")?\s*(?P<sign2>[-+])?\s*"
    r"(?P<num>[0-9][0-9.,' \u00a0\u202f]*|[.,][0-9]+)\s*(?P<cur2>" + _CUR + r")?\s*"
    r"(?P<close>\))?\s*(?P<sign3>-)?$"
)


class DateOrderUnknown(Exception):
    """A slash date like 03/04/2017 was found and no day/month order is configured.

    Internal: the connector catches it and raises a SourceDataError naming file, row and column.
    """

    def __init__(self, index: object, value: str) -> None:
        super().__init__(value)
        self.index = index
        self.value = value


def parse_dates(
    s: pd.Series,
    *,
    fmt: str | None,
    dayfirst: bool | None,
    tz: str,
    aware: bool,
) -> tuple[pd.Series, pd.Series]:
    """Parse a column of date/time text.

    ``aware=True``: returns tz-aware UTC timestamps (naive text is read as local time in ``tz``).
    ``aware=False``: returns naive calendar dates at midnight (aware text is first converted to
    ``tz``). The second return value marks non-empty cells that could not be parsed.
    Raises :class:`DateOrderUnknown` when a day/month-ambiguous form is found and neither
    ``fmt`` nor ``dayfirst`` is set (the caller adds file / row / column to the message).
    """
    present = s.notna()
    naive = pd.Series(pd.NaT, index=s.index, dtype="datetime64[us]")
    utc = pd.Series(pd.NaT, index=s.index, dtype="datetime64[us, UTC]")
    if fmt:
        parsed = pd.to_datetime(s[present], format=fmt, errors="coerce", utc="%z" in fmt)
        if "%z" in fmt:
            utc.loc[present] = parsed
        else:
            naive.loc[present] = parsed
    else:
        is_aware = present & s.str.contains(_AWARE_RE, regex=True, na=False)
        if is_aware.any():
            utc.loc[is_aware] = pd.to_datetime(
                s[is_aware], format="ISO8601", errors="coerce", utc=True
            )
        todo = present & ~is_aware
        slash = todo & is_slash(s)
        if slash.any():
            if dayfirst is None:
                first = slash.idxmax()
                raise DateOrderUnknown(first, str(s[first]))
            naive.loc[slash] = parse_slash(s, slash, dayfirst)[slash]
        rest = todo & ~slash
        if rest.any():
            naive.loc[rest] = pd.to_datetime(s[rest], format="ISO8601", errors="coerce")
            _fill(naive, s, rest & naive.isna(), list(_UNAMBIGUOUS_FORMATS))
    if aware:
        # a wall time that occurs twice (DST ends) is read as standard time; one that never
        # occurs (DST starts) is moved forward: both are real times, not parse failures
        local = naive.dt.tz_localize(
            tz, ambiguous=np.zeros(len(naive), dtype=bool), nonexistent="shift_forward"
        )
        out = utc.where(utc.notna(), local.dt.tz_convert("UTC"))
    else:
        from_utc = utc.dt.tz_convert(tz).dt.tz_localize(None).astype("datetime64[us]")
        out = naive.where(naive.notna(), from_utc).dt.normalize()
    return out, present & out.isna()


def _fill(target: pd.Series, s: pd.Series, mask: pd.Series, formats: list[str]) -> None:
    """Try each format on the still-unparsed cells of ``mask`` (one vectorized pass each)."""
    for fmt in formats:
        todo = mask & target.isna()
        if not todo.any():
            return
        target.loc[todo] = pd.to_datetime(s[todo], format=fmt, errors="coerce")


def parse_amounts(
    s: pd.Series, *, decimal: str, thousands: str | None
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Parse money text: ``$1,200.50``, ``1.200,50`` (decimal=","), ``(100)``, ``€ 12``, ``12 EUR``.

    Returns (Float64 amount, currency code found in the text or NA, failed mask). A thousands
    separator must group digits in threes, so ``1.200,50`` with decimal "." fails instead of
    silently becoming 1.2005. Spaces, no-break spaces and apostrophes group digits as well
    (``1 200,50``, ``1'200.50``) under the same rule.
    """
    if thousands is None:
        thousands = "," if decimal == "." else "."
    present = s.notna()
    parts = s.str.extract(_AMOUNT_RE)
    # spaces and apostrophes group digits too, so they must group in threes like `thousands`
    num = parts["num"].str.strip().str.replace(r"[ '\u00a0\u202f]+", thousands, regex=True)
    t, d = re.escape(thousands), re.escape(decimal)
    grouped = num.str.fullmatch(rf"(?:\d+|\d{{1,3}}(?:{t}\d{{3}})+)(?:{d}\d+)?|{d}\d+", na=False)
    plain = num.str.replace(thousands, "", regex=False).str.replace(decimal, ".", regex=False)
    value = pd.to_numeric(plain.where(grouped), errors="coerce").astype("Float64")
    has_open, has_close = parts["open"].notna(), parts["close"].notna()
    signs = parts[["sign1", "sign2", "sign3"]]
    n_minus = (signs == "-").sum(axis=1)
    n_signs = signs.notna().sum(axis=1)
    cur1, cur2 = parts["cur1"], parts["cur2"]
    ok = (
        grouped
        & (has_open == has_close)
        & (n_signs <= 1)
        & ~(has_open & (n_signs > 0))
        & ~(cur1.notna() & cur2.notna())
    )
    negative = has_open | (n_minus > 0)
    value = value.where(~negative, -value).where(ok)
    cur = cur1.fillna(cur2)
    code = cur.str.upper().where(cur.str.len() == 3)
    code = code.fillna(cur.map(_SYMBOLS)).astype("string")
    return value, code.where(ok), present & value.isna()


def parse_bools(
    s: pd.Series, *, true_values: Iterable[str], false_values: Iterable[str]
) -> tuple[pd.Series, pd.Series]:
    """Case-insensitive booleans. Returns (boolean column, failed mask)."""
    lookup = {v.casefold(): True for v in true_values}
    lookup.update({v.casefold(): False for v in false_values})
    out = s.str.casefold().map(lookup).astype("boolean")
    return out, s.notna() & out.isna()


def parse_numbers(s: pd.Series, *, decimal: str) -> tuple[pd.Series, pd.Series]:
    """Plain numbers (probability, counts); a trailing % is kept as a flag by the caller."""
    text = s.str.replace(r"[ \u00a0%]", "", regex=True)
    if decimal == ",":
        text = text.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    out = pd.to_numeric(text, errors="coerce").astype("Float64")
    return out, s.notna() & out.isna()
