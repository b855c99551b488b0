"""Issue 13, Salesforce: field-level security, deletions and reconciliation, against the fake
org that parses every SOQL query and answers hidden fields with the real INVALID_FIELD body."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlparse

import pytest

from auditor.app.run import execute
from auditor.config import parse_config
from auditor.errors import ConnectorError
from connectors.salesforce.streams import Readable
from connectors.streams import PriorPull, StreamState
from tests.connectors.salesforce.fake_org import INSTANCE_URL, SESSION_ENV

AMOUNT_RULES = {"CL02", "DQ01"}  # require amount (rules/closing.py, rules/data_quality.py)


def _is_opp(soql: str) -> bool:
    return re.search(r" FROM Opportunity\b", soql) is not None


def _opp_soql(org) -> str:  # noqa: ANN001
    return next(q for q in org.soql if _is_opp(q) and "SELECT Id FROM" not in q)


def test_fake_org_answers_a_hidden_field_with_salesforces_invalid_field(org, rsps) -> None:
    """The fake checks the SOQL: a query naming a hidden field fails like Salesforce fails."""
    import requests

    org.hidden |= {"Amount"}
    url = f"{INSTANCE_URL}/services/data/v59.0/query/"
    resp = requests.get(url, params={"q": "SELECT Id, Amount FROM Opportunity"})
    assert resp.status_code == 400
    body = resp.json()
    assert isinstance(body, list) and body[0]["errorCode"] == "INVALID_FIELD"
    assert "No such column 'Amount' on entity 'Opportunity'." in body[0]["message"]
    # an unknown field is refused the same way; a readable one is served
    resp = requests.get(url, params={"q": "SELECT Id, Amount__x FROM Opportunity"})
    assert "No such column 'Amount__x'" in resp.json()[0]["message"]
    ok = requests.get(url, params={"q": "SELECT Id, StageName FROM Opportunity "
                                        "WHERE Id = '0068d00000OpA04AAA'"})
    assert [r["Id"] for r in ok.json()["records"]] == ["0068d00000OpA04AAA"]


def test_without_describe_a_hidden_field_would_break_the_pull(org, make_connector,
                                                              monkeypatch) -> None:
    """What issue 13 found: naming a hidden field fails the whole pull (so the describe matters)."""
    org.hidden |= {"Amount"}
    monkeypatch.setattr(Readable, "can_read", lambda self, name: True)
    with pytest.raises(ConnectorError, match=r"(?s)INVALID_FIELD: .*No such column 'Amount'"):
        make_connector().pull()


def test_unreadable_amount_and_next_step_are_left_out_and_named(org, make_connector) -> None:
    org.hidden |= {"Amount", "NextStep"}
    snap = make_connector().pull()
    soql = _opp_soql(org)
    assert "Amount" not in soql.split(" FROM ")[0] and "NextStep" not in soql
    assert org.describes == ["Opportunity"]  # once per run
    assert snap.meta.unreadable_fields == {"amount": "Amount", "next_step": "NextStep"}
    assert {"amount", "next_step"}.isdisjoint(snap.meta.provided_fields)
    assert snap.opportunities["amount"].isna().all()
    assert len(snap.opportunities) == 7
    assert [w for w in snap.meta.warnings if "not readable" in w] == [
        "field Amount is not readable by the integration user: amount is not audited; grant the "
        "integration user Read access to Opportunity.Amount (Setup → Object Manager → Opportunity "
        "→ Fields & Relationships → Amount → Set Field-Level Security, or a permission set with "
        "Read on the field) (if the field does not exist, check its name in the config)",
        "field NextStep is not readable by the integration user: next_step is not audited; grant "
        "the integration user Read access to Opportunity.NextStep (Setup → Object Manager → "
        "Opportunity → Fields & Relationships → NextStep → Set Field-Level Security, or a "
        "permission set with Read on the field) (if the field does not exist, check its name in "
        "the config)",
    ]


def test_a_hidden_user_team_field_costs_the_team_column_not_the_pull(org, make_connector) -> None:
    org.hidden |= {"User.Department"}
    snap = make_connector().pull()  # team_field = "Department"
    user_queries = [q for q in org.soql if " FROM User" in q]
    assert [("Department" in q) for q in user_queries] == [True, False]
    assert snap.owners["team"].isna().all() and len(snap.owners) == 3
    assert any(w.startswith("field User.Department is not readable by the integration user")
               for w in snap.meta.warnings)


def test_unreadable_required_field_is_a_clear_error(org, make_connector) -> None:
    org.hidden |= {"StageName"}
    with pytest.raises(ConnectorError) as err:
        make_connector().pull()
    assert str(err.value).startswith(
        "Salesforce: the integration user cannot read the required field "
        "Opportunity.StageName; grant the integration user Read access to Opportunity.StageName")
    assert not any(_is_opp(q) for q in org.soql)  # refused before pulling


def _config(tmp_path, **source):  # noqa: ANN001, ANN003, ANN202
    return parse_config(
        {
            "audit": {"as_of": "2024-04-15"},
            "source": {"type": "salesforce", "auth": "session", "session_id_env": "SF_SESSION",
                       "instance_url": INSTANCE_URL, "name": "acme", "bulk": "never",
                       "next_step_due_field": "Next_Step_Date__c", **source},
            "report": {"formats": ["md", "json"]},
        },
        origin=str(tmp_path / "c.toml"), base_dir=tmp_path,
    )


def test_audit_by_a_user_who_cannot_read_amount_and_next_step(org, tmp_path,
                                                             monkeypatch) -> None:
    """Acceptance: the pull succeeds; the report names the rules that could not run and why."""
    monkeypatch.setenv("SF_SESSION", SESSION_ENV["SF_SESSION"])
    org.hidden |= {"Amount", "NextStep"}
    run = execute(_config(tmp_path), out_dir=tmp_path / "out")
    cov = run.result.coverage.set_index("rule_code")
    blocked = {code: reasons for code, reasons in cov["reasons"].items()
               if any("is not readable" in r for r in reasons)}
    # counted over the deals each rule applies to (by hand from the fixture): CL02 the won one
    # (OpA02); DQ01 the open ones at proposal or later (OpA01 negotiation, OpA04 proposal);
    # FU01 the open ones past first contact (OpA01, OpA04, OpA07 solution; OpA05's stage is
    # unmapped, OpA06 is at contact)
    assert blocked == {
        "CL02": {"field Amount is not readable by the integration user": 1},
        "DQ01": {"field Amount is not readable by the integration user": 2},
        "FU01": {"field NextStep is not readable by the integration user": 3},
    }
    assert set(run.result.violations["rule_code"]).isdisjoint({"CL02", "DQ01", "FU01"})
    report = (tmp_path / "out" / "report.md").read_text()
    for code in ("CL02", "DQ01", "FU01"):
        line = next(x for x in report.splitlines() if x.startswith(f"- {code} "))
        assert "is not readable by the integration user" in line, line


def _prior(ids: set[str], *, age_days: float, reconciled_days: float | None) -> PriorPull:
    now = datetime.now(UTC)
    pulled = now - timedelta(days=age_days)
    rec = None if reconciled_days is None else now - timedelta(days=reconciled_days)
    return PriorPull(pulled, frozenset(ids), pulled, StreamState(pulled, rec))


IDS = {f"0068d00000OpA0{i}AAA" for i in range(1, 8)}
GHOST = "0068d00000OpZZZAAA"  # stored, gone from the org without trace in the change feeds


@pytest.mark.parametrize("age,reconciled,due", [
    (1, 1, False),      # yesterday's snapshot, reconciled yesterday
    (1, 6.9, False),    # still within the week
    (1, 7, True),       # a week since the last reconciliation
    (1, None, True),    # never reconciled
    (16, 2, True),      # the stored snapshot is older than the Recycle Bin's 15 days
])
def test_reconciliation_schedule(org, make_connector, age, reconciled, due) -> None:
    conn = make_connector()
    conn.prior = _prior(IDS | {GHOST}, age_days=age, reconciled_days=reconciled)
    snap = conn.pull(since=conn.prior.since)
    ids_only = [q for q in org.soql if q.startswith("SELECT Id FROM Opportunity")]
    assert ids_only == (["SELECT Id FROM Opportunity"] if due else [])
    assert snap.meta.deleted_ids == ([GHOST] if due else [])
    state = StreamState.from_meta(snap.meta.stream_state)
    assert (state.reconciled_at > conn.prior.since) is due or reconciled is None


def test_deleted_and_purged_records_are_found_on_an_incremental_pull(org, make_connector) -> None:
    now = datetime.now(UTC)
    conn = make_connector()
    conn.prior = _prior(IDS, age_days=1, reconciled_days=1)
    org.delete("0068d00000OpA02AAA", now - timedelta(hours=2))  # in the Recycle Bin
    org.delete("0068d00000OpA03AAA", now - timedelta(hours=3))
    org.purge("0068d00000OpA03AAA")  # emptied from it: only the deleted resource knows
    snap = conn.pull(since=conn.prior.since)
    assert snap.meta.deleted_ids == ["0068d00000OpA02AAA", "0068d00000OpA03AAA"]
    assert snap.meta.extra["deleted_by"] == {"feed": 1, "removed": 2}
    q = org.deleted_calls[0]
    assert datetime.fromisoformat(q["start"]) == conn.prior.since.replace(microsecond=0)
    assert "/queryAll/" in next(u for u in (urlparse(c.request.url) for c in org.rsps.calls)
                                if _is_opp(parse_qs(u.query).get("q", [""])[0])).path
    assert json.dumps(snap.meta.stream_state)  # stored with the snapshot
