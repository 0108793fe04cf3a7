"""Running short of the machine: memory (a CSV too large for the address space `tickcast` may use)
and open files (worker processes under a small ``ulimit -n``). A series that does not fit fails with
its reason and the run goes on; a limit that cannot work is named at start, with what is needed."""

from __future__ import annotations

import resource

import pytest

from tickcast.service.run.train import open_files_needed

from ..support.tables import ROWS_PER_STEP
from .scenario import MEMORY_LIMIT, limited, query, run_tickcast, world, write_csv


def test_a_csv_too_large_for_memory_fails_that_series_and_the_run_goes_on(tmp_path, ledger):
    import pandas as pd

    dates = pd.bdate_range("2021-01-04", periods=120)
    write_csv(tmp_path / "small.csv", dates, [float(i % 9 + 5) for i in range(120)])
    with open(tmp_path / "huge.csv", "wb") as fh:  # 8 million rows, 120 MB: each cell becomes a Python string
        fh.write(b"date,value\n" + b"2021-01-04,1.5\n" * 8_000_000)
    env = world(tmp_path, ["huge", "small"])
    done = run_tickcast(env, "run", "-q", preexec_fn=limited(resource.RLIMIT_AS, MEMORY_LIMIT, MEMORY_LIMIT))
    assert done.returncode == 3, done.stderr
    assert done.stderr.strip().splitlines() == [
        "tickcast: csv:huge: out of memory while fetching, checking or storing it (a source too large for the "
        "memory available); nothing stored"
    ]
    assert query(env, "SELECT status, series_ok, series_failed FROM runs") == [("partial", 1, 1)]
    # the other series was forecast: a trading week, every model at every level
    assert query(env, "SELECT count(*) FROM forecasts") == [(5 * ROWS_PER_STEP,)]
    assert query(env, "SELECT last_error FROM series WHERE key = 'csv:huge'")[0][0].startswith(
        "csv:huge: out of memory"
    )
    ledger.record("resources: out of memory in one series")


@pytest.mark.parametrize("command", ["run", pytest.param("serve", marks=pytest.mark.slow)])
def test_workers_under_a_small_open_files_limit_are_named_at_start(tmp_path, command, ledger):
    import pandas as pd

    write_csv(tmp_path / "a.csv", pd.bdate_range("2021-01-04", periods=120), [float(i % 9 + 5) for i in range(120)])
    env = world(tmp_path, ["a"])
    (tmp_path / "tickcast.toml").write_text(
        (tmp_path / "tickcast.toml").read_text().replace("workers = 1", "workers = 2")
    )
    done = run_tickcast(env, command, preexec_fn=limited(resource.RLIMIT_NOFILE, 20, 20), timeout=60)
    assert done.returncode == 1
    needed = open_files_needed(2)
    assert done.stderr.strip().splitlines() == [
        f"tickcast: service.workers = 2 needs at least {needed} open files, but the limit is 20 (hard limit 20): "
        f"raise it (ulimit -n {needed}, or nofile in docker-compose.yml) or lower service.workers"
    ]
    ledger.record("resources: open-files limit too small for the workers")


def test_a_low_soft_open_files_limit_is_raised_and_the_workers_run(tmp_path, ledger):
    import pandas as pd

    dates = pd.bdate_range("2021-01-04", periods=120)
    names = ["a", "b"]
    for i, name in enumerate(names):
        write_csv(tmp_path / f"{name}.csv", dates, [float((j * (i + 2)) % 11 + 5) for j in range(120)])
    env = world(tmp_path, names)
    (tmp_path / "tickcast.toml").write_text(
        (tmp_path / "tickcast.toml").read_text().replace("workers = 1", "workers = 2")
    )
    done = run_tickcast(env, "run", "-q", preexec_fn=limited(resource.RLIMIT_NOFILE, 16, 4096))  # 2 workers need 21
    assert done.returncode == 0, done.stderr
    assert query(env, "SELECT status, series_ok FROM runs") == [("ok", 2)]
    ledger.record("resources: a low soft open-files limit, raised")
