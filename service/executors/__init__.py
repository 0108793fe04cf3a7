"""Where the train stage's tasks run: the executor that ``service.executor`` names.

Every executor module declares one ``EXECUTOR`` (an :class:`ExecutorKind`: its name, how to open
it, when the driver trains in its own process instead, how its address is checked); ``EXECUTORS``
is the registry that the config and the train stage read: a new executor is one module and one
line below.

Each opens a ``concurrent.futures.Executor``, and a task is a module-level function of plain data
(arrays, bytes, numbers in; the same out: ``service/run/tasks.py``), so whatever the train stage
submits runs anywhere, and a worker needs no database: the driver alone reads the tables before
and writes each result after, one transaction per series.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Executor
from contextlib import contextmanager

from ..settings import ExecutorSettings
from . import dask_cluster, local
from .dask_cluster import QUIET_WORKER_ENV, DaskExecutor, SchedulerLost
from .kind import ExecutorKind, ExecutorUnavailable, WorkerLost

EXECUTORS: dict[str, ExecutorKind] = {
    kind.name: kind
    for kind in (
        local.EXECUTOR,
        dask_cluster.EXECUTOR,
    )
}


def runs_in_process(execution: ExecutorSettings, tasks: int) -> bool:
    """Train in the driver's process, one task after the other (a local executor with one worker,
    or one task); a cluster is always used when one is configured."""
    return EXECUTORS[execution.name].in_process(execution, tasks)


@contextmanager
def open_executor(execution: ExecutorSettings, tasks: int) -> Iterator[Executor]:
    """The configured executor for ``tasks`` tasks, shut down on leaving: a local pool waits for the
    fits in progress, a cluster's results still out are dropped."""
    with EXECUTORS[execution.name].open(execution, tasks) as executor:
        yield executor


__all__ = [
    "EXECUTORS",
    "ExecutorKind",
    "ExecutorUnavailable",
    "WorkerLost",
    "SchedulerLost",
    "DaskExecutor",
    "QUIET_WORKER_ENV",
    "open_executor",
    "runs_in_process",
]
