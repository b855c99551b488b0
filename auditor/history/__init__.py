"""Run history: the SQLite (or PostgreSQL) store, run-to-run diffs and trends, observed stage
history.

See docs/history.md for the schema, what is stored and how to delete it.
"""

from __future__ import annotations

from pathlib import Path

from auditor.config import AuditConfig, default_config
from auditor.errors import AuditorError
from auditor.history.store import (
    SNAPSHOT_DIR_SUFFIX,
    HistoryError,
    HistoryStore,
    StoredSnapshot,
    open_for_reading,
)

#: file name of a v0.1 demo history, kept inside the output folder (moved out on the next run)
DEMO_HISTORY_NAME = "history.sqlite"


def history_path(config: AuditConfig, out_dir: Path | None = None) -> Path | None:
    """Where this config's history lives; None when history is disabled.

    ``history.path`` is relative to the config file. The built-in demo config (``crm-audit
    run`` without ``--config``) keeps its history beside the output folder
    (``./audit-report.history.sqlite``): each run replaces the output folder whole, so the
    history cannot live inside it.
    """
    if not config.history.enabled:
        return None
    if config.origin == default_config().origin:
        out = Path(out_dir or config.resolve(config.report.out_dir))
        return out.parent / f"{out.name}.history.sqlite"
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
    # reading only: open_for_reading still opens a store on a completely full disk
    return HistoryStore(path) if create else open_for_reading(path)


def history_location(config: AuditConfig, out_dir: Path | None = None) -> str:
    """Where the history lives, for messages (a URL never shows a password)."""
    if config.history.url:
        from auditor.history.postgres import connect_url

        try:
            return connect_url(config.history.url, None, {})[1]
        except AuditorError:
            return "the PostgreSQL history (history.url)"
    return str(history_path(config, out_dir))


def adopt_demo_history(path: Path, out_dir: Path) -> None:
    """Move a v0.1 demo history (``<out>/history.sqlite``) to ``path`` beside the folder."""
    old = Path(out_dir) / DEMO_HISTORY_NAME
    if path.exists() or not old.is_file() or old.is_symlink():
        return
    for suffix in ("", "-wal", "-shm", SNAPSHOT_DIR_SUFFIX):
        src = old.with_name(old.name + suffix)
        if src.exists():
            src.rename(path.with_name(path.name + suffix))


__all__ = [
    "HistoryError",
    "HistoryStore",
    "StoredSnapshot",
    "adopt_demo_history",
    "history_location",
    "history_path",
    "open_for_reading",
    "open_history",
]
