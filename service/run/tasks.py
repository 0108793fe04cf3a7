"""Training stage: what a worker does with one unit of work. Two kinds of task:

- ``SeriesTask`` -> ``SeriesResult`` (``train_series``): one series' model, cold or warm;
- ``GroupTask`` -> ``GroupResult`` (``train_group``): one model across the series of a group
  (``RNNForecaster.fit_many``), cold or warm, and a forecast for each member.

Both take plain data (arrays, bytes, dicts) and give plain data back: no database, no clock but a
timer, no side effects, so a result is the same whatever runs it (this process, a worker process,
any ``concurrent.futures``-compatible executor). A bad series never raises: it comes back
"failed" with the reason, and nothing non-finite comes back at all. A model to continue from that
cannot be loaded, or whose warm start fails, is replaced by a cold fit in the same task, with a
note saying why.
"""

from __future__ import annotations

import ctypes
import math
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

from tickcast.models import AutoForecaster, SeriesTooShort, TrainingDiverged

from ..errors import exception_line
from ..status import FitStatus
from . import published
from .values import Forecast, GroupPart, GroupResult, GroupTask, PartResult, SeriesBatch, SeriesResult, SeriesTask

_tuned = False

# glibc's malloc returns large freed blocks (128 KB and up, at first) to the kernel, and a fit
# allocates and frees such blocks (B x T x H arrays) thousands of times, so each comes back as
# fresh pages that the kernel faults in and zeroes: about 20,000 page faults and a tenth of a fit's
# time in the kernel. Kept in the process below these sizes, freed blocks are reused: a few hundred
# faults per fit and 8-12 % less time (bench/malloc.py). Dask's nanny starts its workers with
# MALLOC_TRIM_THRESHOLD_=65536, which makes it worse; these settings replace it in a process that
# trains. The cost: a training process keeps up to TRIM_THRESHOLD of freed memory.
MMAP_THRESHOLD = 32 * 2**20  # glibc's upper bound for it (and its own dynamic ceiling)
TRIM_THRESHOLD = 64 * 2**20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, <malloc.h>


def keep_freed_memory() -> bool:
    """Set glibc's malloc thresholds for training (see above); False where there is no mallopt
    (not glibc) or it refused."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def tune_process() -> None:
    """Once per process that trains: one BLAS thread (the matrices are small, B x H, so threads
    only add hand-offs, and OpenBLAS's spinning threads slow training several-fold when the cores
    are busy; measured: a default fit took 3.3 s instead of 0.67 s beside one other busy process
    on 2 cores), and malloc settings that keep freed arrays for reuse (``keep_freed_memory``)."""
    global _tuned
    if not _tuned:
        threadpool_limits(limits=1, user_api="blas")
        keep_freed_memory()
        _tuned = True


class _NotFinite(ArithmeticError):
    """The fit produced non-finite losses or forecasts."""


def _finite_or_none(value):
    """A backtest value as a float, or None (the model gives None where a score is undefined, e.g.
    the relative MAE of a series whose naive forecast is perfect)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _history(model: AutoForecaster) -> list[dict]:
    history = [{k: (None if v is None else float(v)) for k, v in row.items()} for row in published.history(model)]
    losses = [
        row[k]
        for row in history
        for k in ("train_loss", "val_loss", "grad_norm", "clip_fraction")
        if row.get(k) is not None
    ]
    if not np.all(np.isfinite(np.asarray(losses, dtype=np.float64))):
        raise _NotFinite("the fit produced non-finite losses")
    return history


def _checked(forecast: Forecast) -> Forecast:
    """The forecast with its backtest's non-finite scores as None; non-finite forecasts raise."""
    arrays = [forecast.point, *(a for lo_hi in forecast.intervals.values() for a in lo_hi)]
    for member in forecast.members.values():
        arrays += [member.point, *(a for lo_hi in member.intervals.values() for a in lo_hi)]
    if not all(np.all(np.isfinite(a)) for a in arrays):
        raise _NotFinite("the fit produced non-finite forecasts")
    forecast.backtest = {k: _finite_or_none(v) for k, v in forecast.backtest.items()}
    return forecast


def _fit_and_forecast(fit, blob: bytes | None, label: str):
    """``fit(warm_start)`` from ``blob`` if there is one; if it cannot be loaded or its warm start
    fails (a mismatch, divergence, non-finite output), ``fit(None)`` instead. Returns (its
    result, warm?, note)."""
    if blob is not None:
        try:
            previous = published.load(blob)
        except Exception as exc:  # noqa: BLE001 - any unreadable blob is a reason to start afresh
            why = exception_line(exc)
            return fit(None), False, f"the {label} to continue from could not be loaded ({why}): trained cold"
        try:
            return fit(previous), True, None
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - a warm start that fails in any way is retried cold
            why = exception_line(exc)
            return fit(None), False, f"the warm start from the previous {label} failed ({why}): trained cold"
    return fit(None), False, None


def _failure(exc: BaseException) -> str:
    if isinstance(exc, _NotFinite):
        return f"TrainingDiverged: {exc}"
    return exception_line(exc)


FIT_ERRORS = (TrainingDiverged, SeriesTooShort, ValueError, FloatingPointError, _NotFinite)


def _fitted(task: SeriesTask | GroupTask, across: bool, label: str):
    """(model, history, forecasts, warm?, note) of the published forecaster for ``task``."""

    def fit(previous):
        model = published.fit(published.forecaster(task.params, task.members), task.values, previous, across)
        return model, _history(model), [_checked(f) for f in published.forecasts(model, task.horizon, task.levels)]

    (model, history, forecasts), warm, note = _fit_and_forecast(fit, task.warm_blob, label)
    return model, history, forecasts, warm, note


def train_series(task: SeriesTask) -> SeriesResult:
    """Fit one series (cold, or warm from ``task.warm_blob``) and forecast ``horizon`` steps with
    intervals, the published combination and each of its models."""
    tune_process()
    started = time.perf_counter()
    try:
        model, history, (forecast,), warm, note = _fitted(task, False, "model")
    except FIT_ERRORS as exc:
        return SeriesResult(
            task.key, task.series_id, FitStatus.FAILED, error=_failure(exc), seconds=time.perf_counter() - started,
            params=task.params,
        )  # fmt: skip
    return _series_result(task, model, history, forecast, warm, note, time.perf_counter() - started)


def _series_result(task: SeriesTask, model, history, forecast, warm, note, seconds: float) -> SeriesResult:
    epochs, best, transform = published.epochs(model)
    return SeriesResult(
        task.key,
        task.series_id,
        FitStatus.OK,
        seconds=seconds,
        blob=model.to_bytes(),
        history=history,
        transform=transform,
        epochs=epochs,
        best_epoch=best,
        params=model.get_params(),
        warm=warm,
        note=note,
        forecast=forecast,
    )


def train_batch(batch: SeriesBatch) -> list[SeriesResult]:
    """Every series of the batch fitted as ``train_series`` fits it, the batch's fits as one
    computation (``AutoForecaster.fit_each``). A series that needs more than a plain fit (a model to
    continue that cannot be loaded, a fit or warm start that fails) is then fitted on its own by
    ``train_series``, which says why. Each result's seconds: its share of the batch's time."""
    tune_process()
    tasks = batch.tasks
    started = time.perf_counter()
    previous: list = []
    for task in tasks:
        try:
            previous.append(None if task.warm_blob is None else published.load(task.warm_blob))
        except Exception:  # noqa: BLE001 - fitted on its own below, with the note saying why
            previous.append(ValueError)
    todo = [i for i, p in enumerate(previous) if p is not ValueError]
    proto = published.forecaster(tasks[0].params, tasks[0].members)
    fitted = proto.fit_each(
        [tasks[i].values for i in todo],
        seeds=[tasks[i].params["seed"] for i in todo],
        warm_starts=[previous[i] for i in todo],
        errors="return",
    )
    share = (time.perf_counter() - started) / max(len(todo), 1)
    results: list[SeriesResult | None] = [None] * len(tasks)
    for i, model in zip(todo, fitted):
        if isinstance(model, BaseException):
            continue
        try:
            history = _history(model)
            (forecast,) = [_checked(f) for f in published.forecasts(model, tasks[i].horizon, tasks[i].levels)]
        except FIT_ERRORS:
            continue
        results[i] = _series_result(tasks[i], model, history, forecast, previous[i] is not None, None, share)
    return [r if r is not None else train_series(task) for r, task in zip(results, tasks)]


def train_group(task: GroupTask) -> GroupResult:
    """Fit the published forecaster across the group's series (its RNN one model across them; cold,
    or warm from ``task.warm_blob``) and forecast each of them ``horizon`` steps with intervals."""
    tune_process()
    started = time.perf_counter()
    try:
        model, history, forecasts, warm, note = _fitted(task, True, "group model")
    except FIT_ERRORS as exc:
        return GroupResult(
            task.group_key, FitStatus.FAILED, error=_failure(exc), seconds=time.perf_counter() - started,
            params=task.params,
        )  # fmt: skip
    return _group_result(task, model, history, forecasts, warm, note, time.perf_counter() - started)


def train_group_part(job: GroupPart) -> PartResult | GroupResult:
    """One part of a group's fit (``AutoForecaster.fit_many_part``), cold or warm as ``train_group``
    decides (an unloadable blob or a failed warm start: cold, with the note); a failed GroupResult
    when the fit fails."""
    tune_process()
    started = time.perf_counter()
    task = job.task

    def fit(previous):
        model = published.forecaster(task.params, task.members)
        return model.fit_many_part(list(task.values), job.part, job.parts, warm_start=previous)

    try:
        part, warm, note = _fit_and_forecast(fit, task.warm_blob, "group model")
    except FIT_ERRORS as exc:
        return GroupResult(
            task.group_key, FitStatus.FAILED, error=_failure(exc), seconds=time.perf_counter() - started,
            params=task.params,
        )  # fmt: skip
    return PartResult(part, warm, note, time.perf_counter() - started)


def combine_group(task: GroupTask, parts: list) -> GroupResult:
    """The group's result from its parts' (in part order): the model ``fit_many`` gives, combined here.
    A failed part fails the group, as a failed fit would; parts that decided differently on the warm
    start (they never should) are redone as one fit."""
    failed = [p for p in parts if isinstance(p, GroupResult)]
    if failed:
        return failed[0]
    if len({(p.warm, p.note) for p in parts}) != 1:
        return train_group(task)
    started = time.perf_counter()
    try:
        model = AutoForecaster.combine([p.part for p in parts])
        history = _history(model)
        forecasts = [_checked(f) for f in published.forecasts(model, task.horizon, task.levels)]
    except FIT_ERRORS as exc:
        return GroupResult(task.group_key, FitStatus.FAILED, error=_failure(exc), params=task.params)
    seconds = max(p.seconds for p in parts) + time.perf_counter() - started  # the parts ran at once
    return _group_result(task, model, history, forecasts, parts[0].warm, parts[0].note, seconds)


def _group_result(task: GroupTask, model, history, forecasts, warm, note, seconds: float) -> GroupResult:
    epochs, best, transform = published.epochs(model)
    return GroupResult(
        task.group_key,
        FitStatus.OK,
        seconds=seconds,
        blob=model.to_bytes(),
        history=history,
        transform=transform,
        epochs=epochs,
        best_epoch=best,
        params=model.get_params(),
        warm=warm,
        note=note,
        forecasts=forecasts,
    )


def failed_result(task: SeriesTask | GroupTask | GroupPart | SeriesBatch, error: str):
    """The failed result(s) of a task that could not run: a list for a batch, one per series."""
    if isinstance(task, SeriesBatch):
        return [failed_result(t, error) for t in task.tasks]
    if isinstance(task, GroupPart):
        task = task.task
    if isinstance(task, GroupTask):
        return GroupResult(task.group_key, FitStatus.FAILED, error=error, params=task.params)
    return SeriesResult(task.key, task.series_id, FitStatus.FAILED, error=error, params=task.params)


def run_task(task: SeriesTask | GroupTask | GroupPart | SeriesBatch):
    """Train one task. Running out of memory, and even an unexpected exception (a bug), come back as
    a failed result. NumPy's overflow warnings are not printed: a fit that goes wrong comes back
    failed, with the reason, which is what the user reads."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            if isinstance(task, SeriesBatch):
                return train_batch(task)
            if isinstance(task, GroupPart):
                return train_group_part(task)
            return train_group(task) if isinstance(task, GroupTask) else train_series(task)
    except MemoryError:
        if not isinstance(task, SeriesBatch):
            if isinstance(task, GroupTask | GroupPart):
                size = sum(len(v) for v in (task.task.values if isinstance(task, GroupPart) else task.values))
            else:
                size = len(task.values)
            return failed_result(
                task,
                f"out of memory while training on {size} observations (lower model.max_points or service.workers)",
            )
    except Exception as exc:  # noqa: BLE001 - one series' (or group's) bug must not end the run
        return failed_result(task, f"internal error: {type(exc).__name__}: {exc}")
    # A batch whose arrays together did not fit in memory (out of the except block, so that the
    # failed attempt's arrays are freed): each of its series on its own, so that only a series too
    # large for memory fails.
    assert isinstance(task, SeriesBatch)
    return [run_task(single) for single in task.tasks]
