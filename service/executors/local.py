"""The ``local`` executor (the default): ``service.workers`` worker processes on this machine."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import Executor, ProcessPoolExecutor

from ..settings import ExecutorSettings
from .kind import ExecutorKind


def _quiet_worker(parent: int) -> None:
    # The parent coordinates shutdown; a worker must not die half-way on the group's signal.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def orphan_watch() -> None:  # a parent killed with SIGKILL cannot tell its workers to leave
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=orphan_watch, daemon=True).start()


def process_pool(workers: int) -> ProcessPoolExecutor:
    # One BLAS thread per worker (see run/tasks.tune_process), from the start of each process.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    # spawn, not fork: the parent may run scheduler and database threads.
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_quiet_worker,
        initargs=(os.getpid(),),
    )


def _open(execution: ExecutorSettings, tasks: int) -> Executor:
    return process_pool(min(execution.workers, tasks))


EXECUTOR = ExecutorKind(
    name="local",
    description="worker processes here",
    open=_open,
    # One worker, or one task: train in this process, one task after the other.
    in_process=lambda execution, tasks: execution.workers <= 1 or tasks <= 1,
)
