"""Chat summary: a short message to a Slack incoming webhook or a Microsoft Teams workflow.

Score with its basis, new / resolved, money at risk and the top fix-now deals, with a link to
each CRM record. The webhook URL is a secret (it alone authorises posting): it comes from the
environment variable named by ``delivery.chat.url_env``, is registered for redaction, and
never reaches run.json, logs or errors. A failed post is reported like a failed e-mail (the
run exits with status 4; the reports are written).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from auditor.config import ChatSection
from auditor.errors import ConfigError
from auditor.results import AuditRun
from auditor.secrets import read_secret, redact
from reports.context import report_context
from reports.format import money, number, oneline, safe_url, stage_label

_LOCAL = ("localhost", "127.0.0.1", "::1")


def summary(run: AuditRun, top: int) -> dict[str, Any]:
    """The facts the message carries, as plain values (both formats are built from this)."""
    ctx = report_context(run)
    h = ctx["history"]
    deals = [
        {
            "name": oneline(d["name"]),
            "url": safe_url(d["url"]),
            "owner": oneline(d["owner"]),
            "stage": stage_label(d["stage"]),
            "amount": money(d["amount"], d.get("currency")),
            "finding": oneline(d["findings"][0]["message"]) if d["findings"] else "",
        }
        for d in ctx["fix_deals"][:top]
    ]
    basis = ctx["basis"]
    return {
        "title": oneline(ctx["title"]),
        "source": oneline(ctx["facts"]["source"]),
        "as_of": ctx["facts"]["as_of"],
        "score": number(ctx["score"]) if ctx["score"] is not None else "n/a",
        "basis": f"over {number(basis['opportunities'])} opportunities, "
        f"{number(basis['flagged'])} flagged",
        "at_risk": " + ".join(money(r["amount"], r["currency"]) for r in ctx["risk"]) or "none",
        "to_fix": ctx["fix_deals_total"],
        "new": None if h is None else h["new"],
        "resolved": None if h is None else h["resolved"],
        "deals": deals,
        "explorer": ctx["links"]["explorer"] if ctx["links"]["base"] else None,
    }


def _slack_escape(text: str) -> str:
    # Slack mrkdwn: only &, < and > are control characters
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(s: dict[str, Any]) -> dict[str, Any]:
    e = _slack_escape
    changes = (
        "first run: new / resolved from the next run on"
        if s["new"] is None
        else f"{s['new']:,} new, {s['resolved']:,} resolved since the last run"
    )
    head = (
        f"*{e(s['title'])}* · {e(s['source'])} · as of {s['as_of']}\n"
        f"Hygiene score *{e(s['score'])}* / 100 ({e(s['basis'])}) · "
        f"open amount at risk *{e(s['at_risk'])}* · {s['to_fix']:,} deals to fix now · {changes}"
    )
    lines = []
    for d in s["deals"]:
        name = f"<{d['url']}|{e(d['name'])}>" if d["url"] else e(d["name"])
        lines.append(
            f"• {name} — {e(d['owner'])}, {e(d['stage'])}, {e(d['amount'])}: {e(d['finding'])}"
        )
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": head}}]
    if lines:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "*Fix these first*\n" + "\n".join(lines)},
            }
        )
    if s["explorer"]:
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"<{s['explorer']}|All findings>"}],
            }
        )
    # "text" is the notification / fallback line
    return {
        "text": f"{s['title']}: score {s['score']}, {s['to_fix']:,} deals to fix now",
        "blocks": blocks,
    }


def teams_payload(s: dict[str, Any]) -> dict[str, Any]:
    """A Teams workflow webhook takes a message with one Adaptive Card attachment."""
    facts = [
        {"title": "Hygiene score", "value": f"{s['score']} / 100 ({s['basis']})"},
        {"title": "Open amount at risk", "value": s["at_risk"]},
        {"title": "Deals to fix now", "value": f"{s['to_fix']:,}"},
        {
            "title": "Since the last run",
            "value": "first run"
            if s["new"] is None
            else f"{s['new']:,} new, {s['resolved']:,} resolved",
        },
    ]
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": s["title"],
            "weight": "Bolder",
            "size": "Medium",
            "wrap": True,
        },
        {
            "type": "TextBlock",
            "text": f"{s['source']} · as of {s['as_of']}",
            "isSubtle": True,
            "wrap": True,
        },
        {"type": "FactSet", "facts": facts},
    ]
    if s["deals"]:
        body.append(
            {"type": "TextBlock", "text": "Fix these first", "weight": "Bolder", "wrap": True}
        )
    for d in s["deals"]:
        block: dict[str, Any] = {
            "type": "Container",
            "items": [
                {"type": "TextBlock", "text": d["name"], "weight": "Bolder", "wrap": True},
                {
                    "type": "TextBlock",
                    "text": f"{d['owner']}, {d['stage']}, {d['amount']}: {d['finding']}",
                    "wrap": True,
                    "spacing": "None",
                },
            ],
        }
        if d["url"]:
            block["selectAction"] = {"type": "Action.OpenUrl", "url": d["url"]}
        body.append(block)
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
    }
    if s["explorer"]:
        card["actions"] = [
            {"type": "Action.OpenUrl", "title": "All findings", "url": s["explorer"]}
        ]
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "content": card}
        ],
    }


def _result(
    cfg: ChatSection, status: str, error: str | None = None, file: str | None = None
) -> dict:
    return {
        "kind": "chat",
        "key": cfg.kind,
        "recipient": f"{cfg.kind} webhook (${cfg.url_env})",
        "subject": "chat summary",
        "status": status,
        "error": error,
        "file": file,
        "attachment": None,
    }


def post_summary(
    run: AuditRun,
    cfg: ChatSection,
    *,
    dry_run: bool,
    out_dir: Path,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Post (or, dry run, write ``outbox/chat-<kind>.json``); returns one delivery result."""
    s = summary(run, cfg.top_deals)
    payload = slack_payload(s) if cfg.kind == "slack" else teams_payload(s)
    if dry_run:
        box = Path(out_dir) / "outbox"
        box.mkdir(parents=True, exist_ok=True)
        path = box / f"chat-{cfg.kind}.json"
        path.write_text(json.dumps(payload, indent=2, ensure_ascii=False), encoding="utf-8")
        return _result(cfg, "dry-run", file=str(path))
    try:
        url = read_secret(cfg.url_env, "delivery.chat.url_env", env)
    except ConfigError as exc:
        return _result(cfg, "failed", str(exc))
    parts = urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in _LOCAL):
        return _result(cfg, "failed", f"the URL in ${cfg.url_env} is not an https:// webhook URL")
    try:
        resp = requests.post(url, json=payload, timeout=cfg.timeout_s)
    except requests.RequestException as exc:
        return _result(
            cfg, "failed", redact(f"could not post to the webhook: {type(exc).__name__}: {exc}")
        )
    # Slack answers 200 "ok"; a Teams workflow 202 Accepted
    if resp.status_code >= 300:
        body = oneline(resp.text)[:200]
        return _result(cfg, "failed", redact(f"webhook answered {resp.status_code}: {body}"))
    return _result(cfg, "sent")
