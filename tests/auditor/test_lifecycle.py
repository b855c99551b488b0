"""The deal lifecycle is derived once (auditor/lifecycle.py), with one precedence.

Expected values below are written by hand from the documented precedence: the CRM's flag when
known, else the mapped stage (closed_won / closed_lost / handoff closed; closed_won / handoff
won), else open.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pandas as pd

from auditor.snapshot import (
    Snapshot,
    SnapshotMeta,
    make_opportunities,
    make_owners,
    make_stage_history,
)
from connectors.salesforce.export import SalesforceExportConnector

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("auditor", "connectors", "rules", "reports")
LIFECYCLE_MODULE = ROOT / "auditor" / "lifecycle.py"
#: the demo organisation *is* a CRM: it invents its own closed / won flags, as Salesforce would
CRM_FAKES = {ROOT / "connectors" / "demo.py"}
OUTCOME_STAGES = {"closed_won", "closed_lost", "handoff"}
LIFECYCLE_NAMES = {"CLOSED_OUTCOMES", "WON_OUTCOMES", "CLOSED_STAGES", "WON_STAGES"}


def _derivations(path: Path) -> list[str]:
    """Places in ``path`` that decide open / closed / won / lost from the stage.

    A membership test (``isin`` / ``in``) of the stage against outcome stages, or any use of the
    outcome-stage constants, is a derivation.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in LIFECYCLE_NAMES:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} uses {node.id}")
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "isin":
            consts = {
                c.value for a in node.args for c in ast.walk(a)
                if isinstance(c, ast.Constant) and isinstance(c.value, str)
            }
            if consts & OUTCOME_STAGES:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} isin {sorted(consts)}")
    return found


def test_lifecycle_is_derived_in_exactly_one_module() -> None:
    offenders: list[str] = []
    deriving: set[Path] = set()
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            if path in CRM_FAKES:
                continue
            hits = _derivations(path)
            if hits:
                deriving.add(path)
                if path != LIFECYCLE_MODULE:
                    offenders += hits
    assert offenders == []
    assert deriving == {LIFECYCLE_MODULE}  # the check does find the one real derivation


def _snap(rows: list[dict]) -> Snapshot:
    opp = make_opportunities(pd.DataFrame.from_records(rows))
    meta = SnapshotMeta(source="t", source_type="test")
    return Snapshot(opp, make_stage_history(), make_owners(), meta).validate()


def test_precedence_flags_then_stage_then_open() -> None:
    snap = _snap([
        {"id": "flag-open", "stage": "closed_won", "is_closed": False},  # flag wins
        {"id": "flag-won", "stage": None, "is_closed": True, "is_won": True},
        {"id": "flag-lost", "stage": None, "is_closed": True, "is_won": False},
        {"id": "handoff", "stage": "handoff"},
        {"id": "lost", "stage": "closed_lost"},
        {"id": "open", "stage": "proposal"},
        {"id": "unknown", "stage": None},
    ])
    got = snap.opportunities.set_index("id")[["is_open", "is_closed", "is_won", "is_lost"]]
    assert got.astype(bool).to_dict(orient="index") == {
        "flag-open": {"is_open": True, "is_closed": False, "is_won": False, "is_lost": False},
        "flag-won": {"is_open": False, "is_closed": True, "is_won": True, "is_lost": False},
        "flag-lost": {"is_open": False, "is_closed": True, "is_won": False, "is_lost": True},
        "handoff": {"is_open": False, "is_closed": True, "is_won": True, "is_lost": False},
        "lost": {"is_open": False, "is_closed": True, "is_won": False, "is_lost": True},
        "open": {"is_open": True, "is_closed": False, "is_won": False, "is_lost": False},
        "unknown": {"is_open": True, "is_closed": False, "is_won": False, "is_lost": False},
    }
    assert not got.isna().any().any()
    # the one contradiction (closed_won stage, CRM says open) is reported once, with its count
    assert snap.meta.warnings == [
        "1 record whose CRM closed/won flags contradict the mapped stage (e.g. flag-open); "
        "the CRM's flags are used — check the stage map"
    ]
    snap.validate()  # validating again neither changes the columns nor repeats the warning
    assert len(snap.meta.warnings) == 1
    assert snap.opportunities.set_index("id")["is_open"].astype(bool).to_dict()["flag-open"]


# A Data Loader export of the Opportunity object (header and value style as Salesforce writes
# them): a custom "Onboarding" stage after the win, whose record has IsClosed / IsWon blank.
OPPORTUNITY_CSV = (
    '\ufeff"Id","Name","AccountId","OwnerId","StageName","IsClosed","IsWon","Amount",'
    '"CloseDate","CreatedDate","LastModifiedDate"\n'
    '"0068d00000HoF01AAA","Globex - Rollout","0018d0000002GlbAAA","0058d0000001AnnAAA",'
    '"Onboarding","","","50000","2024-05-31","2024-01-10 09:00:00","2024-06-02 10:00:00"\n'
    '"0068d00000HoF02AAA","Initech - Pilot","0018d0000002IniAAA","0058d0000001AnnAAA",'
    '"Negotiation/Review","0","0","20000","2024-07-31","2024-02-10 09:00:00",'
    '"2024-06-02 10:00:00"\n'
)


def test_salesforce_handoff_without_isclosed_is_closed_and_won(tmp_path: Path) -> None:
    (tmp_path / "Opportunity.csv").write_text(OPPORTUNITY_CSV, encoding="utf-8")
    opts = SalesforceExportConnector.Options.model_validate(
        {
            "path": str(tmp_path),
            "instance_url": "https://globex.my.salesforce.com",
            "name": "globex",
            "stage_map": {"Onboarding": "handoff"},
        }
    )
    snap = SalesforceExportConnector(opts).pull().validate()
    got = snap.opportunities.set_index("id")
    rollout = got.loc["0068d00000HoF01AAA"]
    assert rollout["stage"] == "handoff"
    assert (rollout["is_open"], rollout["is_closed"], rollout["is_won"], rollout["is_lost"]) == (
        False, True, True, False
    )
    pilot = got.loc["0068d00000HoF02AAA"]
    assert (pilot["is_open"], pilot["is_closed"], pilot["is_won"]) == (True, False, False)
    assert not any("contradict" in w for w in snap.meta.warnings)
