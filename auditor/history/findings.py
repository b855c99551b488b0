"""A run's findings as stored: one zstd-compressed Parquet blob per run (format
``parquet-zstd/1``), columns :data:`STORED_VIOLATION_COLUMNS` as text and ``amount`` as a
double.

One blob instead of one table row per finding: written straight from the engine's frame through
Arrow (no Python object per finding), about a tenth of the bytes (Parquet dictionary-encodes
the repeated rule names, owners and stages), and read back column by column (a diff reads only
the fingerprints). The store keeps the fingerprints in an indexed table beside it, for SQL.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from auditor.results import VIOLATION_COLUMNS

FINDINGS_FORMAT = "parquet-zstd/1"
#: the stored columns, fingerprint first (as in the schema-1 ``violations`` table)
STORED_VIOLATION_COLUMNS = ["fingerprint", *(c for c in VIOLATION_COLUMNS if c != "fingerprint")]
SCHEMA = pa.schema(
    [(c, pa.float64() if c == "amount" else pa.string()) for c in STORED_VIOLATION_COLUMNS]
)
_PANDAS_TYPES = {pa.string(): pd.StringDtype("pyarrow"), pa.float64(): pd.Float64Dtype()}


def findings_table(violations: pd.DataFrame) -> pa.Table:
    """The stored columns of the engine's violation frame, as Arrow (text and double)."""
    return pa.Table.from_arrays(
        [_column(violations[f.name], f.type) for f in SCHEMA], schema=SCHEMA
    )


def _column(s: pd.Series, typ: pa.DataType) -> pa.Array | pa.ChunkedArray:
    if typ == pa.float64():
        return pa.array(pd.to_numeric(s, errors="coerce").astype("Float64"), type=typ)
    arr = pa.array(s, from_pandas=True)  # string[pyarrow]: its buffers, no copy
    base = arr.type.value_type if pa.types.is_dictionary(arr.type) else arr.type
    if not (pa.types.is_string(base) or pa.types.is_large_string(base) or pa.types.is_null(base)):
        # not text (a numeric id, say): the same text pandas would write for it
        arr = pa.array(s.astype("string"), from_pandas=True)
    return arr.cast(typ)


def table_from_rows(rows: Iterable[Sequence[Any]]) -> pa.Table:
    """Rows in :data:`STORED_VIOLATION_COLUMNS` order (a schema-1 ``violations`` table)."""
    cols = list(zip(*rows, strict=True)) or [()] * len(SCHEMA)
    return pa.Table.from_arrays(
        [pa.array(list(c), type=f.type) for c, f in zip(cols, SCHEMA, strict=True)],
        schema=SCHEMA,
    )


def to_parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    # statistics would only describe one blob read whole; the dictionary stays on (it pays)
    pq.write_table(table, buf, compression="zstd", write_statistics=False)
    return buf.getvalue()


def read_fingerprints(data: bytes) -> pa.ChunkedArray:
    return pq.read_table(pa.BufferReader(data), columns=["fingerprint"])["fingerprint"]


def read_findings(data: bytes, fingerprints: list[str] | None = None) -> pd.DataFrame:
    """The stored findings as a frame (text as ``string[pyarrow]``, ``amount`` as ``Float64``):
    all of them sorted by rule code and record id, or those with the given fingerprints."""
    if fingerprints is None:
        return frame(sort_for_listing(pq.read_table(pa.BufferReader(data)).cast(SCHEMA)))
    # column by column, each filtered as soon as it is decoded: a diff wants a few resolved
    # rows, and the whole table decoded at once would be ~100 MiB at a million opportunities
    pf = pq.ParquetFile(pa.BufferReader(data))
    wanted = pa.array(fingerprints, type=pa.string())
    keep = pc.is_in(pf.read(columns=["fingerprint"])["fingerprint"], value_set=wanted)
    return frame(pa.Table.from_arrays(
        [pf.read(columns=[f.name])[f.name].filter(keep).cast(f.type) for f in SCHEMA],
        schema=SCHEMA,
    ))


def frame(table: pa.Table) -> pd.DataFrame:
    return table.select(STORED_VIOLATION_COLUMNS).to_pandas(types_mapper=_PANDAS_TYPES.get)


def sort_for_listing(table: pa.Table) -> pa.Table:
    """By rule code, then record id (byte order, as SQLite's ``ORDER BY`` did)."""
    order = pc.sort_indices(
        table,
        sort_keys=[("rule_code", "ascending", "at_start"),
                   ("opportunity_id", "ascending", "at_start")],
    )
    return table.take(order)
