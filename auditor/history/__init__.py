"""Run history: the SQLite (or PostgreSQL) store, run-to-run diffs and trends, observed stage
history.

See docs/history.md for the schema, what is stored and how to delete it.
"""

from __future__ import annotations

from pathlib import Path

from auditor.config import AuditConfig, default_config
from auditor.errors import AuditorError
from auditor.history.store import HistoryError, HistoryStore, StoredSnapshot

#: file name of the history of a run without a config file (kept inside the output folder)
DEMO_HISTORY_NAME = "history.sqlite"


def history_path(config: AuditConfig, out_dir: Path | None = None) -> Path | None:
    """Where this config's history lives; None when history is disabled.

    ``history.path`` is relative to the config file. The built-in demo config (``crm-audit
    run`` without ``--config``) keeps its history inside the output folder, so a first run on
    a fresh machine writes nothing outside ``./audit-report/``.
    """
    if not config.history.enabled:
        return None
    if config.origin == default_config().origin:
        out = out_dir or config.resolve(config.report.out_dir)
        return Path(out) / DEMO_HISTORY_NAME
    return config.resolve(config.history.path)


def open_history(config: AuditConfig, out_dir: Path | None = None, *,
                 create: bool = True) -> HistoryStore | None:
    """The configured history store: PostgreSQL when ``history.url`` is set, else the SQLite
    file at :func:`history_path`; None when history is disabled (or, with ``create=False``,
    when the SQLite file does not exist yet)."""
    if not config.history.enabled:
        return None
    if config.history.url:
        from auditor.history.postgres import PostgresHistoryStore

        return PostgresHistoryStore(config.history.url,
                                    password_env=config.history.password_env)
    path = history_path(config, out_dir)
    if path is None or (not create and not path.exists()):
        return None
    return HistoryStore(path)


def history_location(config: AuditConfig, out_dir: Path | None = None) -> str:
    """Where the history lives, for messages (a URL never shows a password)."""
    if config.history.url:
        from auditor.history.postgres import connect_url

        try:
            return connect_url(config.history.url, None, {})[1]
        except AuditorError:
            return "the PostgreSQL history (history.url)"
    return str(history_path(config, out_dir))


__all__ = ["HistoryError", "HistoryStore", "StoredSnapshot", "history_location", "history_path",
           "open_history"]
