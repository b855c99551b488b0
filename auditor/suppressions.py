"""Suppressions: accepted exceptions to a rule for one record, with a reason and an expiry.

A suppressed finding leaves the findings list but is counted as suppressed. An expired
suppression no longer applies (the finding is back) and is listed; so is one that matched
nothing (it may be stale: the record changed or the rule code is wrong).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from auditor.config import AuditConfig, SuppressionEntry, format_validation_error
from auditor.errors import ConfigError


class _SuppressionFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    suppression: list[SuppressionEntry] = Field(default_factory=list)


def load_suppressions(config: AuditConfig) -> list[SuppressionEntry]:
    items = list(config.suppressions.items)
    if config.suppressions.file is not None:
        path = config.resolve(config.suppressions.file)
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8-sig"))
        except FileNotFoundError:
            raise ConfigError(
                f"{config.origin}: key `suppressions.file`: {path} does not exist"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
        try:
            items += _SuppressionFile.model_validate(data).suppression
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, str(path))) from None
    return items


def apply_suppressions(
    violations: pd.DataFrame,
    entries: list[SuppressionEntry],
    as_of: pd.Timestamp,
    rule_keys: dict[str, str],
) -> tuple[pd.DataFrame, pd.DataFrame, list[dict]]:
    """Split violations into (kept, suppressed) and report each suppression's status.

    ``rule_keys`` maps lower-cased codes and names to codes, so a suppression may name either.
    """
    status: list[dict] = []
    if not entries:
        return violations, violations.iloc[0:0], status
    rows = []
    for i, e in enumerate(entries):
        code = rule_keys.get(e.rule.casefold())
        expired = e.expires is not None and pd.Timestamp(e.expires) < as_of
        rows.append((i, code, e.record, expired))
    table = pd.DataFrame(rows, columns=["entry", "rule_code", "opportunity_id", "expired"])
    active = table[~table["expired"] & table["rule_code"].notna()]
    keyed = violations.reset_index().merge(active, on=["rule_code", "opportunity_id"], how="left")
    hit = keyed["entry"].notna().to_numpy()
    used = set(keyed.loc[hit, "entry"].astype(int))
    kept = violations[~hit]
    suppressed = violations[hit].assign(
        suppression_reason=[entries[int(k)].reason for k in keyed.loc[hit, "entry"]]
    )
    for i, code, _, expired in rows:
        e = entries[i]
        if code is None:
            state = "unknown-rule"
        elif expired:
            state = "expired"
        elif i in used:
            state = "applied"
        else:
            state = "unused"
        status.append(
            {
                "rule": e.rule,
                "record": e.record,
                "reason": e.reason,
                "expires": e.expires.isoformat() if e.expires else None,
                "author": e.author,
                "status": state,
            }
        )
    return kept, suppressed, status
