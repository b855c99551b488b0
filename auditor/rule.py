"""The rule contract: small classes with stable metadata and one vectorized ``evaluate``.

A rule says *which* opportunities break the process (a boolean mask) and *how* to describe each
finding (a vectorized message). Everything else — selection, parameter config, coverage,
suppressions, turning masks into rows, fingerprints — is the engine's job (auditor/engine.py).

Docstring convention (it is the rule's documentation, shown by ``crm-audit rules``)::

    One-line summary of what is flagged.

    Why it matters: ...

    How to fix: ...
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd

from auditor.errors import ConfigError

if TYPE_CHECKING:
    from auditor.context import AuditContext
    from auditor.snapshot import Snapshot

SEVERITIES = ("error", "warning", "info")

#: code prefix → group name (select/ignore accept either)
GROUPS: dict[str, str] = {
    "QL": "qualification",
    "ST": "stages",
    "FU": "follow-up",
    "CD": "close-dates",
    "CL": "closing",
    "DQ": "data-quality",
}

#: pseudo-column for rules that need stage history
STAGE_HISTORY = "stage_history"


@dataclass(frozen=True)
class Param:
    """A declared rule parameter: type, default, help text and optional bounds."""

    type: type
    default: Any
    help: str
    min: float | None = None
    #: allowed values (e.g. the common stages for a stage parameter)
    choices: tuple[Any, ...] | None = None

    def coerce(self, value: Any, where: str) -> Any:
        ok = isinstance(value, self.type) and not (self.type is int and isinstance(value, bool))
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if self.type is list and isinstance(value, list | tuple):
            value, ok = list(value), True
        if not ok:
            raise ConfigError(
                f"{where}: expected {self.type.__name__}, got {type(value).__name__} {value!r}"
            )
        if self.min is not None and value < self.min:
            raise ConfigError(f"{where}: must be at least {self.min}, got {value!r}")
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(map(str, self.choices))
            raise ConfigError(f"{where}: {value!r} is not allowed; allowed: {allowed}")
        return value


class Rule:
    """Base class for every rule. Subclasses set the class attributes and ``evaluate``."""

    code: ClassVar[str]
    name: ClassVar[str]
    severity: ClassVar[str] = "warning"
    #: opportunity columns the rule needs from the source, plus STAGE_HISTORY if it needs history
    requires: ClassVar[tuple[str, ...]] = ()
    params: ClassVar[dict[str, Param]] = {}
    #: a flagged record for the docs (``crm-audit rules CODE``), checked by the test suite:
    #: {"as_of": "YYYY-MM-DD", "record": {column: value}, optional "history": [[stage, date]],
    #: optional "owners": [{...}], "message": the text the rule produces for it}
    example: ClassVar[dict[str, Any]] = {}
    #: close-out rules (CL01-CL03) judge how a deal was closed: their findings on deals closed
    #: within ``audit.fix_window_days`` are to-dos. Every other finding on a closed deal is
    #: process history (rates per owner / team / period, never a to-do).
    closeout: ClassVar[bool] = False
    #: what ``applies`` selects, for rates in reports ("63 of 488 lost deals")
    applies_to: ClassVar[str] = "deals"

    def __init__(self, **values: Any) -> None:
        self.p: dict[str, Any] = {k: param.default for k, param in self.params.items()}
        self.p.update(values)

    # -- metadata -----------------------------------------------------------------------
    @classmethod
    def group(cls) -> str:
        return GROUPS.get(cls.code[:2], "other")

    @classmethod
    def _doc_sections(cls) -> dict[str, str]:
        doc = inspect.cleandoc(cls.__doc__ or "")
        parts = re.split(r"^(Why it matters|How to fix):\s*", doc, flags=re.M)
        # first paragraph = summary; any further paragraphs before "Why it matters" = the exact
        # semantics (details)
        head, _, details = parts[0].strip().partition("\n\n")
        out = {"summary": " ".join(head.split()), "details": " ".join(details.split())}
        out["why"] = out["fix"] = ""
        for label, text in zip(parts[1::2], parts[2::2], strict=True):
            key = "why" if label.startswith("Why") else "fix"
            out[key] = " ".join(text.split())
        return out

    @classmethod
    def summary(cls) -> str:
        return cls._doc_sections()["summary"]

    @classmethod
    def details(cls) -> str:
        return cls._doc_sections()["details"]

    @classmethod
    def why(cls) -> str:
        return cls._doc_sections()["why"]

    @classmethod
    def fix(cls) -> str:
        return cls._doc_sections()["fix"]

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """Machine-readable documentation (``crm-audit rules --json``)."""
        return {
            "code": cls.code,
            "name": cls.name,
            "severity": cls.severity,
            "group": cls.group(),
            "requires": list(cls.requires),
            "params": {
                k: {
                    "type": p.type.__name__,
                    "default": p.default,
                    "help": p.help,
                    **({"choices": list(p.choices)} if p.choices else {}),
                }
                for k, p in cls.params.items()
            },
            "summary": cls.summary(),
            "details": cls.details(),
            "why": cls.why(),
            "fix": cls.fix(),
            "doc": inspect.cleandoc(cls.__doc__ or ""),
            "example": cls.example or None,
        }

    # -- evaluation ---------------------------------------------------------------------
    def prepare(self, snap: Snapshot, ctx: AuditContext) -> None:
        """Optional: build this rule's own cached inputs ahead of time.

        The engine runs every rule's ``prepare`` on a second thread while the first rules are
        evaluated; a rule whose heavy lifting happens in Arrow/numpy (which release the GIL)
        then costs little on the main thread. Default: nothing to prepare. A prepare must only
        fill caches the rule itself reads (``snap._cache`` keys it owns).
        """

    def applies(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        """The records whose state the rule judges (e.g. open deals, lost deals).

        Coverage and rates count only these: "CL01: 63 of 488 lost deals", never "of 2,000".
        Default: every record.
        """
        return all_records(snap)

    def fallbacks(self, snap: Snapshot, ctx: AuditContext) -> dict[str, pd.Series]:
        """Documented fallbacks the rule used, {what was done: mask}; coverage counts them."""
        return {}

    def not_evaluable(self, snap: Snapshot, ctx: AuditContext) -> dict[str, pd.Series]:
        """Record-level reasons the rule cannot judge a record: {reason: mask}.

        Source-level gaps (a required column the source does not provide, no stage history at
        all) are handled by the engine from ``requires``; override this for per-record gaps.
        """
        return {}

    def evaluate(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        """Boolean mask aligned to ``snap.opportunities``: True = violation."""
        raise NotImplementedError

    def message(self, snap: Snapshot, ctx: AuditContext, rows: pd.Index) -> pd.Series:
        """Per-finding text for the flagged ``rows`` (vectorized); default: the summary."""
        return pd.Series(self.summary(), index=rows, dtype="string[pyarrow]")


def empty_everywhere(snap: Snapshot, column: str) -> dict[str, pd.Series]:
    """{reason: every record} when ``column`` is empty in every record, else {}.

    For inputs a rule would otherwise replace by a fallback (no activity → idle since
    creation): a source that never fills the column would have every record judged on the
    fallback alone, silently.
    """
    opp = snap.opportunities
    if len(opp) and opp[column].isna().all():
        return {f"{column} is empty in every record": all_records(snap)}
    return {}


def is_open(snap: Snapshot) -> pd.Series:
    """Open = not closed. Uses ``is_closed`` when known, else the common stage."""
    opp = snap.opportunities
    by_stage = opp["stage"].isin(["closed_won", "closed_lost", "handoff"])
    return ~opp["is_closed"].fillna(by_stage).astype(bool)


def stage_at_least(snap: Snapshot, stage: str) -> pd.Series:
    """Current stage is ``stage`` or later in the common order (NA stage → False)."""
    s = snap.opportunities["stage"]
    return (s >= stage).fillna(False).astype(bool)


def stage_in(snap: Snapshot, stages: tuple[str, ...] | list[str]) -> pd.Series:
    return snap.opportunities["stage"].isin(stages)


def is_won(snap: Snapshot) -> pd.Series:
    """Won = ``is_won`` when known, else the common stage (closed_won or handoff)."""
    opp = snap.opportunities
    by_stage = opp["stage"].isin(["closed_won", "handoff"])
    return opp["is_won"].fillna(by_stage).astype(bool)


def all_records(snap: Snapshot) -> pd.Series:
    """A mask that is True for every record (for source-level not-evaluable reasons)."""
    return pd.Series(True, index=snap.opportunities.index)


def text(values: pd.Series | str) -> pd.Series | str:
    """A column as nullable text for message building (NA shows as "?")."""
    if isinstance(values, str):
        return values
    return values.astype("string[pyarrow]").fillna("?")


def open_and_past(snap: Snapshot, ctx: AuditContext, column: str) -> pd.Series:
    """Open deals whose date in ``column`` is before the audit day (NA dates → False)."""
    return is_open(snap) & (snap.opportunities[column] < ctx.as_of).fillna(False).astype(bool)


def iso_day(dates: pd.Series) -> pd.Series:
    """Calendar dates as YYYY-MM-DD text, for messages."""
    return dates.dt.strftime("%Y-%m-%d").astype("string")
