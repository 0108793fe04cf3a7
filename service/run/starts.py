"""Runs that could not start (the database stayed locked past ``service.busy_timeout_minutes``):
each gets a ``failed`` row in ``runs`` ("run not started: ..."), written as soon as the database
lets us.

At once if it can. When a SQLite database is still locked, the attempt is kept in a file beside it
(``<database>.unrecorded-runs``, one JSON line per attempt) and the next run that starts writes it,
with the time, host and pid of the attempt, in the transaction that opens its own run; a `tickcast
run` refused by a foreign lock is thus recorded even though it exits at once. Where no file can be
kept (PostgreSQL, a read-only directory), `serve` keeps the attempt in memory for its next run.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass, field, replace
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .. import schema
from ..clock import utcnow
from ..db import sqlite_file, write_transaction
from ..errors import DatabaseError
from ..status import RunStatus, Trigger

RECORD_WAIT_SECONDS = 1.0  # how long recording a failed start waits for the lock: it just waited in vain
PENDING_SUFFIX = ".unrecorded-runs"


@dataclass(frozen=True)
class FailedStart:
    """A run that could not start because the database stayed locked: a ``runs`` row to write as
    soon as the database lets us."""

    trigger: Trigger
    attempted_at: datetime
    error: str
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    finished_at: datetime | None = None  # when it gave up (None: now)


class RunNotStarted(DatabaseError):
    """The run could not start: the database stayed locked. ``recorded``: whether its failed row is
    in ``runs`` already or kept for the next run (else ``attempt`` is to be written by the caller)."""

    def __init__(self, attempt: FailedStart, where: str):
        self.attempt, self.recorded = attempt, where != "lost"
        text = {
            "recorded": "recorded in runs",
            "pending": "not recorded in runs yet: the database is still locked (the next run records it)",
            "lost": "not recorded in runs: the database is still locked",
        }[where]
        super().__init__(f"{attempt.error}; {text}")


def record_failed_start(engine: Engine, attempt: FailedStart, wait: float | None = RECORD_WAIT_SECONDS) -> str:
    """Write the ``runs`` row of a run that could not start: "recorded"; else keep it for the next run
    beside a SQLite file: "pending"; else "lost" (the caller may keep it)."""
    if attempt.finished_at is None:
        attempt = replace(attempt, finished_at=utcnow())
    try:
        with write_transaction(engine, wait=wait) as conn:
            insert_failed_starts(conn, [attempt])
        return "recorded"
    except (DatabaseError, sa.exc.SQLAlchemyError):
        pass
    path = _pending_path(engine)
    if path is None:
        return "lost"
    line = json.dumps(
        {
            "trigger": str(attempt.trigger),
            "attempted_at": attempt.attempted_at.isoformat(),
            "error": attempt.error,
            "host": attempt.host,
            "pid": attempt.pid,
            "finished_at": attempt.finished_at.isoformat() if attempt.finished_at else None,
        }
    )
    try:
        with open(path, "a", encoding="utf-8") as fh:  # one short line per write: appends do not interleave
            fh.write(line + "\n")
    except OSError:
        return "lost"
    return "pending"


def _pending_path(engine: Engine) -> str | None:
    database = sqlite_file(engine.url)
    return None if database is None else os.path.abspath(database) + PENDING_SUFFIX


def take_pending(engine: Engine) -> tuple[list[FailedStart], str | None]:
    """The attempts kept beside the database, and the file they were taken into (to delete once they
    are written): renamed first, so that an attempt added meanwhile goes to a new file."""
    path = _pending_path(engine)
    if path is None or not os.path.exists(path):
        return [], None
    taken = f"{path}.{os.getpid()}"
    try:
        os.replace(path, taken)
        with open(taken, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return [], None
    attempts = []
    for line in lines:
        try:
            row = json.loads(line)
            attempts.append(
                FailedStart(
                    Trigger(row["trigger"]),
                    datetime.fromisoformat(row["attempted_at"]),
                    str(row["error"]),
                    str(row["host"]),
                    int(row["pid"]),
                    datetime.fromisoformat(row["finished_at"]) if row.get("finished_at") else None,
                )
            )
        except (ValueError, KeyError, TypeError):
            continue  # a line cut short by a crash: nothing to record from it
    return attempts, taken


def restore_pending(engine: Engine, taken: str | None) -> None:
    """Put attempts taken by ``take_pending`` back, for the next run (they could not be written)."""
    path = _pending_path(engine)
    if taken is None or path is None:
        return
    try:
        with open(taken, encoding="utf-8") as src, open(path, "a", encoding="utf-8") as dst:
            dst.write(src.read())
        os.unlink(taken)
    except OSError:
        pass


def insert_failed_starts(conn: Connection, attempts: list[FailedStart]) -> None:
    for attempt in attempts:
        conn.execute(
            sa.insert(schema.runs).values(
                trigger=attempt.trigger,
                status=RunStatus.FAILED,
                started_at=attempt.attempted_at,
                finished_at=attempt.finished_at or utcnow(),
                error=attempt.error,
                host=attempt.host,
                pid=attempt.pid,
            )
        )
