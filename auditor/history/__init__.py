"""Run history: the SQLite store, run-to-run diffs and trends, and observed stage history.

See docs/history.md for the schema, what is stored and how to delete it.
"""

from __future__ import annotations

from pathlib import Path

from auditor.config import AuditConfig, default_config
from auditor.history.store import HistoryError, HistoryStore, StoredSnapshot, open_for_reading

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


def adopt_demo_history(path: Path, out_dir: Path) -> None:
    """Move a v0.1 demo history (``<out>/history.sqlite``) to ``path`` beside the folder."""
    old = Path(out_dir) / DEMO_HISTORY_NAME
    if path.exists() or not old.is_file() or old.is_symlink():
        return
    for suffix in ("", "-wal", "-shm"):
        src = old.with_name(old.name + suffix)
        if src.exists():
            src.rename(path.with_name(path.name + suffix))


__all__ = [
    "HistoryError",
    "HistoryStore",
    "StoredSnapshot",
    "adopt_demo_history",
    "history_path",
    "open_for_reading",
]
