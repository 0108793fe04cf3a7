"""SIGTERM/SIGINT while `tickcast serve` starts: before its scheduler runs there is no loop to tell,
so the signal unwinds whatever start-up is doing (loading settings, opening and upgrading the
database, waiting for its lock, finding a missed run) and serve exits 0. Installed first thing,
before the heavy imports, so that even an early signal finds it."""

from __future__ import annotations

import signal


class StopDuringStartup(BaseException):
    """A stop signal during start-up. A BaseException, like KeyboardInterrupt, so that no ``except
    Exception`` on the way swallows it; transactions in progress roll back as it passes."""


def _raise_stop(signum: int, _frame) -> None:
    from .locks import stop_waiting

    stop_waiting()
    raise StopDuringStartup(signal.Signals(signum).name)


def stop_start_up_on_signals() -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _raise_stop)
