"""Salesforce transport: login, retries, call counting and API-usage tracking.

Everything goes through :class:`CountingSession`, a ``requests.Session`` we own and hand to
simple-salesforce: each HTTP attempt is counted there (so the count is exact, logins and retries
included), ``Sforce-Limit-Info`` is read from every response, and transient failures (429, 5xx,
timeouts, ``REQUEST_LIMIT_EXCEEDED``) are retried with bounded backoff through
:func:`connectors.retrying.call_with_retries`. simple-salesforce itself never retries; it does
log in again on ``INVALID_SESSION_ID`` when it was given a login flow.

No field mapping here: see :mod:`.fields` and :mod:`.normalise`.
"""

from __future__ import annotations

import email.utils
import json
import logging
import re
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import requests
from pydantic import Field, model_validator
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
)

from auditor.errors import ConfigError, ConnectorError
from auditor.secrets import read_secret, redact, register_secret
from auditor.snapshot import ApiLimit, ApiUsage
from connectors.retrying import Retryable, RetryPolicy, call_with_retries
from connectors.salesforce.fields import SalesforceFieldOptions
from connectors.streams import Pages

log = logging.getLogger(__name__)
AuthFlow = Literal["jwt", "password", "client_credentials", "session"]
# at most 15 digits: a header is not trusted to hold a number int() can parse (past 4300 digits
# it raises ValueError, which was then reported as "the response is not valid JSON")
_LIMIT_RE = re.compile(r"(?<![\w-])api-usage=(\d{1,15})/(\d{1,15})(?!\d)")
_PER_APP_RE = re.compile(r"per-app-api-usage=(\d{1,15})/(\d{1,15})\(appName=([^)]*)\)")


class SalesforceOptions(SalesforceFieldOptions):
    """``[source]`` keys for ``type = "salesforce"`` (see docs/config/source-salesforce.toml)."""

    auth: AuthFlow = "jwt"
    #: "login" (production), "test" (sandbox) or "<mydomain>.my" (required for client_credentials)
    domain: str = "login"
    username: str | None = None
    username_env: str | None = None
    password_env: str | None = None
    security_token_env: str | None = None
    consumer_key_env: str | None = None
    consumer_secret_env: str | None = None
    #: PEM private key for JWT, either in an environment variable or in a file
    private_key_env: str | None = None
    private_key_file: Path | None = None
    session_id_env: str | None = None
    #: e.g. https://acme.my.salesforce.com; needed for auth = "session"
    instance_url: str | None = None
    api_version: str = "59.0"
    timeout_s: float = Field(default=120.0, gt=0)
    max_attempts: int = Field(default=5, ge=1, le=20)
    backoff_base_s: float = Field(default=1.0, ge=0)
    backoff_max_s: float = Field(default=60.0, ge=0)
    #: refuse to start when fewer daily API calls than this remain
    min_remaining_api_calls: int = Field(default=1000, ge=0)
    #: "auto": Bulk API 2.0 when a query's first page reports more than bulk_threshold records
    bulk: Literal["auto", "always", "never"] = "auto"
    bulk_threshold: int = Field(default=50_000, ge=0)
    bulk_page_size: int = Field(default=50_000, ge=1)
    bulk_poll_s: float = Field(default=2.0, gt=0)
    bulk_timeout_s: float = Field(default=3600.0, gt=0)
    include_history: bool = True
    #: no longer needed (kept so older configs load): incremental pulls always detect deleted
    #: opportunities (queryAll IsDeleted + the deleted resource + reconciliation)
    include_deleted: bool = False
    #: reconcile the stored opportunity ids against an ids-only query at least this often
    #: (days); also whenever the stored snapshot is older than the Recycle Bin's 15 days
    reconcile_every_days: float = Field(default=7.0, gt=0, le=15)
    #: extra SOQL condition on Opportunity, e.g. "RecordType.Name = 'New Business'"
    opportunity_filter: str | None = None
    #: SOQL condition selecting the users to read as owners ("" = all users)
    owner_filter: str = "UserType = 'Standard'"

    @model_validator(mode="after")
    def _auth_keys(self) -> SalesforceOptions:
        need: dict[str, list[str]] = {
            "jwt": ["consumer_key_env"],
            "password": ["password_env", "security_token_env"],
            "client_credentials": ["consumer_key_env", "consumer_secret_env"],
            "session": ["session_id_env", "instance_url"],
        }
        missing = [k for k in need[self.auth] if not getattr(self, k)]
        if self.auth in ("jwt", "password") and not (self.username or self.username_env):
            missing.append("username (or username_env)")
        if self.auth == "jwt" and not (self.private_key_env or self.private_key_file):
            missing.append("private_key_env (or private_key_file)")
        if missing:
            raise ValueError(f"auth = {self.auth!r} needs {', '.join(missing)}")
        if self.auth == "client_credentials" and self.domain in ("login", "test"):
            raise ValueError(
                "auth = 'client_credentials' needs domain = '<your My Domain>.my' "
                "(Salesforce refuses this flow on login / test)"
            )
        if self.domain.startswith(("http://", "https://")) or "salesforce.com" in self.domain:
            raise ValueError(
                f"domain {self.domain!r}: give only the part before .salesforce.com, "
                "e.g. 'login', 'test' or 'acme.my'"
            )
        return self


@dataclass
class CallCounter:
    """Every HTTP attempt by kind and endpoint, records read, and the last limits reported."""

    by_kind: Counter[str] = field(default_factory=Counter)
    #: API calls (not sign-ins) by "METHOD /path", ids left out (see ``endpoint``)
    by_endpoint: Counter[str] = field(default_factory=Counter)
    #: attempts that failed transiently (each was retried, or was the last straw)
    transient_failures: int = 0
    #: records received per object (REST pages and Bulk result pages)
    records_read: Counter[str] = field(default_factory=Counter)
    #: "daily" and "per_app", from the last Sforce-Limit-Info header
    limits: dict[str, ApiLimit] = field(default_factory=dict)

    @property
    def api_calls(self) -> int:
        """Calls against the org's API (REST + Bulk); logins are not API calls."""
        return self.by_kind["rest"] + self.by_kind["bulk"]

    def count(self, method: str, url: str) -> str:
        """Count one attempt; its kind ("rest", "bulk" or "login")."""
        kind = call_kind(url)
        self.by_kind[kind] += 1
        if kind != "login":
            self.by_endpoint[endpoint(method, url)] += 1
        return kind

    def as_meta(self) -> ApiUsage:
        return ApiUsage(
            calls=self.api_calls, calls_by_endpoint=dict(self.by_endpoint),
            transient_failures=self.transient_failures, records_read=dict(self.records_read),
            limits=dict(self.limits), logins=self.by_kind["login"])

    def record_limits(self, header: str | None) -> None:
        if not header:
            return
        m = _LIMIT_RE.search(header)
        if m:
            used, total = int(m.group(1)), int(m.group(2))
            self.limits["daily"] = ApiLimit(total, total - used, "day")
        m = _PER_APP_RE.search(header)
        if m:
            used, total = int(m.group(1)), int(m.group(2))
            self.limits["per_app"] = ApiLimit(total, total - used, "day", scope=m.group(3))


def endpoint(method: str, url: str) -> str:
    """ "GET /query" for every page of a query, "GET /jobs/query/{id}/results", ...: the
    REST path after /services/data/vNN.N, with record cursors and job ids left out."""
    path = re.sub(r"^/services/data/v[\d.]+", "", urlparse(url).path).rstrip("/")
    path = re.sub(r"^/(query|queryAll)/.*", r"/\1", path)
    path = re.sub(r"^/jobs/query/[^/]+", "/jobs/query/{id}", path)
    return f"{method.upper()} {path}"


def call_kind(url: str) -> str:
    path = urlparse(url).path
    if path.startswith(("/services/oauth2/token", "/services/Soap/u/")):
        return "login"
    if "/jobs/query" in path:
        return "bulk"
    return "rest"


def retry_after_s(value: str | None) -> float | None:
    """Retry-After as seconds or as an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def html_summary(text: str) -> str:
    """A short plain-text account of a non-JSON body: an HTML page (a proxy's or load
    balancer's error page) is named by its title, not dumped as markup."""
    if re.search(r"<(!doctype\s+)?html", text[:500], re.IGNORECASE):
        title = re.search(r"<title[^>]*>([^<]*)</title>", text, re.IGNORECASE)
        body = title.group(1) if title and title.group(1).strip() else re.sub(
            r"<[^>]+>", " ", text)
        return "an HTML page instead of an API response: " + " ".join(body.split())[:150]
    return " ".join(text.split())[:200]


def error_detail(resp: requests.Response) -> tuple[str | None, str]:
    """(errorCode, message) from a Salesforce error body (JSON list / dict, or SOAP fault)."""
    try:
        body = resp.json()
    except ValueError:
        text = resp.text or ""
        code = re.search(r"<(?:sf:)?exceptionCode>([^<]*)<", text)
        msg = re.search(r"<(?:sf:)?exceptionMessage>([^<]*)<", text)
        if code:
            return code.group(1), msg.group(1) if msg else ""
        return None, html_summary(text)
    if isinstance(body, list) and body and isinstance(body[0], Mapping):
        body = body[0]
    if isinstance(body, Mapping):
        code = body.get("errorCode") or body.get("error")
        msg = body.get("message") or body.get("error_description") or ""
        return (str(code) if code else None), str(msg)
    return None, str(body)[:200]


def refuse_writes(method: str, url: str, body: Any) -> None:
    """The auditor only reads: GET, logins, and Bulk 2.0 *query* jobs; anything else is a bug.

    Checked on the one session every request goes through, so no option or code path can make
    the connector change the org (run it as a read-only user too: see SECURITY.md).
    """
    m = method.upper()
    if m in ("GET", "HEAD"):
        return
    path = urlparse(url).path
    if m == "POST" and call_kind(url) == "login":
        return
    if (m == "POST" and path.rstrip("/").endswith("/jobs/query") and isinstance(body, Mapping)
            and body.get("operation") in ("query", "queryAll")):
        return
    raise ConnectorError(f"refused {m} {path}: the Salesforce connector only reads")


class CountingSession(requests.Session):
    """The one HTTP session every Salesforce call goes through (see module doc)."""

    def __init__(self, *, policy: RetryPolicy, sleep: Callable[[float], None],
                 timeout_s: float) -> None:
        super().__init__()
        self.counter = CallCounter()
        self.policy = policy
        self.sleep = sleep
        self.timeout_s = timeout_s
        #: what the connector is doing, for messages ("Opportunity query, page 3")
        self.step = "call"

    def request(self, method: str | bytes, url: str | bytes, *args: Any,
                **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout_s)
        method_s = method.decode() if isinstance(method, bytes) else method
        url_s = url.decode() if isinstance(url, bytes) else url
        what = f"Salesforce {self.step} ({method_s} {urlparse(url_s).path})"
        refuse_writes(method_s, url_s, kwargs.get("json"))

        def once() -> requests.Response:
            kind = self.counter.count(method_s, url_s)
            try:
                resp = super(CountingSession, self).request(method, url, *args, **kwargs)
            except (requests.Timeout, requests.ConnectionError,
                    requests.exceptions.ChunkedEncodingError) as exc:  # a body cut off
                self.counter.transient_failures += 1
                raise Retryable(f"{type(exc).__name__}: {exc}") from None
            limits = resp.headers.get("Sforce-Limit-Info")
            if limits and re.search(r"\d{16}", limits):
                # simple-salesforce parses this header with int(); a number past 4300 digits
                # raises ValueError there. It only reports usage: drop it, keep the response.
                log.warning("Salesforce %s: ignored a malformed Sforce-Limit-Info header (%s…)",
                            self.step, limits[:40])
                del resp.headers["Sforce-Limit-Info"]
                limits = None
            self.counter.record_limits(limits)
            status = resp.status_code
            if status == 429 or status >= 500 or status == 403:
                code, msg = error_detail(resp)
                # a refused login (SOAP INVALID_LOGIN arrives as HTTP 500) is final: retrying
                # a wrong password only locks the user out
                refused_login = kind == "login" and status != 429 and code is not None
                if status == 403 and code != "REQUEST_LIMIT_EXCEEDED" or refused_login:
                    return resp
                self.counter.transient_failures += 1
                detail = f"HTTP {status}" + (f" {code}" if code else "") + (
                    f": {msg}" if msg else "")
                if code == "REQUEST_LIMIT_EXCEEDED":
                    detail += self._usage_note()
                raise Retryable(detail, retry_after=retry_after_s(resp.headers.get("Retry-After")))
            return resp

        return call_with_retries(once, what=what, policy=self.policy, sleep=self.sleep)

    def _usage_note(self) -> str:
        u = self.counter.limits.get("daily")
        if not u:
            return " (the org's API request limit is reached)"
        return f" (daily API requests used: {u.used} of {u.limit})"


@dataclass
class Credentials:
    """Keyword arguments for ``simple_salesforce.Salesforce`` (secrets already registered)."""

    kwargs: dict[str, Any]
    flow: str

    def __repr__(self) -> str:  # never show secrets, even in a debugger or a traceback
        return f"Credentials(flow={self.flow!r})"


def read_credentials(opts: SalesforceOptions, env: Mapping[str, str],
                     base_dir: Path) -> Credentials:
    """Read every secret from the environment variables the config names."""

    def secret(key: str) -> str:
        return read_secret(getattr(opts, key), f"source.{key}", env)

    def username() -> str:
        if opts.username_env:
            return read_secret(opts.username_env, "source.username_env", env)
        return str(opts.username)

    kw: dict[str, Any] = {"version": opts.api_version}
    if opts.auth == "password":
        kw |= {"username": username(), "password": secret("password_env"),
               "security_token": secret("security_token_env"), "domain": opts.domain}
    elif opts.auth == "jwt":
        if opts.private_key_env:
            key = secret("private_key_env")
        else:
            path = opts.private_key_file
            assert path is not None  # checked by the options model
            path = path if path.is_absolute() else base_dir / path
            try:
                key = path.read_text()
            except OSError as exc:
                raise ConfigError(
                    f"source.private_key_file: cannot read {path}: {exc.strerror}") from None
        register_secret(key)
        for line in key.splitlines():  # a partial key in some message is still a leak
            if "-----" not in line:
                register_secret(line.strip())
        kw |= {"username": username(), "consumer_key": secret("consumer_key_env"),
               "privatekey": key, "domain": opts.domain}
    elif opts.auth == "client_credentials":
        kw |= {"consumer_key": secret("consumer_key_env"),
               "consumer_secret": secret("consumer_secret_env"), "domain": opts.domain}
    else:
        kw |= {"session_id": secret("session_id_env"), "instance_url": opts.instance_url}
    return Credentials(kw, opts.auth)


class SalesforceTransport:
    """A logged-in simple-salesforce client plus the counting session under it."""

    def __init__(self, opts: SalesforceOptions, creds: Credentials, *,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.opts = opts
        self.sleep = sleep
        self.session = CountingSession(
            policy=RetryPolicy(opts.max_attempts, opts.backoff_base_s, opts.backoff_max_s),
            sleep=sleep, timeout_s=opts.timeout_s,
        )
        self.session.step = f"login ({creds.flow}, domain {opts.domain})"
        try:
            # simple-salesforce warns with the consumer key in the text when an app is not
            # approved: catch such warnings and log them redacted instead
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                self.sf = Salesforce(session=self.session, **creds.kwargs)
        except ConnectorError:
            raise
        except SalesforceAuthenticationFailed as exc:
            raise ConnectorError(redact(
                f"Salesforce login ({creds.flow}, domain {opts.domain!r}) was refused: "
                f"{exc.code}: {exc.auth_message}"
            )) from None
        except Exception as exc:  # noqa: BLE001 - key parsing, network: never leak the cause
            raise ConnectorError(redact(
                f"Salesforce login ({creds.flow}, domain {opts.domain!r}) failed: "
                f"{type(exc).__name__}: {exc}"
            )) from None
        finally:
            for w in caught:
                log.warning("Salesforce login: %s", redact(" ".join(str(w.message).split())))

    @property
    def counter(self) -> CallCounter:
        return self.session.counter

    @property
    def instance_url(self) -> str:
        return f"https://{self.sf.sf_instance}"

    def call(self, step: str, fn: Callable[[], Any]) -> Any:
        """Run one client call; turn every failure into a ConnectorError naming ``step``."""
        self.session.step = step
        try:
            return fn()
        except ConnectorError:
            raise
        except SalesforceExpiredSession as exc:
            hint = ("the configured session id has expired; get a new one or use auth = 'jwt'"
                    if self.opts.auth == "session" else "logging in again did not help")
            raise ConnectorError(redact(
                f"Salesforce {step} failed: HTTP 401 {_code(exc)}: {hint}")) from None
        except SalesforceError as exc:
            code = _code(exc)
            bad_query = code.startswith(("INVALID_FIELD", "MALFORMED_QUERY", "INVALID_TYPE"))
            hint = "; check the field names and filters under [source]" if bad_query else ""
            raise ConnectorError(redact(
                f"Salesforce {step} failed: HTTP {exc.status} {code}{hint}")) from None
        except (requests.exceptions.JSONDecodeError, json.JSONDecodeError) as exc:
            raise ConnectorError(redact(
                f"Salesforce {step}: the response is not valid JSON ({exc})")) from None
        except ValueError as exc:  # anything else odd in a response: say what, not "JSON"
            raise ConnectorError(redact(
                f"Salesforce {step}: unexpected response ({type(exc).__name__}: {exc})")) from None
        except requests.RequestException as exc:
            raise ConnectorError(redact(
                f"Salesforce {step} failed: {type(exc).__name__}: {exc}")) from None

    def query_pages(self, soql: str, what: str, *,
                    include_deleted: bool = False) -> Iterator[tuple[list[Any], int]]:
        """Yield (records, totalSize) per page, following ``nextRecordsUrl``.

        The same two calls ``query_all_iter`` makes (``query`` then ``query_more``), done here
        so each page is a unit: retried on its own, named in errors, and the first page's
        ``totalSize`` is known before paying for the rest (used to switch to Bulk 2.0).
        """
        pages = Pages(what, "Salesforce", "'records' list",
                      empty="an empty page that is not the last one; stopped rather than pass "
                            "on a partial pull",
                      repeat="nextRecordsUrl repeats the cursor of page {first}; stopped rather "
                             "than page in a loop",
                      bad_shape="unexpected response shape (no {shape})")
        result = self.call(f"{what}, page 1",
                           lambda: self.sf.query(soql, include_deleted=include_deleted))
        while True:
            records = pages.records(result.get("records") if isinstance(result, Mapping)
                                    else None)
            done = result.get("done", True)
            nxt = None if done else result.get("nextRecordsUrl")
            if not done and not nxt:
                raise pages.fail("done is false but nextRecordsUrl is missing")
            # Salesforce never sends an empty page before the last one: records are missing
            nxt = pages.next(nxt, records)
            yield records, int(result.get("totalSize") or 0)
            if nxt is None:
                return
            result = self.call(f"{what}, page {pages.page + 1}",
                               lambda u=nxt: self.sf.query_more(u, identifier_is_url=True))

    def raw(self, step: str, method: str, url: str, **kwargs: Any) -> requests.Response:
        """An authenticated request outside the REST helpers (Bulk 2.0).

        ``_call_salesforce`` is simple-salesforce's own request path: it adds the auth header,
        logs in again on INVALID_SESSION_ID and maps error statuses to its exceptions.
        """
        return self.call(step, lambda: self.sf._call_salesforce(method, url, name=step, **kwargs))

    def raw_json(self, step: str, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        def go() -> dict[str, Any]:
            body = self.sf._call_salesforce(method, url, name=step, **kwargs).json()
            if not isinstance(body, dict):
                raise ValueError(f"expected a JSON object, got {type(body).__name__}")
            return body

        return self.call(step, go)

    def remaining_api_calls(self) -> tuple[int, int] | None:
        """(remaining, total) daily API requests, from the last Sforce-Limit-Info or /limits."""
        u = self.counter.limits.get("daily")
        if u:
            return u.remaining, u.limit
        limits = self.call("limits", lambda: self.sf.limits())
        daily = limits.get("DailyApiRequests") if isinstance(limits, Mapping) else None
        if not daily:
            return None
        return int(daily["Remaining"]), int(daily["Max"])


def _code(exc: SalesforceError) -> str:
    content = exc.content
    if isinstance(content, list) and content and isinstance(content[0], Mapping):
        return f"{content[0].get('errorCode', '')}: {content[0].get('message', '')}".strip()
    if isinstance(content, bytes):
        content = content.decode("utf-8", "replace")
    return " ".join(str(content).split())[:300]
