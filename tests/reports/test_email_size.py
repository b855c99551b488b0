"""The e-mails stay under Gmail's clip (about 102 KB of HTML) at a million opportunities.

The AuditRun is built cheaply (tests/reports/big_run.py: 1M opportunities, ~1.3M findings,
20,000 owners, 400 managers, 150 teams, 5 currencies) — the size caps, not the rules, are
under test. Sizes are measured on the built MIME message, as delivery records them in run.json.
The test command runs the same organisation with 100,000 opportunities (every owner, manager,
team, currency and warning, and still far more findings than the e-mails may list); the
million is a scale run, marked ``slow`` (the long command in README / .ci/run).
"""

from __future__ import annotations

import pytest

from auditor.config import parse_config
from auditor.results import AuditRun
from reports.context import (
    manager_groups,
    rows_by_owner,
    team_context,
    team_group,
)
from reports.delivery import Outgoing, build_message, measure, parse_address, plan
from reports.digests import digest_context
from reports.render import render, run_environment
from tests.reports.big_run import N, big_run

HTML_LIMIT = 100_000
MESSAGE_LIMIT = 250_000


@pytest.fixture(
    scope="module", params=[100_000, pytest.param(N, marks=pytest.mark.slow)], ids=str
)
def big(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AuditRun:
    return big_run(tmp_path_factory.mktemp("big"), request.param)


def sizes_of(out: Outgoing) -> dict:
    msg = build_message(out, parse_address("audit@example.com"))
    return measure(out, msg)


def test_manager_email_of_a_big_organisation(big: AuditRun) -> None:
    n = len(big.snapshot.opportunities)
    assert n in (100_000, N) and len(big.result.violations) > n
    cfg = parse_config(
        {
            "source": {"type": "demo"},
            "audit": {"as_of": "2026-11-20"},
            "delivery": {"managers": ["boss@example.com"], "attach_csv": True},
        },
        origin="<big>",
    )
    items, skipped = plan(big, cfg)
    assert skipped == [] and [i.kind for i in items] == ["manager"]
    out = items[0]
    # the CSV of 1.3M findings is far over the budget: linked, not attached
    assert out.attachment is None
    assert "over the 120,000-byte e-mail budget" in out.sizes["attachment_skipped"]
    sizes = sizes_of(out)
    assert sizes["html"] < HTML_LIMIT, sizes
    assert sizes["message"] < MESSAGE_LIMIT, sizes
    # the story is above the fold whatever the size: score, money, fix list, new/resolved
    html = out.html
    for needle in (
        "hygiene score / 100",
        "open amount at risk",
        "Fix these first",
        "5,000 / 5,000",
        "explorer.html",
    ):
        assert needle in html, needle
    print("manager e-mail sizes", sizes)


def test_digest_and_rollups_of_a_big_organisation(big: AuditRun) -> None:
    env = run_environment(big)
    split = rows_by_owner(big)
    busiest = max(split, key=lambda k: len(split[k]))
    ctx = digest_context(big, busiest, split[busiest])
    digest = Outgoing(
        "owner",
        busiest,
        "rep@example.com",
        None,
        "s",
        render(env, "digest.txt.j2", ctx),
        render(env, "digest.html.j2", ctx),
    )
    groups = manager_groups(big)
    biggest = max(groups, key=lambda g: len(g["members"]))
    assert len(biggest["members"]) >= 49
    team = team_group(big, "Regional team 000 — long name")
    sizes = {"digest": sizes_of(digest)}
    for name, g in (("manager", biggest), ("team", team)):
        tctx = team_context(big, g)
        out = Outgoing(
            "team",
            g["key"],
            "m@example.com",
            None,
            "s",
            render(env, "team.txt.j2", tctx),
            render(env, "team.html.j2", tctx),
        )
        sizes[name] = sizes_of(out)
    for name, s in sizes.items():
        assert s["html"] < HTML_LIMIT, (name, s)
        assert s["message"] < MESSAGE_LIMIT, (name, s)
    print("digest / roll-up sizes", sizes)
