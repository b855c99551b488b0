"""SMTP: temporary replies are retried on a new connection (issue 17 item 7).

A real aiosmtpd server on 127.0.0.1 behaves like a relay with a per-connection limit: it accepts
3 messages on a connection and answers the 4th with "421 4.7.0 Too many messages" (and so on
for every connection). Every message must still arrive, each exactly once. A relay that only
ever answers 4xx gets each message tried 1 + retries times, then a clear failure. An owner whose
CRM e-mail field holds two addresses gets the digest at both.
"""

from __future__ import annotations

import email
import json
import socket
import time
from email import policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner

from auditor.app.cli import main
from tests.security.matrix import HARDENING, record

DATA = Path(__file__).parent / "data" / "hostile"
MANAGERS = [f"m{i}@example.com" for i in range(10)]
SCENARIOS = ["smtp-421-after-3-per-connection", "smtp-4xx-always", "smtp-owner-two-addresses"]


class Relay:
    """Accepts ``per_connection`` messages per connection, then 421 (or 451 for every one)."""

    def __init__(self, per_connection: int, code: str = "421 4.7.0 Too many messages") -> None:
        self.per_connection, self.code = per_connection, code
        self.delivered: list[tuple[list[str], email.message.EmailMessage]] = []
        self.connections = 0
        self.refused = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: ANN001, ANN201, N802
        if not getattr(session, "counted", False):
            session.counted, session.accepted = True, 0
            self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802
        if session.accepted >= self.per_connection:
            self.refused += 1
            return self.code
        session.accepted += 1
        msg = email.message_from_bytes(envelope.content, policy=policy.default)
        self.delivered.append((list(envelope.rcpt_tos), msg))
        return "250 2.0.0 queued"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_with_relay(tmp: Path, relay: Relay, retries: int = 3,
                   retry_delay_s: float = 0.05) -> tuple[object, dict, float]:
    ctl = Controller(relay, hostname="127.0.0.1", port=free_port())
    ctl.start()
    cfg = tmp / "audit.toml"
    cfg.write_text(f"""[audit]
as_of = 2024-06-01
[source]
type = "csv"
name = "hostile"
stage_map_default = "salesforce"
opportunities = "{DATA / 'deals.csv'}"
owners = "{DATA / 'owners.csv'}"
[report]
formats = ["json"]
[history]
enabled = false
[delivery]
managers = {json.dumps(MANAGERS)}
owner_digests = true
[delivery.smtp]
host = "127.0.0.1"
port = {ctl.port}
security = "none"
sender = "CRM audit <audit@example.com>"
timeout_s = 5
retries = {retries}
retry_delay_s = {retry_delay_s}
""", encoding="utf-8")
    try:
        t = time.perf_counter()
        result = CliRunner().invoke(main, ["run", "--config", str(cfg), "--out", str(tmp / "out")])
        elapsed = time.perf_counter() - t
    finally:
        ctl.stop()
    run = json.loads((tmp / "out" / "run.json").read_text()) if (
        tmp / "out" / "run.json").is_file() else {}
    return result, run, elapsed


def test_relay_with_3_messages_per_connection_gets_every_message(tmp_path: Path) -> None:
    relay = Relay(per_connection=3)
    result, run, elapsed = run_with_relay(tmp_path, relay)
    assert result.exit_code == 0, (result.output, result.exception)
    statuses = [(d["recipient"], d["status"]) for d in run["delivery"]]
    sent = [r for r, s in statuses if s == "sent"]
    # 10 managers + owners with an address: u1 (two addresses), u2, @u3
    assert len(sent) == 13 and all(s == "sent" for _, s in statuses), statuses
    got = [tuple(rcpts) for rcpts, _ in relay.delivered]
    assert len(got) == 13 and len(set(got)) == 13  # each exactly once
    assert relay.refused == 4 and relay.connections == 5  # 3 + 3 + 3 + 3 + 1
    record(HARDENING, "smtp-421-after-3-per-connection", "SMTP",
           "a relay that accepts 3 messages per connection, then answers 421 (13 messages)",
           "every message delivered once (new connection after each 421)",
           f"exit 0; 13 of 13 sent, each once, over {relay.connections} connections, "
           f"{relay.refused} 421 replies retried; {elapsed:.1f} s")


def test_a_relay_that_always_answers_4xx_fails_within_the_bound(tmp_path: Path) -> None:
    relay = Relay(per_connection=0, code="451 4.3.0 Try again later")
    # no wait between retries: the bound under test is the number of attempts (13 messages x
    # waits of 0.05 s + 0.1 s were 2 s of idle test time)
    result, run, elapsed = run_with_relay(tmp_path, relay, retries=2, retry_delay_s=0)
    assert result.exit_code == 4, (result.output, result.exception)
    failed = [d for d in run["delivery"] if d["status"] == "failed"]
    assert len(failed) == 13 and relay.delivered == []
    assert relay.refused == 13 * 3  # 1 + 2 retries each, no more
    assert failed[0]["error"] == "SMTPDataError: 451 4.3.0 Try again later (after 3 attempts)"
    assert elapsed < 30
    record(HARDENING, "smtp-4xx-always", "SMTP",
           "the relay answers every message 451 (retries = 2)",
           "each message tried 3 times, then failed with the reply; exit 4",
           f"exit 4; 13 failed: {failed[0]['error']}; {relay.refused} attempts in {elapsed:.1f} s")


def test_owner_email_field_with_two_addresses_reaches_both(tmp_path: Path) -> None:
    relay = Relay(per_connection=100)
    result, run, _ = run_with_relay(tmp_path, relay)
    assert result.exit_code == 0, (result.output, result.exception)
    ann = [d for d in run["delivery"] if d["kind"] == "owner" and d["key"] == "u1"]
    assert [d["recipient"] for d in ann] == ["ann@example.com, ann.backup@example.com"]
    msgs = [(r, m) for r, m in relay.delivered if "ann@example.com" in r]
    assert len(msgs) == 1
    rcpts, msg = msgs[0]
    assert sorted(rcpts) == ["ann.backup@example.com", "ann@example.com"]
    assert [a.addr_spec for a in msg["To"].addresses] == [
        "ann@example.com", "ann.backup@example.com"]
    record(HARDENING, "smtp-owner-two-addresses", "SMTP",
           "an owner's e-mail field holds 'ann@example.com, ann.backup@example.com'",
           "one digest, delivered to both addresses",
           f"exit 0; envelope recipients {sorted(rcpts)}; To: {msg['To']}")


@pytest.mark.parametrize("field, addrs", [
    ("a@example.com; b@example.com", ["a@example.com", "b@example.com"]),
    ("Ann <a@example.com>", ["a@example.com"]),
    ('"Lee, Ann" <a@example.com>', ["a@example.com"]),
])
def test_address_lists(field, addrs) -> None:
    from reports.delivery import parse_addresses

    assert [a.addr_spec for a in parse_addresses(field)] == addrs
