"""The chat summary reaches a webhook (a local HTTP server started here) with the right fields;
a failing webhook fails the delivery, not the run (exit status 4, reports written)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.app.cli import main
from auditor.config import parse_config
from reports.chat import post_summary
from tests.reports.reports_fixture import HISTORY, make_run

SECRET_PATH = "/services/T000/B000/s3cr3tT0ken"


class Hook:
    """A webhook endpoint: records each POST; answers like Slack (200 ok) or as told."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict, str]] = []
        self.status = 200
        self.body = "ok"

    def handler(self) -> type[BaseHTTPRequestHandler]:
        hook = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                hook.posts.append(
                    (self.path, json.loads(raw), self.headers.get("Content-Type", ""))
                )
                data = hook.body.encode()
                self.send_response(hook.status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        return H


@pytest.fixture
def hook() -> Iterator[tuple[Hook, str]]:
    h = Hook()
    server = ThreadingHTTPServer(("127.0.0.1", 0), h.handler())
    # a short poll: shutdown() waits up to one poll interval (0.5 s by default)
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                         daemon=True)
    t.start()
    try:
        yield h, f"http://127.0.0.1:{server.server_address[1]}{SECRET_PATH}"
    finally:
        server.shutdown()
        server.server_close()
        t.join(5)


def test_slack_message_field_by_field(hook, tmp_path: Path) -> None:
    h, url = hook
    run = make_run(tmp_path, history=HISTORY)
    cfg = parse_config(
        {
            "source": {"type": "demo"},
            "delivery": {"chat": {"kind": "slack", "url_env": "HOOK", "top_deals": 3}},
        },
        origin="<t>",
    ).delivery.chat
    res = post_summary(run, cfg, dry_run=False, out_dir=tmp_path, env={"HOOK": url})
    assert res["status"] == "sent" and res["error"] is None
    assert res["recipient"] == "slack webhook ($HOOK)" and SECRET_PATH not in json.dumps(res)
    [(path, body, ctype)] = h.posts
    assert path == SECRET_PATH and ctype == "application/json"
    assert body["text"] == "Pipeline hygiene audit: score 58.3, 4 deals to fix now"
    head, deals = (b["text"]["text"] for b in body["blocks"])
    assert head == (
        "*Pipeline hygiene audit* · fixture · as of 2026-11-20\n"
        "Hygiene score *58.3* / 100 (over 6 opportunities, 3 flagged) · open amount at risk "
        "*€162,000* · 4 deals to fix now · 1 new, 2 resolved since the last run"
    )
    assert deals.split("\n") == [
        "*Fix these first*",
        "• <https://crm.example.com/opp/D1|Acme – Renewal> — Alice Owner, Proposal, €50,000: "
        "open in proposal with no next step",
        "• <https://crm.example.com/opp/D5|Umbrella> — Carol NoEmail, Proposal, €20,000: "
        "open in proposal with no next step",
        # the deal named <script>… is escaped for Slack and its javascript: URL is not linked
        "• &lt;script&gt;alert(1)&lt;/script&gt; — Bob Owner, Discovery, €12,000: "
        "open in discovery with no next step",
    ]


def test_teams_card_field_by_field(hook, tmp_path: Path) -> None:
    h, url = hook
    h.status, h.body = 202, ""
    run = make_run(tmp_path, {"report": {"link_base": "https://intranet.example.com/audit/"}})
    cfg = parse_config(
        {
            "source": {"type": "demo"},
            "delivery": {"chat": {"kind": "teams", "url_env": "HOOK", "top_deals": 3}},
        },
        origin="<t>",
    ).delivery.chat
    res = post_summary(run, cfg, dry_run=False, out_dir=tmp_path, env={"HOOK": url})
    assert res["status"] == "sent"
    [(_, body, _)] = h.posts
    assert body["type"] == "message"
    [att] = body["attachments"]
    assert att["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = att["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    title, sub, facts, fix_head, *deals = card["body"]
    assert title["text"] == "Pipeline hygiene audit" and sub["text"] == "fixture · as of 2026-11-20"
    assert facts["facts"] == [
        {"title": "Hygiene score", "value": "58.3 / 100 (over 6 opportunities, 3 flagged)"},
        {"title": "Open amount at risk", "value": "€162,000"},
        {"title": "Deals to fix now", "value": "4"},
        {"title": "Since the last run", "value": "first run"},
    ]
    assert fix_head["text"] == "Fix these first"
    assert [d["items"][0]["text"] for d in deals] == [
        "Acme – Renewal",
        "Umbrella",
        "<script>alert(1)</script>",
    ]
    assert [d.get("selectAction", {}).get("url") for d in deals] == [
        "https://crm.example.com/opp/D1",
        "https://crm.example.com/opp/D5",
        None,
    ]
    assert card["actions"] == [
        {
            "type": "Action.OpenUrl",
            "title": "All findings",
            "url": "https://intranet.example.com/audit/explorer.html",
        }
    ]


def test_failing_webhook_exits_4_and_keeps_the_reports(hook, tmp_path: Path) -> None:
    h, url = hook
    h.status, h.body = 404, "no_service"
    cfg = tmp_path / "audit.toml"
    cfg.write_text(
        '[source]\ntype = "demo"\nsize = 200\n'
        f'[report]\nout_dir = "{tmp_path / "out"}"\n'
        '[delivery.chat]\nkind = "slack"\nurl_env = "CRM_AUDIT_SLACK_URL"\n'
    )
    r = CliRunner().invoke(main, ["run", "--config", str(cfg)], env={"CRM_AUDIT_SLACK_URL": url})
    assert r.exit_code == 4, r.output
    assert len(h.posts) == 1
    run_json = json.loads((tmp_path / "out" / "run.json").read_text())
    [chat] = [d for d in run_json["delivery"] if d["kind"] == "chat"]
    assert chat["status"] == "failed"
    assert chat["error"].startswith("webhook answered 404: no_service")
    assert run_json["status"] == "delivery_failed"
    assert (tmp_path / "out" / "report.html").exists()
    everything = r.output + (tmp_path / "out" / "run.json").read_text()
    assert SECRET_PATH not in everything and "s3cr3tT0ken" not in everything
