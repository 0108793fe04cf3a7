"""kill -9 at many points of `tickcast run` (fetch, ingest writes, planning, training, the writes of
a fit, the end of the run): the SQLite file stays intact, every series is fully written for that run
or untouched, the stale lease is taken over, and the next run ends with the same tables as a run
that was never interrupted."""

from __future__ import annotations

import random
import signal
import time

import pytest

from tickcast.service.faults import POINTS

from ..support.tables import LEVELS
from .conftest import SEED, seeded_subset
from .scenario import (
    alive,
    children_of,
    crash_invariants,
    integrity,
    kill9,
    make_group_world,
    make_world,
    query,
    run_tickcast,
    snapshot,
    start_tickcast,
)

# Four series pass each point once per run (in the watchlist's order), the run ends once.
KILL_POINTS = [f"{point}:{n}" for point in POINTS if point != "finish" for n in (1, 2, 4)] + ["finish:1"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The tables after one uninterrupted run of the same world."""
    env = make_world(tmp_path_factory.mktemp("reference"))
    done = run_tickcast(env, "run", "-q")
    assert done.returncode == 0, done.stderr
    return snapshot(env)


def lost_rows(reference: dict, now: dict) -> int:
    return sum(len(reference[table] - now[table]) for table in reference)


@pytest.mark.parametrize("kill_at", seeded_subset(KILL_POINTS, 6))
def test_kill_9_at_a_crash_point_then_the_next_run_completes(kill_at, reference, tmp_path, ledger):
    env = make_world(tmp_path)
    crashed = run_tickcast(env, "run", "-q", extra={"TICKCAST_KILL_AT": kill_at})
    assert crashed.returncode == -signal.SIGKILL, f"{kill_at} was not reached: {crashed.stderr}"
    assert crashed.stderr.splitlines()[-1] == f"tickcast: crash point {kill_at} reached: SIGKILL"  # that point
    assert crash_invariants(env) == []
    before = snapshot(env)
    # nothing committed before the crash disagrees with an uninterrupted run
    for table, rows in before.items():
        assert rows <= reference[table], (table, sorted(rows - reference[table])[:3])
    assert query(env, "SELECT count(*) FROM run_lease") == [(1,)]  # the dead holder's lease

    resumed = run_tickcast(env, "run")
    assert resumed.returncode == 0, resumed.stderr
    assert "took over a stale run lease" in resumed.stderr
    assert "closed 1 run(s) abandoned by a crashed process" in resumed.stderr
    assert integrity(env) == "ok" and crash_invariants(env) == []
    after = snapshot(env)
    assert after == reference
    statuses = [r[0] for r in query(env, "SELECT status FROM runs ORDER BY id")]
    assert statuses == ["failed", "ok"]
    ledger.record("crash: kill -9 at a crash point", survived=True, rows_lost=lost_rows(reference, after))


def test_every_crash_point_is_reached_by_a_run_and_an_unknown_one_is_refused(tmp_path):
    """Each name in faults.POINTS is a place a run really passes (a point no run reaches would make
    its crash test vacuous), and a misspelt point is an error, not a run that is never killed."""
    env = make_world(tmp_path)
    for point in POINTS:
        crashed = run_tickcast(env, "run", "-q", extra={"TICKCAST_KILL_AT": f"{point}:1"})
        assert crashed.returncode == -signal.SIGKILL, (point, crashed.stderr)
        assert crashed.stderr.splitlines()[-1] == f"tickcast: crash point {point}:1 reached: SIGKILL"
    refused = run_tickcast(env, "run", "-q", extra={"TICKCAST_KILL_AT": "store:1"})
    assert refused.returncode == 1
    assert refused.stderr == (
        "tickcast: TICKCAST_KILL_AT names no crash point: 'store' (known: " + ", ".join(POINTS) + ")\n"
    )


def started_pool(env: dict):
    """A `tickcast run` started in the background, once the pool's two workers are seen (spawned: real
    processes); returns the process, its workers and when they were seen."""
    proc = start_tickcast(env, "run", "-q")
    deadline = time.time() + 120
    while len(workers := children_of(proc.pid)) < 2:
        assert proc.poll() is None and time.time() < deadline, "the run never started its worker processes"
        time.sleep(0.02)
    return proc, workers, time.monotonic()


@pytest.fixture(scope="module")
def pool_seconds(tmp_path_factory):
    """How long the pool trains, from its workers seen to the end of the run, measured on this machine
    now (its speed varies): the random kills land inside that span, never after the run ended."""
    proc, _, seen = started_pool(make_world(tmp_path_factory.mktemp("timed"), workers=2))
    assert proc.wait(timeout=300) == 0
    return time.monotonic() - seen


@pytest.mark.parametrize("seed", seeded_subset(list(range(6)), 2))
def test_kill_9_at_a_random_moment_with_worker_processes(seed, reference, pool_seconds, tmp_path, ledger):
    """Timing-based kills of a run that trains in a process pool: the workers leave with their parent.
    The kill lands while the pool is training (its workers are seen first), at a random moment in it
    (within the first 60 % of the span an uninterrupted run's pool took)."""
    env = make_world(tmp_path, workers=2)
    proc, workers, _ = started_pool(env)
    time.sleep(random.Random(SEED + seed).uniform(0.0, 0.6) * pool_seconds)
    assert proc.poll() is None, "the run finished before the kill: nothing was tested"
    workers = children_of(proc.pid) or workers
    kill9(proc)
    deadline = time.time() + 10
    while any(alive(pid) for pid in workers) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(alive(pid) for pid in workers), "worker processes outlived their killed parent"
    assert crash_invariants(env) == []
    resumed = run_tickcast(env, "run", "-q")
    assert resumed.returncode == 0, resumed.stderr
    after = snapshot(env)
    assert after == reference  # the pool gives the same results as the single worker
    ledger.record("crash: kill -9 at a random moment", survived=True, rows_lost=lost_rows(reference, after))


# A group writes its shared fit (store-fit:1, store-history:1), then each member's row (store-fit:2..,
# store-forecasts:1..): killed between the two, the shared fit is stored and some members are not.
GROUP_KILL_POINTS = ["store-history:1", "store-fit:2", "store-forecasts:2", "store-forecasts:3"]


@pytest.mark.parametrize("kill_at", seeded_subset(GROUP_KILL_POINTS, 2))
def test_kill_9_while_storing_a_group_then_the_next_run_repairs_it(kill_at, tmp_path, ledger):
    env = make_group_world(tmp_path)
    crashed = run_tickcast(env, "run", "-q", extra={"TICKCAST_KILL_AT": kill_at})
    assert crashed.returncode == -signal.SIGKILL, f"{kill_at} was not reached: {crashed.stderr}"
    assert crash_invariants(env) == []
    members_before = query(env, "SELECT count(*) FROM fits WHERE series_id IS NOT NULL")[0][0]
    resumed = run_tickcast(env, "run", "-q")
    assert resumed.returncode == 0, resumed.stderr
    assert integrity(env) == "ok" and crash_invariants(env) == []
    (newest,) = query(env, "SELECT max(id) FROM fits WHERE series_id IS NULL AND status = 'ok'")[0]
    latest = query(
        env,
        """
        SELECT s.key, f.group_fit_id, f.train_end FROM fits f JOIN series s ON s.id = f.series_id
        WHERE f.id = (SELECT max(id) FROM fits f2 WHERE f2.series_id = f.series_id) ORDER BY s.key""",
    )
    assert [(key, shared) for key, shared, _ in latest] == [(f"csv:m{i}", newest) for i in range(3)], latest
    view = query(
        env, "SELECT DISTINCT v.series_key, f.group_fit_id FROM latest_forecasts v JOIN fits f ON f.id = v.fit_id"
    )
    assert sorted(view) == [(f"csv:m{i}", newest) for i in range(3)]
    assert query(env, "SELECT count(*) FROM latest_forecasts")[0][0] == 3 * 5 * len(LEVELS)  # each step, each level
    again = run_tickcast(env, "run")  # and now the group is up to date
    assert again.returncode == 0 and "3 up to date" in again.stdout + again.stderr, again.stdout + again.stderr
    ledger.record("crash: kill -9 while storing a group", survived=True, rows_lost=0)
    assert members_before < 3  # the crash did leave the group half-written
