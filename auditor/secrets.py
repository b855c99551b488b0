"""Secrets: read only from environment variables named in the config, and redacted everywhere.

Every secret value read through :func:`read_secret` is registered; :func:`redact` replaces any
registered value in a text, and :class:`RedactingFilter` applies it to every log record. Errors
raised by connectors pass their messages through :func:`redact` before reaching the user.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping

from auditor.errors import ConfigError

_lock = threading.Lock()
_secrets: set[str] = set()
MASK = "***"


def register_secret(value: str | None) -> None:
    """Remember a value that must never be shown (ignores empty / very short values)."""
    if value and len(value) >= 4:
        with _lock:
            _secrets.add(value)


def read_secret(env_name: str | None, key: str, env: Mapping[str, str] | None = None) -> str:
    """Value of the environment variable named by config key ``key``; registered for redaction."""
    if not env_name:
        raise ConfigError(f"config key {key}: no environment variable name given")
    env = os.environ if env is None else env
    value = env.get(env_name)
    if not value:
        raise ConfigError(
            f"config key {key} names environment variable {env_name}, which is not set or empty"
        )
    register_secret(value)
    return value


def redact(text: object) -> str:
    out = str(text)
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for s in secrets:
        if s in out:
            out = out.replace(s, MASK)
    return out


class RedactingFilter(logging.Filter):
    """Logging filter that masks registered secrets in the formatted message."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _secrets:
            msg = record.getMessage()
            clean = redact(msg)
            if clean != msg:
                record.msg, record.args = clean, None
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
                record.exc_info = (record.exc_info[0], exc, None)
        return True


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Attach the redacting filter to every handler of the root (or given) logger."""
    logger = logger or logging.getLogger()
    flt = RedactingFilter()
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(flt)
    for h in logger.handlers:
        if not any(isinstance(f, RedactingFilter) for f in h.filters):
            h.addFilter(flt)
