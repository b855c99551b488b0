"""Acceptance of #14 on the demo org: fix lists and digests hold to-dos only.

No closed deal older than the fix window appears in a fix list or digest; no advice shown for
a closed deal asks to move it; the score's basis is printed in every artefact showing a score;
per-rule rates use the records the rule applies to.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pandas as pd

from auditor.app.run import execute
from auditor.config import default_config

AS_OF = date(2026, 3, 31)


def test_demo_outputs_hold_to_dos_only_and_state_the_score_basis(tmp_path: Path) -> None:
    cfg = default_config()
    run = execute(cfg, out_dir=tmp_path, as_of=AS_OF)
    opp = run.snapshot.opportunities
    closed = opp["is_closed"].astype(bool)
    age = (pd.Timestamp(AS_OF) - opp["close_date"]).dt.days
    old = set(opp.loc[closed & (age > 90), "id"])
    assert old  # the demo has long-closed deals (with QL01 / ST01 / CL01 findings)
    proc = set(run.result.process["opportunity_id"])
    assert old & proc  # ... whose findings went to process history

    texts = {p.name: p.read_text(encoding="utf-8") for p in tmp_path.glob("report.*")}
    texts |= {p.name: p.read_text(encoding="utf-8") for p in tmp_path.glob("assessment.*")}
    texts |= {p.name: p.read_text(encoding="utf-8") for p in (tmp_path / "digests").iterdir()}
    assert any(n.startswith("owner-") for n in texts) and any(
        n.startswith("manager-") for n in texts
    )
    fix_part = {n: t.split("Process history")[0].split("PROCESS HISTORY")[0]
                for n, t in texts.items()}
    appendix_free = {n: t for n, t in fix_part.items() if not n.startswith("assessment")}
    for name, text in appendix_free.items():
        leaked = {i for i in old if i in text}
        assert not leaked, (name, sorted(leaked)[:5])
    # advice shown on closed deals never asks to move them
    v = run.result.violations
    on_closed = v[v["opportunity_id"].isin(set(opp.loc[closed, "id"]))]
    assert set(on_closed["rule_code"]) <= {"CL01", "CL02", "CL03"}
    for r in run.result.rules:
        if r.code in set(on_closed["rule_code"]):
            assert "move" not in r.fix().lower(), r.code
    # the score's basis wherever a score appears
    basis = run.metrics.hygiene_score.basis.text
    for name in ("report.md", "report.txt", "report.html", "assessment.md", "assessment.html"):
        assert basis in texts[name], name
    for name, text in texts.items():
        if name.startswith(("owner-", "manager-")) and name.endswith(".txt"):
            assert re.search(r"Score basis: (over [\d,]+ checks? on [\d,]+ deals?|no check)",
                             text), name
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["hygiene_score"]["basis"]["text"] == basis
    # per-rule rates over the records each rule applies to: CL01 over lost deals
    lost = int((closed & ~opp["is_won"].astype(bool)).sum())
    cov = run.result.coverage.set_index("rule_code")
    assert cov.loc["CL01", "applicable"] == lost == 488
    n_cl01 = int(cov.loc["CL01", "flagged"])
    assert n_cl01 == 63
    assert f"| {n_cl01} of {lost:,} lost deals (12.9 %) |" in texts["report.md"]
