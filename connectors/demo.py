"""A deterministic demo organisation: a realistic B2B pipeline with planted process violations.

``generate_demo_org(n, seed, as_of)`` builds owners (reps with managers and teams),
opportunities across every common stage with a full stage history, amounts, close dates, next
steps, activity dates and loss reasons. Every record starts *clean* (it follows the reference
process) and then a seeded share of records get a violation planted. The planted ground truth
(rule code → set of opportunity ids) is returned with the Snapshot so tests can measure each
rule's precision and recall exactly.

Everything is vectorized with numpy, so 1,000,000 opportunities (about five history rows each)
take seconds, which the benchmarks rely on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import ClassVar

import numpy as np
import pandas as pd

from auditor.snapshot import (
    Snapshot,
    SnapshotMeta,
    make_opportunities,
    make_owners,
    make_stage_history,
)
from auditor.stages import STAGE_ORDER, STAGES
from connectors.base import Connector, SourceOptions

DEMO_SOURCE = "demo"
DEMO_URL = "https://demo-crm.invalid/opportunities/"

# Share of opportunities ending in each stage (open ones are where they are today).
_FINAL_STAGE_WEIGHTS = {
    "lead": 0.05,
    "contact": 0.09,
    "qualification": 0.09,
    "discovery": 0.08,
    "solution": 0.07,
    "proposal": 0.08,
    "negotiation": 0.06,
    "closed_won": 0.20,
    "closed_lost": 0.24,
    "handoff": 0.04,
}
_PROBABILITY = {
    "lead": 0.05,
    "contact": 0.1,
    "qualification": 0.2,
    "discovery": 0.3,
    "solution": 0.4,
    "proposal": 0.6,
    "negotiation": 0.8,
    "closed_won": 1.0,
    "closed_lost": 0.0,
    "handoff": 1.0,
}
_FORECAST = {
    "lead": "omitted",
    "contact": "pipeline",
    "qualification": "pipeline",
    "discovery": "pipeline",
    "solution": "pipeline",
    "proposal": "best_case",
    "negotiation": "commit",
    "closed_won": "closed",
    "closed_lost": "omitted",
    "handoff": "closed",
}
_LEAD_SOURCES = np.array(["Inbound", "Outbound", "Referral", "Partner", "Event"])
_LOSS_REASONS = np.array(["Price", "Competitor", "No decision", "Timing", "Product fit"])
_NEXT_STEPS = np.array(
    [
        "Send proposal",
        "Schedule demo",
        "Call with CFO",
        "Security review",
        "Follow-up call",
        "Workshop with IT",
        "Send contract",
        "Reference call",
    ]
)
_PRODUCTS = np.array(["Platform", "Analytics", "Add-on", "Services", "Enterprise Suite"])
_SYL_A = np.array(
    [
        "Acme",
        "Nordic",
        "Blue",
        "Vertex",
        "Apex",
        "Silver",
        "Quantum",
        "Granite",
        "Harbor",
        "Summit",
        "Pioneer",
        "Cobalt",
        "Orchid",
        "Falcon",
        "Meridian",
    ]
)
_SYL_B = np.array(
    [
        "Logistics",
        "Health",
        "Foods",
        "Energy",
        "Robotics",
        "Finance",
        "Retail",
        "Media",
        "Labs",
        "Systems",
        "Textiles",
        "Motors",
        "Pharma",
        "Insurance",
    ]
)
_FIRST = np.array(
    [
        "Ann",
        "Ben",
        "Chloe",
        "Dev",
        "Elena",
        "Farid",
        "Grace",
        "Hugo",
        "Ines",
        "Jonas",
        "Kira",
        "Liam",
        "Maya",
        "Noah",
        "Olga",
        "Pedro",
        "Quinn",
        "Rosa",
    ]
)
_LAST = np.array(
    [
        "Lee",
        "Novak",
        "Garcia",
        "Schmidt",
        "Okafor",
        "Rossi",
        "Tanaka",
        "Dubois",
        "Kowalski",
        "Silva",
        "Berg",
        "Murphy",
        "Haddad",
        "Jensen",
        "Moreau",
    ]
)
_TEAMS = np.array(["Enterprise", "Mid-Market", "SMB", "Public Sector"])

#: share of eligible records that get each violation planted
PLANT_RATES: dict[str, float] = {
    "QL01": 0.06,
    "FU01": 0.12,
    "ST04": 0.25,
    "CL01": 0.15,
}
#: share of opportunities imported without any stage history (rules needing it can't judge them)
NO_HISTORY_RATE = 0.03


@dataclass
class DemoOrg:
    snapshot: Snapshot
    #: rule code → ids of the opportunities that break that rule by construction
    ground_truth: dict[str, set[str]] = field(default_factory=dict)


def _day(as_of: date) -> np.datetime64:
    return np.datetime64(pd.Timestamp(as_of).normalize().to_datetime64(), "us")


def _days(n: np.ndarray) -> np.ndarray:
    return (np.asarray(n, dtype=np.int64) * 86_400_000_000).astype("timedelta64[us]")


def generate_demo_org(n: int = 2000, seed: int = 7, as_of: date | None = None) -> DemoOrg:
    """Build a demo org of ``n`` opportunities, as the CRM would look on ``as_of``."""
    if n < 1:
        raise ValueError("a demo org needs at least one opportunity")
    as_of = as_of or datetime.now().date()
    rng = np.random.default_rng(seed)
    today = _day(as_of)
    S = STAGE_ORDER

    # ---- owners: reps in teams, each team with a manager; a few reps have left -------------
    n_teams = int(min(len(_TEAMS), max(2, n // 600)))
    n_reps = int(max(6, n // 140))
    rep_team = rng.integers(0, n_teams, n_reps)
    n_owners = n_teams + n_reps
    names = np.char.add(np.char.add(rng.choice(_FIRST, n_owners), " "), rng.choice(_LAST, n_owners))
    owner_ids = np.char.add("U", np.char.zfill(np.arange(1, n_owners + 1).astype(str), 5))
    team_of_owner = np.concatenate([np.arange(n_teams), rep_team])
    manager_of = np.concatenate([np.full(n_teams, -1), rep_team])
    active = np.ones(n_owners, dtype=bool)
    owners = pd.DataFrame(
        {
            "id": owner_ids,
            "name": names,
            "email": np.char.add(
                np.char.replace(np.char.lower(names), " ", "."), "@demo-org.example"
            ),
            "active": active,
            "manager_id": np.where(manager_of >= 0, owner_ids[np.maximum(manager_of, 0)], None),
            "team": _TEAMS[team_of_owner],
        }
    )

    # ---- opportunities: final stage and outcome ---------------------------------------------
    stages = np.array(list(_FINAL_STAGE_WEIGHTS))
    p = np.array(list(_FINAL_STAGE_WEIGHTS.values()))
    final = rng.choice(len(stages), size=n, p=p / p.sum())
    final_stage = stages[final]
    code_final = np.array([S[s] for s in stages])[final]
    is_won = np.isin(final_stage, ["closed_won", "handoff"])
    is_lost = final_stage == "closed_lost"
    is_closed = is_won | is_lost
    # the last open stage each deal went through (lost deals die somewhere along the way)
    last_open = np.where(is_won, S["negotiation"], code_final)
    lost_at = rng.integers(S["contact"], S["negotiation"] + 1, n)
    last_open = np.where(is_lost, lost_at, last_open)
    # path: every open stage 0..last_open, then closed_won (+handoff) or closed_lost
    extra = np.where(final_stage == "handoff", 2, np.where(is_closed, 1, 0))
    path_len = last_open + 1 + extra

    # ---- stage history rows (vectorized variable-length paths) -------------------------------
    opp_of_row = np.repeat(np.arange(n), path_len)
    start = np.cumsum(path_len) - path_len
    pos = np.arange(path_len.sum()) - start[opp_of_row]
    row_stage = pos.copy()
    after_open = pos > last_open[opp_of_row]
    closing = np.where(is_lost, S["closed_lost"], S["closed_won"])[opp_of_row]
    row_stage = np.where(after_open, closing, row_stage)
    second_after = pos == last_open[opp_of_row] + 2
    row_stage = np.where(second_after, S["handoff"], row_stage)

    # days spent in each history entry: well within the stage limits for clean deals
    dur = rng.integers(2, 12, row_stage.size)
    is_last = pos == path_len[opp_of_row] - 1
    # how long ago the deal reached its current stage
    cur_age = rng.integers(0, 12, n)
    closed_age = rng.integers(1, 400, n)  # closed deals closed some time in the last ~13 months
    anchor_age = np.where(is_closed, closed_age, cur_age)
    dur = np.where(is_last, anchor_age[opp_of_row], dur)
    # entered_at = today - (sum of durations from this row to the end of the path)
    rev = np.append(np.cumsum(dur[::-1])[::-1], 0)
    end_of_opp = start + path_len - 1
    age = rev[:-1] - rev[end_of_opp[opp_of_row] + 1]
    entered_day = today - _days(age)
    # a realistic time of day, so timestamps are not all midnight
    entered_at = entered_day + (
        rng.integers(8 * 3600, 18 * 3600, row_stage.size) * 1_000_000
    ).astype("timedelta64[us]")

    first_row = start
    last_row = start + path_len - 1
    created_at = entered_at[first_row]
    stage_entered_at = entered_at[last_row]

    # ---- fields --------------------------------------------------------------------------------
    ids = np.char.add("OPP-", np.char.zfill(np.arange(1, n + 1).astype(str), 7))
    n_accounts = max(10, n // 4)
    acct_idx = rng.integers(0, n_accounts, n)
    acct_names = np.char.add(
        np.char.add(_SYL_A[np.arange(n_accounts) % len(_SYL_A)], " "),
        _SYL_B[(np.arange(n_accounts) // len(_SYL_A)) % len(_SYL_B)],
    )
    acct_names = np.char.add(
        acct_names,
        np.where(
            np.arange(n_accounts) >= len(_SYL_A) * len(_SYL_B),
            np.char.add(" ", (np.arange(n_accounts) // (len(_SYL_A) * len(_SYL_B))).astype(str)),
            "",
        ),
    )
    product = rng.choice(_PRODUCTS, n)
    opp_names = np.char.add(np.char.add(acct_names[acct_idx], " – "), product)
    rep_owner = n_teams + rng.integers(0, n_reps, n)
    amount = np.round(rng.lognormal(mean=10.2, sigma=0.8, size=n), -2)
    prob = np.array([_PROBABILITY[s] for s in stages])[final]
    forecast = np.array([_FORECAST[s] for s in stages])[final]
    # for closed deals: close date = the day the closing stage was entered
    close_row = start + last_open + 1
    close_row = np.minimum(close_row, last_row)
    close_day = np.where(is_closed, entered_day[close_row], today + _days(rng.integers(7, 120, n)))

    open_ = ~is_closed
    # activity: open deals were touched within the last 0-10 days; closed ones at closing
    last_act = np.where(open_, today - _days(rng.integers(0, 11, n)), entered_day[close_row])
    last_act = np.minimum(last_act, today)
    last_act = np.maximum(last_act, entered_day[first_row])
    last_act_ts = last_act + (rng.integers(9 * 3600, 17 * 3600, n) * 1_000_000).astype(
        "timedelta64[us]"
    )
    next_step = np.where(open_, rng.choice(_NEXT_STEPS, n), None)
    next_due = np.where(open_, today + _days(rng.integers(1, 15, n)), np.datetime64("NaT", "us"))
    loss_reason = np.where(is_lost, rng.choice(_LOSS_REASONS, n), None)
    handoff_at = np.where(
        final_stage == "handoff", entered_at[last_row], np.datetime64("NaT", "us")
    )

    opp = pd.DataFrame(
        {
            "id": ids,
            "source": DEMO_SOURCE,
            "url": np.char.add(DEMO_URL, ids),
            "name": opp_names,
            "account_id": np.char.add("ACC-", np.char.zfill(acct_idx.astype(str), 6)),
            "account_name": acct_names[acct_idx],
            "owner_id": owner_ids[rep_owner],
            "pipeline": "default",
            "stage": final_stage,
            "source_stage": final_stage,
            "is_closed": is_closed,
            "is_won": is_won,
            "amount": amount,
            "currency": "USD",
            "probability": prob,
            "forecast_category": forecast,
            "close_date": close_day,
            "created_at": pd.to_datetime(created_at, utc=True),
            "updated_at": pd.to_datetime(np.maximum(last_act_ts, stage_entered_at), utc=True),
            "stage_entered_at": pd.to_datetime(stage_entered_at, utc=True),
            "last_activity_at": pd.to_datetime(last_act_ts, utc=True),
            "next_step": next_step,
            "next_step_due": next_due,
            "loss_reason": loss_reason,
            "lead_source": rng.choice(_LEAD_SOURCES, n),
            "close_date_changes": np.zeros(n, dtype=np.int64),
            "handoff_at": pd.to_datetime(handoff_at, utc=True),
            "product": product,
        }
    )
    hist = pd.DataFrame(
        {
            "opportunity_id": ids[opp_of_row],
            "stage": np.array(STAGES)[row_stage],
            "source_stage": np.array(STAGES)[row_stage],
            "entered_at": entered_at,  # naive UTC while planting; made tz-aware below
        }
    )
    truth = _plant(opp, hist, rng, today, is_open=open_)
    hist = hist[~hist.pop("_drop")] if "_drop" in hist else hist
    meta = SnapshotMeta(
        source=DEMO_SOURCE,
        source_type="demo",
        provided_fields=frozenset(opp.columns) - {"product"},
        has_stage_history=True,
        reached_stages=frozenset(STAGES),
        loaded_rows=n,
        extra={"seed": seed, "as_of": str(as_of)},
    )
    snap = Snapshot(
        make_opportunities(opp),
        make_stage_history(hist.reset_index(drop=True)),
        make_owners(owners),
        meta,
    ).validate()
    return DemoOrg(snap, truth)


def _pick(rng: np.random.Generator, eligible: np.ndarray, rate: float) -> np.ndarray:
    """A seeded random subset (boolean mask) of the eligible records."""
    return eligible & (rng.random(eligible.size) < rate)


def _plant(
    opp: pd.DataFrame,
    hist: pd.DataFrame,
    rng: np.random.Generator,
    today: np.datetime64,
    is_open: np.ndarray,
) -> dict[str, set[str]]:
    """Plant violations in place; return the ground truth per rule code."""
    ids = opp["id"].to_numpy()
    stage = opp["stage"].to_numpy()
    code = np.array([STAGE_ORDER[s] for s in stage])
    n = len(opp)
    truth: dict[str, set[str]] = {}

    # records without history: imported from an older system
    no_hist = rng.random(n) < NO_HISTORY_RATE
    hist_opp_pos = pd.Index(ids).get_indexer(hist["opportunity_id"])
    drop = no_hist[hist_opp_pos]

    # QL01: drop the qualification entry of deals that went further
    reached_past = (code >= STAGE_ORDER["discovery"]) & (stage != "closed_lost")
    # lost deals that went past discovery also count ("reached discovery or later")
    lost_far = np.zeros(n, dtype=bool)
    hist_codes = np.array([STAGE_ORDER[s] for s in hist["stage"].to_numpy()])
    far_rows = hist_codes >= STAGE_ORDER["discovery"]
    far_rows &= hist_codes <= STAGE_ORDER["negotiation"]
    lost_far[hist_opp_pos[far_rows]] = True
    eligible = (reached_past | (lost_far & (stage == "closed_lost"))) & ~no_hist
    ql01 = _pick(rng, eligible, PLANT_RATES["QL01"])
    drop |= ql01[hist_opp_pos] & (hist_codes == STAGE_ORDER["qualification"])
    hist["_drop"] = drop
    truth["QL01"] = set(ids[ql01])

    # FU01: open deals past contact lose their next step and next activity
    fu_elig = is_open & (code >= STAGE_ORDER["qualification"])
    fu01 = _pick(rng, fu_elig, PLANT_RATES["FU01"])
    opp.loc[fu01, "next_step"] = None
    opp.loc[fu01, "next_step_due"] = pd.NaT
    # edge: early-stage open deals without a next step are fine (not past first contact)
    early = _pick(rng, is_open & (code < STAGE_ORDER["qualification"]), 0.3)
    opp.loc[early, "next_step"] = None
    opp.loc[early, "next_step_due"] = pd.NaT
    truth["FU01"] = set(ids[fu01])

    # ST04: open proposal / negotiation deals that have sat long and gone quiet
    late = is_open & np.isin(stage, ["proposal", "negotiation"])
    st04 = _pick(rng, late, PLANT_RATES["ST04"])
    # edge cases: long in stage but recently active; quiet but recently entered
    busy = _pick(rng, late & ~st04, 0.2)
    quiet_new = _pick(rng, late & ~st04 & ~busy, 0.2)
    in_stage = np.where(
        st04 | busy,
        rng.integers(22, 29, n),
        opp["stage_entered_at"]
        .pipe(lambda s: (pd.Timestamp(today, tz="UTC") - s.dt.floor("D")).dt.days)
        .to_numpy(),
    )
    idle = np.where(st04 | quiet_new, rng.integers(15, 21, n), -1)
    new_entered = pd.Timestamp(today, tz="UTC") - pd.to_timedelta(in_stage, unit="D")
    moved = st04 | busy
    _move_current_stage(opp, hist, moved, new_entered, hist_opp_pos)
    quiet = st04 | quiet_new
    act = pd.Timestamp(today, tz="UTC") - pd.to_timedelta(np.maximum(idle, 0), unit="D")
    act = pd.Series(act, index=opp.index)
    # quiet_new deals entered their stage recently but nothing happened since well before it
    opp.loc[quiet, "last_activity_at"] = act[quiet] + pd.Timedelta(hours=10)
    opp.loc[busy, "last_activity_at"] = pd.Timestamp(today, tz="UTC") - pd.Timedelta(days=2)
    truth["ST04"] = set(ids[st04])

    # CL01: lost deals without a reason
    cl01 = _pick(rng, stage == "closed_lost", PLANT_RATES["CL01"])
    opp.loc[cl01, "loss_reason"] = None
    truth["CL01"] = set(ids[cl01])

    # rules needing history cannot judge records without it
    for code_ in ("QL01",):
        truth[code_] -= set(ids[no_hist])
    opp["updated_at"] = opp[["updated_at", "last_activity_at"]].max(axis=1)
    return truth


def _move_current_stage(
    opp: pd.DataFrame,
    hist: pd.DataFrame,
    mask: np.ndarray,
    new_entered: pd.DatetimeIndex,
    hist_opp_pos: np.ndarray,
) -> None:
    """Set when the current stage was entered (deal and its last history row) for ``mask``."""
    entered = pd.DatetimeIndex(new_entered) + pd.Timedelta(hours=9)
    opp.loc[mask, "stage_entered_at"] = entered[mask]
    naive = entered.tz_convert("UTC").tz_localize(None).to_numpy().astype("datetime64[us]")
    ent = hist["entered_at"].to_numpy().astype("datetime64[us]").copy()
    # the last history row of each opportunity is its current stage
    last_of_opp = ~pd.Series(hist_opp_pos).duplicated(keep="last").to_numpy()
    rows = np.flatnonzero(last_of_opp & mask[hist_opp_pos])
    ent[rows] = naive[hist_opp_pos[rows]]
    # earlier entries must stay earlier than the moved one: walk back, squeezing as needed
    prev = rows - 1
    while prev.size:
        ok = prev >= 0
        prev = prev[ok]
        same = hist_opp_pos[prev] == hist_opp_pos[prev + 1]
        prev = prev[same]
        too_late = ent[prev] >= ent[prev + 1]
        prev = prev[too_late]
        ent[prev] = ent[prev + 1] - np.timedelta64(1, "D")
        prev = prev - 1
    hist["entered_at"] = ent
    # created_at must not be later than the first history entry
    first = pd.Series(ent).groupby(hist_opp_pos).min()
    created = opp["created_at"].dt.tz_localize(None).to_numpy().astype("datetime64[us]").copy()
    pos = first.index.to_numpy()
    created[pos] = np.minimum(created[pos], first.to_numpy().astype("datetime64[us]"))
    opp["created_at"] = pd.to_datetime(created, utc=True)


class DemoOptions(SourceOptions):
    #: number of opportunities (100 .. millions)
    size: int = 2000
    seed: int = 7


class DemoConnector(Connector):
    """``source.type = "demo"``: the bundled demo organisation (no CRM needed)."""

    type_name: ClassVar[str] = "demo"
    Options = DemoOptions

    def __init__(self, options: DemoOptions, **kw) -> None:  # noqa: ANN003
        super().__init__(options, **kw)
        self.as_of: date | None = None

    def pull(self, since: datetime | None = None) -> Snapshot:
        opts: DemoOptions = self.options  # type: ignore[assignment]
        return generate_demo_org(opts.size, opts.seed, self.as_of).snapshot
