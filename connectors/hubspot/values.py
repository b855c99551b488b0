"""Vectorized conversion of HubSpot's string property values into Snapshot dtypes.

Every converter returns ``(converted, bad)`` where ``bad`` marks values that were present but
could not be read, so the caller can warn about them instead of silently dropping them.
"""

from __future__ import annotations

import pandas as pd

from auditor.snapshot import DATE, STR, TS
from connectors.hubspot.fields import BOOLEANS, FORECAST_CATEGORIES, Kind

_ZONED = r"(?:Z|[+-]\d{2}:?\d{2})$"
_EPOCH_MS = r"\d{11,}"
_DATE_ONLY = r"\d{4}-\d{2}-\d{2}"


def _text(s: pd.Series) -> pd.Series:
    s = s.astype(STR).str.strip()
    return s.where(s.str.len() > 0)


def parse_timestamps(s: pd.Series, naive_tz: str) -> tuple[pd.Series, pd.Series]:
    """ISO strings with a zone, epoch milliseconds, or naive ISO strings in ``naive_tz`` → UTC."""
    s = _text(s)
    present = s.notna()
    epoch = s.str.fullmatch(_EPOCH_MS).fillna(False).astype(bool)
    zoned = s.str.contains(_ZONED, regex=True).fillna(False).astype(bool) & ~epoch
    naive = present & ~epoch & ~zoned
    out = pd.Series(pd.NaT, index=s.index, dtype=TS)
    if epoch.any():
        ms = pd.to_numeric(s[epoch])
        out[epoch] = pd.to_datetime(ms, unit="ms", utc=True).astype(TS)
    if zoned.any():
        parsed = pd.to_datetime(s[zoned], utc=True, format="ISO8601", errors="coerce")
        out[zoned] = parsed.astype(TS)
    if naive.any():
        local = pd.to_datetime(s[naive], format="ISO8601", errors="coerce")
        out[naive] = (
            local.dt.tz_localize(naive_tz, ambiguous="NaT", nonexistent="shift_forward")
            .dt.tz_convert("UTC").astype(TS)
        )
    return out, present & out.isna()


def parse_dates(s: pd.Series, portal_tz: str) -> tuple[pd.Series, pd.Series]:
    """Calendar dates as seen in the portal's time zone.

    A date-only value ("2024-03-31") already is the calendar date. A timestamp is converted to
    ``portal_tz`` first, so a close date picked as 03-31 in New York (stored as 04-01T03:59Z)
    stays 03-31.
    """
    s = _text(s)
    date_only = s.str.fullmatch(_DATE_ONLY).fillna(False).astype(bool)
    out = pd.Series(pd.NaT, index=s.index, dtype=DATE)
    if date_only.any():
        out[date_only] = pd.to_datetime(s[date_only], format="%Y-%m-%d", errors="coerce")
    rest = s.notna() & ~date_only
    if rest.any():
        ts, _ = parse_timestamps(s[rest], portal_tz)
        out[rest] = ts.dt.tz_convert(portal_tz).dt.tz_localize(None).dt.normalize().astype(DATE)
    return out, s.notna() & out.isna()


def parse_numbers(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Decimal strings ("1000", "0.2"); thousands separators from UI exports are dropped."""
    s = _text(s)
    out = pd.to_numeric(s.str.replace(",", "", regex=False), errors="coerce").astype("Float64")
    return out, s.notna() & out.isna()


def parse_booleans(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    s = _text(s)
    out = s.str.casefold().map(BOOLEANS).astype("boolean")
    return out, s.notna() & out.isna()


def parse_forecast(s: pd.Series) -> tuple[pd.Series, pd.Series]:
    s = _text(s)
    out = s.str.casefold().map(FORECAST_CATEGORIES).astype(STR)
    return out, s.notna() & out.isna()


def convert(
    s: pd.Series, kind: Kind, *, portal_tz: str, naive_tz: str
) -> tuple[pd.Series, pd.Series]:
    """Convert one property column by its kind (see :data:`connectors.hubspot.fields.Kind`)."""
    if kind == "str":
        out = _text(s)
        return out, pd.Series(False, index=s.index)
    if kind == "float":
        return parse_numbers(s)
    if kind == "bool":
        return parse_booleans(s)
    if kind == "ts":
        return parse_timestamps(s, naive_tz)
    if kind == "date":
        return parse_dates(s, portal_tz)
    return parse_forecast(s)
