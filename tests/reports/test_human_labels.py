"""Readers see human labels: no internal key names in any rendered text, and one number per
team wherever it appears (report, appendix, roll-ups), computed once."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import lxml.html
import pytest

from auditor.app.run import execute
from auditor.config import parse_config

# snake_case words, except a dotted config key named in parentheses, e.g. "(source.stage_map)",
# and file names ("process_findings.csv")
SNAKE = re.compile(r"(?<![.\w])[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b(?!\.\w)")  # not file.csv
BACKTICKS = re.compile(r"`[^`\n]*`")
MD_BAR = re.compile(r"^`[# ]+`$")  # the Markdown reports' text bars
KNOWN_LEAKS = ["still_open", "coverage_of_remaining", "closed_won", "closed_lost",
               "missing_share", "history_diff", "`source.stage_map`"]  # fmt: skip


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    root = tmp_path_factory.mktemp("labels")
    out = root / "out"
    cfg = parse_config(
        {
            "source": {"type": "demo"},
            "report": {"digests": True},
            "history": {"path": str(root / "h.sqlite")},
            "delivery": {
                "managers": ["boss@example.com"],
                "owner_digests": True,
                "team_rollups": True,
                "chat": {"kind": "slack", "url_env": "UNUSED_IN_DRY_RUN"},
            },
        },
        origin="<labels>",
    )
    execute(cfg, out_dir=out, as_of=date(2026, 11, 25), deliver=False)
    run = execute(cfg, out_dir=out, as_of=date(2026, 11, 26), dry_run=True)
    return out, run


def visible_texts(out: Path) -> dict[str, str]:
    texts: dict[str, str] = {}
    for path in sorted(out.rglob("*")):
        rel = str(path.relative_to(out))
        if path.suffix == ".html":
            doc = lxml.html.document_fromstring(path.read_text("utf-8"))
            data = doc.xpath("//script[@id='data']")
            if data:  # the explorer's rows: every string it can show
                d = json.loads(data[0].text)
                shown = [
                    *d["message"], *d["owner_values"], *d["team_values"], *d["stage_values"],
                    *(r["name"] for r in d["rules"]), *(r["fix"] for r in d["rules"]),
                ]  # fmt: skip
                texts[rel + "#data"] = "\n".join(str(s) for s in shown)
            for el in doc.xpath("//script|//style"):
                el.drop_tree()
            texts[rel] = doc.text_content()
        elif path.suffix in (".md", ".txt") or path.name.startswith("chat-"):
            texts[rel] = path.read_text("utf-8")
    return texts


def test_no_internal_key_names_in_any_rendered_text(demo_out) -> None:
    out, _ = demo_out
    texts = visible_texts(out)
    assert {"report.html", "appendix.html", "explorer.html#data", "assessment.md",
            "report.txt", "outbox/chat-slack.json"} <= set(texts)  # fmt: skip
    assert any(k.startswith("digests/owner-") for k in texts)
    assert any(k.startswith("digests/manager-") for k in texts)
    leaks = {}
    for name, text in texts.items():
        found = [m for m in SNAKE.findall(text)]
        found += [m for m in BACKTICKS.findall(text) if not MD_BAR.match(m)]
        found += [k for k in KNOWN_LEAKS if k in text]
        if found:
            leaks[name] = sorted(set(found))
    assert leaks == {}


def team_scores_in(text: str, teams: list[str]) -> dict[str, str]:
    out = {}
    for t in teams:
        m = re.search(re.escape(t) + r" Score: (\d+\.\d)", text)
        if m:
            out[t] = m.group(1)
    return out


def test_team_scores_equal_in_report_and_rollups(demo_out) -> None:
    out, run = demo_out
    by_team = run.metrics.to_dict()["hygiene_score"]["by_team"]
    teams = [t for t in by_team if not t.startswith("(")]

    def text(name: str) -> str:
        doc = lxml.html.document_fromstring((out / name).read_text("utf-8"))
        return " ".join(" ".join(doc.find("body").itertext()).split())

    report = team_scores_in(text("report.html"), teams)
    assert report == {t: f"{by_team[t]:.1f}" for t in teams}
    owners = run.snapshot.owners.set_index("id")
    rollups = sorted((out / "digests").glob("manager-*.html"))
    assert len(rollups) == 3
    for path in rollups:
        rtext = text(f"digests/{path.name}")
        m = re.search(r"(\d+\.\d) team hygiene score / 100", rtext)
        assert m, path.name
        mid = path.stem.removeprefix("manager-")
        team = owners.at[mid, "team"]
        assert m.group(1) == report[team], (path.name, team)  # exactly the report's number
        # and the metrics' own team entry, with its basis next to the number
        team_entry = run.metrics.to_dict()["hygiene_score"]["teams"][team]
        assert m.group(1) == f"{team_entry['score']:.1f}"
        assert team_entry["basis"] in rtext


def test_trend_is_labelled_by_as_of_date(tmp_path: Path) -> None:
    """Two runs on the same afternoon auditing two different days: the trend and the
    comparison name the audited days, not the run times."""
    cfg = parse_config(
        {"source": {"type": "demo", "size": 200}, "history": {"path": str(tmp_path / "h.db")}},
        origin="<trend>",
    )
    out = tmp_path / "out"
    execute(cfg, out_dir=out, as_of=date(2026, 10, 1), deliver=False)
    run = execute(cfg, out_dir=out, as_of=date(2026, 10, 8), deliver=False)
    assert [t.as_of for t in run.history.trend] == ["2026-10-01", "2026-10-08"]
    assert run.history.previous_run.as_of == "2026-10-01"
    appendix = " ".join(
        lxml.html.document_fromstring((out / "appendix.html").read_text("utf-8"))
        .find("body")
        .itertext()
    )
    assert "2026-10-01" in appendix and "2026-10-08" in appendix
    report = (out / "report.html").read_text("utf-8")
    assert "since 2026-10-01" in report
