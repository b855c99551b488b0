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
