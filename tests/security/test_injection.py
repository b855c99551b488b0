"""Injection: CRM data cannot add markup to reports, headers to emails, or clauses to SOQL; the
config has no key that makes the tool write to the CRM."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditor.config import parse_config
from auditor.errors import ConfigError, ConnectorError
from connectors.hubspot.options import HubSpotOptions
from connectors.salesforce.connector import soql_datetime
from connectors.salesforce.transport import SalesforceOptions
from reports.delivery import Outgoing, build_message, format_subject, parse_address
from reports.render import TEMPLATES, write_reports
from tests.reports.reports_fixture import EVIL_NAME, make_run

PAYLOADS = [
    EVIL_NAME,
    '"><img src=x onerror=alert(1)>',
    "</td></tr></table><iframe src=//evil.example>",
    "{{ 7*7 }}{% raw %}",
    "[click](javascript:alert(1))",
    "Eve\r\nBcc: evil@example.com",
]


def test_reports_escape_crm_text_everywhere(tmp_path: Path) -> None:
    owners = {"O1": PAYLOADS[1], "O2": PAYLOADS[2], "M1": PAYLOADS[3], "O3": PAYLOADS[4]}
    run = make_run(tmp_path, owner_names=owners)
    written = write_reports(run, tmp_path / "out")
    html = [p for p in written if p.suffix == ".html"]
    md = [p for p in written if p.suffix == ".md"]
    assert len(html) >= 4 and md  # report, assessment, digests, team roll-ups
    for p in html:
        text = p.read_text()
        for raw in ("<script>alert", "<img src=x", "<iframe", "onerror=alert(1)>"):
            assert raw not in text, (p.name, raw)
        assert not re.search(r"""href=["']?\s*javascript:""", text, re.IGNORECASE), p.name
    for p in md:  # Markdown: markup characters arrive backslash-escaped
        text = p.read_text()
        assert not re.search(r"(?<!\\)<(script|img|iframe)|(?<!\\)\]\(javascript:", text), p.name
    report = (tmp_path / "out" / "report.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in report  # shown, escaped
    # the manager roll-up shows M1's name: the template syntax in it is text, never evaluated
    # (evaluated, "{{ 7*7 }}" would render as 49 and "{% raw %}" would vanish or fail)
    for name in ("manager-M1.html", "manager-M1.txt"):
        rollup = (tmp_path / "out" / "digests" / name).read_text()
        assert "{{ 7*7 }}{% raw %}" in rollup.replace("RAW", "raw"), name  # text: upper-case title
        assert not re.search(r"\b49\b", rollup), name


def test_templates_never_switch_escaping_off() -> None:
    for p in sorted(TEMPLATES.glob("*.j2")):
        text = p.read_text()
        assert not re.search(r"\|\s*safe\b", text) and "autoescape false" not in text, p.name
        assert "Markup(" not in text, p.name


@pytest.mark.parametrize("payload", [
    "Eve\r\nBcc: evil@example.com", "Eve\nBcc: evil@example.com", "Eve\rBcc: evil@example.com",
    "Eve\u2028Bcc: evil@example.com", "Eve\x00\nX-Injected: 1", "=?utf-8?q?a=0D=0ABcc:_x@y?=",
])
def test_no_header_injection_from_names_or_subjects(payload: str) -> None:
    subject = format_subject("{owner}: {findings}", {"owner": payload, "findings": "2 findings"})
    out = Outgoing("owner", "O1", "alice@example.com", payload, subject, "text", "<p>x</p>")
    raw = build_message(out, parse_address("CRM audit <audit@example.com>")).as_bytes()
    header = raw.split(b"\r\n\r\n", 1)[0]
    names = [line.split(b":", 1)[0] for line in header.split(b"\r\n")
             if line and not line[:1].isspace()]
    assert b"Bcc" not in names and b"X-Injected" not in names
    assert names.count(b"To") == 1 and names.count(b"Subject") == 1


@pytest.mark.parametrize("address", ["a@example.com\r\nBcc: b@example.com",
                                     "a@example.com\nBcc: b@example.com",
                                     "a@example.com, b@example.com\x00"])
def test_addresses_with_line_breaks_are_refused(address: str) -> None:
    with pytest.raises(ValueError):
        parse_address(address)


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 30)),
       st.one_of(st.none(), st.integers(-14 * 60, 14 * 60).map(
           lambda m: timezone(timedelta(minutes=m)))))
def test_soql_datetime_literal_is_always_plain(when: datetime, tz) -> None:
    """The only value put into SOQL (``since``) is formatted, never quoted text."""
    text = soql_datetime(when if tz is None else when.replace(tzinfo=tz))
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", text)


def test_incremental_soql_holds_only_the_formatted_since(org, make_sf) -> None:
    since = datetime(2024, 3, 31, 22, 30, tzinfo=timezone(timedelta(hours=-4)))
    make_sf().pull(since=since)
    opp = next(q for q in org.soql if "FROM Opportunity " in q)
    assert opp.endswith(" FROM Opportunity WHERE (SystemModstamp > 2024-04-01T02:30:00Z)")
    hist = next(q for q in org.soql if "FROM OpportunityHistory" in q)
    assert hist.endswith(" WHERE (SystemModstamp > 2024-04-01T02:30:00Z)")


@pytest.mark.parametrize("field", ["Name, (SELECT Id FROM Contacts)", "Id FROM User --",
                                   "Budget__c' OR '1'='1", "Loss Reason"])
def test_configured_field_names_are_refused_unless_plain(field: str) -> None:
    with pytest.raises(ValueError, match="is not a Salesforce API field name"):
        SalesforceOptions.model_validate({"auth": "session", "session_id_env": "S",
                                          "instance_url": "https://x.my.salesforce.com",
                                          "loss_reason_field": field})


def test_bulk_job_id_from_the_server_must_be_an_id(org, rsps, make_sf) -> None:
    org.fail("job:Opportunity", (200, {"Content-Type": "application/json"},
                                 json.dumps({"id": "../../sobjects/Opportunity/006x"})))
    with pytest.raises(ConnectorError, match=r"returned '\.\./\.\./sobjects/Opportunity/006x', "
                                             r"which is not a Salesforce id"):
        make_sf(bulk="always").pull()


@pytest.mark.parametrize("key,value", [("operation", "delete"), ("write_back", True),
                                       ("method", "PATCH"), ("bulk_operation", "upsert")])
@pytest.mark.parametrize("source", [
    {"type": "salesforce", "auth": "session", "session_id_env": "S",
     "instance_url": "https://x.my.salesforce.com"},
    {"type": "hubspot"}, {"type": "csv", "opportunities": "o.csv"},
])
def test_no_config_key_can_ask_for_a_write(source: dict, key: str, value: object) -> None:
    from connectors.registry import build_connector

    cfg = parse_config({"source": {**source, key: value}})
    with pytest.raises(ConfigError, match=key):
        build_connector(cfg, env={"S": "session-id-value"})


def test_option_models_have_no_write_switch() -> None:
    words = re.compile(r"write|update|upsert|delete|insert|operation|method|patch")
    for model in (SalesforceOptions, HubSpotOptions):
        fields = [f for f in model.model_fields if f != "include_deleted"]
        assert [f for f in fields if words.search(f)] == []
    # include_deleted only *reads* the recycle bin (queryAll); it is the one "delete" word
    assert "include_deleted" in SalesforceOptions.model_fields


def test_a_filter_cannot_turn_a_query_into_a_write(org, rsps, make_sf) -> None:
    evil = "Id != null) OR (Name LIKE '%'; DELETE FROM Opportunity --"
    with pytest.raises(ConnectorError):  # Salesforce would refuse the malformed SOQL ...
        org.fail("Opportunity", (400, {"Content-Type": "application/json"}, json.dumps(
            [{"errorCode": "MALFORMED_QUERY", "message": "unexpected token: DELETE"}])))
        make_sf(opportunity_filter=evil).pull()
    # ... and it was only ever a read: SOQL has no write statements and every request was GET
    assert {c.request.method for c in rsps.calls} == {"GET"}
    assert any(evil in q for q in org.soql)


def test_bulk_rendered_digest_escapes_hostile_owner_and_deal_names(tmp_path: Path) -> None:
    """Digests are rendered in bulk (reports/digests.py builds every owner's rows at once and
    hands them to the template already escaped): a hostile owner name and deal name arrive as
    text in the HTML digest and on one line in the text digest."""
    owner = '</h1><img src=x onerror=alert(1)>\r\nBcc: evil@example.com'
    deal = '<script>alert("deal")</script>\n   <a href="javascript:alert(2)">x</a>'
    run = make_run(tmp_path, owner_names={"O1": owner})
    v = run.result.violations
    v["opportunity_name"] = v["opportunity_name"].astype(object).where(v["owner_id"] != "O1", deal)
    write_reports(run, tmp_path / "out")
    html = (tmp_path / "out" / "digests" / "owner-O1.html").read_text()
    text = (tmp_path / "out" / "digests" / "owner-O1.txt").read_text()
    for raw in ("<img src=x", "<script>alert", '<a href="javascript', "</h1><img"):
        assert raw not in html, raw
    assert "&lt;/h1&gt;&lt;img src=x onerror=alert(1)&gt;" in html  # shown, escaped
    assert "&lt;script&gt;alert(&#34;deal&#34;)&lt;/script&gt;" in html
    assert not re.search(r"""href=["']?\s*javascript:""", html, re.IGNORECASE)
    # text: names on one line (no header-like line can start inside a digest)
    assert not any(line.startswith("Bcc:") for line in text.splitlines())
    assert '<script>alert("deal")</script> <a href="javascript:alert(2)">x</a>' in text
