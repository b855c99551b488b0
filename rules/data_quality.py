"""DQ rules: is the data the process depends on there and trustworthy?"""

from __future__ import annotations

import numpy as np
import pandas as pd

from auditor.context import AuditContext
from auditor.rule import Param, Rule, is_open
from auditor.snapshot import Snapshot
from auditor.stages import STAGES

STR = "string[pyarrow]"


class MissingAmount(Rule):
    """Open deal at proposal or later with no amount (or an amount of zero or less).

    Open deals only, from ``from_stage`` (default proposal) on; won deals without an amount are
    CL02's business. Unmapped stages (NA) are not judged.

    Why it matters: from proposal on, the deal is in the weighted forecast and the pipeline
    coverage. Without an amount it counts as nothing, so the forecast is understated and nobody
    notices the gap.

    How to fix: enter the proposed amount (and currency) on the opportunity.
    """

    code = "DQ01"
    name = "missing-amount"
    severity = "error"
    requires = ("stage", "amount")
    params = {
        "from_stage": Param(str, "proposal", "first stage that needs an amount", choices=STAGES)
    }
    example = {
        "as_of": "2026-03-31",
        "record": {"id": "OPP-16", "stage": "proposal", "amount": None},
        "message": "open in proposal with no amount",
    }

    def evaluate(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        opp = snap.opportunities
        late = (opp["stage"] >= self.p["from_stage"]).fillna(False).astype(bool)
        no_amount = opp["amount"].isna() | (opp["amount"] <= 0).fillna(False)
        return is_open(snap) & late & no_amount.astype(bool)

    def message(self, snap: Snapshot, ctx: AuditContext, rows: pd.Index) -> pd.Series:
        opp = snap.opportunities.loc[rows, ["stage", "amount"]]
        stage = opp["stage"].astype("string")
        what = (" with amount " + opp["amount"].astype("string")).fillna(" with no amount")
        return "open in " + stage + what


class OwnerMissingOrInactive(Rule):
    """Open deal with no owner, an owner who is inactive, or an owner the CRM does not know.

    Owners come from the snapshot's owners table: ``active`` false = inactive (NA = assumed
    active). An owner id not in a non-empty owners table is "unknown" (often a deleted or
    archived user); with an empty owners table only a missing owner is judged.

    Why it matters: a deal owned by nobody — or by someone who has left — is followed up by
    nobody. It still counts in the pipeline, and the buyer is waiting.

    How to fix: assign the deal to an active rep (and tell the buyer who their contact is).
    """

    code = "DQ02"
    name = "owner-missing-or-inactive"
    severity = "error"
    requires = ("owner_id",)
    example = {
        "as_of": "2026-03-31",
        "record": {"id": "OPP-17", "stage": "discovery", "owner_id": "U7"},
        "owners": [{"id": "U7", "name": "Dana Berg", "active": False}],
        "message": "owner Dana Berg (U7) is inactive",
    }

    def _state(self, snap: Snapshot) -> pd.DataFrame:
        opp = snap.opportunities
        owners = snap.owners.drop_duplicates("id")
        owner = opp["owner_id"]
        # look up the few distinct owner ids, not every row
        codes, uniques = pd.factorize(owner)
        pos_u = pd.Index(owners["id"].astype(object)).get_indexer(np.asarray(uniques, dtype=object))
        pos = np.where(codes >= 0, pos_u[codes] if len(pos_u) else -1, -1)
        known = pos >= 0
        active = owners["active"].to_numpy(dtype=object, na_value=None)
        inactive = np.zeros(len(opp), dtype=bool)
        inactive[known] = active[pos[known]] == False  # noqa: E712 - NA (None) is not False
        names = pd.array(owners["name"], dtype=STR).take(np.where(known, pos, -1), allow_fill=True)
        missing = owner.isna().to_numpy()
        unknown = ~missing & ~known & (owners["id"].notna().sum() > 0)
        return pd.DataFrame(
            {"missing": missing, "unknown": unknown, "inactive": inactive, "name": names},
            index=opp.index,
        )

    def evaluate(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        st = self._state(snap)
        return is_open(snap) & (st["missing"] | st["unknown"] | st["inactive"])

    def message(self, snap: Snapshot, ctx: AuditContext, rows: pd.Index) -> pd.Series:
        st = self._state(snap).loc[rows]
        oid = snap.opportunities.loc[rows, "owner_id"].astype(STR).fillna("")
        who = (st["name"] + " (" + oid + ")").fillna(oid)
        msg = pd.Series("no owner", index=rows, dtype=STR)
        msg = msg.mask(st["unknown"], "owner " + oid + " is not a known user")
        msg = msg.mask(st["inactive"], "owner " + who + " is inactive")
        return msg


class UnmappedStage(Rule):
    """Deal in a source stage that the stage map does not know.

    Flagged when the common ``stage`` is empty while ``source_stage`` has a value: the stage
    map has no entry for it. Open and closed deals alike. Other stage rules cannot judge these
    deals, so each one is a blind spot in the audit.

    Why it matters: a stage the audit cannot place is a stage the process does not define.
    Every deal in it escapes the stage rules and the stage metrics.

    How to fix: add the source stage to the stage map in the config (``source.stage_map``),
    or move the deals out of the retired stage in the CRM.
    """

    code = "DQ03"
    name = "unmapped-stage"
    severity = "warning"
    requires = ("source_stage",)
    example = {
        "as_of": "2026-03-31",
        "record": {"id": "OPP-18", "stage": None, "source_stage": "On hold (legacy)"},
        "message": 'source stage "On hold (legacy)" is not in the stage map',
    }

    def evaluate(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        opp = snap.opportunities
        return (opp["stage"].isna() & opp["source_stage"].notna()).astype(bool)

    def message(self, snap: Snapshot, ctx: AuditContext, rows: pd.Index) -> pd.Series:
        src = snap.opportunities.loc[rows, "source_stage"].astype(STR)
        return 'source stage "' + src + '" is not in the stage map'


def normalise_name(names: pd.Series) -> pd.Series:
    """Comparable form of a deal or account name (vectorized).

    Lower-cased; the words "copy" / "copy of" removed; every character that is not a letter or
    a digit removed (spaces, punctuation, dashes). "Acme – Platform", "ACME: platform (copy)"
    and "Copy of acme platform" all become "acmeplatform". Empty results are NA.
    """
    # lower() and these patterns run in pyarrow (RE2); \b or casefold() would fall back to a
    # per-row Python loop
    s = names.astype(STR).str.lower()
    has_copy = s.str.contains("copy", regex=False).fillna(False).astype(bool)
    if has_copy.any():  # the word regex only where it can match
        cleaned = s[has_copy].str.replace(
            r"(^|[^\pL\pN])copy([^\pL\pN]+of)?([^\pL\pN]|$)", " ", regex=True
        )
        s = s.mask(has_copy, cleaned)
    s = s.str.replace(r"[^\pL\pN]+", "", regex=True)
    return s.where(s.str.len() > 0).astype(STR)


class PossibleDuplicate(Rule):
    """Open deal with another open deal for the same account and a near-identical name.

    Same account = same ``account_id``, or (when the id is empty) the same normalised
    ``account_name``. Near-identical name = equal after :func:`normalise_name` (case, spacing,
    punctuation and "copy" markers ignored). Every open deal of such a group is flagged, and
    the message names one other member. Closed deals are ignored. Open deals without a name or
    any account are not evaluable.

    Why it matters: duplicates double-count the pipeline and split the activity history, so
    two reps may work the same buyer and the forecast shows money that is there only once.

    How to fix: merge the duplicates in the CRM (keep the one with the history), or rename
    them if they really are separate deals.
    """

    code = "DQ04"
    name = "possible-duplicate"
    severity = "warning"
    requires = ("name",)
    example = {
        "as_of": "2026-03-31",
        "record": {
            "id": "OPP-19",
            "stage": "solution",
            "account_id": "ACC-1",
            "name": "Acme – Platform",
        },
        "others": [
            {"id": "OPP-20", "stage": "discovery", "account_id": "ACC-1", "name": "ACME platform"}
        ],
        "message": "possible duplicate of OPP-20 (same account, same name)",
    }

    def _keys(self, snap: Snapshot) -> tuple[pd.Series, pd.Series]:
        """(account key, normalised name) of the open deals; NA where not comparable."""

        def build() -> tuple[pd.Series, pd.Series]:
            opp = snap.opportunities.loc[is_open(snap), ["account_id", "account_name", "name"]]
            acct = ("id:" + opp["account_id"].astype(STR)).astype(STR)
            by_name = acct.isna() & opp["account_name"].notna()
            if by_name.any():  # normalise account names only where the id is missing
                names = "name:" + normalise_name(opp.loc[by_name, "account_name"])
                acct = acct.mask(by_name, names)
            return acct, normalise_name(opp["name"])

        return snap.memo.get(("rule", self.code, "keys"), build)

    def prepare(self, snap: Snapshot, ctx: AuditContext) -> None:
        # normalising every open deal's name is most of this rule's cost: do it off the
        # main thread (Arrow's regex releases the GIL)
        self._keys(snap)

    def not_evaluable(self, snap: Snapshot, ctx: AuditContext) -> dict[str, pd.Series]:
        acct, nm = self._keys(snap)
        idx = snap.opportunities.index
        return {
            "open deal without name": nm.isna().reindex(idx, fill_value=False),
            "open deal without account": acct.isna().reindex(idx, fill_value=False),
        }

    def _groups(self, snap: Snapshot) -> pd.DataFrame:
        """Open deals that share (account, name) with another: group size and a neighbour id.

        Hash-based (factorize) over all open deals; only the few duplicates are sorted.
        Computed once per snapshot: evaluate and message both need it.
        """
        return snap.memo.get(("rule", self.code, "groups"), lambda: self._build_groups(snap))

    def _build_groups(self, snap: Snapshot) -> pd.DataFrame:
        acct, nm = self._keys(snap)
        ok = acct.notna() & nm.notna()
        # hash each part once (pyarrow), then combine the two codes into one int64 key
        acct_code, _ = pd.factorize(acct[ok])
        nm_code, nm_uniques = pd.factorize(nm[ok])
        codes, _ = pd.factorize(acct_code.astype(np.int64) * (len(nm_uniques) + 1) + nm_code)
        size = np.bincount(codes)[codes] if len(codes) else codes
        many = size > 1
        dup = acct[ok].index[many]
        sub = pd.DataFrame(
            {
                "k": codes[many],
                "size": size[many],
                "id": snap.opportunities["id"].to_numpy(dtype=object)[dup.to_numpy(dtype=np.int64)],
            },
            index=dup,
        ).sort_values(["k", "id"], kind="stable")
        if sub.empty:
            return sub.assign(other=pd.Series(dtype=object))
        k = sub["k"].to_numpy()
        ids = sub["id"].to_numpy(dtype=object)
        same_prev = np.r_[False, k[1:] == k[:-1]]
        prev_id = np.r_[[None], ids[:-1]]
        next_id = np.r_[ids[1:], [None]]
        sub["other"] = np.where(same_prev, prev_id, next_id)
        return sub

    def evaluate(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        mask = np.zeros(len(snap.opportunities), dtype=bool)
        mask[self._groups(snap).index.to_numpy(dtype=np.int64)] = True
        return pd.Series(mask, index=snap.opportunities.index)

    def message(self, snap: Snapshot, ctx: AuditContext, rows: pd.Index) -> pd.Series:
        g = self._groups(snap).loc[rows]
        more = g["size"] - 2
        extra = np.where(more > 0, " and " + more.astype(str).astype(object) + " more", "")
        return pd.Series(
            "possible duplicate of "
            + g["other"].astype(object)
            + extra
            + " (same account, same name)",
            index=rows,
            dtype=STR,
        )
