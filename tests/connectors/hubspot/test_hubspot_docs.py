"""The [source] example documents every option and validates."""

from __future__ import annotations

import tomllib
from pathlib import Path

from connectors.hubspot.options import HubSpotExportOptions, HubSpotOptions

EXAMPLE = Path(__file__).parents[3] / "docs" / "config" / "source-hubspot.toml"


def test_example_validates_with_defaults() -> None:
    source = dict(tomllib.loads(EXAMPLE.read_text())["source"])
    assert source.pop("type") == "hubspot"
    opts = HubSpotOptions.model_validate(source)
    assert opts == HubSpotOptions()  # the uncommented values are the defaults


def test_example_mentions_every_option() -> None:
    text = EXAMPLE.read_text()
    for model in (HubSpotOptions, HubSpotExportOptions):
        missing = [k for k in model.model_fields if k not in text]
        assert missing == [], f"{model.__name__}: {missing}"


def test_config_builds_the_connector_and_rejects_unknown_keys() -> None:
    import pytest

    from auditor.config import parse_config
    from auditor.errors import ConfigError
    from connectors.hubspot.connector import HubSpotConnector
    from connectors.registry import build_connector

    cfg = parse_config({"source": {"type": "hubspot", "portal_id": 7,
                                   "stage_map": {"1234": "discovery"}}}, origin="a.toml")
    conn = build_connector(cfg, env={})
    assert isinstance(conn, HubSpotConnector)
    assert conn.options.portal_id == 7 and conn.options.stage_map == {"1234": "discovery"}
    bad = parse_config({"source": {"type": "hubspot", "acess_token_env": "X"}}, origin="a.toml")
    with pytest.raises(ConfigError, match="a.toml: unknown key `source.acess_token_env`"):
        build_connector(bad, env={})
    tz = parse_config({"source": {"type": "hubspot", "portal_timezone": "Mars/Base"}},
                      origin="a.toml")
    with pytest.raises(ConfigError, match="source.portal_timezone.*unknown time zone 'Mars/Base'"):
        build_connector(tz, env={})
