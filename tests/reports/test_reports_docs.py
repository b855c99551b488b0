"""The report docs stay true: the TOML snippet parses, every schema field is documented."""

from __future__ import annotations

import tomllib
from pathlib import Path

from auditor.config import parse_config
from reports.machine import SCHEMA_VERSIONS, load_schema

ROOT = Path(__file__).resolve().parents[2]


def test_report_delivery_snippet_is_a_valid_config() -> None:
    data = tomllib.loads((ROOT / "docs/config/report-delivery.toml").read_text(encoding="utf-8"))
    cfg = parse_config({**data, "source": {"type": "demo"}}, origin="report-delivery.toml")
    assert cfg.delivery.smtp is not None and cfg.delivery.smtp.security == "starttls"
    assert cfg.delivery.managers == ["sales-leads@example.com", "Sales Ops <ops@example.com>"]
    assert cfg.report.formats == ["html", "md", "txt", "csv", "json"]


def test_every_schema_field_is_documented() -> None:
    doc = (ROOT / "docs/outputs.md").read_text(encoding="utf-8")
    for name, version in SCHEMA_VERSIONS.items():
        assert f"### {name}.json — version {version}" in doc
        schema = load_schema(name)
        assert schema["$id"] == f"urn:crm-hygiene-auditor:schema:{name}:{version}"
    for field in load_schema("violations")["items"]["properties"]:
        assert f"| `{field}` |" in doc, field
    for field in load_schema("run")["properties"]:
        assert f"`{field}`" in doc, field
