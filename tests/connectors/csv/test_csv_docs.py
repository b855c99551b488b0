"""The documented [source] example stays valid and mentions every option."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from connectors.csv_options import CsvOptions

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "docs" / "config" / "source-csv.toml"


def test_example_validates() -> None:
    source = dict(tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))["source"])
    assert source.pop("type") == "csv"
    opts = CsvOptions.model_validate(source)
    assert opts.columns["source_stage"] == "Stage"


def test_example_mentions_every_option() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    keys = set(re.findall(r"^#?\s*\[?(?:source\.)?([a-z_]+)\]?\s*=?", text, flags=re.M))
    keys |= set(re.findall(r"^\[\[?source\.([a-z_]+)\]", text, flags=re.M))
    missing = sorted(set(CsvOptions.model_fields) - keys)
    assert missing == []
