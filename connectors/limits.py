"""Caps on what a file source may make the auditor read, so a hostile or broken export cannot
take the machine down: a zip that unpacks to gigabytes, a header with a million columns, a
single cell of 100 MB.

Every file connector's options include :class:`FileLimits` (``[source]`` keys). Each check
runs before the expensive step it protects (sizes before unpacking, the header before pandas
parses the file) and stops with a :class:`SourceDataError` naming the file, the cap and the
setting that raises it.
"""

from __future__ import annotations

import contextlib
import csv
import io
import zipfile
from pathlib import Path

import pandas as pd
from pydantic import Field

from auditor.config import Section
from auditor.errors import SourceDataError

MB = 1024 * 1024
#: the header row is read up to this many characters to count its columns
_HEADER_READ = 16 * MB


class FileLimits(Section):
    """Caps for file sources (see docs/connectors/csv.md, "Limits")."""

    #: largest file read, in MB (for a zip: each CSV inside it, unpacked)
    max_file_mb: float = Field(default=1024, gt=0)
    #: largest unpacked / packed size ratio of a CSV inside a zip (CSV packs 5-20 : 1;
    #: a zip bomb 1000 : 1)
    max_compression_ratio: float = Field(default=100, gt=1)
    #: most columns a CSV header may have
    max_columns: int = Field(default=2000, ge=1)
    #: longest cell, in characters (Salesforce's long text fields hold at most 131,072)
    max_field_chars: int = Field(default=131_072, ge=1)


DEFAULT_LIMITS = FileLimits()


def _too_big(where: str, size: float, limits: FileLimits, what: str) -> SourceDataError:
    return SourceDataError(
        f"{where}: {what} {size / MB:,.0f} MB, over the limit of {limits.max_file_mb:,g} MB "
        "(source.max_file_mb); raise it if the export really is that large"
    )


def check_file_size(path: Path, where: str, limits: FileLimits) -> None:
    """A plain file over ``max_file_mb`` is refused before it is read."""
    try:
        size = path.stat().st_size
    except OSError:
        return  # the reader reports a missing / unreadable file in its own words
    if size > limits.max_file_mb * MB:
        raise _too_big(where, size, limits, "is")


def read_zip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, where: str,
                    limits: FileLimits) -> bytes:
    """The member's bytes, refused by its declared sizes before unpacking, and read no further
    than the cap (a member whose header understates its size is cut off and refused)."""
    cap = int(limits.max_file_mb * MB)
    if info.file_size > cap:
        raise _too_big(where, info.file_size, limits, "unpacks to")
    ratio_cap = limits.max_compression_ratio

    def ratio_error(size: int) -> SourceDataError:
        return SourceDataError(
            f"{where}: unpacks to {size / max(info.compress_size, 1):,.0f} times its packed size, "
            f"over the limit of {ratio_cap:,g} (source.max_compression_ratio): this is what a "
            "zip bomb looks like; raise the setting if the export is genuine"
        )

    if info.file_size > ratio_cap * max(info.compress_size, 1) and info.file_size > MB:
        raise ratio_error(info.file_size)
    with zf.open(info) as fh:
        data = fh.read(cap + 1)
    if len(data) > cap:
        raise _too_big(where, len(data), limits, "unpacks to more than")
    if len(data) > ratio_cap * max(info.compress_size, 1) and len(data) > MB:
        raise ratio_error(len(data))
    return data


def check_header(source: Path | bytes, where: str, *, encoding: str, delimiter: str,
                 limits: FileLimits) -> None:
    """Count the header's columns (csv module, quotes respected) before pandas reads the file:
    pandas spends minutes and gigabytes on a million columns."""
    try:
        if isinstance(source, bytes):
            fh = io.TextIOWrapper(io.BytesIO(source[: 4 * _HEADER_READ]), encoding=encoding,
                                  newline="")
        else:
            fh = source.open(encoding=encoding, newline="")
        with fh:
            line = fh.readline(_HEADER_READ)
    except (OSError, UnicodeError, LookupError):
        return  # the reader reports these in its own words
    if not line.endswith(("\n", "\r")) and len(line) >= _HEADER_READ:
        raise SourceDataError(
            f"{where}: the header row is longer than {_HEADER_READ // MB} MB; this is not a CRM "
            f"export (at most {limits.max_columns:,} columns, source.max_columns)"
        )
    n = line.count(delimiter) + 1
    if n > limits.max_columns:  # the count above may include quoted delimiters: confirm
        with contextlib.suppress(csv.Error):
            n = len(next(csv.reader([line], delimiter=delimiter), []))
    if n > limits.max_columns:
        raise SourceDataError(
            f"{where}: the header has {n:,} columns, over the limit of {limits.max_columns:,} "
            "(source.max_columns); raise it if the export really has that many"
        )


def check_cells(frame: pd.DataFrame, where: str, limits: FileLimits,
                rows: pd.Index | None = None) -> None:
    """Refuse a cell longer than ``max_field_chars`` (vectorized: one length pass per column).

    ``rows`` gives the row number of each frame row for the message (default: its position + 2,
    the line of a file whose header is line 1)."""
    cap = limits.max_field_chars
    for i, col in enumerate(frame.columns):
        s = frame.iloc[:, i]
        if not (pd.api.types.is_string_dtype(s) or s.dtype == object):
            continue
        lengths = s.astype("string").str.len()
        over = (lengths > cap).fillna(False).to_numpy(dtype=bool)
        if not over.any():
            continue
        pos = int(over.argmax())
        row = rows[pos] if rows is not None else pos + 2
        raise SourceDataError(
            f"{where} row {row}, column {col!r}: a cell of {int(lengths.iloc[pos]):,} characters, "
            f"over the limit of {cap:,} (source.max_field_chars); raise it if the field really "
            "holds that much text"
        )
