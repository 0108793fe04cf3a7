"""What `runs` records, and what `serve` concludes from it: a `tickcast run` refused by a foreign lock
gets its `failed` row as soon as the database lets a run write it (the README promises one), and a
run that once started with the clock in the future does not stop every later missed run from being
caught up."""

from __future__ import annotations

import os
from datetime import timedelta

import sqlalchemy as sa

from tickcast.service import schema
from tickcast.service.clock import utcnow
from tickcast.service.db import write_transaction

from ..support.daemon import Daemon
from ..support.foreign import foreign_writer
from .scenario import database, engine_of, make_world, query, run_tickcast

CATCH_UP = '\n[schedule]\ncron = "0 0 * * *"\ntimezone = "UTC"\n'  # fired less than a day ago


def test_a_run_refused_by_a_foreign_lock_is_recorded_by_the_next_run(tmp_path, ledger):
    env = make_world(tmp_path)
    config = tmp_path / "tickcast.toml"
    config.write_text(config.read_text().replace("[service]\n", "[service]\nbusy_timeout_minutes = 0.02\n"))
    assert run_tickcast(env, "init").returncode == 0
    with foreign_writer(str(database(env)), hold_seconds=120):
        refused = run_tickcast(env, "run", "-q", timeout=300)
    assert refused.returncode == 1, refused.stderr
    line = refused.stderr.splitlines()[-1]  # after the line announcing the wait
    assert line.startswith("tickcast: run not started: the database ") and line.endswith(
        "; not recorded in runs yet: the database is still locked (the next run records it)"
    )
    done = run_tickcast(env, "run", "-q", timeout=300)
    assert done.returncode == 0, done.stderr
    rows = query(env, "SELECT trigger, status, error, pid FROM runs ORDER BY started_at")
    assert [r[:2] for r in rows] == [("manual", "failed"), ("manual", "ok")]
    assert rows[0][2].startswith("run not started: the database ") and "stayed locked" in rows[0][2]
    assert rows[0][3] != rows[1][3]  # the pid of the attempt, not of the run that wrote it
    assert not [name for name in os.listdir(database(env).parent) if "unrecorded" in name]
    ledger.record("runs: a run refused by a foreign lock, recorded later")


def test_a_run_started_with_the_clock_in_the_future_does_not_block_catch_up(tmp_path, ledger):
    env = make_world(tmp_path)
    config = tmp_path / "tickcast.toml"
    config.write_text(config.read_text() + CATCH_UP)
    assert run_tickcast(env, "init").returncode == 0
    engine = engine_of(env)
    future = utcnow() + timedelta(days=30)  # a run made while this machine's clock was a month ahead
    with write_transaction(engine) as conn:
        conn.execute(
            sa.insert(schema.runs).values(
                trigger="schedule", status="ok", started_at=future, finished_at=future + timedelta(minutes=3)
            )
        )
    engine.dispose()
    daemon = Daemon(["serve"], env)
    try:
        daemon.wait_for("catching up the run scheduled for", timeout=120)  # it used to never catch up
        daemon.wait_for("finished: ok", timeout=300)
        assert daemon.terminate(timeout=60) == 0
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
    assert [r[0] for r in query(env, "SELECT trigger FROM runs ORDER BY id")] == ["schedule", "catch-up"]
    ledger.record("schedule: a run from a clock in the future")
