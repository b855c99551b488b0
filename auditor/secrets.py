"""Secrets: read only from environment variables named in the config, and redacted everywhere.

Every secret value read through :func:`read_secret` is registered; :func:`redact` replaces any
registered value in a text, and :class:`RedactingFilter` applies it to every log record. Errors
raised by connectors pass their messages through :func:`redact` before reaching the user.

A secret is stripped of surrounding whitespace when read (secrets mounted from files end in a
newline), and every form it can take in a message is masked, not only the exact value: with
and without that whitespace, backslash-escaped as repr() / JSON / an HTTP library's error show
it, URL-encoded (query strings, form bodies) and base64-encoded (Basic auth, SMTP AUTH).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
from collections.abc import Mapping
from urllib.parse import quote, quote_plus

from auditor.errors import ConfigError

_lock = threading.Lock()
_secrets: set[str] = set()
_ordered: list[str] = []  # _secrets, longest first (a secret containing another is masked whole)
MASK = "***"
_MIN_LEN = 4


def secret_forms(value: str) -> set[str]:
    """Every spelling of ``value`` a message may carry (see the module doc)."""
    out: set[str] = set()
    for v in {value, value.strip()}:
        if not v:
            continue
        out |= {v, v.encode("unicode_escape").decode("ascii"), json.dumps(v)[1:-1],
                repr(v)[1:-1], quote(v, safe=""), quote(v), quote_plus(v)}
        raw = v.encode("utf-8")
        for enc in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
            text = enc.decode("ascii")
            out |= {text, text.rstrip("=")}
    return {f for f in out if len(f) >= _MIN_LEN}


def register_secret(value: str | None) -> None:
    """Remember a value that must never be shown, in all its forms (ignores very short values)."""
    if value and len(value.strip()) >= _MIN_LEN:
        with _lock:
            _secrets.update(secret_forms(value))
            _ordered[:] = sorted(_secrets, key=len, reverse=True)


def read_secret(env_name: str | None, key: str, env: Mapping[str, str] | None = None) -> str:
    """Value of the environment variable named by config key ``key``; registered for redaction."""
    if not env_name:
        raise ConfigError(f"config key {key}: no environment variable name given")
    env = os.environ if env is None else env
    raw = env.get(env_name)
    if not raw or not raw.strip():
        raise ConfigError(
            f"config key {key} names environment variable {env_name}, which is not set or empty"
        )
    register_secret(raw)  # the raw form too: it may have reached a message before this call
    return raw.strip()


def redact(text: object) -> str:
    out = str(text)
    with _lock:
        secrets = list(_ordered)
    for s in secrets:
        if s in out:
            out = out.replace(s, MASK)
    return out


class RedactingFilter(logging.Filter):
    """Logging filter that masks registered secrets (for handlers outside this process's
    record factory, e.g. a handler that formats records created elsewhere)."""

    def filter(self, record: logging.LogRecord) -> bool:
        _scrub(record)
        return True


def _scrub(record: logging.LogRecord) -> None:
    if not _secrets:
        return
    msg = record.getMessage()
    clean = redact(msg)
    if clean != msg:
        record.msg, record.args = clean, None
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    if record.exc_text:
        record.exc_text = redact(record.exc_text)


_base_factory = logging.getLogRecordFactory()


def _redacting_factory(*args, **kwargs) -> logging.LogRecord:  # noqa: ANN002, ANN003
    record = _base_factory(*args, **kwargs)
    _scrub(record)
    return record


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Mask secrets in every log record of the process.

    A record factory catches records from every logger (filters on the root logger would miss
    records propagated from child loggers); the handler filter covers handlers that format
    records made before the factory was installed.
    """
    if logging.getLogRecordFactory() is not _redacting_factory:
        logging.setLogRecordFactory(_redacting_factory)
    logger = logger or logging.getLogger()
    for h in logger.handlers:
        if not any(isinstance(f, RedactingFilter) for f in h.filters):
            h.addFilter(RedactingFilter())


# Redaction is on from the moment the package is imported: secrets are registered only through
# read_secret / register_secret, so nothing is masked until a secret exists.
install_log_redaction()
