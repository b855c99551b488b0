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

from auditor.errors import AuditorError, ConfigError

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
    #: optional "owners": [{...}], optional "others": [other records], "message": the text the
    #: rule produces for it}
    example: ClassVar[dict[str, Any]] = {}
    #: close-out rules (CL01-CL03) judge how a deal was closed: their findings on deals closed
    #: within ``audit.fix_window_days`` are to-dos. Every other finding on a closed deal is
    #: process history (rates per owner / team / period, never a to-do).
    closeout: ClassVar[bool] = False
    #: what ``applies`` selects, for rates in reports ("63 of 488 lost deals")
    applies_to: ClassVar[str] = "deals"

    def __init_subclass__(cls, abstract: bool = False, **kwargs: Any) -> None:
        """Refuse a rule class with bad metadata when it is defined (built-in or plugin alike).

        ``class Base(Rule, abstract=True)`` declares a shared base that is not itself a rule.
        """
        super().__init_subclass__(**kwargs)
        if not abstract:
            validate_rule_class(cls)

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
        then costs little on the main thread. Default: nothing to prepare. A prepare fills only
        the rule's own entries of ``snap.memo`` (keys ``("rule", self.code, ...)``; see
        auditor/memo.py, which is safe to use from this second thread).
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


_CODE = re.compile(r"^[A-Z]{2}\d{2}$")
_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_EXAMPLE_KEYS = {"as_of", "record", "others", "history", "owners", "message"}


class RuleDefinitionError(AuditorError, TypeError):
    """A Rule subclass whose metadata breaks the contract (raised when the class is defined)."""


def validate_rule_class(cls: type[Rule]) -> None:
    """Check code, name, severity, requires, params, docstring and example of a rule class."""
    where = f"rule class {cls.__module__}.{cls.__qualname__}"

    def bad(field_name: str, problem: str) -> RuleDefinitionError:
        return RuleDefinitionError(f"{where}: `{field_name}` {problem}")

    own = cls.__dict__
    code = own.get("code")
    if not isinstance(code, str) or not _CODE.match(code):
        raise bad("code", f"must be two capital letters and two digits (like XP01), got {code!r}")
    name = own.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise bad("name", f"must be lower-case words joined by '-' (like big-deal), got {name!r}")
    if cls.severity not in SEVERITIES:
        raise bad("severity", f"must be one of {', '.join(SEVERITIES)}, got {cls.severity!r}")
    if not isinstance(cls.requires, tuple) or not all(isinstance(c, str) for c in cls.requires):
        raise bad("requires", f"must be a tuple of column names, got {cls.requires!r}")
    if not isinstance(cls.params, dict):
        raise bad("params", f"must be a dict of name → Param, got {cls.params!r}")
    for pname, param in cls.params.items():
        if not isinstance(param, Param):
            raise bad(f"params.{pname}", f"must be a Param(...), got {param!r}")
        if not param.help:
            raise bad(f"params.{pname}", "needs a help text")
        try:
            param.coerce(param.default, f"default of {pname}")
        except ConfigError as exc:
            raise bad(f"params.{pname}", f"has a default that breaks its own type: {exc}") from None
    doc = inspect.cleandoc(own.get("__doc__") or "")
    if not doc:
        raise bad("__doc__", "is missing: the docstring is the rule's documentation")
    sections = cls._doc_sections()
    for key, label in (("summary", "a one-line summary"), ("why", "a 'Why it matters:' part"),
                       ("fix", "a 'How to fix:' part")):
        if not sections[key]:
            raise bad("__doc__", f"needs {label} (see auditor/rule.py)")
    example = cls.example
    if not isinstance(example, dict):
        raise bad("example", f"must be a dict, got {type(example).__name__}")
    if example:
        unknown = set(example) - _EXAMPLE_KEYS
        if unknown:
            raise bad("example", f"has unknown keys {sorted(unknown)}; allowed: "
                      f"{', '.join(sorted(_EXAMPLE_KEYS))}")
        for key, typ in (("as_of", str), ("record", dict), ("message", str)):
            if not isinstance(example.get(key), typ):
                raise bad(f"example.{key}", f"must be a {typ.__name__}")
        if not re.match(r"^\d{4}-\d{2}-\d{2}$", example["as_of"]):
            raise bad("example.as_of", f"must be YYYY-MM-DD, got {example['as_of']!r}")


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
    """The snapshot's ``is_open`` column as plain bool (derived once: auditor/lifecycle.py)."""
    return snap.opportunities["is_open"].astype(bool)


def stage_at_least(snap: Snapshot, stage: str) -> pd.Series:
    """Current stage is ``stage`` or later in the common order (NA stage → False)."""
    s = snap.opportunities["stage"]
    return (s >= stage).fillna(False).astype(bool)


def stage_in(snap: Snapshot, stages: tuple[str, ...] | list[str]) -> pd.Series:
    return snap.opportunities["stage"].isin(stages)


def is_won(snap: Snapshot) -> pd.Series:
    """The snapshot's ``is_won`` column as plain bool (derived once: auditor/lifecycle.py)."""
    return snap.opportunities["is_won"].astype(bool)


def is_lost(snap: Snapshot) -> pd.Series:
    """The snapshot's ``is_lost`` column as plain bool (derived once: auditor/lifecycle.py)."""
    return snap.opportunities["is_lost"].astype(bool)


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
