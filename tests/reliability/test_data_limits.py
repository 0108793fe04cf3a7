"""Data at the edges of what tickcast accepts: a CSV that switched to decimal commas (every new row
refused: the fetch failed), values beyond the accepted range (±1e15), a 1e9-fold outlier (kept,
with a note), and values no model can train on put into the table by hand (no NumPy warning
reaches the user; the series fails with its reason)."""

from __future__ import annotations

import math
import sqlite3

import numpy as np
import pandas as pd
import pytest

from .scenario import database, query, run_tickcast, series_row, stored, world, write_csv


def test_a_csv_that_switched_to_decimal_commas_is_a_failed_fetch(tmp_path, ledger):
    dates = pd.bdate_range("2021-01-04", periods=60)
    walk = list(np.round(50 + np.cumsum(np.random.default_rng(3).normal(0, 0.5, 60)), 2))
    write_csv(tmp_path / "comma.csv", dates[:50], walk[:50])
    write_csv(tmp_path / "holiday.csv", dates[:50], walk[:50])
    env = world(tmp_path, ["comma", "holiday"])
    first = run_tickcast(env, "run", "-q")
    assert first.returncode == 0, first.stderr
    before = stored(env, "csv:comma")

    # The export now writes "50,37" for 50.37; the other file's new rows are merely missing (".")
    write_csv(tmp_path / "comma.csv", dates, walk[:50] + [f"{v:.2f}".replace(".", ",") for v in walk[50:]])
    write_csv(tmp_path / "holiday.csv", dates[:52], walk[:50] + [".", "."])
    second = run_tickcast(env, "run", "-q")
    assert second.returncode == 3, second.stderr
    example = f"{walk[50]:.2f}".replace(".", ",")
    reason = (
        f"csv:comma: every new row was rejected (dropped 10 value(s) that are not numbers (e.g. {example!r})); "
        "nothing stored"
    )
    assert second.stderr.strip().splitlines() == [f"tickcast: {reason}"]
    assert series_row(env, "csv:comma")[0] == reason
    assert series_row(env, "csv:holiday")[0] is None  # missing values on new dates are not a failure
    assert stored(env, "csv:comma") == before  # nothing lost, nothing half-written
    assert query(env, "SELECT status, series_failed FROM runs ORDER BY id") == [("ok", 0), ("partial", 1)]
    health = run_tickcast(env, "health")
    assert health.returncode == 0  # a partial run is a completed run: the failure is in the run and series rows
    ledger.record("data: every new row rejected (decimal commas)")


def test_values_beyond_the_range_are_refused_and_outliers_kept_with_a_note(tmp_path, ledger):
    dates = pd.bdate_range("2021-01-04", periods=300)
    rng = np.random.default_rng(5)
    huge = list(100 + np.cumsum(rng.normal(0, 1, 300)))
    huge[100], huge[101], huge[250] = 1e308, -1e308, 1e300
    spike = list(np.sin(np.arange(300) / 7) + 2)
    spike[280] = 1e9 * spike[280]  # a billion times its neighbours
    write_csv(tmp_path / "huge.csv", dates, huge)
    write_csv(tmp_path / "spike.csv", dates, spike)
    env = world(tmp_path, ["huge", "spike"])
    done = run_tickcast(env, "run")
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr and "warn" not in done.stderr.lower()
    assert all(abs(v) <= 1e15 for _, v in stored(env, "csv:huge")) and len(stored(env, "csv:huge")) == 297
    note = series_row(env, "csv:huge")[1]
    assert f"refused 3 value(s) beyond the accepted range of ±1e+15 (e.g. 1e+308 on {dates[100]:%Y-%m-%d})" in note
    assert len(stored(env, "csv:spike")) == 300  # kept: an outlier is noted, not dropped
    note = series_row(env, "csv:spike")[1]
    assert note.startswith(
        "kept 1 outlier(s) more than 1000 times the size of the values around them "
        f"(e.g. {spike[280]:g} on {dates[280]:%Y-%m-%d}, "
    )
    assert "check the source" in note
    # the next fetch brings nothing new: the note is not repeated for a value already stored
    again = run_tickcast(env, "ingest", "csv:spike")
    assert again.returncode == 0 and series_row(env, "csv:spike")[1] is None
    ledger.record("data: values beyond the accepted range", injected=3, survived=3)
    ledger.record("data: a 1e9-fold outlier")


@pytest.mark.parametrize("workers", [pytest.param(1, marks=pytest.mark.slow), 2])  # 2: warnings of worker processes
def test_values_no_model_can_train_on_print_no_numpy_warnings(tmp_path, workers, ledger):
    """Rows written into the table by hand, past ingest's checks: the fit fails with its reason on
    one line; NumPy's overflow warnings (from the worker processes too) reach nobody."""
    dates = pd.bdate_range("2021-01-04", periods=200)
    for name in ("wild", "calm"):
        write_csv(tmp_path / f"{name}.csv", dates[:100], list(np.sin(np.arange(100) / 5) + 3))
    env = world(tmp_path, ["wild", "calm"], extra="")
    (tmp_path / "tickcast.toml").write_text(
        (tmp_path / "tickcast.toml").read_text().replace("workers = 1", f"workers = {workers}")
    )
    assert run_tickcast(env, "ingest", "-q").returncode == 0
    conn = sqlite3.connect(database(env))
    with conn:
        (series_id,) = conn.execute("SELECT id FROM series WHERE key = 'csv:wild'").fetchone()
        conn.executemany(
            "INSERT INTO observations (series_id, ts, value) VALUES (?, ?, ?)",
            [(series_id, d.strftime("%Y-%m-%d"), (1e308 if i % 2 else -1e308)) for i, d in enumerate(dates[100:])],
        )
    conn.close()
    done = run_tickcast(env, "run", "-q")
    assert "Warning" not in done.stderr and "overflow" not in done.stderr, done.stderr
    assert done.returncode == 3, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("tickcast: ")
    assert query(env, "SELECT s.key, f.status FROM fits f JOIN series s ON s.id = f.series_id ORDER BY s.key") == [
        ("csv:calm", "ok"),
        ("csv:wild", "failed"),
    ]
    for table, column in (("forecasts", "value"), ("fits", "train_loss"), ("loss_history", "train_loss")):
        assert all(v is None or math.isfinite(v) for (v,) in query(env, f"SELECT {column} FROM {table}"))
    ledger.record("data: values no model can train on, stored by hand")
