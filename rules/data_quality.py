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
    applies_to = "open deals from proposal on"
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

    def applies(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        late = (snap.opportunities["stage"] >= self.p["from_stage"]).fillna(False).astype(bool)
        return is_open(snap) & late

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
    applies_to = "open deals"
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

    def applies(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        return is_open(snap)

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
    applies_to = "deals with a source stage"
    name = "unmapped-stage"
    severity = "warning"
    requires = ("source_stage",)
    example = {
        "as_of": "2026-03-31",
        "record": {"id": "OPP-18", "stage": None, "source_stage": "On hold (legacy)"},
        "message": 'source stage "On hold (legacy)" is not in the stage map',
    }

    def applies(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        return snap.opportunities["source_stage"].notna()

    def evaluate(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        opp = snap.opportunities
        return (opp["stage"].isna() & opp["source_stage"].notna()).astype(bool)

    def message(self, snap: Snapshot, ctx: AuditContext, rows: pd.Index) -> pd.Series:
        src = snap.opportunities.loc[rows, "source_stage"].astype(STR)
        return 'source stage "' + src + '" is not in the stage map'


#: how close two creation times must be to count as evidence of a double entry
_CREATED_WITHIN_DAYS = 7
#: shortest normalised name a one-letter difference may match (short names collide by chance)
_TYPO_MIN_LEN = 8
_MARKER = r"(^|[^\pL\pN])copy([^\pL\pN]+of)?([^\pL\pN]|$)"
_COUNTER = r"\(\s*\d{1,2}\s*\)"


def duplicate_markers(names: pd.Series) -> pd.Series:
    """True where a name carries a copy marker: "Copy of ...", "... (copy)", "... (2)"."""
    s = names.astype(STR).str.lower()
    marked = s.str.contains(_MARKER, regex=True) | s.str.contains(_COUNTER, regex=True)
    return marked.fillna(False).astype(bool)


def normalise_name(names: pd.Series) -> pd.Series:
    """Comparable form of a deal or account name (vectorized).

    Lower-cased; the words "copy" / "copy of" and counters like "(2)" removed; every character
    that is not a letter or a digit removed (spaces, punctuation, dashes). "Acme – Platform",
    "ACME: platform (copy)", "Copy of acme platform" and "Acme Platform (2)" all become
    "acmeplatform". Empty results are NA.
    """
    # lower() and these patterns run in pyarrow (RE2); \b or casefold() would fall back to a
    # per-row Python loop
    s = names.astype(STR).str.lower()
    has_copy = s.str.contains("copy", regex=False).fillna(False).astype(bool)
    if has_copy.any():  # the word regex only where it can match
        s = s.mask(has_copy, s[has_copy].str.replace(_MARKER, " ", regex=True))
    has_paren = s.str.contains("(", regex=False).fillna(False).astype(bool)
    if has_paren.any():
        s = s.mask(has_paren, s[has_paren].str.replace(_COUNTER, " ", regex=True))
    s = s.str.replace(r"[^\pL\pN]+", "", regex=True)
    return s.where(s.str.len() > 0).astype(STR)


#: above this many same-account pairs, candidates come from symmetric deletes instead
_MAX_PAIRS = 5_000_000


def _same_account_pairs(acct: np.ndarray, name: pd.Series) -> pd.DataFrame:
    """Same as :func:`_one_letter_pairs`, by comparing every same-account pair of names.

    Cheap when accounts hold few open deals (the usual case): the pairs are enumerated per
    account and checked with numpy on fixed-width code-point arrays (common prefix + common
    suffix), in chunks.
    """
    order = np.argsort(acct, kind="stable")
    a_sorted = acct[order]
    starts = np.flatnonzero(np.r_[True, a_sorted[1:] != a_sorted[:-1]])
    sizes = np.diff(np.r_[starts, len(a_sorted)])
    code, _ = pd.factorize(name)  # equal names, equal codes: no per-pair text compare
    length = name.str.len().to_numpy(dtype=np.int64)
    # all (i, j) with i < j inside each account group, vectorized by group size; only the
    # candidates (same name, or lengths one apart) are kept from each batch, so the millions of
    # same-account pairs of big accounts never sit in memory all at once
    los, his = [], []
    for k in np.unique(sizes[sizes > 1]):  # a few distinct group sizes
        iu, ju = np.triu_indices(int(k), 1)
        g = starts[sizes == k]
        pa_ = order[(g[:, None] + iu[None, :]).ravel()]
        pb_ = order[(g[:, None] + ju[None, :]).ravel()]
        lo_k, hi_k = np.minimum(pa_, pb_), np.maximum(pa_, pb_)
        la_k, lb_k = length[lo_k], length[hi_k]
        cand = (code[lo_k] == code[hi_k]) | (
            (np.abs(la_k - lb_k) <= 1) & (np.maximum(la_k, lb_k) >= _TYPO_MIN_LEN)
        )
        los.append(lo_k[cand])
        his.append(hi_k[cand])
    if not los:
        return pd.DataFrame({"row_a": [], "row_b": [], "same_name": []})
    lo, hi = np.concatenate(los), np.concatenate(his)
    la, lb = length[lo], length[hi]
    same = code[lo] == code[hi]
    near = ~same & (np.abs(la - lb) <= 1) & (np.maximum(la, lb) >= _TYPO_MIN_LEN)
    keep = same.copy()
    idx = np.flatnonzero(near)
    if idx.size:
        # fixed-width code points only for the names in a near pair (a few percent)
        used, inv = np.unique(np.r_[lo[idx], hi[idx]], return_inverse=True)
        lo, hi = lo.copy(), hi.copy()
        lo[idx], hi[idx] = inv[: idx.size], inv[idx.size :]
        sub = name.iloc[used].reset_index(drop=True)
        fwd = sub.to_numpy(dtype=str)
        rev = sub.str[::-1].to_numpy(dtype=str)
        width = fwd.dtype.itemsize // 4
        f32 = fwd.view(np.uint32).reshape(len(fwd), width)
        r32 = rev.view(np.uint32).reshape(len(rev), width)
        step = max(1, 2_000_000 // max(width, 1))  # about 8 MiB per gathered block
        for c in range(0, idx.size, step):
            part = idx[c : c + step]
            x, y = lo[part], hi[part]
            diff = f32[x] != f32[y]
            lcp = np.where(diff.any(axis=1), diff.argmax(axis=1), width)
            rdiff = r32[x] != r32[y]
            lcs = np.where(rdiff.any(axis=1), rdiff.argmax(axis=1), width)
            lx, ly = la[part], lb[part]
            shorter = np.minimum(lx, ly)
            one = np.where(lx == ly, lcp + lcs == lx - 1, lcp + lcs >= shorter)
            # the edited character: at lcp in the longer name (either one when equal length)
            longer = np.where(lx >= ly, x, y)
            other = np.where(lx >= ly, y, x)
            pos = np.minimum(lcp, width - 1)
            ch1 = f32[longer, pos]
            ch2 = np.where(lx == ly, f32[other, pos], ch1)
            letters = _is_letter(ch1) & _is_letter(ch2)
            keep[part] = one & letters
        lo[idx], hi[idx] = used[lo[idx]], used[hi[idx]]  # back to row positions
    out = pd.DataFrame({"row_a": lo[keep], "row_b": hi[keep], "same_name": same[keep]})
    return out.reset_index(drop=True)


def _is_letter(codes: np.ndarray) -> np.ndarray:
    """Code points that are letters (the few distinct ones are looked up, not every pair)."""
    uniq, inv = np.unique(codes, return_inverse=True)
    is_l = np.array([chr(int(u)).isalpha() for u in uniq], dtype=bool)
    return is_l[inv]


def _one_letter_pairs(acct: np.ndarray, name: pd.Series) -> pd.DataFrame:
    """Pairs (row a < row b) of the same account whose names are equal or one letter apart.

    Symmetric deletes: each name is keyed by itself and by every one-character deletion; two
    names one edit apart share a key (a substitution at i: both deletions at i; an insertion:
    the longer one's deletion equals the shorter). The edit must be a letter: "Renewal 2026"
    and "Renewal 2027" are different deals, not a typo.
    """
    rows = np.arange(len(name))
    length = name.str.len().to_numpy(dtype=np.int64)
    parts = [pd.DataFrame({"row": rows, "acct": acct, "key": name.to_numpy(dtype=object),
                           "pos": -1, "ch": ""})]
    long_enough = length >= _TYPO_MIN_LEN  # a substitution needs both, an insertion the longer
    for i in range(int(length.max()) if len(length) else 0):
        ok = long_enough & (length > i)
        if not ok.any():
            break
        sub = name[ok]
        parts.append(pd.DataFrame({
            "row": rows[ok], "acct": acct[ok],
            "key": (sub.str.slice(0, i) + sub.str.slice(i + 1)).to_numpy(dtype=object),
            "pos": i, "ch": sub.str.slice(i, i + 1).to_numpy(dtype=object),
        }))
    keys = pd.concat(parts, ignore_index=True)
    m = keys.merge(keys, on=["acct", "key"], suffixes=("_a", "_b"))
    m = m[m["row_a"] < m["row_b"]]
    exact = (m["pos_a"] == -1) & (m["pos_b"] == -1)
    sub = (m["pos_a"] == m["pos_b"]) & (m["pos_a"] >= 0)
    ins = (m["pos_a"] == -1) ^ (m["pos_b"] == -1)
    m = m[exact | sub | ins].copy()
    ch = np.where(m["pos_a"] >= 0, m["ch_a"], "") + np.where(m["pos_b"] >= 0, m["ch_b"], "")
    letters = pd.Series(ch, index=m.index, dtype=STR).str.contains(r"^\pL+$", regex=True)
    same = (m["pos_a"] == -1) & (m["pos_b"] == -1)
    same |= (m["pos_a"] == m["pos_b"]) & (m["ch_a"] == m["ch_b"])
    keep = same | letters.fillna(False).astype(bool)
    out = m.loc[keep, ["row_a", "row_b"]].drop_duplicates()
    out["same_name"] = out.merge(
        m.loc[keep & same, ["row_a", "row_b"]].drop_duplicates().assign(s=True),
        on=["row_a", "row_b"], how="left")["s"].fillna(False).to_numpy(dtype=bool)
    return out.reset_index(drop=True)


class PossibleDuplicate(Rule):
    """Open deal with another open deal of the same account, a near-identical name, and evidence.

    Same account = same ``account_id``, or (when the id is empty) the same normalised
    ``account_name``. Near-identical name = equal after :func:`normalise_name` (case, spacing,
    punctuation, "copy" / "copy of" and "(2)" counters ignored), or one letter apart (a typo;
    names of at least 8 characters; a different digit is a different deal: "Renewal 2026" vs
    "Renewal 2027"). Evidence beyond the name: a copy marker in either name, or the same
    amount, or both the same close month and creation within 7 days of each other (either alone
    coincides by chance between an account's repeat deals). Accounts that buy the same thing
    again (renewals, the next phase) have look-alike names by design: without evidence they
    are not flagged. Every open deal of a matching pair is flagged, and the
    message names one other deal and the evidence. Closed deals are ignored. Open deals without
    a name or any account are not evaluable.

    Why it matters: duplicates double-count the pipeline and split the activity history, so
    two reps may work the same buyer and the forecast shows money that is there only once.

    How to fix: merge the duplicates in the CRM (keep the one with the history), or rename
    them if they really are separate deals.
    """

    code = "DQ04"
    applies_to = "open deals"
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
            "amount": 24000,
        },
        "others": [
            {"id": "OPP-20", "stage": "discovery", "account_id": "ACC-1",
             "name": "ACME platform (2)", "amount": 24000}
        ],
        "message": "possible duplicate of OPP-20 (same account, same name, copy marker, "
        "same amount)",
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

    def applies(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        return is_open(snap)

    def not_evaluable(self, snap: Snapshot, ctx: AuditContext) -> dict[str, pd.Series]:
        acct, nm = self._keys(snap)
        idx = snap.opportunities.index
        return {
            "open deal without name": nm.isna().reindex(idx, fill_value=False),
            "open deal without account": acct.isna().reindex(idx, fill_value=False),
        }

    def _pairs(self, snap: Snapshot) -> pd.DataFrame:
        """Matching pairs with evidence: ``a``, ``b`` (opportunity row positions), texts."""
        return snap.memo.get(("rule", self.code, "pairs"), lambda: self._build_pairs(snap))

    def _build_pairs(self, snap: Snapshot) -> pd.DataFrame:
        acct, nm = self._keys(snap)
        # one factorization of the account keys (codes in order of first appearance; -1 = NA)
        all_codes, _ = pd.factorize(acct)
        ok = (all_codes >= 0) & nm.notna().to_numpy()
        # only accounts with two or more comparable open deals can hold a duplicate
        count = np.bincount(all_codes[ok])
        sel = np.flatnonzero(ok)
        sel = sel[count[all_codes[sel]] > 1]
        empty = pd.DataFrame({"a": [], "b": [], "evidence": []})
        if len(sel) < 2:
            return empty
        codes = all_codes[sel]
        sizes = np.bincount(codes)
        n_pairs = int((sizes * (sizes - 1) // 2).sum())
        names = nm.iloc[sel].reset_index(drop=True)
        pairs = (_same_account_pairs(codes, names) if n_pairs <= _MAX_PAIRS
                 else _one_letter_pairs(codes, names))
        if pairs.empty:
            return empty
        rows = acct.index.to_numpy(dtype=np.int64)[sel]
        a, b = rows[pairs["row_a"].to_numpy()], rows[pairs["row_b"].to_numpy()]
        # the evidence columns only for the deals in a pair (a few percent of the rows)
        rows_in, inv = np.unique(np.r_[a, b], return_inverse=True)
        a, b = inv[: len(a)], inv[len(a) :]
        sub = snap.opportunities[["name", "amount", "close_date", "created_at"]].iloc[rows_in]
        marker = duplicate_markers(sub["name"]).to_numpy()
        amount = sub["amount"].to_numpy(dtype=float, na_value=np.nan)
        cd = sub["close_date"].to_numpy(dtype="datetime64[M]")  # NaT stays NaT
        created = sub["created_at"].dt.tz_convert(None).to_numpy(dtype="datetime64[us]")
        ev = {
            "copy marker": marker[a] | marker[b],
            "same amount": (amount[a] == amount[b]) & ~np.isnan(amount[a]),
            "same close month": ~np.isnat(cd[a]) & (cd[a] == cd[b]),
            f"created within {_CREATED_WITHIN_DAYS} days": np.abs(created[a] - created[b])
            <= np.timedelta64(_CREATED_WITHIN_DAYS, "D"),
        }
        a, b = rows_in[a], rows_in[b]
        ev = {k: np.asarray(v, dtype=bool) for k, v in ev.items()}
        close_m, created_m = list(ev.values())[2:]
        # a marker or the same amount is evidence on its own; close month and creation time
        # coincide by chance between an account's repeat deals, so they count only together
        has = ev["copy marker"] | ev["same amount"] | (close_m & created_m)
        text = np.full(len(a), "", dtype=object)
        for label, m in ev.items():
            text = np.where(m, np.where(text == "", label, text + ", " + label), text)
        name_txt = np.where(pairs["same_name"].to_numpy(), "same name", "name one letter apart")
        keep = has
        return pd.DataFrame({
            "a": a[keep], "b": b[keep], "evidence": name_txt[keep] + ", " + text[keep],
        })

    def evaluate(self, snap: Snapshot, ctx: AuditContext) -> pd.Series:
        p = self._pairs(snap)
        mask = np.zeros(len(snap.opportunities), dtype=bool)
        mask[p["a"].to_numpy(dtype=np.int64)] = True
        mask[p["b"].to_numpy(dtype=np.int64)] = True
        return pd.Series(mask, index=snap.opportunities.index)

    def message(self, snap: Snapshot, ctx: AuditContext, rows: pd.Index) -> pd.Series:
        p = self._pairs(snap)
        ids = snap.opportunities["id"].to_numpy(dtype=object)
        both = pd.DataFrame({
            "row": np.r_[p["a"].to_numpy(dtype=np.int64), p["b"].to_numpy(dtype=np.int64)],
            "other": np.r_[p["b"].to_numpy(dtype=np.int64), p["a"].to_numpy(dtype=np.int64)],
            "evidence": np.r_[p["evidence"].to_numpy(dtype=object),
                              p["evidence"].to_numpy(dtype=object)],
        })
        both["other_id"] = ids[both["other"].to_numpy()]
        both = both.sort_values(["row", "other_id"], kind="stable")
        first = both.drop_duplicates("row").set_index("row")
        more = both.groupby("row").size() - 1
        first = first.loc[rows.to_numpy(dtype=np.int64)]
        n_more = more.loc[rows.to_numpy(dtype=np.int64)].to_numpy()
        extra = np.where(n_more > 0, " and " + n_more.astype(str).astype(object) + " more", "")
        return pd.Series(
            "possible duplicate of " + first["other_id"].to_numpy(dtype=object) + extra
            + " (same account, " + first["evidence"].to_numpy(dtype=object) + ")",
            index=rows,
            dtype=STR,
        )
