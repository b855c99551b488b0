"""One audit run end to end: pull → audit (rules, metrics) → history → reports → store →
deliver → run.json → publish, one function per phase (``execute`` holds them together).

Each phase reads only what the one before produced. Phase timings are kept for the run facts and
the benchmarks. A run that fails part-way raises; nothing is delivered for it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import pandas as pd

from auditor.config import AuditConfig
from auditor.context import AuditContext
from auditor.derived import release
from auditor.engine import run_audit
from auditor.errors import ConfigError, DiskFullError, OutputError
from auditor.files import is_disk_full
from auditor.metrics import compute_metrics
from auditor.results import AuditRun, HistoryDiff, TrendPoint
from auditor.snapshot import Snapshot

T = TypeVar("T")

if TYPE_CHECKING:
    from auditor.app.publish import OutputFolder
    from auditor.history import HistoryStore
    from auditor.history.store import Prepared
    from connectors.base import Connector, PullProgress

log = logging.getLogger(__name__)


class RunObserver(Protocol):
    """Told what a run is doing (the CLI's progress display); every method must be cheap."""

    def start(self, phase: str) -> None: ...
    def done(self, phase: str, seconds: float) -> None: ...
    def pulled(self, progress: PullProgress) -> None: ...


class _Quiet:
    def start(self, phase: str) -> None:
        pass

    def done(self, phase: str, seconds: float) -> None:
        pass

    def pulled(self, progress: PullProgress) -> None:
        pass


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
    snap: Snapshot,
    config: AuditConfig,
    as_of: date | None = None,
    started: float | None = None,
    observer: RunObserver | None = None,
) -> AuditRun:
    """Audit an already pulled Snapshot (rules + metrics)."""
    obs = observer or _Quiet()
    t = time.perf_counter()
    started_at = datetime.now(UTC)
    obs.start("rules")
    result = run_audit(snap, config, as_of=as_of)
    t_rules = time.perf_counter()
    obs.done("rules", t_rules - t)
    obs.start("metrics")
    metrics = compute_metrics(snap, result, result.context, config.metrics)
    release(snap)  # the derived frames are not needed past rules and metrics
    t_metrics = time.perf_counter()
    obs.done("metrics", t_metrics - t_rules)
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
    observer: RunObserver | None = None,
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

    ``observer`` is told when each phase starts and ends, and how the pull advances.
    """
    from auditor.app.publish import OutputFolder
    from auditor.config import default_config
    from auditor.history import adopt_demo_history, history_path, open_history
    from connectors.registry import build_connector

    if config.sources:
        from auditor.errors import ConfigError

        raise ConfigError(f"{config.origin} lists several sources ([[sources]]): run them with "
                          "`crm-audit run` (all, in parallel) or `crm-audit run --source NAME`")
    started_at = datetime.now(UTC)
    folder = OutputFolder(out_dir or config.resolve(config.report.out_dir))
    obs = observer or _Quiet()
    connector = build_connector(config)
    connector.on_progress = obs.pulled
    day = AuditContext.create(as_of or config.audit.as_of, config.audit.timezone).as_of.date()
    folder.check()
    # a PostgreSQL history (history.url) has no file that could sit in the output folder
    path = None if config.history.url else history_path(config, folder.path)
    if path is not None:
        _check_history_path(path, folder.path, config)
    staging = folder.prepare()  # fails fast, before the pull, on an unusable output folder
    store: HistoryStore | None = None
    try:
        if path is not None and config.origin == default_config().origin:
            adopt_demo_history(path, folder.path)
        store = open_history(config, folder.path)  # SQLite file, or PostgreSQL (history.url)
        lock = (
            store.run_lock(connector.source_name, config.history.lock_wait_s)
            if store is not None
            else contextlib.nullcontext()
        )
        with lock:
            run = _execute_locked(
                config, connector, store, staging, day, full, started_at, deliver, dry_run, obs
            )
            _publish_phase(folder, run, obs)
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
    obs: RunObserver,
) -> AuditRun:
    """The run itself, holding the run lock; every file goes into ``staging``.

    Phases: pull → audit → history → reports → store, then (only once stored) deliver and
    run.json, written once with the final finish time and delivery outcomes.
    """
    run_id: int | None = None
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
        pulled = _pull_phase(connector, config, store, day, full, obs)
        pull_s = time.perf_counter() - t0
        run = audit_snapshot(pulled.audited, config, as_of=day, observer=obs)
        run.timings = {"pull": pull_s, **run.timings}
        run.started_at = started_at
        run.run_id = run_id
        stored = store is not None and run_id is not None
        if stored:
            with _phase(obs, "history diff", run, "history_diff"):
                run.finished_at = datetime.now(UTC)
                run.history = _history_diff(store, run, config.history.trend_runs)
        # encode the findings and the snapshot for the store (and write the snapshot file) on
        # another core while the reports (pure-Python templating) render: Arrow, zstd and file
        # writes release the GIL
        prepare = None
        if store is not None and run_id is not None:
            from auditor.history.findings import findings_table

            prepare = functools.partial(store.prepare, run_id, connector.source_name,
                                        findings_table(run.result.violations), pulled.snapshot)
        with _in_background(prepare) as prepared:
            _reports_phase(run, staging, obs)
            if stored:
                _store_phase(store, run, pulled, prepared, obs)
    except BaseException as exc:
        if store is not None and run_id is not None:
            interrupted = isinstance(exc, KeyboardInterrupt | SystemExit)
            try:
                store.fail_run(run_id, exc, status="interrupted" if interrupted else "failed")
            except Exception as exc2:  # the original error matters more than the bookkeeping
                log.warning("could not record run %s as failed: %s", run_id, exc2)
        raise
    # delivery only after the commit: a run whose results could not be stored is a failed run,
    # and nothing goes out for it
    if deliver:
        _deliver_phase(run, config, staging, dry_run, obs)
    run.finished_at = datetime.now(UTC)
    _write_run_json(run, staging)
    return run


@dataclass(frozen=True)
class _Pulled:
    """What the pull phase hands on: the snapshot as pulled (stored for the next incremental
    pull), the one audited (with observed history), and this run's observed stage changes."""

    snapshot: Snapshot
    audited: Snapshot
    derived_rows: pd.DataFrame | None
    started_at: datetime


def _pull_phase(
    connector: Connector,
    config: AuditConfig,
    store: HistoryStore | None,
    day: date,
    full: bool,
    obs: RunObserver,
) -> _Pulled:
    started = datetime.now(UTC)
    with _phase(obs, "pull"):
        snap = _pull_maybe_incremental(connector, config, store, day, full)
    if store is None or snap.meta.has_stage_history:
        return _Pulled(snap, snap, None, started)
    with _phase(obs, "observed history"):
        rows, audited = _observe_history(store, snap, day, config.audit.timezone)
    return _Pulled(snap, audited, rows, started)


def _reports_phase(run: AuditRun, staging: Path, obs: RunObserver) -> None:
    from reports.render import write_reports

    with _phase(obs, "reports", run, "reports"):
        run.outputs = write_reports(run, staging, run_json=False)
    run.finished_at = datetime.now(UTC)


def _store_phase(
    store: HistoryStore,
    run: AuditRun,
    pulled: _Pulled,
    prepared: Future[Prepared] | None,
    obs: RunObserver,
) -> None:
    """One transaction: the run summary, its findings, metrics and the pulled snapshot."""
    assert run.run_id is not None
    # timed after the commit, so not in the stored duration; the run facts show it
    with _phase(obs, "history store", run, "history_store"):
        store.commit_run(
            run.run_id,
            summary=run.summary(),
            violations=run.result.violations,
            metrics=run.metrics.to_dict(),
            snapshot=pulled.snapshot,
            pull_started_at=pulled.started_at,
            derived_rows=pulled.derived_rows,
            prepared=prepared.result() if prepared is not None else None,
        )


def _deliver_phase(
    run: AuditRun, config: AuditConfig, staging: Path, dry_run: bool, obs: RunObserver
) -> None:
    from reports.delivery import deliver as send_reports

    with _phase(obs, "delivery", run, "delivery"):
        run.delivery = send_reports(run, config, dry_run=dry_run, out_dir=staging)
    final = str(staging.parent / _published_name(staging))
    for d in run.delivery:  # .eml paths as they will be once published
        if isinstance(d.get("file"), str) and d["file"].startswith(str(staging)):
            d["file"] = final + d["file"][len(str(staging)) :]


def _write_run_json(run: AuditRun, staging: Path) -> None:
    """run.json, once per run: after delivery, with the finish time and delivery outcomes (the
    staging folder is published only after this, so no reader sees a run without it)."""
    from reports.machine import write_run_json
    from reports.render import wants_run_json

    if not wants_run_json(run.config):
        return
    path = staging / "run.json"
    run.outputs.append(path)
    write_run_json(run, path)


def _publish_phase(folder: OutputFolder, run: AuditRun, obs: RunObserver) -> None:
    """manifest.json, then the staging folder swapped in whole for the output folder."""
    try:
        with _phase(obs, "publish"):
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


@contextlib.contextmanager
def _phase(
    obs: RunObserver, label: str, run: AuditRun | None = None, timing: str | None = None
) -> Iterator[None]:
    """Tell the observer a phase starts and (if it succeeds) how long it took; with ``run``,
    keep the time in ``run.timings[timing]`` too."""
    t = time.perf_counter()
    obs.start(label)
    yield
    seconds = time.perf_counter() - t
    if run is not None and timing is not None:
        run.timings[timing] = seconds
    obs.done(label, seconds)


@contextlib.contextmanager
def _in_background(fn: Callable[..., T] | None, *args: Any) -> Iterator[Future[T] | None]:
    """``fn(*args)`` on a second thread while the block runs (None: nothing to run)."""
    if fn is None:
        yield None
        return
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        yield pool.submit(fn, *args)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _published_name(staging: Path) -> str:
    """The output folder's name from its staging folder's (``.<name>.run-<pid>-<hex>.tmp``)."""
    return staging.name[1:].rsplit(".run-", 1)[0]


def _manifest_info(run: AuditRun) -> dict[str, Any]:
    from auditor import __version__

    return {
        "tool": {"name": "crm-hygiene-auditor", "version": __version__},
        "run_id": run.run_id,
        "source": run.snapshot.meta.source,
        "as_of": run.result.context.as_of.date().isoformat(),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "status": run.status,
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
    t0 = time.perf_counter()
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
    t1 = time.perf_counter()
    snap = pull_from(connector, config, since=base.pull_started_at, as_of=day)
    if not snap.meta.incremental:
        return snap
    log.info(
        "incremental pull of %s since %s: %d changed records",
        connector.source_name,
        base.pull_started_at.isoformat(),
        len(snap.opportunities),
    )
    t2 = time.perf_counter()
    merged = merge_incremental(base.snapshot, snap)
    # where an incremental pull's time goes (run facts, benchmarks)
    merged.meta.extra["incremental_timings_s"] = {
        "stored_snapshot": round(t1 - t0, 3),
        "changes": round(t2 - t1, 3),
        "merge": round(time.perf_counter() - t2, 3),
    }
    return merged


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
