"""Config loading: every mistake names the file, the key path and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.config import default_config, load_config
from auditor.engine import select_rules
from auditor.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "audit.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults_audit_the_demo() -> None:
    cfg = default_config()
    assert cfg.source == {"type": "demo"}
    assert cfg.process.stage_limits["proposal"] == 30
    assert cfg.report.formats == ["html", "md", "txt", "csv", "json"]


def test_unknown_key_names_file_and_key_path(tmp_path: Path) -> None:
    p = write(tmp_path, '[source]\ntype = "demo"\n[report]\nout_dri = "x"\n')
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(e.value) == f"{p}: unknown key `report.out_dri` (did you mean 'out_dir'?)"


def test_unknown_top_level_section(tmp_path: Path) -> None:
    p = write(tmp_path, '[source]\ntype = "demo"\n[reports]\nx = 1\n')
    with pytest.raises(ConfigError, match=r"unknown key `reports`"):
        load_config(p)


def test_wrong_type_names_key_and_expectation(tmp_path: Path) -> None:
    p = write(tmp_path, '[report]\nmax_deals = "many"\n')
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}: key `report.max_deals`: ")
    assert "integer" in msg and "'many'" in msg


def test_bad_stage_name_lists_allowed_stages(tmp_path: Path) -> None:
    p = write(tmp_path, "[process.stage_limits]\nproposl = 10\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert "process.stage_limits.proposl" in str(e.value)
    assert "'proposal'" in str(e.value)


def test_bad_time_zone(tmp_path: Path) -> None:
    p = write(tmp_path, '[audit]\ntimezone = "Mars/Olympus"\n')
    with pytest.raises(ConfigError, match=r"audit.timezone.*unknown time zone 'Mars/Olympus'"):
        load_config(p)


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    p = write(tmp_path, "[source\n")
    with pytest.raises(ConfigError, match=r"invalid TOML"):
        load_config(p)
    with pytest.raises(ConfigError, match=r"does not exist"):
        load_config(tmp_path / "nope.toml")


def test_unknown_rule_parameter_is_named(tmp_path: Path) -> None:
    p = write(tmp_path, "[rules.ST04]\nmax_dayz = 3\n")
    with pytest.raises(ConfigError) as e:
        select_rules(load_config(p))
    assert str(e.value) == (
        f"{p}: unknown key `rules.ST04.max_dayz`: rule ST04 (stale-proposal) has parameters: "
        "max_days, idle_days (did you mean 'max_days'?)"
    )


def test_rule_parameter_type_checked(tmp_path: Path) -> None:
    p = write(tmp_path, '[rules.stale-proposal]\nmax_days = "ten"\n')
    with pytest.raises(ConfigError, match=r"rules.stale-proposal.max_days`: expected int"):
        select_rules(load_config(p))


def test_rule_params_by_name_and_severity_override(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        '[rules]\nselect = ["ST04", "CL01"]\n[rules.severity]\nCL01 = "error"\n'
        "[rules.stale-proposal]\nmax_days = 10\n",
    )
    rules = {r.code: r for r in select_rules(load_config(p))}
    assert set(rules) == {"ST04", "CL01"}
    assert rules["ST04"].p == {"max_days": 10, "idle_days": 14}
    assert rules["CL01"].severity == "error"


def test_select_token_matching_nothing_is_an_error(tmp_path: Path) -> None:
    p = write(tmp_path, '[rules]\nignore = ["ZZ99"]\n')
    with pytest.raises(ConfigError, match=r"`rules.ignore`: 'ZZ99' matches no rule"):
        select_rules(load_config(p))


def test_unknown_source_type(tmp_path: Path) -> None:
    from connectors.registry import build_connector

    p = write(tmp_path, '[source]\ntype = "pipedrive"\n')
    with pytest.raises(ConfigError, match=r"`source.type`: unknown source type 'pipedrive'"):
        build_connector(load_config(p))


def test_unknown_source_option(tmp_path: Path) -> None:
    from connectors.registry import build_connector

    p = write(tmp_path, '[source]\ntype = "demo"\nsise = 10\n')
    with pytest.raises(ConfigError) as e:
        build_connector(load_config(p))
    assert str(e.value) == f"{p}: unknown key `source.sise` (did you mean 'size'?)"


def test_relative_paths_resolve_against_config_folder(tmp_path: Path) -> None:
    p = write(tmp_path, '[report]\nout_dir = "out"\n')
    cfg = load_config(p)
    assert cfg.resolve(cfg.report.out_dir) == tmp_path / "out"


def test_config_example_is_valid() -> None:
    from connectors.registry import build_connector

    path = Path(__file__).resolve().parents[2] / "config.example.toml"
    cfg = load_config(path)
    select_rules(cfg)
    build_connector(cfg)
