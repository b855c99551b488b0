"""Owner digests in bulk: every owner's deal list built once, vectorized, for all owners.

A digest is an owner's flagged deals, worst first (worst severity, most findings, largest
amount, then id), each with its findings (worst first) and how to fix them. Rendering that list
through a Jinja macro once per owner cost 13 ms per owner (94 s for the 7,000 owners of a
million-opportunity org). Here the rows are sorted once for all owners (integer codes, no text
grouping), every value is escaped for its format once per distinct value (messages, rules,
stages and amounts repeat; names, accounts and URLs take a C-speed fast path when nothing needs
changing), and each owner's list is one ``"".join`` over its slice. The templates
(``digest.html.j2`` / ``digest.txt.j2``) still lay out the page around it; they get the list
as ``deal_rows`` (HTML, already escaped) and ``deal_list`` (text).

The rows are byte for byte what ``_macros.html.j2`` ``deal_rows(deals, show_owner=False)`` and
``_macros.txt.j2`` ``deal_list(deals, show_owner=False)`` render for the same deals
(tests/reports/test_digests_bulk.py compares them owner by owner).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from markupsafe import Markup, escape

from auditor.results import SEVERITY_RANK, AuditRun
from reports.context import listed_facts, owner_table, row_currency, score_band
from reports.format import human, money, oneline, sentence, stage_label
from reports.vector import (
    NO_HTML_SPECIAL,
    PLAIN_HUMAN,
    PLAIN_LINE,
    escape_text,
    map_text,
    safe_urls,
)

_TABLE_HEAD = (
    '<table class="data cards" width="100%" cellpadding="0" cellspacing="0">\n'
    '<tr class="head"><th>Deal</th><th>Stage</th><th class="num">Amount</th>'
    "<th>What is wrong, and how to fix it</th></tr>\n"
)
_TABLE_TAIL = "</table>\n"


def _per_code(values: pd.Series, fn: Callable[[Any], str]) -> np.ndarray:
    """``fn`` of each value, called once per distinct value (messages, rules, stages repeat)."""
    codes, uniques = pd.factorize(values.astype(object), use_na_sentinel=True)
    table = np.array([fn(u) for u in uniques] + [fn(None)], dtype=object)
    return table[codes]  # the sentinel -1 picks fn(None), the last entry


@dataclass
class DigestRows:
    """Every owner's digest rows, in owner order (sorted owner ids)."""

    owners: list[str]
    total: np.ndarray  #: findings per owner
    flagged: np.ndarray  #: flagged deals per owner
    shown: np.ndarray  #: deals listed per owner (at most the limit)
    new: np.ndarray | None  #: new findings among the listed deals (None without history)
    html: np.ndarray  #: pieces of the HTML deal rows, owners one after another
    text: np.ndarray  #: pieces of the text deal list
    html_bounds: np.ndarray  #: owner i's HTML pieces are html[bounds[i]:bounds[i + 1]]
    text_bounds: np.ndarray

    def index(self) -> dict[str, int]:
        return {o: i for i, o in enumerate(self.owners)}

    def deal_rows(self, i: int) -> Markup:
        """Owner ``i``'s HTML deal table (every value already escaped)."""
        if not self.shown[i]:
            return Markup("")
        a, b = self.html_bounds[i], self.html_bounds[i + 1]
        return Markup(_TABLE_HEAD + "".join(self.html[a:b]) + _TABLE_TAIL)

    def deal_list(self, i: int) -> str:
        a, b = self.text_bounds[i], self.text_bounds[i + 1]
        return "".join(self.text[a:b])


def digest_rows(run: AuditRun, owners: Iterable[str] | None = None) -> DigestRows:
    """The digest rows of ``owners`` (default: every owner with findings), in one pass."""
    v = run.result.violations
    limit = run.config.report.max_deals
    owner_key = v["owner_id"]
    keep_rows = owner_key.notna().to_numpy()
    if owners is not None:
        wanted = pd.Index([str(o) for o in owners])
        keep_rows = keep_rows & owner_key.astype(str).isin(wanted).to_numpy()
    vpos = np.flatnonzero(keep_rows)
    sub = v.iloc[vpos]
    n = len(sub)
    ocodes, ouniq = pd.factorize(sub["owner_id"].astype(str), sort=True)
    owner_ids = [str(o) for o in ouniq]
    n_owners = len(owner_ids)
    deal = sub["opportunity_id"].astype(str)
    dcodes, _ = pd.factorize(deal, sort=True)
    rank = sub["severity"].astype(str).map(SEVERITY_RANK).fillna(1).astype(int).to_numpy()
    amount = sub["amount"].astype("Float64").fillna(0.0).astype(float).to_numpy()
    # per deal: worst severity, number of findings, largest amount (over all its findings)
    g = pd.DataFrame({"d": dcodes, "r": rank, "a": amount}).groupby("d", sort=False)
    deal_rank = g["r"].transform("min").to_numpy()
    deal_n = g["r"].transform("size").to_numpy()
    deal_amount = g["a"].transform("max").to_numpy()
    pos = np.arange(n)
    order = np.lexsort((pos, rank, dcodes, -deal_amount, -deal_n, deal_rank, ocodes))
    o = ocodes[order]
    d = dcodes[order]
    deal_start = np.ones(n, dtype=bool)
    owner_start = np.ones(n, dtype=bool)
    if n:
        owner_start[1:] = o[1:] != o[:-1]
        deal_start[1:] = owner_start[1:] | (d[1:] != d[:-1])
    deal_seq = np.cumsum(deal_start) - 1
    first_deal = np.maximum.accumulate(np.where(owner_start, deal_seq, 0))
    deal_in_owner = deal_seq - first_deal
    kept = deal_in_owner < limit
    total = np.bincount(o, minlength=n_owners)
    flagged = np.bincount(o[deal_start], minlength=n_owners)
    shown = np.minimum(flagged, limit)

    rows = sub.iloc[order[kept]]
    rows_pos = vpos[order[kept]]
    ko, kd_start, k_index = o[kept], deal_start[kept], deal_in_owner[kept]
    new_mask = np.zeros(len(rows), dtype=bool)
    new_count = None
    if run.history is not None:
        fps = {str(i.get("fingerprint")) for i in run.history.new_items}
        new_mask = rows["fingerprint"].astype(str).isin(fps).to_numpy()
        new_count = np.bincount(ko, weights=new_mask, minlength=n_owners).astype(int)

    html_f, text_f = _finding_pieces(run, rows, new_mask)
    heads = rows[kd_start]
    html_h, text_h = _deal_pieces(run, heads, rows_pos[kd_start], k_index[kd_start])
    html, html_bounds = _interleave(html_h, html_f, "</td>\n</tr>\n", kd_start, ko, n_owners)
    text, text_bounds = _interleave(text_h, text_f, "\n", kd_start, ko, n_owners)
    return DigestRows(
        owner_ids, total, flagged, shown, new_count, html, text, html_bounds, text_bounds
    )


def _finding_pieces(run: AuditRun, rows: pd.DataFrame, new: np.ndarray) -> tuple[Any, Any]:
    """Per finding: its HTML paragraph and its text lines."""
    docs = {r.code: r.describe() for r in run.result.rules}

    def fix_of(code: Any) -> str:
        return sentence(human(docs.get(code, {}).get("fix", ""))) if code is not None else ""

    sev = rows["severity"]
    code = rows["rule_code"]
    msg = pd.Series(map_text(rows["message"], human, PLAIN_HUMAN), dtype=object)
    fix = _per_code(code, fix_of)
    sev_html = _per_code(sev, lambda s: f'<p><span class="sev sev-{escape(s)}">{escape(s)}</span> ')
    msg_html = map_text(msg, escape_text, NO_HTML_SPECIAL)
    fix_html = _per_code(
        code,
        lambda c: f'<br><span class="fix">Fix: {escape(f)}</span>' if (f := fix_of(c)) else "",
    )
    new_html = np.where(new, ' <span class="new">NEW</span>', "").astype(object)
    html = sev_html + msg_html + new_html + fix_html + "</p>"
    sev_text = _per_code(sev, lambda s: f"   - [{s}] ")
    code_text = _per_code(code, lambda c: f"{c} ")
    msg_text = map_text(msg, oneline, PLAIN_LINE)
    fix_text = np.where(fix != "", "     Fix: " + fix + "\n", "").astype(object)
    new_text = np.where(new, " (NEW)\n", "\n").astype(object)
    text = sev_text + code_text + msg_text + new_text + fix_text
    return html, text


def _deal_pieces(
    run: AuditRun, heads: pd.DataFrame, vpos: np.ndarray, index: np.ndarray
) -> tuple[Any, Any]:
    """Per listed deal (its first finding's row, at ``vpos`` in the violations): the HTML row
    up to the findings cell, and the text header lines (``index``: the deal's place in its
    owner's list)."""
    did = heads["opportunity_id"].astype(str)
    name = heads["opportunity_name"].astype(object)
    name = name.where(name.notna() & (name != ""), did.astype(object))  # ``name or id``
    account = heads["account_name"]
    has_account = (account.notna() & (account.astype(object) != "")).to_numpy()
    url = heads["url"]
    cur = row_currency(run).to_numpy()[vpos]  # the deal's currency (None: unknown)
    amount = heads["amount"].astype("Float64")
    money_in = pd.Series(
        list(zip(amount.to_numpy(dtype=object, na_value=None), cur, strict=True)),
        index=heads.index, dtype=object,
    )

    def money_of(pair: Any) -> str:
        return money(*(pair if pair is not None else (None, None)))

    money_t = _per_code(money_in, money_of)
    stage = heads["stage"].astype(object).where(heads["stage"].notna(), None)
    stage_t = _per_code(stage.map(lambda s: None if s is None else str(s)), stage_label)

    name_html = map_text(name, escape_text, NO_HTML_SPECIAL)
    safe = safe_urls(url)
    href = pd.Series(safe, dtype=object)
    href_html = map_text(href, escape_text, NO_HTML_SPECIAL)
    link = np.where(safe != "", '<a href="' + href_html + '">' + name_html + "</a>", name_html)
    acct_html = map_text(account, escape_text, NO_HTML_SPECIAL)
    acct_html = np.where(has_account, '<br><span class="muted">' + acct_html + "</span>", "")
    money_html = _per_code(pd.Series(money_t, dtype=object), lambda t: str(escape(t)))
    stage_html = _per_code(pd.Series(stage_t, dtype=object), lambda t: str(escape(t)))
    html = (
        "<tr>\n<td><strong>" + link.astype(object) + "</strong>" + acct_html.astype(object)
        + '</td>\n<td><span class="lbl">Stage: </span>' + stage_html
        + '</td>\n<td class="num"><span class="lbl">Amount: </span>' + money_html
        + '</td>\n<td class="fixcol">'
    )

    name_t = map_text(name, oneline, PLAIN_LINE)
    acct_t = map_text(account, oneline, PLAIN_LINE)
    acct_t = np.where(has_account, " (" + acct_t + ")", "").astype(object)
    url_t = np.where(safe != "", "   " + safe + "\n", "").astype(object)
    num = np.array([f"{i + 1}. " for i in range(int(index.max()) + 1 if len(index) else 0)],
                   dtype=object)
    text = (
        num[index] + name_t + acct_t + " | " + stage_t + " | " + money_t + "\n" + url_t
    )
    return html, text


def _interleave(
    heads: np.ndarray, findings: np.ndarray, tail: str, deal_start: np.ndarray,
    owner: np.ndarray, n_owners: int,
) -> tuple[np.ndarray, np.ndarray]:
    """[head, finding, finding, tail, head, ...] in row order, and each owner's bounds."""
    n_f, n_d = len(findings), len(heads)
    out = np.empty(n_f + 2 * n_d, dtype=object)
    deal_no = np.cumsum(deal_start) - 1  # per finding: its deal's number
    out[np.arange(n_f) + 2 * deal_no + 1] = findings
    starts = np.flatnonzero(deal_start)
    out[starts + 2 * np.arange(n_d)] = heads
    ends = np.r_[starts[1:], n_f] if n_d else starts
    out[ends + 2 * np.arange(n_d) + 1] = tail
    # pieces before owner i: its rows + 2 per deal before it
    rows_before = np.searchsorted(owner, np.arange(n_owners + 1), side="left")
    deals_before = np.r_[0, np.cumsum(np.bincount(owner[deal_start], minlength=n_owners))]
    return out, rows_before + 2 * deals_before


# -- per owner ----------------------------------------------------------------------------
def digest_contexts(
    run: AuditRun, owners: Iterable[str] | None = None
) -> Iterator[dict[str, Any]]:
    """The template context of each owner's digest: every owner with findings (sorted by id),
    or those of ``owners`` (an owner without findings gets the "nothing to fix" digest)."""
    rows = digest_rows(run, owners)
    keys = list(dict.fromkeys(str(o) for o in owners)) if owners is not None else rows.owners
    at = rows.index()
    table = owner_table(run).reindex(keys)
    names = table["name"].tolist()
    emails = table["email"].tolist()
    details = run.metrics.hygiene_score.owners
    shared = {
        "title": run.config.report.title,
        "facts": listed_facts(run),
        "notes": list(run.result.notes),
    }
    no_history = run.history is None
    for oid, name, email in zip(keys, names, emails, strict=True):
        detail = details.get(oid)
        score = detail.score if detail else None
        i = at.get(oid)
        yield {
            **shared,
            "score_basis": detail.basis if detail else None,
            "owner_id": oid,
            "owner": oneline(name if isinstance(name, str) else None) or oid,
            "email": email if isinstance(email, str) else None,
            "score": score,
            "band": score_band(score),
            "total": 0 if i is None else int(rows.total[i]),
            "flagged_deals": 0 if i is None else int(rows.flagged[i]),
            # None without history: "0 new" would claim a comparison that was not made
            "new": None if no_history else 0 if i is None else int(rows.new[i]),
            "deals_shown": 0 if i is None else int(rows.shown[i]),
            "deal_rows": Markup("") if i is None else rows.deal_rows(i),
            "deal_list": "" if i is None else rows.deal_list(i),
        }
