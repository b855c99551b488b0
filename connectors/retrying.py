"""Bounded retries with exponential backoff that honour Retry-After (built on tenacity).

Transport code classifies each failure: retry it (optionally after a server-given delay) or stop.
When retries are spent, the last failure is turned into a clear ConnectorError naming the call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from auditor.errors import ConnectorError
from auditor.secrets import redact

log = logging.getLogger(__name__)
T = TypeVar("T")


class Retryable(Exception):
    """Raised by a transport to ask for another attempt; ``retry_after`` in seconds if known."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        backoff = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        if retry_after is not None:
            return min(self.max_delay_s, max(retry_after, 0.0))
        return backoff


def call_with_retries(
    fn: Callable[[], T],
    *,
    what: str,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn``; on :class:`Retryable` wait and try again, up to ``policy.attempts`` times.

    Any other exception propagates at once. After the last attempt a ConnectorError says which
    call failed, how often it was tried and the last reason.
    """

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        ra = exc.retry_after if isinstance(exc, Retryable) else None
        d = policy.delay(state.attempt_number, ra)
        if state.attempt_number < policy.attempts:
            log.warning(
                "%s failed (%s); retry %d/%d in %.1fs",
                what,
                redact(exc),
                state.attempt_number,
                policy.attempts - 1,
                d,
            )
        return d

    retrying = Retrying(
        stop=stop_after_attempt(policy.attempts),
        wait=wait,
        retry=retry_if_exception(lambda e: isinstance(e, Retryable)),
        sleep=sleep,
        reraise=True,
    )
    try:
        return retrying(fn)
    except Retryable as exc:
        raise ConnectorError(
            f"{what} failed after {policy.attempts} attempts: {redact(exc)}"
        ) from None
