"""One audit run end to end: pull → audit → metrics → history → reports → delivery.

Each phase reads only what the one before produced. Phase timings are kept for the run facts and
the benchmarks. A run that fails part-way raises; nothing is delivered for it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from auditor.config import AuditConfig
from auditor.context import AuditContext
from auditor.engine import run_audit
from auditor.errors import ConfigError, DiskFullError, OutputError
from auditor.files import is_disk_full
from auditor.metrics import compute_metrics
from auditor.results import AuditRun, HistoryDiff, TrendPoint
from auditor.snapshot import Snapshot

if TYPE_CHECKING:
    from auditor.history import HistoryStore
    from connectors.base import Connector

log = logging.getLogger(__name__)


def pull(config: AuditConfig, since: datetime | None = None, as_of: date | None = None) -> Snapshot:
    from connectors.registry import build_connector

    return pull_from(build_connector(config), config, since=since, as_of=as_of)


def pull_from(
    connector: Connector,
    config: AuditConfig,
    since: datetime | None = None,
    as_of: date | None = None,
) -> Snapshot:
    if hasattr(connector, "as_of"):
        connector.as_of = as_of or config.audit.as_of  # the demo org is built "as of" that day
    return connector.pull(since=since).validate()


def audit_snapshot(
    snap: Snapshot, config: AuditConfig, as_of: date | None = None, started: float | None = None
) -> AuditRun:
    """Audit an already pulled Snapshot (rules + metrics)."""
    t = time.perf_counter()
    started_at = datetime.now(UTC)
    result = run_audit(snap, config, as_of=as_of)
    t_rules = time.perf_counter()
    metrics = compute_metrics(snap, result, result.context, config.metrics)
    t_metrics = time.perf_counter()
    run = AuditRun(config, snap, result, metrics, started_at)
    run.timings["rules"] = t_rules - t
    run.timings["metrics"] = t_metrics - t_rules
    return run


def execute(
    config: AuditConfig,
    *,
    out_dir: Path | None = None,
    as_of: date | None = None,
    full: bool = False,
    deliver: bool = True,
    dry_run: bool = False,
) -> AuditRun:
    """Run the configured audit, write the reports, record the run and deliver the reports.

    Before anything is pulled, the output folder is checked and a fresh staging folder is
    created beside it (``auditor.app.publish``); with history, the run lock of the source is
    taken (one run at a time per store and source; waits ``history.lock_wait_s``).

    With history enabled (the default): the run is recorded as ``running`` first; the pull is
    incremental when the connector supports it and a stored snapshot exists (``full`` forces a
    full pull); sources without stage history get the history observed between runs; the diff
    with the last successful run goes into ``run.history``; everything is stored in one
    transaction. A failure before that commit marks the run ``failed`` and re-raises; nothing is
    delivered for it.

    Every file is written into the staging folder; after the commit the e-mails go out (dry
    run: ``outbox/`` in the staging folder), the final run.json and ``manifest.json`` are
    written, and the staging folder is swapped in whole. A run that fails, is killed or finds
    the disk full leaves the previous output folder as it was (disk full: DiskFullError).

    Delivery outcomes land in ``run.delivery`` (one dict per recipient) and in run.json; a
    failed recipient does not raise (the CLI turns it into exit status 4).
    """
    from auditor.app.publish import OutputFolder
    from auditor.config import default_config
    from auditor.history import HistoryStore, adopt_demo_history, history_path
    from connectors.registry import build_connector

    started_at = datetime.now(UTC)
    folder = OutputFolder(out_dir or config.resolve(config.report.out_dir))
    connector = build_connector(config)
    day = AuditContext.create(as_of or config.audit.as_of, config.audit.timezone).as_of.date()
    folder.check()
    path = history_path(config, folder.path)
    if path is not None:
        _check_history_path(path, folder.path, config)
    staging = folder.prepare()  # fails fast, before the pull, on an unusable output folder
    store: HistoryStore | None = None
    try:
        if path is not None:
            if config.origin == default_config().origin:
                adopt_demo_history(path, folder.path)
            store = HistoryStore(path)
        lock = (
            store.run_lock(connector.source_name, config.history.lock_wait_s)
            if store is not None
            else contextlib.nullcontext()
        )
        with lock:
            run = _execute_locked(
                config, connector, store, staging, day, full, started_at, deliver, dry_run
            )
            try:
                folder.write_manifest(_manifest_info(run))
                folder.publish()
            except OSError as exc:
                if is_disk_full(exc):
                    raise
                stored = f"run {run.run_id} is stored; " if run.run_id is not None else ""
                raise OutputError(
                    f"output folder {folder.path}: could not publish the new reports: "
                    f"{exc.strerror or exc}; {stored}the folder still holds the previous run"
                ) from None
    except BaseException as exc:
        folder.discard()
        if is_disk_full(exc):
            raise DiskFullError(
                f"the disk is full: {exc.filename or staging}: {exc.strerror}. Nothing was "
                f"published; the previous reports in {folder.path} are unchanged. Free some "
                "space and run again"
            ) from None
        raise
    finally:
        if store is not None:
            store.close()
    run.outputs = [folder.path / p.relative_to(staging) for p in run.outputs]
    return run


def _execute_locked(
    config: AuditConfig,
    connector: Connector,
    store: HistoryStore | None,
    staging: Path,
    day: date,
    full: bool,
    started_at: datetime,
    deliver: bool,
    dry_run: bool,
) -> AuditRun:
    """The run itself, holding the run lock; every file goes into ``staging``."""
    from auditor.history.frames import snapshot_to_blobs
    from reports.render import write_reports

    run_id: int | None = None
    encoder: ThreadPoolExecutor | None = None
    blobs_future: Future[dict[str, Any]] | None = None
    try:
        if store is not None:
            run_id = store.begin_run(
                connector.source_name,
                connector.type_name,
                started_at=started_at,
                as_of=day.isoformat(),
                config_origin=config.origin,
            )
        t0 = time.perf_counter()
        pull_started_at = datetime.now(UTC)
        snap = _pull_maybe_incremental(connector, config, store, day, full)
        pulled = snap
        derived_rows = None
        if store is not None and not snap.meta.has_stage_history:
            derived_rows, snap = _observe_history(store, snap, day, config.audit.timezone)
        t1 = time.perf_counter()
        run = audit_snapshot(snap, config, as_of=day)
        run.timings = {"pull": t1 - t0, **run.timings}
        run.started_at = started_at
        run.run_id = run_id
        if store is not None and run_id is not None:
            th = time.perf_counter()
            run.finished_at = datetime.now(UTC)
            run.history = _history_diff(store, run, config.history.trend_runs)
            run.timings["history_diff"] = time.perf_counter() - th
        if store is not None and run_id is not None:
            # Parquet-encode the snapshot for the store on another core while the reports
            # (pure-Python templating) render: pyarrow releases the GIL
            encoder = ThreadPoolExecutor(max_workers=1)
            blobs_future = encoder.submit(snapshot_to_blobs, pulled)
        t2 = time.perf_counter()
        run.outputs = write_reports(run, staging)
        run.timings["reports"] = time.perf_counter() - t2
        run.finished_at = datetime.now(UTC)
        if store is not None and run_id is not None:
            tc = time.perf_counter()
            store.commit_run(
                run_id,
                summary=_run_summary(run),
                violations=run.result.violations,
                metrics=run.metrics,
                snapshot=pulled,
                pull_started_at=pull_started_at,
                derived_rows=derived_rows,
                snapshot_blobs=blobs_future.result() if blobs_future is not None else None,
            )
            # after the commit, so not in the stored duration; the run facts show it
            run.timings["history_store"] = time.perf_counter() - tc
    except BaseException as exc:
        if store is not None and run_id is not None:
            interrupted = isinstance(exc, KeyboardInterrupt | SystemExit)
            try:
                store.fail_run(run_id, exc, status="interrupted" if interrupted else "failed")
            except Exception as exc2:  # the original error matters more than the bookkeeping
                log.warning("could not record run %s as failed: %s", run_id, exc2)
        raise
    finally:
        if encoder is not None:
            encoder.shutdown(wait=True, cancel_futures=True)

    # delivery only after the commit: a run whose results could not be stored is a failed run,
    # and nothing goes out for it
    if deliver:
        from reports.delivery import deliver as send_reports

        t3 = time.perf_counter()
        run.delivery = send_reports(run, config, dry_run=dry_run, out_dir=staging)
        run.timings["delivery"] = time.perf_counter() - t3
        final = str(staging.parent / _published_name(staging))
        for d in run.delivery:  # .eml paths as they will be once published
            if isinstance(d.get("file"), str) and d["file"].startswith(str(staging)):
                d["file"] = final + d["file"][len(str(staging)) :]
    run.finished_at = datetime.now(UTC)
    if (staging / "run.json").exists():
        from reports.machine import write_run_json

        write_run_json(run, staging / "run.json")  # final: finish time, delivery outcomes
    return run


def _published_name(staging: Path) -> str:
    """The output folder's name from its staging folder's (``.<name>.run-<pid>-<hex>.tmp``)."""
    return staging.name[1:].rsplit(".run-", 1)[0]


def _manifest_info(run: AuditRun) -> dict[str, Any]:
    from auditor import __version__

    failed = any(d.get("status") == "failed" for d in run.delivery)
    return {
        "tool": {"name": "crm-hygiene-auditor", "version": __version__},
        "run_id": run.run_id,
        "source": run.snapshot.meta.source,
        "as_of": run.result.context.as_of.date().isoformat(),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "status": "delivery_failed" if failed else "ok",
    }


def _check_history_path(path: Path, out: Path, config: AuditConfig) -> None:
    """The history may not live inside the output folder, which each run replaces whole (a
    `history.path` equal to a report's name would also let the report overwrite the store)."""
    hist, folder = Path(os.path.realpath(path)), Path(os.path.realpath(out))
    if hist == folder or hist.is_relative_to(folder):
        raise ConfigError(
            f"{config.origin}: key `history.path` ({hist}) is inside the output folder "
            f"{folder} (`report.out_dir` / --out); each run replaces that folder whole, so the "
            "history would be lost or overwritten by a report. Put it outside the output folder"
        )


def _pull_maybe_incremental(
    connector: Connector, config: AuditConfig, store: HistoryStore | None, day: date, full: bool
) -> Snapshot:
    """Incremental pull merged into the stored snapshot when possible, else a full pull.

    A connector that cannot pull incrementally ignores ``since`` and returns a full snapshot
    (``meta.incremental`` False), which is then used as it is.
    """
    from auditor.history import HistoryError
    from auditor.incremental import merge_incremental

    base = None
    # file sources (exports, CSV) are read whole every run: a stored snapshot is of no use to
    # them, and a wall-clock `since` would drop rows of a newer export (#13)
    if store is not None and not full and getattr(connector, "pulls_incrementally", True):
        try:
            base = store.last_snapshot(connector.source_name)
        except HistoryError as exc:
            log.warning("%s; pulling in full", exc)
    if base is None:
        return pull_from(connector, config, as_of=day)
    from connectors.streams import PriorPull, StreamState

    connector.prior = PriorPull(
        since=base.pull_started_at,
        ids=base.snapshot.opportunities["id"],
        pulled_at=base.pull_started_at,
        state=StreamState.from_meta(base.snapshot.meta.stream_state),
    )
    snap = pull_from(connector, config, since=base.pull_started_at, as_of=day)
    if not snap.meta.incremental:
        return snap
    log.info(
        "incremental pull of %s since %s: %d changed records",
        connector.source_name,
        base.pull_started_at.isoformat(),
        len(snap.opportunities),
    )
    return merge_incremental(base.snapshot, snap)


def _observe_history(
    store: HistoryStore, snap: Snapshot, day: date, timezone: str
) -> tuple[pd.DataFrame, Snapshot]:
    """This run's observed stage changes, and the snapshot with the observed history."""
    from auditor.history.observed import observe_stages, with_observed_history

    source = snap.meta.source
    stored = store.derived_history(source)
    observed_at = pd.Timestamp(day).tz_localize(timezone).tz_convert("UTC")
    previous = store.last_successful_run(source)
    prev_at = None
    if previous is not None and previous.get("as_of"):
        prev_at = pd.Timestamp(previous["as_of"]).tz_localize(timezone).tz_convert("UTC")
    new_rows = observe_stages(stored, snap.opportunities, observed_at, prev_at)
    cols = list(new_rows.columns)
    all_rows = pd.concat([stored[cols], new_rows], ignore_index=True) if len(stored) else new_rows
    return new_rows, with_observed_history(snap, all_rows)


def _history_diff(store: HistoryStore, run: AuditRun, trend_runs: int) -> HistoryDiff | None:
    """``run.history``: None on the first successful run of a source (nothing to compare)."""
    from auditor.history.diff import diff_runs

    source = run.snapshot.meta.source
    previous_run = store.last_successful_run(source)
    if previous_run is None:
        return None
    prev_id = previous_run["id"]
    trend = [TrendPoint(**t) for t in store.successful_runs(source, trend_runs - 1)]
    trend.append(
        TrendPoint(
            run_id=run.run_id,
            finished_at=run.finished_at.isoformat() if run.finished_at else None,
            score=run.score,
            violations=int(len(run.result.violations)),
            as_of=run.result.context.as_of.date().isoformat(),
        )
    )
    return diff_runs(
        run.result.violations,
        store.fingerprints(prev_id),
        lambda fps: store.violations(prev_id, fps),
        previous_run,
        trend,
    )


def _run_summary(run: AuditRun) -> dict[str, Any]:
    """The stored run summary: the run facts (AuditRun.facts) the history keeps, plus counts."""
    v = run.result.violations
    facts = run.facts()
    # no previous run to compare with: new / resolved are unknown, not 0
    h = run.history
    return {
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        **{k: facts[k] for k in ("as_of", "incremental", "records", "violations", "suppressed")},
        "score": run.score,
        **{k: facts[k] for k in ("duration_s", "api_calls")},
        "counts": {
            "by_rule": {str(k): int(n) for k, n in v["rule_code"].value_counts().items()},
            "by_severity": {str(k): int(n) for k, n in v["severity"].value_counts().items()},
            "rejected_rows": facts["rejected_rows"],
            "new": h.new if h else None,
            "resolved": h.resolved if h else None,
            "persisting": h.persisting if h else None,
        },
    }
