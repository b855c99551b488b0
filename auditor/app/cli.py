"""The ``crm-audit`` command line (click)."""

from __future__ import annotations

import json
import logging
import sys
import textwrap
from datetime import date
from pathlib import Path

import click

from auditor import __version__
from auditor.config import AuditConfig, check_as_of, default_config, load_config
from auditor.errors import AuditorError
from auditor.secrets import install_log_redaction, redact

log = logging.getLogger("auditor")


def _setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    install_log_redaction()


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
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Audit a B2B sales pipeline against a defined sales process.

    Pulls opportunities from Salesforce, HubSpot or CSV exports, maps them onto one common stage
    model, flags process violations, computes pipeline-health metrics and writes reports.
    Start with `crm-audit run` to audit the bundled demo organisation.
    """
    _setup_logging(verbose)


@main.command()
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    help="TOML config file. Without one, the bundled demo organisation is audited.",
)
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
def run(config_path: Path | None, out_dir: Path | None, as_of, full: bool, dry_run: bool) -> None:  # noqa: ANN001
    """Pull the source, audit it, write the reports and email them as configured.

    Writes report.html/.md/.txt, assessment.html/.md, digests/, violations.csv/.json,
    metrics.json and run.json into the output folder, sends the [delivery] emails (or writes
    them as .eml with --dry-run) and prints a short summary. The output folder is replaced
    whole at the end (manifest.json names the run); a failed run leaves it as it was.
    Exit status 0 on success; 2 on a user error (config, input data, an unusable output
    folder); 3 when the CRM could not be read or the disk is full; 4 when the reports were
    written but some recipient could not be sent to (listed in run.json); 5 when another run
    of the same source holds the history store's run lock (after history.lock_wait_s).
    """
    from auditor.app.run import execute

    config = _load(config_path)
    day: date | None = check_as_of(as_of.date(), "--as-of") if as_of else None
    result = execute(config, out_dir=out_dir, as_of=day, full=full, dry_run=dry_run)
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
    limit = config.report.max_listed  # 50,000 unmapped stages printed 50,000 lines
    for w in facts["warnings"][:limit]:
        click.echo(f"  warning: {w}")
    if len(facts["warnings"]) > limit:
        click.echo(f"  … and {len(facts['warnings']) - limit} more warnings (run.json lists "
                   "them all; report.max_listed)")
    out = result.outputs[0].parent if result.outputs else out_dir
    click.echo(f"Reports written to {out}/")
    failed = [d for d in result.delivery if d["status"] == "failed"]
    for status, verb in (
        ("sent", "sent"),
        ("dry-run", "written to outbox/"),
        ("skipped", "skipped"),
    ):
        n = sum(1 for d in result.delivery if d["status"] == status)
        if n:
            click.echo(f"Emails {verb}: {n}")
    for d in result.delivery:
        if d["status"] == "skipped":
            click.echo(f"  skipped {d['kind']} {d['key']}: {d['error']}")
    if failed:
        for d in failed:
            click.echo(f"  failed {d['kind']} {d['recipient']}: {d['error']}", err=True)
        click.echo(f"error: {len(failed)} email(s) could not be sent (see run.json)", err=True)
        sys.exit(4)


@main.command()
@click.argument("code", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of text.")
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    help="Show parameters as configured in this file.",
)
def rules(code: str | None, as_json: bool, config_path: Path | None) -> None:
    """Document every rule, or one rule by CODE or name."""
    from auditor.plugins import rule_classes as all_rules

    classes = all_rules()
    if code:
        key = code.casefold()
        classes = [r for r in classes if key in (r.code.casefold(), r.name.casefold())]
        if not classes:
            raise AuditorError(f"no rule has code or name {code!r} (see `crm-audit rules`)")
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
@click.argument("config_file", type=click.Path(path_type=Path))
@click.option("--offline", is_flag=True, help="Validate the file only; do not contact the source.")
def check_config(config_file: Path, offline: bool) -> None:
    """Validate a config file and the source connection, without auditing.

    Checks every key, the rule parameters and selections, the suppressions file, and (unless
    --offline) connects to the source and reports what it finds (unmapped stages, API usage).
    """
    from auditor.engine import select_rules
    from auditor.suppressions import load_suppressions
    from connectors.registry import build_connector

    config = load_config(config_file)
    selected = select_rules(config)
    load_suppressions(config)
    connector = build_connector(config)
    click.echo(f"{config_file}: configuration is valid; {len(selected)} rules selected.")
    if not offline:
        from auditor.app.checks import check_readable_fields

        facts = connector.check()
        for k, v in facts.items():
            click.echo(f"  {k}: {v}")
        for line in check_readable_fields(facts, config):
            click.echo(f"  {line}")
        click.echo(f"  source {connector.source_name}: reachable")


@main.command()
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    required=True,
    help="TOML config file with [[schedule.jobs]] entries.",
)
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
@click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    help="Config whose history to list (default: the demo's, ./audit-report.history.sqlite).",
)
@click.option("-n", "--limit", default=20, show_default=True, help="How many runs to list.")
@click.option("--source", help="Only runs of this source (its name).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
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
