"""One full cycle (``tickcast run``, and every scheduled run): one row in ``runs``, four stages that
hand their results on:

    ingest (ingest.py)  specs -> new observations stored, an IngestResult per series
    plan   (plan.py)    the stored data and fits -> a Plan per series: train cold/warm, up to date, skip;
                        or a GroupPlan for series trained together (groups.py)
    train  (workers.py) the plans with work -> (plan, result) in plan order, in worker processes
    store  (forecast.py) each result -> its fit, loss history and forecasts, one transaction per series
                        (a group: its shared fit, then each member's row)

Idempotent by construction: a series whose newest observation and settings already have a fit is
"up to date" and left alone, so repeating a run, or resuming one after a crash, ends with the same
tables. Results are written in a fixed order (the watchlist's), so neither the number of workers
nor their timing changes them.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from . import faults, schema
from .clock import utcnow
from .config import Settings
from .db import write_transaction
from .errors import DatabaseError
from .forecast import store_fit
from .groups import choose
from .ingest import IngestResult, ingest_each, select_specs, sync_series
from .lease import Lease, acquire
from .locks import DatabaseLocked
from .plan import GroupPlan, Plan, Unit, plan_series
from .status import FetchStatus, FitMode, FitScope, FitStatus, RunStatus, SeriesFit, Trigger
from .train import SeriesResult
from .workers import GroupTrained, ensure_open_files, train_planned


@dataclass
class SeriesOutcome:
    key: str
    fetch: FetchStatus = FetchStatus.OK
    new_rows: int = 0
    fit: SeriesFit = SeriesFit.PENDING
    mode: FitMode | None = None
    fit_id: int | None = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.fetch == FetchStatus.FAILED or self.fit == SeriesFit.FAILED


@dataclass
class RunSummary:
    run_id: int
    status: RunStatus
    outcomes: list[SeriesOutcome] = field(default_factory=list)
    seconds: float = 0.0
    stopped: bool = False
    timings: dict = field(default_factory=dict)  # stage -> seconds

    def count(self, predicate) -> int:
        return sum(1 for o in self.outcomes if predicate(o))


Progress = Callable[[str], None]


# --- the run's row in `runs` --------------------------------------------------------------------


def _start_run(engine: Engine, trigger: Trigger) -> int:
    with write_transaction(engine) as conn:
        return conn.execute(
            sa.insert(schema.runs)
            .values(
                trigger=trigger,
                status=RunStatus.RUNNING,
                started_at=utcnow(),
                host=socket.gethostname(),
                pid=os.getpid(),
            )
            .returning(schema.runs.c.id)
        ).scalar_one()


@dataclass(frozen=True)
class FailedStart:
    """A run that could not start because the database stayed locked: a ``runs`` row to write as
    soon as the database lets us."""

    trigger: Trigger
    attempted_at: datetime
    error: str


class RunNotStarted(DatabaseError):
    """The run could not start: the database stayed locked. ``recorded``: whether its failed row is
    in ``runs`` already (else ``attempt`` is to be written later)."""

    def __init__(self, attempt: FailedStart, recorded: bool):
        self.attempt, self.recorded = attempt, recorded
        where = "recorded in runs" if recorded else "not recorded in runs: the database is still locked"
        super().__init__(f"{attempt.error}; {where}")


RECORD_WAIT_SECONDS = 1.0  # how long recording a failed start waits for the lock: it just waited in vain


def record_failed_start(engine: Engine, attempt: FailedStart, wait: float | None = RECORD_WAIT_SECONDS) -> bool:
    """Write the ``runs`` row of a run that could not start; False if the database refuses still."""
    try:
        with write_transaction(engine, wait=wait) as conn:
            _insert_failed_start(conn, attempt)
        return True
    except (DatabaseError, sa.exc.SQLAlchemyError):
        return False


def _insert_failed_start(conn, attempt: FailedStart) -> None:
    conn.execute(
        sa.insert(schema.runs).values(
            trigger=attempt.trigger,
            status=RunStatus.FAILED,
            started_at=attempt.attempted_at,
            finished_at=utcnow(),
            error=attempt.error,
            host=socket.gethostname(),
            pid=os.getpid(),
        )
    )


def _begin_run(engine: Engine, trigger: Trigger, say: Progress, failed_starts: list[FailedStart]) -> tuple[Lease, int]:
    """Take the lease, close runs abandoned by crashed processes, write ``failed_starts`` (emptied)
    and this run's row. A database that stays locked raises RunNotStarted."""
    attempted_at = utcnow()
    lease = None
    try:
        lease = acquire(engine)
        if lease.taken_over:
            say(f"took over a stale run lease ({lease.taken_over})")
        abandoned = _close_abandoned_runs(engine)
        if abandoned:
            say(f"closed {abandoned} run(s) abandoned by a crashed process")
        if failed_starts:
            with write_transaction(engine) as conn:
                for attempt in failed_starts:
                    _insert_failed_start(conn, attempt)
            failed_starts.clear()
        return lease, _start_run(engine, trigger)
    except BaseException as exc:
        if lease is not None:
            try:
                lease.release()
            except Exception:  # noqa: BLE001 - the reason the start failed is the one to report
                pass
        if not isinstance(exc, DatabaseLocked):
            raise
        attempt = FailedStart(trigger, attempted_at, f"run not started: {exc}")
        raise RunNotStarted(attempt, record_failed_start(engine, attempt)) from None


def _close_abandoned_runs(engine: Engine) -> int:
    """Runs left 'running' by a process that died. Called while holding the lease, so no live run
    can be among them."""
    with write_transaction(engine) as conn:
        return conn.execute(
            sa.update(schema.runs)
            .where(schema.runs.c.status == RunStatus.RUNNING)
            .values(
                status=RunStatus.FAILED,
                finished_at=utcnow(),
                error="abandoned: the process running it died (crash, kill or power loss)",
            )
        ).rowcount


def _finish_run(engine: Engine, run_id: int, summary: RunSummary, error: str | None) -> None:
    done = (SeriesFit.TRAINED, SeriesFit.UP_TO_DATE)
    with write_transaction(engine) as conn:
        conn.execute(
            sa.update(schema.runs)
            .where(schema.runs.c.id == run_id)
            .values(
                status=summary.status,
                finished_at=utcnow(),
                error=error,
                series_total=len(summary.outcomes),
                series_ok=summary.count(lambda o: not o.failed and o.fit in done),
                series_failed=summary.count(lambda o: o.failed),
                series_skipped=summary.count(lambda o: not o.failed and o.fit == SeriesFit.SKIPPED),
                new_observations=sum(o.new_rows for o in summary.outcomes),
            )
        )


def _status(outcomes: list[SeriesOutcome], stopped: bool) -> RunStatus:
    """ok; partial when some series failed; failed when every series that could run failed (or the
    run was stopped before finishing)."""
    failed = sum(o.failed for o in outcomes)
    runnable = sum(o.failed or o.fit != SeriesFit.SKIPPED for o in outcomes)
    if stopped or (failed and failed == runnable):
        return RunStatus.FAILED
    return RunStatus.PARTIAL if failed else RunStatus.OK


@contextmanager
def _timed(summary: RunSummary, stage: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    summary.timings[stage] = time.perf_counter() - started


# --- the stages, as one run uses them -----------------------------------------------------------


def _ingest(
    engine: Engine,
    settings: Settings,
    specs,
    outcomes: dict[str, SeriesOutcome],
    lease: Lease,
    say: Progress,
    stop: threading.Event,
    sources: dict | None,
) -> None:
    ids = sync_series(engine, settings)
    for i, result in enumerate(ingest_each(engine, settings, specs, ids, sources=sources, stop=stop), 1):
        _fetched(outcomes[result.key], result)
        say(
            f"[ingest {i}/{len(specs)}] {result.key}: "
            + (f"{result.new_rows} new" if result.status == FetchStatus.OK else f"failed: {result.error}")
        )
        lease.renew()


def _fetched(outcome: SeriesOutcome, result: IngestResult) -> None:
    outcome.fetch, outcome.new_rows, outcome.error = result.status, result.new_rows, result.error


def _store_skips(engine: Engine, units: list[Unit], outcomes: dict[str, SeriesOutcome]) -> None:
    """Outcomes of the series not trained; a fit row for those too short to train."""
    for plan in units:
        if isinstance(plan, GroupPlan) or plan.action == SeriesFit.TRAINED:
            continue
        outcome = outcomes[plan.spec.key]
        outcome.fit = plan.action
        if plan.action == SeriesFit.SKIPPED:
            outcome.error = outcome.error or plan.record.error  # a failed fetch is the better reason
            if plan.records_skip:
                outcome.fit_id = store_fit(engine, plan.record)


def _train_and_store(
    engine: Engine,
    settings: Settings,
    units: list[Unit],
    outcomes: dict[str, SeriesOutcome],
    lease: Lease,
    say: Progress,
    stop: threading.Event,
) -> None:
    n_train = sum(isinstance(unit, GroupPlan) or unit.task is not None for unit in units)
    with closing(train_planned(units, settings, stop)) as results:
        for done, (unit, result) in enumerate(results, 1):
            if isinstance(unit, GroupPlan):
                message = _store_group(engine, unit, result, outcomes)
            else:
                message = _store_trained(engine, unit, result, outcomes[unit.spec.key])
            lease.renew()
            say(f"[train {done}/{n_train}] {message}")


def _joined(*notes: str | None) -> str | None:
    return "; ".join(n for n in notes if n) or None


def _store_trained(
    engine: Engine, plan: Plan, result: SeriesResult, outcome: SeriesOutcome, decision: str | None = None
) -> str:
    ok = result.status == FitStatus.OK
    record = plan.record
    record.status = FitStatus.OK if ok else FitStatus.FAILED
    if result.note:  # the model to continue could not be: it was trained cold
        record.mode, record.warm_started_from = FitMode.COLD, None
    record.note = _joined(record.note, decision, result.note)
    outcome.fit_id = store_fit(engine, record, result, result.forecast)
    outcome.fit = SeriesFit.TRAINED if ok else SeriesFit.FAILED
    outcome.mode, outcome.seconds = record.mode, result.seconds
    if not ok:
        outcome.error = result.error
    return f"{plan.spec.key}: " + (f"{record.mode} fit in {result.seconds:.1f} s" if ok else f"failed: {result.error}")


def _store_group(engine: Engine, plan: GroupPlan, trained: GroupTrained, outcomes: dict[str, SeriesOutcome]) -> str:
    """The shared fit in its own transaction, then each member's row in one transaction each (a crash in
    between leaves a group that is not up to date: the next run trains it again). Under ``auto``'s
    comparison, the per-series models are stored instead when they did better."""
    group = trained.group
    keep_group, decision = choose(plan, group, trained.alone) if plan.compare else (True, None)
    head = f"group {plan.key} ({len(plan.members)} series): "
    if not keep_group:
        for member, result in zip(plan.members, trained.alone):
            _store_trained(engine, member, result, outcomes[member.spec.key], decision)
        return head + f"{decision}; cold fits in {trained.seconds:.1f} s"
    ok = group.status == FitStatus.OK
    shared = plan.record
    shared.status = FitStatus.OK if ok else FitStatus.FAILED
    if group.note:
        shared.mode, shared.warm_started_from = FitMode.COLD, None
    shared.note = _joined(decision, group.note)
    shared_id = store_fit(engine, shared, group)
    forecasts = group.forecasts if ok else [None] * len(plan.members)
    for member, forecast in zip(plan.members, forecasts):
        record, outcome = member.record, outcomes[member.spec.key]
        record.scope, record.settings_hash, record.group_fit_id = FitScope.GROUP, shared.settings_hash, shared_id
        record.status, record.mode, record.note, record.error = shared.status, shared.mode, shared.note, group.error
        outcome.fit_id = store_fit(engine, record, forecast=forecast)
        outcome.fit = SeriesFit.TRAINED if ok else SeriesFit.FAILED
        outcome.mode, outcome.seconds = shared.mode, group.seconds
        if not ok:
            outcome.error = group.error
    seconds = f"{trained.seconds:.1f} s" + (f" ({decision})" if decision else "")
    return head + (f"{shared.mode} group fit in {seconds}" if ok else f"failed: {group.error}")


def _outcomes_of_companions(units: list[Unit], outcomes: dict[str, SeriesOutcome], summary: RunSummary) -> None:
    """A group is trained whole: its members outside the run's series get outcomes too."""
    for unit in units:
        for member in unit.members if isinstance(unit, GroupPlan) else ():
            if member.spec.key not in outcomes:
                outcomes[member.spec.key] = SeriesOutcome(member.spec.key)
                summary.outcomes.append(outcomes[member.spec.key])


def run_cycle(
    engine: Engine,
    settings: Settings,
    trigger: Trigger | str = Trigger.MANUAL,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    keys: list[str] | None = None,
    sources: dict | None = None,
    failed_starts: list[FailedStart] | None = None,
) -> RunSummary:
    """Ingest, plan, train and store every active series (or ``keys``). Raises RunInProgress when
    another process holds the run lease, RunNotStarted when the database stayed locked.
    ``failed_starts``: earlier attempts not recorded yet, written (and removed) once this one starts.
    ``sources`` replaces the source of a kind (benchmarks)."""
    trigger = Trigger(trigger)
    say = progress or (lambda message: None)
    stop = stop or threading.Event()
    specs = select_specs(settings, keys)
    ensure_open_files(settings.workers)
    started = time.perf_counter()
    lease, run_id = _begin_run(engine, trigger, say, failed_starts if failed_starts is not None else [])
    summary = RunSummary(run_id=run_id, status=RunStatus.RUNNING)
    error = None
    failure: BaseException | None = None
    try:
        lease.renew(run_id)
        say(f"run {run_id} ({trigger}): {len(specs)} series")
        outcomes = {spec.key: SeriesOutcome(spec.key) for spec in specs}
        summary.outcomes = list(outcomes.values())

        with _timed(summary, "ingest"):
            _ingest(engine, settings, specs, outcomes, lease, say, stop, sources)
        with _timed(summary, "plan"):
            plans = plan_series(engine, settings, specs, run_id, stop)
            _outcomes_of_companions(plans, outcomes, summary)
            _store_skips(engine, plans, outcomes)
        with _timed(summary, "train"):
            _train_and_store(engine, settings, plans, outcomes, lease, say, stop)

        # Stopped means work was left undone; a stop during the last series' fit changes nothing.
        summary.stopped = stop.is_set() and any(o.fit == SeriesFit.PENDING for o in summary.outcomes)
        if summary.stopped:
            error = "stopped before finishing; completed series are stored, the next run does the rest"
        summary.status = _status(summary.outcomes, summary.stopped)
        faults.reached("finish")
    except BaseException as exc:
        summary.status = RunStatus.FAILED
        reason = (str(exc).splitlines() or [""])[0]  # not SQLAlchemy's statement and parameters
        error = f"{type(exc).__name__}: {reason}" if reason else type(exc).__name__
        failure = exc
        raise
    finally:
        summary.seconds = time.perf_counter() - started
        try:
            try:
                _finish_run(engine, run_id, summary, error)
            finally:
                lease.release()
        except Exception:
            # The bookkeeping fails for the reason the run did (a full disk, a lost database): then
            # the run's own error is the one to report. The next run closes this run as abandoned
            # and takes the lease over.
            if failure is None:
                raise
    return summary
