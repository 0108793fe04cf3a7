"""Waiting for a lock on PostgreSQL (service/pglocks.py) in this process, on a real server: a
transaction of ours that waits for a foreign session's lock is said once, naming that session, and a
wait that runs out names it in its error; transactions that end are forgotten and the watcher
thread stops when none is open. tests/reliability/test_locks.py runs whole ``tickcast`` processes
against the same foreign session."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from tickcast.service import pglocks
from tickcast.service.db import describe, make_engine, open_database, write_transaction
from tickcast.service.locks import DatabaseLocked
from tickcast.service.pglocks import describe_sessions

from .support.foreign import foreign_writer
from .support.waiting import eventually
from .support.warnings_said import warnings_of


def test_sessions_are_described_by_pid_application_user_and_address():
    assert describe_sessions([(12, "psql", "alice", "10.0.0.5")]) == (
        "PostgreSQL session pid 12 (application psql, user alice, from 10.0.0.5)"
    )
    assert describe_sessions([(12, "", None, None), (40, "backup", "", "::1")]) == (
        "PostgreSQL sessions pid 12 (a local socket); pid 40 (application backup, from ::1)"
    )


@pytest.fixture
def said():
    with warnings_of("tickcast.db") as handler:
        yield handler


@pytest.fixture
def postgresql_url(pg_server):
    with pg_server.database() as url:
        open_database(url).dispose()
        yield url


def watch_of(engine) -> pglocks.LockWatch:
    watch = engine._tickcast_lock_watch  # set by make_engine on PostgreSQL
    assert isinstance(watch, pglocks.LockWatch)
    return watch


def test_a_postgresql_wait_is_said_once_and_its_timeout_names_the_holder(postgresql_url, said, monkeypatch):
    monkeypatch.setattr(pglocks, "SLICE_SECONDS", 0.2)
    engine = make_engine(postgresql_url, busy_timeout=3.0)
    try:
        with foreign_writer(postgresql_url, postgres=True):
            with pytest.raises(DatabaseLocked) as locked:
                with write_transaction(engine) as conn:
                    conn.execute(sa.text("SELECT count(*) FROM run_lease"))
        holder = str(locked.value).split(": ", 1)[1]
        assert str(locked.value).startswith(f"the database {postgresql_url.split('://')[0]}")
        assert (
            holder.startswith("PostgreSQL session pid ")
            and "(application foreign-writer, user postgres, from 127.0.0.1)" in holder
        )
        assert holder.endswith("held a lock tickcast needed for longer than service.busy_timeout_minutes")
        (line,) = [line for line in said.lines if "is waiting for a lock" in line]
        assert f"is waiting for a lock on {describe(engine)}, held by " in line  # which database
        assert (
            "held by PostgreSQL session pid " in line
            and "(application foreign-writer, user postgres, from 127.0.0.1)" in line
        )
        assert line.endswith("(up to 3 s: service.busy_timeout_minutes)")
        watch = watch_of(engine)
        assert eventually(lambda: watch._thread is None, seconds=10)  # no transaction open: it stopped
        assert watch._open == {}
        with write_transaction(engine) as conn:  # the lock let go: an ordinary transaction, nothing said
            conn.execute(sa.text("SELECT count(*) FROM run_lease"))
        assert len([line for line in said.lines if "is waiting for a lock" in line]) == 1
    finally:
        engine.dispose()


def test_a_transaction_that_waits_for_nothing_is_not_said(postgresql_url, said, monkeypatch):
    monkeypatch.setattr(pglocks, "SLICE_SECONDS", 0.1)
    engine = make_engine(postgresql_url, busy_timeout=3.0)
    try:
        with write_transaction(engine) as conn:
            conn.execute(sa.text("SELECT pg_sleep(0.5)"))  # long, but waiting for no lock
        assert said.lines == []
    finally:
        engine.dispose()


def test_a_session_gone_mid_transaction_is_forgotten(postgresql_url, monkeypatch):
    monkeypatch.setattr(pglocks, "SLICE_SECONDS", 0.1)
    engine = make_engine(postgresql_url, busy_timeout=3.0)
    watch = watch_of(engine)
    try:
        watch.began(2_000_000_000)  # a backend pid the server does not have: its end was never seen
        assert eventually(lambda: 2_000_000_000 not in watch._open, seconds=10)
        assert eventually(lambda: watch._thread is None, seconds=10)
        assert watch.holders(2_000_000_000) is None and watch.holders(None) is None
    finally:
        engine.dispose()


def test_the_watcher_is_one_thread_for_all_transactions_and_stops_when_they_end(postgresql_url, monkeypatch):
    monkeypatch.setattr(pglocks, "SLICE_SECONDS", 0.1)
    engine = make_engine(postgresql_url, busy_timeout=3.0)
    watch = watch_of(engine)
    try:
        ready, go = threading.Event(), threading.Event()

        def hold() -> None:
            with engine.connect() as conn, conn.begin():
                conn.execute(sa.text("SELECT 1"))
                ready.set()
                go.wait(30)

        holders = [threading.Thread(target=hold) for _ in range(2)]
        for t in holders:
            t.start()
        assert ready.wait(30) and eventually(lambda: len(watch._open) == 2, seconds=10)
        thread = watch._thread
        assert thread is not None and thread.name == "tickcast-pg-lock-watch" and thread.daemon
        go.set()
        for t in holders:
            t.join(30)
        assert eventually(lambda: watch._open == {} and watch._thread is None, seconds=10)
    finally:
        engine.dispose()
