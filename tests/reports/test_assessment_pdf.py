"""assessment.pdf prints from the assessment template for the demo and for Maven, in about
ten pages, with the client and the as-of date in the page header."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pypdf
import pytest

from auditor.app.run import execute
from auditor.config import load_config, parse_config

MAVEN = Path(__file__).resolve().parents[2] / "examples" / "maven" / "maven.toml"


def pages(path: Path) -> list[str]:
    return [p.extract_text() for p in pypdf.PdfReader(path).pages]


@pytest.mark.parametrize("source", ["demo", "maven"])
def test_assessment_pdf_prints_in_about_ten_pages(tmp_path: Path, source: str) -> None:
    if source == "demo":
        cfg = parse_config(
            {
                "source": {"type": "demo"},
                "report": {"pdf": True},
                "history": {"path": str(tmp_path / "history.sqlite")},
            },
            origin="<pdf>",
        )
        run = execute(cfg, out_dir=tmp_path / "out", as_of=date(2026, 11, 26), deliver=False)
    else:
        cfg = load_config(MAVEN)
        cfg = cfg.model_copy(update={"report": cfg.report.model_copy(update={"pdf": True})})
        run = execute(cfg, out_dir=tmp_path / "out", deliver=False)
    pdf = tmp_path / "out" / "assessment.pdf"
    assert pdf in run.outputs and pdf.read_bytes().startswith(b"%PDF-")
    text = pages(pdf)
    assert 4 <= len(text) <= 12, len(text)
    as_of = run.result.context.as_of.date().isoformat()
    for i, page in enumerate(text, 1):
        # margin boxes: client (the report title) top left, as-of top right, page x of n
        assert "assessment" in page.splitlines()[0] or "assessment" in page, i
        assert f"as of {as_of}" in page, i
        assert f"Page {i} of {len(text)}" in page, i
    # the parts start on their own page, in order
    starts = [next(i for i, p in enumerate(text) if h in p) for h in
              ("Findings", "Recommendations", "Appendix")]  # fmt: skip
    assert starts == sorted(starts) and starts[0] >= 1
