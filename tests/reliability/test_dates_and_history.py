"""Dates read the way the file means them, and history kept unless the user asks to delete it:

- a European export (``08/05/2023 ... 28/06/2024``, no ``date_format``) is stored day-first, every
  row on its own date; a column that could be read either way is refused with an error naming
  ``date_format`` (it used to be read cell by cell: days 1-12 month-first, the rest day-first);
- intraday bars newest first give each day its last bar (the close), as oldest first does;
- a source that now serves only its last 100 days, after a 2:1 split, has its history re-based:
  the 900 older stored days are kept (rescaled), not deleted; only `ingest --full` deletes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .scenario import query, run_tickcast, series_row, stored, world


def write(path, dates: list[str], values) -> None:
    pd.DataFrame({"date": dates, "value": values}).to_csv(path, index=False)


def test_a_day_first_export_is_stored_on_the_right_dates(tmp_path, ledger):
    dates = pd.bdate_range("2023-05-08", periods=300)  # 08/05/2023 ... 28/06/2024
    values = list(np.round(100 + np.cumsum(np.random.default_rng(8).normal(0, 1, 300)), 2))
    write(tmp_path / "eu.csv", list(dates.strftime("%d/%m/%Y")), values)
    env = world(tmp_path, ["eu"])
    done = run_tickcast(env, "run", "-q")
    assert done.returncode == 0, done.stderr
    rows = stored(env, "csv:eu")
    assert rows == [(d.strftime("%Y-%m-%d"), v) for d, v in zip(dates, values)]  # every row, its own date
    (origin,) = query(env, "SELECT DISTINCT origin_ts FROM forecasts")[0]
    assert origin == "2024-06-28"  # not "2024-12-06"
    ledger.record("dates: a day-first export")


def test_a_date_column_that_reads_both_ways_is_refused_naming_date_format(tmp_path, ledger):
    days = pd.date_range("2024-01-01", periods=12, freq="MS")  # 01/01/2024, 01/02/2024 ...: d/m or m/d?
    write(tmp_path / "monthly.csv", list(days.strftime("%d/%m/%Y")), [float(i + 10) for i in range(12)])
    mixed = ["13/01/2024", "01/14/2024", "15/01/2024"]  # day-first and month-first in one column
    write(tmp_path / "mixed.csv", mixed, [1.0, 2.0, 3.0])
    env = world(tmp_path, ["monthly", "mixed"])
    done = run_tickcast(env, "run", "-q")
    assert done.returncode == 1, done.stderr  # every series failed
    hint = 'set date_format for the series (e.g. "%d/%m/%Y" or "%m/%d/%Y")'
    assert series_row(env, "csv:monthly")[0] == (
        "csv:monthly: the dates are ambiguous: '01/02/2024' may be day-first or month-first, and no date has a "
        f"number above 12 to tell: {hint}"
    )
    assert series_row(env, "csv:mixed")[0] == (
        "csv:mixed: the dates are day-first in some rows ('13/01/2024') and month-first in others "
        f"('01/14/2024'): {hint}"
    )
    assert query(env, "SELECT count(*) FROM observations") == [(0,)]  # nothing stored on a guess
    ledger.record("dates: ambiguous and mixed day/month columns", injected=2, survived=2)


def test_dates_that_go_back_and_forth_are_refused(tmp_path, ledger):
    cells = ["01/03/2024", "04/03/2024", "05/03/2024", "02/03/2024", "14/03/2024"]
    write(tmp_path / "jumbled.csv", cells, [1.0, 2.0, 3.0, 4.0, 5.0])
    env = world(tmp_path, ["jumbled"])
    done = run_tickcast(env, "ingest")
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        "tickcast: csv:jumbled: the dates, read day-first, are out of the file's order (2024-03-05 then "
        '2024-03-02 at row 5): set date_format for the series (e.g. "%d/%m/%Y" or "%m/%d/%Y")'
    ]
    ledger.record("dates: a day-first column out of order")


def test_intraday_bars_newest_first_give_each_day_its_close(tmp_path, ledger):
    days = pd.bdate_range("2024-01-02", periods=40)
    times = ((9, 30), (12, 0), (16, 0))
    bars = [(d + pd.Timedelta(hours=h, minutes=m), 100 + i + h / 100) for i, d in enumerate(days) for h, m in times]
    newest_first = sorted(bars, reverse=True)
    write(tmp_path / "desc.csv", [t.strftime("%Y-%m-%d %H:%M") for t, _ in newest_first], [v for _, v in newest_first])
    write(tmp_path / "asc.csv", [t.strftime("%Y-%m-%d %H:%M") for t, _ in bars], [v for _, v in bars])
    env = world(tmp_path, ["desc", "asc"])
    done = run_tickcast(env, "ingest")
    assert done.returncode == 0, done.stderr
    closes = [(d.strftime("%Y-%m-%d"), 100 + i + 0.16) for i, d in enumerate(days)]
    assert stored(env, "csv:desc") == closes  # the 16:00 bar, not the 09:30 one
    assert stored(env, "csv:asc") == closes
    assert "keeping the last bar of each day" in series_row(env, "csv:desc")[1]
    ledger.record("dates: intraday bars newest first")


def test_a_rolling_window_source_after_a_split_keeps_the_older_history(tmp_path, ledger):
    dates = pd.bdate_range("2019-01-01", periods=1000)
    prices = np.round(50 * np.exp(np.cumsum(np.random.default_rng(2).normal(0, 0.01, 1000))), 4)
    write(tmp_path / "roll.csv", list(dates.strftime("%Y-%m-%d")), list(prices))
    env = world(tmp_path, ["roll"])
    assert run_tickcast(env, "ingest").returncode == 0
    # a 2:1 split: the source now serves its last 100 days only, every one halved
    write(tmp_path / "roll.csv", list(dates[-100:].strftime("%Y-%m-%d")), list(prices[-100:] / 2))
    done = run_tickcast(env, "ingest")
    assert done.returncode == 0, done.stderr
    rows = stored(env, "csv:roll")
    assert len(rows) == 1000  # nothing deleted
    assert [d for d, _ in rows] == list(dates.strftime("%Y-%m-%d"))
    assert np.allclose([v for _, v in rows], prices / 2, rtol=1e-12)  # one basis, the new one
    note = series_row(env, "csv:roll")[1]
    assert "kept 900 stored value(s) the source no longer sends" in note and "0 removed" in note
    full = run_tickcast(env, "ingest", "--full", "csv:roll")  # asked for: the source's history, exactly
    assert full.returncode == 0, full.stderr
    assert len(stored(env, "csv:roll")) == 100
    ledger.record("history: rolling-window source re-based by a split", rows_lost=1000 - len(rows))
