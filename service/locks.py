"""Waiting for SQLite's write lock: in short slices, so that the wait is announced in one line, a
signal is handled within a second, and the wait ends after ``service.busy_timeout_minutes`` with an
error that says who held the lock.

SQLite's own busy timeout waits inside one C call: nothing is said, and a SIGTERM is not handled
until the call returns. Here each ``BEGIN IMMEDIATE`` waits at most ``SLICE_SECONDS`` inside SQLite;
between slices the wait is Python's, where signal handlers run.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time

from .errors import DatabaseError

SLICE_SECONDS = 1.0
STOP_GRACE_SECONDS = 5.0  # after a stop request, a lock held by someone else is waited for this much longer

_stop_deadline: float | None = None


def stop_waiting(grace: float = STOP_GRACE_SECONDS) -> None:
    """A stop was requested (SIGTERM): every wait for the lock, now or later, ends within ``grace``
    seconds. Called from signal handlers: it only sets a number."""
    global _stop_deadline
    if _stop_deadline is None:
        _stop_deadline = time.monotonic() + grace


log = logging.getLogger("tickcast.db")


class DatabaseLocked(DatabaseError):
    """Another process held the database's write lock for longer than the busy timeout."""


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


def write_lock_holders(path: str) -> list[int]:
    """Pids (other than ours) holding a POSIX write lock on the SQLite file ``path`` or on its WAL
    index (``-shm``): the writer SQLite makes us wait for. Linux only (/proc/locks); [] elsewhere,
    and for a holder in another pid namespace (its pid is not visible here)."""
    wanted = {}
    for name in (path, path + "-shm"):
        try:
            st = os.stat(name)
        except OSError:
            continue
        wanted[f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"] = name
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as fh:
            lines = fh.readlines()
    except OSError:
        return []
    holders = []
    for line in lines:
        fields = line.split()
        if len(fields) < 8 or fields[1] != "POSIX" or fields[3] != "WRITE" or fields[5] not in wanted:
            continue
        try:
            pid = int(fields[4])
        except ValueError:
            continue
        if pid > 0 and pid != os.getpid() and pid not in holders:
            holders.append(pid)
    return holders


def describe_holders(path: str) -> str:
    pids = write_lock_holders(path)
    if not pids:
        return "another process"
    return ("pid " if len(pids) == 1 else "pids ") + ", ".join(map(str, pids))


def begin_immediate(raw: sqlite3.Connection, path: str, wait_seconds: float, full_busy_ms: int) -> None:
    """``BEGIN IMMEDIATE`` on ``raw``, waiting up to ``wait_seconds`` for the write lock.

    Raises DatabaseLocked when the wait runs out. ``full_busy_ms`` is the connection's usual busy
    timeout, restored afterwards (it still covers the rare waits of other statements)."""
    deadline = time.monotonic() + wait_seconds
    announced = False
    slice_ms = int(min(SLICE_SECONDS, wait_seconds) * 1000)
    raw.execute(f"PRAGMA busy_timeout = {slice_ms}")
    try:
        while True:
            attempt = time.monotonic()
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise
                if time.monotonic() - attempt < SLICE_SECONDS / 2:  # refused without waiting: do not spin
                    time.sleep(0.05)
                if _stop_deadline is not None and time.monotonic() >= _stop_deadline:
                    raise DatabaseLocked(
                        f"stopped while waiting for the write lock on {path}, held by {describe_holders(path)}"
                    ) from None
                if time.monotonic() >= deadline:
                    raise DatabaseLocked(
                        f"the database {path} stayed locked for {wait_text(wait_seconds)} "
                        f"(service.busy_timeout_minutes), its write lock held by {describe_holders(path)}"
                    ) from None
                if not announced:
                    log.warning(
                        "pid %d is waiting for the write lock on %s, held by %s (up to %s: "
                        "service.busy_timeout_minutes)",
                        os.getpid(),
                        path,
                        describe_holders(path),
                        wait_text(wait_seconds),
                    )
                    announced = True
    finally:
        raw.execute(f"PRAGMA busy_timeout = {full_busy_ms}")


def wait_text(seconds: float) -> str:
    """A wait's length as the lock messages say it: '10 min', '1.2 s'."""
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"
