"""The ``local`` executor (the default): ``service.workers`` worker processes on this machine.

A ``concurrent.futures.ProcessPoolExecutor`` breaks as a whole when one worker dies (the kernel's
out-of-memory killer sends SIGKILL): every task still in it fails with ``BrokenProcessPool``.
``LocalPool`` wraps it so that a dead worker costs only the task it was running:

- each worker notes which task it is running (a file per worker in a scratch directory: no lock
  a killed process could leave held);
- when the pool breaks, the task on the worker that died fails with ``WorkerLost`` and how it died
  (SIGKILL: most likely the out-of-memory killer), and every other unfinished task is submitted again
  to a fresh pool, in the same order;
- a stop that cannot wait (``kill``, or leaving the ``with`` block on an exception) kills the workers
  rather than waiting for their fits.

Workers run in their own process group, so a Ctrl-C at the terminal (sent to the whole group) reaches
only the parent, which coordinates the stop; they keep SIGTERM's default, so a pool can end them.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import tempfile
import threading
import time
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from .. import stopping
from ..settings import ExecutorSettings
from .kind import ExecutorKind, WorkerLost

MAX_RESTARTS_WITHOUT_CULPRIT = 3  # pools broken with no task to blame before every task is failed

_slots: str | None = None  # in a worker: the directory where it notes its current task


def _worker_start(parent: int, slots: str) -> None:
    global _slots
    _slots = slots
    os.setpgrp()  # out of the terminal's process group: the parent coordinates every stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def orphan_watch() -> None:  # a parent killed with SIGKILL cannot tell its workers to leave
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=orphan_watch, daemon=True).start()


def _noted(task_id: int, fn, args: tuple, kwargs: dict):
    """In a worker: note that this process runs ``task_id`` (written whole, then renamed: a reader
    never sees half a number), then run it."""
    if _slots is not None:
        note = os.path.join(_slots, f"{os.getpid()}.tmp")
        try:
            with open(note, "w") as fh:
                fh.write(str(task_id))
            os.replace(note, os.path.join(_slots, str(os.getpid())))
        except OSError:  # a full disk: the task still runs; if this worker dies, none is blamed
            pass
    return fn(*args, **kwargs)


class _Proxy(Future):
    """The caller's future; cancelling it cancels the task in the pool (refused once a worker has it)."""

    def __init__(self) -> None:
        super().__init__()
        self.inner: Future | None = None

    def cancel(self) -> bool:
        if self.inner is not None and not self.inner.cancel():
            return False
        return super().cancel()


@dataclass
class _Task:
    id: int
    proxy: _Proxy
    fn: object
    args: tuple
    kwargs: dict = field(default_factory=dict)


class LocalPool(Executor):
    def __init__(self, workers: int):
        # One BLAS thread per worker (see run/tasks.tune_process), from the start of each process.
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, "1")
        self._workers = workers
        self._slots = tempfile.mkdtemp(prefix="tickcast-workers-")
        self._lock = threading.RLock()
        self._tasks: dict[int, _Task] = {}  # not finished yet, by id (in submission order)
        self._next_id = 0
        self._closed = False
        self._restarts_without_culprit = 0
        self._pool: ProcessPoolExecutor | None = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: the parent may run scheduler and database threads.
        return ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_worker_start,
            initargs=(os.getpid(), self._slots),
        )

    def submit(self, fn, /, *args, **kwargs) -> Future:
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit after shutdown")
            task = _Task(self._next_id, _Proxy(), fn, args, kwargs)
            self._next_id += 1
            self._tasks[task.id] = task
            if self._pool is not None:  # else a broken pool is being replaced: _recover sends it
                self._send(task)
        return task.proxy

    def _send(self, task: _Task) -> None:
        pool = self._pool
        assert pool is not None
        inner = pool.submit(_noted, task.id, task.fn, task.args, task.kwargs)
        task.proxy.inner = inner
        inner.add_done_callback(lambda done: self._finished(task, pool, done))

    def _finished(self, task: _Task, pool: ProcessPoolExecutor, inner: Future) -> None:
        """In the pool's thread, as each task ends (or the pool breaks under it)."""
        if inner.cancelled():
            with self._lock:
                self._tasks.pop(task.id, None)
            return
        exc = inner.exception()
        if isinstance(exc, BrokenProcessPool):
            workers = dict(pool._processes or {})  # gone from the pool once it is shut down
            with self._lock:
                if pool is not self._pool or self._closed:  # the break was handled, or we are leaving
                    if self._closed:
                        self._settle(task, WorkerLost("the run stopped before this task came back"))
                    return
                self._pool = None  # being replaced
            threading.Thread(target=self._recover, args=(pool, workers), name="tickcast-pool-recovery").start()
            return
        self._settle(task, exc, inner)

    def _settle(self, task: _Task, exc: BaseException | None, inner: Future | None = None) -> None:
        with self._lock:
            if self._tasks.pop(task.id, None) is None:
                return
        if task.proxy.done():
            return
        if exc is not None:
            task.proxy.set_exception(exc)
        else:
            assert inner is not None
            task.proxy.set_result(inner.result())

    def _recover(self, broken: ProcessPoolExecutor, workers: dict) -> None:
        """The pool broke: fail the task of each worker that died; run the rest in a fresh pool."""
        broken.shutdown(wait=True)  # it ends its surviving workers with SIGTERM, and reaps them all
        dead = {pid: proc.exitcode for pid, proc in workers.items() if proc.exitcode not in (None, -signal.SIGTERM)}
        culprits = {}
        for pid, code in dead.items():
            note = os.path.join(self._slots, str(pid))
            try:
                with open(note) as fh:
                    culprits[int(fh.read())] = (pid, code)  # its last task: unfinished if it died in it
                os.unlink(note)
            except (OSError, ValueError):
                continue  # it died before its first task
        with self._lock:
            if self._closed:
                return
            unfinished = [t for t in self._tasks.values() if not t.proxy.done()]
            blamed = [t for t in unfinished if t.id in culprits]
            self._restarts_without_culprit = 0 if blamed else self._restarts_without_culprit + 1
            for task in blamed:
                pid, code = culprits[task.id]
                self._tasks.pop(task.id)
                task.proxy.set_exception(WorkerLost(_death(pid, code)))
            rest = [t for t in unfinished if t.id not in culprits]
            give_up = None
            if stopping.stop_requested():  # e.g. a stop signal sent to every process of the service
                give_up = "the run is stopping: not started again"
            elif self._restarts_without_culprit > MAX_RESTARTS_WITHOUT_CULPRIT:
                give_up = "worker processes kept dying (no task to blame)"
            if give_up is not None:
                for task in rest:
                    self._tasks.pop(task.id)
                    task.proxy.set_exception(WorkerLost(give_up))
                rest = []
            self._pool = self._new_pool()
            for task in rest:
                self._send(task)

    def kill(self) -> None:
        """Stop now: kill the workers (their fits are lost), fail what did not come back."""
        with self._lock:
            self._closed = True
            pool = self._pool
        if pool is not None:
            for proc in list((pool._processes or {}).values()):
                try:
                    proc.kill()
                except (OSError, AttributeError):
                    pass
            pool.shutdown(wait=True, cancel_futures=True)
        self._cleanup()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
            pool = self._pool
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=cancel_futures)
        if wait:
            self._cleanup()

    def _cleanup(self) -> None:
        with self._lock:
            tasks, self._tasks = list(self._tasks.values()), {}
        for task in tasks:
            if not task.proxy.done():
                task.proxy.set_exception(WorkerLost("the run stopped before this task came back"))
        shutil.rmtree(self._slots, ignore_errors=True)

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.shutdown(wait=True)
        else:  # an error or a stop that cannot wait: the fits in progress are not waited for
            self.kill()


def _death(pid: int, code: int) -> str:
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else f"signal {-code}"
        why = (
            " (most likely the kernel's out-of-memory killer: the series needs more memory than was "
            "free; lower model.max_points or service.workers, or allow more memory)"
            if -code == signal.SIGKILL
            else ""
        )
        return f"the worker process running it (pid {pid}) was killed by {name}{why}; the other series went on"
    return f"the worker process running it (pid {pid}) exited with status {code}; the other series went on"


def process_pool(workers: int) -> LocalPool:
    return LocalPool(workers)


def _open(execution: ExecutorSettings, tasks: int) -> Executor:
    return process_pool(min(execution.workers, tasks))


EXECUTOR = ExecutorKind(
    name="local",
    description="worker processes here",
    open=_open,
    # One worker, or one task: train in this process, one task after the other.
    in_process=lambda execution, tasks: execution.workers <= 1 or tasks <= 1,
)
