"""Train stage: the planned work, on the configured executor (``service/executors/``: local
worker processes or a Dask cluster), handed back in plan order.

The unit of work is a series (a ``SeriesTask``) or a group (a ``GroupTask`` with every member's
values and the group's previous model; under ``auto``'s comparison also each member's own
``SeriesTask``). On a pool a group's fit is split into parts (``GroupPart``, one per local worker),
which run at once on different workers; the driver combines them into the model one fit gives.
Every task is submitted on its own, as ``run_task(task)``: a module-level function of plain data
that returns plain data (``run/tasks.py``), so any ``concurrent.futures``-compatible executor can
run it. A unit is handed back once all its tasks
are done, in plan order, which keeps the order of the writes fixed whatever the number of workers.
"""

from __future__ import annotations

import resource
import threading
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import CancelledError, Executor, Future
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import dataclass, field

from .. import faults, stopping
from ..errors import TickcastError
from ..executors import open_executor, runs_in_process
from ..executors.kind import WorkerLost
from ..settings import ExecutorSettings
from .plan import GroupPlan, Unit
from .tasks import combine_group, failed_result, run_task
from .values import GroupPart, GroupTask, GroupTrained, SeriesBatch, SeriesTask, Trained


def open_files_needed(workers: int) -> int:
    """File descriptors a run needs: the database, HTTP and files, plus the pool's pipes and
    process handles for each worker (measured: a 2-worker run needs 21, a 4-worker run 25; the
    rest is headroom)."""
    return 64 + 4 * workers


def ensure_open_files(workers: int) -> None:
    """With worker processes, make sure the open-files limit (``ulimit -n``) allows them: raise the
    soft limit up to the hard one if needed, else fail now, in one line, with what is needed
    (rather than with "Too many open files" half-way through a run)."""
    if workers <= 1:
        return
    needed = open_files_needed(workers)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    if hard == resource.RLIM_INFINITY or hard >= needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
        return
    raise TickcastError(
        f"service.workers = {workers} needs at least {needed} open files, but the limit is {soft} "
        f"(hard limit {hard}): raise it (ulimit -n {needed}, or nofile in docker-compose.yml) "
        "or lower service.workers"
    )


# A Dask cluster's size is not known when the work is planned: its group fits go in this many parts.
DASK_GROUP_PARTS = 2


def group_parts(execution: ExecutorSettings) -> int:
    """How many parts a group's fit is split into on a pool: one per local worker, so that every
    core works on it (``AutoForecaster.fit_many_part``; the driver combines them)."""
    return execution.workers if execution.name == "local" else DASK_GROUP_PARTS


def parts_of(unit: GroupPlan, parts: int) -> int:
    """The parts a group's fit goes in: ``parts`` for a cold fit (its validation and final RNN fits
    run at once), one for a warm one (a single fine-tune: starting workers would cost more)."""
    return parts if unit.task.warm_blob is None else 1


def tasks_of(unit: Unit, parts: int = 1) -> list[SeriesTask | GroupTask | GroupPart]:
    """The tasks of a unit: a series' one, or a group's fit (whole, or in ``parts``) followed by its
    members' own fits (``auto``'s comparison)."""
    if isinstance(unit, GroupPlan):
        parts = parts_of(unit, parts)
        group: list = [unit.task] if parts <= 1 else [GroupPart(unit.task, k, parts) for k in range(parts)]
        return group + [m.task for m in unit.members if m.task is not None]
    return [unit.task] if unit.task is not None else []


def _assemble(unit: Unit, results: list, parts: int = 1) -> Trained:
    if isinstance(unit, GroupPlan):
        parts = parts_of(unit, parts)
        if parts > 1:
            return GroupTrained(combine_group(unit.task, results[:parts]), list(results[parts:]))
        return GroupTrained(results[0], list(results[1:]))
    return results[0]


# Per-series tasks whose settings differ only in the seed go as batches (SeriesBatch: fit_each, the
# same models faster) of up to this many, when there are enough to keep BATCH_SPREAD batches per
# worker (a small run keeps one task per series: its work still spreads over every worker).
BATCH_MAX = 8
BATCH_SPREAD = 4


def batch_size(n_series: int, workers: int) -> int:
    return max(1, min(BATCH_MAX, n_series // (BATCH_SPREAD * max(workers, 1))))


def _batch_key(task: SeriesTask) -> str:
    shared = {k: v for k, v in task.params.items() if k != "seed"}
    return repr((sorted(shared.items()), task.members, task.horizon, task.levels))


@dataclass
class _Jobs:
    """What goes to the executor (``jobs``: tasks and batches) and, per unit in plan order, where its
    results come from (``slots``: the job, and the position in a batch or None)."""

    jobs: list = field(default_factory=list)
    slots: list[list[tuple[int, int | None]]] = field(default_factory=list)

    @classmethod
    def of(cls, todo: list[Unit], parts: int, workers: int) -> _Jobs:
        out = cls()
        size = batch_size(sum(not isinstance(u, GroupPlan) for u in todo), workers)
        filling: dict[str, int] = {}  # batch key -> the job index of the batch being filled
        for unit in todo:
            slots: list[tuple[int, int | None]] = []
            if isinstance(unit, GroupPlan) or size == 1:
                for task in tasks_of(unit, parts):
                    out.jobs.append(task)
                    slots.append((len(out.jobs) - 1, None))
            else:
                single = unit.task
                assert single is not None  # units without work are not in todo
                key = _batch_key(single)
                j = filling.get(key)
                if j is None or len(out.jobs[j].tasks) == size:
                    out.jobs.append(SeriesBatch([]))
                    j = filling[key] = len(out.jobs) - 1
                out.jobs[j].tasks.append(single)
                slots.append((j, len(out.jobs[j].tasks) - 1))
            out.slots.append(slots)
        return out

    def results_of(self, i: int, done: dict[int, object]) -> list:
        return [done[j] if pos is None else done[j][pos] for j, pos in self.slots[i]]  # type: ignore[index]


def train_planned(
    units: Sequence[Unit], execution: ExecutorSettings, stop: threading.Event
) -> Generator[tuple[Unit, Trained], None, None]:
    """Train every unit that has work, on the configured executor; yield ``(unit, result)`` in plan
    order. On ``stop``, units not started yet are dropped; the ones in progress finish and are
    yielded, unless the stop is forced (``stopping``): then StopNow is raised, a fit in this process
    interrupted and worker processes killed. Use it in ``contextlib.closing`` so that an error while
    storing a result shuts the executor down at once."""
    todo = [u for u in units if isinstance(u, GroupPlan) or u.task is not None]
    if not todo:
        return  # nothing to train: no cluster needed
    parts = group_parts(execution)
    if runs_in_process(execution, sum(len(tasks_of(u, parts)) for u in todo)):
        plan = _Jobs.of(todo, 1, 1)
        done: dict[int, object] = {}
        for i, unit in enumerate(todo):
            for j, _ in plan.slots[i]:
                if j in done:
                    continue
                if stop.is_set():
                    return
                with stopping.interruptible():  # a fit never looks at the stop: a forced one interrupts it
                    done[j] = run_task(plan.jobs[j])
            faults.reached("train")
            yield unit, _assemble(unit, plan.results_of(i, done))
        return
    plan = _Jobs.of(todo, parts, execution.workers)
    with open_executor(execution, len(plan.jobs)) as pool:
        yield from _in_pool(pool, todo, plan, stop, parts)


def _in_pool(
    pool: Executor, todo: list[Unit], plan: _Jobs, stop: threading.Event, parts: int
) -> Iterator[tuple[Unit, Trained]]:
    futures = [pool.submit(run_task, job) for job in plan.jobs]
    done: dict[int, object] = {}
    try:
        for i, unit in enumerate(todo):
            for j, _ in plan.slots[i]:
                if j not in done:
                    done[j] = _wait(plan.jobs[j], futures[j], futures, stop, pool)
            if any(done[j] is None for j, _ in plan.slots[i]):
                continue  # cancelled on a stop request
            faults.reached("train")
            yield unit, _assemble(unit, plan.results_of(i, done), parts)
    finally:
        for pending in futures:
            pending.cancel()


def _wait(job, future: Future, futures: list[Future], stop: threading.Event, pool: Executor):
    """The job's result; None if it was cancelled (stop); failed results if its worker died, except
    for a batch of series: sent again one series per task, so that a series that kills its worker
    (the out-of-memory killer) fails alone. StopNow when the stop is forced."""
    while True:
        stopping.check_forced()
        if stop.is_set():
            for pending in futures:
                pending.cancel()  # a task already running cannot be cancelled: it finishes
        try:
            return future.result(timeout=0.2)
        except FuturesTimeout:
            continue
        except CancelledError:
            return None
        except Exception as exc:  # noqa: BLE001 - the worker (or the cluster) died: killed, out of memory
            if stop.is_set():  # lost to the stop (a signal sent to every process): not run, not failed
                return None
            # A worker's death (WorkerLost itself; not its subclasses, such as a lost Dask scheduler,
            # which no retry would reach).
            if type(exc) is WorkerLost and isinstance(job, SeriesBatch) and len(job.tasks) > 1:
                return _one_by_one(job, futures, stop, pool)
            return failed_result(job, f"worker failed: {type(exc).__name__}: {exc}")


def _one_by_one(batch: SeriesBatch, futures: list[Future], stop: threading.Event, pool: Executor):
    singles = [pool.submit(run_task, task) for task in batch.tasks]
    futures.extend(singles)  # cancelled with the others on a stop
    results = []
    for task, single in zip(batch.tasks, singles):
        result = _wait(task, single, futures, stop, pool)
        if result is None:
            return None
        results.append(result)
    return results
