"""Bulk API 2.0 query jobs: create, poll, stream CSV result pages into frames.

Done on the transport's authenticated request path rather than ``sf.bulk2.X.query`` because the
library polls with an un-injectable ``time.sleep`` for up to 24 hours and does not log in again
on an expired session; here polling is bounded (``bulk_timeout_s``), sleeps through the injected
sleep, and every request is counted and retried like any other.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import pandas as pd

from auditor.errors import ConnectorError
from connectors.salesforce.transport import SalesforceTransport
from connectors.streams import Pages

DONE, FAILED = "JobComplete", ("Failed", "Aborted")


def bulk_query_frames(
    t: SalesforceTransport, soql: str, what: str, *, include_deleted: bool = False,
) -> Iterator[pd.DataFrame]:
    """Run one Bulk 2.0 query job and yield each result page as a frame of strings."""
    opts = t.opts
    base = t.sf.bulk2_url + "query"
    body = {"operation": "queryAll" if include_deleted else "query", "query": soql,
            "columnDelimiter": "COMMA", "lineEnding": "LF"}
    job = t.raw_json(f"{what}: create Bulk 2.0 job", "POST", base, json=body)
    job_id = job.get("id")
    if not job_id:
        raise ConnectorError(f"Salesforce {what}: Bulk 2.0 job creation returned no job id")
    if not re.fullmatch(r"[A-Za-z0-9]{15,18}", str(job_id)):  # it goes into URL paths
        raise ConnectorError(
            f"Salesforce {what}: Bulk 2.0 job creation returned {str(job_id)[:40]!r}, which is "
            "not a Salesforce id")

    waited, delay = 0.0, opts.bulk_poll_s
    while True:
        info = t.raw_json(f"{what}: poll Bulk 2.0 job {job_id}", "GET", f"{base}/{job_id}")
        state = info.get("state")
        if state == DONE:
            break
        if state in FAILED:
            raise ConnectorError(
                f"Salesforce {what}: Bulk 2.0 job {job_id} {state}: "
                f"{info.get('errorMessage') or 'no error message'}")
        if waited >= opts.bulk_timeout_s:
            raise ConnectorError(
                f"Salesforce {what}: Bulk 2.0 job {job_id} still {state} after "
                f"{waited:.0f}s (source.bulk_timeout_s = {opts.bulk_timeout_s:g})")
        t.sleep(delay)
        waited += delay
        delay = min(delay * 2, 30.0)

    locator = ""
    pages = Pages(what, "Salesforce", where=f"Salesforce {{what}}: Bulk 2.0 results page {{page}} "
                                             f"of job {job_id} ",
                  empty="is empty but not the last one; stopped rather than pass on a partial "
                        "pull",
                  repeat="repeats the locator of page {first}; stopped rather than page in a loop")
    while True:
        page = pages.page + 1
        params: dict[str, str | int] = {"maxRecords": opts.bulk_page_size}
        if locator:
            params["locator"] = locator
        resp = t.raw(f"{what}: Bulk 2.0 results page {page}", "GET",
                     f"{base}/{job_id}/results", params=params,
                     headers={"Accept": "text/csv"})
        ctype = resp.headers.get("Content-Type", "")
        if ctype and "csv" not in ctype.lower():  # e.g. a proxy's HTML error page
            raise ConnectorError(
                f"Salesforce {what}: Bulk 2.0 results page {page} of job {job_id} is not CSV "
                f"(Content-Type {ctype.split(';')[0]}); stopped")
        try:
            text = resp.content.decode("utf-8-sig").replace("\x00", "")
            # every value as text, empty = missing: normalise parses by field kind
            frame = (pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
                     if text.strip() else pd.DataFrame())
        except (UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise ConnectorError(
                f"Salesforce {what}: Bulk 2.0 results page {page} of job {job_id} is not a "
                f"readable UTF-8 CSV ({type(exc).__name__}); stopped") from None
        announced = resp.headers.get("Sforce-NumberOfRecords")
        if announced is not None and announced.isdigit() and int(announced) != len(frame):
            raise ConnectorError(
                f"Salesforce {what}: Bulk 2.0 results page {page} of job {job_id} announced "
                f"{announced} records but {len(frame)} could be read from its CSV")
        pages.turn()
        locator = resp.headers.get("Sforce-Locator", "")
        nxt = pages.next(None if not locator or locator == "null" else locator, frame)
        if len(frame):
            yield frame
        if nxt is None:
            return
