"""One full cycle (``tickcast run``, and every scheduled run): ingest, train, backtest, forecast,
store; one row in ``runs``.

Idempotent by construction: a series whose newest observation and settings already have a fit is
"up to date" and left alone, so repeating a run, or resuming one after a crash, ends with the same
tables. Training runs in worker processes; results are written in a fixed order (the watchlist's),
one transaction per series, so neither the number of workers nor their timing changes them.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import threading
import time
from concurrent.futures import CancelledError, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import dataclass, field
from datetime import date
from typing import Callable

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from . import faults, schema
from .clock import utcnow
from .config import SeriesSpec, Settings
from .db import write_transaction
from .forecast import FitRecord, store_fit
from .ingest import IngestResult, ingest, select_specs, sync_series
from .lease import acquire
from .train import TrainResult, TrainTask, model_params, settings_hash, train_series


@dataclass
class SeriesOutcome:
    key: str
    fetch: str = "ok"  # ok, failed
    new_rows: int = 0
    fit: str = "pending"  # trained, up-to-date, skipped, failed, pending (not reached: run stopped)
    mode: str | None = None  # cold, warm
    fit_id: int | None = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.fetch == "failed" or self.fit == "failed"


@dataclass
class RunSummary:
    run_id: int
    status: str
    outcomes: list[SeriesOutcome] = field(default_factory=list)
    seconds: float = 0.0
    stopped: bool = False
    timings: dict = field(default_factory=dict)  # stage -> seconds

    def count(self, predicate) -> int:
        return sum(1 for o in self.outcomes if predicate(o))


@dataclass
class _Plan:
    spec: SeriesSpec
    series_id: int
    record: FitRecord
    task: TrainTask | None  # None: up to date or skipped


Progress = Callable[[str], None]


def _series_rows(engine: Engine) -> dict[str, sa.Row]:
    with engine.connect() as conn:
        return {row.key: row for row in conn.execute(sa.select(schema.series))}


def _load_values(conn, series_id: int, max_points: int) -> tuple[list[date], np.ndarray]:
    rows = conn.execute(
        sa.select(schema.observations.c.ts, schema.observations.c.value)
        .where(schema.observations.c.series_id == series_id)
        .order_by(schema.observations.c.ts.desc()).limit(max_points)).all()
    rows.reverse()
    return [r.ts for r in rows], np.array([r.value for r in rows], dtype=np.float64)


def plan_series(engine: Engine, settings: Settings, spec: SeriesSpec, series_id: int, frequency: str | None,
                run_id: int) -> _Plan:
    """Decide what this run does for one series: skip it (too short), leave it (up to date), or
    train it from scratch (cold) or from its latest fit (warm)."""
    from tickcast.models import MIN_LENGTH

    faults.reached("plan")
    model = settings.model
    fingerprint = settings_hash(settings, spec.key)
    with engine.connect() as conn:
        dates, values = _load_values(conn, series_id, model.max_points)
        fits = schema.fits.c
        latest = conn.execute(
            sa.select(fits.id, fits.status, fits.train_end, fits.settings_hash, fits.mode)
            .where(fits.series_id == series_id).order_by(fits.id.desc()).limit(1)).first()
        base = conn.execute(
            sa.select(fits.id, fits.train_end, fits.weights, fits.mode)
            .where(fits.series_id == series_id, fits.status == "ok", fits.settings_hash == fingerprint)
            .order_by(fits.id.desc()).limit(1)).first()
        last_cold = conn.execute(
            sa.select(sa.func.max(fits.train_end))
            .where(fits.series_id == series_id, fits.status == "ok", fits.settings_hash == fingerprint,
                   fits.mode == "cold")).scalar()
    record = FitRecord(run_id=run_id, series_id=series_id, status="ok", settings_hash=fingerprint, cell=model.cell,
                       train_start=dates[0] if dates else None, train_end=dates[-1] if dates else None,
                       n_obs=len(values), frequency=frequency, level=settings.forecast.level)
    minimum = max(settings.forecast.min_length, MIN_LENGTH)
    up_to_date = (latest is not None and latest.settings_hash == fingerprint and latest.train_end == record.train_end
                  and latest.status in ("ok", "skipped"))
    if up_to_date:
        return _Plan(spec, series_id, record, None)
    if len(values) < minimum:
        record.status = "skipped"
        record.error = f"too short to train: {len(values)} observation(s), the minimum is {minimum}"
        return _Plan(spec, series_id, record, None)
    warm = (base is not None and base.weights is not None and last_cold is not None
            and (record.train_end - last_cold).days < model.full_retrain_days)
    record.mode = "warm" if warm else "cold"
    record.warm_started_from = base.id if warm else None
    task = TrainTask(key=spec.key, series_id=series_id, values=values, params=model_params(model, spec.key),
                     horizon=settings.forecast.horizon, level=settings.forecast.level,
                     warm_blob=base.weights if warm else None, warm_epochs=model.warm_epochs)
    return _Plan(spec, series_id, record, task)


def _quiet_worker(parent: int) -> None:
    # The parent coordinates shutdown; a worker must not die half-way on the group's signal.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def orphan_watch() -> None:  # a parent killed with SIGKILL cannot tell its workers to leave
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=orphan_watch, daemon=True).start()


def _pool(workers: int) -> ProcessPoolExecutor:
    # One BLAS thread per worker (see train.limit_blas_threads), from the start of each process.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    # spawn, not fork: the parent may run scheduler and database threads.
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_quiet_worker, initargs=(os.getpid(),))


def _train_guarded(task: TrainTask) -> TrainResult:
    """``train_series`` that turns even an unexpected exception (a bug) into a failed result."""
    try:
        return train_series(task)
    except Exception as exc:  # noqa: BLE001 - one series' bug must not end the run
        return TrainResult(task.key, task.series_id, "failed", error=f"internal error: {type(exc).__name__}: {exc}")


def _train_all(plans: list[_Plan], workers: int, stop: threading.Event,
               on_result: Callable[[_Plan, TrainResult], None]) -> None:
    """Train every planned task and hand the results over in plan order. On ``stop``, series not
    yet started are dropped; the ones in progress finish and are handed over."""
    todo = [p for p in plans if p.task is not None]
    if workers <= 1 or len(todo) <= 1:
        for plan in todo:
            if stop.is_set():
                return
            faults.reached("train")
            on_result(plan, _train_guarded(plan.task))
        return
    with _pool(min(workers, len(todo))) as pool:
        futures = [(plan, pool.submit(_train_guarded, plan.task)) for plan in todo]
        try:
            for plan, future in futures:
                result = None
                while result is None:
                    if stop.is_set():
                        for _, pending in futures:
                            pending.cancel()  # a series already running cannot be cancelled: it finishes
                    try:
                        result = future.result(timeout=0.2)
                    except FuturesTimeout:
                        continue
                    except CancelledError:
                        break
                    except Exception as exc:  # the worker process died (killed, out of memory)
                        result = TrainResult(plan.task.key, plan.task.series_id, "failed",
                                             error=f"worker failed: {type(exc).__name__}: {exc}")
                if result is not None:
                    faults.reached("train")
                    on_result(plan, result)
        finally:
            for _, pending in futures:
                pending.cancel()


def _start_run(engine: Engine, trigger: str) -> int:
    with write_transaction(engine) as conn:
        return conn.execute(sa.insert(schema.runs).values(
            trigger=trigger, status="running", started_at=utcnow(), host=socket.gethostname(), pid=os.getpid())
            .returning(schema.runs.c.id)).scalar_one()


def _close_abandoned_runs(engine: Engine) -> int:
    """Runs left 'running' by a process that died. Called while holding the lease, so no live run
    can be among them."""
    with write_transaction(engine) as conn:
        return conn.execute(sa.update(schema.runs).where(schema.runs.c.status == "running").values(
            status="failed", finished_at=utcnow(),
            error="abandoned: the process running it died (crash, kill or power loss)")).rowcount


def _finish_run(engine: Engine, run_id: int, summary: RunSummary, error: str | None) -> None:
    with write_transaction(engine) as conn:
        conn.execute(sa.update(schema.runs).where(schema.runs.c.id == run_id).values(
            status=summary.status, finished_at=utcnow(), error=error,
            series_total=len(summary.outcomes),
            series_ok=summary.count(lambda o: not o.failed and o.fit in ("trained", "up-to-date")),
            series_failed=summary.count(lambda o: o.failed),
            series_skipped=summary.count(lambda o: not o.failed and o.fit == "skipped"),
            new_observations=sum(o.new_rows for o in summary.outcomes)))


def _status(outcomes: list[SeriesOutcome], stopped: bool) -> str:
    """ok; partial when some series failed; failed when every series that could run failed (or the
    run was stopped before finishing)."""
    failed = sum(o.failed for o in outcomes)
    runnable = sum(o.failed or o.fit != "skipped" for o in outcomes)
    if stopped or (failed and failed == runnable):
        return "failed"
    return "partial" if failed else "ok"


def run_cycle(engine: Engine, settings: Settings, trigger: str = "manual", progress: Progress | None = None,
              stop: threading.Event | None = None, keys: list[str] | None = None,
              sources: dict | None = None) -> RunSummary:
    """Ingest, train and forecast every active series (or ``keys``). Raises RunInProgress when
    another process holds the run lease. ``sources`` replaces the source of a kind (benchmarks)."""
    say = progress or (lambda message: None)
    stop = stop or threading.Event()
    specs = select_specs(settings, keys)
    started = time.perf_counter()
    lease = acquire(engine)
    if lease.taken_over:
        say(f"took over a stale run lease ({lease.taken_over})")
    run_id = None
    summary = RunSummary(run_id=0, status="running")
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

        def ingested(i: int, n: int, r: IngestResult) -> None:
            o = outcomes[r.key]
            o.fetch, o.new_rows, o.error = ("failed" if r.status == "failed" else "ok"), r.new_rows, r.error
            say(f"[ingest {i}/{n}] {r.key}: " + (f"{r.new_rows} new" if r.status == "ok" else f"failed: {r.error}"))
            lease.renew()

        t0 = time.perf_counter()
        sync_series(engine, settings)
        ingest(engine, settings, [s.key for s in specs], progress=ingested, stop=stop, sources=sources)
        summary.timings["ingest"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        rows = _series_rows(engine)
        plans = []
        for spec in specs:
            if stop.is_set():
                break
            row = rows[spec.key]
            plan = plan_series(engine, settings, spec, row.id, row.frequency, run_id)
            if plan.record.n_obs == 0:
                outcomes[spec.key].fit = "skipped"
                outcomes[spec.key].error = outcomes[spec.key].error or "no observations stored yet"
                continue
            plans.append(plan)
            if plan.task is None and plan.record.status == "ok":
                outcomes[spec.key].fit = "up-to-date"
            elif plan.task is None:
                plan.record.run_id = run_id
                outcomes[spec.key].fit = "skipped"
                outcomes[spec.key].fit_id = store_fit(engine, plan.record, None)
                outcomes[spec.key].error = outcomes[spec.key].error or plan.record.error
        summary.timings["plan"] = time.perf_counter() - t0
        n_train = sum(p.task is not None for p in plans)
        done = 0

        def trained(plan: _Plan, result: TrainResult) -> None:
            nonlocal done
            done += 1
            o = outcomes[plan.spec.key]
            plan.record.status = result.status
            o.fit_id = store_fit(engine, plan.record, result)
            o.fit, o.mode, o.seconds = ("trained" if result.status == "ok" else "failed"), plan.record.mode, result.seconds
            if result.status != "ok":
                o.error = result.error
            lease.renew()
            say(f"[train {done}/{n_train}] {plan.spec.key}: " +
                (f"{plan.record.mode} fit in {result.seconds:.1f} s" if result.status == "ok" else f"failed: {result.error}"))

        t0 = time.perf_counter()
        _train_all(plans, settings.workers, stop, trained)
        summary.timings["train"] = time.perf_counter() - t0
        # Stopped means work was left undone; a stop during the last series' fit changes nothing.
        summary.stopped = stop.is_set() and any(o.fit == "pending" for o in summary.outcomes)
        if summary.stopped:
            error = "stopped before finishing; completed series are stored, the next run does the rest"
        summary.status = _status(summary.outcomes, summary.stopped)
        faults.reached("finish")
    except BaseException as exc:
        summary.status = "failed"
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
