"""Render an AuditRun into the report files of the output folder.

Output folder layout (see docs/outputs.md):

    report.html  report.md  report.txt      manager report (email HTML, Markdown, plain text)
    appendix.html                           the details behind the manager report
    explorer.html                           every finding, filter / sort / search (offline)
    assessment.html  assessment.md          consultant assessment
    violations.csv  violations.json         every to-do finding (the reports cap their lists)
    process_findings.csv / .json            process history: findings on closed deals that
                                            are not to-dos (how they moved), same columns
    metrics.json  run.json                  metrics and run facts (versioned JSON Schemas)
    digests/owner-<id>.html|.txt            one digest per owner with findings
    digests/manager-<id>.html|.txt          team roll-up per manager (direct reports)
"""

from __future__ import annotations

import hashlib
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jinja2

from auditor.config import AuditConfig
from auditor.files import mkdir_private, write_private
from auditor.results import AuditRun
from reports.context import manager_groups, metrics_dict, report_context, team_context
from reports.digests import digest_contexts, digest_rows, render_digest
from reports.format import FILTERS
from reports.htmlmail import compact_html
from reports.machine import write_json, write_run_json, write_violations_csv, write_violations_json

TEMPLATES = Path(__file__).parent / "templates"
_BLANK_LINES = re.compile(r"\n{3,}")

__all__ = ["environment", "report_context", "write_reports", "render", "run_environment"]


class _CompiledTemplates(jinja2.BytecodeCache):
    """Compiled templates shared by every environment of this process.

    Each run builds its own environment (its template folder may differ), and parsing and
    compiling the shipped templates again took a third of a small run. Entries are keyed by
    template name and file and are used only while the source's checksum still matches; all
    environments are built alike (below), so the same source compiles to the same code.
    """

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        code = self._code.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


_COMPILED = _CompiledTemplates()


def environment(template_dir: Path | None = None) -> jinja2.Environment:
    """Jinja environment: user templates first, then the shipped ones; autoescape for HTML.

    A user template may extend the shipped one of the same name with
    ``{% extends "default:report.html.j2" %}`` and override only some blocks; a user
    ``base.html.j2`` restyles every HTML output (the shipped ones extend ``base.html.j2``).
    """
    shipped = jinja2.FileSystemLoader(str(TEMPLATES))
    loaders: list[jinja2.BaseLoader] = [jinja2.PrefixLoader({"default": shipped}, delimiter=":")]
    if template_dir is not None:
        loaders.append(jinja2.FileSystemLoader(str(template_dir)))
    loaders.append(shipped)
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "htm", "xml", "html.j2"), default_for_string=True
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        # templates do not change during a run: no stat() of every template file per render
        auto_reload=False,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        bytecode_cache=_COMPILED,
    )
    env.filters.update(FILTERS)
    return env


def run_environment(run: AuditRun) -> jinja2.Environment:
    tdir = run.config.report.template_dir
    return environment(run.config.resolve(tdir) if tdir else None)


def render(env: jinja2.Environment, name: str, ctx: dict[str, Any]) -> str:
    """Render one template; HTML loses indentation and blank lines, text gets tidy blank lines."""
    return finish(name, env.get_template(name).render(**ctx))


def finish(name: str, out: str) -> str:
    """The rendered text of template ``name`` made tidy for its format (see :func:`render`)."""
    if name.endswith(".html.j2"):
        return compact_html(out)
    if "\n\n\n" in out:
        out = _BLANK_LINES.sub("\n\n", out)
    return out.strip() + "\n"


def safe_name(key: str) -> str:
    """A file-name-safe form of an owner id or team name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", key).strip("._") or "_"


def file_stems(keys: list[str]) -> dict[str, str]:
    """A unique, file-name-safe stem per key.

    A key that is already safe keeps its own name (``owner-O1``); one that is not gets its
    safe form plus 8 hex digits of its SHA-256 (``j.doe@a`` → ``j.doe_a-<hash>``), so two keys
    that slug alike (``j.doe@a``, ``j.doe_a``) never share a file, also on a case-insensitive
    file system (``O1`` and ``o1`` both get a hash).
    """
    slugs = {k: safe_name(k) for k in keys}
    folded: dict[str, int] = {}
    for slug in slugs.values():
        folded[slug.casefold()] = folded.get(slug.casefold(), 0) + 1
    out = {}
    for key, slug in slugs.items():
        if slug != key or folded[slug.casefold()] > 1:
            slug = f"{slug}-{hashlib.sha256(key.encode('utf-8')).hexdigest()[:8]}"
        out[key] = slug
    return out


def _write(path: Path, text: str) -> Path:
    return write_private(path, text)


def wants_run_json(config: AuditConfig) -> bool:
    """run.json belongs to the machine outputs (format "json")."""
    return "json" in config.report.formats


def write_reports(run: AuditRun, out_dir: Path, *, run_json: bool = True) -> list[Path]:
    """Write the configured formats into ``out_dir``; returns the files written.

    ``run_json=False`` leaves run.json to the caller: a run writes it once, after delivery.
    """
    from reports.assessment import assessment_context

    out_dir = mkdir_private(Path(out_dir))
    rc = run.config.report
    formats = rc.formats
    env = run_environment(run)
    written: list[Path] = []
    ctx = report_context(run)
    for fmt in ("html", "md", "txt"):
        if fmt in formats:
            text = render(env, f"report.{fmt}.j2", ctx)
            written.append(_write(out_dir / f"report.{fmt}", text))
    if "html" in formats:
        written.append(_write(out_dir / "appendix.html", render(env, "appendix.html.j2", ctx)))
    if rc.explorer and "html" in formats:
        from reports.explorer import explorer_context

        ectx = explorer_context(run, {"title": rc.title, "facts": ctx["facts"]})
        written.append(_write(out_dir / "explorer.html", render(env, "explorer.html.j2", ectx)))
    if rc.assessment:
        actx = assessment_context(run, ctx)
        for fmt in ("html", "md"):
            if fmt in formats:
                written.append(
                    _write(out_dir / f"assessment.{fmt}", render(env, f"assessment.{fmt}.j2", actx))
                )
        if rc.pdf:
            from reports.pdf import write_pdf

            html = render(env, "assessment.html.j2", actx)
            written.append(write_pdf(html, out_dir / "assessment.pdf"))
    if rc.digests:
        written += write_digests(run, env, out_dir / "digests")
    process = run.result.process
    if "csv" in formats:
        written.append(write_violations_csv(run.result.violations, out_dir / "violations.csv"))
        written.append(write_violations_csv(process, out_dir / "process_findings.csv"))
    if "json" in formats:
        written.append(write_violations_json(run.result.violations, out_dir / "violations.json"))
        written.append(write_violations_json(process, out_dir / "process_findings.json"))
        metrics = metrics_dict(run)
        written.append(write_json(metrics, out_dir / "metrics.json", schema="metrics"))
    if run_json and wants_run_json(run.config):
        written.append(out_dir / "run.json")
        run.outputs = written
        write_run_json(run, out_dir / "run.json")
    return written


def write_digests(run: AuditRun, env: jinja2.Environment, folder: Path) -> list[Path]:
    """One digest per owner with findings and one roll-up per manager, as HTML and text.

    The owners' deal lists come from one bulk pass (reports.digests); each owner's page is then
    a small template render. Creating thousands of files is kernel time, so the files are
    written on a second thread while the next owners render.
    """
    mkdir_private(folder)
    rows = digest_rows(run)  # every owner with findings, in one bulk pass
    groups = manager_groups(run)
    stems = file_stems([f"owner-{o}" for o in rows.owners] + [str(g["key"]) for g in groups])
    html_t, text_t = env.get_template("digest.html.j2"), env.get_template("digest.txt.j2")
    written: list[Path] = []
    batch: list[tuple[Path, str]] = []
    with ThreadPoolExecutor(max_workers=1) as pool:
        futures = []
        for ctx in digest_contexts(run, rows=rows):
            stem = stems[f"owner-{ctx['owner_id']}"]  # "owner-O1"; unsafe ids get a hash
            batch.append((folder / f"{stem}.html", render_digest(html_t, ctx, html=True)))
            batch.append((folder / f"{stem}.txt", render_digest(text_t, ctx, html=False)))
            if len(batch) >= 256:
                futures.append(pool.submit(_write_all, batch))
                batch = []
        for group in groups:
            ctx = team_context(run, group)
            stem = stems[str(group["key"])]
            batch.append((folder / f"{stem}.html", render(env, "team.html.j2", ctx)))
            batch.append((folder / f"{stem}.txt", render(env, "team.txt.j2", ctx)))
        futures.append(pool.submit(_write_all, batch))
        for f in futures:
            written += f.result()
    return written


def _write_all(files: list[tuple[Path, str]]) -> list[Path]:
    return [_write(path, text) for path, text in files]
