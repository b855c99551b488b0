"""Configured field names reach SOQL only when they are plain API names."""

from __future__ import annotations

import pytest

from auditor.config import parse_config
from auditor.errors import ConfigError
from connectors.registry import build_connector

BASE = {"type": "salesforce_export", "path": "export"}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("loss_reason_field", "Name FROM User --"),
        ("team_field", "Id, (SELECT Id FROM Contacts)"),
        ("handoff_field", "Handoff__c'"),
        ("custom_fields", {"budget": "Budget__c, Password__c"}),
    ],
)
def test_field_names_that_are_not_identifiers_are_refused(key: str, value: object) -> None:
    cfg = parse_config({"source": {**BASE, key: value}}, origin="audit.toml")
    with pytest.raises(ConfigError) as e:
        build_connector(cfg)
    msg = str(e.value)
    assert msg.startswith(f"audit.toml: key `source.{key}")
    assert "is not a Salesforce API field name" in msg


def test_relationship_and_custom_names_are_accepted() -> None:
    cfg = parse_config(
        {"source": {**BASE, "team_field": "UserRole.Name", "loss_reason_field": "Loss_Reason__c",
                    "custom_fields": {"budget": "Budget__c"}}},
        origin="audit.toml",
    )
    conn = build_connector(cfg)
    assert conn.options.team_field == "UserRole.Name"
