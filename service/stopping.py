"""Stop signals (SIGTERM, SIGINT): every stop is honoured, within a deadline.

- **During `serve`'s start-up** there is no loop to tell yet: the signal unwinds whatever start-up is
  doing (loading settings, opening and upgrading the database, waiting for its lock, finding a missed
  run) as ``StopDuringStartup``, and serve exits 0. Installed first thing, before the heavy imports.
- **During a run**, the first signal asks every part to stop soon (``request_stop``): no new series
  is fetched or trained, every wait (a fetch, a cluster's handshake, a lock) ends within seconds, and
  the series in progress may finish for ``STOP_GRACE_SECONDS``. Then, or at once on a second signal,
  the stop is *forced*: a wait that polls raises ``StopNow``; a fit running in this very process (one
  worker) is interrupted by ``StopNow`` raised into its thread (``interruptible``); worker processes
  are killed. The run is closed as failed with the reason and its lease released: SIGTERM ends a run
  well within the 30 s a container manager grants before SIGKILL.

The state is the process's, as signals are.
"""

from __future__ import annotations

import ctypes
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from . import locks

T = TypeVar("T")

STOP_GRACE_SECONDS = 10.0  # after the first signal, the series in progress may finish for this long


class StopDuringStartup(BaseException):
    """A stop signal during start-up. A BaseException, like KeyboardInterrupt, so that no ``except
    Exception`` on the way swallows it; transactions in progress roll back as it passes."""


class StopNow(BaseException):
    """A stop that waits no longer (a second signal, or the grace period ran out). A BaseException:
    it unwinds the run past every ``except Exception``; transactions roll back, the run is closed as
    failed with this message and the lease released."""

    def __init__(self, *args: object):
        super().__init__(*(args or (_forced or "stopped",)))


_lock = threading.RLock()  # re-entrant: a signal handler may force a stop in a thread that holds it
_requested: str | None = None  # the first stop signal's name
_forced: str | None = None  # why the stop waits no longer
_timer: threading.Timer | None = None
_regions: dict[int, dict] = {}  # thread id -> {"fired": bool}: threads a forced stop may interrupt


def _name(signum: int | None) -> str:
    return signal.Signals(signum).name if signum is not None else "a stop request"


def request_stop(signum: int | None = None, grace: float = STOP_GRACE_SECONDS) -> None:
    """A stop signal arrived (safe to call from a signal handler). The first one: every wait ends
    soon, and after ``grace`` seconds the stop is forced; a second one forces it at once."""
    global _requested, _timer
    locks.stop_waiting()
    if _requested is not None:
        force(f"stopped by a second {_name(signum)}")
        return
    _requested = _name(signum)
    _timer = threading.Timer(
        grace,
        force,
        args=(f"stopped by {_requested}: the work in progress did not finish within {grace:g} s",),
    )
    _timer.daemon = True
    _timer.start()


def stop_requested() -> bool:
    return _requested is not None


def forced() -> str | None:
    """Why the stop waits no longer, or None."""
    return _forced


def check_forced() -> None:
    """Raise StopNow if the stop waits no longer: for loops that wait in slices."""
    if _forced is not None:
        raise StopNow(_forced)


def force(reason: str) -> None:
    """Stop now: every thread in an ``interruptible`` region gets StopNow raised into it."""
    global _forced
    with _lock:
        if _forced is None:
            _forced = reason
        for thread_id, token in _regions.items():
            if not token["fired"]:
                token["fired"] = True
                _raise_in_thread(thread_id, StopNow)


def _raise_in_thread(thread_id: int, exc: type[BaseException] | None) -> None:
    """CPython raises ``exc`` in that thread at its next bytecode (None: clears a pending one)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc else None)


@contextmanager
def interruptible() -> Iterator[None]:
    """A region of CPU-bound work that never looks at the stop (a model's fit in this process): a
    forced stop raises StopNow inside it. Never outside: a StopNow sent but not raised yet when the
    region ends is cleared, and raised here instead, before the caller goes on."""
    thread_id = threading.get_ident()
    token = {"fired": False}
    with _lock:
        check_forced()
        _regions[thread_id] = token
    raised = False
    try:
        yield
    except StopNow:
        raised = True
        raise
    finally:
        with _lock:
            _regions.pop(thread_id, None)
        if token["fired"] and not raised:
            _raise_in_thread(thread_id, None)
            raise StopNow(_forced)


def stop_run_on_signals(stop: threading.Event, say: Callable[[str], None]) -> None:
    """`tickcast run`'s handlers: SIGTERM or SIGINT sets ``stop`` and asks for a stop (``say`` tells
    the user what happens); a second one forces it."""

    def handler(signum: int, _frame) -> None:
        name = signal.Signals(signum).name
        if stop_requested():
            say(f"{name} again: stopping now")
        else:
            say(
                f"{name}: finishing the series in progress, then stopping (at most {STOP_GRACE_SECONDS:g} s; "
                "a second signal stops at once)"
            )
        stop.set()
        request_stop(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handler)


def _raise_stop(signum: int, _frame) -> None:
    locks.stop_waiting()
    raise StopDuringStartup(signal.Signals(signum).name)


def stop_start_up_on_signals() -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _raise_stop)


POLL_SECONDS = 0.1  # how often a wait looks at the stop request and its deadline


def _check_requested(what: str) -> None:
    if _requested is not None:
        raise StopNow(f"stopped by {_requested} while {what}")


def pause(seconds: float, what: str) -> None:
    """``time.sleep`` that a stop request ends at once (raising StopNow)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        _check_requested(what)
        time.sleep(min(POLL_SECONDS, left))
    _check_requested(what)


def bounded_call(
    call: Callable[[], T],
    seconds: float,
    timed_out: Callable[[], BaseException],
    what: str,
    abandon: Callable[[], None] | None = None,
) -> T:
    """``call()`` in a helper thread, waited for at most ``seconds`` of wall-clock time: its result,
    or its exception; ``timed_out()`` is raised past the deadline, StopNow on a stop request (``what``
    says what was waited for). A call given up on is left to end in its daemon thread; ``abandon``
    is called to hurry it (e.g. shut its socket)."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["result"] = call()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread as it came
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name=f"tickcast-wait: {what}"[:60], daemon=True).start()
    deadline = time.monotonic() + seconds
    try:
        while not done.wait(POLL_SECONDS):
            _check_requested(what)
            if time.monotonic() >= deadline:
                raise timed_out()
    except BaseException:
        if abandon is not None and not done.is_set():
            try:
                abandon()
            except Exception:  # noqa: BLE001 - hurrying a call we gave up on is a courtesy
                pass
        raise
    if "error" in box:
        raise box["error"]
    return box["result"]
