"""assessment.pdf: the assessment HTML printed through WeasyPrint (CSS paged media).

WeasyPrint (BSD, pure Python on Pango) honours the template's print stylesheet: ``@page``
margin boxes with the client (the report title) and the as-of date via ``string-set``, page
numbers ``counter(page)`` of ``counter(pages)``, and page breaks before each part. Chromium's
print-to-PDF ignores margin boxes and would need a browser at report time. WeasyPrint fetches
nothing: every URL it is asked for is refused (the reports link no assets anyway).
"""

from __future__ import annotations

from pathlib import Path

from auditor.errors import ConfigError


def _no_fetch(url: str, *args: object, **kwargs: object) -> dict:
    raise ValueError(f"assessment.pdf loads no external resource ({url[:80]})")


def write_pdf(html: str, path: Path) -> Path:
    """Print ``html`` to ``path``; a clear error when WeasyPrint is not installed."""
    try:
        import weasyprint
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ConfigError(
            'report.pdf = true needs WeasyPrint: pip install "crm-hygiene-auditor[pdf]" '
            f"(it also needs the Pango library, Debian package libpango-1.0-0): {exc}"
        ) from None
    weasyprint.HTML(string=html, url_fetcher=_no_fetch).write_pdf(path)
    return path
