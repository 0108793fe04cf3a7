"""Train stage: the planned fits, in worker processes, handed back in plan order.

``train_series`` (service/train.py) touches nothing but its arguments, so a series' result is the
same whatever the number of workers; handing results back in plan order keeps the order of the
writes fixed too.
"""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError
from concurrent.futures import TimeoutError as FuturesTimeout
from typing import Iterator, Sequence

from . import faults
from .config import Settings
from .executors import open_executor, runs_in_process
from .plan import Plan
from .status import FitStatus
from .train import TrainResult, TrainTask, train_series


def _train_guarded(task: TrainTask) -> TrainResult:
    """``train_series`` that turns even an unexpected exception (a bug) into a failed result."""
    try:
        return train_series(task)
    except Exception as exc:  # noqa: BLE001 - one series' bug must not end the run
        return TrainResult(task.key, task.series_id, FitStatus.FAILED,
                           error=f"internal error: {type(exc).__name__}: {exc}")


def train_planned(plans: Sequence[Plan], settings: Settings, stop: threading.Event) -> Iterator[tuple[Plan, TrainResult]]:
    """Train every plan that has a task, on the configured executor (service/executors.py); yield
    ``(plan, result)`` in plan order. On ``stop``, series not started yet are dropped; the ones in
    progress finish and are yielded. Use it in ``contextlib.closing`` so that an error while storing
    a result shuts the executor down at once."""
    todo = [p for p in plans if p.task is not None]
    if not todo:
        return  # nothing to train: no cluster needed
    if runs_in_process(settings, len(todo)):
        for plan in todo:
            if stop.is_set():
                return
            faults.reached("train")
            yield plan, _train_guarded(plan.task)
        return
    with open_executor(settings, len(todo)) as pool:
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
                    except Exception as exc:  # the worker (or the cluster) died: killed, out of memory
                        result = TrainResult(plan.task.key, plan.task.series_id, FitStatus.FAILED,
                                             error=f"worker failed: {type(exc).__name__}: {exc}")
                if result is not None:
                    faults.reached("train")
                    yield plan, result
        finally:
            for _, pending in futures:
                pending.cancel()
