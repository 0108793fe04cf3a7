"""What every executor module declares: one :class:`ExecutorKind` (see ``executors/__init__.py``)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from ..errors import TickcastError
from ..settings import ExecutorSettings


class ExecutorUnavailable(TickcastError):
    """The executor cannot be used at all (a cluster unreachable, no workers, the extra not
    installed): the run fails with this reason before any task is sent; what is stored is untouched."""


class WorkerLost(Exception):
    """A task's result was lost with the worker (or the scheduler) it was on: not a bug of the task."""


def no_check(address: str, name: str) -> None:
    """An executor that needs no address."""


@dataclass(frozen=True)
class ExecutorKind:
    """One place to run the train stage's tasks, as the rest of tickcast sees it."""

    name: str  # service.executor
    description: str  # for the config's error message: '"local" (worker processes here)'
    # (settings, number of tasks) -> a concurrent.futures.Executor, used as a context manager
    open: Callable[[ExecutorSettings, int], Executor]
    # (settings, number of tasks) -> train in the driver's own process instead, one task after another
    in_process: Callable[[ExecutorSettings, int], bool]
    # (service.dask_address or the like, the setting's name for the message) -> raises ConfigError
    check: Callable[[str, str], None] = no_check
