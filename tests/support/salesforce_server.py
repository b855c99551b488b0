"""The fake Salesforce org (tests/connectors/salesforce/fake_org.py) served over HTTPS on
127.0.0.1, for runs that go through the real network stack: the benchmark's nightly incremental
run (scripts/benchmark.py) talks to it exactly as it would talk to an org.

simple-salesforce only speaks ``https://``, so the server has a self-signed certificate for
127.0.0.1 (made with ``cryptography`` at start) and the client trusts it through
``REQUESTS_CA_BUNDLE``. The org answers every call as it does under ``responses``: it parses the
SOQL, refuses unknown fields, filters by the WHERE clause, pages 2,000 records per call and
lists deletions by window. Every request is logged; ``GET /__fake/log`` returns the log (method,
path, SOQL) and is not itself logged.

Run as a process (so its work does not share the client's interpreter)::

    python -m tests.support.salesforce_server ORG.json

ORG.json: ``{"records": {object: [REST records]}, "deleted": [[id, ISO time], ...]}``. It
prints one JSON line ``{"instance_url": ..., "ca_file": ...}`` when ready and serves until its
standard input closes.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import ssl
import sys
import tempfile
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from tests.connectors.salesforce.fake_org import FakeOrg, Reply

_ROUTES = (
    (re.compile(r"/services/data/v[\d.]+/query(All)?/"), "_query"),
    (re.compile(r"/services/data/v[\d.]+/sobjects/\w+/describe/?$"), "_describe"),
    (re.compile(r"/services/data/v[\d.]+/sobjects/\w+/deleted/?$"), "_deleted"),
)


@dataclass
class _Request:
    """What the org's callbacks read from a request (as ``responses`` hands it over)."""

    url: str
    body: bytes | None = None


def self_signed(folder: Path) -> tuple[Path, Path]:
    """(certificate, key) for 127.0.0.1, valid for a day."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "fake-sf.crt", folder / "fake-sf.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


class SalesforceServer:
    """``org`` on https://127.0.0.1:<port> (a thread; ``close()`` stops it)."""

    def __init__(self, org: FakeOrg, folder: Path) -> None:
        self.org = org
        self.log: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Salesforce does

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                server._answer(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.cert_file, key_file = self_signed(folder)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert_file, key_file)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.instance_url = f"https://127.0.0.1:{self.port}"
        # a short poll: close() waits up to one poll interval (0.5 s by default)
        self._thread = threading.Thread(target=self.httpd.serve_forever,
                                        kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _answer(self, h: BaseHTTPRequestHandler) -> None:
        path = urlparse(h.path).path
        if path == "/__fake/log":
            with self._lock:
                reply: Reply = (200, {"Content-Type": "application/json"}, json.dumps(self.log))
        else:
            url = urlparse(h.path)
            q = re.search(r"(?:^|&)q=([^&]*)", url.query)
            entry = {"method": "GET", "path": path,
                     "soql": unquote(q.group(1).replace("+", " ")) if q else None}
            with self._lock:
                self.log.append(entry)
                reply = self._route(path, f"{self.instance_url}{h.path}")
        if isinstance(reply, Exception):  # a dropped connection
            h.close_connection = True
            return
        status, headers, body = reply
        data = body.encode() if isinstance(body, str) else body
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _route(self, path: str, url: str) -> Reply:
        for pattern, name in _ROUTES:
            if pattern.search(path):
                try:
                    return getattr(self.org, name)(_Request(url))
                except Exception as exc:  # noqa: BLE001 - answered as Salesforce's 500
                    return 500, {"Content-Type": "application/json"}, json.dumps(
                        [{"errorCode": "UNKNOWN_EXCEPTION", "message": repr(exc)}])
        return 404, {"Content-Type": "application/json"}, json.dumps(
            [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}])


def org_from_file(path: Path) -> FakeOrg:
    data = json.loads(path.read_text())
    org = FakeOrg(None, pages={})
    org.records = data["records"]
    org.deleted_log = [(i, dt.datetime.fromisoformat(t)) for i, t in data.get("deleted", [])]
    org.fixed_schema = True
    return org


def main() -> None:
    org = org_from_file(Path(sys.argv[1]))
    with tempfile.TemporaryDirectory(prefix="fake-sf-") as tmp:
        server = SalesforceServer(org, Path(tmp))
        print(json.dumps({"instance_url": server.instance_url,
                          "ca_file": str(server.cert_file)}), flush=True)
        sys.stdin.read()  # until the parent closes our stdin (or exits)
        server.close()


if __name__ == "__main__":
    main()
