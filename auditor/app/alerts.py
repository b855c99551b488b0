"""Failure alerts for scheduled runs: a short plain-text email to ``schedule.alert_emails``.

Sent through the report mailer (``reports.delivery.send_plain``: same ``[delivery.smtp]``
settings, env-only credentials, header safety). Every text is redacted before it leaves, and an
alert that cannot be sent is logged, never raised: it must not hide the failure it reports.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from auditor.config import AuditConfig
from auditor.secrets import redact

log = logging.getLogger(__name__)


def send_alert(
    config: AuditConfig, subject: str, body: str, *, env: Mapping[str, str] | None = None
) -> bool:
    """Email an alert to ``schedule.alert_emails``; returns whether every copy was sent.

    Without recipients or without ``[delivery.smtp]`` the alert is only logged.
    """
    from reports.delivery import send_plain

    recipients = config.schedule.alert_emails
    if not recipients or config.delivery.smtp is None:
        log.warning("alert (no email configured): %s", redact(subject))
        return False
    try:
        results = send_plain(config, list(recipients), redact(subject), redact(body), env=env)
    except Exception as exc:  # noqa: BLE001 - any failure here is logged, see the module doc
        log.error("could not send the alert to %s: %s", ", ".join(recipients), redact(exc))
        return False
    failed = [r for r in results if r.get("status") != "sent"]
    for r in failed:
        log.error("could not send the alert to %s: %s", r.get("recipient"), redact(r.get("error")))
    if not failed:
        log.info("alert sent to %s", ", ".join(recipients))
    return not failed
