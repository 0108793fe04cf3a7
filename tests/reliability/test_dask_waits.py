"""Waiting on a Dask cluster has deadlines, and a stop is honoured while waiting: an address that
accepts connections but is no Dask scheduler (a silent listener, an HTTP server such as the
dashboard) fails the run in one line within the connect timeout plus a few seconds, keeping what
ingest stored and releasing the lease; SIGTERM while connecting to it, or while the tasks sit on a
frozen worker (SIGSTOP), ends the run within 30 s."""

from __future__ import annotations

import os
import signal
import time

import pytest

from ..support.daemon import Daemon
from ..support.dask_cluster import local_cluster
from ..support.httpserver import FixtureServer
from .scenario import make_world, query
from .servers import SilentListener
from .stops import CONTRACT_SECONDS, closed_as_failed, long_fit_world, stopped_within

pytest.importorskip("distributed")
pytestmark = pytest.mark.cluster

CONNECT_SECONDS = 3


def on_dask(env: dict, address: str, connect: float = CONNECT_SECONDS) -> dict:
    return env | {
        "TICKCAST_EXECUTOR": "dask",
        "TICKCAST_DASK_ADDRESS": address,
        "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": f"{connect:g}s",
    }


@pytest.mark.parametrize("kind", ["silent listener", "HTTP server"])
def test_an_address_that_is_not_a_dask_scheduler_fails_the_run_in_one_line(tmp_path, kind, ledger):
    server = SilentListener() if kind == "silent listener" else FixtureServer().start()
    port = server.port if isinstance(server, SilentListener) else server.httpd.server_address[1]
    address = f"tcp://127.0.0.1:{port}"
    try:
        env = on_dask(make_world(tmp_path), address, connect=1)  # 1 s + the handshake's 5 s
        run = Daemon(["run", "-q"], env)
        try:
            code = run.proc.wait(timeout=300)  # it used to wait for ever
            run.reader.join(timeout=10)
        finally:
            if run.proc.poll() is None:
                run.proc.kill()
    finally:
        server.close() if isinstance(server, SilentListener) else server.stop()
    assert code == 1, run.lines
    assert len(run.lines) == 1 and run.lines[0].startswith("tickcast: "), run.lines
    ((status, error),) = query(env, "SELECT status, error FROM runs")
    assert status == "failed" and run.lines[0] == f"tickcast: {error.split(': ', 1)[1]}", (error, run.lines)
    assert address in error
    assert query(env, "SELECT count(*) FROM observations")[0][0] > 0  # what ingest stored is kept
    assert query(env, "SELECT count(*) FROM fits") == [(0,)]
    assert query(env, "SELECT count(*) FROM run_lease") == [(0,)]
    ledger.record(f"dask: {kind} at the scheduler's address")


def test_sigterm_while_connecting_to_an_address_that_never_answers(tmp_path, ledger):
    with SilentListener() as server:
        env = on_dask(make_world(tmp_path), f"tcp://127.0.0.1:{server.port}", connect=600)
        run = Daemon(["run"], env)
        run.wait_for("[ingest 4/4]", timeout=600)
        assert server.connected.wait(300), run.lines  # the handshake is waiting
        code, took = stopped_within(run, 15)
    assert took < 15 and code == 1, run.lines
    assert run.lines[-1].startswith("tickcast: stopped by SIGTERM while connecting to the Dask scheduler at ")
    ((status, error),) = query(env, "SELECT status, error FROM runs")
    assert status == "failed" and error.startswith("stopped by SIGTERM while connecting to the Dask scheduler")
    assert query(env, "SELECT count(*) FROM run_lease") == [(0,)]
    ledger.record("dask: SIGTERM during the handshake")


@pytest.mark.slow
def test_sigterm_while_the_tasks_sit_on_a_frozen_dask_worker_ends_the_run_within_30_s(tmp_path, ledger):
    with local_cluster() as (cluster, client):
        workers = client.run(os.getpid)  # address -> pid of each worker process
        env = on_dask(long_fit_world(tmp_path), cluster.scheduler_address, connect=30)
        run = Daemon(["run"], env)
        frozen = []
        try:
            run.wait_for("[train 1/3] csv:short", timeout=600)
            deadline = time.monotonic() + 120
            while not any(client.processing().values()):  # the long fits are on the workers
                assert time.monotonic() < deadline, run.lines
                time.sleep(0.1)
            for pid in workers.values():
                os.kill(pid, signal.SIGSTOP)
                frozen.append(pid)
            code, took = stopped_within(run, CONTRACT_SECONDS)
        finally:
            for pid in frozen:
                os.kill(pid, signal.SIGCONT)
            if run.proc.poll() is None:
                run.proc.kill()
    assert took < CONTRACT_SECONDS and code == 1, run.lines
    closed_as_failed(env, "stopped by SIGTERM: the work in progress did not finish within 10 s")
    ledger.record("dask: SIGTERM while waiting on a frozen worker")
