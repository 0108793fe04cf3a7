"""A process with no stop requested: ``service/stopping.py`` keeps the first stop signal, a forced
stop and its grace timer process-wide (a daemon stops once), and the lock waits keep a deadline.
Tests that stop something start from none and cancel what their stop left running."""

from __future__ import annotations

from tickcast.service import locks, stopping


def no_stop_requested(monkeypatch) -> None:
    """Nothing requested, forced or timed; monkeypatch puts the old values back after the test."""
    for name, value in (("_requested", None), ("_forced", None), ("_timer", None), ("_regions", {})):
        monkeypatch.setattr(stopping, name, value)
    monkeypatch.setattr(locks, "_stop_deadline", None)


def cancel_grace_timer() -> None:
    """The timer a stop request starts (it would force a stop later, in some other test)."""
    if stopping._timer is not None:
        stopping._timer.cancel()
