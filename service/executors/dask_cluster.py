"""The ``dask`` executor: the workers of a ``dask.distributed`` cluster, through a ``Client``
connected to ``service.dask_address`` (``tcp://scheduler:8786``). A worker, or the scheduler, that
goes away costs at most the results it held; what is stored stays stored."""

from __future__ import annotations

import collections
import importlib.util
import logging
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Executor, Future

from .. import stopping
from ..errors import ConfigError, cut, first_line
from ..settings import ExecutorSettings
from .kind import ExecutorKind, ExecutorUnavailable, WorkerLost

# The environment a Dask worker for tickcast should start with (docker-compose.yml's dask-worker
# sets it; docs/scaling.md): dask's statistical profiler samples every thread's stack every 10 ms
# and its event loop ticks every 20 ms, each time taking the GIL from the fit running beside it.
# Measured on 2 cores, 100 fits side by side (bench/dask_fits.py): with dask's defaults a batch took
# 1.20-1.33 times as long as in local worker processes, with these 0.91-1.18 times (docs/scaling.md).
QUIET_WORKER_ENV = {
    "DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False",
    "DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL": "1s",
    "DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__INTERVAL": "5s",
}


class SchedulerLost(WorkerLost):
    """The connection to the Dask scheduler was lost: no task can come back any more."""


class DaskExecutor(Executor):
    """A ``dask.distributed.Client`` as a ``concurrent.futures.Executor``, with two differences that
    matter to a long run:

    - At most ``AHEAD`` tasks per worker thread are on the cluster at once; the rest wait here and
      go out as results come back. The scheduler holds only those payloads (5,000 series' values and
      models at once would be hundreds of MB there), and a stop request drops what has not gone out.
      A task that has gone out counts as running: ``cancel()`` refuses, it finishes (as in a pool).
    - A task lost with its worker (dask retries it on another worker up to
      ``distributed.scheduler.allowed-failures`` times first) or with the scheduler fails with
      ``WorkerLost`` and its reason, never with ``CancelledError`` (which means: we cancelled it).
      Once the scheduler is gone, every task not done fails at once, with the same reason.

    Short tasks go out in batches: every task sent costs the driver and the scheduler CPU time
    (about 20 ms together, on the same two cores as the workers in bench/scale.py), which a warm
    fit of 0.1 s cannot carry. Consecutive tasks of one function are sent as one Dask task of as
    many as take about ``BATCH_SECONDS`` on a worker (from the durations the workers report; one at
    first, at most ``MAX_BATCH``). Each task still has its own future, result and exception; a
    worker that dies fails the whole batch it was running.
    """

    AHEAD = 2  # Dask tasks per worker thread: one running, one on its way (no idle gap between them)
    FETCHERS = 4  # threads fetching results from the workers
    BATCH_SECONDS = 0.5  # a batch is as many tasks as take about this long, ...
    MAX_BATCH = 8  # ... but never more than this many (a lost worker loses them all)
    HANDSHAKE_SECONDS = 5.0  # beyond dask's connect timeout, for its handshake
    GATHER_SECONDS = 120.0  # a finished task's result not fetched from its worker by then is lost
    CLOSE_SECONDS = 5.0  # closing the client: a stop must not wait longer

    def __init__(self, client, address: str):
        self._client = client
        self._address = address
        self._lock = threading.Lock()
        self._waiting: collections.deque = collections.deque()  # (proxy, fn, args, kwargs), in order
        self._out: dict = {}  # dask key -> (proxies, remote future): sent, results not handed over yet
        self._seconds: float | None = None  # a task's duration on a worker (moving average)
        self._lost: str | None = None  # why the scheduler cannot be used any more
        self._closed = False
        self._threads, self._threads_checked = 1, 0.0
        # Fetching a result can wait (for a worker that died meanwhile, for a scheduler that is
        # gone): not in dask's one callback thread, which must stay free to hear of that. Daemon
        # threads: a fetch still waiting must not hold the process up at exit.
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        for i in range(self.FETCHERS):
            threading.Thread(target=self._fetch_loop, name=f"tickcast-dask-fetch-{i}", daemon=True).start()

    @classmethod
    def connect(cls, address: str) -> DaskExecutor:
        """Connect and wait for a worker, within dask's connect timeout
        (``distributed.comm.timeouts.connect``, 30 s unless dask's config says otherwise).

        Dask's timeout bounds the TCP connect, not the handshake after it: an address that accepts
        connections and says nothing (a proxy, a black hole, the dashboard's port 8787 instead of the
        scheduler's 8786) held ``Client`` for ever. Each step runs in a helper thread with a
        wall-clock deadline of the timeout plus ``HANDSHAKE_SECONDS``, and a stop signal ends the
        wait at once."""
        try:
            import dask
            from dask.utils import parse_timedelta
            from distributed import Client
        except ImportError:
            raise ExecutorUnavailable(
                "service.executor = \"dask\" needs the dask extra: pip install 'tickcast[dask]'"
            ) from None
        _quiet_dask_logging()
        timeout = parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), "s")
        deadline = timeout + cls.HANDSHAKE_SECONDS
        silent = ExecutorUnavailable(
            f"no Dask scheduler answered at {address} (service.dask_address) within {deadline:g} s: "
            "something accepts connections there but did not complete Dask's handshake (the dashboard's "
            "port, 8787, instead of the scheduler's, 8786? a proxy?)"
        )
        try:
            client = stopping.bounded_call(
                lambda: Client(address, set_as_default=False, timeout=timeout),
                deadline,
                lambda: silent,
                f"connecting to the Dask scheduler at {address}",
            )
        except (OSError, TimeoutError) as exc:
            raise ExecutorUnavailable(
                f"cannot reach the Dask scheduler at {address} (service.dask_address): "
                f"{cut(first_line(exc, type(exc).__name__), 200)}"
            ) from None
        try:
            stopping.bounded_call(
                lambda: client.wait_for_workers(1, timeout=timeout),
                deadline,
                TimeoutError,
                f"waiting for a worker of the Dask scheduler at {address}",
            )
        except (OSError, TimeoutError):
            client.close(timeout=cls.CLOSE_SECONDS)
            raise ExecutorUnavailable(
                f"the Dask scheduler at {address} has no workers (waited {timeout:g} s): "
                f"start some with `dask worker {address} --nthreads 1`"
            ) from None
        except BaseException:
            client.close(timeout=cls.CLOSE_SECONDS)
            raise
        executor = cls(client, address)
        executor._refresh_capacity()
        return executor

    def submit(self, fn: Callable, /, *args, **kwargs) -> Future:
        proxy: Future = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit after shutdown")
            self._waiting.append((proxy, fn, args, kwargs))
        self._send()
        return proxy

    def _refresh_capacity(self) -> None:
        """Worker threads in the cluster, re-read at most every 2 s as results come back (workers
        join and leave while a run goes on); never while holding the lock (it asks the scheduler)."""
        if time.monotonic() - self._threads_checked < 2.0:
            return
        self._threads_checked = time.monotonic()
        try:
            self._threads = max(1, int(self._client.scheduler_info(n_workers=0)["total_threads"]))
        except Exception:  # noqa: BLE001 - the scheduler is not answering: the last count will do
            pass

    def _batch_size(self) -> int:
        if self._seconds is None:
            return 1
        return max(1, min(self.MAX_BATCH, int(self.BATCH_SECONDS / max(self._seconds, 1e-6))))

    def _send(self) -> None:
        """Send waiting tasks while there is room."""
        while True:
            with self._lock:
                if (
                    self._lost is not None
                    or self._closed
                    or not self._waiting
                    or len(self._out) >= self.AHEAD * self._threads
                ):
                    break
                fn, size = self._waiting[0][1], self._batch_size()
                batch: list[tuple[Future, tuple, dict]] = []
                while self._waiting and len(batch) < size and self._waiting[0][1] is fn:
                    proxy, _, args, kwargs = self._waiting.popleft()
                    if proxy.set_running_or_notify_cancel():  # else: cancelled while waiting here
                        batch.append((proxy, args, kwargs))
                if not batch:
                    continue
                key = f"{getattr(fn, '__name__', 'task').strip('_')}-{uuid.uuid4().hex}"
                remote = self._client.submit(_run_batch, fn, [(a, k) for _, a, k in batch], key=key, pure=False)
                self._out[key] = ([proxy for proxy, _, _ in batch], remote)
            remote.add_done_callback(self._arrived)  # called in dask's callback thread
        if self._lost is not None:
            self._lose(self._lost)

    def _arrived(self, remote) -> None:
        if self._closed:
            return
        if remote.status == "cancelled":  # not by us: the client lost the scheduler
            self._lose(f"lost the connection to the Dask scheduler at {self._address}")
        else:
            self._done.put(remote)

    def _fetch_loop(self) -> None:
        while (remote := self._done.get()) is not None:
            failure: BaseException | None = None
            try:  # the task is finished: its result is on a worker, and fetching it has a deadline
                outcomes = remote.result(timeout=self.GATHER_SECONDS)
            except TimeoutError:
                outcomes, failure = (
                    None,
                    WorkerLost(
                        f"its result could not be fetched from the Dask worker within {self.GATHER_SECONDS:g} s "
                        "(the worker stopped answering)"
                    ),
                )
            except BaseException as exc:  # noqa: BLE001 - every way a task can fail becomes its result
                outcomes, failure = None, _describe(exc, self._address)
            if isinstance(failure, SchedulerLost):
                self._lose(str(failure))
                continue
            with self._lock:
                entry = self._out.pop(remote.key, None)
                if outcomes:
                    seconds = sum(s for _, _, s in outcomes) / len(outcomes)
                    self._seconds = seconds if self._seconds is None else 0.7 * self._seconds + 0.3 * seconds
            if entry is None:  # dropped by shutdown, or failed with the scheduler
                continue
            remote.release()
            self._refresh_capacity()
            for i, proxy in enumerate(entry[0]):
                if failure is not None:
                    proxy.set_exception(failure)
                elif outcomes[i][0]:
                    proxy.set_result(outcomes[i][1])
                else:
                    proxy.set_exception(outcomes[i][1])
            self._send()

    def _lose(self, reason: str) -> None:
        """The scheduler is gone: every task not handed over fails now, with the reason."""
        with self._lock:
            self._lost = self._lost or reason
            out, self._out = list(self._out.values()), {}
            waiting, self._waiting = list(self._waiting), collections.deque()
        for proxies, _ in out:
            for proxy in proxies:
                proxy.set_exception(SchedulerLost(self._lost))
        for proxy, *_ in waiting:
            if proxy.set_running_or_notify_cancel():
                proxy.set_exception(SchedulerLost(self._lost))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Drop the tasks not sent, cancel the ones out (their results would go unused) and close
        the connection. Only the driver's bookkeeping waits: a fit in progress on a worker is not
        interrupted, its result discarded."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            waiting, self._waiting = list(self._waiting), collections.deque()
            out, self._out = list(self._out.values()), {}
        for _ in range(self.FETCHERS):
            self._done.put(None)
        for proxy, *_ in waiting:
            proxy.cancel()
        for proxies, _ in out:
            for proxy in proxies:
                proxy.set_exception(WorkerLost("the run ended before this task came back"))
        try:
            if out and self._lost is None:
                self._client.cancel([remote for _, remote in out])
        except Exception:  # noqa: BLE001 - the scheduler is gone: nothing left to cancel
            pass
        finally:
            self._client.close(timeout=self.CLOSE_SECONDS)


def _run_batch(fn: Callable, calls: list) -> list[tuple[bool, object, float]]:
    """On a worker: ``fn(*args, **kwargs)`` for each call, in order; per call (ok, result or
    exception, seconds). A call that raises fails only itself."""
    out = []
    for args, kwargs in calls:
        started = time.perf_counter()
        try:
            out.append((True, fn(*args, **kwargs), time.perf_counter() - started))
        except Exception as exc:  # noqa: BLE001 - handed to that call's future, as a pool would
            out.append((False, exc, time.perf_counter() - started))
    return out


def _quiet_dask_logging() -> None:
    """distributed logs its reconnection attempts, with tracebacks, from loggers of its own levels;
    what they mean for each series (lost with the scheduler, lost with a worker) is that series'
    error instead, in one line."""
    names = [name for name in logging.root.manager.loggerDict if name.startswith("distributed.")]
    for name in ["distributed", *names]:
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _describe(exc: BaseException, address: str) -> BaseException:
    """Dask's ways for a task to be lost, as one line each; anything else as it came."""
    name = type(exc).__name__
    if name == "KilledWorker":
        return WorkerLost(
            f"the Dask worker running it died (dask gave up after {getattr(exc, 'allowed_failures', 0) + 1} attempt(s))"
        )
    if name in ("FutureCancelledError", "CancelledError", "CommClosedError") or isinstance(exc, OSError):
        return SchedulerLost(
            f"lost the connection to the Dask scheduler at {address}: {first_line(exc, type(exc).__name__)}"
        )
    return exc


_DASK_ADDRESS = re.compile(r"(tcp|tls|ws|wss)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:[0-9]{1,5})?")


def check_address(address: str, name: str) -> None:
    """A ConfigError naming the setting ``name`` unless ``address`` is a Dask scheduler address and
    the dask extra is installed."""
    if not address:
        raise ConfigError(
            'service.executor = "dask" needs the scheduler\'s address: set service.dask_address '
            '(or TICKCAST_DASK_ADDRESS), e.g. "tcp://scheduler:8786"'
        )
    if not _DASK_ADDRESS.fullmatch(address):
        raise ConfigError(f"{name} must be a Dask scheduler address such as tcp://scheduler:8786, got {address!r}")
    port = address.rpartition(":")[2]
    if port.isdigit() and not 0 < int(port) < 65536:
        raise ConfigError(f"{name} has no valid port (1-65535), got {address!r}")
    if importlib.util.find_spec("distributed") is None:
        raise ConfigError("service.executor = \"dask\" needs the dask extra: pip install 'tickcast[dask]'")


def _connect(execution: ExecutorSettings, tasks: int) -> Executor:
    return DaskExecutor.connect(execution.dask_address)


EXECUTOR = ExecutorKind(
    name="dask",
    description="a Dask cluster",
    open=_connect,
    in_process=lambda execution, tasks: False,  # this machine may not be for training
    check=check_address,
)
