"""What `tickcast health` says when the runs table holds something odd: a run left 'running' by a
process that died (named, with its pid; the next run closes it), one in progress, and a run that
finished in the future (clock skew, not a run finished -27231.8 h ago)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import sqlalchemy as sa

from tickcast.service import schema
from tickcast.service.cli import main
from tickcast.service.db import open_database, write_transaction
from tickcast.service.lease import acquire

from .scenario import query, run_tickcast, world, write_csv


def test_a_run_left_running_by_a_killed_process_is_named_by_health(tmp_path, monkeypatch, capsys, ledger):
    env = world(tmp_path, ["short"], extra="[forecast]\nmin_length = 100\n")  # skipped, not trained: quick
    write_csv(tmp_path / "short.csv", pd.bdate_range("2021-01-04", periods=30), [float(i % 5) for i in range(30)])
    assert run_tickcast(env, "run", "-q").returncode == 0
    killed = run_tickcast(env, "run", "-q", extra={"TICKCAST_KILL_AT": "fetch:1"})
    assert killed.returncode == -9
    ((run_id, pid, host),) = query(env, "SELECT id, pid, host FROM runs WHERE status = 'running'")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["health"]) == 0  # the last completed run is recent
    out = capsys.readouterr().out
    assert out.startswith("ok: run 1 (ok) finished 0.0 h ago; ")
    assert (
        f"; run {run_id} is still marked running but its process is gone (started " in out
        and f" by pid {pid} on {host}): it crashed or was killed; the next run records it as failed" in out
    )
    assert run_tickcast(env, "run", "-q").returncode == 0  # which closes it
    assert main(["health"]) == 0 and "still marked running" not in capsys.readouterr().out
    assert query(env, "SELECT status FROM runs ORDER BY id") == [("ok",), ("failed",), ("ok",)]
    ledger.record("health: a run left running by a dead process")


def _config(tmp_path):
    path = tmp_path / "tickcast.toml"
    path.write_text("[watchlist]\n")
    return path


def test_a_run_in_progress_is_named_and_a_finish_in_the_future_is_clock_skew(tmp_path, db_url, capsys, ledger):
    engine = open_database(db_url)
    now = datetime.now(UTC)
    with write_transaction(engine) as conn:
        conn.execute(
            sa.insert(schema.runs).values(
                trigger="manual",
                status="ok",
                started_at=now + timedelta(days=1),
                finished_at=now + timedelta(days=1, minutes=5),
            )
        )
    argv = ["--db", db_url, "--config", str(_config(tmp_path)), "health"]
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert err.startswith("tickcast: unhealthy: clock skew: the last completed run (1, ok) finished at ")
    assert ", 24.1 h ahead of this machine's clock (" in err and err.count("\n") == 1 and "-24" not in err

    lease = acquire(engine)  # this (live) process runs run 2
    try:
        with write_transaction(engine) as conn:
            run_id = conn.execute(
                sa.insert(schema.runs)
                .values(trigger="manual", status="running", started_at=now, host="here", pid=1)
                .returning(schema.runs.c.id)
            ).scalar_one()
        lease.renew(run_id)
        assert main(argv) == 1
        assert f"; run {run_id} in progress (started " in capsys.readouterr().err
    finally:
        lease.release()
        engine.dispose()
    ledger.record("health: clock skew", survived=True)
