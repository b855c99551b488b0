"""Delivery: one email per configured recipient, sent by SMTP or written as .eml (dry run).

Messages are built with the standard ``email`` package under ``policy.SMTP``, which refuses a
header value containing CR or LF; on top of that every value that reaches a header (deal and
owner names in subjects, display names) is put on one line first, so CRM data can never add a
header. Each recipient is sent on its own: a refused recipient or a dropped connection fails that
message only, and every outcome is returned (and recorded in run.json) so the CLI can exit
non-zero when some recipient failed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import smtplib
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Any

from auditor.config import AuditConfig, SmtpSection
from auditor.errors import ConfigError
from auditor.files import mkdir_private, write_private
from auditor.results import AuditRun
from auditor.secrets import read_secret, redact
from reports.context import (
    manager_groups,
    owner_table,
    report_context,
    rows_by_owner,
    team_context,
    team_group,
)
from reports.digests import digest_contexts, render_digest
from reports.format import number, oneline, plural
from reports.machine import violations_csv_bytes
from reports.render import render, run_environment, safe_name

log = logging.getLogger(__name__)

DRY_RUN_SENDER = "crm-audit@localhost"
MAX_SUBJECT = 200
#: Gmail clips a message whose HTML part passes about 102 KB; the templates stay under 100 KB
#: at any org size, and an attachment that would take the whole message past this budget is
#: left off (the e-mail links the CSV instead; docs/reports.md)
MAX_ATTACHMENT_BYTES = 120_000


@dataclass
class Outgoing:
    """One message to one recipient, before it is built into an EmailMessage."""

    kind: str  # manager | owner | team
    key: str  # owner id, team or manager key, or the address for manager-report lists
    to: str  # the address as configured or as the CRM holds it
    name: str | None
    subject: str
    text: str
    html: str
    attachment: tuple[str, bytes] | None = None
    #: sizes in bytes of each part and of the whole message, set when the message is built
    sizes: dict[str, Any] | None = None

    def result(self, status: str, error: str | None = None, file: str | None = None) -> dict:
        out = {
            "kind": self.kind,
            "key": self.key,
            "recipient": oneline(self.to),
            "subject": self.subject,
            "status": status,
            "error": error,
            "file": file,
            "attachment": self.attachment[0] if self.attachment else None,
        }
        if self.sizes is not None:
            out["sizes"] = self.sizes
        return out


def _attachment(name: str, data: bytes) -> tuple[tuple[str, bytes] | None, str | None]:
    """The CSV attachment, or None and why when it would blow the message size budget."""
    if len(data) > MAX_ATTACHMENT_BYTES:
        return None, (
            f"{name} is {len(data):,} bytes, over the {MAX_ATTACHMENT_BYTES:,}-byte e-mail "
            "budget: not attached (the message links the full list)"
        )
    return (name, data), None


def measure(out: Outgoing, msg: EmailMessage, skipped: str | None = None) -> dict[str, Any]:
    """Bytes of the text part, the HTML part, the attachment and the whole message."""
    sizes: dict[str, Any] = {
        "text": len(out.text.encode("utf-8")),
        "html": len(out.html.encode("utf-8")),
        "attachment": len(out.attachment[1]) if out.attachment else 0,
        "message": len(msg.as_bytes(policy=policy.SMTP)),
    }
    if skipped:
        sizes["attachment_skipped"] = skipped
    return sizes


def header_text(v: Any) -> str:
    """Text for a header value: one line, and no RFC 2047 encoded word. The email package
    decodes "=?utf-8?q?...=0D=0A...?=" in a value it is given, line breaks included, and would
    write the decoded CR LF out as a new header line; a zero-width space after "=" keeps such
    text literal."""
    return oneline(v).replace("=?", "=\u200b?")


def _no_line_breaks(msg: EmailMessage) -> EmailMessage:
    """Last check before a message leaves: no header value holds a line break."""
    for name, value in msg.items():
        if any(c in str(value) for c in "\r\n\0"):
            raise ValueError(f"header {name} would contain a line break")
    return msg


def format_subject(template: str, fields: Mapping[str, Any]) -> str:
    """The subject with its {fields} filled, on one line, at most MAX_SUBJECT characters."""
    safe = {k: oneline(v) for k, v in fields.items()}
    try:
        text = template.format_map(safe)
    except (KeyError, ValueError, IndexError, AttributeError):
        text = template  # validated at config load; a bad format spec keeps the raw template
    text = header_text(text)
    return text if len(text) <= MAX_SUBJECT else text[: MAX_SUBJECT - 1] + "…"


def parse_address(text: str, name: str | None = None) -> Address:
    """``a@b`` or ``Name <a@b>`` → Address; ValueError when it is not one plain address."""
    raw = str(text or "")
    if any(c in raw for c in "\r\n\0"):
        raise ValueError(f"address {oneline(raw)!r} contains a line break")
    display, addr = parseaddr(raw)
    if not addr or "@" not in addr or addr.startswith("@") or addr.endswith("@"):
        raise ValueError(f"{oneline(raw)!r} is not an email address")
    try:
        return Address(display_name=header_text(name or display), addr_spec=addr)
    except (ValueError, IndexError) as exc:
        raise ValueError(f"{oneline(raw)!r} is not an email address: {exc}") from None


def parse_addresses(text: str, name: str | None = None) -> list[Address]:
    """One or more addresses separated by commas or semicolons (a CRM e-mail field may hold
    ``a@x, b@y``); ValueError when any part is not an address."""
    raw = str(text or "")
    parts = [p.strip() for p in re.split(r"[,;]", raw) if p.strip()]
    if not parts or any(c in raw for c in "\r\n\0") or any('"' in p for p in parts):
        return [parse_address(raw, name)]  # one address (quoted display names may hold commas)
    return [parse_address(p, name) for p in parts]


def build_message(out: Outgoing, sender: Address, when: datetime | None = None) -> EmailMessage:
    """multipart/alternative (text, HTML), inside multipart/mixed when a CSV is attached."""
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = sender
    msg["To"] = parse_addresses(out.to, out.name)
    msg["Subject"] = header_text(out.subject)
    msg["Date"] = format_datetime(when or datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain=sender.domain or None)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a report
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(out.text, subtype="plain", charset="utf-8")
    msg.add_alternative(out.html, subtype="html", charset="utf-8")
    if out.attachment is not None:
        filename, data = out.attachment
        msg.add_attachment(data, maintype="text", subtype="csv", filename=filename)
    return _no_line_breaks(msg)


# -- what to send to whom ------------------------------------------------------------------
def plan(run: AuditRun, config: AuditConfig) -> tuple[list[Outgoing], list[dict]]:
    """Messages to send, and results for recipients skipped up front (no email, no owners)."""
    d = config.delivery
    env = run_environment(run)
    facts = run.facts()
    v = run.result.violations
    base = {
        "date": facts["as_of"],
        "source": facts["source"],
        "title": config.report.title,
    }
    out: list[Outgoing] = []
    skipped: list[dict] = []

    if d.managers:
        ctx = report_context(run)
        html = render(env, "report.html.j2", ctx)
        text = render(env, "report.txt.j2", ctx)
        subject = format_subject(
            d.subject,
            {
                **base,
                "score": number(run.score) if run.score is not None else "n/a",
                "findings": plural(len(v), "finding"),
                "deals": plural(ctx["flagged_deals"], "deal"),
                "owner": "",
                "team": "",
            },
        )
        attach, why = (
            _attachment("violations.csv", violations_csv_bytes(v)) if d.attach_csv else (None, None)
        )
        for addr in d.managers:
            item = Outgoing("manager", addr, addr, None, subject, text, html, attach)
            item.sizes = {"attachment_skipped": why} if why else None
            out.append(item)

    owners = owner_table(run)
    if d.owner_digests:
        split = rows_by_owner(run) if d.attach_csv else {}
        html_t, text_t = env.get_template("digest.html.j2"), env.get_template("digest.txt.j2")
        for ctx in digest_contexts(run):  # the bulk path, as digests/ on disk
            oid = ctx["owner_id"]
            subject = format_subject(
                d.digest_subject,
                {
                    **base,
                    "score": number(ctx["score"]) if ctx["score"] is not None else "n/a",
                    "findings": plural(ctx["total"], "finding"),
                    "deals": plural(ctx["flagged_deals"], "deal"),
                    "owner": ctx["owner"],
                    "team": owners.at[oid, "team"] if oid in owners.index else "",
                },
            )
            email = ctx["email"]
            active = owners.at[oid, "active"] if oid in owners.index else None
            item = Outgoing(
                "owner",
                oid,
                email or "",
                ctx["owner"],
                subject,
                render_digest(text_t, ctx, html=False),
                render_digest(html_t, ctx, html=True),
                None,
            )
            if d.attach_csv:
                item.attachment, why = _attachment(
                    f"violations-{safe_name(oid)}.csv", violations_csv_bytes(split[oid])
                )
                item.sizes = {"attachment_skipped": why} if why else None
            if not email:
                skipped.append(item.result("skipped", "owner has no email address in the CRM"))
            elif active is False:
                skipped.append(item.result("skipped", "owner is inactive in the CRM"))
            else:
                out.append(item)

    groups: list[tuple[dict[str, Any], list[str]]] = []
    if d.team_rollups:
        for g in manager_groups(run):
            groups.append((g, [g["email"]] if g["email"] else []))
    for team, addrs in d.teams.items():
        groups.append((team_group(run, team), list(addrs)))
    for g, addrs in groups:
        ctx = team_context(run, g)
        subject = format_subject(
            d.team_subject,
            {
                **base,
                "score": number(ctx["score"]) if ctx["score"] is not None else "n/a",
                "findings": plural(ctx["total"], "finding"),
                "deals": plural(ctx["flagged_deals"], "deal"),
                "owner": "",
                "team": ctx["label"],
            },
        )
        members = [str(m) for m in g["members"]]
        rows = v[v["owner_id"].astype(str).isin(members)]
        attach, why = (
            _attachment(f"violations-{safe_name(g['key'])}.csv", violations_csv_bytes(rows))
            if d.attach_csv
            else (None, None)
        )
        text = render(env, "team.txt.j2", ctx)
        html = render(env, "team.html.j2", ctx)
        if not addrs:
            item = Outgoing("team", g["key"], "", ctx["label"], subject, text, html, attach)
            skipped.append(item.result("skipped", "manager has no email address in the CRM"))
            continue
        if not members:
            item = Outgoing("team", g["key"], addrs[0], None, subject, text, html, attach)
            skipped.append(item.result("skipped", f"no owner has team {g['label']!r} in the CRM"))
            continue
        name = owners.at[g["manager_id"], "name"] if g["manager_id"] in owners.index else None
        for addr in addrs:
            item = Outgoing("team", g["key"], addr, name, subject, text, html, attach)
            item.sizes = {"attachment_skipped": why} if why else None
            out.append(item)
    return out, skipped


# -- sending ------------------------------------------------------------------------------
_LOCAL = ("localhost", "127.0.0.1", "::1")


def _read_username(env_name: str, env: Mapping[str, str] | None) -> str:
    """The login name is not a secret (it is often the sender address): read, not registered."""
    value = ((os.environ if env is None else env).get(env_name) or "").strip()
    if not value:
        raise ConfigError(
            f"config key delivery.smtp.username_env names environment variable {env_name}, "
            "which is not set or empty"
        )
    return value


class SmtpSession:
    """One SMTP connection, opened lazily and re-opened after a drop."""

    def __init__(self, cfg: SmtpSection, base_dir: Path, env: Mapping[str, str] | None = None):
        self.cfg = cfg
        self.password = (
            read_secret(cfg.password_env, "delivery.smtp.password_env", env)
            if cfg.password_env
            else None
        )
        self.username = _read_username(cfg.username_env, env) if cfg.username_env else None
        if self.password is not None and cfg.security == "none" and cfg.host not in _LOCAL:
            raise ConfigError(
                "key `delivery.smtp.security`: refusing to send the SMTP password to "
                f'{cfg.host} without TLS; use "starttls" or "ssl"'
            )
        self.ca_file = (base_dir / cfg.ca_file) if cfg.ca_file else None
        self.conn: smtplib.SMTP | None = None
        self.served = 0  # messages sent on the current connection

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)

    def connect(self) -> None:
        c = self.cfg
        if c.security == "ssl":
            conn: smtplib.SMTP = smtplib.SMTP_SSL(
                c.host, c.port, timeout=c.timeout_s, context=self._context()
            )
        else:
            conn = smtplib.SMTP(c.host, c.port, timeout=c.timeout_s)
        try:
            if c.security == "starttls":  # inside the try: a refused STARTTLS closes the socket
                conn.starttls(context=self._context())
            if self.password is not None:
                user = self.username or parseaddr(c.sender)[1]
                conn.login(user, self.password)
        except BaseException:
            conn.close()
            raise
        self.conn, self.served = conn, 0

    def send(self, msg: EmailMessage) -> None:
        if self.conn is None:
            self.connect()
        assert self.conn is not None
        try:
            self.conn.send_message(msg)
        except (smtplib.SMTPServerDisconnected, OSError):
            self.drop()
            raise
        self.served += 1

    def drop(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self.conn.quit()
            self.drop()


def _error(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        parts = [
            f"{a}: {code} {m.decode(errors='replace')}" for a, (code, m) in exc.recipients.items()
        ]
        return redact("recipient refused: " + "; ".join(parts))
    if isinstance(exc, smtplib.SMTPResponseException):
        msg = exc.smtp_error
        text = msg.decode(errors="replace") if isinstance(msg, bytes) else str(msg)
        return redact(f"{type(exc).__name__}: {exc.smtp_code} {text}")
    return redact(f"{type(exc).__name__}: {exc}")


_CONNECT_ERRORS = (smtplib.SMTPConnectError, smtplib.SMTPAuthenticationError, ssl.SSLError)


def temporary(exc: BaseException, served: int) -> bool:
    """A failure worth another try on a new connection: a 4xx reply (RFC 5321: "transient
    negative completion", e.g. 421 too many messages on this connection, 451 try again later),
    or a connection dropped after it had carried ``served`` > 0 messages (a relay's
    per-connection limit; a server that hangs up before any message is not retried)."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return bool(exc.recipients) and all(
            400 <= code < 500 for code, _ in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    return served > 0 and isinstance(exc, smtplib.SMTPServerDisconnected | ConnectionResetError)


class _Failed(Exception):
    """The last error of a message that could not be sent, where it happened, and tries used."""

    def __init__(self, exc: BaseException, connecting: bool, attempts: int) -> None:
        super().__init__(str(exc))
        self.exc, self.connecting, self.attempts = exc, connecting, attempts


def _send_one(session: SmtpSession, msg: EmailMessage, sleep: Callable[[float], Any]) -> None:
    """Send one message, reconnecting and retrying temporary failures at most
    ``smtp.retries`` times (the delay doubles from ``retry_delay_s``); raises :class:`_Failed`."""
    cfg = session.cfg
    for attempt in range(1, cfg.retries + 2):
        connecting = session.conn is None
        try:
            if connecting:
                session.connect()
            connecting = False
            session.send(msg)
            return
        except (smtplib.SMTPException, OSError) as exc:
            if attempt > cfg.retries or not temporary(exc, session.served):
                raise _Failed(exc, connecting, attempt) from exc
            log.info("delivery: temporary SMTP failure (%s); new connection, attempt %d of %d",
                     _error(exc), attempt + 1, cfg.retries + 1)
            session.drop()
            sleep(cfg.retry_delay_s * 2 ** (attempt - 1))


def send_all(session: SmtpSession, items: list[tuple[Outgoing, EmailMessage]],
             sleep: Callable[[float], Any] = time.sleep) -> list[dict]:
    """Send each message; one failure never stops the others.

    A temporary failure (4xx, dropped connection) is retried on a new connection within
    ``smtp.retries``. A failure to connect or log in that outlasts them fails the remaining
    messages with the same reason (retrying each would only multiply the timeout).
    """
    results: list[dict] = []
    connect_error: str | None = None
    try:
        for out, msg in items:
            if connect_error is not None:
                results.append(out.result("failed", connect_error))
                continue
            try:
                _send_one(session, msg, sleep)
            except _Failed as failed:
                err = _error(failed.exc)
                if failed.attempts > 1:
                    err += f" (after {failed.attempts} attempts)"
                if failed.connecting:
                    err = "could not connect to the SMTP server: " + err
                log.warning("delivery to %s failed: %s", oneline(out.to), err)
                results.append(out.result("failed", err))
                if failed.connecting or isinstance(failed.exc, _CONNECT_ERRORS):
                    connect_error = err
            else:
                results.append(out.result("sent"))
    finally:
        session.close()
    return results


def deliver(
    run: AuditRun,
    config: AuditConfig,
    dry_run: bool,
    out_dir: Path,
    env: Mapping[str, str] | None = None,
) -> list[dict]:
    """Send (or, with ``dry_run``, write to ``out_dir/outbox/``) every configured message:
    the e-mails, then the chat summary when ``[delivery.chat]`` is set.

    Returns one status dict per recipient: kind, key, recipient, subject, status (sent /
    dry-run / failed / skipped), error, file, attachment (and sizes for e-mails).
    """
    results = _deliver_email(run, config, dry_run, out_dir, env)
    chat = config.delivery.chat
    if chat is not None:
        from reports.chat import post_summary

        results.append(post_summary(run, chat, dry_run=dry_run, out_dir=Path(out_dir), env=env))
    return results


def _deliver_email(
    run: AuditRun,
    config: AuditConfig,
    dry_run: bool,
    out_dir: Path,
    env: Mapping[str, str] | None,
) -> list[dict]:
    d = config.delivery
    items, results = plan(run, config)
    if not items:
        return results
    smtp = d.smtp
    if smtp is None and not dry_run:
        raise ConfigError(
            f"{config.origin}: delivery has recipients but no [delivery.smtp] table "
            "(add host and sender, or use --dry-run)"
        )
    sender_text = smtp.sender if smtp is not None else DRY_RUN_SENDER
    try:
        sender = parse_address(sender_text)
    except ValueError as exc:
        raise ConfigError(f"{config.origin}: key `delivery.smtp.sender`: {exc}") from None

    built: list[tuple[Outgoing, EmailMessage]] = []
    for out in items:
        try:
            msg = build_message(out, sender)
            out.sizes = measure(out, msg, (out.sizes or {}).get("attachment_skipped"))
            built.append((out, msg))
        except ValueError as exc:  # a bad address from the CRM or the config
            results.append(out.result("failed", redact(str(exc))))

    if dry_run:
        box = mkdir_private(Path(out_dir) / "outbox")
        for old in box.glob("*.eml"):
            old.unlink()
        for i, (out, msg) in enumerate(built, 1):
            path = box / f"{i:03d}-{out.kind}-{safe_name(out.key)}.eml"
            write_private(path, msg.as_bytes(policy=policy.SMTP))
            results.append(out.result("dry-run", file=str(path)))
        return results
    assert smtp is not None
    session = SmtpSession(smtp, config.base_dir, env)
    return results + send_all(session, built)


def send_plain(
    config: AuditConfig,
    recipients: list[str],
    subject: str,
    text: str,
    env: Mapping[str, str] | None = None,
) -> list[dict]:
    """A plain-text message to each address (e.g. the scheduler's failure alerts).

    Same SMTP settings, header safety and per-recipient outcomes as :func:`deliver`.
    """
    smtp = config.delivery.smtp
    if smtp is None:
        raise ConfigError(f"{config.origin}: sending email needs a [delivery.smtp] table")
    try:
        sender = parse_address(smtp.sender)
    except ValueError as exc:
        raise ConfigError(f"{config.origin}: key `delivery.smtp.sender`: {exc}") from None
    built: list[tuple[Outgoing, EmailMessage]] = []
    results: list[dict] = []
    for addr in recipients:
        out = Outgoing("alert", addr, addr, None, format_subject(subject, {}), text, "")
        try:
            msg = EmailMessage(policy=policy.SMTP)
            msg["From"] = sender
            msg["To"] = parse_address(addr)
            msg["Subject"] = out.subject
            msg["Date"] = format_datetime(datetime.now(UTC))
            msg["Message-ID"] = make_msgid(domain=sender.domain or None)
            msg["Auto-Submitted"] = "auto-generated"
            msg.set_content(text, subtype="plain", charset="utf-8")
            _no_line_breaks(msg)
        except ValueError as exc:
            results.append(out.result("failed", redact(str(exc))))
            continue
        built.append((out, msg))
    if not built:
        return results
    return results + send_all(SmtpSession(smtp, config.base_dir, env), built)
