"""Delivery against a real SMTP server (aiosmtpd on 127.0.0.1), dry runs and header safety."""

from __future__ import annotations

import csv
import email
import io
import shutil
import socket
import ssl
import subprocess
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from click.testing import CliRunner

from auditor.errors import ConfigError
from reports.delivery import Outgoing, build_message, deliver, parse_address
from tests.reports.reports_fixture import make_run


class Mailbox:
    """aiosmtpd handler: keeps every message; refuses recipients whose address has "bounce"."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: ANN001, ANN201, N802
        if "bounce" in address:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802
        msg = email.message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((list(envelope.rcpt_tos), msg))
        return "250 Message accepted"

    def by_to(self) -> dict[str, EmailMessage]:
        return {str(m["To"]): m for _, m in self.messages}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    box = Mailbox()
    ctl = Controller(box, hostname="127.0.0.1", port=free_port())
    ctl.start()
    try:
        yield box, ctl.port
    finally:
        ctl.stop()


def delivery_config(port: int, **extra) -> dict:
    return {
        "delivery": {
            "smtp": {
                "host": "127.0.0.1",
                "port": port,
                "security": "none",
                "sender": "CRM audit <audit@example.com>",
                "timeout_s": 10,
            },
            **extra,
        }
    }


def text_of(msg: EmailMessage, subtype: str) -> str:
    return msg.get_body(preferencelist=(subtype,)).get_content()


def test_one_message_per_recipient_with_text_html_and_attachment(smtp_server, tmp_path: Path):
    box, port = smtp_server
    cfg = delivery_config(
        port,
        managers=["boss@example.com", "Sales Ops <ops@example.com>"],
        owner_digests=True,
        team_rollups=True,
        attach_csv=True,
    )
    run = make_run(tmp_path, cfg)
    results = deliver(run, run.config, dry_run=False, out_dir=tmp_path)

    assert sorted((r["kind"], r["recipient"], r["status"]) for r in results) == [
        ("manager", "Sales Ops <ops@example.com>", "sent"),
        ("manager", "boss@example.com", "sent"),
        ("owner", "", "skipped"),  # Carol has no email in the CRM
        ("owner", "alice@example.com", "sent"),
        ("owner", "bob@example.com", "sent"),
        ("team", "maria@example.com", "sent"),
    ]
    assert [r["error"] for r in results if r["status"] == "skipped"] == [
        "owner has no email address in the CRM"
    ]
    assert sorted(rcpts[0] for rcpts, _ in box.messages) == [
        "alice@example.com",
        "bob@example.com",
        "boss@example.com",
        "maria@example.com",
        "ops@example.com",
    ]
    assert all(len(rcpts) == 1 for rcpts, _ in box.messages)
    mail = box.by_to()
    assert set(mail) == {
        "boss@example.com",
        "Sales Ops <ops@example.com>",
        "Alice Owner <alice@example.com>",
        "Bob Owner <bob@example.com>",
        "Maria Manager <maria@example.com>",
    }
    boss = mail["boss@example.com"]
    assert boss["Subject"] == "CRM hygiene audit 2026-11-20: score 58.3"
    assert boss["From"] == "CRM audit <audit@example.com>"
    assert boss["Auto-Submitted"] == "auto-generated"
    assert boss.get_content_type() == "multipart/mixed"
    alternative = boss.get_payload()[0]
    assert alternative.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in alternative.get_payload()] == [
        "text/plain",
        "text/html",
    ]
    assert "Hygiene score: 58.3 / 100" in text_of(boss, "plain")
    assert "What goes wrong most" in text_of(boss, "html")
    attachments = list(boss.iter_attachments())
    assert [a.get_filename() for a in attachments] == ["violations.csv"]
    assert attachments[0].get_content().count("\n") == 6  # header + 5 findings

    alice = mail["Alice Owner <alice@example.com>"]
    assert alice["Subject"] == "Alice Owner: 2 deals to fix in the CRM (2026-11-20)"
    for part in (text_of(alice, "plain"), text_of(alice, "html")):
        assert "Acme – Renewal" in part and "Globex" in part
        assert "Umbrella" not in part and "alert(1)" not in part and "Initech" not in part
    (csv_part,) = alice.iter_attachments()
    assert csv_part.get_filename() == "violations-O1.csv"
    rows = list(csv.DictReader(io.StringIO(csv_part.get_content())))
    assert sorted(r["opportunity_id"] for r in rows) == ["D1", "D1", "D3"]  # only Alice's rows

    assert mail["Bob Owner <bob@example.com>"]["Subject"] == (
        "Bob Owner: 1 deal to fix in the CRM (2026-11-20)"
    )
    bob = text_of(mail["Bob Owner <bob@example.com>"], "plain")
    assert "<script>alert(1)</script>" in bob and "Acme" not in bob
    team = mail["Maria Manager <maria@example.com>"]
    assert team["Subject"] == "Team Maria Manager's team: CRM hygiene 2026-11-20, score 62.5"
    assert "Umbrella" not in text_of(team, "plain")


def test_no_attachment_unless_configured(smtp_server, tmp_path: Path) -> None:
    box, port = smtp_server
    run = make_run(tmp_path, delivery_config(port, managers=["boss@example.com"]))
    deliver(run, run.config, dry_run=False, out_dir=tmp_path)
    ((_, msg),) = box.messages
    assert msg.get_content_type() == "multipart/alternative"
    assert list(msg.iter_attachments()) == []


def test_a_refused_recipient_does_not_stop_the_others(smtp_server, tmp_path: Path) -> None:
    box, port = smtp_server
    cfg = delivery_config(
        port, managers=["first@example.com", "bounce@example.com", "last@example.com"]
    )
    run = make_run(tmp_path, cfg)
    results = deliver(run, run.config, dry_run=False, out_dir=tmp_path)
    assert [(r["recipient"], r["status"]) for r in results] == [
        ("first@example.com", "sent"),
        ("bounce@example.com", "failed"),
        ("last@example.com", "sent"),
    ]
    assert results[1]["error"] == (
        "recipient refused: bounce@example.com: 550 5.1.1 mailbox unavailable"
    )
    assert sorted(r[0] for r, _ in box.messages) == ["first@example.com", "last@example.com"]


def test_unreachable_server_fails_every_recipient_without_raising(tmp_path: Path) -> None:
    cfg = delivery_config(free_port(), managers=["a@example.com", "b@example.com"])
    run = make_run(tmp_path, cfg)
    results = deliver(run, run.config, dry_run=False, out_dir=tmp_path)
    assert [r["status"] for r in results] == ["failed", "failed"]
    assert all(r["error"].startswith("could not connect to the SMTP server: ") for r in results)


def test_newline_in_an_owner_name_adds_no_header(smtp_server, tmp_path: Path) -> None:
    box, port = smtp_server
    evil = "Eve\r\nBcc: evil@example.com"
    cfg = delivery_config(port, owner_digests=True, team_rollups=True)
    run = make_run(tmp_path, cfg, owner_names={"O1": evil, "M1": "Max\nX-Injected: 1"})
    results = deliver(run, run.config, dry_run=False, out_dir=tmp_path)
    assert {r["status"] for r in results} == {"sent", "skipped"}
    assert sorted(r[0] for r, _ in box.messages) == [
        "alice@example.com",
        "bob@example.com",
        "maria@example.com",
    ]
    for _, msg in box.messages:
        assert "Bcc" not in msg and "X-Injected" not in msg
    eve = box.by_to()['"Eve Bcc: evil@example.com" <alice@example.com>']
    assert eve["Subject"] == "Eve Bcc: evil@example.com: 2 deals to fix in the CRM (2026-11-20)"
    team = next(m for r, m in box.messages if r == ["maria@example.com"])
    assert team["Subject"] == "Team Max X-Injected: 1's team: CRM hygiene 2026-11-20, score 62.5"


def test_the_email_policy_refuses_raw_header_injection() -> None:
    msg = EmailMessage(policy=policy.SMTP)
    with pytest.raises(ValueError):
        msg["Subject"] = "Deal\r\nBcc: evil@example.com"
    # build_message puts a subject with line breaks on one line instead
    out = Outgoing("manager", "x", "a@example.com", None, "Deal\r\nBcc: e@x.org", "t", "<p>h</p>")
    raw = build_message(out, parse_address("audit@example.com")).as_bytes()
    assert b"\nBcc:" not in raw and b"Subject: Deal Bcc: e@x.org" in raw


def test_bad_addresses_fail_that_recipient_only(smtp_server, tmp_path: Path) -> None:
    box, port = smtp_server
    cfg = delivery_config(port, managers=["not-an-address", "ok@example.com"])
    run = make_run(tmp_path, cfg)
    results = deliver(run, run.config, dry_run=False, out_dir=tmp_path)
    assert [(r["recipient"], r["status"]) for r in results] == [
        ("not-an-address", "failed"),
        ("ok@example.com", "sent"),
    ]
    assert results[0]["error"] == "'not-an-address' is not an email address"
    with pytest.raises(ValueError):
        parse_address("a@example.com\nBcc: b@example.com")


def test_dry_run_writes_eml_files_and_needs_no_server(tmp_path: Path) -> None:
    cfg = {"delivery": {"managers": ["boss@example.com"], "owner_digests": True}}
    run = make_run(tmp_path, cfg)
    results = deliver(run, run.config, dry_run=True, out_dir=tmp_path / "out")
    files = sorted(p.name for p in (tmp_path / "out" / "outbox").glob("*.eml"))
    assert files == ["001-manager-boss_example.com.eml", "002-owner-O1.eml", "003-owner-O2.eml"]
    assert [r["status"] for r in results] == ["skipped", "dry-run", "dry-run", "dry-run"]
    msg = email.message_from_bytes(
        (tmp_path / "out" / "outbox" / files[1]).read_bytes(), policy=policy.default
    )
    assert msg["To"] == "Alice Owner <alice@example.com>"
    assert msg["From"] == "crm-audit@localhost"
    assert msg.get_content_type() == "multipart/alternative"


def test_recipients_without_smtp_table_is_a_config_error(tmp_path: Path) -> None:
    run = make_run(tmp_path, {"delivery": {"managers": ["boss@example.com"]}})
    with pytest.raises(ConfigError, match=r"no \[delivery.smtp\] table"):
        deliver(run, run.config, dry_run=False, out_dir=tmp_path)


def test_team_lists_from_config(smtp_server, tmp_path: Path) -> None:
    box, port = smtp_server
    cfg = delivery_config(port, teams={"SMB": ["smb-lead@example.com"], "Nope": ["x@example.com"]})
    run = make_run(tmp_path, cfg)
    results = deliver(run, run.config, dry_run=False, out_dir=tmp_path)
    assert [(r["key"], r["status"]) for r in results] == [
        ("team-Nope", "skipped"),
        ("team-SMB", "sent"),
    ]
    ((_, msg),) = box.messages
    assert msg["Subject"] == "Team SMB: CRM hygiene 2026-11-20, score 0.0"
    body = text_of(msg, "plain")
    assert "Umbrella" in body and "Acme" not in body


# -- TLS and login ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("security", ["starttls", "ssl"])
def test_tls_and_login_with_password_from_the_environment(
    certificate, tmp_path: Path, security: str
) -> None:
    cert, key = certificate
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    logins: list[tuple[str, str]] = []

    def authenticator(server, session, envelope, mechanism, auth_data):  # noqa: ANN001, ANN202
        logins.append((auth_data.login.decode(), auth_data.password.decode()))
        # handled=False: let the server answer 535 itself (the default leaves it to us)
        return AuthResult(success=auth_data.password == b"s3cret-pass", handled=False)

    box = Mailbox()
    tls = (
        {"tls_context": server_ctx, "require_starttls": True}
        if security == "starttls"
        # aiosmtpd does not see implicit TLS as TLS, so it must allow AUTH "without" it
        else {"ssl_context": server_ctx, "auth_require_tls": False}
    )
    ctl = Controller(
        box,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=authenticator,
        auth_required=True,
        server_hostname="127.0.0.1",
        **tls,
    )
    ctl.start()
    try:
        cfg = delivery_config(ctl.port, managers=["boss@example.com"])
        cfg["delivery"]["smtp"].update(
            security=security,
            ca_file=str(cert),
            username_env="TEST_SMTP_USER",
            password_env="TEST_SMTP_PASSWORD",
        )
        run = make_run(tmp_path, cfg)
        env = {"TEST_SMTP_USER": "audit-bot", "TEST_SMTP_PASSWORD": "s3cret-pass"}
        results = deliver(run, run.config, dry_run=False, out_dir=tmp_path, env=env)
        assert [r["status"] for r in results] == ["sent"]
        assert logins[0] == ("audit-bot", "s3cret-pass")
        assert len(box.messages) == 1

        env["TEST_SMTP_PASSWORD"] = "wrong-pass"
        results = deliver(run, run.config, dry_run=False, out_dir=tmp_path, env=env)
        assert [r["status"] for r in results] == ["failed"]
        assert "SMTPAuthenticationError" in results[0]["error"]
        assert "wrong-pass" not in results[0]["error"]
    finally:
        ctl.stop()


def test_missing_password_variable_names_the_key(tmp_path: Path) -> None:
    cfg = delivery_config(free_port(), managers=["boss@example.com"])
    cfg["delivery"]["smtp"]["password_env"] = "NO_SUCH_VAR_FOR_TEST"
    run = make_run(tmp_path, cfg)
    with pytest.raises(ConfigError, match="delivery.smtp.password_env names environment variable"):
        deliver(run, run.config, dry_run=False, out_dir=tmp_path, env={})


def test_no_password_over_plain_text_to_a_remote_host(tmp_path: Path) -> None:
    cfg = delivery_config(25, managers=["boss@example.com"])
    cfg["delivery"]["smtp"].update(host="smtp.example.com", password_env="PW")
    run = make_run(tmp_path, cfg)
    with pytest.raises(ConfigError, match="refusing to send the SMTP password to smtp.example.com"):
        deliver(run, run.config, dry_run=False, out_dir=tmp_path, env={"PW": "hunter22"})


# -- the CLI -------------------------------------------------------------------------------
def test_cli_exit_status_4_when_a_recipient_fails(smtp_server, tmp_path: Path) -> None:
    from auditor.app.cli import main

    box, port = smtp_server
    (tmp_path / "audit.toml").write_text(
        f"""
[audit]
as_of = 2026-11-20
[source]
type = "demo"
[report]
digests = false
assessment = false
[delivery]
managers = ["boss@example.com", "bounce@example.com"]
[delivery.smtp]
host = "127.0.0.1"
port = {port}
security = "none"
sender = "audit@example.com"
""",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["run", "-c", str(tmp_path / "audit.toml"), "-o", str(out)])
    assert res.exit_code == 4, res.output
    assert "failed manager bounce@example.com: recipient refused" in res.output
    assert [r[0] for r, _ in box.messages] == ["boss@example.com"]
    import json

    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run["status"] == "delivery_failed"
    assert [(d["recipient"], d["status"]) for d in run["delivery"]] == [
        ("boss@example.com", "sent"),
        ("bounce@example.com", "failed"),
    ]
    assert run["finished_at"] is not None and "delivery" in run["facts"]["timings_s"]
    assert run["facts"]["delivery"] == {"sent": 1, "failed": 1}

    res = CliRunner().invoke(
        main, ["run", "-c", str(tmp_path / "audit.toml"), "-o", str(out), "--dry-run"]
    )
    assert res.exit_code == 0, res.output
    assert "Emails written to outbox/: 2" in res.output
    assert len(list((out / "outbox").glob("*.eml"))) == 2 and len(box.messages) == 1


def test_send_plain_for_alerts(smtp_server, tmp_path: Path) -> None:
    from reports.delivery import send_plain

    box, port = smtp_server
    run = make_run(tmp_path, delivery_config(port))
    results = send_plain(
        run.config, ["ops@example.com", "bad address"], "Audit failed:\nsource", "details"
    )
    assert [(r["recipient"], r["status"]) for r in results] == [
        ("bad address", "failed"),
        ("ops@example.com", "sent"),
    ]
    ((rcpts, msg),) = box.messages
    assert rcpts == ["ops@example.com"] and msg["Subject"] == "Audit failed: source"
    assert msg.get_content_type() == "text/plain" and msg.get_content().strip() == "details"
