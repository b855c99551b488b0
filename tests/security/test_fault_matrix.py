"""One runner over the fault table (faults.py): each CRM fault either recovers within bounded
retries into the complete Snapshot, or stops with a clear ConnectorError and passes nothing
on; each SMTP fault gives every recipient a clear status and the others are still sent.
Each passing scenario is recorded for docs/fault-matrix.md (see matrix.py)."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas.testing as pdt
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from auditor.app.run import execute
from auditor.config import parse_config
from auditor.errors import ConnectorError
from auditor.history import HistoryStore
from reports.delivery import deliver
from tests.connectors.hubspot.conftest import CUSTOM, STAGE_MAP, TOKEN, expected_frames
from tests.connectors.salesforce import expected
from tests.connectors.salesforce.fake_org import (
    FIELD_OPTIONS,
    INSTANCE_URL,
    SESSION_ENV,
    bulk_pages,
)
from tests.reports.reports_fixture import make_run
from tests.security.faults import HUBSPOT, SALESFORCE, SMTP
from tests.security.matrix import record

SINCE = datetime(2024, 3, 1, tzinfo=UTC)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _reply(org: Any, r: Any) -> Any:
    if r == "results-page-0":  # the real first results page, for faults on a later page
        page = bulk_pages()["Opportunity"][0]
        return 200, {"Content-Type": "text/csv", "Sforce-Locator": "1",
                     "Sforce-NumberOfRecords": str(page.count("\n") - 1)}, page
    return r() if callable(r) else r


def _sf_key(org: Any, key: str) -> str:
    if key.startswith("page:"):
        _, obj, n = key.split(":")
        return org.page_key(obj, int(n))
    return key


def _stopped(exc: ConnectorError) -> str:
    return f"stops: ConnectorError: {exc}"


#: the history file (and its snapshot files) after one successful run, per connector type (made
#: once, copied per test)
_SEEDED: dict[str, tuple[bytes, dict[str, bytes], int]] = {}


def _config(tmp: Path, source: dict[str, Any]) -> Any:
    return parse_config({"source": source, "audit": {"as_of": "2024-06-01"},
                         "history": {"path": str(tmp / "history.sqlite")}},
                        origin=str(tmp / "audit.toml"), base_dir=tmp)


def through_execute(tmp: Path, kind: str, source: dict[str, Any], inject: Any,
                    error: str, *, full: bool = True) -> str:
    """The same fault through execute() with a history store holding one successful run:
    the run stops, is recorded as failed, the earlier run stays intact, no report is written."""
    hist = tmp / "history.sqlite"
    snapshots = tmp / "history.sqlite.snapshots"
    if kind not in _SEEDED:
        run = execute(_config(tmp, source), out_dir=tmp / "seed", deliver=False)
        files = {f.name: f.read_bytes() for f in snapshots.iterdir()}
        _SEEDED[kind] = (hist.read_bytes(), files, len(run.result.violations))
        for p in tmp.glob("history.sqlite-*"):
            p.unlink()
    data, files, findings = _SEEDED[kind]
    hist.write_bytes(data)
    snapshots.mkdir(exist_ok=True)
    for name, content in files.items():
        (snapshots / name).write_bytes(content)
    inject()
    out = tmp / "failed-run"
    with pytest.raises(ConnectorError) as err:
        execute(_config(tmp, source), out_dir=out, deliver=False, full=full)
    assert re.search(error, str(err.value)), str(err.value)
    assert not out.exists() or not any(out.iterdir())  # no report for the failed run
    with HistoryStore(hist) as store:
        failed, previous = store.runs(source=source["name"])
        assert (failed["status"], failed["error"]) == ("failed", str(err.value))
        assert previous["status"] == "success"
        assert len(store.violations(previous["id"])) == findings
        assert store.last_snapshot(source["name"]).run_id == previous["id"]
    return (f"; through execute(): run {failed['id']} recorded as failed with this message, "
            f"run {previous['id']} (success, {findings} findings, stored snapshot) intact, "
            "no report written")


@pytest.mark.parametrize("case", SALESFORCE, ids=[c["id"] for c in SALESFORCE])
def test_salesforce_fault(case: dict, org, make_sf, sleeps, tmp_path: Path,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    org.fail(_sf_key(org, case["key"]), *[_reply(org, r) for r in case["replies"]])
    conn = make_sf(**case.get("options", {}))
    if case["expect"] == "recovers":
        snap = conn.pull()
        pdt.assert_frame_equal(snap.opportunities, expected.opportunities())
        pdt.assert_frame_equal(snap.stage_history, expected.stage_history())
        pdt.assert_frame_equal(snap.owners, expected.owners())
        assert sleeps == case["sleeps"]
        outcome = (f"recovers: retried (waits {sleeps} s), complete Snapshot "
                   f"({len(snap.opportunities)} opportunities, {len(snap.stage_history)} "
                   "history rows) equal to the fault-free pull")
    else:
        result = None
        with pytest.raises(ConnectorError) as err:
            result = conn.pull()
        assert result is None  # nothing partial passed on
        assert re.search(case["error"], str(err.value)), str(err.value)
        assert len(sleeps) <= 4  # bounded: at most attempts - 1 waits
        outcome = _stopped(err.value)
        org.faults.clear()
        for k, v in SESSION_ENV.items():
            monkeypatch.setenv(k, v)
        source = {"type": "salesforce", "auth": "session", "session_id_env": "SF_SESSION",
                  "instance_url": INSTANCE_URL, "name": "acme", **FIELD_OPTIONS,
                  "backoff_base_s": 0, "backoff_max_s": 0, "bulk_poll_s": 0.01,
                  **case.get("options", {})}
        outcome += through_execute(
            tmp_path, "salesforce", source,
            lambda: org.fail(_sf_key(org, case["key"]),
                             *[_reply(org, r) for r in case["replies"]]),
            case["error"])
    record("1. Salesforce (live API, REST and Bulk 2.0)", case["id"],
           "Salesforce" + (" Bulk 2.0" if case.get("options", {}).get("bulk") else " REST"),
           case["fault"], case["expect"], outcome)


@pytest.mark.parametrize("case", HUBSPOT, ids=[c["id"] for c in HUBSPOT])
def test_hubspot_fault(case: dict, hs, make_hs, sleeps, tmp_path: Path,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    spec = dict(case["fail"])
    hs.fail(spec.pop("path"), spec.pop("status"), **spec)
    conn = make_hs(**case.get("options", {}))
    conn._now = lambda: datetime(2024, 6, 1, tzinfo=UTC)
    since = SINCE if case.get("since") else None
    t0 = time.monotonic()
    if case["expect"] == "recovers":
        snap = conn.pull(since=since)
        want = expected_frames()
        pdt.assert_frame_equal(snap.opportunities, want["opportunities"])
        pdt.assert_frame_equal(snap.owners, want["owners"])
        assert sleeps == case["sleeps"]
        outcome = (f"recovers: retried (waits {sleeps} s), complete Snapshot "
                   f"({len(snap.opportunities)} deals) equal to the fault-free pull")
    else:
        result = None
        with pytest.raises(ConnectorError) as err:
            result = conn.pull(since=since)
        assert result is None
        assert re.search(case["error"], str(err.value)), str(err.value)
        assert len(sleeps) <= 4
        outcome = _stopped(err.value)
        hs.faults.clear()
        monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", TOKEN)
        source = {"type": "hubspot", "name": "hs", "host": hs.host, "stage_map": STAGE_MAP,
                  "custom_fields": CUSTOM, "search_min_interval_s": 0, "portal_id": 4242,
                  "portal_timezone": "America/New_York", "retry_base_delay_s": 0,
                  "retry_max_delay_s": 0, **case.get("options", {})}
        spec = dict(case["fail"])
        outcome += through_execute(
            tmp_path, "hubspot", source,
            lambda: hs.fail(spec.pop("path"), spec.pop("status"), **spec), case["error"],
            full=not case.get("since"))
    assert time.monotonic() - t0 < 20  # bounded in real time as well (timeouts included)
    record("2. HubSpot (CRM API)", case["id"], "HubSpot", case["fault"], case["expect"], outcome)


# -- SMTP ------------------------------------------------------------------------------------
RECIPIENTS = ["boss@example.com", "bounce@example.com"]
PASSWORD = "smtp-pass-for-fault-test"


class Box:
    def __init__(self, refuse: str | None = None, reject_first_data: bool = False) -> None:
        self.refuse, self.reject_first = refuse, reject_first_data
        self.delivered: list[str] = []

    async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: ANN001, ANN201, N802
        if self.refuse and self.refuse in address:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201, N802
        if self.reject_first:
            self.reject_first = False
            return "554 5.6.0 message content rejected"
        self.delivered += envelope.rcpt_tos
        return "250 accepted"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RawServer:
    """A TCP server on 127.0.0.1 that greets and hangs up, or accepts and never answers."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            if self.mode == "hangup":
                conn.sendall(b"220 fake.example ESMTP\r\n")
                conn.close()
            else:
                self.held.append(conn)  # silent: keep it open, say nothing

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=2)
        for c in self.held:
            c.close()
        self.sock.close()


def _auth_fails(server, session, envelope, mechanism, auth_data):  # noqa: ANN001, ANN202
    return AuthResult(success=False, handled=False)


@pytest.fixture
def smtp_server(request: pytest.FixtureRequest) -> Iterator[tuple[int, Box | None, dict]]:
    kind = request.param
    smtp: dict[str, Any] = {}
    if kind in ("none",):
        yield _free_port(), None, smtp
        return
    if kind in ("silent", "hangup"):
        raw = RawServer(kind)
        try:
            yield raw.port, None, smtp
        finally:
            raw.close()
        return
    box = Box(refuse="bounce" if kind == "bounce" else None,
              reject_first_data=kind == "reject-data")
    extra: dict[str, Any] = {}
    if kind == "auth-fails":
        extra = {"authenticator": _auth_fails, "auth_required": True,
                 "auth_require_tls": False}
        smtp["password_env"] = "FAULT_SMTP_PASSWORD"
    if kind == "plain-starttls":
        smtp["security"] = "starttls"
    ctl = Controller(box, hostname="127.0.0.1", port=_free_port(), **extra)
    ctl.start()
    try:
        yield ctl.port, box, smtp
    finally:
        ctl.stop()
        asyncio.set_event_loop(None)


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
@pytest.mark.parametrize("case,smtp_server", [(c, c["server"]) for c in SMTP],
                         ids=[c["id"] for c in SMTP], indirect=["smtp_server"])
def test_smtp_fault(case: dict, smtp_server, tmp_path: Path) -> None:
    port, box, smtp = smtp_server
    cfg = {"delivery": {"managers": RECIPIENTS, "smtp": {
        "host": "127.0.0.1", "port": port, "security": "none",
        "sender": "CRM audit <audit@example.com>", "timeout_s": 0.5, **smtp}}}
    run = make_run(tmp_path, cfg)
    t0 = time.monotonic()
    results = deliver(run, run.config, dry_run=False, out_dir=tmp_path,
                      env={"FAULT_SMTP_PASSWORD": PASSWORD})
    elapsed = time.monotonic() - t0
    assert [(r["recipient"], r["status"]) for r in results] == list(
        zip(RECIPIENTS, case["statuses"], strict=True))
    errors = [r["error"] for r in results if r["status"] == "failed"]
    assert errors and all(re.search(case["error"], e) for e in errors), errors
    assert all(PASSWORD not in str(r) for r in results)
    if box is not None:
        sent = [a for a, s in zip(RECIPIENTS, case["statuses"], strict=True) if s == "sent"]
        assert box.delivered == sent
    assert elapsed < 5  # bounded: a silent server costs one timeout, not one per recipient
    shown = "; ".join(f"{r['recipient']}: {r['status']}" + (f" ({r['error']})" if r["error"]
                                                             else "") for r in results)
    record("3. SMTP delivery", case["id"], "SMTP", case["fault"],
           "per recipient: " + ", ".join(case["statuses"]), f"{shown} [{elapsed:.1f} s]")


# -- the history store itself ----------------------------------------------------------------
def test_history_commit_fails_after_reports(org, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Storing the run fails after its reports were written (disk full, lock): the run is
    recorded as failed, its reports are withdrawn, the earlier run stays intact."""
    from auditor.history.store import HistoryError

    for k, v in SESSION_ENV.items():
        monkeypatch.setenv(k, v)
    source = {"type": "salesforce", "auth": "session", "session_id_env": "SF_SESSION",
              "instance_url": INSTANCE_URL, "name": "acme", **FIELD_OPTIONS}
    first = execute(_config(tmp_path, source), out_dir=tmp_path / "first", deliver=False)

    def disk_full(self, *args: Any, **kwargs: Any) -> None:
        raise HistoryError(f"history store {self.path}: storing the run failed: disk I/O error")

    monkeypatch.setattr(HistoryStore, "commit_run", disk_full)
    out = tmp_path / "first"  # the same output folder: its previous set must stay
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(HistoryError) as err:
        execute(_config(tmp_path, source), out_dir=out, deliver=False, full=True)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".first.")] == []
    monkeypatch.undo()
    with HistoryStore(tmp_path / "history.sqlite") as store:
        failed, previous = store.runs(source="acme")
        assert (failed["status"], failed["error"]) == ("failed", str(err.value))
        assert (previous["id"], previous["status"]) == (first.run_id, "success")
        assert len(store.violations(previous["id"])) == len(first.result.violations)
    assert (tmp_path / "first" / "report.html").is_file()
    record("6. History store", "history-commit-fails", "execute()",
           "storing the run fails after its reports were written",
           "failed run, previous reports untouched",
           f"raises {type(err.value).__name__}: {err.value}; run {failed['id']} recorded as "
           f"failed, nothing published (the output folder still holds run {previous['id']}'s "
           f"files), run {previous['id']} (success) intact")
