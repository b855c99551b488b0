"""Known secrets in, none out: succeeding and failing audits through the CLI (at DEBUG), then
every log line, every printed line, every exception text and every file written (reports,
JSON, CSV, .eml decoded part by part, digests, the history store) is searched for them.

Seven distinct secrets: Salesforce password, security token, JWT private key (and each line
of it), client secret and session id, the HubSpot private-app token, the SMTP password. Some
faults echo a secret back in the server's error message, so the redaction layer is really
exercised (the scan checks that a mask was shown where it had to be).

Secrets mounted from files end in a newline: some scenarios give the HubSpot token and the
Salesforce session id with a trailing LF / CR LF, and some servers echo a secret escaped
(``\\n``), URL-encoded or base64-encoded. The scan looks for each secret in each of those
forms (computed here, not by the code under test).
"""

from __future__ import annotations

import base64
import email
import json
import logging
import traceback
from email import policy
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import responses
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from auditor.app.cli import main
from auditor.secrets import MASK
from tests.connectors.hubspot.fake_server import FakeHubSpot
from tests.connectors.salesforce.fake_org import FakeOrg, login_reply
from tests.security.matrix import record

SF_PASSWORD = "Pw-salesforce-8Fq2!x"
SF_TOKEN = "SecTok9hG4kLm2ZqW7"
SF_CLIENT_SECRET = "CliSecret-77D1E0B2A4F6C3"
SF_CONSUMER_KEY = "3MVG9ScanConsumerKey-5521"
SF_SESSION = "00D8d000000ScAn!AQ4AQSessionIdForTheScan"
HUBSPOT_TOKEN = "pat-na1-0c9e7b2a-SCAN-TOKEN-41f8"
SMTP_PASSWORD = "Smtp-Pa55-q8R3vZ"


@pytest.fixture(scope="module")
def private_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, private_key: str) -> dict[str, str]:
    values = {"SF_PASSWORD": SF_PASSWORD, "SF_TOKEN": SF_TOKEN, "SF_KEY": private_key,
              "SF_CLIENT_SECRET": SF_CLIENT_SECRET, "SF_CONSUMER_KEY": SF_CONSUMER_KEY,
              "SF_SESSION": SF_SESSION, "HS_TOKEN": HUBSPOT_TOKEN,
              "SMTP_PASSWORD": SMTP_PASSWORD, "SMTP_USER": "audit-bot"}
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return values


def secrets(private_key: str) -> dict[str, str]:
    out = {"SF password": SF_PASSWORD, "SF security token": SF_TOKEN,
           "SF client secret": SF_CLIENT_SECRET, "SF consumer key": SF_CONSUMER_KEY,
           "SF session id": SF_SESSION, "HubSpot token": HUBSPOT_TOKEN,
           "SMTP password": SMTP_PASSWORD, "SF private key": private_key.strip()}
    body = [line for line in private_key.splitlines() if line and "-----" not in line]
    out |= {f"SF private key line {i}": line for i, line in enumerate(body, 1)}
    return out


class Smtp:
    """aiosmtpd that wants AUTH with SMTP_PASSWORD (plain connection on 127.0.0.1)."""

    def __init__(self) -> None:
        self.sent = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802
        self.sent += 1
        return "250 accepted"


def _auth(server, session, envelope, mechanism, auth_data):  # noqa: ANN001, ANN202
    return AuthResult(success=auth_data.password.decode() == SMTP_PASSWORD, handled=False)


@pytest.fixture
def smtp() -> Any:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    box = Smtp()
    ctl = Controller(box, hostname="127.0.0.1", port=port, authenticator=_auth,
                     auth_required=True, auth_require_tls=False)
    ctl.start()
    yield box, port
    ctl.stop()


SF_COMMON = {"type": "salesforce", "name": "acme", "backoff_base_s": 0, "backoff_max_s": 0,
             "custom_fields": {"budget": "Budget__c"}, "currency": "USD"}
SF_FLOWS = {
    "jwt": {"auth": "jwt", "username": "integration@acme.example",
            "consumer_key_env": "SF_CONSUMER_KEY", "private_key_env": "SF_KEY"},
    "password": {"auth": "password", "username": "ann.lee@acme.example",
                 "password_env": "SF_PASSWORD", "security_token_env": "SF_TOKEN"},
    "client_credentials": {"auth": "client_credentials", "domain": "acme.my",
                           "consumer_key_env": "SF_CONSUMER_KEY",
                           "consumer_secret_env": "SF_CLIENT_SECRET"},
    "session": {"auth": "session", "session_id_env": "SF_SESSION",
                "instance_url": "https://acme.my.salesforce.com"},
}
LOGIN_URL = {"jwt": "https://login.salesforce.com/services/oauth2/token",
             "password": "https://login.salesforce.com/services/Soap/u/59.0",
             "client_credentials": "https://acme.my.salesforce.com/services/oauth2/token"}


def toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + "}"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(path: Path, source: dict[str, Any], smtp_port: int) -> Path:
    tables = {
        "source": source,
        "report": {"digests": True},
        "history": {"path": "history.sqlite"},
        "delivery": {"managers": ["boss@example.com"], "owner_digests": True},
        "delivery.smtp": {"host": "127.0.0.1", "port": smtp_port, "security": "none",
                          "sender": "CRM audit <audit@example.com>", "timeout_s": 5,
                          "username_env": "SMTP_USER", "password_env": "SMTP_PASSWORD"},
    }
    text = "\n".join(f"[{name}]\n" + "\n".join(f"{k} = {toml_value(v)}" for k, v in t.items())
                     for name, t in tables.items())
    path.write_text(text + "\n")
    return path


def run_cli(tmp: Path, name: str, config: Path, *extra: str) -> tuple[Any, Path]:
    out = tmp / name
    result = CliRunner().invoke(main, ["-vv", "run", "--config", str(config), "--out", str(out),
                                       "--as-of", "2024-06-01", *extra])
    return result, out


def texts_of(result: Any, out: Path, base: Path) -> list[tuple[str, str]]:
    """(where, text) for everything the run showed or wrote."""
    found = [("output", result.output)]
    if result.exception is not None:
        exc = result.exception
        found.append(("exception", f"{exc}\n{exc!r}\n" + "".join(
            traceback.format_exception(exc))))
    for p in sorted(list(out.rglob("*")) + sorted(base.glob("history.sqlite*"))):
        if not p.is_file():
            continue
        data = p.read_bytes()
        found.append((str(p), data.decode("latin-1")))
        found.append((f"{p} (utf-8)", data.decode("utf-8", "replace")))
        if p.suffix == ".eml":
            msg = email.message_from_bytes(data, policy=policy.default)
            for part in msg.walk():
                payload = part.get_payload(decode=True)
                if payload:
                    found.append((f"{p} part {part.get_content_type()}",
                                  payload.decode("utf-8", "replace")))
    return found


def forms(value: str) -> dict[str, str]:
    """The spellings of a secret a leak may take: as is, URL-encoded, base64 (any escaped
    form of a value with trailing whitespace still contains the value itself)."""
    b64 = base64.b64encode(value.encode()).decode()
    return {"": value, " (URL-encoded)": quote(value, safe=""),
            " (base64)": b64.rstrip("="), " (base64url)": base64.urlsafe_b64encode(
                value.encode()).decode().rstrip("=")}


def scan(found: list[tuple[str, str]], caplog: pytest.LogCaptureFixture,
         secret_values: dict[str, str]) -> list[str]:
    everything = list(found)
    for r in caplog.records:
        text = r.getMessage()
        if r.exc_info and r.exc_info[1] is not None:
            text += "\n" + logging.Formatter().formatException(r.exc_info)
        everything.append((f"log {r.name}", text + "\n" + (r.exc_text or "")))
    return [f"{name}{how} in {where}" for where, text in everything
            for name, value in secret_values.items()
            for how, form in forms(value).items() if form in text]


SCENARIOS = [
    # (id, source kind, what goes wrong, expected exit code)
    ("sf-jwt-ok", "jwt", None, 0),
    ("sf-password-ok", "password", None, 0),
    ("sf-client-credentials-ok", "client_credentials", None, 0),
    ("sf-session-ok-smtp-sent", "session", "send", 0),
    ("sf-jwt-refused", "jwt", "login", 3),
    ("sf-password-refused-echoing-password", "password", "login", 3),
    ("sf-client-credentials-refused", "client_credentials", "login", 3),
    ("sf-query-403-after-login", "password", "query", 3),
    ("sf-jwt-bad-key", "jwt", "bad-key", 3),
    ("hs-ok-smtp-sent", "hubspot", "send", 0),
    ("hs-ok-smtp-wrong-password", "hubspot", "smtp-auth", 4),
    ("hs-401-echoing-token", "hubspot", "401", 3),
    ("hs-503-always", "hubspot", "503", 3),
    # secrets as mounted from files, with a trailing line break (issue 17 item 1)
    ("hs-token-trailing-newline-ok", "hubspot", "token-lf", 0),
    ("hs-token-trailing-crlf-401-echoing-encoded", "hubspot", "401-encoded", 3),
    ("sf-session-trailing-crlf-ok", "session", "session-crlf", 0),
    ("sf-session-trailing-lf-403-echoing-encoded", "session", "query-encoded", 3),
]


def echo_encoded(value: str) -> str:
    """A server error that quotes the secret escaped, URL-encoded and base64-encoded."""
    return (f"credential {value!r} / {quote(value, safe='')} / "
            f"{base64.b64encode(value.encode()).decode()} refused")


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("case", SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_no_secret_in_any_output(case, env, private_key, smtp, tmp_path, caplog,
                                 monkeypatch) -> None:
    name, kind, fault, exit_code = case
    box, smtp_port = smtp
    caplog.set_level(logging.DEBUG)
    extra: tuple[str, ...] = () if fault in ("send", "smtp-auth") else ("--dry-run",)
    if fault == "smtp-auth":
        monkeypatch.setenv("SMTP_PASSWORD", "Wrong-" + SMTP_PASSWORD[::-1])
    if fault == "bad-key":
        monkeypatch.setenv("SF_KEY", private_key.replace("A", "B", 40))
    if fault in ("token-lf", "401-encoded"):
        monkeypatch.setenv("HS_TOKEN", HUBSPOT_TOKEN + ("\n" if fault == "token-lf" else "\r\n"))
    if fault in ("session-crlf", "query-encoded"):
        monkeypatch.setenv("SF_SESSION", SF_SESSION + ("\r\n" if fault == "session-crlf" else "\n"))
    if kind == "hubspot":
        with FakeHubSpot(token=HUBSPOT_TOKEN) as fake:
            if fault == "401":
                fake.fail("/crm/v3/pipelines/deals", 401, {
                    "status": "error", "message": f"The token {HUBSPOT_TOKEN} was revoked"})
            if fault == "401-encoded":
                fake.fail("/crm/v3/pipelines/deals", 401, {
                    "status": "error", "message": echo_encoded(HUBSPOT_TOKEN + "\r\n")})
            if fault == "503":
                fake.fail("/crm/v3/objects/deals", 503, times=5)
            source = {"type": "hubspot", "name": "hs", "host": fake.host,
                      "access_token_env": "HS_TOKEN", "portal_id": 4242,
                      "portal_timezone": "America/New_York", "retry_base_delay_s": 0,
                      "retry_max_delay_s": 0, "search_min_interval_s": 0}
            config = write_config(tmp_path / "audit.toml", source, smtp_port)
            result, out = run_cli(tmp_path, "out", config, *extra)
    else:
        with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
            org = FakeOrg(rsps)
            if kind in LOGIN_URL:
                if fault == "login":
                    body, ctype, status = (
                        (login_reply("soap_login_fault.xml").replace(
                            "Invalid username, password", f"Invalid password {SF_PASSWORD}"),
                         "text/xml", 500) if kind == "password" else
                        (f'{{"error": "invalid_client", "error_description": "secret '
                         f'{SF_CLIENT_SECRET} / key {SF_CONSUMER_KEY} refused"}}',
                         "application/json", 400))
                else:
                    body, ctype, status = (
                        (login_reply("soap_login_ok.xml"), "text/xml", 200)
                        if kind == "password" else
                        (login_reply("oauth_token_ok.json"), "application/json", 200))
                rsps.add(responses.POST, LOGIN_URL[kind], body=body, content_type=ctype,
                         status=status)
            if fault == "query-encoded":
                org.fail("Opportunity", (403, {"Content-Type": "application/json"}, json.dumps(
                    [{"errorCode": "INSUFFICIENT_ACCESS",
                      "message": echo_encoded(SF_SESSION + "\n")}])))
            if fault == "query":
                org.fail("Opportunity", (403, {"Content-Type": "application/json"},
                                         '[{"errorCode": "INSUFFICIENT_ACCESS", "message": '
                                         f'"no access for token {SF_TOKEN}"}}]'))
            config = write_config(tmp_path / "audit.toml", {**SF_COMMON, **SF_FLOWS[kind]},
                                  smtp_port)
            result, out = run_cli(tmp_path, "out", config, *extra)

    assert result.exit_code == exit_code, (result.output, result.exception)
    if exit_code == 0:
        assert (out / "report.html").is_file() and (out / "run.json").is_file()
        if fault == "send":
            assert box.sent >= 1  # the SMTP password was really used
        else:
            assert list((out / "outbox").glob("*.eml"))
    found = texts_of(result, out, tmp_path)
    assert any(w.endswith("history.sqlite") for w, _ in found)  # the history store is scanned
    leaks = scan(found, caplog, secrets(private_key))
    assert leaks == []
    if fault in ("login", "401", "query") and name.endswith(("password", "token")) or (
            kind == "client_credentials" and fault == "login") or fault in (
            "query", "401-encoded", "query-encoded"):
        assert MASK in result.output  # the echoed secret reached the user masked
    if exit_code == 0:
        assert len(caplog.records) > 0  # DEBUG logging really ran
    files = sorted({w.split(" ")[0] for w, _ in found if w.startswith("/")})
    shown = result.output.strip().splitlines()[-1] if result.output.strip() else ""
    record("5. Secret scan (CLI at DEBUG)", f"secrets-{name}",
           "Salesforce" if kind != "hubspot" else "HubSpot",
           f"{kind} audit" + (f", fault: {fault}" if fault else ""),
           f"exit {exit_code}; none of {len(secrets(private_key))} secret values in any output",
           f"exit {result.exit_code}; clean: {len(caplog.records)} log records, output, "
           f"exception text, {len(files)} files" + (f"; last line: {shown}" if shown else ""))


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_scheduled_job_alert_with_a_token_ending_in_a_newline(env, private_key, tmp_path, caplog,
                                                             monkeypatch) -> None:
    """A scheduled run fails on HubSpot (the server echoes the token, escaped and encoded);
    the alert e-mail, the log and the history hold no form of the token."""
    from aiosmtpd.handlers import Message

    from auditor.app.scheduler import run_job
    from auditor.config import ScheduleJob, load_config

    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("HS_TOKEN", HUBSPOT_TOKEN + "\n")
    received: list[email.message.Message] = []

    class Collect(Message):
        def handle_message(self, message):  # noqa: ANN001, ANN202
            received.append(message)

    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctl = Controller(Collect(), hostname="127.0.0.1", port=port)
    ctl.start()
    try:
        with FakeHubSpot(token=HUBSPOT_TOKEN) as fake:
            fake.fail("/crm/v3/pipelines/deals", 401, {
                "status": "error", "message": echo_encoded(HUBSPOT_TOKEN + "\n")})
            source = {"type": "hubspot", "name": "hs", "host": fake.host,
                      "access_token_env": "HS_TOKEN", "portal_id": 4242,
                      "portal_timezone": "America/New_York", "retry_base_delay_s": 0,
                      "retry_max_delay_s": 0, "search_min_interval_s": 0}
            path = write_config(tmp_path / "audit.toml", source, port)
            text = path.read_text().replace('username_env = "SMTP_USER"\n', "").replace(
                'password_env = "SMTP_PASSWORD"\n', "")
            path.write_text(text + '\n[schedule]\nalert_emails = ["ops@example.com"]\n')
            ok = run_job(ScheduleJob(name="nightly", cron="30 2 * * 1-5"), load_config(path))
    finally:
        ctl.stop()
    assert ok is False and len(received) == 1
    body = received[0].get_payload(decode=True).decode()
    assert "401 unauthorized" in body and MASK in body
    found = [("alert e-mail", received[0].as_string()), ("alert body", body)]
    found += [(str(p), p.read_bytes().decode("latin-1")) for p in tmp_path.glob("history.sqlite*")]
    assert any(w.endswith("history.sqlite") for w, _ in found)
    assert scan(found, caplog, secrets(private_key)) == []
    record("5. Secret scan (CLI at DEBUG)", "secrets-scheduler-alert-token-newline", "HubSpot",
           "scheduled job; token with a trailing newline, echoed escaped / URL-encoded / base64 "
           "by a 401", "the alert e-mail, log and history hold no form of the token",
           f"alert sent to ops@example.com; clean: {len(caplog.records)} log records, alert, "
           "history")
