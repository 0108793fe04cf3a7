"""One full cycle (``tickcast run``, and every scheduled run): one row in ``runs``, four stages that
hand their results on:

    ingest (ingest.py)  specs -> new observations stored, an IngestResult per series
    plan   (plan.py)    the stored data and fits -> a Plan per series: train cold/warm, up to date, skip
    train  (workers.py) the plans with a task -> (plan, TrainResult) in plan order, in worker processes
    store  (forecast.py) each result -> its fit, loss history and forecasts, one transaction per series

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
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from . import faults, schema
from .clock import utcnow
from .config import Settings
from .db import write_transaction
from .forecast import store_fit
from .ingest import IngestResult, ingest_each, select_specs, sync_series
from .lease import Lease, acquire
from .plan import Plan, plan_series
from .status import FetchStatus, FitMode, FitStatus, RunStatus, SeriesFit, Trigger
from .train import TrainResult
from .workers import train_planned


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
        return conn.execute(sa.insert(schema.runs).values(
            trigger=trigger, status=RunStatus.RUNNING, started_at=utcnow(), host=socket.gethostname(),
            pid=os.getpid()).returning(schema.runs.c.id)).scalar_one()


def _close_abandoned_runs(engine: Engine) -> int:
    """Runs left 'running' by a process that died. Called while holding the lease, so no live run
    can be among them."""
    with write_transaction(engine) as conn:
        return conn.execute(sa.update(schema.runs).where(schema.runs.c.status == RunStatus.RUNNING).values(
            status=RunStatus.FAILED, finished_at=utcnow(),
            error="abandoned: the process running it died (crash, kill or power loss)")).rowcount


def _finish_run(engine: Engine, run_id: int, summary: RunSummary, error: str | None) -> None:
    done = (SeriesFit.TRAINED, SeriesFit.UP_TO_DATE)
    with write_transaction(engine) as conn:
        conn.execute(sa.update(schema.runs).where(schema.runs.c.id == run_id).values(
            status=summary.status, finished_at=utcnow(), error=error,
            series_total=len(summary.outcomes),
            series_ok=summary.count(lambda o: not o.failed and o.fit in done),
            series_failed=summary.count(lambda o: o.failed),
            series_skipped=summary.count(lambda o: not o.failed and o.fit == SeriesFit.SKIPPED),
            new_observations=sum(o.new_rows for o in summary.outcomes)))


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

def _ingest(engine: Engine, settings: Settings, specs, outcomes: dict[str, SeriesOutcome], lease: Lease,
            say: Progress, stop: threading.Event, sources: dict | None) -> None:
    ids = sync_series(engine, settings)
    for i, result in enumerate(ingest_each(engine, settings, specs, ids, sources=sources, stop=stop), 1):
        _fetched(outcomes[result.key], result)
        say(f"[ingest {i}/{len(specs)}] {result.key}: " +
            (f"{result.new_rows} new" if result.status == FetchStatus.OK else f"failed: {result.error}"))
        lease.renew()


def _fetched(outcome: SeriesOutcome, result: IngestResult) -> None:
    outcome.fetch, outcome.new_rows, outcome.error = result.status, result.new_rows, result.error


def _store_skips(engine: Engine, plans: list[Plan], outcomes: dict[str, SeriesOutcome]) -> None:
    """Outcomes of the series not trained; a fit row for those too short to train."""
    for plan in plans:
        outcome = outcomes[plan.spec.key]
        if plan.action == SeriesFit.TRAINED:
            continue
        outcome.fit = plan.action
        if plan.action == SeriesFit.SKIPPED:
            outcome.error = outcome.error or plan.record.error  # a failed fetch is the better reason
            if plan.records_skip:
                outcome.fit_id = store_fit(engine, plan.record, None)


def _train_and_store(engine: Engine, settings: Settings, plans: list[Plan], outcomes: dict[str, SeriesOutcome],
                     lease: Lease, say: Progress, stop: threading.Event) -> None:
    n_train = sum(plan.task is not None for plan in plans)
    with closing(train_planned(plans, settings, stop)) as results:
        for done, (plan, result) in enumerate(results, 1):
            outcome = outcomes[plan.spec.key]
            _store_trained(engine, plan, result, outcome)
            lease.renew()
            say(f"[train {done}/{n_train}] {plan.spec.key}: " +
                (f"{plan.record.mode} fit in {result.seconds:.1f} s" if result.status == FitStatus.OK
                 else f"failed: {result.error}"))


def _store_trained(engine: Engine, plan: Plan, result: TrainResult, outcome: SeriesOutcome) -> None:
    ok = result.status == FitStatus.OK
    plan.record.status = FitStatus.OK if ok else FitStatus.FAILED
    outcome.fit_id = store_fit(engine, plan.record, result)
    outcome.fit = SeriesFit.TRAINED if ok else SeriesFit.FAILED
    outcome.mode, outcome.seconds = plan.record.mode, result.seconds
    if not ok:
        outcome.error = result.error


def run_cycle(engine: Engine, settings: Settings, trigger: Trigger | str = Trigger.MANUAL,
              progress: Progress | None = None, stop: threading.Event | None = None, keys: list[str] | None = None,
              sources: dict | None = None) -> RunSummary:
    """Ingest, plan, train and store every active series (or ``keys``). Raises RunInProgress when
    another process holds the run lease. ``sources`` replaces the source of a kind (benchmarks)."""
    trigger = Trigger(trigger)
    say = progress or (lambda message: None)
    stop = stop or threading.Event()
    specs = select_specs(settings, keys)
    started = time.perf_counter()
    lease = acquire(engine)
    if lease.taken_over:
        say(f"took over a stale run lease ({lease.taken_over})")
    run_id = None
    summary = RunSummary(run_id=0, status=RunStatus.RUNNING)
    error = None
    failure: BaseException | None = None
    try:
        abandoned = _close_abandoned_runs(engine)
        if abandoned:
            say(f"closed {abandoned} run(s) abandoned by a crashed process")
        run_id = _start_run(engine, trigger)
        summary.run_id = run_id
        lease.renew(run_id)
        say(f"run {run_id} ({trigger}): {len(specs)} series")
        outcomes = {spec.key: SeriesOutcome(spec.key) for spec in specs}
        summary.outcomes = list(outcomes.values())

        with _timed(summary, "ingest"):
            _ingest(engine, settings, specs, outcomes, lease, say, stop, sources)
        with _timed(summary, "plan"):
            plans = plan_series(engine, settings, specs, run_id, stop)
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
                if run_id is not None:
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
