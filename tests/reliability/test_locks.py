"""A foreign writer holding the database's write lock (a real second process, not tickcast): the wait
is announced in one line naming who waits for whom, lasts up to ``service.busy_timeout_minutes``,
ends in one clear error line, and is recorded in ``runs``; `serve` retries a run that could not
start, and SIGTERM stops it cleanly while it waits, at start-up or later."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
import sqlalchemy as sa

from tickcast.service.db import open_database

from ..support.daemon import Daemon
from ..support.foreign import foreign_writer
from .scenario import query, run_tickcast, start_tickcast

# Lock waits are timed against the clock (a 4 s foreign lock, a 1 s busy timeout): alone.
pytestmark = pytest.mark.serial

EMPTY = "[watchlist]\n"
CATCH_UP = '[schedule]\ncron = "0 0 * * *"\ntimezone = "UTC"\n'  # fired less than a day ago


def world(tmp_path, toml: str = EMPTY, db_url: str | None = None) -> dict:
    config = tmp_path / "tickcast.toml"
    config.write_text(toml)
    env = {"TICKCAST_CONFIG": str(config), "TICKCAST_DATA_DIR": str(tmp_path / "data")}
    if db_url:
        env["TICKCAST_DB_URL"] = db_url
    return env


def db_path(env) -> str:
    return os.path.join(env["TICKCAST_DATA_DIR"], "tickcast.db")


def init(env) -> None:
    """What `tickcast init` does to the schema, in this process (a second faster)."""
    open_database(env.get("TICKCAST_DB_URL") or f"sqlite:///{db_path(env)}").dispose()


def runs(url: str) -> list:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT trigger, status, error FROM runs ORDER BY id")).all()
    finally:
        engine.dispose()


def test_sigterm_while_start_up_waits_for_the_lock_stops_serve_cleanly(tmp_path, ledger):
    env = world(tmp_path)
    os.makedirs(env["TICKCAST_DATA_DIR"])
    with foreign_writer(db_path(env), hold_seconds=300) as writer:  # before tickcast made its tables
        daemon = Daemon(["serve"], env)
        try:
            waiting = daemon.wait_for("waiting for the write lock", timeout=60)
            assert (
                f"pid {daemon.proc.pid} is waiting for the write lock on {db_path(env)}, held by pid {writer.pid}"
                in waiting
            )
            started = time.monotonic()
            code = daemon.terminate(timeout=30)
        finally:
            if daemon.proc.poll() is None:
                daemon.proc.kill()
        assert code == 0, daemon.lines
        assert time.monotonic() - started < 10  # not the busy timeout's 10 minutes
        assert any("received SIGTERM during start-up: stopped before serving" in line for line in daemon.lines)
        assert not any("Traceback" in line for line in daemon.lines)
    ledger.record("locks: SIGTERM while start-up waits for a foreign writer")


@pytest.mark.slow
def run_until_waiting_then_release(env, writer, announced: str, timeout: float = 300):
    """`tickcast run` beside ``writer``: once tickcast says it waits (``announced``), the writer lets
    go; the finished run (its exit status and all it printed) is returned."""
    run = start_tickcast(env, "run")
    seen = []
    deadline = time.monotonic() + timeout
    for line in run.stderr:
        seen.append(line)
        if announced in line:
            writer.release()
            break
        assert time.monotonic() < deadline, "".join(seen)
    out, err = run.communicate(timeout=timeout)
    return subprocess.CompletedProcess(run.args, run.returncode, out, "".join(seen) + err)


def test_run_waits_for_a_foreign_writer_says_so_and_then_runs(tmp_path, ledger):
    env = world(tmp_path)
    init(env)
    with foreign_writer(db_path(env)) as writer:
        done = run_until_waiting_then_release(env, writer, "waiting for the write lock")
    assert done.returncode == 0, done.stderr
    waiting = [line for line in done.stderr.splitlines() if "waiting for the write lock" in line]
    assert len(waiting) == 1 and f"held by pid {writer.pid}" in waiting[0]
    assert [r[:2] for r in runs(f"sqlite:///{db_path(env)}")] == [("manual", "ok")]
    ledger.record("locks: a foreign writer for a few seconds")


def test_a_run_waiting_for_a_postgresql_lock_says_who_holds_it_and_then_runs(tmp_path, pg_server, ledger):
    with pg_server.database() as url:
        env = world(tmp_path, db_url=url)
        init(env)
        with foreign_writer(url, postgres=True) as writer:
            done = run_until_waiting_then_release(env, writer, "is waiting for a lock")
        assert done.returncode == 0, done.stderr
        waiting = [line for line in done.stderr.splitlines() if "is waiting for a lock" in line]
        assert len(waiting) == 1, done.stderr
        assert f"is waiting for a lock on {url.split('://')[0]}" in waiting[0]
        assert "held by PostgreSQL session pid " in waiting[0] and "(application foreign-writer, user " in waiting[0]
        assert waiting[0].endswith("(up to 10 min: service.busy_timeout_minutes)")
        assert [r[:2] for r in runs(url)] == [("manual", "ok")]
    ledger.record("locks: a PostgreSQL lock held for a few seconds")


def test_a_postgresql_lock_past_the_busy_timeout_names_its_holder(tmp_path, pg_server, ledger):
    with pg_server.database() as url:
        env = world(tmp_path, "[service]\nbusy_timeout_minutes = 0.05\n" + EMPTY, db_url=url)
        init(env)
        with foreign_writer(url, hold_seconds=300, postgres=True):
            done = run_tickcast(env, "run", timeout=120)
        assert done.returncode == 1, done.stderr
        error = done.stderr.splitlines()[-1]
        assert (
            error.startswith("tickcast: run not started: the database ")
            and "stayed locked: PostgreSQL session pid " in error
            and "(application foreign-writer, user " in error
        ), done.stderr
    ledger.record("locks: a PostgreSQL lock past the busy timeout")


def test_a_run_that_cannot_start_is_one_line_exit_1_and_recorded(tmp_path, backend, db_url, ledger):
    postgres = backend == "postgresql"
    env = world(tmp_path, "[service]\nbusy_timeout_minutes = 0.02\n" + EMPTY, db_url=db_url if postgres else None)
    init(env)
    with foreign_writer(db_url if postgres else db_path(env), hold_seconds=300, postgres=postgres) as writer:
        done = run_tickcast(env, "run", timeout=120)
        recorded = runs(db_url) if postgres else None
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    error = done.stderr.splitlines()[-1]
    if postgres:  # the lock is on run_lease: the attempt itself could be written at once
        assert error.startswith("tickcast: run not started: the database ") and "stayed locked" in error
        assert error.endswith("; recorded in runs")
        ((trigger, status, stored),) = recorded
        assert (trigger, status) == ("manual", "failed") and stored.startswith("run not started: ")
    else:
        assert error == (
            f"tickcast: run not started: the database {db_path(env)} stayed locked for 1.2 s "
            f"(service.busy_timeout_minutes), its write lock held by pid {writer.pid}; "
            "not recorded in runs yet: the database is still locked (the next run records it)"
        )
    ledger.record("locks: a foreign writer past the busy timeout")


def test_serve_retries_a_run_that_could_not_start_and_records_the_attempt(tmp_path, ledger):
    env = world(
        tmp_path,
        "[service]\nbusy_timeout_minutes = 0.02\n" + EMPTY + CATCH_UP + "start_retries = 5\nretry_minutes = 0.02\n",
    )
    init(env)
    daemon = None
    try:
        with foreign_writer(db_path(env)) as writer:
            daemon = Daemon(["serve"], env)
            daemon.wait_for("run not started: the database", timeout=120)
            retry = daemon.wait_for("retry 1 of 5 at", timeout=60)
            writer.release()
        daemon.wait_for("finished: ok", timeout=120)
        assert daemon.terminate() == 0
    finally:
        if daemon is not None and daemon.proc.poll() is None:
            daemon.proc.kill()
    assert "stayed locked for 1.2 s (service.busy_timeout_minutes)" in retry
    history = runs(f"sqlite:///{db_path(env)}")
    assert history[-1][:2] == ("catch-up", "ok")
    assert len(history) >= 2 and all(
        status == "failed" and error.startswith("run not started: the database ") for _, status, error in history[:-1]
    )
    ledger.record("locks: serve retries a run that could not start")


@pytest.mark.slow
def test_sigterm_while_a_run_waits_for_the_lock_stops_serve_cleanly(tmp_path, ledger):
    env = world(tmp_path, EMPTY + CATCH_UP)
    init(env)
    with foreign_writer(db_path(env), hold_seconds=300):
        daemon = Daemon(["serve"], env)
        try:
            daemon.wait_for("catching up the run")
            daemon.wait_for("waiting for the write lock")
            started = time.monotonic()
            code = daemon.terminate(timeout=60)
        finally:
            if daemon.proc.poll() is None:
                daemon.proc.kill()
    assert code == 0, daemon.lines
    assert time.monotonic() - started < 15  # the stop grace, not the busy timeout
    assert any("run not started: stopped while waiting for the write lock" in line for line in daemon.lines)
    ledger.record("locks: SIGTERM while a run waits for a foreign writer")


@pytest.mark.slow
def test_a_lock_held_mid_run_fails_the_run_with_a_clear_reason_in_runs(tmp_path, ledger):
    """The foreign writer takes the lock while a series trains and keeps it past the busy timeout:
    storing that series fails, the run fails in one line and records why in `runs` (not
    SQLAlchemy's text); what was stored before stays."""
    from .scenario import slow_world

    env = slow_world(tmp_path)
    config = tmp_path / "tickcast.toml"
    config.write_text(config.read_text().replace("[service]\n", "[service]\nbusy_timeout_minutes = 0.03\n"))
    run = start_tickcast(env, "run")
    line = run.stderr.readline()
    while "[train 1/" not in line:  # the first series is stored; the second trains
        assert line, run.communicate(timeout=60)
        line = run.stderr.readline()
    with foreign_writer(db_path(env)) as writer:
        # Storing the series waits (said once), gives up after the busy timeout; then closing the run
        # waits again (said again): only then does the writer let go, so the run's row is written.
        seen = []
        for line in run.stderr:
            seen.append(line)
            if sum("waiting for the write lock" in s for s in seen) == 2:
                writer.release()
                break
        out, err = run.communicate(timeout=120)
        err = "".join(seen) + err
    assert run.returncode == 1, err
    message = (
        f"the database {db_path(env)} stayed locked for 1.8 s (service.busy_timeout_minutes), its write "
        f"lock held by pid {writer.pid}"
    )
    assert err.strip().splitlines()[-1] == f"tickcast: {message}"
    assert "Traceback" not in err
    assert runs(f"sqlite:///{db_path(env)}") == [("manual", "failed", f"DatabaseLocked: {message}")]
    assert query(env, "SELECT count(*) FROM fits") == [(1,)]
    ledger.record("locks: a foreign writer mid-run")
