"""Amounts in several currencies: converted into one corporate currency, or left per currency.

Amounts are never added across currencies. A file source converts them when it has rates: a
Salesforce export's ``CurrencyType.csv`` (static rates) and ``DatedConversionRate.csv`` (dated
rates, used by close date as Salesforce's advanced currency management does), or rates set in
the config. A rate is Salesforce's ``ConversionRate``: units of the currency per one unit of the
corporate currency (corporate USD, MXN rate 17.0 → 1,700 MXN = 100 USD). Without rates, amounts
stay in their own currencies and metrics that add amounts are reported per currency.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from pydantic import Field, field_validator

from auditor.config import Section
from auditor.errors import ConfigError, SourceDataError
from auditor.snapshot import STR, Snapshot

#: extra opportunity columns keeping what the source said before conversion
ORIGINAL_AMOUNT = "amount_original"
ORIGINAL_CURRENCY = "currency_original"


class CurrencyOptions(Section):
    """``[source]`` keys of file sources for converting amounts (mixed into their options)."""

    #: convert every amount into this currency (ISO code); unset: Salesforce's corporate
    #: currency from CurrencyType.csv when the export has it, else no conversion
    corporate_currency: str | None = None
    #: units of each currency per one unit of the corporate currency, e.g. {MXN = 17.0}
    conversion_rates: dict[str, float] = Field(default_factory=dict)

    @field_validator("corporate_currency")
    @classmethod
    def _code(cls, v: str | None) -> str | None:
        if v is not None and not (len(v) == 3 and v.isalpha()):
            raise ValueError("must be a three-letter ISO 4217 code like 'USD'")
        return v.upper() if v else v

    @field_validator("conversion_rates")
    @classmethod
    def _rates(cls, v: dict[str, float]) -> dict[str, float]:
        out = {}
        for code, rate in v.items():
            if not (len(code) == 3 and code.isalpha()):
                raise ValueError(f"{code!r} is not a three-letter ISO 4217 code")
            if not rate > 0:
                raise ValueError(f"the rate of {code} must be above 0 (got {rate})")
            out[code.upper()] = float(rate)
        return out


@dataclass
class RateTable:
    """Static rates per code plus optional dated rates (code, start, next start, rate)."""

    corporate: str
    static: dict[str, float] = field(default_factory=dict)
    dated: pd.DataFrame | None = None
    origin: str = "config"

    @classmethod
    def from_salesforce(
        cls, currency_type: pd.DataFrame | None, dated: pd.DataFrame | None,
        configured: dict[str, float], corporate: str | None,
    ) -> RateTable | None:
        """Rates from CurrencyType.csv / DatedConversionRate.csv, configured rates on top."""
        static: dict[str, float] = {}
        corp = corporate
        origin = "config"
        if currency_type is not None and {"IsoCode", "ConversionRate"} <= set(currency_type):
            ct = currency_type.assign(
                IsoCode=currency_type["IsoCode"].astype(STR).str.strip().str.upper(),
                ConversionRate=pd.to_numeric(currency_type["ConversionRate"], errors="coerce"))
            ct = ct.dropna(subset=["IsoCode", "ConversionRate"])
            static = dict(zip(ct["IsoCode"], ct["ConversionRate"].astype(float), strict=True))
            if corp is None and "IsCorporate" in ct:
                is_corp = ct["IsCorporate"].astype(STR).str.strip().str.casefold().isin(
                    ["true", "1"])
                if is_corp.any():
                    corp = str(ct.loc[is_corp, "IsoCode"].iloc[0])
            origin = "CurrencyType.csv"
        static.update(configured)
        table = None
        if dated is not None and {"IsoCode", "ConversionRate", "StartDate"} <= set(dated):
            table = pd.DataFrame({
                "code": dated["IsoCode"].astype(STR).str.strip().str.upper(),
                "rate": pd.to_numeric(dated["ConversionRate"], errors="coerce"),
                "start": pd.to_datetime(dated["StartDate"].astype(STR).str.slice(0, 10),
                                        format="%Y-%m-%d", errors="coerce"),
            }).dropna().sort_values("start", kind="stable").reset_index(drop=True)
            origin = "DatedConversionRate.csv" + (" + CurrencyType.csv" if static else "")
        if corp is None:
            return None
        if not static and table is None:
            return None
        return cls(corporate=corp, static=static, dated=table, origin=origin)


def convert(snap: Snapshot, rates: RateTable | None, *, where: str = "source") -> Snapshot:
    """Convert the snapshot's amounts into ``rates.corporate`` (vectorized) and validate it again;
    without rates, return it as it is (metrics then keep several currencies apart)."""
    opp = snap.opportunities
    meta = snap.meta
    codes = opp["currency"].dropna().astype(str).str.upper()
    present = sorted(codes.unique())
    has_amount = opp["amount"].notna()
    if rates is None:
        # several currencies and no rates: metrics that add amounts report them per currency
        meta.extra["currency"] = {"corporate": None, "currencies": present}
        return snap
    cur = opp["currency"].astype(STR).str.upper().fillna(rates.corporate)
    rate = cur.map(rates.static).astype("Float64").copy()
    rate = rate.mask((cur == rates.corporate).fillna(False), 1.0)
    if rates.dated is not None and len(rates.dated) and "close_date" in opp:
        day = pd.to_datetime(opp["close_date"]).astype("datetime64[us]")
        left = pd.DataFrame({"pos": range(len(opp)), "code": cur.fillna("").astype(str).to_numpy(),
                             "day": day.to_numpy()})
        known = left.dropna(subset=["day"]).sort_values("day", kind="stable")
        right = rates.dated.astype({"start": "datetime64[us]"})
        left["code"] = left["code"].astype(str)
        right["code"] = right["code"].astype(str)
        hit = pd.merge_asof(known, right, left_on="day", right_on="start", by="code",
                            direction="backward")
        dated_rate = pd.Series(hit["rate"].to_numpy(), index=hit["pos"].to_numpy())
        dated_rate = dated_rate.reindex(range(len(opp)))
        dated_rate.index = opp.index
        use = (dated_rate.notna() & (cur != rates.corporate)).fillna(False)
        rate = rate.mask(use, dated_rate.astype("Float64"))
    missing = has_amount & rate.isna()
    if missing.any():
        lacking = sorted(cur[missing].dropna().unique())
        raise SourceDataError(
            f"{where}: no conversion rate for {', '.join(lacking)} "
            f"({int(missing.sum())} opportunities); add it to source.conversion_rates "
            f"(units per 1 {rates.corporate})")
    opp[ORIGINAL_AMOUNT] = opp["amount"]
    opp[ORIGINAL_CURRENCY] = opp["currency"]
    opp["amount"] = (opp["amount"] / rate).round(2)
    opp["currency"] = pd.Series(rates.corporate, index=opp.index, dtype=STR)
    converted = int((has_amount & (cur != rates.corporate)).sum())
    meta.extra["currency"] = {
        "corporate": rates.corporate,
        "currencies": present,
        "converted": converted,
        "rates_from": rates.origin,
        "rates": {k: v for k, v in sorted(rates.static.items()) if k in present},
    }
    snap = snap.validate()  # the amounts changed: check the frame again
    if converted:
        meta.warnings.append(
            f"{converted} amounts converted into {rates.corporate} (rates from {rates.origin}); "
            f"the original amount and currency are kept in {ORIGINAL_AMOUNT} / "
            f"{ORIGINAL_CURRENCY}")
    return snap


def configured_rates(corporate: str | None, rates: dict[str, float]) -> RateTable | None:
    """Rates from the config only (CSV and HubSpot exports)."""
    if rates and corporate is None:
        raise ConfigError("source.conversion_rates is set but source.corporate_currency is not: "
                          "name the currency the rates convert into")
    if corporate is None:
        return None
    return RateTable(corporate=corporate, static=dict(rates))
