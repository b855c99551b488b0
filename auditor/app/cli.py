"""The ``crm-audit`` command line (click)."""

from __future__ import annotations

import json
import logging
import sys
import textwrap
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import click

from auditor import __version__
from auditor.config import AuditConfig, check_as_of, default_config, load_config
from auditor.errors import AuditorError
from auditor.secrets import install_log_redaction, redact

log = logging.getLogger("auditor")


#: exit statuses (README "Exit codes" and `crm-audit run --help` say the same)
EXIT_OK, EXIT_FINDINGS, EXIT_USER, EXIT_SOURCE, EXIT_DELIVERY, EXIT_LOCKED = 0, 1, 2, 3, 4, 5
FAIL_ON = ("never", "info", "warning", "error")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (click's test runner swaps it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):  # noqa: ANN201
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # noqa: ANN001
        pass


_handler: logging.Handler | None = None


def _setup_logging(verbosity: int) -> None:
    """-vv debug, -v info, default warnings, -q errors only, -qq nothing but fatal errors."""
    global _handler
    level = {2: logging.DEBUG, 1: logging.INFO, 0: logging.WARNING, -1: logging.ERROR}.get(
        max(-2, min(2, verbosity)), logging.CRITICAL
    )
    root = logging.getLogger("auditor")
    if _handler is None:
        _handler = _StderrHandler()
        _handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(_handler)
        install_log_redaction()
    logging.getLogger().setLevel(level)
    root.setLevel(level)


def _verbosity(ctx: click.Context) -> int:
    return int(ctx.find_root().meta.get("crm_audit.verbosity", 0))


def _count(sign: int) -> Callable[[click.Context, click.Parameter, int], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: int) -> None:
        if value:
            meta = ctx.find_root().meta
            meta["crm_audit.verbosity"] = meta.get("crm_audit.verbosity", 0) + sign * value
        _setup_logging(_verbosity(ctx))

    return callback


def verbosity_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """-v / -q, accepted before or after the subcommand (counts add up)."""
    f = click.option(
        "-q",
        "--quiet",
        count=True,
        expose_value=False,
        callback=_count(-1),
        help="Less output: -q no progress or warnings; -qq nothing on stdout either.",
    )(f)
    return click.option(
        "-v",
        "--verbose",
        count=True,
        expose_value=False,
        callback=_count(+1),
        help="More log output on stderr (-v info, -vv debug).",
    )(f)


def config_option(help_text: str, required: bool = False) -> Callable[..., Any]:
    """The one spelling of the config file option, on every command."""
    return click.option(
        "-c",
        "--config",
        "config_path",
        type=click.Path(path_type=Path),
        required=required,
        help=help_text,
    )


def _fail(exc: AuditorError) -> None:
    click.echo(f"error: {redact(exc)}", err=True)
    sys.exit(exc.exit_code)


def _load(config_path: Path | None) -> AuditConfig:
    return load_config(config_path) if config_path else default_config()


class _Group(click.Group):
    def invoke(self, ctx: click.Context):  # noqa: ANN201 - click's signature
        try:
            return super().invoke(ctx)
        except AuditorError as exc:
            _fail(exc)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="crm-audit")
@verbosity_options
def main() -> None:
    """Audit a B2B sales pipeline against a defined sales process.

    Pulls opportunities from Salesforce, HubSpot or CSV exports, maps them onto one common stage
    model, flags process violations, computes pipeline-health metrics and writes reports.
    Start with `crm-audit run` to audit the bundled demo organisation.

    \b
    Exit codes (every command):
      0  success (run: no finding at or above --fail-on)
      1  run: findings at or above --fail-on (only new ones with --new-only)
      2  user error: config, command line, input data, an unusable output folder
      3  the CRM could not be read, or the disk is full
      4  run: reports written, but some recipient could not be sent to
      5  run: another run of the same source holds the run lock
    """


def _selectors(values: tuple[str, ...]) -> list[str]:
    """Repeatable, comma-separated selector options → one list."""
    return [t.strip() for v in values for t in v.split(",") if t.strip()]


def with_cli_selection(
    config: AuditConfig, select: list[str], ignore: list[str]
) -> AuditConfig:
    """The config with --select / --ignore applied: --select replaces `rules.select`;
    --ignore is added to `rules.ignore` (the rules' parameters and severities are kept)."""
    from auditor.engine import check_selectors

    check_selectors(select, None, "--select", "command line")
    check_selectors(ignore, None, "--ignore", "command line")
    if not select and not ignore:
        return config
    config = config.model_copy(deep=True)
    if select:
        config.rules.select = select
    config.rules.ignore = [*config.rules.ignore, *ignore]
    return config


def _history(run_result: Any) -> dict[str, Any] | None:
    """The run's diff with the previous run as a dict (None on a source's first run)."""
    h = run_result.history
    if h is None or isinstance(h, dict):
        return h
    return h.to_dict()


def failing_findings(run_result: Any, fail_on: str, new_only: bool) -> int:
    """How many findings make the run fail: severity at or above ``fail_on`` (and, with
    ``new_only``, not present in the last successful run; all count on a source's first run)."""
    from auditor.results import SEVERITY_RANK

    if fail_on == "never":
        return 0
    floor = SEVERITY_RANK[fail_on]
    hist = _history(run_result)
    if new_only and hist is not None:
        severities = [str(v.get("severity")) for v in hist.get("new_items", [])]
    else:
        severities = [str(s) for s in run_result.result.violations["severity"]]
    return sum(1 for sev in severities if SEVERITY_RANK.get(sev, 99) <= floor)


@main.command()
@config_option("TOML config file. Without one, the bundled demo organisation is audited.")
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    help="Output folder (default: report.out_dir from the config, else ./audit-report).",
)
@click.option(
    "--as-of",
    "as_of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Audit as of this day (YYYY-MM-DD); default: today in the configured time zone.",
)
@click.option("--full", is_flag=True, help="Force a full pull instead of an incremental one.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Write the configured emails as .eml files into <out>/outbox/ instead of sending.",
)
@click.option(
    "--select",
    "select",
    multiple=True,
    metavar="RULES",
    help="Rules to run, replacing `rules.select`: codes (ST04), prefixes (ST), names "
    "(stale-proposal), groups (stages) or ALL; repeat or separate with commas.",
)
@click.option(
    "--ignore",
    "ignore",
    multiple=True,
    metavar="RULES",
    help="Rules to skip, added to `rules.ignore` (same forms as --select).",
)
@click.option(
    "--fail-on",
    "fail_on",
    type=click.Choice(FAIL_ON),
    default="never",
    show_default=True,
    help="Exit 1 when a finding of this severity or higher is found.",
)
@click.option(
    "--new-only",
    is_flag=True,
    help="With --fail-on: count only findings new since the last successful run of the "
    "source (needs history; on a source's first run every finding is new).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="What is printed on stdout: a text summary or one JSON object.",
)
@verbosity_options
@click.pass_context
def run(
    ctx: click.Context,
    config_path: Path | None,
    out_dir: Path | None,
    as_of,  # noqa: ANN001
    full: bool,
    dry_run: bool,
    select: tuple[str, ...],
    ignore: tuple[str, ...],
    fail_on: str,
    new_only: bool,
    fmt: str,
) -> None:
    """Pull the source, audit it, write the reports and email them as configured.

    Writes report.html/.md/.txt, assessment.html/.md, digests/, violations.csv/.json,
    metrics.json and run.json into the output folder, sends the [delivery] emails (or writes
    them as .eml with --dry-run) and prints a summary (or, with --format json, one JSON object
    on one line) on stdout. Progress goes to stderr: a live display on a terminal, plain lines
    otherwise. The output folder is replaced whole at the end (manifest.json names the run); a
    failed run leaves it as it was.

    \b
    Exit codes:
      0  success, and no finding at or above --fail-on
      1  findings at or above --fail-on (only new ones with --new-only)
      2  user error (config, command line, input data, an unusable output folder)
      3  the CRM could not be read, or the disk is full
      4  reports written, but some recipient could not be sent to (listed in run.json);
         4 wins over 1 when both apply
      5  another run of the same source holds the run lock (after history.lock_wait_s)
    """
    from auditor.app.progress import make_progress
    from auditor.app.run import execute
    from auditor.engine import select_rules

    if new_only and fail_on == "never":
        raise AuditorError("--new-only only changes what --fail-on counts; add --fail-on LEVEL")
    config = with_cli_selection(_load(config_path), _selectors(select), _selectors(ignore))
    if new_only and not config.history.enabled:
        raise AuditorError(
            f"--new-only needs the run history, which {config.origin} disables "
            "(`history.enabled = false`)"
        )
    # rule selection and parameters are checked before pulling, not after a long pull
    selected = select_rules(config)
    log.info(
        "config %s: source %s, %d rules selected (%s)",
        config.origin,
        config.source.get("type"),
        len(selected),
        ", ".join(r.code for r in selected),
    )
    verbosity = _verbosity(ctx)
    day: date | None = check_as_of(as_of.date(), "--as-of") if as_of else None
    progress = make_progress(verbosity >= 0)
    try:
        result = execute(
            config, out_dir=out_dir, as_of=day, full=full, dry_run=dry_run, observer=progress
        )
    finally:
        if progress is not None:
            progress.close()
    failing = failing_findings(result, fail_on, new_only)
    failed = [d for d in result.delivery if d["status"] == "failed"]
    code = EXIT_DELIVERY if failed else EXIT_FINDINGS if failing else EXIT_OK
    if verbosity >= 0:
        warnings = result.facts()["warnings"]
        limit = config.report.max_listed  # 50,000 unmapped stages printed 50,000 lines
        for w in warnings[:limit]:
            click.echo(f"warning: {w}", err=True)
        if len(warnings) > limit:
            click.echo(f"warning: … and {len(warnings) - limit} more (run.json lists them all; "
                       "report.max_listed)", err=True)
        for d in result.delivery:
            if d["status"] == "skipped":
                click.echo(f"warning: skipped {d['kind']} {d['key']}: {d['error']}", err=True)
    if verbosity > -2:
        if fmt == "json":
            # one line: easy to capture (an Airflow XCom takes the last line of stdout)
            click.echo(json.dumps(_run_json(result, fail_on, new_only, failing, code),
                                  default=str))
        else:
            _echo_run_text(result, out_dir, fail_on, new_only, failing)
    for d in failed:
        click.echo(f"  failed {d['kind']} {d['recipient']}: {d['error']}", err=True)
    if failed:
        click.echo(f"error: {len(failed)} email(s) could not be sent (see run.json)", err=True)
    sys.exit(code)


def _run_json(
    result: Any, fail_on: str, new_only: bool, failing: int, code: int
) -> dict[str, Any]:
    """The --format json object: the run facts plus counts, history and the gate outcome."""
    v = result.result.violations
    facts = result.facts()
    hist = _history(result)
    prev = (hist or {}).get("previous_run") or None
    return {
        **facts,
        "score": result.score,
        "by_severity": {str(k): int(n) for k, n in v["severity"].value_counts().items()},
        "by_rule": {str(k): int(n) for k, n in v["rule_code"].value_counts().items()},
        # closed deals' process history: rates to learn from, never counted by --fail-on
        "process_findings": int(len(result.result.process)),
        "notes": list(result.result.notes),
        "history": None
        if hist is None
        else {
            "previous_run": prev,
            "new": hist.get("new"),
            "resolved": hist.get("resolved"),
            "persisting": hist.get("persisting"),
        },
        "outputs": [str(p) for p in result.outputs],
        "delivery_results": [
            {k: d.get(k) for k in ("kind", "key", "recipient", "status", "error")}
            for d in result.delivery
        ],
        "fail_on": fail_on,
        "new_only": new_only,
        "failing_findings": failing,
        "exit_code": code,
    }


def _echo_run_text(
    result: Any, out_dir: Path | None, fail_on: str, new_only: bool, failing: int
) -> None:
    facts = result.facts()
    counts = result.result.violations["rule_code"].value_counts()
    click.echo(
        f"Audited {facts['records']} opportunities from {facts['source']} as of {facts['as_of']}: "
        f"{facts['violations']} findings, hygiene score {result.score}."
    )
    n_proc = len(result.result.process)
    if n_proc:
        click.echo(
            f"  plus {n_proc} process-history findings on closed deals (rates, not to-dos: "
            "process_findings.csv)"
        )
    for note in result.result.notes:
        click.echo(f"  note: {note}")
    if result.history is not None:
        h = result.history
        click.echo(
            f"Since run {h.previous_run.id}: {h.new} new, {h.resolved} resolved, "
            f"{h.persisting} still open."
        )
    for r in result.result.rules:
        n = int(counts.get(r.code, 0))
        if n:
            click.echo(f"  {r.code} {r.name:<32} {n:>6}")
    if facts["rejected_rows"]:
        click.echo(f"  {facts['rejected_rows']} source rows rejected (see the report).")
    out = result.outputs[0].parent if result.outputs else out_dir
    click.echo(f"Reports written to {out}/")
    for status, verb in (
        ("sent", "sent"),
        ("dry-run", "written to outbox/"),
        ("skipped", "skipped"),
    ):
        n = sum(1 for d in result.delivery if d["status"] == status)
        if n:
            click.echo(f"Emails {verb}: {n}")
    if fail_on != "never":
        which = "new findings" if new_only else "findings"
        verdict = "FAIL" if failing else "pass"
        click.echo(f"--fail-on {fail_on}: {failing} {which} at or above {fail_on}: {verdict}")


@main.command()
@click.argument("code", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of text.")
@config_option("Show parameters as configured in this file.")
@verbosity_options
def rules(code: str | None, as_json: bool, config_path: Path | None) -> None:
    """Document every rule, or one rule by CODE or name."""
    from auditor.plugins import rule_classes as all_rules

    classes = all_rules()
    if code:
        key = code.casefold()
        classes = [r for r in classes if key in (r.code.casefold(), r.name.casefold())]
        if not classes:
            from auditor.suggest import did_you_mean

            names = [n for r in all_rules() for n in (r.code, r.name)]
            raise AuditorError(
                f"no rule has code or name {code!r}{did_you_mean(code, names)} "
                "(see `crm-audit rules`)"
            )
    docs = [r.describe() for r in classes]
    if as_json:
        click.echo(json.dumps(docs, indent=2, default=str))
        return
    for d in docs:
        click.echo(f"{d['code']}  {d['name']}  [{d['severity']}, {d['group']}]")
        click.echo(textwrap.indent(textwrap.fill(d["summary"], 88), "    "))
        if code:
            if d.get("details"):
                click.echo()
                click.echo(textwrap.indent(textwrap.fill(d["details"], 84), "    "))
            for label in ("why", "fix"):
                title = "Why it matters" if label == "why" else "How to fix"
                click.echo(f"\n    {title}:")
                click.echo(textwrap.indent(textwrap.fill(d[label], 84), "      "))
            if d["requires"]:
                click.echo(f"\n    Needs from the source: {', '.join(d['requires'])}")
        if d["params"]:
            click.echo(
                "    Parameters:"
                if code
                else "    params: "
                + ", ".join(f"{k}={v['default']}" for k, v in d["params"].items())
            )
            if code:
                for k, v in d["params"].items():
                    click.echo(f"      {k} ({v['type']}, default {v['default']!r}): {v['help']}")
        if code and d.get("example"):
            _echo_example(d["example"])
        click.echo()


def _echo_example(ex: dict) -> None:
    """A flagged record from the rule's documented example (checked by the test suite)."""
    click.echo(f"\n    Example (audit as of {ex.get('as_of', '?')}):")
    fields = ", ".join(f"{k}={v!r}" for k, v in ex.get("record", {}).items())
    click.echo(textwrap.indent(textwrap.fill(f"record: {fields}", 84), "      "))
    for other in ex.get("others", []):
        more = ", ".join(f"{k}={v!r}" for k, v in other.items())
        click.echo(textwrap.indent(textwrap.fill(f"other record: {more}", 84), "      "))
    if ex.get("history"):
        path = " → ".join(f"{st} ({day})" for st, day in ex["history"])
        click.echo(textwrap.indent(textwrap.fill(f"stage history: {path}", 84), "      "))
    for owner in ex.get("owners", []):
        more = ", ".join(f"{k}={v!r}" for k, v in owner.items())
        click.echo(f"      owner: {more}")
    click.echo(f"      flagged: {ex.get('message', '')}")


@main.command("check-config")
@config_option("TOML config file to check (default: the built-in demo config).")
@click.argument("config_file", type=click.Path(path_type=Path), required=False, metavar="[FILE]")
@click.option(
    "--offline",
    is_flag=True,
    help="Check everything that needs no network; do not contact the source.",
)
@verbosity_options
def check_config(config_path: Path | None, config_file: Path | None, offline: bool) -> None:
    """Check a config file and (unless --offline) the source connection, without auditing.

    \b
    Offline checks: every key and value, rule selection and parameters, the suppressions
    file, source options, secrets (each *_env key names a variable set in the environment),
    the schedule (each cron expression valid and firing), and which selected rules cannot
    run on this source given its mapping (listed with the reason). Without --offline it then
    connects to the source and reports what it finds (unmapped stages, API usage).
    Exit 0 when nothing is wrong (rules that cannot run are warnings), 2 otherwise.
    FILE as an argument is deprecated: use --config FILE.
    """
    from auditor.app.checks import run_checks

    if config_file is not None:
        click.echo(
            "warning: `crm-audit check-config FILE` is deprecated; use "
            "`crm-audit check-config --config FILE`",
            err=True,
        )
        if config_path is not None and config_path != config_file:
            raise AuditorError("give the config file once: --config FILE")
        config_path = config_file
    config = _load(config_path)
    results = run_checks(config, network=not offline)
    mark = {"ok": "ok", "warning": "warning", "error": "ERROR", "skipped": "skipped"}
    for r in results:
        click.echo(f"{mark[r.status]:<7} {r.title}")
        for line in r.details:
            click.echo(textwrap.indent(line, "          "))
    errors = [r for r in results if r.status == "error"]
    if errors:
        click.echo(f"{config.origin}: {len(errors)} problem(s) found.", err=True)
        sys.exit(max(r.exit_code for r in errors))
    selected = next((r.title for r in results if r.title.endswith("rules selected")), "")
    click.echo(f"{config.origin}: configuration is valid; {selected}.")


@main.command()
@config_option("TOML config file with [[schedule.jobs]] entries.", required=True)
@verbosity_options
def schedule(config_path: Path) -> None:
    """Run the configured jobs on their cron schedules until stopped (Ctrl-C or SIGTERM).

    Each `[[schedule.jobs]]` entry has a name, a cron expression and a time zone. A job never
    overlaps itself; missed runs are coalesced into one within `schedule.misfire_grace_s`; a
    failed run is logged, recorded in the history and alerts `schedule.alert_emails`.
    Prints each job's next run time at start.
    """
    from auditor.app.scheduler import AuditScheduler

    config = load_config(config_path)
    AuditScheduler.from_config(config).run_forever(echo=click.echo)


@main.command()
@config_option("Config whose history to list (default: the demo's, "
               "./audit-report.history.sqlite).")
@click.option("-n", "--limit", default=20, show_default=True, help="How many runs to list.")
@click.option("--source", help="Only runs of this source (its name).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@verbosity_options
def history(config_path: Path | None, limit: int, source: str | None, as_json: bool) -> None:
    """List past runs, most recent first: status, findings, new / resolved, score, duration."""
    from auditor.history import history_path, open_for_reading

    config = _load(config_path)
    path = history_path(config)
    if path is None:
        raise AuditorError(f"{config.origin}: history is disabled (`history.enabled = false`)")
    if not path.exists():
        if as_json:
            click.echo("[]")
        else:
            click.echo(f"No history yet ({path} does not exist).")
        return
    with open_for_reading(path) as store:  # opens on a full disk too
        runs = store.runs(source=source, limit=limit)
    if as_json:
        click.echo(json.dumps(runs, indent=2, default=str))
        return
    if not runs:
        click.echo(f"No runs recorded in {path}.")
        return
    click.echo(
        f"{'run':>5}  {'status':<11} {'source':<14} {'started (UTC)':<19}  {'as of':<10} "
        f"{'records':>8} {'findings':>8} {'new':>5} {'gone':>5} {'score':>6} {'secs':>6} "
        f"{'calls':>6}"
    )
    for r in runs:
        c = r["counts"] or {}
        started = str(r["started_at"])[:19].replace("T", " ")
        kind = "*" if r["incremental"] else ""
        click.echo(
            f"{r['id']:>5}  {r['status']:<11} {str(r['source'])[:14]:<14} {started:<19}  "
            f"{r['as_of'] or '':<10} {_n(r['records']):>8} {_n(r['violations']):>8} "
            f"{_n(c.get('new')):>5} {_n(c.get('resolved')):>5} {_n(r['score']):>6} "
            f"{_n(r['duration_s'], '.1f'):>6} {_n(r['api_calls']) + kind:>6}"
        )
        if r["error"]:
            click.echo(f"       {redact(r['error'])[:160]}")
    if any(r["incremental"] for r in runs):
        click.echo("* incremental pull")


def _n(v: object, fmt: str = "") -> str:
    return "-" if v is None else format(v, fmt)


if __name__ == "__main__":  # pragma: no cover
    main()
