"""A hygiene score computed from few evaluable checks says so next to the number."""

from __future__ import annotations

from pathlib import Path

from auditor.app.run import execute
from auditor.config import load_config

MAVEN = Path(__file__).resolve().parents[2] / "examples" / "maven" / "maven.toml"


def test_maven_score_states_its_check_coverage(tmp_path: Path) -> None:
    run = execute(load_config(MAVEN), out_dir=tmp_path)
    cov = run.result.coverage
    share = run.metrics["hygiene_score"]["checks_evaluated_share"]
    assert share == round(cov["evaluated"].sum() / cov["records"].sum(), 4)
    assert 0 < share < 0.5  # no history, next steps, loss reasons or activities in Maven
    pct = round(share * 100)
    assert f"(from {pct}% of checks; see Coverage)" in (tmp_path / "report.md").read_text()
    assert f"(from {pct}% of checks; see Coverage)" in (tmp_path / "report.txt").read_text()
    assert f"from {pct}% of checks" in (tmp_path / "report.html").read_text()


def test_demo_score_covers_nearly_every_check(tmp_path: Path) -> None:
    from auditor.config import default_config

    run = execute(default_config(), out_dir=tmp_path, as_of=None)
    assert run.metrics["hygiene_score"]["checks_evaluated_share"] > 0.9
