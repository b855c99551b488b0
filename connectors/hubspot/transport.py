"""HubSpot transport: client construction, retries, call counting, rate-limit headers.

The generated clients sit on ``urllib3``; its own retries are switched off (``Retry(0)``) so
every HTTP request is exactly one counted attempt and the retry policy is ours
(``connectors.retrying``). Responses are read raw (``_preload_content=False``) and parsed as the
documented JSON, so the normaliser sees the same shapes the docs and the test fake speak.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import urllib3
from hubspot import HubSpot
from urllib3.util.retry import Retry

from auditor.errors import ConnectorError
from auditor.secrets import redact
from auditor.snapshot import ApiLimit, ApiUsage
from connectors.retrying import Retryable, RetryPolicy, call_with_retries

log = logging.getLogger(__name__)

#: Minimum scopes of the private app, named in 403 messages.
SCOPES = ("crm.objects.deals.read", "crm.objects.owners.read")


DEFAULT_POLICY = RetryPolicy()
#: the only POSTs the connector makes: they read (search, batch read), they never write
READ_POSTS = ("POST /crm/v3/objects/deals/search", "POST /crm/v3/objects/deals/batch/read")


class UriTooLong(Exception):
    """HTTP 414: the caller splits its property list and tries again."""


class HubSpotTransport:
    """Counted, retried calls to one HubSpot portal.

    ``sleep`` and ``clock`` are injectable so tests never wait.
    """

    def __init__(
        self,
        token: str,
        *,
        host: str = "https://api.hubapi.com",
        token_env: str = "HUBSPOT_ACCESS_TOKEN",
        policy: RetryPolicy = DEFAULT_POLICY,
        timeout_s: float = 30.0,
        search_min_interval_s: float = 0.25,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host.rstrip("/")
        self.token_env = token_env
        self.policy = policy
        self.timeout_s = timeout_s
        self.search_min_interval_s = search_min_interval_s
        self.sleep = sleep
        self.clock = clock
        self.calls = 0
        self.calls_by_endpoint: Counter[str] = Counter()
        self.usage: dict[str, int] = {}
        #: attempts that failed transiently (connection, 429 rolling limit, 5xx)
        self.transient_failures = 0
        #: records received per object ("deals", "owners", "pipelines")
        self.records_read: Counter[str] = Counter()
        self._last_search: float | None = None
        self._pause_s = 0.0
        no_retries = Retry(total=0, redirect=0, raise_on_status=False,
                           respect_retry_after_header=False)
        client = HubSpot(access_token=token, host=self.host, retry=no_retries)
        # the discovery properties build a new ApiClient (and pool) on each access: keep one
        self.deals = client.crm.deals.basic_api
        self.deals_search = client.crm.deals.search_api
        self.deals_batch = client.crm.deals.batch_api
        self.pipelines = client.crm.pipelines.pipelines_api
        self.owners = client.crm.owners.owners_api

    # -- endpoints -------------------------------------------------------------------------
    def list_deals(self, *, limit: int, after: str | None, properties: list[str],
                   properties_with_history: list[str] | None = None,
                   archived: bool = False) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"limit": limit, "properties": properties}
        if after:
            kwargs["after"] = after
        if properties_with_history:
            kwargs["properties_with_history"] = properties_with_history
        if archived:  # left out otherwise: the client would send the string "False"
            kwargs["archived"] = "true"
        return self._call("GET /crm/v3/objects/deals",
                          lambda: self.deals.get_page(**kwargs, **self._raw()))

    def search_deals(self, body: dict[str, Any]) -> dict[str, Any]:
        self._space_searches()
        return self._call("POST /crm/v3/objects/deals/search",
                          lambda: self.deals_search.do_search(
                              public_object_search_request=body, **self._raw()))

    def batch_read_deals(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST /crm/v3/objects/deals/batch/read",
                          lambda: self.deals_batch.read(
                              batch_read_input_simple_public_object_id=body, **self._raw()))

    def get_pipelines(self) -> dict[str, Any]:
        return self._call("GET /crm/v3/pipelines/deals",
                          lambda: self.pipelines.get_all("deals", **self._raw()))

    def list_owners(self, *, after: str | None, archived: bool) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"limit": 100}
        if after:
            kwargs["after"] = after
        if archived:
            kwargs["archived"] = "true"
        return self._call("GET /crm/v3/owners/",
                          lambda: self.owners.get_page(**kwargs, **self._raw()))

    def account_info(self) -> dict[str, Any]:
        api = self.deals.api_client
        return self._call("GET /account-info/v3/details", lambda: api.call_api(
            "/account-info/v3/details", "GET", header_params={"Accept": "application/json"},
            auth_settings=["oauth2"], response_types_map={}, **self._raw()))

    # -- machinery -------------------------------------------------------------------------
    def _raw(self) -> dict[str, Any]:
        return {"_preload_content": False, "_request_timeout": self.timeout_s}

    def _space_searches(self) -> None:
        """The search endpoint has its own, lower rate limit: keep calls spaced out."""
        now = self.clock()
        if self._last_search is not None:
            wait = self.search_min_interval_s - (now - self._last_search)
            if wait > 0:
                self.sleep(wait)
        self._last_search = self.clock()

    def _call(self, what: str, fn: Callable[[], Any]) -> dict[str, Any]:
        if not what.startswith("GET ") and what not in READ_POSTS:
            raise ConnectorError(f"refused {what}: the HubSpot connector only reads")

        def attempt() -> dict[str, Any]:
            if self._pause_s > 0:  # the last response said the rolling window is used up
                self.sleep(self._pause_s)
                self._pause_s = 0.0
            self.calls += 1
            self.calls_by_endpoint[what] += 1
            try:
                resp = fn()
                data = resp.data  # read inside the try: a connection can drop mid-body
                resp.release_conn()
            except urllib3.exceptions.HTTPError as exc:
                self.transient_failures += 1
                raise Retryable(f"cannot reach HubSpot at {self.host}: {_reason(exc)}") from None
            except OSError as exc:
                self.transient_failures += 1
                raise Retryable(f"cannot reach HubSpot at {self.host}: {exc}") from None
            except Exception as exc:
                # each sub-package has its own ApiException class: recognise them by `status`
                if getattr(exc, "status", None) is None:
                    raise
                err = self._classify(what, exc)
                self.transient_failures += isinstance(err, Retryable)
                raise err from None
            self._note_limits(getattr(resp, "headers", {}) or {})
            body = _json(what, data)
            if isinstance(body.get("results"), list):
                self.records_read[_object(what)] += len(body["results"])
            return body

        return call_with_retries(attempt, what=f"HubSpot {what}", policy=self.policy,
                                 sleep=self.sleep)

    def api_usage(self) -> ApiUsage:
        """The calls so far and the limits the last response reported, as SnapshotMeta has it."""
        u, limits = self.usage, {}
        if "daily" in u and "daily_remaining" in u:
            limits["daily"] = ApiLimit(u["daily"], u["daily_remaining"], "day")
        if "rolling_max" in u and "rolling_remaining" in u:
            window = f"{u['interval_ms'] / 1000:g} s" if "interval_ms" in u else "rolling"
            limits["rolling"] = ApiLimit(u["rolling_max"], u["rolling_remaining"], window)
        return ApiUsage(
            calls=self.calls,
            calls_by_endpoint={k.rstrip("/"): n for k, n in self.calls_by_endpoint.items()},
            transient_failures=self.transient_failures, records_read=dict(self.records_read),
            limits=limits)

    def _classify(self, what: str, exc: Any) -> Exception:
        """The exception to raise for an ApiException: a retry, a 414 split or a clear error."""
        status = int(exc.status)
        headers = dict(getattr(exc, "headers", None) or {})
        self._note_limits(headers)
        body = _body(exc)
        message = redact(body.get("message") or getattr(exc, "reason", "") or "")
        if status == 429:
            policy = str(body.get("policyName") or "").upper()
            if policy == "DAILY" or "DAILY" in message.upper():
                return ConnectorError(
                    f"HubSpot {what}: the portal's DAILY API limit is used up ({message}); "
                    "stopped without passing on a partial pull. Try again after the daily "
                    "reset (midnight in the portal's time zone)."
                )
            return Retryable(f"rate limited (429 {policy or 'rate limit'}): {message}",
                             retry_after=_retry_after(headers))
        if status >= 500:
            return Retryable(f"HTTP {status} from HubSpot: {message}",
                             retry_after=_retry_after(headers, interval=False))
        if status == 414:
            return UriTooLong(what)
        if status == 401:
            return ConnectorError(
                f"HubSpot {what}: 401 unauthorized: the access token in environment variable "
                f"{self.token_env} was refused ({message}); check the private app's token"
            )
        if status == 403:
            return ConnectorError(
                f"HubSpot {what}: 403 forbidden ({message}); the private app needs the scopes "
                f"{', '.join(SCOPES)}"
            )
        return ConnectorError(f"HubSpot {what}: HTTP {status}: {message}")

    def _note_limits(self, headers: Any) -> None:
        h = {str(k).lower(): v for k, v in dict(headers).items()}
        for name, key in (("x-hubspot-ratelimit-daily", "daily"),
                          ("x-hubspot-ratelimit-daily-remaining", "daily_remaining"),
                          ("x-hubspot-ratelimit-max", "rolling_max"),
                          ("x-hubspot-ratelimit-remaining", "rolling_remaining"),
                          ("x-hubspot-ratelimit-interval-milliseconds", "interval_ms")):
            if name in h:
                with contextlib.suppress(ValueError):
                    self.usage[key] = int(h[name])
        remaining = h.get("x-hubspot-ratelimit-remaining")
        interval = h.get("x-hubspot-ratelimit-interval-milliseconds")
        if remaining is not None and interval is not None and remaining.strip() == "0":
            with contextlib.suppress(ValueError):
                self._pause_s = min(self.policy.max_delay_s, int(interval) / 1000)


def _reason(exc: BaseException) -> str:
    inner = getattr(exc, "reason", None)
    text = str(inner or exc)
    if "refused" in text.lower():
        return "connection refused"
    return redact(text)


def _body(exc: Any) -> dict[str, Any]:
    raw = getattr(exc, "body", None)
    if raw is None and getattr(exc, "http_resp", None) is not None:
        raw = exc.http_resp.data
    try:
        data = json.loads(raw) if raw else {}
    except (ValueError, TypeError):
        return {"message": str(raw)[:200]}
    return data if isinstance(data, dict) else {}


def _retry_after(headers: dict[str, Any], interval: bool = True) -> float | None:
    """Seconds to wait: ``Retry-After`` if given, else the rate-limit window's length."""
    h = {str(k).lower(): v for k, v in headers.items()}
    try:
        if "retry-after" in h:
            return float(h["retry-after"])
        if interval and "x-hubspot-ratelimit-interval-milliseconds" in h:
            return int(h["x-hubspot-ratelimit-interval-milliseconds"]) / 1000
    except ValueError:
        return None
    return None


def _json(what: str, data: bytes) -> dict[str, Any]:
    try:
        out = json.loads(data or b"{}")
    except ValueError:
        raise ConnectorError(f"HubSpot {what}: the response is not JSON") from None
    if not isinstance(out, dict):
        raise ConnectorError(f"HubSpot {what}: expected a JSON object, got {type(out).__name__}")
    return out


def _object(what: str) -> str:
    """"deals" for "POST /crm/v3/objects/deals/search", "owners" for "GET /crm/v3/owners/"."""
    parts = what.split(" ", 1)[1].strip("/").split("/")
    return parts[3] if len(parts) > 3 and parts[2] == "objects" else parts[min(2, len(parts) - 1)]
