"""Third-party rules register through the entry-point group and run like built-ins."""

from __future__ import annotations

import json
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.app.cli import main
from auditor.config import parse_config
from auditor.engine import run_audit
from auditor.errors import AuditorError
from auditor.plugins import RULES_GROUP as ENTRY_POINT_GROUP
from auditor.plugins import rule_classes as all_rules
from rules.catalogue import ALL_RULES
from rules.testing import build_snapshot

PLUGIN_MODULE = '''
"""A tiny third-party rule distribution."""

import pandas as pd

from auditor.rule import Param, Rule, is_open


class BigDeal(Rule):
    """Open deal above the amount a manager must review.

    Flags open deals whose amount is strictly above ``max_amount``.

    Why it matters: big deals need a second pair of eyes before they enter the forecast.

    How to fix: ask your manager to review the deal and note the review in the CRM.
    """

    code = "XP01"
    name = "big-deal"
    severity = "info"
    requires = ("amount",)
    params = {"max_amount": Param(float, 100000.0, "largest amount without review")}

    def evaluate(self, snap, ctx) -> pd.Series:
        big = (snap.opportunities["amount"] > self.p["max_amount"]).fillna(False)
        return is_open(snap) & big.astype(bool)
'''


def _install(site: Path, module: str, body: str, entry: str) -> None:
    """Lay out an installed distribution (module + dist-info with entry_points.txt)."""
    (site / f"{module}.py").write_text(body, encoding="utf-8")
    info = site / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {module.replace('_', '-')}\nVersion: 0.1\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{entry}\n", encoding="utf-8")


@pytest.fixture
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    _install(
        tmp_path, "xplugin_rules", textwrap.dedent(PLUGIN_MODULE), "big = xplugin_rules:BigDeal"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_entry_point_is_discovered_by_importlib_metadata(plugin_site: Path) -> None:
    eps = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == "big"]
    assert [ep.value for ep in eps] == ["xplugin_rules:BigDeal"]
    rules = all_rules()
    assert [r.code for r in rules[: len(ALL_RULES)]] == [r.code for r in ALL_RULES]
    assert rules[-1].code == "XP01" and rules[-1].group() == "other"


def test_plugin_rule_runs_with_config(plugin_site: Path) -> None:
    snap = build_snapshot(
        {
            "opportunities": [
                {"id": "A", "stage": "proposal", "amount": 900},
                {"id": "B", "stage": "proposal", "amount": 100},
                {"id": "W", "stage": "closed_won", "amount": 5000},
            ]
        }
    )
    cfg = parse_config(
        {"source": {"type": "demo"}, "rules": {"select": ["XP"], "big-deal": {"max_amount": 500}}}
    )
    result = run_audit(snap, cfg, as_of="2026-03-31")
    assert list(result.violations["opportunity_id"]) == ["A"]
    assert list(result.violations["message"]) == [
        "Open deal above the amount a manager must review."
    ]
    assert result.coverage.iloc[0]["rule_code"] == "XP01"


def test_plugin_rule_is_documented_by_the_cli(plugin_site: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(main, ["rules", "XP01"])
    assert out.exit_code == 0, out.output
    assert "XP01  big-deal  [info, other]" in out.output
    assert "max_amount (float, default 100000.0): largest amount without review" in out.output
    listing = json.loads(runner.invoke(main, ["rules", "--json"]).output)
    assert [d["code"] for d in listing][-1] == "XP01"


def test_broken_plugin_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _install(tmp_path, "xbroken_rules", "X = 1\n", "broken = xbroken_rules:Missing")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(
        AuditorError, match=r"rule plugin 'broken' \(xbroken_rules:Missing\) failed"
    ):
        all_rules()


def test_plugin_reusing_a_builtin_code_is_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = textwrap.dedent(PLUGIN_MODULE).replace('code = "XP01"', 'code = "ST03"')
    _install(tmp_path, "xclash_rules", body, "clash = xclash_rules:BigDeal")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(AuditorError, match=r"rule code ST03 is registered twice"):
        all_rules()


def test_plugin_with_bad_metadata_is_refused_at_import_naming_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = textwrap.dedent(PLUGIN_MODULE).replace('severity = "info"', 'severity = "critical"')
    _install(tmp_path, "xbad_rules", body, "bad = xbad_rules:BigDeal")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(AuditorError) as err:
        all_rules()
    assert str(err.value) == (
        "rule plugin 'bad' (xbad_rules:BigDeal) failed to load: rule class xbad_rules.BigDeal: "
        "`severity` must be one of error, warning, info, got 'critical'"
    )


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('code = "XP01"', 'code = "xp-1"',
         "`code` must be two capital letters and two digits (like XP01), got 'xp-1'"),
        ('name = "big-deal"', 'name = "Big Deal"',
         "`name` must be lower-case words joined by '-' (like big-deal), got 'Big Deal'"),
        ('requires = ("amount",)', 'requires = "amount"',
         "`requires` must be a tuple of column names, got 'amount'"),
        ('Param(float, 100000.0, "largest amount without review")',
         'Param(float, "lots", "largest amount without review")',
         "`params.max_amount` has a default that breaks its own type: default of max_amount: "
         "expected float, got str 'lots'"),
        ('Param(float, 100000.0, "largest amount without review")', 'Param(float, 1.0, "")',
         "`params.max_amount` needs a help text"),
        ("    How to fix: ask your manager to review the deal and note the review in the CRM.\n",
         "", "`__doc__` needs a 'How to fix:' part (see auditor/rule.py)"),
        ('    params = {', '    example = {"as_of": "30/06/2026", "record": {}, "message": "x"}\n'
         '    params = {', "`example.as_of` must be YYYY-MM-DD, got '30/06/2026'"),
    ],
)
def test_bad_rule_metadata_is_refused_when_the_class_is_defined(
    old: str, new: str, message: str
) -> None:
    from auditor.rule import RuleDefinitionError

    body = textwrap.dedent(PLUGIN_MODULE)
    assert old in body
    namespace: dict = {"__name__": "xdefined"}
    with pytest.raises(RuleDefinitionError) as err:
        exec(compile(body.replace(old, new), "xdefined.py", "exec"), namespace)  # noqa: S102
    assert str(err.value) == f"rule class xdefined.BigDeal: {message}"


def test_good_plugin_module_defines_without_error() -> None:
    namespace: dict = {"__name__": "xgood"}
    exec(compile(textwrap.dedent(PLUGIN_MODULE), "xgood.py", "exec"), namespace)  # noqa: S102
    assert namespace["BigDeal"].code == "XP01"
