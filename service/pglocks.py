"""Waiting for a lock on PostgreSQL: said in one line, naming the sessions that hold it.

On PostgreSQL a statement that needs a lock another session holds waits inside the server, up to
``lock_timeout`` (``service.busy_timeout_minutes``), and the client sees nothing until it is granted
or refused. One watcher thread per engine looks, every ``SLICE_SECONDS``, at the transactions that
have run longer than that: for each whose server process waits for a lock (``pg_blocking_pids``),
it logs once who holds it (pid, application, user, address from ``pg_stat_activity``) and keeps the
description, so that a wait that runs out can name the holder in its error. The watcher queries
from a connection of its own and runs only while transactions are open; a transaction costs a
dictionary entry, no round trip.
"""

from __future__ import annotations

import logging
import os
import threading
import time

import sqlalchemy as sa

from .locks import wait_text

SLICE_SECONDS = 1.0
WATCHER = "tickcast_lock_watcher"  # execution option of the watcher's own connection (not watched)

log = logging.getLogger("tickcast.db")

_STATE = sa.text("SELECT state FROM pg_stat_activity WHERE pid = :pid")
_HOLDERS = sa.text(
    "SELECT pid, application_name, usename, host(client_addr) FROM pg_stat_activity "
    "WHERE pid = ANY(pg_blocking_pids(:pid)) ORDER BY pid"
)


def describe_sessions(rows) -> str:
    """'PostgreSQL session pid 123 (application psql, user alice, from 10.0.0.5)', or several."""
    parts = []
    for pid, application, user, address in rows:
        about = [
            f"application {application}" if application else "",
            f"user {user}" if user else "",
            f"from {address}" if address else "a local socket",
        ]
        parts.append(f"pid {pid} ({', '.join(a for a in about if a)})")
    return ("PostgreSQL session " if len(parts) == 1 else "PostgreSQL sessions ") + "; ".join(parts)


class LockWatch:
    """The open transactions of one engine's connections, by server process id, and the thread that
    looks at the long ones."""

    def __init__(self, engine: sa.Engine, where: str, wait_seconds: float):
        self.engine, self.where, self.wait_seconds = engine, where, wait_seconds
        self._open: dict[int, float] = {}  # backend pid -> when its transaction began
        self._said: dict[int, str] = {}  # backend pid -> who held the lock it waited for
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def began(self, backend_pid: int) -> None:
        with self._lock:
            self._open[backend_pid] = time.monotonic()
            self._said.pop(backend_pid, None)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="tickcast-pg-lock-watch", daemon=True)
                self._thread.start()

    def ended(self, backend_pid: int) -> None:
        with self._lock:
            self._open.pop(backend_pid, None)

    def holders(self, backend_pid: int | None) -> str | None:
        """Who held the lock the transaction of ``backend_pid`` last waited for (None: not seen)."""
        if backend_pid is None:
            return None
        with self._lock:
            return self._said.get(backend_pid)

    def _run(self) -> None:
        while True:
            time.sleep(SLICE_SECONDS)
            with self._lock:
                if not self._open:
                    self._thread = None
                    return
                now = time.monotonic()
                long_running = {
                    pid: began
                    for pid, began in self._open.items()
                    if now - began >= SLICE_SECONDS and pid not in self._said
                }
            if long_running:
                self._look(long_running)

    def _look(self, long_running: dict[int, float]) -> None:
        try:
            with self.engine.connect().execution_options(**{WATCHER: True}) as conn:
                found = {
                    pid: (conn.execute(_STATE, {"pid": pid}).scalar(), conn.execute(_HOLDERS, {"pid": pid}).all())
                    for pid in long_running
                }
                conn.rollback()
        except Exception:  # noqa: BLE001 - the watcher only informs; the waiting statement reports failures
            return
        for pid, (state, rows) in found.items():
            if state in (None, "idle"):  # its end was not seen (a connection lost mid-transaction)
                with self._lock:
                    if self._open.get(pid) == long_running[pid]:
                        del self._open[pid]
                continue
            if not rows:
                continue
            who = describe_sessions(rows)
            with self._lock:
                if pid not in self._open or pid in self._said:
                    continue
                self._said[pid] = who
            log.warning(
                "pid %d is waiting for a lock on %s, held by %s (up to %s: service.busy_timeout_minutes)",
                os.getpid(),
                self.where,
                who,
                wait_text(self.wait_seconds),
            )


def backend_pid(conn) -> int | None:
    """The server process id of a psycopg connection (None: the connection is gone)."""
    try:
        return conn.connection.driver_connection.info.backend_pid
    except Exception:  # noqa: BLE001 - a connection already gone: nothing to watch
        return None


def watch_lock_waits(engine: sa.Engine, where: str, wait_seconds: float) -> LockWatch:
    """Register every transaction of ``engine`` (a PostgreSQL engine) with a LockWatch."""
    watch = LockWatch(engine, where, wait_seconds)

    @sa.event.listens_for(engine, "begin")
    def _began(conn) -> None:
        if not conn.get_execution_options().get(WATCHER) and (pid := backend_pid(conn)) is not None:
            watch.began(pid)

    @sa.event.listens_for(engine, "commit")
    @sa.event.listens_for(engine, "rollback")
    def _ended(conn) -> None:
        if (pid := backend_pid(conn)) is not None:
            watch.ended(pid)

    return watch
