"""Machine outputs: violations.csv, violations.json, metrics.json, run.json.

Each JSON output has a versioned JSON Schema shipped in ``reports/schemas`` (documented in
docs/outputs.md). ``violations.json`` stays a plain list of objects with the violation columns;
``metrics.json`` and ``run.json`` carry ``schema_version``.
"""

from __future__ import annotations

import io
import json
import math
import os
from dataclasses import asdict
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from auditor.files import PRIVATE_FILE, replace_private, write_private
from auditor.na import frame_na_to_none, is_na, na_to_none
from auditor.results import VIOLATION_COLUMNS

if TYPE_CHECKING:
    from auditor.results import AuditRun

SCHEMAS = Path(__file__).parent / "schemas"
# a new file, owner-only, never through a symlink (as auditor.files.write_private creates one)
_PRIVATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | os.O_CLOEXEC
#: schema name → version of the output written by this code (bump on incompatible change)
SCHEMA_VERSIONS = {"violations": "1.0", "metrics": "1.0", "run": "1.0"}


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The shipped JSON Schema for ``violations``, ``metrics`` or ``run``."""
    return json.loads((SCHEMAS / f"{name}.schema.json").read_text(encoding="utf-8"))


def jsonable(value: Any) -> Any:
    """Plain JSON values: NA / NaN → null, numpy scalars → Python, dates → ISO text."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(jsonable(v) for v in value)
    if is_na(value):
        return None
    value = na_to_none(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, pd.Timestamp | datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)


def violations_records(violations: pd.DataFrame) -> list[dict[str, Any]]:
    """Violations as JSON-ready dicts (NA → null), columns in the documented order."""
    frame = frame_na_to_none(violations[VIOLATION_COLUMNS])
    frame["stage"] = frame["stage"].map(lambda s: None if s is None else str(s))
    frame["amount"] = frame["amount"].map(lambda a: None if a is None else float(a))
    return frame.to_dict(orient="records")


#: a text cell starting with one of these is a formula to a spreadsheet (OWASP "CSV injection")
FORMULA_START = r"^[=+\-@\t\r]"


def neutralise_text(arr: pa.ChunkedArray) -> pa.ChunkedArray:
    """A text column safe to open in a spreadsheet: NUL bytes removed, and a cell starting with
    =, +, -, @, tab or CR prefixed with a single quote, as OWASP recommends, so Excel, LibreOffice
    and Google Sheets show it as text instead of running it. Numeric columns are never passed
    here, so a negative amount stays a number."""
    arr = pc.replace_substring(arr, "\x00", "")
    quote, empty = pa.scalar("'", arr.type), pa.scalar("", arr.type)
    return pc.if_else(pc.match_substring_regex(arr, FORMULA_START),
                      pc.binary_join_element_wise(quote, arr, empty), arr)


def violations_csv_bytes(violations: pd.DataFrame) -> bytes:
    """The findings as CSV (RFC 4180, text fields quoted, NA empty), written by Arrow's C++
    writer: six times faster than DataFrame.to_csv on a million-opportunity audit. Every text
    cell goes through :func:`neutralise_text` (this is the only CSV writer: violations.csv and
    every e-mail attachment)."""
    frame = violations[VIOLATION_COLUMNS].copy()
    for col in frame.columns:
        if col != "amount":
            frame[col] = frame[col].astype("string")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for i, field in enumerate(table.schema):
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            table = table.set_column(i, field, neutralise_text(table.column(i)))
    buf = io.BytesIO()
    pa_csv.write_csv(table, buf, pa_csv.WriteOptions(quoting_style="needed"))
    return buf.getvalue()


def write_violations_csv(violations: pd.DataFrame, path: Path) -> Path:
    return write_private(path, violations_csv_bytes(violations))


def _dump(data: Any) -> str:
    return json.dumps(jsonable(data), ensure_ascii=False, indent=1, allow_nan=False)


#: rows serialized at a time into violations.json (about 30 MB of text at most in memory)
JSON_CHUNK_ROWS = 50_000


def write_violations_json(
    violations: pd.DataFrame, path: Path, chunk_rows: int = JSON_CHUNK_ROWS
) -> Path:
    """The full list, unindented, streamed to the file in chunks of rows, each written by
    pandas' C serializer (NA → null, stage as text, the values jsonable() gives). Built as one
    indented string it took 145 MB and 1.6 s at a million opportunities."""
    frame = violations[VIOLATION_COLUMNS]
    fd = os.open(path, _PRIVATE_FLAGS, PRIVATE_FILE)
    try:
        with os.fdopen(fd, "wb", buffering=1 << 20) as out:
            out.write(b"[")
            for start in range(0, len(frame), chunk_rows):
                chunk = frame.iloc[start : start + chunk_rows].copy()
                chunk["stage"] = chunk["stage"].astype("string")
                chunk["amount"] = chunk["amount"].astype("Float64")
                text = chunk.to_json(orient="records", force_ascii=False)
                if start:
                    out.write(b",")
                out.write(text[1:-1].encode("utf-8"))  # the objects, without the list brackets
            out.write(b"]")
    except BaseException:
        Path(path).unlink(missing_ok=True)  # no half-written file stays behind
        raise
    return Path(path)


def write_json(data: Any, path: Path, schema: str | None = None) -> Path:
    """Write ``data`` as JSON; with ``schema``, a top-level ``schema_version`` is added."""
    if schema is not None and isinstance(data, dict):
        data = {"schema_version": SCHEMA_VERSIONS[schema], **data}
    return write_private(path, _dump(data))


def run_record(run: AuditRun) -> dict[str, Any]:
    """The content of run.json: facts, score, history summary, coverage, outputs, delivery."""
    from auditor import __version__

    h = run.history
    out_dir = run.outputs[0].parent if run.outputs else None
    return {
        "schema_version": SCHEMA_VERSIONS["run"],
        "tool": {"name": "crm-hygiene-auditor", "version": __version__},
        "run_id": run.run_id,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "status": run.status,
        "score": run.score,
        "facts": run.facts(),
        "history": None
        if h is None
        else {
            "previous_run": asdict(h.previous_run),
            "new": h.new,
            "resolved": h.resolved,
            "persisting": h.persisting,
        },
        "rules": [
            {"code": r.code, "name": r.name, "severity": r.severity} for r in run.result.rules
        ],
        "coverage": run.result.coverage.to_dict(orient="records"),
        "suppressions": run.result.suppressions,
        "outputs": [
            str(p.relative_to(out_dir)) if out_dir and p.is_relative_to(out_dir) else str(p)
            for p in run.outputs
        ],
        "delivery": run.delivery,
        "schemas": dict(SCHEMA_VERSIONS),
    }


def write_run_json(run: AuditRun, path: Path) -> Path:
    """Write run.json whole (an atomic replace, so a reader never sees half of it). A run
    writes it once, after delivery (auditor.app.run); write_reports writes it when used
    on its own."""
    return replace_private(path, _dump(run_record(run)))
