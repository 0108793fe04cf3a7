"""A local worker process killed mid-run (the out-of-memory killer's SIGKILL): only the series it was
fitting fails, with the reason; the others go on in a fresh pool, are stored, and the run ends
`partial` with exit 3 and its lease released. (It used to fail every remaining series and then hang
for ever in the pool's shutdown, deaf to SIGTERM, holding the lease.)"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..support.daemon import Daemon
from .scenario import alive, crash_invariants, query
from .stops import pool_workers

N_SERIES = 6


def slow_world(
    root: Path, workers: int = 2, epochs: int = 400, n: int = N_SERIES, points: int = 400, model: str = ""
) -> dict:
    """``n`` CSV series whose fits take a second or more each (epochs, no early stop)."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(21)
    dates = pd.bdate_range("2021-01-04", periods=points)
    entries = []
    for i in range(n):
        values = 30 * np.exp(np.cumsum(rng.normal(0, 0.02, points))) + np.sin(np.arange(points) / (2 + i))
        pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "value": values}).to_csv(root / f"s{i}.csv", index=False)
        entries.append(f'[[series]]\nkey = "csv:s{i}"\npath = "s{i}.csv"\nprice = true\n')
    (root / "tickcast.toml").write_text(
        f"[service]\nworkers = {workers}\n[watchlist]\nsample = []\n"
        + "".join(entries)
        + f"[model]\nhidden_size = 16\nepochs = {epochs}\npatience = 1000\nensemble = 1\nmax_points = {points}\n"
        + model
    )
    return {"TICKCAST_CONFIG": str(root / "tickcast.toml"), "TICKCAST_DATA_DIR": str(root / "data")}


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def busiest(pids: list[int]) -> int:
    """The worker that is computing (a fit) rather than waiting for its next task."""
    before = {pid: cpu_ticks(pid) for pid in pids}
    time.sleep(0.5)
    return max(pids, key=lambda pid: cpu_ticks(pid) - before[pid])


def run_killing_a_busy_worker(env: dict, n: int) -> tuple[Daemon, list[int], int, int]:
    """`tickcast run` (its stderr read line by line); once the first of its ``n`` series is back
    (the pool is up, more fits are running), SIGKILL to the worker that is computing. Returns the
    run, its worker pids, the killed one and the run's exit code."""
    run = Daemon(["run"], env)
    try:
        run.wait_for(f"[train 1/{n}]", timeout=600)
        workers = pool_workers(run.proc.pid)
        assert len(workers) == 2, workers
        victim = busiest(workers)
        os.kill(victim, signal.SIGKILL)
        code = run.proc.wait(timeout=300)  # it used to hang here for ever
        run.reader.join(timeout=10)
    finally:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()
    return run, workers, victim, code


def test_a_worker_killed_by_the_oom_killer_fails_only_its_series_and_the_run_goes_on(tmp_path, ledger):
    env = slow_world(tmp_path)
    run, workers, victim, code = run_killing_a_busy_worker(env, N_SERIES)
    assert code == 3, "\n".join(run.lines)
    failed = query(
        env, "SELECT s.key, f.error FROM fits f JOIN series s ON s.id = f.series_id WHERE f.status = 'failed'"
    )
    assert len(failed) == 1, failed  # only the series on the killed worker
    _key, error = failed[0]
    assert error.startswith(
        f"worker failed: WorkerLost: the worker process running it (pid {victim}) was killed by SIGKILL"
    ), error
    assert "out-of-memory killer" in error
    assert f"tickcast: {error}" in run.lines
    assert query(env, "SELECT count(*) FROM fits WHERE status = 'ok'") == [(N_SERIES - 1,)]  # the others, once each
    assert query(env, "SELECT status, series_ok, series_failed FROM runs") == [("partial", N_SERIES - 1, 1)]
    assert query(env, "SELECT count(*) FROM run_lease") == [(0,)]
    assert crash_invariants(env) == []
    assert not [pid for pid in workers if alive(pid)]  # no worker left behind
    ledger.record("workers: one local worker killed with SIGKILL mid-run")


def test_a_batch_whose_worker_is_killed_is_trained_again_one_series_per_task(tmp_path, ledger):
    """Enough series for batches (16 series on 2 workers: batches of 2, trained together): the batch
    on the killed worker is not failed whole but sent again one series per task, so only a series
    that kills its worker again would fail. Killed once, every series ends trained and stored."""
    n = 16
    env = slow_world(tmp_path, n=n, epochs=150, model='training = "series"\n')
    run, _, _, code = run_killing_a_busy_worker(env, n)
    assert code == 0, "\n".join(run.lines)
    assert query(env, "SELECT status, count(*) FROM fits GROUP BY status") == [("ok", n)]
    assert query(env, "SELECT status, series_ok, series_failed FROM runs") == [("ok", n, 0)]
    crash_invariants(env)
    ledger.record("workers: a batch's worker killed with SIGKILL mid-run")
