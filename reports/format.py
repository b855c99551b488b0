"""Formatting filters shared by every template (HTML, Markdown and plain text).

They never raise on odd values (None, NA, NaN, strings where numbers were expected): a report
must render whatever the metrics and the CRM data hold.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlsplit

from auditor.na import is_na
from auditor.stages import STAGE_LABELS

DASH = "—"
# "&" too: an entity reference (&lt;) would otherwise be decoded by the Markdown renderer
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>|#!~&])")
#: record links: only web pages (no javascript:, data:, file:, mailto: from CRM data)
_SAFE_SCHEMES = {"http", "https"}
# characters kept as they are in a Markdown link destination; everything else (spaces, < > ( )
# quotes, backslash, backtick, non-ASCII) is percent-encoded, so no value can end the link
_URL_SAFE = "/:?#@!$&*+,;=%~-._"


is_missing = is_na  # the one NA test (auditor.na)


def is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and not is_missing(v)


#: symbols for the currencies whose symbol is unambiguous in a report; others print their code
CURRENCY_SYMBOLS = {
    "USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹", "KRW": "₩", "ILS": "₪",
    "NGN": "₦", "PHP": "₱", "VND": "₫", "UAH": "₴", "TRY": "₺", "PLN": "zł ", "BRL": "R$",
    "AUD": "A$", "CAD": "C$", "NZD": "NZ$", "HKD": "HK$", "SGD": "S$", "MXN": "MX$",
}  # fmt: skip


def money(v: Any, currency: Any = None) -> str:
    """Amounts without decimals, with thousands separators and, when known, the currency:
    ``$12,000`` or ``CHF 12,000``."""
    if not is_number(v):
        return DASH
    text = f"{abs(float(v)):,.0f}"
    sign = "-" if float(v) < 0 and text.strip("0,") else ""
    code = oneline(currency).upper()
    if not code:
        return sign + text
    sym = CURRENCY_SYMBOLS.get(code)
    return f"{sign}{sym}{text}" if sym else f"{sign}{code} {text}"


def number(v: Any, digits: int = 1) -> str:
    """Integers with separators; floats rounded; anything else as text."""
    if is_missing(v):
        return DASH
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:,.{digits}f}"
    return oneline(v)


def pct(v: Any, digits: int = 1) -> str:
    """A share 0..1 as a percentage."""
    if not is_number(v):
        return DASH
    return f"{100.0 * float(v):.{digits}f} %"


def signed(v: Any, digits: int = 1) -> str:
    if not is_number(v):
        return DASH
    return f"{float(v):+.{digits}f}"


def oneline(v: Any) -> str:
    """Text on one line: CR, LF and other control characters become spaces."""
    if is_missing(v):
        return ""
    return " ".join(re.sub(r"[\x00-\x1f\x7f\u2028\u2029]", " ", str(v)).split())


def md(v: Any) -> str:
    """Escape text for Markdown (inline, one line): no markup or raw HTML gets through."""
    return _MD_SPECIAL.sub(r"\\\1", oneline(v))


def safe_url(v: Any) -> str | None:
    """The URL when it is an http(s) address with a host, else None (no javascript: links
    from CRM data)."""
    text = oneline(v)
    if not text:
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    return text if parts.scheme.lower() in _SAFE_SCHEMES and parts.netloc else None


def md_url(v: Any) -> str | None:
    """A Markdown link destination: :func:`safe_url`, percent-encoded so that no character
    of it (``>``, ``)``, a quote, a space) can end the link and start raw HTML."""
    url = safe_url(v)
    return None if url is None else quote(url, safe=_URL_SAFE)


def stage_label(v: Any) -> str:
    if is_missing(v) or v == "":
        return DASH
    return STAGE_LABELS.get(str(v), oneline(v))


def sentence(v: Any) -> str:
    """First letter upper-case (rule docs are written as sentence tails)."""
    text = oneline(v)
    return text[:1].upper() + text[1:]


def humanize(key: Any) -> str:
    """metric_key → "Metric key"."""
    text = oneline(key).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


_QUOTED_KEY = re.compile(r"'([a-z][a-z0-9]*(?:_[a-z0-9]+)+)'")
_BACKTICKED = re.compile(r"`{1,2}([^`]+)`{1,2}")
_BARE_KEY = re.compile(r"(?<![.\w])[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b(?!\.\w)")
_STAGE_KEY = re.compile(r"\b(" + "|".join(k for k in STAGE_LABELS if "_" in k) + r")\b")


def human(v: Any) -> str:
    """Text for a reader: no internal key names. Quoted column keys ('still_open') become
    their table heading ("Still open"), stage keys (closed_won) their label; code marks
    (`x`, ``x``) are dropped — a config key is left as the plain pointer it is."""
    text = oneline(v)
    text = _QUOTED_KEY.sub(lambda m: f"\u201c{humanize(m.group(1))}\u201d", text)
    text = _BACKTICKED.sub(lambda m: m.group(1).strip(), text)
    text = _STAGE_KEY.sub(lambda m: STAGE_LABELS[m.group(1)], text)
    # any other field name in words ("next_step_due" → "next step due"); a dotted config key
    # ("source.stage_map") and a file name ("process_findings.csv") stay as they are
    return _BARE_KEY.sub(lambda m: m.group(0).replace("_", " "), text)


def rule_label(name: Any) -> str:
    """A rule's kebab-case name as words: "missing-next-step" → "Missing next step"."""
    return humanize(oneline(name).replace("-", " "))


def ljust(v: Any, width: int) -> str:
    text = oneline(v)
    return text if len(text) >= width else text + " " * (width - len(text))


def rjust(v: Any, width: int) -> str:
    text = oneline(v)
    return text if len(text) >= width else " " * (width - len(text)) + text


def clip(v: Any, width: int) -> str:
    text = oneline(v)
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def text_bar(percent: Any, width: int = 20, char: str = "#", empty: str = ".") -> str:
    """A bar of ``width`` characters filled to ``percent`` (0..100)."""
    p = float(percent) if is_number(percent) else 0.0
    n = round(max(0.0, min(100.0, p)) * width / 100.0)
    return char * n + empty * (width - n)


def plural(n: Any, word: str, words: str | None = None) -> str:
    """``3 | plural("deal")`` → "3 deals"; 1 → "1 deal"."""
    text = number(n)
    return f"{text} {word if n == 1 else (words or word + 's')}"


FILTERS = {
    "plural": plural,
    "money": money,
    "number": number,
    "pct": pct,
    "signed": signed,
    "oneline": oneline,
    "md": md,
    "safe_url": safe_url,
    "md_url": md_url,
    "stage_label": stage_label,
    "sentence": sentence,
    "humanize": humanize,
    "rule_label": rule_label,
    "human": human,
    "ljust": ljust,
    "rjust": rjust,
    "clip": clip,
    "text_bar": text_bar,
}
