"""Exported files as text: the encoding is detected per file unless the config names one.

Real exports are rarely clean UTF-8: Salesforce's weekly export is ISO-8859-1 in many orgs, and
files edited by hand or concatenated carry stray UTF-8 rows inside Latin-1 text. Detection
(charset-normalizer) picks the encoding; a file that holds both is decoded as UTF-8 where its
bytes are valid UTF-8 and in the detected single-byte encoding elsewhere, and the rows concerned
are named in a warning. An explicit ``encoding`` setting always wins; when the file does not
decode with it, the error names the file, the byte offset, the row and the setting to use.
"""

from __future__ import annotations

import codecs
import re
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from auditor.errors import SourceDataError

#: the setting's value that asks for detection
AUTO = "auto"

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
#: a well-formed UTF-8 sequence of two to four bytes (what stray UTF-8 text looks like)
_UTF8_MULTI = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)


@dataclass
class DecodedText:
    """A file's text and how it was decoded (reported in the run facts)."""

    text: str
    encoding: str
    confidence: float
    detected: bool
    #: rows (header = 1) decoded in the second encoding of a mixed file
    mixed_rows: list[int] = field(default_factory=list)
    mixed_with: str | None = None

    def fact(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "encoding": self.encoding,
            "confidence": round(self.confidence, 2),
            "detected": self.detected,
        }
        if self.mixed_rows:
            out["mixed_with"] = self.mixed_with
            out["mixed_rows"] = self.mixed_rows[:20]
        return out

    def warning(self, label: str) -> str | None:
        if not self.mixed_rows:
            return None
        rows = ", ".join(map(str, self.mixed_rows[:5]))
        more = f" and {len(self.mixed_rows) - 5} more" if len(self.mixed_rows) > 5 else ""
        return (
            f"{label}: {self.encoding} text with {self.mixed_with} on row(s) {rows}{more}; each "
            f"part was decoded in its own encoding — check the names on those rows"
        )


def _name(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        return encoding


#: how much of a large file charset-normalizer judges: its start, middle and end
_SAMPLE = 256 * 1024


def _sample(data: bytes) -> bytes:
    """A few slices of a large file, cut at line ends (detection of a whole 100 MB file takes
    minutes; the encoding of an export does not change half-way)."""
    if len(data) <= 4 * _SAMPLE:
        return data
    parts = []
    for start in (0, len(data) // 2, len(data) - _SAMPLE):
        chunk = data[start:start + _SAMPLE]
        if start:
            chunk = chunk[chunk.find(b"\n") + 1:]
        parts.append(chunk[:chunk.rfind(b"\n") + 1])
    return b"".join(parts)


def _utf8_sequences(data: bytes) -> np.ndarray:
    """Offsets of well-formed two- and three-byte UTF-8 sequences (vectorized; what stray UTF-8
    text in a single-byte file looks like: é = c3 a9, – = e2 80 93)."""
    a = np.frombuffer(data, dtype=np.uint8)
    if len(a) < 2:
        return np.empty(0, dtype=np.int64)
    cont = (a >= 0x80) & (a <= 0xBF)
    two = (a[:-1] >= 0xC2) & (a[:-1] <= 0xDF) & cont[1:]
    hits = np.flatnonzero(two)
    if len(a) >= 3:
        three = (a[:-2] >= 0xE0) & (a[:-2] <= 0xEF) & cont[1:-1] & cont[2:]
        hits = np.union1d(hits, np.flatnonzero(three))
    return hits


def _rows_at(newlines: np.ndarray, offsets: list[int]) -> list[int]:
    """Row (line) numbers of byte offsets; the header line is row 1."""
    return [int(r) + 1 for r in np.searchsorted(newlines, np.asarray(offsets), side="right")]


def _newlines(data: bytes) -> np.ndarray:
    return np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)


_STATE = threading.local()


def _fallback(exc: UnicodeError) -> tuple[str, int]:
    """Error handler: bytes UTF-8 refuses are decoded in the single-byte encoding in use, and
    their offsets recorded (state is per thread: runs may read files in parallel)."""
    assert isinstance(exc, UnicodeDecodeError)
    _STATE.offsets.append(exc.start)
    chunk = exc.object[exc.start:exc.end]
    return chunk.decode(_STATE.encoding, errors="replace"), exc.end


codecs.register_error("crm_audit_fallback", _fallback)


def _decode_mixed(data: bytes, single: str) -> tuple[str, list[int]]:
    _STATE.offsets, _STATE.encoding = [], single
    try:
        return data.decode("utf-8", errors="crm_audit_fallback"), list(_STATE.offsets)
    finally:
        _STATE.offsets = []


#: preferred among equally plausible single-byte guesses: what Western exports are written in
_PREFERRED = ("cp1252", "iso8859-1", "iso8859-15")


def _detect(data: bytes) -> tuple[str | None, float]:
    """charset-normalizer's guess; among guesses that fit equally well (short files often fit
    a dozen code pages), the Western ones that CRM exports use win."""
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches:
        return None, 0.0
    least = min(m.chaos for m in matches)
    tied = [m for m in matches if m.chaos <= least + 0.01]
    names = [_name(m.encoding) for m in tied]
    pick = next((n for n in _PREFERRED if n in names), None)
    if pick is None and _decodes(data, "cp1252"):
        # charset-normalizer lists a dozen code pages for a Latin file with few accents and
        # may rank a Central European one first by a hair: cp1252 wins unless clearly worse
        best = max(tied, key=lambda m: m.coherence)
        western = list(from_bytes(data, cp_isolation=["cp1252"]))
        if western and western[0].chaos <= least + 0.01 and (
                western[0].coherence >= best.coherence - 0.05):
            return "cp1252", max(0.0, 1.0 - float(western[0].chaos))
    if pick is None:
        best = max(tied, key=lambda m: m.coherence)
        pick, chaos = _name(best.encoding), best.chaos
    else:
        chaos = tied[names.index(pick)].chaos
    return pick, max(0.0, 1.0 - float(chaos))


def _suggest(data: bytes) -> tuple[str | None, float]:
    """The encoding to propose when the configured one fails: a byte order mark says it."""
    for bom, encoding in _BOMS:
        if data.startswith(bom) and _decodes(data, encoding):
            return encoding, 1.0
    return _detect(_sample(data))


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeError:
        return False
    return True


def _single_byte(encoding: str) -> bool:
    try:
        return len(bytes(range(256)).decode(encoding, errors="replace")) == 256
    except LookupError:
        return False


def decode_bytes(data: bytes, *, label: str, setting: str | None, option: str) -> DecodedText:
    """Decode one exported file (see the module docstring). ``option`` names the setting."""
    if setting and setting.casefold() != AUTO:
        try:
            codecs.lookup(setting)
        except LookupError:
            raise SourceDataError(
                f"{label}: unknown encoding {setting!r} ({option}); use e.g. \"utf-8\", "
                f"\"cp1252\", \"iso-8859-1\", or \"auto\" to detect it"
            ) from None
        try:
            return DecodedText(data.decode(setting), _name(setting), 1.0, detected=False)
        except UnicodeError as exc:  # UTF-16 without a byte order mark raises the base class
            guess, conf = _suggest(data)
            start = getattr(exc, "start", 0)
            row = _rows_at(_newlines(data), [start])[0]
            bad = data[start:start + 4].hex(" ")
            hint = (f"set {option} = \"{guess}\" (detected with confidence {conf:.0%}) or "
                    f"\"auto\"" if guess else f"set {option} = \"auto\" or the file's encoding")
            raise SourceDataError(
                f"{label}: byte {exc.start} (row {row}) is not valid {setting} text (bytes "
                f"{bad}); {hint}"
            ) from None
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return DecodedText(data.decode(encoding), encoding, 1.0, detected=True)
            except UnicodeDecodeError:
                break  # a BOM and broken text: let detection judge the bytes
    try:
        return DecodedText(data.decode("utf-8"), "utf-8", 1.0, detected=True)
    except UnicodeDecodeError:
        pass
    utf8_hits = _utf8_sequences(data).tolist()
    sample = _sample(data)
    # judge the other bytes without the UTF-8 ones (they make Latin text look Central European)
    guess, conf = _detect(_UTF8_MULTI.sub(b"", sample) if utf8_hits else sample)
    if guess is None and utf8_hits:
        guess, conf = _detect(sample)
    if guess is None and _decodes(data, "cp1252"):
        guess, conf = "cp1252", 0.5
    if guess is None:
        raise SourceDataError(
            f"{label}: the text encoding could not be detected (binary data?); set {option} "
            f"to the file's encoding, e.g. \"cp1252\""
        )
    if utf8_hits and (_single_byte(guess) or guess.startswith("utf")):
        # both kinds of bytes: UTF-8 where valid, the single-byte encoding elsewhere
        single = guess if _single_byte(guess) else "cp1252"
        text, invalid = _decode_mixed(data, single)
        newlines = _newlines(data)
        utf8_rows = sorted(set(_rows_at(newlines, utf8_hits)))
        bad_rows = sorted(set(_rows_at(newlines, invalid)))
        # name the minority as the stray part
        if len(utf8_rows) <= len(bad_rows):
            return DecodedText(text, single, conf, detected=True, mixed_rows=utf8_rows,
                               mixed_with="UTF-8")
        return DecodedText(text, "utf-8", conf, detected=True, mixed_rows=bad_rows,
                           mixed_with=single)
    return DecodedText(data.decode(guess, errors="replace"), guess, conf, detected=True)
