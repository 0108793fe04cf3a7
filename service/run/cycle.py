"""One full cycle (``tickcast run``, and every scheduled run): one row in ``runs``, four stages that
hand their results on:

    ingest (ingest.py)  specs -> new observations stored, an IngestResult per series
    plan   (plan.py)    the stored data and fits -> a Plan per series: train cold/warm, up to date, skip;
                        or a GroupPlan for series trained together
    train  (train.py)   the plans with work -> (plan, result) in plan order, on the executor
                        (tasks.py: what a worker runs)
           (settle.py)  each result -> the rows it writes, as the plan stage decides them
    store  (store.py)   each row -> its fit, loss history and forecasts, one transaction per series
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
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, replace
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .. import faults, schema
from ..clock import utcnow
from ..db import write_transaction
from ..errors import exception_line
from ..lease import Heartbeat, Lease, acquire
from ..locks import DatabaseLocked
from ..settings import ExecutorSettings, SeriesSpec, Settings
from ..status import FetchStatus, FitMode, FitStatus, RunStatus, SeriesFit, Trigger
from ..stopping import StopNow
from .backfill import Backfill, backfill_plans
from .ingest import IngestStage, ingest_each, select_specs, sync_series
from .plan import GroupPlan, Plan, Planner, Unit
from .settle import GroupWrite, SeriesWrite, settle
from .starts import (
    FailedStart,
    RunNotStarted,
    insert_failed_starts,
    record_failed_start,
    restore_pending,
    take_pending,
)
from .store import store_fit
from .train import ensure_open_files, train_planned
from .values import FitRecord, GroupResult, SeriesResult


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


class Progress(Protocol):
    """Where a run reports what it does, one line a time; ``problem``: a failure (a fetch, a fit)."""

    def __call__(self, message: str, problem: bool = False) -> None: ...


UNFINISHED = "completed series are stored, the next run does the rest"


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
        pending, taken = take_pending(engine)  # attempts of earlier processes, kept beside the database
        try:
            if failed_starts or pending:
                with write_transaction(engine) as conn:
                    insert_failed_starts(conn, sorted(pending + failed_starts, key=lambda a: a.attempted_at))
        except BaseException:
            restore_pending(engine, taken)
            raise
        failed_starts.clear()
        if taken is not None:
            os.unlink(taken)
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


@dataclass
class _Stages:
    """What the stages of one run share: the database, the run's lease (renewed after each series'
    fetch and before each series' results are stored),
    the outcome of every series so far, progress output and the stop request."""

    engine: Engine
    lease: Lease
    outcomes: dict[str, SeriesOutcome]
    say: Progress
    stop: threading.Event

    def ingest(self, stage: IngestStage, watchlist: tuple[SeriesSpec, ...], specs: list[SeriesSpec]) -> None:
        ids = sync_series(self.engine, watchlist)
        for i, result in enumerate(ingest_each(self.engine, stage, specs, ids, stop=self.stop), 1):
            outcome = self.outcomes[result.key]
            outcome.fetch, outcome.new_rows, outcome.error = result.status, result.new_rows, result.error
            ok = result.status == FetchStatus.OK
            detail = f"{result.new_rows} new" if ok else f"failed: {result.error}"
            self.say(f"[ingest {i}/{len(specs)}] {result.key}: {detail}", problem=not ok)
            self.lease.renew()

    def store_skips(self, units: list[Unit]) -> None:
        """Outcomes of the series not trained; a fit row for those too short to train."""
        for plan in units:
            if isinstance(plan, GroupPlan) or plan.action == SeriesFit.TRAINED:
                continue
            outcome = self.outcomes[plan.spec.key]
            outcome.fit = plan.action
            if plan.action == SeriesFit.SKIPPED:
                outcome.error = outcome.error or plan.record.error  # a failed fetch is the better reason
                if plan.records_skip:
                    outcome.fit_id = store_fit(self.engine, plan.record)

    def train_and_store(self, units: list[Unit], execution: ExecutorSettings) -> None:
        n_train = sum(isinstance(unit, GroupPlan) or unit.task is not None for unit in units)
        with closing(train_planned(units, execution, self.stop)) as results:
            for done, (unit, trained) in enumerate(results, 1):
                writes = settle(unit, trained)
                self.lease.renew()  # a run that lost its lease stops here, before writing anything more
                lines = [self._store(write) for write in writes]
                message = lines[0]
                if isinstance(unit, GroupPlan):
                    message = f"group {unit.key} ({len(unit.members)} series): " + (
                        lines[0]
                        if isinstance(writes[0], GroupWrite)
                        else f"{writes[0].decision}; cold fits in {trained.seconds:.1f} s"
                    )
                failed = any(write.record.status == FitStatus.FAILED for write in writes)
                self.say(f"[train {done}/{n_train}] {message}", problem=failed)

    def _store(self, write: SeriesWrite | GroupWrite) -> str:
        """Store one settled write (a group: the shared fit in its own transaction, then each
        member's row in one transaction each; a crash in between leaves a group that is not up to
        date: the next run trains it again). Returns the progress line."""
        if isinstance(write, SeriesWrite):
            record, result = write.record, write.result
            ok = record.status == FitStatus.OK
            self._outcome(write.plan, record, store_fit(self.engine, record, result, result.forecast), result)
            at = f" at {record.train_end}" if record.backfill else ""  # a past origin
            return f"{write.plan.spec.key}{at}: " + (
                f"{record.mode} fit in {result.seconds:.1f} s" if ok else f"failed: {result.error}"
            )
        shared_id = store_fit(self.engine, write.record, write.result)
        for member in write.members:
            record = replace(member.record, group_fit_id=shared_id)
            self._outcome(member.plan, record, store_fit(self.engine, record, forecast=member.forecast), write.result)
        seconds = f"{write.result.seconds:.1f} s" + (f" ({write.decision})" if write.decision else "")
        ok = write.record.status == FitStatus.OK
        return f"{write.record.mode} group fit in {seconds}" if ok else f"failed: {write.result.error}"

    def _outcome(self, plan: Plan, record: FitRecord, fit_id: int, result: SeriesResult | GroupResult) -> None:
        outcome = self.outcomes[plan.spec.key]
        ok = record.status == FitStatus.OK
        outcome.fit_id, outcome.fit = fit_id, SeriesFit.TRAINED if ok else SeriesFit.FAILED
        outcome.mode, outcome.seconds = record.mode, result.seconds
        if not ok:
            outcome.error = result.error


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
    backfill: Backfill | None = None,
) -> RunSummary:
    """Ingest, plan, train and store every active series (or ``keys``). Raises RunInProgress when
    another process holds the run lease, RunNotStarted when the database stayed locked.
    ``failed_starts``: earlier attempts not recorded yet, written (and removed) once this one starts.
    ``sources`` replaces the source of a kind (benchmarks). ``backfill``: no ingest; train and store
    the forecasts of past origins instead (run/backfill.py)."""
    trigger = Trigger.BACKFILL if backfill is not None else Trigger(trigger)
    say: Progress = progress or (lambda message, problem=False: None)
    stop = stop or threading.Event()
    specs = select_specs(settings.series, keys, settings.config_path)
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
        stages = _Stages(engine, lease, outcomes, say, stop)

        with Heartbeat(lease):  # renewed while a long fetch or fit goes on, not only between series
            if backfill is None:
                with _timed(summary, "ingest"):
                    stages.ingest(IngestStage.of(settings, sources), settings.series, specs)
            with _timed(summary, "plan"):
                if backfill is None:
                    planner = Planner(engine, settings.model, settings.forecast, settings.series, run_id)
                    plans = planner.plan(specs, stop)
                else:
                    plans = list(backfill_plans(engine, settings, specs, run_id, backfill, stop))
                    for outcome in outcomes.values():  # a series with no past origin left to fill
                        outcome.fit = SeriesFit.UP_TO_DATE
                _outcomes_of_companions(plans, outcomes, summary)
                stages.store_skips(plans)
            with _timed(summary, "train"):
                stages.train_and_store(plans, settings.execution)

        # Stopped means work was left undone; a stop during the last series' fit changes nothing.
        summary.stopped = stop.is_set() and any(o.fit == SeriesFit.PENDING for o in summary.outcomes)
        if summary.stopped:
            error = f"stopped before finishing; {UNFINISHED}"
        summary.status = _status(summary.outcomes, summary.stopped)
        faults.reached("finish")
    except BaseException as exc:
        summary.status = RunStatus.FAILED
        # not SQLAlchemy's statement and parameters
        error = f"{exc}; {UNFINISHED}" if isinstance(exc, StopNow) else exception_line(exc)
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
