"""One run at a time across processes (and hosts): a lease row in the database.

``acquire`` claims the ``run_lease`` row inside a write transaction (SQLite: ``BEGIN IMMEDIATE``
serialises claimants; PostgreSQL: ``SELECT ... FOR UPDATE`` and the primary key). A lease held by a
live process is refused; one whose holder is gone is taken over.

Who holds it is more than a pid: a restarted container gives `tickcast serve` the same small pid,
on the same host name, as the run it killed. The row also stores the holder's start time (clock ticks
since boot, from ``/proc/<pid>/stat``) and the kernel's boot id. On the holder's machine (same host
name and boot id) the lease is alive exactly while a process with that pid *and* that start time
exists, expired or not (a long fetch or fit is not death); a lease naming this very process is alive
only while this process holds it (so one left by an earlier process with our pid is stale). Elsewhere
(another host, or a row without the start time) only expiry tells: the holder renews the lease from a
heartbeat thread (``Heartbeat``) well within ``ttl``, so only a crashed host lets it expire.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from . import schema
from .clock import as_utc, utcnow
from .db import write_transaction
from .errors import TickcastError, exception_line

DEFAULT_TTL = timedelta(minutes=15)
HEARTBEAT_SECONDS = 10.0  # the holder renews its lease this often while it runs, whatever it does
log = logging.getLogger("tickcast.lease")

_held: set[str] = set()  # the holders this process holds now


class RunInProgress(TickcastError):
    """Another live process holds the run lease."""


class LeaseLost(TickcastError):
    """Our lease expired and another process took it over."""


def process_start(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks since boot (None: no such process, or no /proc)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            # the command name (field 2) may hold spaces and parentheses: count from its closing one
            return int(fh.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            return fh.read().strip() or None
    except OSError:
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _this_machine(row) -> bool:
    return row.host == socket.gethostname() and (row.boot_id is None or row.boot_id == boot_id())


def holder_alive(row, now) -> bool:
    """Whether the lease ``row`` is held by a live process (see the module's docstring)."""
    if _this_machine(row):
        if row.pid == os.getpid():
            return row.holder in _held
        if row.process_start is not None:
            started = process_start(row.pid)
            if started is not None:
                return started == row.process_start
            return _pid_alive(row.pid) and as_utc(row.expires_at) > now  # no /proc here: the old rule
        if not _pid_alive(row.pid):
            return False
    return as_utc(row.expires_at) > now


@dataclass
class Lease:
    engine: Engine
    name: str
    holder: str
    ttl: timedelta
    taken_over: str | None = None  # description of the stale holder we replaced, if any

    def renew(self, run_id: int | None = None, wait: float | None = None) -> None:
        values: dict[str, object] = {"expires_at": utcnow() + self.ttl}
        if run_id is not None:
            values["run_id"] = run_id
        with write_transaction(self.engine, wait=wait) as conn:
            done = conn.execute(
                sa.update(schema.run_lease)
                .where(schema.run_lease.c.name == self.name, schema.run_lease.c.holder == self.holder)
                .values(**values)
            )
            if done.rowcount != 1:
                raise LeaseLost(f"lost the {self.name} lease to another process")

    def release(self) -> None:
        _held.discard(self.holder)
        with write_transaction(self.engine) as conn:
            conn.execute(
                sa.delete(schema.run_lease).where(
                    schema.run_lease.c.name == self.name, schema.run_lease.c.holder == self.holder
                )
            )


class Heartbeat:
    """Renews ``lease`` every ``HEARTBEAT_SECONDS`` in a thread of its own, so that a fetch or a fit
    that takes longer than the lease's ttl never lets it expire. A renewal that fails (the database
    busy) is tried again at the next beat; a lease lost to another process is logged and the beats
    stop (the run notices at its next renewal). Use as a context manager."""

    def __init__(self, lease: Lease, interval: float = HEARTBEAT_SECONDS):
        self.lease, self.interval = lease, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="tickcast-lease-heartbeat", daemon=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.lease.renew(wait=self.interval / 2)
            except LeaseLost as exc:
                if not self._stop.is_set():  # else: released meanwhile
                    log.error("%s", exc)
                return
            except Exception as exc:  # noqa: BLE001 - the next beat tries again; the ttl is far away
                if not self._stop.is_set():
                    log.warning("could not renew the run lease (%s); trying again", exception_line(exc))

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=1.0)  # a renewal waiting for the lock must not hold up the stop


def acquire(engine: Engine, name: str = "run", ttl: timedelta = DEFAULT_TTL) -> Lease:
    host, pid = socket.gethostname(), os.getpid()
    holder = f"{host}:{pid}:{uuid.uuid4().hex[:8]}"
    now = utcnow()
    values = dict(
        holder=holder,
        host=host,
        pid=pid,
        process_start=process_start(pid),
        boot_id=boot_id(),
        run_id=None,
        acquired_at=now,
        expires_at=now + ttl,
    )
    taken_over = None
    try:
        with write_transaction(engine) as conn:
            query = sa.select(schema.run_lease).where(schema.run_lease.c.name == name)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            row = conn.execute(query).first()
            if row is None:
                conn.execute(sa.insert(schema.run_lease).values(name=name, **values))
            else:
                if holder_alive(row, now):
                    raise RunInProgress(
                        f"another run is in progress (pid {row.pid} on {row.host}, run {row.run_id or '?'}, "
                        f"since {as_utc(row.acquired_at):%Y-%m-%d %H:%M} UTC); not starting a second one"
                    )
                taken_over = f"pid {row.pid} on {row.host}, run {row.run_id or '?'}"
                conn.execute(sa.update(schema.run_lease).where(schema.run_lease.c.name == name).values(**values))
    except sa.exc.IntegrityError:  # PostgreSQL: another process inserted the row first
        raise RunInProgress("another run is starting at this moment; not starting a second one") from None
    _held.add(holder)
    return Lease(engine, name, holder, ttl, taken_over)
