"""Run history: the SQLite store, run-to-run diffs and trends, and observed stage history.

See docs/history.md for the schema, what is stored and how to delete it.
"""

from __future__ import annotations

from pathlib import Path

from auditor.config import AuditConfig, default_config
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


__all__ = ["HistoryError", "HistoryStore", "StoredSnapshot", "history_path"]
