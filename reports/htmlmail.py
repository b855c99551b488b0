"""Make rendered HTML email-safe: CSS inlined into ``style`` attributes, no remote loads.

Many mail clients (Gmail, Outlook) drop ``<style>`` blocks, so every rule is inlined and the
block removed. The inliner never fetches remote stylesheets (the reports link none anyway).
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

try:  # css-inline is a declared dependency; without it the HTML keeps its <style> block
    import css_inline

    _INLINER = css_inline.CSSInliner(
        keep_style_tags=False, load_remote_stylesheets=False, keep_link_tags=False
    )
except ImportError:  # pragma: no cover - only when the dependency is missing
    _INLINER = None


def inline_css(html: str) -> str:
    """HTML with its ``<style>`` rules inlined into the elements."""
    if _INLINER is None:  # pragma: no cover
        log.warning("css-inline is not installed: HTML reports keep their <style> block")
        return html
    return _INLINER.inline(html)
