"""Fixtures: a fake HubSpot on 127.0.0.1 and connectors pointed at it that never really sleep."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from auditor.snapshot import STR, make_opportunities, make_owners, make_stage_history
from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.options import HubSpotOptions
from tests.connectors.hubspot.fake_server import FakeHubSpot

DATA = Path(__file__).parent / "data"
#: distinctive, so a leak anywhere is found by a substring search
TOKEN = "pat-na1-7f3c2b9e-SECRET-TOKEN-4d1a"
#: mixes stage ids and labels, as users write it
STAGE_MAP = {"1001": "contact", "Discovery": "discovery", "1003": "solution",
             "Proposal": "proposal", "1005": "negotiation", "1006": "closed_won",
             "Lost": "closed_lost"}
CUSTOM = {"budget": "budget_confirmed"}


@pytest.fixture
def fake() -> Iterator[FakeHubSpot]:
    with FakeHubSpot(token=TOKEN) as f:
        yield f


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_connector(fake: FakeHubSpot, sleeps: list[float]) -> Callable[..., HubSpotConnector]:
    def make(**over: Any) -> HubSpotConnector:
        opts: dict[str, Any] = {"host": fake.host, "stage_map": STAGE_MAP,
                                "custom_fields": CUSTOM, "search_min_interval_s": 0}
        opts.update(over)
        return HubSpotConnector(HubSpotOptions(**opts), env={"HUBSPOT_ACCESS_TOKEN": TOKEN},
                                sleep=sleeps.append)
    return make


def expected_frames() -> dict[str, pd.DataFrame]:
    raw = json.loads((DATA / "expected_snapshot.json").read_text())
    frame = pd.DataFrame(raw["opportunities"])
    # the hand-written flags are complete, so open / lost follow from them alone
    closed, won = frame["is_closed"].astype("boolean"), frame["is_won"].astype("boolean")
    frame["is_open"], frame["is_lost"] = ~closed, closed & ~won
    opp = make_opportunities(frame)
    opp["budget"] = opp["budget"].astype(STR)
    return {
        "opportunities": opp,
        "stage_history": make_stage_history(pd.DataFrame(raw["stage_history"])),
        "owners": make_owners(pd.DataFrame(raw["owners"])),
    }


def synthetic_deals(n: int, *, start_ms: int = 1_704_067_200_000, step_ms: int = 60_000,
                    same_time: int = 1) -> list[dict[str, Any]]:
    """n deals in the default pipeline; ``same_time`` consecutive deals share a modified time."""
    from datetime import UTC, datetime

    out = []
    for i in range(n):
        ms = start_ms + (i // same_time) * step_ms
        ts = datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + \
            f"{ms % 1000:03d}Z"
        out.append({"id": str(1000 + i), "properties": {
            "dealname": f"Deal {i}", "dealstage": "appointmentscheduled", "pipeline": "default",
            "createdate": ts, "hs_lastmodifieddate": ts, "amount": str(100 * i),
            "hs_v2_date_entered_appointmentscheduled": ts},
            "propertiesWithHistory": {"dealstage": [{"value": "appointmentscheduled",
                                                     "timestamp": ts}]}})
    return out
