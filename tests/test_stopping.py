"""Stop signals in process (``service/stopping.py``): the first request and its grace period, the
second that forces, waits that end at once, work in this process interrupted and never outside its
region, and the handlers ``tickcast run`` and ``serve``'s start-up install. Signals are sent to this
very process; ``tests/reliability/test_stop_deadlines.py`` sends them to a real ``tickcast``."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from tickcast.service import locks, stopping
from tickcast.service.stopping import StopDuringStartup, StopNow

from .support.stop_state import cancel_grace_timer, no_stop_requested
from .support.waiting import eventually


@pytest.fixture(autouse=True)
def fresh_state(monkeypatch):
    """No stop requested or forced, and the signal handlers as they were, before and after each test."""
    no_stop_requested(monkeypatch)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    yield
    cancel_grace_timer()
    for signum, handler in handlers.items():
        signal.signal(signum, handler)


# --- requesting and forcing ---------------------------------------------------------------------


def test_nothing_is_requested_until_a_stop_is():
    assert not stopping.stop_requested() and stopping.forced() is None
    stopping.check_forced()  # does not raise
    stopping.pause(0.01, "waiting")  # does not raise


def test_the_first_request_asks_and_the_grace_period_forces_it():
    started = time.monotonic()
    stopping.request_stop(signal.SIGTERM, grace=0.3)
    assert stopping.stop_requested() and stopping.forced() is None
    assert locks._stop_deadline is not None  # lock waits end soon too
    assert eventually(lambda: stopping.forced() is not None)
    assert time.monotonic() - started >= 0.3
    assert stopping.forced() == "stopped by SIGTERM: the work in progress did not finish within 0.3 s"
    with pytest.raises(StopNow) as stopped:
        stopping.check_forced()
    assert str(stopped.value) == stopping.forced()


def test_a_second_request_forces_the_stop_at_once():
    stopping.request_stop(signal.SIGINT, grace=30)
    assert stopping.forced() is None
    stopping.request_stop(signal.SIGTERM, grace=30)
    assert stopping.forced() == "stopped by a second SIGTERM"


def test_a_request_without_a_signal_is_named_as_such():
    stopping.request_stop(None, grace=30)
    with pytest.raises(StopNow) as stopped:
        stopping.pause(5, "waiting for the lock")
    assert str(stopped.value) == "stopped by a stop request while waiting for the lock"
    stopping.request_stop(None, grace=30)
    assert stopping.forced() == "stopped by a second a stop request"


def test_the_first_reason_to_force_is_kept():
    stopping.force("first")
    stopping.force("second")
    assert stopping.forced() == "first"
    assert str(StopNow()) == "first"  # a StopNow without a reason gives the stop's


def test_stop_now_without_a_forced_stop_says_stopped():
    assert str(StopNow()) == "stopped"
    assert str(StopNow("why")) == "why"


# --- waits --------------------------------------------------------------------------------------


def test_a_pause_lasts_its_seconds_and_a_request_ends_it_at_once():
    started = time.monotonic()
    stopping.pause(0.25, "waiting")
    assert time.monotonic() - started >= 0.25
    threading.Timer(0.2, stopping.request_stop, args=(signal.SIGTERM, 30)).start()
    started = time.monotonic()
    with pytest.raises(StopNow) as stopped:
        stopping.pause(30, "waiting to fetch csv:x again")
    assert time.monotonic() - started < 5
    assert str(stopped.value) == "stopped by SIGTERM while waiting to fetch csv:x again"


def test_a_bounded_call_gives_its_result_or_its_exception():
    assert stopping.bounded_call(lambda: 42, 5, lambda: TimeoutError("late"), "adding") == 42

    def fail():
        raise KeyError("inside")

    abandoned = []
    with pytest.raises(KeyError, match="inside"):
        stopping.bounded_call(fail, 5, lambda: TimeoutError("late"), "failing", abandon=lambda: abandoned.append(1))
    assert abandoned == []  # a call that ended is not hurried


def test_a_bounded_call_is_given_up_at_its_deadline_and_hurried():
    release = threading.Event()
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="late"):
        stopping.bounded_call(
            lambda: release.wait(30), 0.3, lambda: TimeoutError("late"), "sleeping", abandon=lambda: release.set()
        )
    elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 3
    assert release.is_set()  # abandon ran
    assert eventually(lambda: not [t for t in threading.enumerate() if t.name == "tickcast-wait: sleeping"])


def test_a_failure_to_hurry_a_call_is_not_the_caller_s():
    release = threading.Event()

    def abandon():
        release.set()
        raise RuntimeError("could not")

    with pytest.raises(TimeoutError):
        stopping.bounded_call(lambda: release.wait(30), 0.2, lambda: TimeoutError("late"), "x", abandon=abandon)


def test_a_stop_request_ends_a_bounded_call_naming_what_it_waited_for():
    release = threading.Event()
    threading.Timer(0.2, stopping.request_stop, args=(signal.SIGTERM, 30)).start()
    started = time.monotonic()
    with pytest.raises(StopNow) as stopped:
        stopping.bounded_call(
            lambda: release.wait(30), 60, lambda: TimeoutError("late"), "the cluster's handshake", release.set
        )
    assert time.monotonic() - started < 5
    assert str(stopped.value) == "stopped by SIGTERM while the cluster's handshake"
    assert release.is_set()


def test_a_bounded_call_runs_in_a_named_daemon_thread():
    seen = {}

    def look():
        me = threading.current_thread()
        seen.update(name=me.name, daemon=me.daemon, main=me is threading.main_thread())

    stopping.bounded_call(look, 5, lambda: TimeoutError(), "fetching " + "x" * 80)
    assert seen == {"name": ("tickcast-wait: fetching " + "x" * 80)[:60], "daemon": True, "main": False}


# --- work in this process -----------------------------------------------------------------------


def spin(stop_at: float) -> int:
    """CPU-bound work that never looks at the stop."""
    n = 0
    while time.monotonic() < stop_at:
        n += 1
    return n


def test_a_forced_stop_interrupts_work_in_its_region():
    threading.Timer(0.2, stopping.force, args=("stopped by a second SIGTERM",)).start()
    started = time.monotonic()
    with pytest.raises(StopNow) as stopped:
        with stopping.interruptible():
            spin(started + 10)
    assert time.monotonic() - started < 5
    assert str(stopped.value) == "stopped by a second SIGTERM"
    assert stopping._regions == {}


def test_a_region_is_refused_once_the_stop_is_forced():
    stopping.force("forced")
    ran = []
    with pytest.raises(StopNow, match="forced"):
        with stopping.interruptible():
            ran.append(1)
    assert ran == [] and stopping._regions == {}


def test_work_outside_a_region_is_never_interrupted():
    with stopping.interruptible():
        pass
    stopping.force("forced after the region")
    assert spin(time.monotonic() + 0.2) > 0  # no StopNow arrives here


def test_a_stop_sent_as_the_region_ends_is_raised_there_and_not_later():
    """A forced stop that fired for the region but was not raised inside it is cleared, and raised
    as the region ends: never in the code after it."""
    with pytest.raises(StopNow) as stopped:
        with stopping.interruptible():
            stopping._regions[threading.get_ident()]["fired"] = True  # as force() marks it ...
            stopping._raise_in_thread(threading.get_ident(), None)  # ... before CPython delivers it
            stopping._forced = "forced as the region ended"
    assert str(stopped.value) == "forced as the region ended"
    assert spin(time.monotonic() + 0.2) > 0  # nothing pending


def test_regions_of_other_threads_are_interrupted_too_and_each_only_once():
    results = {}

    def work(name):
        try:
            with stopping.interruptible():
                spin(time.monotonic() + 10)
            results[name] = "finished"
        except StopNow as exc:
            results[name] = str(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    assert eventually(lambda: len(stopping._regions) == 2)
    stopping.force("stop all")
    stopping.force("again")  # marks nothing twice
    for t in threads:
        t.join(5)
    assert results == {"a": "stop all", "b": "stop all"}


# --- the handlers -------------------------------------------------------------------------------


def test_run_s_handlers_ask_then_force(capsys):
    stop = threading.Event()
    said = []
    stopping.stop_run_on_signals(stop, said.append)
    os.kill(os.getpid(), signal.SIGTERM)
    assert eventually(stop.is_set)
    assert said == [
        "SIGTERM: finishing the series in progress, then stopping (at most 10 s; a second signal stops at once)"
    ]
    assert stopping.stop_requested() and stopping.forced() is None
    os.kill(os.getpid(), signal.SIGINT)
    assert eventually(lambda: stopping.forced() is not None)
    assert said[1:] == ["SIGINT again: stopping now"]
    assert stopping.forced() == "stopped by a second SIGINT"


def test_start_up_s_handlers_unwind_start_up():
    stopping.stop_start_up_on_signals()
    for signum, name in ((signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")):
        with pytest.raises(StopDuringStartup) as stopped:
            os.kill(os.getpid(), signum)
            time.sleep(5)  # the signal arrives before this ends
        assert str(stopped.value) == name
    assert locks._stop_deadline is not None  # a wait for the database lock ends too


def test_a_stop_requested_before_a_wait_of_nothing_still_ends_it():
    stopping.request_stop(signal.SIGTERM, grace=30)
    with pytest.raises(StopNow, match=r"^stopped by SIGTERM while retrying$"):
        stopping.pause(0, "retrying")


def test_the_grace_timer_never_keeps_the_process_alive():
    stopping.request_stop(signal.SIGTERM, grace=30)
    assert stopping._timer is not None and stopping._timer.daemon


def test_a_call_that_ended_as_its_deadline_passed_is_not_hurried():
    release, abandoned = threading.Event(), []

    def late():  # the deadline is reached; by the time it is reported, the call has ended
        release.set()
        for thread in threading.enumerate():
            if thread.name == "tickcast-wait: ending":
                thread.join(5)
        return TimeoutError("late")

    with pytest.raises(TimeoutError):
        stopping.bounded_call(lambda: release.wait(30), 0.1, late, "ending", abandon=lambda: abandoned.append(1))
    assert abandoned == []


def test_an_interrupted_region_is_not_stopped_by_its_own_except_exception():
    """StopNow is a BaseException: the `except Exception` of the work inside (a failed job recorded,
    and the next one started) does not swallow it."""
    swallowed = []
    threading.Timer(0.2, stopping.force, args=("forced",)).start()
    started = time.monotonic()
    with pytest.raises(StopNow):
        with stopping.interruptible():
            try:
                spin(started + 10)
            except Exception as exc:  # noqa: BLE001 - what the work inside does
                swallowed.append(exc)
    assert swallowed == [] and time.monotonic() - started < 5


def test_force_marks_each_region_and_interrupts_it_once(monkeypatch):
    sent = []
    real = stopping._raise_in_thread
    monkeypatch.setattr(stopping, "_raise_in_thread", lambda tid, exc: (sent.append((tid, exc)), real(tid, exc)))
    outcome = {}

    def work():
        try:
            with stopping.interruptible():
                spin(time.monotonic() + 10)
        except StopNow as exc:
            outcome["stop"] = str(exc)

    thread = threading.Thread(target=work)
    thread.start()
    assert eventually(lambda: len(stopping._regions) == 1)
    (token,) = stopping._regions.values()
    with stopping._lock:  # both before the thread can leave its region
        stopping.force("first")
        stopping.force("second")
    thread.join(5)
    assert token == {"fired": True} and outcome == {"stop": "first"}
    assert sent == [(thread.ident, StopNow)]
