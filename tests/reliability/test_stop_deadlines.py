"""Every stop is honoured within its deadline, whatever the run is doing: SIGTERM ends `run` and
`serve` within 30 s (the grace a container manager gives before SIGKILL) during a long fit in the
driver's own process, during fits in worker processes, and during a fetch from a server that never
answers; a second signal stops at once. The run is closed as `failed` with the reason, its lease
released, nothing half-written. And a server that trickles its answer is cut off at
``sources.http_timeout`` of wall-clock time, not held for ever."""

from __future__ import annotations

import signal
import time

import pytest

from ..support.daemon import Daemon
from .scenario import alive, make_world, query
from .servers import SilentListener, TricklingServer
from .stops import CATCH_UP, CONTRACT_SECONDS, closed_as_failed, long_fit_world, pool_workers, stopped_within


def test_sigterm_during_a_long_fit_in_the_drivers_process_ends_run_within_30_s(tmp_path, ledger):
    env = long_fit_world(tmp_path)
    run = Daemon(["run"], env)
    run.wait_for("[train 1/3] csv:short", timeout=600)  # csv:long1's fit, minutes long, has begun
    code, took = stopped_within(run, CONTRACT_SECONDS)
    assert took < CONTRACT_SECONDS, run.lines
    assert code == 1, run.lines
    reason = "stopped by SIGTERM: the work in progress did not finish within 10 s"
    assert run.lines[-1] == f"tickcast: {reason}", run.lines
    closed_as_failed(env, reason)
    assert query(env, "SELECT s.key FROM fits f JOIN series s ON s.id = f.series_id") == [("csv:short",)]
    ledger.record("stop: SIGTERM during a long fit in the driver")


def test_a_second_sigint_stops_a_long_fit_at_once(tmp_path, ledger):
    env = long_fit_world(tmp_path)
    run = Daemon(["run"], env)
    run.wait_for("[train 1/3] csv:short", timeout=600)
    first = time.monotonic()
    run.proc.send_signal(signal.SIGINT)
    run.wait_for("SIGINT: finishing the series in progress, then stopping", timeout=60)
    code, took = stopped_within(run, 10, signal.SIGINT)
    assert time.monotonic() - first < 10, run.lines  # before the grace period of the first could end
    assert code == 1 and took < 10, run.lines
    assert run.lines[-2:] == ["tickcast: SIGINT again: stopping now", "tickcast: stopped by a second SIGINT"]
    closed_as_failed(env, "stopped by a second SIGINT")
    ledger.record("stop: a second SIGINT during a long fit")


def test_sigterm_during_long_fits_in_worker_processes_ends_run_within_30_s(tmp_path, ledger):
    env = long_fit_world(tmp_path, workers=2)
    run = Daemon(["run"], env)
    run.wait_for("[train 1/3] csv:short", timeout=600)  # both long fits are running in the pool
    workers = pool_workers(run.proc.pid)
    assert workers
    code, took = stopped_within(run, CONTRACT_SECONDS)
    assert took < CONTRACT_SECONDS and code == 1, run.lines
    closed_as_failed(env, "stopped by SIGTERM: the work in progress did not finish within 10 s")
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in workers):
        assert time.monotonic() < deadline, "worker processes outlived the stopped run"
        time.sleep(0.1)
    ledger.record("stop: SIGTERM during fits in worker processes")


@pytest.mark.slow
def test_sigterm_during_a_long_fit_ends_serve_within_30_s(tmp_path, ledger):
    env = long_fit_world(tmp_path, serve=True)
    daemon = Daemon(["serve"], env)
    daemon.wait_for("[train 1/3] csv:short", timeout=600)
    code, took = stopped_within(daemon, CONTRACT_SECONDS)
    assert took < CONTRACT_SECONDS and code == 0, daemon.lines
    closed_as_failed(env, "stopped by SIGTERM: the work in progress did not finish within 10 s")
    ledger.record("stop: SIGTERM during a long fit under serve")


def with_csv_url(tmp_path, port: int, http: str) -> dict:
    env = make_world(tmp_path)
    config = tmp_path / "tickcast.toml"
    config.write_text(
        config.read_text().replace(
            '[[series]]\nkey = "csv:alpha"\npath = "alpha.csv"',
            f'[[series]]\nkey = "csv:alpha"\nurl = "http://127.0.0.1:{port}/alpha.csv"',
        )
        + f"[sources]\n{http}\n"
    )
    return env


@pytest.mark.parametrize("command", ["run", "serve"])
def test_sigterm_while_fetching_from_a_server_that_never_answers(tmp_path, command, ledger):
    with SilentListener() as server:
        env = with_csv_url(tmp_path, server.port, "http_timeout = 600\nretries = 0")
        if command == "serve":
            config = tmp_path / "tickcast.toml"
            config.write_text(config.read_text() + CATCH_UP)
        daemon = Daemon([command], env)
        assert server.connected.wait(300), daemon.lines  # the fetch is waiting for an answer
        code, took = stopped_within(daemon, 15)
    assert took < 15, daemon.lines  # not the 600 s of http_timeout
    assert code == (0 if command == "serve" else 1), daemon.lines
    closed_as_failed(env, "stopped by SIGTERM while fetching csv:alpha")
    ledger.record(f"stop: SIGTERM during a fetch ({command})")


def test_a_server_that_trickles_is_cut_off_at_http_timeout(tmp_path, ledger):
    with TricklingServer(interval=0.5) as server:
        port = server.port
        env = with_csv_url(tmp_path, port, "http_timeout = 3\nretries = 1\nbackoff_seconds = 0.1")
        run = Daemon(["run"], env)
        try:
            code = run.proc.wait(timeout=300)  # it used to be held as long as the server went on
        finally:
            if run.proc.poll() is None:
                run.proc.kill()
        run.reader.join(timeout=10)
        assert server.lines_sent > 2  # it did trickle
    assert code == 3, run.lines
    (error,) = query(env, "SELECT last_error FROM series WHERE key = 'csv:alpha'")[0]
    assert error == (
        "csv:alpha: timed out after 3 s (sources.http_timeout, for the whole response) from "
        f"http://127.0.0.1:{port}/alpha.csv (2 attempts)"
    )
    assert query(env, "SELECT status FROM runs") == [("partial",)]
    ledger.record("sources: a server that trickles its answer")


def test_a_yahoo_stand_in_that_trickles_is_given_up_at_its_deadline(tmp_path, ledger):
    with TricklingServer(interval=0.5) as server:
        env = make_world(tmp_path) | {"TICKCAST_YAHOO_URL": f"http://127.0.0.1:{server.port}"}
        config = tmp_path / "tickcast.toml"
        config.write_text(
            config.read_text().replace("[watchlist]\n", '[watchlist]\nyahoo = ["SPY"]\n')
            + "[sources]\nhttp_timeout = 2\nretries = 0\n"
        )
        run = Daemon(["run", "-q"], env)
        try:
            code = run.proc.wait(timeout=300)  # yfinance's per-read timeout never fired: it used to wait for ever
        finally:
            if run.proc.poll() is None:
                run.proc.kill()
        run.reader.join(timeout=10)
        assert server.lines_sent > 2
    assert code == 3, run.lines
    (error,) = query(env, "SELECT last_error FROM series WHERE key = 'yahoo:SPY'")[0]
    assert error == "yahoo:SPY: Yahoo did not answer within 6 s (3 x sources.http_timeout); gave up after 1 attempt"
    ledger.record("sources: a Yahoo stand-in that trickles")
