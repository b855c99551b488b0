"""A deterministic demo organisation: a realistic B2B pipeline with planted process violations.

``generate_demo_org(n, seed, as_of)`` builds owners (reps with managers and teams, a few who
have left), opportunities across every common stage with a full stage history, amounts, close
dates, next steps, activity dates, loss reasons, handoffs and BANT qualification fields. Every
record starts *clean* (it follows the reference process and trips no rule); then a seeded share
of records get one violation of one rule planted, and others get an *edge case* that looks close
to a violation but is not one (due today, exactly at a limit, a closed twin of an open deal,
...). Each record carries at most one plant, so plants cannot trip other rules by accident. The
planted ground truth (rule code → set of opportunity ids, for every rule of the catalogue) is
returned with the Snapshot so tests measure each rule's precision and recall exactly; records
imported without stage history (3%) never count for the history rules.

Everything is vectorized with numpy and pyarrow, so 1,000,000 opportunities (about five
history rows each) take seconds, which the benchmarks rely on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from auditor.snapshot import (
    Snapshot,
    SnapshotMeta,
    make_opportunities,
    make_owners,
    make_stage_history,
)
from auditor.stages import STAGE_DTYPE, STAGE_ORDER, STAGES
from connectors.base import Connector, SourceOptions

_STR = pd.StringDtype("pyarrow")
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
_BANT = {
    "budget": np.array(["approved", "allocated", "in planning"]),
    "authority": np.array(["CFO", "VP Sales", "Head of IT", "COO"]),
    "need": np.array(["reporting", "automation", "compliance", "cost reduction"]),
    "timeline": np.array(["this quarter", "next quarter", "next half-year"]),
}

#: share of eligible records that get each violation planted (each record gets at most one)
PLANT_RATES: dict[str, float] = {
    "QL01": 0.05,
    "QL02": 0.06,
    "ST01": 0.05,
    "ST02": 0.05,
    "ST03": 0.05,
    "ST04": 0.25,
    "FU01": 0.08,
    "FU02": 0.06,
    "FU03": 0.05,
    "CD01": 0.05,
    "CD02": 0.05,
    "CD03": 0.06,
    "CL01": 0.15,
    "CL02": 0.04,
    "CL03": 0.12,
    "DQ01": 0.1,
    "DQ02": 0.03,
    "DQ03": 0.02,
    "DQ04": 0.03,
}
S_ = STAGE_ORDER
#: stage-aging limits the demo plants against (the shipped process defaults)
# the stage limits as docs/rules.md (ST03) states them: the planted truth is written from the
# documentation, never from the rules' own defaults (#14)
_STAGE_LIMIT = {
    "lead": 14, "contact": 21, "qualification": 30, "discovery": 30, "solution": 30,
    "proposal": 30, "negotiation": 45,
}
#: a retired source stage the stage map does not know (DQ03)
_LEGACY_STAGE = "On hold (legacy)"
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
    # about one rep in ten has left the company (inactive); they keep their closed deals only
    active = np.ones(n_owners, dtype=bool)
    left = rng.random(n_reps) < 0.1
    left[0], left[-1] = True, False  # at least one leaver, at least one active rep
    active[n_teams:] = ~left
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
    # strings are built in pyarrow (joins, takes by position): millions of numpy unicode
    # strings converted one by one would dominate the generation time
    id_array = _join("OPP-", pc.utf8_lpad(_num(np.arange(1, n + 1)), width=7, padding="0"))
    n_accounts = max(10, n // 4)
    acct_idx = rng.integers(0, n_accounts, n)
    a = np.arange(n_accounts)
    n_pairs = len(_SYL_A) * len(_SYL_B)
    acct_names = _join(
        _take(_SYL_A, a % len(_SYL_A)), " ", _take(_SYL_B, (a // len(_SYL_A)) % len(_SYL_B))
    )
    acct_suffix = pc.if_else(
        pa.array(a >= n_pairs), pa.array(_join(" ", _num(a // n_pairs))), _lstr("")
    )
    acct_names = _join(acct_names, acct_suffix)
    acct_ids = _join("ACC-", pc.utf8_lpad(_num(a), width=6, padding="0"))
    prod_idx = rng.integers(0, len(_PRODUCTS), n)
    product = _take(_PRODUCTS, prod_idx)
    # a second deal for the same account and product is a repeat purchase (renewal, next
    # phase) and carries the same name, as it does in real CRMs; DQ04 must tell it from a
    # duplicate by evidence, not by a name the generator made unique
    opp_names = _join(acct_names.take(acct_idx), " – ", product)
    rep_owner = n_teams + rng.integers(0, n_reps, n)
    active_reps = n_teams + np.flatnonzero(~left)
    reassign = ~is_closed & ~active[rep_owner]  # open deals belong to active reps
    rep_owner = np.where(reassign, active_reps[rng.integers(0, active_reps.size, n)], rep_owner)
    amount = np.round(rng.lognormal(mean=10.2, sigma=0.8, size=n), -2)
    prob = np.array([_PROBABILITY[s] for s in stages])[final]
    forecast = _take([_FORECAST[s] for s in stages], final)
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
    next_step = _take(_NEXT_STEPS, np.where(open_, rng.integers(0, len(_NEXT_STEPS), n), -1))
    next_due = np.where(open_, today + _days(rng.integers(1, 15, n)), np.datetime64("NaT", "us"))
    loss_reason = _take(
        _LOSS_REASONS, np.where(is_lost, rng.integers(0, len(_LOSS_REASONS), n), -1)
    )
    # won deals are handed over within 1-25 days (recorded in handoff_at); deals in the handoff
    # stage record it when they entered the stage
    handed = close_day + _days(rng.integers(1, 26, n)) + np.timedelta64(10, "h")
    handoff_at = np.where(
        final_stage == "handoff",
        entered_at[last_row],
        np.where((final_stage == "closed_won") & (handed <= today), handed, np.datetime64("NaT")),
    ).astype("datetime64[us]")
    # BANT qualification fields (process.exit_criteria default): filled for every deal that got
    # past qualification, patchy before that
    early = code_final <= S["qualification"]
    bant = {
        f: _take(vals, np.where(early & (rng.random(n) < 0.5), -1, rng.integers(0, len(vals), n)))
        for f, vals in _BANT.items()
    }

    opp = pd.DataFrame(
        {
            "id": id_array,
            "source": _take([DEMO_SOURCE], np.zeros(n, dtype=int)),
            "url": _join(DEMO_URL, id_array),
            "name": opp_names,
            "account_id": acct_ids.take(acct_idx),
            "account_name": acct_names.take(acct_idx),
            "owner_id": _take(owner_ids, rep_owner),
            "pipeline": _take(["default"], np.zeros(n, dtype=int)),
            "stage": pd.Categorical.from_codes(code_final, dtype=STAGE_DTYPE),
            "source_stage": _take(STAGES, code_final),
            "is_closed": is_closed,
            "is_won": is_won,
            "amount": amount,
            "currency": _take(["USD"], np.zeros(n, dtype=int)),
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
            "lead_source": _take(_LEAD_SOURCES, rng.integers(0, len(_LEAD_SOURCES), n)),
            "close_date_changes": np.zeros(n, dtype=np.int64),
            "handoff_at": pd.to_datetime(handoff_at, utc=True),
            "product": product,
            **bant,
        }
    )
    # history stays numpy (opportunity position, stage code, naive UTC time) while planting
    h = {"opp": opp_of_row, "code": row_stage, "at": entered_at.astype("datetime64[us]")}
    truth, h, unmapped = _plant(opp, h, owners, rng, today, is_open=open_, stage_code=code_final)
    order = np.lexsort((h["at"], h["opp"]))
    code = h["code"][order]
    # ids and stage labels are taken by position (pyarrow / categorical), not built as millions
    # of Python strings
    labels = pd.Categorical.from_codes(
        np.where(code < 0, len(STAGES), code), categories=[*STAGES, _LEGACY_STAGE]
    )
    hist = pd.DataFrame(
        {
            "opportunity_id": id_array.take(h["opp"][order]),
            "stage": pd.Categorical.from_codes(code, dtype=STAGE_DTYPE),
            "source_stage": labels,
            "entered_at": pd.to_datetime(h["at"][order], utc=True),
        }
    )
    meta = SnapshotMeta(
        source=DEMO_SOURCE,
        source_type="demo",
        provided_fields=frozenset(opp.columns) - {"product"},
        has_stage_history=True,
        reached_stages=frozenset(STAGES),
        unmapped_stages=unmapped,
        loaded_rows=n,
        extra={"seed": seed, "as_of": str(as_of)},
    )
    snap = Snapshot(
        make_opportunities(opp),
        make_stage_history(hist),
        make_owners(owners),
        meta,
    ).validate()
    return DemoOrg(snap, truth)


def _take(
    vocab: np.ndarray | list[str] | tuple[str, ...], codes: np.ndarray
) -> pd.api.extensions.ExtensionArray:
    """Text column from a small vocabulary by position (code -1 = NA), in pyarrow."""
    base = pd.array(np.asarray(vocab, dtype=object), dtype=_STR)
    return base.take(np.asarray(codes, dtype=np.int64), allow_fill=True)


def _num(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string())


def _join(*parts: object) -> pd.api.extensions.ExtensionArray:
    """Element-wise concatenation of pyarrow / pandas text arrays and scalars."""
    arrays = []
    for p in parts:
        if isinstance(p, pd.api.extensions.ExtensionArray):
            p = pa.array(p)
        if isinstance(p, pa.ChunkedArray):
            p = p.combine_chunks()
        arrays.append(p.cast(pa.large_string()) if isinstance(p, pa.Array) else _lstr(p))
    return pd.arrays.ArrowStringArray(pc.binary_join_element_wise(*arrays, _lstr("")))


def _lstr(value: object) -> pa.Scalar:
    return pa.scalar(str(value), pa.large_string())


def _pick(rng: np.random.Generator, eligible: np.ndarray, rate: float) -> np.ndarray:
    """A seeded random subset (boolean mask) of the eligible records; never empty when any
    record is eligible, so even a small org plants every kind of violation."""
    chosen = eligible & (rng.random(eligible.size) < rate)
    if not chosen.any() and eligible.any():
        chosen[rng.choice(np.flatnonzero(eligible))] = True
    return chosen


def _ts(day: np.ndarray | np.datetime64, hours: int) -> pd.DatetimeIndex:
    """Naive calendar days (+ a time of day) as tz-aware UTC timestamps."""
    return pd.to_datetime(np.asarray(day) + np.timedelta64(hours, "h"), utc=True)


def _drop_last_letter(names: np.ndarray) -> np.ndarray:
    """"Acme Labs – Platform" → "Acme Labs – Platfor": a one-letter typo."""
    return np.array([n[:-1] for n in names.tolist()], dtype=object).astype(str)


def _chance_duplicates(
    opp: pd.DataFrame, is_open: np.ndarray, ids: np.ndarray, name: np.ndarray, marked: np.ndarray
) -> set[str]:
    """Open deals sharing account and name with another open deal, plus evidence (a copy
    marker, the same amount, or the same close month and creation within 7 days): DQ04's
    definition, applied to the repeat purchases and the planted copies."""
    o = pd.DataFrame({
        "id": ids, "acct": opp["account_id"].astype(object), "name": name, "marked": marked,
        "amount": opp["amount"].to_numpy(dtype=float, na_value=np.nan),
        "month": opp["close_date"].dt.strftime("%Y-%m").astype(object),
        "created": opp["created_at"].dt.tz_convert(None).astype("datetime64[us]"),
    })[is_open]
    o = o[o.duplicated(["acct", "name"], keep=False)]
    pairs = o.merge(o, on=["acct", "name"], suffixes=("_a", "_b"))
    pairs = pairs[pairs["id_a"] != pairs["id_b"]]
    same_amount = (pairs["amount_a"] == pairs["amount_b"]) | pairs["marked_a"] | pairs["marked_b"]
    close_and_created = (pairs["month_a"] == pairs["month_b"]) & (
        (pairs["created_a"] - pairs["created_b"]).abs() <= pd.Timedelta(days=7)
    )
    return set(pairs.loc[same_amount | close_and_created, "id_a"])


def _plant(
    opp: pd.DataFrame,
    h: dict[str, np.ndarray],
    owners: pd.DataFrame,
    rng: np.random.Generator,
    today: np.datetime64,
    is_open: np.ndarray,
    stage_code: np.ndarray,
) -> tuple[dict[str, set[str]], dict[str, np.ndarray], dict[str, int]]:
    """Plant violations in ``opp`` (in place) and the history; return (truth, history, unmapped).

    ``h`` is the stage history as numpy arrays: ``opp`` (opportunity position, rows grouped per
    opportunity in path order), ``code`` (stage order; -1 = unmapped) and ``at`` (naive UTC).

    Each record gets at most one planted violation or edge case (``taken``), so no plant can
    trip another rule by accident; the clean baseline trips none. Edge cases (records that look
    close to a violation but are not one) are planted too and must stay unflagged.
    """
    ids = opp["id"].to_numpy()
    code = stage_code.copy()
    stage = np.array(STAGES)[code]
    n = len(opp)
    won = np.isin(stage, ["closed_won", "handoff"])
    lost = stage == "closed_lost"
    days_ = lambda lo, hi: _days(rng.integers(lo, hi + 1, n))  # noqa: E731 - local shorthand
    truth: dict[str, set[str]] = {}
    taken = np.zeros(n, dtype=bool)

    def pick(rule: str, eligible: np.ndarray, rate: float | None = None) -> np.ndarray:
        m = _pick(rng, eligible & ~taken, PLANT_RATES[rule] if rate is None else rate)
        taken[m] = True
        return m

    # ---- history ------------------------------------------------------------------------------
    hist_opp = h["opp"]
    hist_codes = h["code"].copy()
    same_next = np.r_[hist_opp[1:] == hist_opp[:-1], False]
    same_prev = np.r_[False, hist_opp[1:] == hist_opp[:-1]]
    next_code = np.r_[hist_codes[1:], -1]
    # records without history: imported from an older system (history rules can't judge them)
    no_hist = rng.random(n) < NO_HISTORY_RATE
    drop = no_hist[hist_opp].copy()
    with_hist = ~no_hist

    # QL01: drop the qualification entry of deals that went to discovery or further
    went_far = np.zeros(n, dtype=bool)
    went_far[hist_opp[(hist_codes >= S_["discovery"]) & (hist_codes <= S_["negotiation"])]] = True
    ql01 = pick("QL01", (went_far | (code >= S_["discovery"]) & ~lost) & with_hist)
    drop |= ql01[hist_opp] & (hist_codes == S_["qualification"])
    truth["QL01"] = set(ids[ql01])

    # ST01: drop one intermediate entry (contact, discovery .. negotiation) followed by an open
    # stage or closed_won, so the move around it jumps over a stage the deal never visited
    cand = (
        (
            np.isin(hist_codes, [S_[s] for s in ("contact", "discovery", "solution", "proposal")])
            | (hist_codes == S_["negotiation"])
        )
        & same_prev
        & same_next
        & (next_code <= S_["closed_won"])
    )
    has_cand = np.zeros(n, dtype=bool)
    has_cand[hist_opp[cand]] = True
    st01 = pick("ST01", has_cand & with_hist)
    rows = rng.permutation(np.flatnonzero(cand & st01[hist_opp]))
    rows = rows[~pd.Series(hist_opp[rows]).duplicated().to_numpy()]  # one entry per deal
    drop[rows] = True
    truth["ST01"] = set(ids[st01])

    # ---- current-stage timing: ST04 and ST03 (+ edge cases) ----------------------------------
    in_stage_now = (
        pd.Timestamp(today, tz="UTC") - opp["stage_entered_at"].dt.floor("D")
    ).dt.days.to_numpy()
    in_stage = in_stage_now.copy()
    late = is_open & np.isin(stage, ["proposal", "negotiation"])
    st04 = pick("ST04", late)
    busy = pick("ST04", late, 0.2)  # edge: long in stage but recently active
    quiet_new = pick("ST04", late, 0.2)  # edge: quiet, but entered the stage recently
    in_stage = np.where(st04 | busy, rng.integers(22, 29, n), in_stage)
    limit = np.array([_STAGE_LIMIT.get(s, 10_000) for s in STAGES])[code]  # by stage code
    st03 = pick("ST03", is_open)
    at_limit = pick("ST03", is_open, 0.03)  # edge: exactly at the limit is not over it
    in_stage = np.where(st03, limit + rng.integers(1, 21, n), in_stage)
    in_stage = np.where(at_limit, limit, in_stage)
    moved = st04 | busy | st03 | at_limit
    new_entered = pd.Timestamp(today, tz="UTC") - pd.to_timedelta(in_stage, unit="D")
    _move_current_stage(opp, h, moved, new_entered)
    quiet = st04 | quiet_new
    opp.loc[quiet, "last_activity_at"] = _ts(today - days_(15, 20), 10)[quiet]
    opp.loc[busy, "last_activity_at"] = _ts(today - days_(2, 2), 10)[busy]
    truth["ST04"] = set(ids[st04])
    truth["ST03"] = set(ids[st03])

    # ---- follow-up --------------------------------------------------------------------------
    open_past_contact = is_open & (code >= S_["qualification"])
    fu01 = pick("FU01", open_past_contact)
    early = pick("FU01", is_open & (code < S_["qualification"]), 0.3)  # edge: not past contact
    opp.loc[fu01 | early, "next_step"] = None
    opp.loc[fu01 | early, "next_step_due"] = pd.NaT
    truth["FU01"] = set(ids[fu01])

    fu02 = pick("FU02", is_open)
    due_today = pick("FU02", is_open, 0.02)  # edge: due today is not overdue
    opp.loc[fu02, "next_step_due"] = (today - days_(1, 20))[fu02]
    opp.loc[due_today, "next_step_due"] = today
    truth["FU02"] = set(ids[fu02])

    fu03 = pick("FU03", is_open)
    never = fu03 & (rng.random(n) < 0.4)  # never had an activity: idle since creation
    idle30 = pick("FU03", is_open, 0.02)  # edge: exactly at the limit
    quiet_since = _ts(today - days_(31, 60), 10)
    opp.loc[fu03, "last_activity_at"] = quiet_since[fu03]
    opp.loc[never, "last_activity_at"] = pd.NaT
    opp.loc[idle30, "last_activity_at"] = _ts(today - days_(30, 30), 10)[idle30]
    # nobody logs activity before the deal exists: created at least a day before going quiet
    created = opp["created_at"].dt.tz_localize(None).to_numpy()
    floor = (quiet_since - pd.Timedelta(days=1)).tz_localize(None).to_numpy()
    opp["created_at"] = pd.to_datetime(
        np.where(fu03 | idle30, np.minimum(created, floor), created), utc=True
    )
    truth["FU03"] = set(ids[fu03])

    # ---- close dates and forecast -------------------------------------------------------------
    cd01 = pick("CD01", is_open)
    closes_today = pick("CD01", is_open, 0.02)  # edge
    opp.loc[cd01, "close_date"] = (today - days_(1, 30))[cd01]
    opp.loc[closes_today, "close_date"] = today
    truth["CD01"] = set(ids[cd01])

    cd02 = pick("CD02", is_open)
    twice = pick("CD02", is_open, 0.03)  # edge: below the threshold
    closed_slip = pick("CD02", ~is_open, 0.03)  # edge: closed deals are history
    changes = opp["close_date_changes"].to_numpy().copy()
    changes[cd02] = rng.integers(3, 7, n)[cd02]
    changes[twice] = 2
    changes[closed_slip] = 5
    opp["close_date_changes"] = changes
    truth["CD02"] = set(ids[cd02])

    early_open = is_open & (code < S_["proposal"])
    cd03 = pick("CD03", early_open)
    by_category = cd03 & (rng.random(n) < 0.5)
    by_prob = cd03 & ~by_category
    almost = pick("CD03", early_open, 0.03)  # edge: just below the probability threshold
    opp.loc[by_category, "forecast_category"] = "commit"
    opp.loc[by_prob, "probability"] = rng.choice([0.7, 0.75, 0.9], n)[by_prob]
    opp.loc[almost, "probability"] = 0.69
    truth["CD03"] = set(ids[cd03])

    # ---- closing ------------------------------------------------------------------------------
    cl01 = pick("CL01", lost)
    opp.loc[cl01, "loss_reason"] = None
    truth["CL01"] = set(ids[cl01])

    cl02 = pick("CL02", won)
    zero = cl02 & (rng.random(n) < 0.3)
    opp.loc[cl02, "amount"] = np.nan
    opp.loc[zero, "amount"] = 0.0
    truth["CL02"] = set(ids[cl02])

    close_day = opp["close_date"].to_numpy().astype("datetime64[us]")
    won_long_ago = (stage == "closed_won") & (close_day < today - _days(np.full(n, 30)))
    cl03 = pick("CL03", won_long_ago)
    handoff_stage_only = pick("CL03", stage == "handoff", 0.1)  # edge: the stage records it
    opp.loc[cl03 | handoff_stage_only, "handoff_at"] = pd.NaT
    truth["CL03"] = set(ids[cl03])

    # ---- data quality -------------------------------------------------------------------------
    dq01 = pick("DQ01", is_open & (code >= S_["proposal"]))
    no_amount_early = pick("DQ01", is_open & (code < S_["proposal"]), 0.05)  # edge
    opp.loc[dq01 | no_amount_early, "amount"] = np.nan
    truth["DQ01"] = set(ids[dq01])

    dq02 = pick("DQ02", is_open)
    kind = rng.integers(0, 3, n)
    gone = owners.loc[~owners["active"].astype(bool), "id"].to_numpy()
    opp.loc[dq02 & (kind == 0), "owner_id"] = None
    opp.loc[dq02 & (kind == 1), "owner_id"] = rng.choice(gone, n)[dq02 & (kind == 1)]
    opp.loc[dq02 & (kind == 2), "owner_id"] = "U99999"  # a user the CRM no longer lists
    truth["DQ02"] = set(ids[dq02])

    dq03 = pick("DQ03", is_open)
    opp["stage"] = opp["stage"].where(~dq03)
    opp.loc[dq03, "source_stage"] = _LEGACY_STAGE
    last_row = ~same_next
    hist_codes[last_row & dq03[hist_opp]] = -1  # its history ends in the legacy stage too
    unmapped = {_LEGACY_STAGE: int(dq03.sum())}
    truth["DQ03"] = set(ids[dq03])

    # DQ04: pairs of open deals; the second becomes a near-copy (same account, name variant) of
    # the first, and both are flagged
    pool = rng.permutation(np.flatnonzero(is_open & ~taken))
    n_pairs = max(1, int(pool.size * PLANT_RATES["DQ04"] / 2)) if pool.size >= 2 else 0
    x, y = pool[:n_pairs], pool[n_pairs : 2 * n_pairs]
    for col in ("account_id", "account_name"):
        opp.loc[y, col] = opp[col].iloc[x].to_numpy()
    base = opp["name"].iloc[x].to_numpy().astype(str)
    # how duplicates look in real CRMs: re-typed (case, separator), "Copy of", a "(2)" counter,
    # a one-letter typo (the last letter of the product dropped); entered twice, so the amount
    # is the same
    kind = np.arange(n_pairs) % 4
    variant = np.where(
        kind == 0,
        np.char.replace(np.char.upper(base), " – ", ": "),
        np.where(
            kind == 1,
            np.char.add("Copy of ", base),
            np.where(kind == 2, np.char.add(base, " (2)"), _drop_last_letter(base)),
        ),
    )
    opp.loc[y, "name"] = variant
    opp.loc[y, "amount"] = opp["amount"].iloc[x].to_numpy()
    # for the truth, every variant is the name it copies; a copy marker ("Copy of", "(2)") is
    # evidence against every open deal of that account with that name (the original and its
    # repeats). The docs' definition, applied without the rule's code.
    dup_name = opp["name"].astype(object).to_numpy().copy()
    dup_name[y] = base
    marked = np.zeros(n, dtype=bool)
    marked[y[(kind == 1) | (kind == 2)]] = True
    # edge: a closed deal with the same account and name as an open one is not a duplicate
    v = pool[2 * n_pairs : 2 * n_pairs + max(1, n_pairs // 2)]
    w = rng.permutation(np.flatnonzero(~is_open & ~taken))[: v.size]
    v = v[: w.size]
    for col in ("account_id", "account_name", "name"):
        opp.loc[w, col] = opp[col].iloc[v].to_numpy()
    dq04 = np.zeros(n, dtype=bool)
    dq04[np.r_[x, y]] = True
    taken[np.r_[x, y, v, w]] = True
    truth["DQ04"] = set(ids[dq04])

    # ---- qualification criteria (QL02) ----------------------------------------------------------
    past_qual = (code > S_["qualification"]) & ~lost & ~dq03
    ql02 = pick("QL02", past_qual)
    lost_blank = pick("QL02", lost, 0.1)  # edge: a lost deal is history
    fields = list(_BANT)
    first = rng.integers(0, len(fields), n)
    second = rng.integers(0, len(fields), n)
    for i, f in enumerate(fields):
        blank = (ql02 | lost_blank) & ((first == i) | ((second == i) & (rng.random(n) < 0.5)))
        opp.loc[blank, f] = np.where(rng.random(n) < 0.7, None, " ")[blank]  # NA, or blank text
    truth["QL02"] = set(ids[ql02])

    # ST02: open deals move back one stage and forward again (two inserted history entries);
    # closed deals get the same as an edge case (a regression on a closed deal is history)
    n_hist = np.bincount(hist_opp, minlength=n)
    start = np.cumsum(n_hist) - n_hist
    open_entries = np.bincount(hist_opp, weights=hist_codes <= S_["negotiation"], minlength=n)
    max_k = np.minimum(n_hist - 2, open_entries - 1).astype(int)
    can = (max_k >= 1) & with_hist
    st02 = pick("ST02", is_open & can)
    st02_closed = pick("ST02", ~is_open & can, 0.05)
    back = st02 | st02_closed
    k_row = start + 1 + (rng.random(n) * np.maximum(max_k, 1)).astype(int)
    k_row = k_row[back]
    ent = h["at"]
    gap = ent[k_row + 1] - ent[k_row]
    extra_opp = np.repeat(np.flatnonzero(back), 2)
    extra_code = np.column_stack([hist_codes[k_row - 1], hist_codes[k_row]]).ravel()
    extra_at = np.column_stack([ent[k_row] + gap // 3, ent[k_row] + 2 * (gap // 3)]).ravel()
    truth["ST02"] = set(ids[st02])

    # repeat deals (same account, same product, so the same name) that happen to carry the
    # documented evidence are duplicates by the rule's definition too: computed here from the
    # docs (docs/rules.md, DQ04), without the rule's code
    truth["DQ04"] |= _chance_duplicates(opp, is_open, ids, dup_name, marked)

    keep = ~drop
    out = {
        "opp": np.r_[hist_opp[keep], extra_opp],
        "code": np.r_[hist_codes[keep], extra_code],
        "at": np.r_[ent[keep], extra_at],
    }
    opp["updated_at"] = (
        opp["updated_at"]
        .where(opp["updated_at"] >= opp["last_activity_at"], opp["last_activity_at"])
        .fillna(opp["updated_at"])
    )
    return truth, out, unmapped


def _move_current_stage(
    opp: pd.DataFrame,
    h: dict[str, np.ndarray],
    mask: np.ndarray,
    new_entered: pd.DatetimeIndex,
) -> None:
    """Set when the current stage was entered (deal and its last history row) for ``mask``."""
    hist_opp_pos = h["opp"]
    # a working-hours time that differs from deal to deal (no RNG draw, so the planted truth
    # stays the same): real people do not create deals in the same second
    jitter = (np.arange(len(opp), dtype=np.int64) * 7919) % (8 * 3600)
    entered = (
        pd.DatetimeIndex(new_entered) + pd.Timedelta(hours=9) + pd.to_timedelta(jitter, unit="s")
    )
    opp.loc[mask, "stage_entered_at"] = entered[mask]
    naive = entered.tz_convert("UTC").tz_localize(None).to_numpy().astype("datetime64[us]")
    ent = h["at"].copy()
    # the last history row of each opportunity is its current stage (rows are in path order)
    last_of_opp = np.r_[hist_opp_pos[1:] != hist_opp_pos[:-1], True]
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
    h["at"] = ent
    # created_at must not be later than the first history entry (entries rise within a deal)
    first_row = np.flatnonzero(np.r_[True, hist_opp_pos[1:] != hist_opp_pos[:-1]])
    created = opp["created_at"].dt.tz_localize(None).to_numpy().astype("datetime64[us]").copy()
    pos = hist_opp_pos[first_row]
    created[pos] = np.minimum(created[pos], ent[first_row])
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
        snap = generate_demo_org(opts.size, opts.seed, self.as_of).snapshot
        self.progress("opportunities", len(snap.opportunities), 1)
        return snap
