"""Failure alerts for scheduled runs: a short plain-text email via the configured SMTP server.

Kept minimal on purpose (the report mails live in ``reports``): one message to
``schedule.alert_emails`` over ``delivery.smtp``. Credentials come only from the environment
variables the config names; every text is redacted before it leaves.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage

from auditor.config import AuditConfig
from auditor.secrets import read_secret, redact

log = logging.getLogger(__name__)


def send_alert(
    config: AuditConfig, subject: str, body: str, *, env: Mapping[str, str] | None = None
) -> bool:
    """Email an alert to ``schedule.alert_emails``; returns whether one was sent.

    Without recipients or without ``[delivery.smtp]`` the alert is only logged. A delivery
    failure is logged, never raised: the alert must not hide the failure it reports.
    """
    recipients = config.schedule.alert_emails
    smtp = config.delivery.smtp
    if not recipients or smtp is None:
        log.warning("alert (no email configured): %s", redact(subject))
        return False
    msg = EmailMessage()
    msg["From"] = smtp.sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = redact(subject)
    msg.set_content(redact(body))
    try:
        user = pwd = None
        if smtp.username_env:
            user = read_secret(smtp.username_env, "delivery.smtp.username_env", env)
        if smtp.password_env:
            pwd = read_secret(smtp.password_env, "delivery.smtp.password_env", env)
        if smtp.security == "ssl":
            ctx = ssl.create_default_context()
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                smtp.host, smtp.port, timeout=smtp.timeout_s, context=ctx
            )
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_s)
        with client:
            if smtp.security == "starttls":
                client.starttls(context=ssl.create_default_context())
            if user is not None and pwd is not None:
                client.login(user, pwd)
            client.send_message(msg)
    except Exception as exc:  # noqa: BLE001 - any failure here is logged, see docstring
        log.error(
            "could not send the alert to %s via %s:%s: %s",
            ", ".join(recipients),
            smtp.host,
            smtp.port,
            redact(exc),
        )
        return False
    log.info("alert sent to %s", ", ".join(recipients))
    return True
