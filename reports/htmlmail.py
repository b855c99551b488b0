"""Make rendered HTML compact for e-mail: no indentation, no blank lines, no comments.

The reports keep their CSS in one ``<style>`` block of shared classes (Gmail, Apple Mail and
Outlook keep it) plus the few inline attributes Outlook needs, written in the templates
themselves. Inlining every rule into every element (css-inline, until 0.2) made the manager
e-mail 267 KB on the demo, over Gmail's 102 KB clip; see docs/reports.md.
"""

from __future__ import annotations

import re

_COMMENT = re.compile(r"<!--(?!\[if|<!\[endif)(?!\[endif).*?-->", re.S)
_LEADING = re.compile(r"^[ \t]+", re.M)
#: the comments _COMMENT keeps: Outlook's conditional comments
_KEPT = ("<!--[if", "<!--<![endif", "<!--[endif")


def compact_html(html: str) -> str:
    """HTML without template indentation, blank lines and (non-conditional) comments.

    Whitespace inside text is left alone: only line starts are stripped, which HTML renders
    the same way (a line break and indentation collapse to one space either way).
    """
    # each pass only when it has something to do (str `in` is far cheaper than a regex scan;
    # a digest is compacted per owner, thousands of times a run)
    if html.count("<!--") > sum(html.count(kept) for kept in _KEPT):
        html = _COMMENT.sub("", html)
    if "\n " in html or "\n\t" in html or html[:1] in (" ", "\t"):
        html = _LEADING.sub("", html)
    while "\n\n" in html:  # what _BLANK does, without a regex scan
        html = html.replace("\n\n", "\n")
    return html.strip() + "\n"
