"""Training on a real Dask cluster: a scheduler and two worker processes on 127.0.0.1, started here
(``LocalCluster(processes=True)``), and `tickcast run` as a user runs it, with
``service.executor = "dask"``, against SQLite and the suite's PostgreSQL server.

The same tables as the local executor, bit for bit; a worker killed with SIGKILL mid-run, a
scheduler killed mid-run and an unreachable scheduler each end in a consistent database, with the
reasons recorded, and the next run does the rest.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from .support.cli import tickcast_executable
from .support.dask_cluster import local_cluster
from .support.pg import free_port
from .support.tables import LEVELS, ROWS_PER_STEP

distributed = pytest.importorskip("distributed")  # the dask extra is part of the dev extra
pytestmark = pytest.mark.cluster

N_SERIES, POINTS = 8, 500
# Where a worker is killed mid-task, a fit takes about half a second (30 epochs): long enough to be
# caught mid-task (each worker holds two tasks, so one killed at once still loses one). Where runs
# are only compared, half that.
LONG, SHORT = 30, 15
CONFIG = """
[watchlist]
sample = []
{series}
[model]
epochs = {epochs}
patience = 1000
max_points = 600
"""
KEYS = [f"csv:s{i}" for i in range(N_SERIES)]


@pytest.fixture(scope="module")
def cluster():
    """The cluster the tests share; none of them kills its workers."""
    with local_cluster() as shared:
        yield shared


@pytest.fixture
def own_cluster():
    """A cluster for one test that kills a worker: how soon (or whether) a nanny brings a killed
    worker back is Dask's business, and no other test should wait on it."""
    with local_cluster() as own:
        yield own


def world(root: Path, db_url: str, days: int = 0, model: str = "", epochs: int = SHORT) -> dict:
    """CSV series of POINTS + ``days`` business days and a config naming them; the environment of
    `tickcast` (the local executor with two worker processes unless told otherwise)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    dates = pd.bdate_range("2020-01-06", periods=POINTS + 1)
    series = []
    for i, key in enumerate(KEYS):
        values = 50 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, POINTS + 1))) + np.sin(np.arange(POINTS + 1) / (3 + i))
        n = POINTS + days
        pd.DataFrame({"date": dates[:n].strftime("%Y-%m-%d"), "value": values[:n]}).to_csv(
            root / f"s{i}.csv", index=False
        )
        series.append(f'[[series]]\nkey = "{key}"\npath = "s{i}.csv"\nprice = true\n')
    (root / "tickcast.toml").write_text(CONFIG.format(series="\n".join(series), epochs=epochs) + model)
    return {
        "TICKCAST_CONFIG": str(root / "tickcast.toml"),
        "TICKCAST_DATA_DIR": str(root / "data"),
        "TICKCAST_DB_URL": db_url,
        "TICKCAST_WORKERS": "2",
    }


def on_dask(env: dict, cluster) -> dict:
    return env | {"TICKCAST_EXECUTOR": "dask", "TICKCAST_DASK_ADDRESS": cluster[0].scheduler_address}


def tickcast(env: dict, *args: str, popen: bool = False, extra: dict | None = None):
    full = {k: v for k, v in os.environ.items() if not k.startswith("TICKCAST_")} | env | (extra or {})
    argv = tickcast_executable() + list(args)
    if popen:
        return subprocess.Popen(argv, env=full, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return subprocess.run(argv, env=full, text=True, capture_output=True, timeout=600)


def rows(url: str, sql: str) -> list[tuple]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def exact(value):
    """A float as its exact bits (hex), so that equal means bitwise equal; dates and bytes alike
    from either database."""
    if isinstance(value, float):
        return value.hex()
    if isinstance(value, (date, datetime)):
        return value.isoformat()[:10]
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def tables(url: str) -> dict:
    """What the runs wrote, by content (series keys, not ids), floats as their exact bits."""

    def read(sql):
        return [tuple(exact(v) for v in row) for row in rows(url, sql)]

    return {
        "forecasts": read(
            "SELECT s.key, f.origin_ts, f.model, f.level, f.target_ts, f.step, f.value, f.lower, f.upper "
            "FROM forecasts f JOIN series s ON s.id = f.series_id ORDER BY s.key, f.origin_ts, f.model, f.level, f.step"
        ),
        "fits": read(
            "SELECT s.key, f.status, f.mode, f.train_end, f.epochs, f.train_loss, f.val_loss, f.mae, f.skill, "
            "f.weights FROM fits f JOIN series s ON s.id = f.series_id WHERE f.status = 'ok' "
            "ORDER BY s.key, f.train_end"
        ),
        "loss_history": read(
            "SELECT s.key, f.train_end, h.epoch, h.train_loss, h.val_loss, h.grad_norm "
            "FROM loss_history h JOIN fits f ON f.id = h.fit_id JOIN series s ON s.id = f.series_id "
            "WHERE f.status = 'ok' ORDER BY s.key, f.train_end, h.epoch"
        ),
    }


def latest(url: str) -> list[tuple]:
    return [
        tuple(exact(v) for v in row)
        for row in rows(
            url,
            "SELECT series_key, target_ts, step, level, forecast, lower, upper FROM latest_forecasts ORDER BY 1, 3, 4",
        )
    ]


def consistent(url: str) -> None:
    """Each series' fits are whole: an ok fit has its loss history and its forecasts, a failed one
    neither; no run is left running."""
    for fit_id, status, series_id, group_fit_id, n_history, n_forecasts in rows(
        url,
        """
            SELECT f.id, f.status, f.series_id, f.group_fit_id,
                   (SELECT count(*) FROM loss_history h WHERE h.fit_id = f.id),
                   (SELECT count(*) FROM forecasts x WHERE x.fit_id = f.id) FROM fits f""",
    ):
        if status != "ok":
            assert n_history == 0 and n_forecasts == 0, (fit_id, status)
        elif series_id is None:  # a group's shared fit: the loss history; the forecasts are its members'
            assert n_history > 0 and n_forecasts == 0, (fit_id, n_history, n_forecasts)
        else:  # a series' own fit, or a member's row of a group (whose loss history is the shared fit's)
            assert (n_history > 0) == (group_fit_id is None) and n_forecasts == 5 * ROWS_PER_STEP, (
                fit_id,
                n_history,
                n_forecasts,
            )
    assert rows(url, "SELECT count(*) FROM runs WHERE status = 'running'") == [(0,)]
    for (value,) in rows(url, "SELECT value FROM forecasts UNION ALL SELECT lower FROM forecasts"):
        assert math.isfinite(value)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The local executor's tables (two worker processes, SQLite): a cold run, then a warm run
    the next day. Computed once for the module."""
    root = tmp_path_factory.mktemp("local")
    url = f"sqlite:///{root / 'local.db'}"
    env = world(root, url)
    assert tickcast(env, "run", "-q").returncode == 0
    cold = tables(url), latest(url)
    env = world(root, url, days=1)
    assert tickcast(env, "run", "-q").returncode == 0
    return {"cold": cold, "warm": (tables(url), latest(url))}


@pytest.fixture(scope="module")
def long_reference(tmp_path_factory):
    """The latest forecasts of the local executor's cold run with fits long enough to be killed."""
    root = tmp_path_factory.mktemp("local-long")
    url = f"sqlite:///{root / 'local.db'}"
    assert tickcast(world(root, url, epochs=LONG), "run", "-q").returncode == 0
    return latest(url)


def test_dask_stores_what_the_local_executor_stores_bit_for_bit(tmp_path, db_url, cluster, reference):
    env = on_dask(world(tmp_path, db_url), cluster)
    done = tickcast(env, "run")
    assert done.returncode == 0, done.stderr
    assert f"[train {N_SERIES}/{N_SERIES}]" in done.stderr
    assert (tables(db_url), latest(db_url)) == reference["cold"]
    # the next day: warm starts, the previous models' bytes sent to the workers
    env = on_dask(world(tmp_path, db_url, days=1), cluster)
    done = tickcast(env, "run", "-q")
    assert done.returncode == 0, done.stderr
    assert rows(
        db_url, "SELECT mode, count(*) FROM fits WHERE train_end = (SELECT max(train_end) FROM fits) GROUP BY mode"
    ) == [("warm", N_SERIES)]
    assert (tables(db_url), latest(db_url)) == reference["warm"]
    consistent(db_url)


def group_fits(url: str) -> list[tuple]:
    """The shared fits of groups (no series of their own), by content."""
    return [
        tuple(exact(v) for v in row)
        for row in rows(
            url,
            "SELECT group_key, scope, status, mode, n_series, note, epochs, train_loss, val_loss, weights FROM fits "
            "WHERE series_id IS NULL ORDER BY group_key, id",
        )
    ]


@pytest.mark.parametrize("training", ["group", "auto"])
def test_a_group_trained_across_its_series_on_dask_stores_what_it_stores_locally(tmp_path, cluster, training):
    """Training across series: the unit of work is a group (one task with every member's values;
    under auto's comparison, on a cold fit, also each member's own task, the better kept), through
    the same executor."""
    model = f'training = "{training}"\ngroup_min_series = 4\n'
    results = []
    for kind in ("local", "dask"):
        url = f"sqlite:///{tmp_path / kind}.db"
        env = world(tmp_path / kind, url, model=model)
        done = tickcast(on_dask(env, cluster) if kind == "dask" else env, "run")
        assert done.returncode == 0, done.stderr
        assert "[train 1/1] group B/1 (8 series)" in done.stderr, done.stderr
        results.append((tables(url), latest(url), group_fits(url)))
        consistent(url)
    (local, local_latest, local_groups), (dask, dask_latest, dask_groups) = results
    if training == "group":
        assert len(local_groups) == 1 and local_groups[0][:3] == ("B/1", "group", "ok")
    else:  # the choice and both scores are noted on the fits, whichever won
        notes = rows(f"sqlite:///{tmp_path / 'dask'}.db", "SELECT DISTINCT note FROM fits WHERE series_id IS NOT NULL")
        assert len(notes) == 1 and notes[0][0], notes
    assert len(local_latest) == N_SERIES * 5 * len(LEVELS)  # a trading week at each level
    assert (dask, dask_latest, dask_groups) == (local, local_latest, local_groups)


def worker_pids(client) -> dict[str, int]:
    return client.run(os.getpid)


def kill_a_busy_worker(client, proc: subprocess.Popen, timeout: float = 120) -> str:
    """Wait until a worker is running one of the run's training tasks, then SIGKILL that worker's
    process. Returns the worker's address."""
    pids = worker_pids(client)
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, "the run ended before a worker could be killed: " + proc.stderr.read()
        busy = {
            address: keys
            for address, keys in client.processing().items()
            if any(str(key).startswith("run_task-") for key in keys)
        }
        if busy:
            address = next(iter(busy))
            os.kill(pids[address], signal.SIGKILL)
            return address
        time.sleep(0.02)
    raise AssertionError("no worker ever ran a training task")


def test_a_worker_killed_mid_run_leaves_a_consistent_database_and_the_next_run_completes(
    tmp_path, db_url, own_cluster, long_reference
):
    _, client = own_cluster
    env = on_dask(world(tmp_path, db_url, epochs=LONG), own_cluster)
    proc = tickcast(env, "run", popen=True)
    kill_a_busy_worker(client, proc)
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 3, stderr  # partial: the series on the killed worker failed, the rest are stored
    assert "Traceback" not in stderr
    failed = rows(
        db_url, "SELECT s.key, f.error FROM fits f JOIN series s ON s.id = f.series_id WHERE f.status = 'failed'"
    )
    assert failed and all(
        error == "worker failed: WorkerLost: the Dask worker running it died (dask gave up after 1 attempt(s))"
        for _, error in failed
    ), failed
    for key, error in failed:
        assert f"{key}: failed: {error}" in stderr
    assert rows(db_url, "SELECT status, series_ok, series_failed FROM runs") == [
        ("partial", N_SERIES - len(failed), len(failed))
    ]
    consistent(db_url)

    # The next run trains only the series that failed (on whichever workers are up: the one that
    # survived at least), and every series ends with the forecast the local executor gives it.
    client.wait_for_workers(1, timeout=60)
    done = tickcast(env, "run")
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("cold fit") == len(failed) and f"[train {len(failed)}/{len(failed)}]" in done.stderr
    assert latest(db_url) == long_reference
    consistent(db_url)


def start(*argv: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if not k.startswith("TICKCAST_")},
    )


def test_a_scheduler_killed_mid_run_fails_the_rest_with_the_reason_and_the_next_run_completes(tmp_path, long_reference):
    """A scheduler (and one worker) of our own, killed with SIGKILL while the run waits on it."""
    address = f"tcp://127.0.0.1:{free_port()}"
    scheduler = start(
        "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1], "--no-dashboard"
    )
    worker = start("distributed.cli.dask_worker", address, "--nthreads", "1", "--no-dashboard", "--death-timeout", "10")
    url = f"sqlite:///{tmp_path / 'tickcast.db'}"
    try:
        from distributed import Client

        with Client(address, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(1, timeout=60)
            env = world(tmp_path, url, epochs=LONG) | {"TICKCAST_EXECUTOR": "dask", "TICKCAST_DASK_ADDRESS": address}
            proc = tickcast(env, "run", popen=True)
            deadline = time.time() + 120
            while not any(str(k).startswith("run_task-") for keys in client.processing().values() for k in keys):
                assert time.time() < deadline and proc.poll() is None, "no training task reached the cluster"
                time.sleep(0.02)
            while rows(url, "SELECT count(*) FROM fits")[0][0] < 1 and time.time() < deadline:
                time.sleep(0.05)  # at least one series stored before the scheduler goes
            scheduler.send_signal(signal.SIGKILL)
        _, stderr = proc.communicate(timeout=300)
    finally:
        for process in (scheduler, worker):
            process.kill()
            process.wait()
    assert proc.returncode == 3, stderr
    assert "Traceback" not in stderr and "distributed" not in stderr, stderr
    ok = rows(url, "SELECT count(*) FROM fits WHERE status = 'ok'")[0][0]
    failed = rows(url, "SELECT DISTINCT error FROM fits WHERE status = 'failed'")
    assert 1 <= ok < N_SERIES
    assert len(failed) == 1  # one reason for every series not back: the first sign of the loss
    assert failed[0][0].startswith(
        f"worker failed: SchedulerLost: lost the connection to the Dask scheduler at {address}"
    )
    assert rows(url, "SELECT status, series_ok, series_failed FROM runs") == [("partial", ok, N_SERIES - ok)]
    consistent(url)
    # the next run, on this machine's worker processes, trains the rest: the local executor's tables
    done = tickcast(world(tmp_path, url, epochs=LONG), "run", "-q")
    assert done.returncode == 0, done.stderr
    assert latest(url) == long_reference
    consistent(url)


def test_an_unreachable_scheduler_fails_the_run_in_one_line_and_keeps_what_was_ingested(tmp_path):
    url = f"sqlite:///{tmp_path / 'tickcast.db'}"
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    env = world(tmp_path, url) | {"TICKCAST_EXECUTOR": "dask", "TICKCAST_DASK_ADDRESS": address}
    done = tickcast(env, "run", "-q", extra={"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"})
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"tickcast: cannot reach the Dask scheduler at {address} (service.dask_address): "
    ), done.stderr
    ((status, error),) = rows(url, "SELECT status, error FROM runs")
    assert status == "failed" and error.startswith("ExecutorUnavailable: cannot reach the Dask scheduler")
    assert rows(url, "SELECT count(*) FROM observations") == [(N_SERIES * POINTS,)]  # ingest is kept
    assert rows(url, "SELECT count(*) FROM fits") == [(0,)]
    # the next run, once training can run, trains everything
    done = tickcast(world(tmp_path, url) | {"TICKCAST_WORKERS": "1"}, "run", "-q")
    assert done.returncode == 0, done.stderr
    assert rows(url, "SELECT count(*) FROM fits WHERE status = 'ok'") == [(N_SERIES,)]


# --- the executor itself (service/executors.py) -------------------------------------------------


def executor_settings(make_settings, cluster=None, workers: int = 2):
    if cluster is None:
        return make_settings(f"[service]\nworkers = {workers}\n").execution
    toml = f'[service]\nexecutor = "dask"\ndask_address = "{cluster[0].scheduler_address}"\n'
    return make_settings(toml).execution


@pytest.mark.parametrize("kind", ["local", "dask"])
def test_a_task_that_raises_fails_only_its_own_future(kind, make_settings, request):
    from tickcast.service.executors import open_executor

    cluster = request.getfixturevalue("cluster") if kind == "dask" else None
    with open_executor(executor_settings(make_settings, cluster), tasks=3) as executor:
        futures = [executor.submit(math.sqrt, x) for x in (4.0, -1.0, 9.0)]
        assert futures[0].result(timeout=60) == 2.0 and futures[2].result(timeout=60) == 3.0
        with pytest.raises(ValueError, match="math domain error"):
            futures[1].result(timeout=60)


def test_dask_keeps_at_most_two_tasks_per_worker_thread_out_and_cancels_only_the_rest(make_settings, cluster):
    """The cluster holds the payloads of the tasks out, not of the whole run; a stop (cancelling
    every future) drops the tasks still waiting and lets the ones out finish."""
    from tickcast.service.executors import open_executor

    _, client = cluster
    client.wait_for_workers(2, timeout=60)

    def tasks_on_the_scheduler(dask_scheduler):
        # tasks not yet done: a finished one stays in memory there until the client's release
        # reaches the scheduler, a moment after the executor has its result and sent the next
        return sum(task.state != "memory" for task in dask_scheduler.tasks.values())

    with open_executor(executor_settings(make_settings, cluster), tasks=12) as executor:
        futures = [executor.submit(time.sleep, 0.3) for _ in range(12)]
        most = 0
        while not all(f.done() for f in futures):
            most = max(most, client.run_on_scheduler(tasks_on_the_scheduler))
            time.sleep(0.05)
        assert 2 <= most <= 4  # two single-threaded workers, two tasks each
        assert [f.result() for f in futures] == [None] * 12

        futures = [executor.submit(time.sleep, 0.5) for _ in range(10)]
        cancelled = [f.cancel() for f in futures]
        assert cancelled == [False] * 4 + [True] * 6  # the four out count as running: they finish
        assert [f.result(timeout=60) for f in futures[:4]] == [None] * 4


def test_short_tasks_go_out_in_batches_and_each_keeps_its_own_result_and_exception(make_settings, cluster):
    """Tasks far shorter than a Dask task's cost are sent several to a Dask task; each still gets
    its own result, or its own exception, in its own future."""
    from distributed import get_task_stream

    from tickcast.service.executors import DaskExecutor, open_executor

    _, client = cluster
    values = [float(x) if x != 17 else -1.0 for x in range(40)]
    with get_task_stream(client=client) as stream:
        with open_executor(executor_settings(make_settings, cluster), tasks=len(values)) as executor:
            futures = [executor.submit(math.sqrt, v) for v in values]
            outcomes = [f.exception(timeout=60) or f.result() for f in futures]
    for v, outcome in zip(values, outcomes):
        if v < 0:
            assert isinstance(outcome, ValueError) and "math domain error" in str(outcome)
        else:
            assert outcome == math.sqrt(v)
    sent = [t for t in stream.data if str(t["key"]).startswith("sqrt-")]
    # The first four go out one each (nothing is known about their length yet), the rest in batches.
    assert 4 < len(sent) <= 4 + math.ceil((len(values) - 4) / DaskExecutor.MAX_BATCH) + 2, len(sent)
