"""'Did you mean' for names people type: config keys, source types, rule selectors, columns."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The choice closest to ``word`` (compared case-insensitively), or None."""
    by_fold: dict[str, str] = {}
    for c in choices:
        by_fold.setdefault(str(c).casefold(), str(c))
    hit = difflib.get_close_matches(str(word).casefold(), list(by_fold), n=1, cutoff=cutoff)
    return by_fold[hit[0]] if hit else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when a choice is close to ``word``, else ""."""
    hit = closest(word, choices)
    return f" (did you mean {hit!r}?)" if hit and hit != word else ""
