"""The train stage (service/run/train.py) on its own: the planned units' tasks, in this process or on
a real local pool of worker processes, handed back in plan order with what each task computes
(``run_task``, checked here in this process), whatever the number of workers, batches and parts;
a stop request; the open-files limit that worker processes need."""

from __future__ import annotations

import resource
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import closing

import numpy as np
import pytest

from tickcast.service import stopping
from tickcast.service.errors import TickcastError
from tickcast.service.executors import SchedulerLost, WorkerLost
from tickcast.service.run.plan import GroupPlan, Plan
from tickcast.service.run.tasks import failed_result, run_task
from tickcast.service.run.train import (
    BATCH_MAX,
    _in_pool,
    _Jobs,
    batch_size,
    ensure_open_files,
    group_parts,
    open_files_needed,
    parts_of,
    tasks_of,
    train_planned,
)
from tickcast.service.run.values import (
    FitRecord,
    GroupPart,
    GroupTask,
    GroupTrained,
    SeriesBatch,
    SeriesResult,
    SeriesTask,
)
from tickcast.service.settings import ExecutorSettings, SeriesSpec
from tickcast.service.status import FitStatus, SeriesFit
from tickcast.service.stopping import StopNow

PARAMS = {"epochs": 1, "season_length": 1, "seed": 0}
MEMBERS = ("rnn", "ets", "theta")
RNG = np.random.default_rng(3)
VALUES = [np.cumsum(RNG.normal(0, 1, 60)) + 40 + i for i in range(20)]


def series_plan(i: int, params: dict | None = None, work: bool = True) -> Plan:
    spec = SeriesSpec(f"csv:s{i}", "csv", f"s{i}")
    record = FitRecord(run_id=1, series_id=i, status=FitStatus.OK, settings_hash="h")
    task = SeriesTask(spec.key, i, VALUES[i], params or {**PARAMS, "seed": i}, 2, (0.8,), MEMBERS) if work else None
    return Plan(spec, i, record, SeriesFit.TRAINED if work else SeriesFit.UP_TO_DATE, task)


def group_plan(members: list[int], warm_blob: bytes | None = None, alone: bool = False) -> GroupPlan:
    plans = tuple(series_plan(i, work=alone) for i in members)
    task = GroupTask(
        "M/12", [p.spec.key for p in plans], members, [VALUES[i] for i in members], PARAMS, 2, (0.8,), MEMBERS,
        warm_blob,
    )  # fmt: skip
    record = FitRecord(run_id=1, series_id=None, status=FitStatus.OK, settings_hash="h")
    return GroupPlan("M/12", record, task, plans, compare=alone)


def expected(unit):
    """What the unit's tasks give, run one by one in this process."""
    if isinstance(unit, GroupPlan):
        return GroupTrained(run_task(unit.task), [run_task(m.task) for m in unit.members if m.task is not None])
    return run_task(unit.task)


def same(trained, reference) -> bool:
    """The same models and forecasts (the times differ)."""
    if isinstance(reference, GroupTrained):
        return (
            same(trained.group, reference.group)
            and len(trained.alone) == len(reference.alone)
            and all(same(a, b) for a, b in zip(trained.alone, reference.alone))
        )
    keys = ("status", "error", "blob", "history", "params", "warm", "note")
    forecasts = "forecasts" if hasattr(reference, "forecasts") else "forecast"
    return all(getattr(trained, k) == getattr(reference, k) for k in (*keys, forecasts))


def train_all(units, workers: int = 1, stop: threading.Event | None = None) -> list:
    execution = ExecutorSettings("local", workers)
    with closing(train_planned(units, execution, stop or threading.Event())) as results:
        return list(results)


# --- how units become tasks ---------------------------------------------------------------------


def test_a_group_goes_in_parts_when_cold_and_whole_when_warm_then_its_members_own_tasks():
    cold = group_plan([0, 1, 2], alone=True)
    tasks = tasks_of(cold, 2)
    assert [type(t) for t in tasks] == [GroupPart, GroupPart, SeriesTask, SeriesTask, SeriesTask]
    assert [(t.part, t.parts, t.task) for t in tasks[:2]] == [(0, 2, cold.task), (1, 2, cold.task)]
    assert tasks[2:] == [m.task for m in cold.members]
    assert tasks_of(cold) == [cold.task, *(m.task for m in cold.members)]
    assert tasks_of(group_plan([0, 1]), 3) == [GroupPart(group_plan([0, 1]).task, k, 3) for k in range(3)]
    warm = group_plan([0, 1], warm_blob=b"model")
    assert (parts_of(warm, 4), parts_of(cold, 4)) == (1, 4)
    assert tasks_of(warm, 4) == [warm.task]
    assert tasks_of(series_plan(3)) == [series_plan(3).task]
    assert tasks_of(series_plan(3, work=False)) == []


def test_a_groups_parts_are_one_per_local_worker_or_two_on_a_cluster():
    assert group_parts(ExecutorSettings("local", 3)) == 3
    assert group_parts(ExecutorSettings("local", 1)) == 1
    assert group_parts(ExecutorSettings("dask", 5, "tcp://127.0.0.1:8786")) == 2


@pytest.mark.parametrize(
    ("n_series", "workers", "size"),
    [(0, 2, 1), (7, 1, 1), (8, 1, 2), (15, 2, 1), (16, 2, 2), (100, 2, 8), (1000, 1, BATCH_MAX), (40, 0, 8)],
)
def test_batches_grow_with_the_series_per_worker_up_to_a_cap(n_series, workers, size):
    assert batch_size(n_series, workers) == size


def test_series_whose_settings_differ_only_in_the_seed_share_batches_of_the_batch_size():
    other = {**PARAMS, "hidden_size": 8}
    units = [series_plan(i) for i in range(8)] + [series_plan(10, other), series_plan(11, other)]
    units.insert(3, group_plan([12, 13], alone=True))
    jobs = _Jobs.of(units, parts=2, workers=1)  # 10 series, one worker: batches of 2
    kinds = [type(j).__name__ for j in jobs.jobs]
    assert (
        kinds
        == ["SeriesBatch", "SeriesBatch", "GroupPart", "GroupPart", "SeriesTask", "SeriesTask"] + ["SeriesBatch"] * 3
    )
    assert [[t.key for t in j.tasks] for j in jobs.jobs if isinstance(j, SeriesBatch)] == [
        ["csv:s0", "csv:s1"], ["csv:s2", "csv:s3"], ["csv:s4", "csv:s5"], ["csv:s6", "csv:s7"], ["csv:s10", "csv:s11"],
    ]  # fmt: skip
    assert jobs.slots[0] == [(0, 0)] and jobs.slots[1] == [(0, 1)] and jobs.slots[2] == [(1, 0)]
    assert jobs.slots[3] == [(2, None), (3, None), (4, None), (5, None)]  # the group: its parts and members
    assert jobs.slots[4] == [(1, 1)] and jobs.slots[10] == [(8, 1)]
    done = {j: (["a", "b"] if isinstance(job, SeriesBatch) else f"job{j}") for j, job in enumerate(jobs.jobs)}
    assert jobs.results_of(1, done) == ["b"] and jobs.results_of(3, done) == ["job2", "job3", "job4", "job5"]
    one_each = _Jobs.of([series_plan(i) for i in range(3)], parts=2, workers=2)  # too few series for batches
    assert one_each.jobs == [series_plan(i).task for i in range(3)]
    assert one_each.slots == [[(0, None)], [(1, None)], [(2, None)]]


# --- training ------------------------------------------------------------------------------------


def test_units_are_trained_in_this_process_and_handed_back_in_plan_order():
    units = [series_plan(0), series_plan(1, work=False), group_plan([2, 3], alone=True), series_plan(4)]
    results = train_all(units)
    assert [unit for unit, _ in results] == [units[0], units[2], units[3]]  # up to date: no work
    for unit, trained in results:
        assert same(trained, expected(unit))
    assert results[0][1].seconds > 0


def test_nothing_to_train_starts_no_workers():
    assert train_all([series_plan(0, work=False)], workers=2) == []


def test_a_pool_gives_what_this_process_gives_with_batches_and_parts():
    units = [series_plan(i) for i in range(16)]  # two workers, 16 series: batches of 2
    units.insert(5, group_plan([16, 17, 18], alone=True))  # its cold fit in two parts, then its members alone
    results = train_all(units, workers=2)
    assert [unit for unit, _ in results] == units
    for unit, trained in results:
        assert same(trained, expected(unit)), unit
        assert isinstance(trained, GroupTrained) == isinstance(unit, GroupPlan)


def test_a_stop_before_training_hands_nothing_back_and_one_during_it_drops_the_rest():
    stop = threading.Event()
    stop.set()
    assert train_all([series_plan(0), series_plan(1)], stop=stop) == []
    stop = threading.Event()
    handed = []
    with closing(train_planned([series_plan(0), series_plan(1)], ExecutorSettings(), stop)) as results:
        for unit, _ in results:
            handed.append(unit.spec.key)
            stop.set()  # requested while the first result is stored
    assert handed == ["csv:s0"]


def test_a_stop_on_a_pool_drops_the_units_not_started():
    """Fits of most of a second each (30 epochs on 600 points): the first comes back long before the
    last could have started."""
    stop = threading.Event()
    slow = {**PARAMS, "epochs": 30, "patience": 1000}
    units = [series_plan(i, slow) for i in range(16)]
    for unit in units:
        unit.task.values = np.cumsum(RNG.normal(0, 1, 600)) + 100
    handed = []
    with closing(train_planned(units, ExecutorSettings("local", 2), stop)) as results:
        for unit, trained in results:
            handed.append(unit)
            assert isinstance(trained, SeriesResult) and trained.status == FitStatus.OK
            stop.set()
    assert 1 <= len(handed) < len(units) and handed == units[: len(handed)]


# --- the open-files limit ------------------------------------------------------------------------------


def test_open_files_needed_grow_with_the_workers():
    assert [open_files_needed(w) for w in (1, 2, 4)] == [68, 72, 80]


def test_the_open_files_limit_is_raised_to_what_workers_need_or_refused_in_one_line(monkeypatch):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (20, hard))
        ensure_open_files(1)  # no worker processes: nothing needed
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (20, hard)
        ensure_open_files(4)
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == (open_files_needed(4), hard)
        monkeypatch.setattr(resource, "getrlimit", lambda which: (20, 70))  # a hard limit below it
        with pytest.raises(TickcastError) as refused:
            ensure_open_files(2)
        assert str(refused.value) == (
            "service.workers = 2 needs at least 72 open files, but the limit is 20 (hard limit 70): raise it "
            "(ulimit -n 72, or nofile in docker-compose.yml) or lower service.workers"
        )
        monkeypatch.setattr(resource, "getrlimit", lambda which: (72, 72))  # exactly enough
        ensure_open_files(2)
        monkeypatch.setattr(resource, "getrlimit", lambda which: (20, 72))
        calls = []
        monkeypatch.setattr(resource, "setrlimit", lambda which, limits: calls.append(limits))
        ensure_open_files(2)
        assert calls == [(72, 72)]
        monkeypatch.setattr(resource, "getrlimit", lambda which: (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        ensure_open_files(2)
        monkeypatch.setattr(resource, "getrlimit", lambda which: (20, resource.RLIM_INFINITY))
        ensure_open_files(2)
        assert calls == [(72, 72), (72, resource.RLIM_INFINITY)]
    finally:
        monkeypatch.undo()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# --- a worker lost, a forced stop: the pool's results as any executor gives them ------------------------


class Losing(ThreadPoolExecutor):
    """A real executor (threads) whose ``lose`` submissions (their numbers, from 0) come back failed as the
    pool reports a worker's death (``exc``), and whose ``never`` ones never come back (a fit that does
    not end)."""

    def __init__(self, lose: set[int] = frozenset(), exc: BaseException | None = None, never: set[int] = frozenset()):
        super().__init__(max_workers=2)
        self.lose, self.exc, self.never, self.submitted = lose, exc, never, []

    def submit(self, fn, /, *args, **kwargs):
        self.submitted.append(args[0])
        n = len(self.submitted) - 1
        if n in self.never:
            return Future()  # pending for ever, and cancellable
        if n in self.lose:
            lost = Future()
            lost.set_exception(self.exc)
            return lost
        return super().submit(fn, *args, **kwargs)


KILLED = WorkerLost("the worker died (SIGKILL: most likely out of memory)")


def in_pool(units, pool, stop: threading.Event | None = None) -> list:
    todo = [u for u in units if isinstance(u, GroupPlan) or u.task is not None]
    plan = _Jobs.of(todo, 2, 1)
    with pool:
        return list(_in_pool(pool, todo, plan, stop or threading.Event(), 2))


def test_a_batch_whose_worker_died_is_sent_again_one_series_per_task():
    units = [series_plan(i) for i in range(8)]  # one worker's view: batches of 2
    pool = Losing(lose={0}, exc=KILLED)
    results = in_pool(units, pool)
    assert [u for u, _ in results] == units
    for unit, trained in results:
        assert same(trained, expected(unit))
    batch = pool.submitted[0]
    assert isinstance(batch, SeriesBatch) and pool.submitted[4:] == batch.tasks  # after the 4 batches


def test_a_series_whose_worker_died_again_fails_alone_and_its_batch_mates_are_stored():
    units = [series_plan(i) for i in range(8)]
    pool = Losing(lose={0, 4}, exc=KILLED)  # the first batch, then its first series sent alone
    results = in_pool(units, pool)
    first, second = results[0][1], results[1][1]
    assert first == SeriesResult(
        "csv:s0", 0, FitStatus.FAILED, error=f"worker failed: WorkerLost: {KILLED}", params=units[0].task.params
    )
    assert same(second, expected(units[1]))


@pytest.mark.parametrize(
    ("units", "job", "exc"),
    [
        ([series_plan(0)], 0, KILLED),  # one series alone: nothing to split
        ([group_plan([0, 1])], 0, KILLED),  # a group's part
        ([series_plan(i) for i in range(8)], 0, SchedulerLost("the scheduler is gone")),  # no retry reaches it
        ([series_plan(i) for i in range(9)], 4, KILLED),  # batches of 2, the last of one series
        ([series_plan(0)], 0, BrokenPipeError("lost the pipe")),
    ],
)
def test_work_lost_with_its_worker_fails_with_the_reason_and_is_not_sent_again(units, job, exc):
    pool = Losing(lose={job}, exc=exc)
    results = in_pool(units, pool)
    lost = pool.submitted[job]
    reason = f"worker failed: {type(exc).__name__}: {exc}"
    failed = failed_result(lost, reason)
    first = results[2 * job][1]
    if isinstance(lost, SeriesBatch):
        assert len(lost.tasks) == (1 if job else 2)
        assert [r for _, r in results[2 * job : 2 * job + len(lost.tasks)]] == failed
    elif isinstance(lost, GroupPart):
        assert first.group == failed
    else:
        assert first == failed
    assert len(pool.submitted) == len(_Jobs.of(units, 2, 1).jobs)  # nothing sent again


def test_work_lost_to_a_stop_is_neither_failed_nor_handed_back():
    stop = threading.Event()
    stop.set()  # a stop signal reaches every process: the workers die of it
    assert in_pool([series_plan(0), series_plan(1)], Losing(lose={0, 1}, exc=KILLED), stop) == []


def test_units_that_finished_after_one_cancelled_by_a_stop_are_still_handed_back():
    stop = threading.Event()
    units = [series_plan(0), series_plan(1), series_plan(2)]
    pool = Losing(never={1})  # the second never starts: cancelled by the stop
    todo, plan = units, _Jobs.of(units, 2, 1)
    handed = []
    with pool:
        for unit, _ in _in_pool(pool, todo, plan, stop, 2):
            handed.append(unit)
            stop.set()
    assert handed == [units[0], units[2]]  # the third had finished: stored, not lost


def test_a_forced_stop_ends_the_wait_for_a_fit_that_does_not_end(monkeypatch):
    monkeypatch.setattr(stopping, "_forced", None)
    pool = Losing(never={0})
    started = time.monotonic()
    threading.Timer(0.3, stopping.force, args=("a second stop signal",)).start()
    with pytest.raises(StopNow, match="a second stop signal"):
        in_pool([series_plan(0)], pool)
    assert time.monotonic() - started < 1.0  # the wait looks every 0.2 s


def test_a_stop_while_a_lost_batch_is_sent_again_cancels_its_series_not_started():
    stop = threading.Event()
    units = [series_plan(i) for i in range(8)]
    pool = Losing(lose={0}, never={4}, exc=KILLED)  # the lost batch's first series, sent alone, never starts
    threading.Timer(0.3, stop.set).start()
    results = in_pool(units, pool, stop)
    assert [u for u, _ in results] == units[2:]  # the lost batch's series: not failed, left to the next run
    assert pool.submitted[4:] == pool.submitted[0].tasks
