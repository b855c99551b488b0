"""The common sales-stage model and per-source stage maps (DESIGN §3).

Every connector maps its own stage names or ids onto these ten stages. Order matters: rules compare
positions ("reached discovery or later"), so the stage column is an *ordered* categorical.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from auditor.errors import ConfigError

STAGES: tuple[str, ...] = (
    "lead",
    "contact",
    "qualification",
    "discovery",
    "solution",
    "proposal",
    "negotiation",
    "closed_won",
    "closed_lost",
    "handoff",
)
STAGE_DTYPE = pd.CategoricalDtype(categories=list(STAGES), ordered=True)
STAGE_ORDER: dict[str, int] = {s: i for i, s in enumerate(STAGES)}

#: The open part of the process, in order. Closed stages and handoff are outcomes, not steps.
OPEN_STAGES: tuple[str, ...] = STAGES[:7]
# Which stages are closed / won outcomes is decided in auditor/lifecycle.py, nowhere else.

STAGE_LABELS: dict[str, str] = {
    "lead": "Lead",
    "contact": "Contact",
    "qualification": "Qualification",
    "discovery": "Discovery",
    "solution": "Solution",
    "proposal": "Proposal",
    "negotiation": "Negotiation",
    "closed_won": "Closed won",
    "closed_lost": "Closed lost",
    "handoff": "Handoff",
}

# Shipped defaults (DESIGN §3). Keys are matched case-insensitively, on id or label.
SALESFORCE_DEFAULT_MAP: dict[str, str] = {
    "Prospecting": "contact",
    "Qualification": "qualification",
    "Needs Analysis": "discovery",
    "Value Proposition": "solution",
    "Id. Decision Makers": "solution",
    "Perception Analysis": "solution",
    "Proposal/Price Quote": "proposal",
    "Negotiation/Review": "negotiation",
    "Closed Won": "closed_won",
    "Closed Lost": "closed_lost",
}
HUBSPOT_DEFAULT_MAP: dict[str, str] = {
    "appointmentscheduled": "contact",
    "qualifiedtobuy": "qualification",
    "presentationscheduled": "solution",
    "decisionmakerboughtin": "proposal",
    "contractsent": "negotiation",
    "closedwon": "closed_won",
    "closedlost": "closed_lost",
    # the labels HubSpot shows for the same default stages (UI exports use labels)
    "Appointment Scheduled": "contact",
    "Qualified To Buy": "qualification",
    "Presentation Scheduled": "solution",
    "Decision Maker Bought-In": "proposal",
    "Contract Sent": "negotiation",
    "Closed Won": "closed_won",
    "Closed Lost": "closed_lost",
}
DEFAULT_MAPS: dict[str, dict[str, str]] = {
    "salesforce": SALESFORCE_DEFAULT_MAP,
    "hubspot": HUBSPOT_DEFAULT_MAP,
}


def _norm(key: str) -> str:
    return " ".join(str(key).split()).casefold()


@dataclass(frozen=True)
class StageMap:
    """Maps a source's stage ids / labels to common stages.

    ``reached`` is the set of common stages this source's pipeline can be in: "skipped stage"
    rules only consider these (a HubSpot pipeline without discovery never skips discovery).
    """

    mapping: Mapping[str, str]
    name: str = "stage map"
    _norm_map: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        norm: dict[str, str] = {}
        for key, stage in self.mapping.items():
            if stage not in STAGE_ORDER:
                raise ConfigError(
                    f"{self.name}: source stage {key!r} maps to unknown common stage {stage!r}; "
                    f"allowed: {', '.join(STAGES)}"
                )
            norm[_norm(key)] = stage
        object.__setattr__(self, "_norm_map", norm)

    @classmethod
    def build(
        cls,
        default: str | None,
        overrides: Mapping[str, str] | None = None,
        name: str = "stage map",
    ) -> StageMap:
        """A shipped default map (``"salesforce"``, ``"hubspot"`` or None) with config overrides."""
        base = dict(DEFAULT_MAPS.get(default or "", {}))
        base.update(overrides or {})
        return cls(base, name=name)

    @property
    def reached(self) -> frozenset[str]:
        return frozenset(self._norm_map.values())

    def lookup(self, key: str) -> str | None:
        return self._norm_map.get(_norm(key))

    def map_series(self, source_stage: pd.Series) -> tuple[pd.Series, dict[str, int]]:
        """Map a column of source stages. Returns (ordered categorical, {unmapped stage: count}).

        Vectorized over the distinct values, so a million rows cost a handful of dict lookups.
        """
        values = source_stage.astype("string")
        uniques = values.dropna().unique()
        lookup = {u: self.lookup(u) for u in uniques}
        mapped = values.map(lookup).astype(STAGE_DTYPE)
        unmapped_keys = [u for u, s in lookup.items() if s is None]
        counts: dict[str, int] = {}
        if unmapped_keys:
            vc = values[values.isin(unmapped_keys)].value_counts()
            counts = {str(k): int(v) for k, v in vc.items()}
        return mapped, counts


def stage_position(stage: pd.Series) -> pd.Series:
    """Integer position of each common stage (NA → -1)."""
    return pd.Series(stage.cat.codes, index=stage.index)
