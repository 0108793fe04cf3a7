"""One run at a time across processes (and hosts): a lease row in the database.

``acquire`` claims the ``run_lease`` row inside a write transaction (SQLite: ``BEGIN IMMEDIATE``
serialises claimants; PostgreSQL: ``SELECT ... FOR UPDATE`` and the primary key). A lease held by a
live process is refused; one whose holder died (same host, pid gone) or that expired (no renewal
for ``ttl``, e.g. a crashed host) is taken over. The holder renews it as it works.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from . import schema
from .clock import as_utc, utcnow
from .db import write_transaction
from .errors import TickcastError

DEFAULT_TTL = timedelta(minutes=15)


class RunInProgress(TickcastError):
    """Another live process holds the run lease."""


class LeaseLost(TickcastError):
    """Our lease expired and another process took it over."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _abandoned(row) -> bool:
    return row.host == socket.gethostname() and not _pid_alive(row.pid)


def holder_alive(row, now) -> bool:
    """Whether the lease ``row`` is held by a live process: not expired, and not left by a dead
    process on this host."""
    return as_utc(row.expires_at) > now and not _abandoned(row)


@dataclass
class Lease:
    engine: Engine
    name: str
    holder: str
    ttl: timedelta
    taken_over: str | None = None  # description of the stale holder we replaced, if any

    def renew(self, run_id: int | None = None) -> None:
        values: dict[str, object] = {"expires_at": utcnow() + self.ttl}
        if run_id is not None:
            values["run_id"] = run_id
        with write_transaction(self.engine) as conn:
            done = conn.execute(
                sa.update(schema.run_lease)
                .where(schema.run_lease.c.name == self.name, schema.run_lease.c.holder == self.holder)
                .values(**values)
            )
            if done.rowcount != 1:
                raise LeaseLost(f"lost the {self.name} lease to another process")

    def release(self) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(
                sa.delete(schema.run_lease).where(
                    schema.run_lease.c.name == self.name, schema.run_lease.c.holder == self.holder
                )
            )


def acquire(engine: Engine, name: str = "run", ttl: timedelta = DEFAULT_TTL) -> Lease:
    host, pid = socket.gethostname(), os.getpid()
    holder = f"{host}:{pid}:{uuid.uuid4().hex[:8]}"
    now = utcnow()
    values = dict(holder=holder, host=host, pid=pid, run_id=None, acquired_at=now, expires_at=now + ttl)
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
    return Lease(engine, name, holder, ttl, taken_over)
