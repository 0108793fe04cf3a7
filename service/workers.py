"""Train stage: the planned fits, in worker processes, handed back in plan order.

``train_series`` (service/train.py) touches nothing but its arguments, so a series' result is the
same whatever the number of workers; handing results back in plan order keeps the order of the
writes fixed too.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
import warnings
from concurrent.futures import CancelledError, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from typing import Iterator, Sequence

from . import faults
from .errors import TickcastError
from .plan import Plan
from .status import FitStatus
from .train import TrainResult, TrainTask, train_series


def _quiet_worker(parent: int) -> None:
    # The parent coordinates shutdown; a worker must not die half-way on the group's signal.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def orphan_watch() -> None:  # a parent killed with SIGKILL cannot tell its workers to leave
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=orphan_watch, daemon=True).start()


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
    import resource

    needed = open_files_needed(workers)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    if hard == resource.RLIM_INFINITY or hard >= needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
        return
    raise TickcastError(f"service.workers = {workers} needs at least {needed} open files, but the limit is {soft} "
                        f"(hard limit {hard}): raise it (ulimit -n {needed}, or nofile in docker-compose.yml) "
                        "or lower service.workers")


def _pool(workers: int) -> ProcessPoolExecutor:
    # One BLAS thread per worker (see train.limit_blas_threads), from the start of each process.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    # spawn, not fork: the parent may run scheduler and database threads.
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_quiet_worker, initargs=(os.getpid(),))


def _train_guarded(task: TrainTask) -> TrainResult:
    """``train_series`` that turns running out of memory, and even an unexpected exception (a bug),
    into a failed result. NumPy's overflow warnings are not printed: a fit that goes wrong comes
    back failed, with the reason, which is what the user reads."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return train_series(task)
    except MemoryError:
        return TrainResult(task.key, task.series_id, FitStatus.FAILED,
                           error=f"out of memory while training on {len(task.values)} observations "
                                 "(lower model.max_points or service.workers)")
    except Exception as exc:  # noqa: BLE001 - one series' bug must not end the run
        return TrainResult(task.key, task.series_id, FitStatus.FAILED,
                           error=f"internal error: {type(exc).__name__}: {exc}")


def train_planned(plans: Sequence[Plan], workers: int, stop: threading.Event) -> Iterator[tuple[Plan, TrainResult]]:
    """Train every plan that has a task; yield ``(plan, result)`` in plan order. On ``stop``, series
    not started yet are dropped; the ones in progress finish and are yielded. Use it in
    ``contextlib.closing`` so that an error while storing a result shuts the pool down at once."""
    todo = [p for p in plans if p.task is not None]
    if workers <= 1 or len(todo) <= 1:
        for plan in todo:
            if stop.is_set():
                return
            faults.reached("train")
            yield plan, _train_guarded(plan.task)
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
                        result = TrainResult(plan.task.key, plan.task.series_id, FitStatus.FAILED,
                                             error=f"worker failed: {type(exc).__name__}: {exc}")
                if result is not None:
                    faults.reached("train")
                    yield plan, result
        finally:
            for _, pending in futures:
                pending.cancel()
