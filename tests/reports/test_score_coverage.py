"""A hygiene score computed from few evaluable checks says so next to the number."""

from __future__ import annotations

from pathlib import Path

from auditor.app.run import execute
from auditor.config import load_config

MAVEN = Path(__file__).resolve().parents[2] / "examples" / "maven" / "maven.toml"


def test_maven_score_states_its_check_coverage(tmp_path: Path) -> None:
    run = execute(load_config(MAVEN), out_dir=tmp_path)
    hs = run.metrics.to_dict()["hygiene_score"]
    share = hs["checks_evaluated_share"]
    # over the checks in to-do scope that apply (open deals; close-outs of recent closes)
    assert share == round(hs["basis"]["checks"] / hs["basis"]["applicable_checks"], 4)
    assert 0 < share < 0.5  # no history, next steps, loss reasons or activities in Maven
    pct = round(share * 100)
    basis = hs["basis"]["text"]
    assert basis == (
        f"over {hs['basis']['checks']:,} checks on {hs['basis']['deals_checked']:,} deals "
        f"({pct}% of applicable checks evaluable)"
    )
    for name in ("report.md", "report.txt", "assessment.md"):
        assert basis in (tmp_path / name).read_text(), name
    assert f"(from {pct}% of checks; see Coverage)" in (tmp_path / "report.md").read_text()
    assert f"(from {pct}% of checks; see Coverage)" in (tmp_path / "report.txt").read_text()
    assert f"from {pct}% of checks" in (tmp_path / "report.html").read_text()


def test_demo_score_covers_nearly_every_check(tmp_path: Path) -> None:
    from auditor.config import default_config

    run = execute(default_config(), out_dir=tmp_path, as_of=None)
    assert run.metrics.hygiene_score.checks_evaluated_share > 0.9
