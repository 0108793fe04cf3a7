"""The run lease names its holder by more than a pid. A restarted container gives `tickcast` the same
small pid, on the same host name, as the run it killed: that stale lease is taken over, `health`
reports no phantom run, and `serve` refused by a run that really is alive tries again after
``schedule.retry_minutes`` instead of dropping its run. A live run whose lease expired during a long
fetch is never declared dead, and its heartbeat renews the lease while the fetch goes on."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from tickcast.service import schema
from tickcast.service.clock import utcnow
from tickcast.service.db import write_transaction
from tickcast.service.lease import acquire

from ..support.cli import tickcast_executable
from ..support.daemon import Daemon
from .scenario import engine_of, make_world, query, run_tickcast
from .servers import TricklingServer

CATCH_UP = '\n[schedule]\ncron = "0 0 * * *"\ntimezone = "UTC"\n'  # fired less than a day ago


def process_start(pid: int) -> int:
    """Clock ticks since boot when ``pid`` started (/proc/<pid>/stat, field 22)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])


def stale_lease(env, pid: int, started: int | None, run_status: str = "running") -> None:
    """What a run killed with SIGKILL leaves: its `running` row and its lease (pid ``pid``, process
    start ``started``)."""
    engine = engine_of(env)
    now = utcnow()
    with write_transaction(engine) as conn:
        run_id = conn.execute(
            sa.insert(schema.runs)
            .values(trigger="catch-up", status=run_status, started_at=now, host=socket.gethostname(), pid=pid)
            .returning(schema.runs.c.id)
        ).scalar_one()
        conn.execute(sa.delete(schema.run_lease))
        identity = {"process_start": started} if "process_start" in schema.run_lease.c else {}
        conn.execute(
            sa.insert(schema.run_lease).values(
                name="run",
                holder=f"{socket.gethostname()}:{pid}:deadbeef",
                host=socket.gethostname(),
                pid=pid,
                run_id=run_id,
                acquired_at=now,
                expires_at=now + timedelta(minutes=15),
                **identity,
            )
        )
    engine.dispose()


def stopped_shell(command: list[str], env: dict) -> subprocess.Popen:
    """A shell that stops itself and then (on SIGCONT) execs ``command``: the pid the lease names is the
    pid ``command`` will run as, as after a container restart."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("TICKCAST_")} | env
    script = 'kill -STOP $$; exec "$@"'
    proc = subprocess.Popen(
        ["sh", "-c", script, "sh", *command], env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 30
    while Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "T":
        assert time.monotonic() < deadline, "the shell did not stop"
        time.sleep(0.01)
    return proc


def test_a_restart_with_the_killed_runs_pid_takes_its_stale_lease_over(tmp_path, ledger):
    env = make_world(tmp_path)
    assert run_tickcast(env, "init").returncode == 0
    proc = stopped_shell(tickcast_executable() + ["run"], env)
    try:
        # the killed run had this very pid, and started at another time
        stale_lease(env, proc.pid, process_start(proc.pid) - 500)
        health = run_tickcast(env, "health")
        assert "in progress" not in health.stderr, health.stderr  # no phantom run
        assert "is still marked running but its process is gone" in health.stderr
        os.kill(proc.pid, signal.SIGCONT)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert f"took over a stale run lease (pid {proc.pid} on {socket.gethostname()}, run 1)" in err
    assert query(env, "SELECT id, status FROM runs ORDER BY id") == [(1, "failed"), (2, "ok")]
    assert query(env, "SELECT count(*) FROM run_lease") == [(0,)]
    ledger.record("lease: restart with the killed run's pid")


def test_a_lease_left_by_an_older_tickcast_with_our_pid_is_stale(tmp_path, ledger):
    env = make_world(tmp_path)
    assert run_tickcast(env, "init").returncode == 0
    proc = stopped_shell(tickcast_executable() + ["run"], env)
    try:
        stale_lease(env, proc.pid, None)  # no start time: written before the lease stored one
        os.kill(proc.pid, signal.SIGCONT)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "took over a stale run lease" in err
    ledger.record("lease: an old lease naming our own pid")


def test_serve_refused_by_a_live_run_retries_after_retry_minutes(tmp_path, ledger):
    env = make_world(tmp_path)
    config = tmp_path / "tickcast.toml"
    config.write_text(config.read_text() + CATCH_UP + "start_retries = 5\nretry_minutes = 0.02\n")
    assert run_tickcast(env, "init").returncode == 0
    engine = engine_of(env)
    lease = acquire(engine)  # this live test process runs a run
    daemon = Daemon(["serve"], env)
    try:
        refused = daemon.wait_for("another run is in progress", timeout=120)
        retry = daemon.wait_for("retry 1 of 5 at", timeout=60)
        lease.release()  # the other run ends
        daemon.wait_for("finished: ok", timeout=300)
        assert daemon.terminate(timeout=60) == 0
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
        engine.dispose()
    assert f"pid {os.getpid()} on {socket.gethostname()}" in refused
    assert "skipping this run" not in "\n".join(daemon.lines)
    assert retry == refused  # one line: the refusal and when it is tried again
    assert [r[:2] for r in query(env, "SELECT trigger, status FROM runs ORDER BY id")] == [("catch-up", "ok")]
    ledger.record("lease: serve refused by a live run retries")


def test_a_live_run_whose_lease_expired_during_a_long_fetch_keeps_it(tmp_path, ledger):
    with TricklingServer(interval=0.5) as server:
        env = make_world(tmp_path)
        config = tmp_path / "tickcast.toml"
        config.write_text(
            config.read_text().replace(
                '[[series]]\nkey = "csv:alpha"\npath = "alpha.csv"',
                f'[[series]]\nkey = "csv:alpha"\nurl = "http://127.0.0.1:{server.port}/alpha.csv"',
            )
            + "[sources]\nhttp_timeout = 600\nretries = 0\n"
        )
        first = Daemon(["run"], env)
        try:
            assert server.connected.wait(300), first.lines  # the first run is fetching, for ever
            with write_transaction(engine := engine_of(env)) as conn:  # its ttl passes during the fetch
                conn.execute(sa.update(schema.run_lease).values(expires_at=utcnow() - timedelta(minutes=1)))
            second = run_tickcast(env, "run", "-q", timeout=300)
            assert second.returncode == 1, second.stderr
            assert second.stderr.startswith(f"tickcast: another run is in progress (pid {first.proc.pid} on ")
            deadline = time.monotonic() + 120  # the heartbeat renews it meanwhile
            while query(env, "SELECT expires_at FROM run_lease")[0][0] < str(utcnow()):
                assert time.monotonic() < deadline, "the lease was not renewed during the fetch"
                time.sleep(0.2)
            engine.dispose()
            assert first.proc.poll() is None
            assert first.terminate(timeout=60) == 1
        finally:
            if first.proc.poll() is None:
                first.proc.kill()
    assert query(env, "SELECT status FROM runs ORDER BY id") == [("failed",)]
    assert query(env, "SELECT count(*) FROM run_lease") == [(0,)]
    ledger.record("lease: expired during a long fetch, holder alive")
