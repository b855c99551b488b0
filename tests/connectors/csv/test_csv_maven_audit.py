"""The Maven sample audited end to end (engine + reports) through the CSV connector.

Maven has no next steps, loss reasons or stage history: coverage must say those rules are not
evaluable for the source instead of flagging every deal. A dirtied copy shows rejected rows and
unmapped stages reaching the report.
"""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

from auditor.app.run import execute
from auditor.config import load_config, parse_config

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "examples" / "maven" / "maven.toml"
MAVEN = ROOT / "tests" / "data" / "maven"


def test_maven_audit_coverage_and_report(tmp_path: Path) -> None:
    run = execute(load_config(CONFIG), out_dir=tmp_path)
    cov = run.result.coverage.set_index("rule_code")
    # coverage counts only the records each rule applies to (#14): FU01 judges open deals past
    # first contact, and Maven's open deals are all in Prospecting / Engaging (lead / contact)
    assert (cov.loc["FU01", "applicable"], cov.loc["FU01", "not_evaluable"]) == (0, 0)
    # CL01 applies to the 2,473 lost deals; Maven has no loss reasons
    assert cov.loc["CL01", "reasons"] == {"source does not provide loss_reason": 2473}
    # QL01 applies to the 4,238 won deals (past qualification by definition)
    assert cov.loc["QL01", "reasons"] == {"source has no stage history": 4238}
    # CD01: the only open deals have no close date — nothing is evaluated (it was 6,711)
    assert (cov.loc["CD01", "applicable"], cov.loc["CD01", "evaluated"]) == (2089, 0)
    assert cov.loc["CD01", "reasons"] == {"open deal without close date": 2089}
    facts = run.facts()
    assert (facts["records"], facts["loaded_rows"], facts["rejected_rows"]) == (8800, 8800, 0)
    assert facts["as_of"] == "2018-01-01"
    assert facts["notes"] == []  # date-only creation times are no import evidence
    md = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "- Records: 8,800 opportunities, 0 stage-history rows; rejected rows: 0" in md
    assert (
        "- CL01 missing-loss-reason: evaluated 0 of 2,473 it applies to; not evaluable 2,473 "
        "(source does not provide loss reason: 2,473)" in md
    )
    # the default periods (last and current quarter of 2018-01-01) partly hold nothing: said
    assert (
        "- no deal was created or closed in 2018-Q1: the metrics for that period are empty; "
        "quarters holding data (deals created or closed): 2017-Q1 (2,266), 2017-Q2 (4,420), "
        "2017-Q3 (4,817), 2017-Q4 (3,150)" in md
    )


@pytest.fixture
def dirty_config(tmp_path: Path) -> tuple[Path, dict]:
    """The shipped config over a copy of the pipeline with three broken rows."""
    lines = (MAVEN / "sales_pipeline.csv").read_text(encoding="utf-8").splitlines()
    # line numbers as the report shows them (header = row 1)
    assert lines[2].startswith("Z063OYW0,") and lines[4].startswith("MV1LWRNH,")
    lines[2] = lines[2].replace("2017-03-11", "2017-13-11")  # row 3: impossible month
    lines[4] = lines[4].replace(",588", ",5 88 8")  # row 5: not an amount
    lines[6] = lines[6].replace(",Won,", ",Negotiating,")  # row 7: stage not in the map
    (tmp_path / "sales_pipeline.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    shutil.copy(MAVEN / "sales_teams.csv", tmp_path / "sales_teams.csv")
    data = tomllib.loads(CONFIG.read_text(encoding="utf-8"))
    data["source"]["opportunities"] = "sales_pipeline.csv"
    data["source"]["owners"] = "sales_teams.csv"
    data["source"]["lookups"][0]["file"] = str(MAVEN / "accounts.csv")
    return tmp_path, data


def test_dirty_maven_rejections_reach_the_report(dirty_config: tuple[Path, dict]) -> None:
    folder, data = dirty_config
    cfg = parse_config(data, origin=str(folder / "maven.toml"), base_dir=folder)
    run = execute(cfg, out_dir=folder / "out")
    meta = run.snapshot.meta
    assert [f"{r.where}: {r.reason}" for r in meta.rejected] == [
        "sales_pipeline.csv row 3: column close_date: cannot parse '2017-13-11' as a date",
        "sales_pipeline.csv row 5: column close_value: cannot parse '5 88 8' as an amount "
        "(decimal separator '.')",
    ]
    assert meta.loaded_rows == 8798
    assert meta.unmapped_stages == {"Negotiating": 1}
    md = (folder / "out" / "report.md").read_text(encoding="utf-8")
    assert "- Records: 8,798 opportunities, 0 stage-history rows; rejected rows: 2" in md
    assert "- Unmapped stages: Negotiating (1)" in md
    # Markdown escapes underscores
    row3 = (
        "- sales\\_pipeline.csv row 3: column close\\_date: cannot parse '2017-13-11' as a date"
    )
    assert row3 in md
