"""What a worker computes for one unit of work (service/run/tasks.py), called in this process as the
executor calls it (``run_task``): a series, a batch of series, a group whole or in parts. Each
result is checked against the published forecaster fitted here on the same data, field by field,
and every way a task fails comes back as a failed result with its reason, never as an exception.

Seconds are read from a clock that ticks one second per reading (``ticking``), so the time each
result reports is exact."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import threadpoolctl

from tickcast.models import AutoForecaster
from tickcast.service.errors import exception_line
from tickcast.service.run import published, tasks
from tickcast.service.run.tasks import combine_group, failed_result, keep_freed_memory, run_task
from tickcast.service.run.values import (
    GroupPart,
    GroupResult,
    GroupTask,
    PartResult,
    SeriesBatch,
    SeriesResult,
    SeriesTask,
)
from tickcast.service.status import FitStatus

PARAMS = {"epochs": 2, "season_length": 1, "seed": 0}
MEMBERS = ("rnn", "ets", "theta")
LEVELS = (0.8, 0.95)
HORIZON = 3
RNG = np.random.default_rng(7)
SERIES = [np.cumsum(RNG.normal(0, 1, 80)) + 50 + 10 * i for i in range(3)]
SHORT = np.array([], dtype=np.float64)  # nothing to fit


def series_task(i: int = 0, values=None, params=None, warm_blob=None) -> SeriesTask:
    values = SERIES[i] if values is None else values
    return SeriesTask(f"csv:s{i}", 100 + i, values, params or PARAMS, HORIZON, LEVELS, MEMBERS, warm_blob)


def group_task(ys=None, warm_blob=None) -> GroupTask:
    ys = SERIES if ys is None else ys
    keys = [f"csv:g{i}" for i in range(len(ys))]
    return GroupTask("group:g", keys, list(range(len(ys))), list(ys), PARAMS, HORIZON, LEVELS, MEMBERS, warm_blob)


class Ticking:
    """A stand-in for the ``time`` module of tasks.py: perf_counter moves one second per reading."""

    def __init__(self):
        self.now = 1000.0

    def perf_counter(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture
def ticking(monkeypatch):
    clock = Ticking()
    monkeypatch.setattr(tasks, "time", clock)
    return clock


def fitted(values, previous=None, across=False, params=None) -> AutoForecaster:
    return published.fit(published.forecaster(params or PARAMS, MEMBERS), values, previous, across)


def assert_result_of(result, model: AutoForecaster, forecasts_index: int | None = 0):
    """``result`` holds what ``model`` gives: its blob, loss history, epochs, settings and forecasts."""
    assert result.status == FitStatus.OK and result.error is None
    assert result.blob == model.to_bytes()
    assert result.history == [
        {k: (None if v is None else float(v)) for k, v in row.items()} for row in published.history(model)
    ]
    assert len(result.history) > 0
    assert (result.epochs, result.best_epoch, result.transform) == published.epochs(model)
    assert result.params == model.get_params()
    expected = published.forecasts(model, HORIZON, LEVELS)
    if forecasts_index is None:
        assert result.forecasts == expected
    else:
        assert result.forecast == expected[forecasts_index]


# --- one series ----------------------------------------------------------------------------------


def test_a_series_task_gives_the_published_forecaster_fitted_on_it(ticking):
    task = series_task()
    result = run_task(task)
    assert isinstance(result, SeriesResult)
    assert (result.key, result.series_id) == ("csv:s0", 100)
    assert_result_of(result, fitted(task.values))
    assert result.warm is False and result.note is None
    assert result.seconds == 1.0  # the fit's own time: one tick
    assert len(result.forecast.point) == HORIZON and set(result.forecast.intervals) == set(LEVELS)
    assert set(result.forecast.members) == set(MEMBERS)


def test_a_series_too_short_fails_with_the_models_reason_and_its_settings(ticking):
    task = series_task(values=SHORT)
    with pytest.raises(Exception) as raised:
        fitted(SHORT)
    result = run_task(task)
    assert result == SeriesResult(
        "csv:s0", 100, FitStatus.FAILED, error=exception_line(raised.value), seconds=1.0, params=PARAMS
    )
    assert result.error.startswith("SeriesTooShort: ")


def test_a_warm_task_continues_the_model_it_is_given():
    previous = run_task(series_task())
    task = series_task(warm_blob=previous.blob)
    result = run_task(task)
    assert result.warm is True and result.note is None
    assert_result_of(result, fitted(task.values, published.load(previous.blob)))
    assert result.blob != previous.blob


def test_a_model_that_cannot_be_loaded_is_replaced_by_a_cold_fit_with_the_reason():
    with pytest.raises(Exception) as raised:
        published.load(b"not a model")
    result = run_task(series_task(warm_blob=b"not a model"))
    assert result.warm is False
    assert (
        result.note == f"the model to continue from could not be loaded ({exception_line(raised.value)}): trained cold"
    )
    assert_result_of(result, fitted(SERIES[0]))


def test_a_warm_start_that_fails_is_replaced_by_a_cold_fit_with_the_reason():
    previous = run_task(series_task())
    other = {**PARAMS, "season_length": 4}
    result = run_task(series_task(params=other, warm_blob=previous.blob))
    assert result.warm is False
    assert result.note == (
        "the warm start from the previous model failed (ValueError: warm_start model differs in "
        "{'season_length': (1, 4)} (theirs, ours)): trained cold"
    )
    assert_result_of(result, fitted(SERIES[0], params=other))


@pytest.mark.parametrize("key", ["train_loss", "val_loss", "grad_norm", "clip_fraction"])
def test_a_non_finite_loss_fails_the_series_as_diverged(key, monkeypatch, ticking):
    real = published.history

    def poisoned(model):
        rows = real(model)
        rows[-1] = {**rows[-1], key: math.nan}
        return rows

    monkeypatch.setattr(published, "history", poisoned)
    result = run_task(series_task())
    assert result == SeriesResult(
        "csv:s0", 100, FitStatus.FAILED, error="TrainingDiverged: the fit produced non-finite losses",
        seconds=1.0, params=PARAMS,
    )  # fmt: skip


def _poison_point(forecast):
    forecast.point[1] = math.inf


def _poison_interval(forecast):
    forecast.intervals[0.95][1][2] = math.nan


def _poison_member(forecast):
    forecast.members["ets"].point[0] = math.nan


def _poison_member_interval(forecast):
    forecast.members["theta"].intervals[0.8][0][0] = -math.inf


@pytest.mark.parametrize("poison", [_poison_point, _poison_interval, _poison_member, _poison_member_interval])
def test_a_non_finite_forecast_fails_the_series_as_diverged(poison, monkeypatch):
    real = published.forecasts

    def poisoned(model, horizon, levels):
        out = real(model, horizon, levels)
        poison(out[0])
        return out

    monkeypatch.setattr(published, "forecasts", poisoned)
    result = run_task(series_task())
    assert (result.status, result.error) == (
        FitStatus.FAILED,
        "TrainingDiverged: the fit produced non-finite forecasts",
    )


def test_backtest_scores_that_are_not_finite_come_back_as_none(monkeypatch):
    real = published.forecasts

    def scored(model, horizon, levels):
        out = real(model, horizon, levels)
        out[0].backtest = {"rmae": math.inf, "mae": np.float64(0.5), "naive_mae": None, "mase": math.nan}
        return out

    monkeypatch.setattr(published, "forecasts", scored)
    result = run_task(series_task())
    assert result.status == FitStatus.OK
    assert result.forecast.backtest == {"rmae": None, "mae": 0.5, "naive_mae": None, "mase": None}
    assert type(result.forecast.backtest["mae"]) is float


# --- a batch of series -----------------------------------------------------------------------------


def test_a_batch_gives_what_each_series_alone_gives_and_shares_its_time(ticking):
    batch = SeriesBatch([series_task(i, params={**PARAMS, "seed": i}) for i in range(3)])
    results = run_task(batch)
    assert [r.key for r in results] == ["csv:s0", "csv:s1", "csv:s2"]
    assert [r.series_id for r in results] == [100, 101, 102]
    for task, result in zip(batch.tasks, results):
        assert_result_of(result, fitted(task.values, params=task.params))
        assert result.warm is False and result.note is None
        assert result.seconds == pytest.approx(1 / 3)  # one tick for the batch's fits, shared


def test_a_batch_continues_warm_series_and_fits_the_others_alone_with_their_reason(ticking):
    warm_from = run_task(series_task(1)).blob
    batch = SeriesBatch([series_task(1, warm_blob=warm_from), series_task(2, warm_blob=b"?")])
    results = run_task(batch)
    # the warm one continues its model, in the batch: the batch's time is its alone
    assert results[0].warm is True and results[0].note is None and results[0].seconds == 1.0
    assert_result_of(results[0], fitted(SERIES[1], published.load(warm_from)))
    # the unloadable one is fitted cold on its own, saying why
    alone = tasks.train_series(batch.tasks[1])
    assert results[1].warm is False and results[1].note == alone.note
    assert results[1].note.startswith("the model to continue from could not be loaded (")
    assert_result_of(results[1], fitted(SERIES[2]))


def test_warm_series_in_a_batch_share_its_time(ticking):
    blobs = [run_task(series_task(i)).blob for i in range(2)]
    results = run_task(SeriesBatch([series_task(i, warm_blob=blobs[i]) for i in range(2)]))
    for i, result in enumerate(results):
        assert result.warm is True and result.note is None and result.seconds == 0.5
        assert_result_of(result, fitted(SERIES[i], published.load(blobs[i])))


def test_a_series_that_fails_in_a_batch_fails_as_it_does_alone(ticking):
    batch = SeriesBatch([series_task(0, values=SHORT), series_task(1)])
    results = run_task(batch)
    alone = tasks.train_series(batch.tasks[0])
    assert results[0] == SeriesResult("csv:s0", 100, FitStatus.FAILED, error=alone.error, seconds=1.0, params=PARAMS)
    assert alone.error.startswith("SeriesTooShort: ")
    assert_result_of(results[1], fitted(SERIES[1]))
    assert results[1].seconds == 0.5  # the batch fitted both: one tick shared


def test_a_batch_whose_fits_all_fail_fits_each_alone(monkeypatch, ticking):
    def fail_each(self, ys, **kwargs):
        return [FloatingPointError("overflow")] * len(ys)

    monkeypatch.setattr(AutoForecaster, "fit_each", fail_each)
    batch = SeriesBatch([series_task(i) for i in range(2)])
    results = run_task(batch)
    for task, result in zip(batch.tasks, results):
        assert_result_of(result, fitted(task.values))
        assert result.seconds == 1.0  # its own fit's time, not a share of the batch


@pytest.mark.parametrize("where", ["history", "forecasts"])
def test_a_batch_member_whose_result_is_unusable_is_fitted_alone(where, monkeypatch, ticking):
    """A member whose losses or forecasts are not finite after the batch's fit goes through
    ``train_series`` (its own fit); the others keep the batch's results."""
    real = getattr(published, where)
    calls = []

    def poisoned(model, *args):
        out = real(model, *args)
        calls.append(where)
        if len(calls) == 2:  # the second member's, read after the batch's fit
            if where == "history":
                out[-1]["train_loss"] = math.nan
            else:
                out[0].point[0] = math.nan
        return out

    monkeypatch.setattr(published, where, poisoned)
    batch = SeriesBatch([series_task(0), series_task(1), series_task(2)])
    results = run_task(batch)
    assert len(calls) == 4  # three members read once, the second again after its own fit
    for task, result in zip(batch.tasks, results):
        assert_result_of(result, fitted(task.values))
    assert [r.seconds for r in results] == [pytest.approx(1 / 3), 1.0, pytest.approx(1 / 3)]


# --- a group, whole or in parts --------------------------------------------------------------------


def test_a_group_task_gives_the_forecaster_fitted_across_its_series(ticking):
    task = group_task()
    result = run_task(task)
    assert isinstance(result, GroupResult) and result.group_key == "group:g"
    assert_result_of(result, fitted(list(SERIES), across=True), forecasts_index=None)
    assert len(result.forecasts) == 3
    assert result.warm is False and result.note is None and result.seconds == 1.0


def test_a_group_that_cannot_be_fitted_fails_with_the_reason(ticking):
    task = group_task([SHORT, SHORT])
    with pytest.raises(Exception) as raised:
        fitted([SHORT, SHORT], across=True)
    assert run_task(task) == GroupResult(
        "group:g", FitStatus.FAILED, error=exception_line(raised.value), seconds=1.0, params=PARAMS
    )


def test_a_warm_group_continues_and_an_unusable_one_is_fitted_cold_with_the_reason():
    previous = run_task(group_task()).blob
    warm = run_task(group_task(warm_blob=previous))
    assert warm.warm is True and warm.note is None
    assert_result_of(warm, fitted(list(SERIES), published.load(previous), across=True), forecasts_index=None)
    smaller = run_task(group_task(SERIES[:2], warm_blob=previous))
    assert smaller.warm is False
    assert smaller.note == (
        "the warm start from the previous group model failed (ValueError: warm_start model was fitted on 3 "
        "series, not 2): trained cold"
    )
    garbage = run_task(group_task(warm_blob=b"garbage"))
    assert garbage.warm is False and garbage.note.startswith("the group model to continue from could not be loaded (")


@pytest.mark.parametrize("parts", [1, 2, 3])
def test_a_group_fitted_in_parts_gives_what_one_fit_gives(parts, ticking):
    task = group_task()
    pieces = [run_task(GroupPart(task, k, parts)) for k in range(parts)]
    assert all(isinstance(p, PartResult) and p.seconds == 1.0 and p.warm is False and p.note is None for p in pieces)
    pieces = [PartResult(p.part, p.warm, p.note, 5.0 + k) for k, p in enumerate(pieces)]  # as if measured there
    result = combine_group(task, pieces)
    assert_result_of(result, fitted(list(SERIES), across=True), forecasts_index=None)
    assert result.group_key == "group:g" and result.warm is False and result.note is None
    assert result.seconds == 5.0 + (parts - 1) + 1.0  # the slowest part (they ran at once) and the combining


def test_warm_parts_carry_the_warm_start_and_its_note_into_the_group():
    previous = run_task(group_task()).blob
    for blob, warm in [(previous, True), (b"garbage", False)]:
        task = group_task(warm_blob=blob)
        pieces = [run_task(GroupPart(task, k, 2)) for k in range(2)]
        result = combine_group(task, pieces)
        whole = run_task(task)
        assert (result.warm, result.note) == (whole.warm, whole.note) == (warm, pieces[0].note)
        continued = published.load(blob) if warm else None
        assert_result_of(result, fitted(list(SERIES), continued, across=True), forecasts_index=None)
        assert result.blob == whole.blob and result.history == whole.history


def test_a_part_that_fails_fails_the_group_with_the_first_reason(ticking):
    task = group_task([SHORT, SHORT])
    pieces = [run_task(GroupPart(task, k, 2)) for k in range(2)]
    assert all(isinstance(p, GroupResult) and p.status == FitStatus.FAILED for p in pieces)
    assert pieces[0] == GroupResult("group:g", FitStatus.FAILED, error=pieces[0].error, seconds=1.0, params=PARAMS)
    assert pieces[0].error.startswith("SeriesTooShort: ")
    first = GroupResult("group:g", FitStatus.FAILED, error="first")
    second = GroupResult("group:g", FitStatus.FAILED, error="second")
    good = run_task(GroupPart(group_task(), 0, 2))
    assert combine_group(group_task(), [good, first, second]) is first


def test_parts_that_disagree_on_the_warm_start_are_redone_as_one_fit(ticking):
    task = group_task()
    pieces = [run_task(GroupPart(task, k, 2)) for k in range(2)]
    pieces[1] = PartResult(pieces[1].part, True, None, pieces[1].seconds)
    result = combine_group(task, pieces)
    assert result.warm is False and result.note is None
    assert_result_of(result, fitted(list(SERIES), across=True), forecasts_index=None)
    assert result.seconds == 1.0  # the fit done again, whole, timed on its own


def test_parts_that_cannot_be_combined_fail_the_group_with_the_reason():
    task = group_task()
    piece = run_task(GroupPart(task, 0, 2))
    assert combine_group(task, [piece, piece]) == GroupResult(
        "group:g", FitStatus.FAILED, error="ValueError: combine: got parts [0, 0], the fit needs each of 0..1 once",
        params=PARAMS,
    )  # fmt: skip


# --- failures outside the model ----------------------------------------------------------------------


def test_the_failed_result_of_each_kind_of_task():
    series, group = series_task(1), group_task()
    assert failed_result(series, "why") == SeriesResult("csv:s1", 101, FitStatus.FAILED, error="why", params=PARAMS)
    assert failed_result(group, "why") == GroupResult("group:g", FitStatus.FAILED, error="why", params=PARAMS)
    assert failed_result(GroupPart(group, 1, 2), "why") == failed_result(group, "why")
    assert failed_result(
        SeriesBatch(
            [series_task(0), series],
        ),
        "why",
    ) == [
        failed_result(series_task(0), "why"),
        failed_result(series, "why"),
    ]


def _out_of_memory(*args, **kwargs):
    raise MemoryError


@pytest.mark.parametrize(
    ("method", "task", "size"),
    [
        ("fit", series_task(), 80),
        ("fit_many", group_task(), 240),
        ("fit_many_part", GroupPart(group_task(), 1, 2), 240),
    ],
)
def test_running_out_of_memory_fails_the_task_with_its_size(method, task, size, monkeypatch):
    monkeypatch.setattr(AutoForecaster, method, _out_of_memory)
    result = run_task(task)
    expected = f"out of memory while training on {size} observations (lower model.max_points or service.workers)"
    assert result == failed_result(task, expected)


def test_a_batch_out_of_memory_is_trained_one_series_at_a_time(monkeypatch, ticking):
    monkeypatch.setattr(AutoForecaster, "fit_each", _out_of_memory)
    batch = SeriesBatch([series_task(i) for i in range(2)] + [series_task(2, values=SHORT)])
    results = run_task(batch)
    for task, result in zip(batch.tasks[:2], results):
        assert_result_of(result, fitted(task.values))
        assert result.seconds == 1.0
    assert results[2].status == FitStatus.FAILED and results[2].error.startswith("SeriesTooShort: ")


def test_an_unexpected_exception_is_a_failed_result_naming_it():
    def broken(self, *args, **kwargs):
        raise KeyError("lost")

    for task, method in [
        (series_task(), "fit"),
        (group_task(), "fit_many"),
        (GroupPart(group_task(), 0, 2), "fit_many_part"),
    ]:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(AutoForecaster, method, broken)
            assert run_task(task) == failed_result(task, "internal error: KeyError: 'lost'")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(AutoForecaster, "fit_each", broken)
        batch = SeriesBatch([series_task(0), series_task(1)])
        assert run_task(batch) == failed_result(batch, "internal error: KeyError: 'lost'")


def test_numpy_warnings_of_a_fit_are_not_shown(monkeypatch):
    real = AutoForecaster.fit

    def noisy(self, *args, **kwargs):
        np.log(np.array([-1.0]))  # RuntimeWarning: invalid value
        return real(self, *args, **kwargs)

    monkeypatch.setattr(AutoForecaster, "fit", noisy)
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        result = run_task(series_task())
    assert result.status == FitStatus.OK, result.error
    assert shown == []


def test_other_warnings_of_a_fit_still_reach_the_caller(monkeypatch):
    real = AutoForecaster.fit

    def deprecated(self, *args, **kwargs):
        warnings.warn("an option goes away", DeprecationWarning, stacklevel=1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(AutoForecaster, "fit", deprecated)
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        assert run_task(series_task()).status == FitStatus.OK
    assert [(w.category, str(w.message)) for w in shown] == [(DeprecationWarning, "an option goes away")]


# --- the process that trains ---------------------------------------------------------------------------


def blas_threads() -> set[int]:
    return {lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"}


def test_a_process_that_trains_uses_one_blas_thread_and_sets_it_once(monkeypatch):
    threadpoolctl.threadpool_limits(limits=3, user_api="blas")
    if blas_threads() != {3}:
        pytest.skip("this BLAS cannot be given 3 threads")
    monkeypatch.setattr(tasks, "_tuned", False)
    assert run_task(series_task()).status == FitStatus.OK
    assert blas_threads() == {1}
    threadpoolctl.threadpool_limits(limits=3, user_api="blas")  # the process changes it afterwards
    run_task(series_task())
    assert blas_threads() == {3}  # tuned once per process, not at each task
    threadpoolctl.threadpool_limits(limits=1, user_api="blas")


def test_keep_freed_memory_sets_both_thresholds_and_freed_arrays_are_reused():
    import resource

    assert keep_freed_memory() is True
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(100):  # what a fit does: several arrays of 1 MiB at once, all freed again
        arrays = [np.ones(2**17) for _ in range(8)]
        del arrays
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert faults < 2_500, faults  # 100 x 8 x 256 pages if each came back from the kernel


class _Libc:
    def __init__(self, answers: dict[int, int]):
        self.calls: list[tuple[int, int]] = []

        def mallopt(param, value):
            self.calls.append((param, value))
            return answers[param]

        self.mallopt = mallopt


def test_keep_freed_memory_is_false_without_glibc_or_when_refused(monkeypatch):
    def no_libc(name):
        raise OSError("no such library")

    monkeypatch.setattr(tasks.ctypes, "CDLL", no_libc)
    assert keep_freed_memory() is False
    refusing = _Libc({-3: 0, -1: 1})
    monkeypatch.setattr(tasks.ctypes, "CDLL", lambda name: refusing)
    assert keep_freed_memory() is False
    accepting = _Libc({-3: 1, -1: 1})
    monkeypatch.setattr(tasks.ctypes, "CDLL", lambda name: accepting)
    assert keep_freed_memory() is True
    assert accepting.calls == [(-3, 32 * 2**20), (-1, 64 * 2**20)]
