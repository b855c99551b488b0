"""Configuration: TOML (tomllib) validated with pydantic models.

Every section forbids unknown keys. Errors name the file, the key path and what is allowed.
Secrets never live in the config: keys ending in ``_env`` name environment variables.

Section models live here so that ``config.example.toml`` and ``check-config`` have one source of
truth. The ``source`` table is validated in two steps: ``type`` picks the connector, whose own
options model (see ``connectors.registry``) validates the rest.
"""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from auditor.errors import ConfigError
from auditor.stages import STAGES

Severity = Literal["error", "warning", "info"]
#: a common stage name (the values of auditor.stages.STAGES; one list, not two)
StageName = Literal[STAGES]  # type: ignore[valid-type]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


#: the days an audit may be "as of": pandas timestamps end in 2262, and day arithmetic on
#: dates near year 1 overflows (``--as-of 0001-01-01`` was a traceback)
AS_OF_RANGE = (date(1900, 1, 1), date(2200, 12, 31))


def check_as_of(day: date, key: str) -> date:
    """``day`` when an audit can be run as of it, else a ConfigError naming ``key``."""
    low, high = AS_OF_RANGE
    if not low <= day <= high:
        raise ConfigError(f"{key} {day.isoformat()}: the audit date must be between "
                          f"{low.isoformat()} and {high.isoformat()}")
    return day


def check_timezone(v: str, example: str = "Europe/Berlin") -> str:
    """The one time-zone check of every config section: ``v`` is an IANA name, or ValueError."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {v!r} (use an IANA name like {example!r})") from exc
    return v


class AuditSection(Section):
    #: the day the audit is "as of" (default: today, in ``timezone``)
    as_of: date | None = None

    @field_validator("as_of")
    @classmethod
    def _as_of(cls, v: date | None) -> date | None:
        low, high = AS_OF_RANGE
        if v is not None and not low <= v <= high:
            raise ValueError(f"the audit date must be between {low} and {high}")
        return v
    #: IANA time zone used for "today" and for turning timestamps into calendar days
    timezone: str = "UTC"
    #: closed deals count as to-dos (fix lists, digests, new / resolved) only for close-out
    #: rules (CL01-CL03) and only when closed within this many days; every other finding on a
    #: closed deal is process history (rates, never a to-do)
    fix_window_days: int = Field(default=90, ge=0)
    #: judge stage paths exactly as recorded: a deal whose history starts past qualification
    #: (created there, converted from a qualified lead, or loaded by an import) counts as having
    #: skipped qualification. Default: such paths are not judged (coverage names them).
    strict_history: bool = False
    #: this many records created in the same second, each with its history starting then,
    #: are an import (a migration or bulk load): named in the report
    import_min_records: int = Field(default=5, ge=2)
    #: warn when the newest change in the data is more than this many days before the audit day
    stale_data_days: int = Field(default=30, ge=1)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return check_timezone(v)


DEFAULT_STAGE_LIMITS: dict[str, int] = {
    "lead": 14,
    "contact": 21,
    "qualification": 30,
    "discovery": 30,
    "solution": 30,
    "proposal": 30,
    "negotiation": 45,
}

#: BANT: budget, authority, need, timeline must be captured before a deal leaves qualification
DEFAULT_EXIT_CRITERIA: dict[str, list[str]] = {
    "qualification": ["budget", "authority", "need", "timeline"],
}


class ProcessSection(Section):
    """The sales process: how long a deal may sit in each open stage, and exit criteria."""

    stage_limits: dict[StageName, int] = Field(default_factory=lambda: dict(DEFAULT_STAGE_LIMITS))
    #: fields that must be filled before an opportunity may be *past* a stage (rule QL02).
    #: Default: BANT for qualification; a source without those columns makes QL02 "not
    #: evaluable" (the coverage note names the missing fields) rather than flagging everything.
    exit_criteria: dict[StageName, list[str]] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_EXIT_CRITERIA.items()}
    )
    #: the probability (0..1) the process expects in each common stage (rule CD03), for sources
    #: that do not say it themselves (Salesforce OpportunityStage.DefaultProbability and HubSpot
    #: stage probabilities take precedence). Example: {solution = 0.7}
    stage_probability: dict[StageName, float] = Field(default_factory=dict)

    @field_validator("stage_probability")
    @classmethod
    def _probabilities(cls, v: dict[str, float]) -> dict[str, float]:
        for stage, p in v.items():
            if not 0 <= p <= 1:
                raise ValueError(f"stage probability for {stage} must be within 0..1, got {p}")
        return v

    @field_validator("stage_limits")
    @classmethod
    def _limits(cls, v: dict[str, int]) -> dict[str, int]:
        for stage, days in v.items():
            if days <= 0:
                raise ValueError(f"stage limit for {stage} must be a positive number of days")
        merged = dict(DEFAULT_STAGE_LIMITS)
        merged.update(v)
        return merged


class RulesSection(BaseModel):
    """Rule selection, severities, and one sub-table of parameters per rule (by code or name)."""

    model_config = ConfigDict(extra="allow")

    select: list[str] = Field(default_factory=lambda: ["ALL"])
    ignore: list[str] = Field(default_factory=list)
    severity: dict[str, Severity] = Field(default_factory=dict)

    def rule_params(self) -> dict[str, dict[str, Any]]:
        """The per-rule parameter tables (``[rules.ST04]`` → ``{"ST04": {...}}``)."""
        return dict(self.model_extra or {})


class SuppressionEntry(Section):
    rule: str
    record: str
    reason: str
    expires: date | None = None
    author: str | None = None


class SuppressionsSection(Section):
    #: a TOML file holding ``[[suppression]]`` entries (relative to the config file)
    file: Path | None = None
    items: list[SuppressionEntry] = Field(default_factory=list)


class ReportSection(Section):
    out_dir: Path = Path("audit-report")
    formats: list[Literal["html", "md", "txt", "csv", "json"]] = Field(
        default_factory=lambda: ["html", "md", "txt", "csv", "json"]
    )
    #: how many flagged deals the HTML / Markdown / text reports list (the CSV / JSON hold all)
    max_deals: int = Field(default=50, ge=1)
    #: how many unmapped stages and warnings the reports and the CLI list (run.json holds all)
    max_listed: int = Field(default=20, ge=1)
    #: folder with template overrides (a template may ``{% extends "default:report.html.j2" %}``)
    template_dir: Path | None = None
    title: str = "Pipeline hygiene audit"
    #: also write the consultant assessment (assessment.html / assessment.md)
    assessment: bool = True
    #: how many findings the assessment appendix lists, most urgent first (explorer.html and
    #: violations.csv hold all); keeps the printed assessment near ten pages
    appendix_max_rows: int = Field(default=25, ge=0)
    #: also write owner digests and manager roll-ups into digests/ (one file pair per owner,
    #: rendered in bulk: about 0.2 ms per owner; e-mail delivery renders its own digests)
    digests: bool = True
    #: where the output folder is published (an http(s) URL): the e-mails link the explorer,
    #: the appendix and the CSV there; without it they name the files in the report folder
    link_base: str | None = None
    #: write explorer.html, the self-contained findings explorer (filter, sort, search)
    explorer: bool = True
    #: findings embedded in explorer.html, fix-now first, then worst first (all are in the CSV)
    explorer_max_rows: int = Field(default=100_000, ge=1)
    #: also print the assessment to assessment.pdf (WeasyPrint, the `pdf` extra)
    pdf: bool = False

    @field_validator("link_base")
    @classmethod
    def _link_base(cls, v: str | None) -> str | None:
        if v is not None and not v.lower().startswith(("https://", "http://")):
            raise ValueError(
                "report.link_base must be an http(s) URL, e.g. "
                f"https://intranet.example.com/audit; got {v!r}"
            )
        return v


class HistorySection(Section):
    enabled: bool = True
    path: Path = Path("crm-audit-history.sqlite")
    #: a shared PostgreSQL history instead of the SQLite file, e.g.
    #: "postgresql://audit@db.internal:5432/crm_audit" (no password: see password_env)
    url: str | None = None
    #: environment variable holding the PostgreSQL password
    password_env: str | None = None
    #: how many runs the trend covers
    trend_runs: int = Field(default=14, ge=2)
    #: one run at a time per history store and source: a second run waits this many seconds
    #: for the one in progress, then exits with status 5 (0: do not wait)
    lock_wait_s: float = Field(default=300.0, ge=0)


class SmtpSection(Section):
    host: str
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    #: environment variables holding the login (no login when password_env is unset)
    username_env: str | None = None
    password_env: str | None = None
    #: From address, e.g. "CRM audit <crm-audit@example.com>"
    sender: str
    timeout_s: float = Field(default=30.0, gt=0)
    #: PEM file of extra CA certificates to trust (a company relay with a private CA)
    ca_file: Path | None = None
    #: a message the server answers with a temporary (4xx) reply or a dropped connection is
    #: sent again on a new connection, at most this many more times
    retries: int = Field(default=3, ge=0, le=10)
    #: wait before the first retry; doubled for each further one
    retry_delay_s: float = Field(default=2.0, ge=0, le=300)


SUBJECT_FIELDS = ("date", "score", "findings", "deals", "source", "title", "owner", "team")


class ChatSection(Section):
    """A short summary posted to a chat channel after the run (optional)."""

    #: slack: an incoming webhook (https://hooks.slack.com/services/...); teams: a Microsoft
    #: Teams workflow ("Post to a channel when a webhook request is received") URL
    kind: Literal["slack", "teams"]
    #: environment variable holding the webhook URL (the URL is a secret: never in the config)
    url_env: str
    #: how many fix-now deals the message lists
    top_deals: int = Field(default=5, ge=0, le=20)
    timeout_s: float = Field(default=10.0, gt=0)


class DeliverySection(Section):
    smtp: SmtpSection | None = None
    #: post a summary to Slack or Teams as well (secret URL from an environment variable)
    chat: ChatSection | None = None
    #: recipients of the manager report (one message each)
    managers: list[str] = Field(default_factory=list)
    #: send each owner with findings their digest (owner emails come from the CRM)
    owner_digests: bool = False
    #: send each manager (an owner others report to) a roll-up of their direct reports
    team_rollups: bool = False
    #: extra roll-up recipients per team name (owners' ``team`` in the CRM): {team = [emails]}
    teams: dict[str, list[str]] = Field(default_factory=dict)
    #: attach violations.csv (digests and roll-ups attach only their own rows)
    attach_csv: bool = False
    #: subjects; fields: {date} {score} {findings} {deals} {source} {title} {owner} {team};
    #: {findings} and {deals} include the noun ("1 deal", "5 deals")
    subject: str = "CRM hygiene audit {date}: score {score}"
    digest_subject: str = "{owner}: {deals} to fix in the CRM ({date})"
    team_subject: str = "Team {team}: CRM hygiene {date}, score {score}"

    @field_validator("subject", "digest_subject", "team_subject")
    @classmethod
    def _subject_fields(cls, v: str) -> str:
        import string

        try:
            names = [f for _, f, _, _ in string.Formatter().parse(v) if f is not None]
        except ValueError as exc:
            raise ValueError(f"invalid subject template {v!r}: {exc}") from None
        unknown = [n for n in names if n not in SUBJECT_FIELDS]
        if unknown:
            raise ValueError(
                f"unknown field {{{unknown[0]}}} in subject; use {', '.join(SUBJECT_FIELDS)}"
            )
        return v


class ScheduleJob(Section):
    name: str
    #: standard five-field cron (crontab(5)): minute hour day-of-month month day-of-week
    cron: str
    timezone: str = "UTC"
    config: Path | None = None

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        from auditor.cron import parse_cron

        parse_cron(v)  # CronError (a ValueError) names the field and its range
        return v


class ScheduleSection(Section):
    jobs: list[ScheduleJob] = Field(default_factory=list)
    #: seconds a missed run may still start late; 0 = never late
    misfire_grace_s: int = Field(default=3600, ge=0)
    alert_emails: list[str] = Field(default_factory=list)


class MetricsSection(Section):
    #: periods: "last_quarter" and "current_quarter" by default
    periods: list[
        Literal[
            "last_quarter", "current_quarter", "last_month", "current_month", "year_to_date", "all"
        ]
    ] = Field(default_factory=lambda: ["last_quarter", "current_quarter"])
    #: pipeline targets per period label, e.g. {"2024-Q3" = 1_000_000}
    targets: dict[str, float] = Field(default_factory=dict)
    #: optional opportunity column used to split deal size (e.g. "segment")
    segment_field: str | None = None
    #: first month of the fiscal year (1 = calendar quarters, labels "2026-Q3"; otherwise
    #: fiscal quarters labelled by the year the fiscal year ends in, "FY2027-Q1")
    fiscal_year_start_month: int = Field(default=1, ge=1, le=12)


class AuditConfig(Section):
    audit: AuditSection = Field(default_factory=AuditSection)
    source: dict[str, Any] = Field(default_factory=lambda: {"type": "demo"})
    #: several sources in one config (``[[sources]]``): each a [source] table plus optional
    #: ``process`` / ``rules`` overrides; see docs/scale.md
    sources: list[dict[str, Any]] = Field(default_factory=list)
    process: ProcessSection = Field(default_factory=ProcessSection)
    rules: RulesSection = Field(default_factory=RulesSection)
    suppressions: SuppressionsSection = Field(default_factory=SuppressionsSection)
    metrics: MetricsSection = Field(default_factory=MetricsSection)
    report: ReportSection = Field(default_factory=ReportSection)
    history: HistorySection = Field(default_factory=HistorySection)
    delivery: DeliverySection = Field(default_factory=DeliverySection)
    schedule: ScheduleSection = Field(default_factory=ScheduleSection)

    #: where the config came from (for messages and relative paths); not a config key
    origin: str = Field(default="<defaults>", exclude=True)
    base_dir: Path = Field(default=Path("."), exclude=True)

    def resolve(self, p: Path | str) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(p).expanduser()
        return p if p.is_absolute() else self.base_dir / p


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation (``X``, ``X | None``, ``list[X]``), if any."""
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def allowed_keys(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> list[str]:
    """The keys the table at ``loc`` (a pydantic error location, last part the bad key) takes."""
    cur = model
    for part in loc[:-1]:
        if cur is None:
            return []
        if isinstance(part, int) or str(part).startswith("function-"):
            continue
        f = cur.model_fields.get(str(part))
        if f is None:
            return []
        cur = _model_in(f.annotation)
    return list(cur.model_fields) if cur is not None else []


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | date) and len(repr(value)) <= 80


def format_validation_error(
    exc: ValidationError,
    origin: str,
    prefix: str = "",
    model: type[BaseModel] | None = None,
) -> str:
    """One line per error naming the key, what was wrong and what is allowed.

    Never dumps the offending table: a value is quoted only when it is a short scalar. Unknown
    keys and values outside a fixed set get a "did you mean" from the allowed ones.
    """
    import re

    from auditor.suggest import did_you_mean

    lines = []
    for err in exc.errors():
        parts = tuple(x for x in err["loc"] if not str(x).startswith("function-"))
        loc = "".join(
            f"[{x}]" if isinstance(x, int) else f".{x}" for x in parts if str(x) != "[key]"
        ).lstrip(".")
        key = f"{prefix}{loc}" if loc else prefix.rstrip(".") or "(top level)"
        value = err.get("input")
        got = f" (got {value!r})" if _scalar(value) else ""
        if err["type"] == "extra_forbidden":
            allowed = [k for k in allowed_keys(model, parts) if k not in ("origin", "base_dir")]
            hint = did_you_mean(str(parts[-1]), allowed) if parts else ""
            listing = f"; allowed here: {', '.join(allowed)}" if allowed and not hint else ""
            lines.append(f"{origin}: unknown key `{key}`{hint}{listing}")
        elif err["type"] in ("literal_error", "enum"):
            expected = re.findall(r"'([^']*)'", str((err.get("ctx") or {}).get("expected", "")))
            hint = did_you_mean(str(value), expected) if _scalar(value) else ""
            lines.append(
                f"{origin}: key `{key}`: {value!r} is not allowed{hint}; allowed: "
                f"{', '.join(expected)}"
                if expected and _scalar(value)
                else f"{origin}: key `{key}`: allowed: {', '.join(expected) or err['msg']}"
            )
        elif err["type"] == "missing":
            lines.append(f"{origin}: missing required key `{key}`")
        else:
            msg = str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
            if got and repr(value) in msg:  # the message quotes the value already
                got = ""
            lines.append(f"{origin}: key `{key}`: {msg}{got}")
    return "\n".join(lines)


def _reject_reserved(data: dict[str, Any], origin: str) -> None:
    for key in ("origin", "base_dir"):
        if key in data:
            raise ConfigError(f"{origin}: unknown key `{key}`")


def parse_config(
    data: dict[str, Any], origin: str = "<config>", base_dir: Path | None = None
) -> AuditConfig:
    _reject_reserved(data, origin)
    if "source" in data and data.get("sources"):
        raise ConfigError(f"{origin}: both [source] and [[sources]] are set; use one [source] "
                          "table, or one [[sources]] table per source")
    try:
        cfg = AuditConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, origin, model=AuditConfig)) from None
    cfg.origin = origin
    cfg.base_dir = base_dir or Path(".")
    if "type" not in cfg.source:
        raise ConfigError(f"{origin}: missing required key `source.type`")
    return cfg


def load_config(path: str | Path) -> AuditConfig:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return parse_config(data, origin=str(path), base_dir=path.resolve().parent)


def default_config() -> AuditConfig:
    """The embedded default: audit the bundled demo organisation."""
    return parse_config(
        {"source": {"type": "demo"}},
        origin="<built-in demo config>",
    )


__all__ = ["AuditConfig", "load_config", "parse_config", "default_config", "STAGES"]
