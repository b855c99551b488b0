"""Reading one CSV file as text, and collecting per-row rejections with their reasons.

Row numbers: the header is row 1, so the first data row is row 2 — the line number a text editor
shows, as long as no quoted cell spans several lines. Blank lines are skipped without shifting
the numbering.
"""

from __future__ import annotations

import csv
import difflib
import io
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from auditor.errors import SourceDataError
from auditor.snapshot import RejectedRow
from connectors.file_text import decode_bytes
from connectors.limits import DEFAULT_LIMITS, FileLimits, check_cells, check_file_size, check_header

# whitespace as str.strip() sees it, plus the byte order mark
_STRIP = "".join(chr(c) for c in range(0x3001) if chr(c).isspace()) + "\ufeff"


@dataclass
class CsvTable:
    """A CSV file as trimmed text cells (missing = NA), indexed by row number (header = 1)."""

    path: Path
    label: str  # how messages name the file (its file name)
    frame: pd.DataFrame
    blank_rows: int = 0
    warnings: list[str] = field(default_factory=list)
    #: how the file was decoded (encoding, confidence, detected), for the run facts
    encoding: dict = field(default_factory=dict)

    @property
    def headers(self) -> list[str]:
        return list(self.frame.columns)

    def column(self, header: str, option: str) -> pd.Series:
        """The cells under ``header``; a missing header is a SourceDataError naming the option."""
        if header not in self.frame.columns:
            hint = difflib.get_close_matches(header, self.headers, n=1)
            did = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise SourceDataError(
                f"{self.label}: column {header!r} (mapped by `{option}`) is not in the header"
                f"{did}; headers found: {', '.join(self.headers) or '(none)'}"
            )
        return self.frame[header]

    def where(self, row: int) -> str:
        return f"{self.label} row {row}"


def read_table(
    path: Path,
    *,
    what: str,
    encoding: str,
    delimiter: str,
    na_values: Iterable[str],
    limits: FileLimits = DEFAULT_LIMITS,
    option: str = "source.encoding",
) -> CsvTable:
    """Read every cell as text; trim spaces; cells in ``na_values`` become NA; drop blank rows.

    The encoding is detected unless ``encoding`` names one (see :mod:`connectors.file_text`).
    The file's size and header width are checked against ``limits`` before pandas reads it,
    and every cell's length after."""
    label = path.name
    if path.is_file():
        check_file_size(path, label, limits)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SourceDataError(f"{what} file {path} does not exist") from None
    except IsADirectoryError:
        raise SourceDataError(f"{what} file {path} is a folder, not a CSV file") from None
    decoded = decode_bytes(data, label=label, setting=encoding, option=option)
    check_header(data, label, encoding=decoded.encoding, delimiter=delimiter, limits=limits)
    # a byte order mark starting a later line (two exports concatenated): before a quoted cell
    # it would make the quotes part of the value
    text = decoded.text.replace("\n\ufeff", "\n")
    try:
        raw = pd.read_csv(
            io.StringIO(text),
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
            sep=delimiter,
        )
    except pd.errors.EmptyDataError:
        raise SourceDataError(f"{label}: the file is empty (expected a header row)") from None
    except pd.errors.ParserError as exc:
        raise SourceDataError(f"{label}: not readable as CSV: {exc}") from None
    raw.columns, warnings = unique_headers(_header_row(text, delimiter, raw), label)
    if (mixed := decoded.warning(label)) is not None:
        warnings.append(mixed)
    raw.index = pd.RangeIndex(2, len(raw) + 2)
    na = [v.strip() for v in na_values]
    # a byte order mark inside the file (two exports concatenated) is not part of a value
    cells = raw.apply(lambda c: c.str.strip(_STRIP))
    check_cells(cells, label, limits, rows=cells.index)
    cells = cells.where(~cells.isin(na))
    blank = cells.isna().all(axis=1)
    return CsvTable(path, label, cells[~blank], blank_rows=int(blank.sum()), warnings=warnings,
                    encoding=decoded.fact())


def _header_row(text: str, delimiter: str, raw: pd.DataFrame) -> list[str]:
    """The header cells as written (pandas has already renamed exact repeats to "X.1")."""
    try:
        header = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    except csv.Error:  # e.g. a header cell over the csv module's size limit
        header = []
    if len(header) != len(raw.columns):
        header = [str(c) for c in raw.columns]
    return header


def unique_headers(header: list[str], label: str) -> tuple[list[str], list[str]]:
    """Trimmed header names, a repeat renamed "X.1", "X.2", … (skipping names already in the
    header), and a warning per repeated name saying which column keeps the name.

    Trimming can make names equal that pandas saw as different ("id" and " id"), so the
    renaming is done here, after trimming, not left to pandas."""
    names = [h.strip().lstrip("\ufeff").strip() for h in header]
    taken = set(names)
    seen: dict[str, list[int]] = {}
    out: list[str] = []
    for pos, name in enumerate(names, start=1):
        if name not in seen:
            seen[name] = [pos]
            out.append(name)
            continue
        k = len(seen[name])
        while f"{name}.{k}" in taken:
            k += 1
        new = f"{name}.{k}"
        taken.add(new)
        seen[name].append(pos)
        out.append(new)
    warnings = []
    for name, cols in seen.items():
        if len(cols) > 1:
            others = ", ".join(f"column {c} as {out[c - 1]!r}" for c in cols[1:])
            warnings.append(
                f"{label}: header {name!r} appears {len(cols)} times; mappings use column "
                f"{cols[0]}, the others are named: {others}")
    return out, warnings


@dataclass
class Rejections:
    """Reasons collected per row (vectorized: one Series of texts per check)."""

    table: CsvTable
    _parts: list[pd.Series] = field(default_factory=list)

    def add(self, mask: pd.Series, reason: pd.Series | str) -> None:
        if not mask.any():
            return
        if isinstance(reason, str):
            texts = pd.Series(reason, index=mask.index[mask], dtype=object)
        else:
            texts = reason[mask].astype(object)
        self._parts.append(texts)

    @property
    def mask(self) -> pd.Series:
        hit = pd.Series(False, index=self.table.frame.index)
        for part in self._parts:
            hit.loc[part.index] = True
        return hit

    def rows(self) -> list[RejectedRow]:
        """One RejectedRow per rejected row, reasons in the order the checks ran."""
        if not self._parts:
            return []
        joined = pd.concat(self._parts).groupby(level=0, sort=True).agg("; ".join)
        return [RejectedRow(self.table.where(int(r)), str(t)) for r, t in joined.items()]


def quoted(s: pd.Series, limit: int = 80) -> pd.Series:
    """Cell text for messages: quoted, cut to ``limit`` characters."""
    short = s.astype(object).where(s.str.len() <= limit, s.str.slice(0, limit - 1) + "…")
    return "'" + short.astype(str) + "'"
