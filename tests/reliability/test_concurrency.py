"""Two runs at once, and readers hammering the database while a run writes."""

from __future__ import annotations

import sqlite3
import subprocess
import threading
import time
import urllib.request

import pytest

from ..support.daemon import Daemon
from ..support.pg import free_port
from .scenario import query, run_tickcast, slow_world, start_tickcast

# Two processes racing for the lease and readers against a writer: alone, so the race is theirs.
pytestmark = pytest.mark.serial


def wait_for_running_run(env, proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if query(env, "SELECT count(*) FROM runs WHERE status = 'running'") == [(1,)]:
                return
        except sqlite3.OperationalError:
            pass  # the database is still being created
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    raise AssertionError("the first run never started")


def test_two_runs_at_once_one_runs_the_other_is_refused(tmp_path, ledger):
    env = slow_world(tmp_path)
    first = start_tickcast(env, "run", "-q")
    wait_for_running_run(env, first)
    second = run_tickcast(env, "run")
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err
    assert second.returncode == 1
    assert second.stderr.startswith("tickcast: another run is in progress (pid ") and second.stderr.count("\n") == 1
    assert query(env, "SELECT status FROM runs") == [("ok",)]  # the refused run left no trace
    ledger.record("concurrency: second run", survived=True)


def wait_until_serving(url: str, browser: Daemon, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10):
                return
        except (urllib.error.URLError, ConnectionError):
            assert time.time() < deadline and browser.proc.poll() is None, "\n".join(browser.lines)
            time.sleep(0.1)


def test_readers_never_see_database_is_locked_while_a_run_writes(tmp_path, ledger):
    """Three kinds of readers (sqlite3, Datasette's JSON, `tickcast forecasts`) already reading when
    a run starts, and reading until it ends: its ingest, its fits and its stores all meet them."""
    env = slow_world(tmp_path, epochs=15)
    assert run_tickcast(env, "init").returncode == 0
    port = free_port()
    browser = Daemon(["browse", "--host", "127.0.0.1", "--port", str(port)], env)
    url = f"http://127.0.0.1:{port}/tickcast/latest.json?_shape=array"
    wait_until_serving(url, browser)
    errors: list[str] = []
    reads = {"sqlite3": 0, "datasette": 0, "tickcast forecasts": 0}
    done = threading.Event()

    def sqlite_reader():
        while not done.is_set():
            try:
                conn = sqlite3.connect(env["TICKCAST_DATA_DIR"] + "/tickcast.db", timeout=1)
                conn.execute("SELECT count(*) FROM observations").fetchall()
                conn.execute("SELECT * FROM latest_forecasts").fetchall()
                conn.close()
                reads["sqlite3"] += 1
            except sqlite3.Error as exc:
                errors.append(f"sqlite3: {exc}")

    def datasette_reader():
        while not done.is_set():
            try:
                with urllib.request.urlopen(url, timeout=10) as response:
                    response.read()
                reads["datasette"] += 1
            except urllib.error.HTTPError as exc:
                errors.append(f"datasette: HTTP {exc.code}: {exc.read()[:200]!r}")
            except TimeoutError:  # slow on a loaded machine (5 s query limit): not a locked database
                reads["datasette slow"] = reads.get("datasette slow", 0) + 1

    def cli_reader():
        while not done.is_set():
            result = run_tickcast(env, "forecasts", "--format", "csv")
            if result.returncode not in (0, 1) or "locked" in result.stderr or "Traceback" in result.stderr:
                errors.append(f"tickcast forecasts: {result.returncode} {result.stderr.strip()}")
            elif result.returncode == 1 and "no forecasts yet" not in result.stderr:
                errors.append(f"tickcast forecasts: {result.stderr.strip()}")
            reads["tickcast forecasts"] += 1

    threads = [threading.Thread(target=f) for f in (sqlite_reader, datasette_reader, cli_reader)]
    for t in threads:
        t.start()
    run = start_tickcast(env, "run", "-q")
    try:
        wait_for_running_run(env, run)
        before = dict(reads)
        out, err = run.communicate(timeout=600)
        during = {kind: reads[kind] - before[kind] for kind in before}
    finally:
        done.set()
        for t in threads:
            t.join(timeout=60)
        browser.proc.terminate()
        try:
            browser.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:  # still finishing a request: what it returned is checked above
            browser.proc.kill()
            browser.proc.wait()
    assert run.returncode == 0, err
    assert errors == []
    assert all(n > 0 for n in during.values()), during  # every kind of reader read while the run ran
    assert query(env, "SELECT status FROM runs") == [("ok",)]
    ledger.record("concurrency: readers during a run", injected=sum(reads.values()), survived=sum(reads.values()))
