"""Machine outputs: violations.csv, violations.json, metrics.json (stable, documented columns)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from auditor.engine import VIOLATION_COLUMNS


def violations_records(violations: pd.DataFrame) -> list[dict[str, Any]]:
    """Violations as JSON-ready dicts (NA → null), columns in the documented order."""
    frame = violations[VIOLATION_COLUMNS].astype(object)
    frame = frame.where(frame.notna(), None)
    frame["stage"] = frame["stage"].map(lambda s: None if s is None else str(s))
    return frame.to_dict(orient="records")


def write_violations_csv(violations: pd.DataFrame, path: Path) -> Path:
    violations[VIOLATION_COLUMNS].to_csv(path, index=False)
    return path


def write_violations_json(violations: pd.DataFrame, path: Path) -> Path:
    path.write_text(json.dumps(violations_records(violations), ensure_ascii=False, indent=1))
    return path


def write_json(data: Any, path: Path) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    return path
