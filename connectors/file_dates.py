"""Day/month order of slash dates (``03/04/2024``) in exported files.

``03/04/2024`` is 3 April in most of the world and March 4 in the US. The order is never
guessed: a ``date_order`` setting decides, else the file itself when one of its values has a
first or second part over 12 (``31/12/2024`` can only be day first). A file whose values all fit
both orders, and no setting, is an error that shows sample values and the setting; so is a file
holding both orders. Two-digit years (``3/31/24``) are read as 2000–2068 / 1969–1999 (the POSIX
pivot of ``%y``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import pandas as pd

from auditor.errors import SourceDataError

DateOrder = Literal["day_first", "month_first"]

#: d/m/y or m/d/y with "/", "-" or "." between the parts and an optional time after
SLASH_RE = r"^\s*(\d{1,2})[/-](\d{1,2})[/-](\d{2}|\d{4})(?:[ T].*)?$"
_TAILS = ("", " %H:%M", " %H:%M:%S", " %I:%M %p", " %I:%M:%S %p", " %I:%M%p")


def _uniques(s: pd.Series) -> pd.Series:
    """The distinct non-missing values (dates repeat a lot: work on each value once)."""
    return pd.Series(s.dropna().astype(str).unique(), dtype=object)


def _parts(s: pd.Series) -> pd.DataFrame:
    """First and second number of each slash date (NA elsewhere), computed per distinct value."""
    u = _uniques(s)
    parts = u.astype("string").str.extract(SLASH_RE)
    table = pd.DataFrame({
        "first": pd.to_numeric(parts[0], errors="coerce").to_numpy(),
        "second": pd.to_numeric(parts[1], errors="coerce").to_numpy(),
    }, index=u.to_numpy())
    key = s.astype(object).where(s.notna(), None)
    return table.reindex(key.to_numpy()).set_axis(s.index)


def is_slash(s: pd.Series) -> pd.Series:
    u = _uniques(s)
    hit = pd.Series(u.astype("string").str.match(SLASH_RE, na=False).to_numpy(dtype=bool),
                    index=u.to_numpy())
    return s.astype(object).map(hit).eq(True)  # NaN (missing / not listed) is False


def decide_order(
    columns: Mapping[str, pd.Series], setting: DateOrder | None, *, label: str, option: str,
) -> bool | None:
    """Day first (True), month first (False), or None when no value is a slash date.

    ``columns`` maps a column's name (for messages) to its cells; ``label`` names the file.
    """
    if setting is not None:
        return setting == "day_first"
    day_first: list[tuple[str, object, str]] = []
    month_first: list[tuple[str, object, str]] = []
    any_slash: list[tuple[str, object, str]] = []
    for name, cells in columns.items():
        p = _parts(cells)
        slash = p["first"].notna()
        if not slash.any():
            continue
        first_big = slash & (p["first"] > 12) & (p["second"] <= 12)
        second_big = slash & (p["second"] > 12) & (p["first"] <= 12)
        if first_big.any():
            i = first_big.idxmax()
            day_first.append((name, i, str(cells[i])))
        if second_big.any():
            i = second_big.idxmax()
            month_first.append((name, i, str(cells[i])))
        for i in cells.index[slash][:3]:
            any_slash.append((name, i, str(cells[i])))
    if day_first and month_first:
        (dn, di, dv), (mn, mi, mv) = day_first[0], month_first[0]
        raise SourceDataError(
            f"{label}: dates in both orders — {dv!r} (column {dn}, row {di}) is day first, "
            f"{mv!r} (column {mn}, row {mi}) is month first; fix the file, or set {option} = "
            f"\"day_first\" or \"month_first\" to reject the dates of the other order"
        )
    if day_first:
        return True
    if month_first:
        return False
    if not any_slash:
        return None
    sample = ", ".join(f"{v!r} (column {n}, row {i})" for n, i, v in any_slash[:3])
    raise SourceDataError(
        f"{label}: dates such as {sample} could be day/month or month/day, and no value in the "
        f"file decides it (none has a day over 12); set {option} = \"day_first\" "
        f"(31/12/2024) or \"month_first\" (12/31/2024)"
    )


def parse_slash(s: pd.Series, mask: pd.Series, day_first: bool) -> pd.Series:
    """Naive timestamps for the cells in ``mask`` (NaT where the value is no date in that order).

    Each distinct value is parsed once; formats are tried in turn on what is still unparsed.
    """
    out = pd.Series(pd.NaT, index=s.index, dtype="datetime64[us]")
    u = _uniques(s[mask])
    if u.empty:
        return out
    text = u.str.strip().str.replace(r"^(\d+)[-](\d+)[-]", r"\1/\2/", regex=True)
    parsed = pd.Series(pd.NaT, index=u.index, dtype="datetime64[us]")
    head = "%d/%m/" if day_first else "%m/%d/"
    for year in ("%Y", "%y"):
        for tail in _TAILS:
            todo = parsed.isna()
            if not todo.any():
                break
            parsed[todo] = pd.to_datetime(text[todo], format=head + year + tail, errors="coerce")
    lookup = pd.Series(parsed.to_numpy(), index=u.to_numpy())
    out[mask] = s[mask].astype(object).map(lookup).astype("datetime64[us]")
    return out


def why_not(cells: pd.Series, day_first: bool | None, basis: str) -> pd.Series:
    """For slash dates that did not parse: why, worded for the order in use (vectorized).

    ``basis`` says where the order came from, e.g. 'source.date_order = "day_first"'.
    Empty text for cells that are not slash dates.
    """
    p = _parts(cells)
    if day_first is None:
        return pd.Series("", index=cells.index, dtype=object)
    order = "day/month/year" if day_first else "month/day/year"
    month = p["second"] if day_first else p["first"]
    day = p["first"] if day_first else p["second"]
    bad_month = (month > 12).fillna(False).astype(bool)
    reason = pd.Series("no such day in that month", index=cells.index, dtype=object)
    reason[bad_month] = month[bad_month].astype("Int64").astype(str) + " cannot be a month"
    reason[((day > 31) | (day < 1)).fillna(False).astype(bool) & ~bad_month] = (
        "no month has that day")
    text = f" as a {order} date (" + reason + f"; order from {basis})"
    return text.where(p["first"].notna(), "")


def order_basis(setting: DateOrder | None, option: str) -> str:
    if setting is not None:
        return f'{option} = "{setting}"'
    return f"the file's other dates; set {option} to override"
