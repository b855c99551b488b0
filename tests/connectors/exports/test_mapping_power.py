"""Mapping keys for other CRMs' exports, and name resolution warnings (issue #15)."""

from __future__ import annotations

import shutil
from pathlib import Path

from connectors.csv_options import CsvOptions
from connectors.csv_source import CsvConnector
from connectors.salesforce.export import SalesforceExportConnector

DATA = Path(__file__).parent / "data"


def pull(tmp_path: Path, **options: object):
    opts = CsvOptions.model_validate({"stage_map_default": "salesforce", **options})
    return CsvConnector(opts, base_dir=tmp_path).pull()


def test_generated_ids_and_owner_by_email(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text(
        "Topic,Stage,Owner Email\nAlpha,Prospecting,ANN@x.example\nBeta,Prospecting,bo@x.example\n"
        "Gamma,Prospecting,zed@x.example\n")
    (tmp_path / "u.csv").write_text(
        "id,name,email\nU1,Ann Lee,ann@x.example\nU2,Bo Kim,bo@x.example\n")
    snap = pull(tmp_path, opportunities="d.csv", owners="u.csv", id_template="{_row}-{Topic}",
                owner_match="email", columns={"stage": "Stage", "owner_id": "Owner Email"})
    opp = snap.opportunities
    assert opp["id"].tolist() == ["2-Alpha", "3-Beta", "4-Gamma"]
    assert opp["owner_id"].tolist() == ["U1", "U2", "zed@x.example"]
    assert snap.meta.warnings == [
        "u.csv: 1 opportunities have an owner that is not in this file: 'zed@x.example' (1)"]


def test_status_column_and_value_maps(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text(
        "id,Phase,Status,Closed,Forecast\nA,Develop,Open,no,Committed\nB,Develop,Won,yes,Won\n"
        "C,Propose,Lost,yes,Lost\n")
    snap = pull(tmp_path, opportunities="d.csv", stage_map={"Develop": "discovery",
                                                             "Propose": "proposal"},
                status_column="Status", status_map={"won": "closed_won", "LOST": "closed_lost"},
                value_maps={"is_closed": {"NO": "false", "yes": "true"}},
                columns={"id": "id", "stage": "Phase", "is_closed": "Closed",
                         "forecast_category": "Forecast"})
    opp = snap.opportunities.set_index("id")
    assert opp["stage"].astype(str).to_dict() == {"A": "discovery", "B": "closed_won",
                                                  "C": "closed_lost"}
    assert opp["is_won"].tolist() == [False, True, False]
    assert opp["is_closed"].tolist() == [False, True, True]
    assert opp["forecast_category"].tolist() == ["commit", "closed", "omitted"]
    assert snap.meta.unmapped_stages == {}


def test_salesforce_export_without_user_or_account_files_warns(tmp_path: Path) -> None:
    shutil.copy(DATA / "sf_weekly" / "Opportunity.csv", tmp_path)
    opts = SalesforceExportConnector.Options.model_validate({"path": str(tmp_path)})
    snap = SalesforceExportConnector(opts).pull()
    assert ("no User.csv and no Owner.Name column: 3 owners are shown by their ids; add "
            "User.csv (Id, Name or FirstName + LastName) to the export") in snap.meta.warnings
    assert ("no Account.csv and no Account.Name column: the account names of 4 opportunities "
            "are unknown (reports show account ids; duplicate checks by account name cannot "
            "run); add Account.csv (Id, Name) to the export") in snap.meta.warnings
