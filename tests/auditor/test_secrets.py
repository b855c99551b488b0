"""Secret values never reach log output, whichever logger writes them."""

from __future__ import annotations

import logging

import pytest

from auditor.errors import ConfigError
from auditor.secrets import MASK, read_secret, redact


def test_read_secret_from_named_variable_and_redact() -> None:
    value = read_secret("CRM_TOKEN_T1", "source.token_env", env={"CRM_TOKEN_T1": "pat-na1-s3cr3t"})
    assert value == "pat-na1-s3cr3t"
    assert redact("Bearer pat-na1-s3cr3t failed") == f"Bearer {MASK} failed"


def test_missing_variable_names_key_and_variable() -> None:
    with pytest.raises(ConfigError) as e:
        read_secret("NOPE_VAR", "delivery.smtp.password_env", env={})
    assert str(e.value) == (
        "config key delivery.smtp.password_env names environment variable NOPE_VAR, "
        "which is not set or empty"
    )


def test_child_logger_records_and_tracebacks_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    read_secret("CRM_PW_T2", "x", env={"CRM_PW_T2": "hunter2-password"})
    log = logging.getLogger("connectors.some.child")
    with caplog.at_level(logging.INFO):
        log.info("login with %s", "hunter2-password")
        try:
            raise RuntimeError("server said: bad password hunter2-password")
        except RuntimeError:
            log.exception("failed")
    text = caplog.text + "".join(r.getMessage() for r in caplog.records)
    assert "hunter2-password" not in text
    assert MASK in text
