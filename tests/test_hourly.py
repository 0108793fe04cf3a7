"""Hourly series through the command line, as a user meets them: a CSV of 15-minute bars with a UTC
offset, ingested hour by hour (the last bar of each hour, the file's own clock), forecast 48 hours
ahead, scored hour by hour as the hours come, backfilled, plotted; the same file made daily by its
configured frequency. tests/test_stored_equals_computed.py checks the stored forecasts against the
model; tests/test_stamps.py the stamps themselves on both backends."""

from __future__ import annotations

import json
from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tickcast.service import schema
from tickcast.service.cli import main
from tickcast.service.db import make_engine

from .support.small_model import FAST_MODEL

START = pd.Timestamp("2024-03-01 00:00")


def load(hours: int, seed: int = 3) -> pd.Series:
    """A load-like signal, one value per hour: a daily and a weekly cycle and noise."""
    t = np.arange(hours)
    noise = np.random.default_rng(seed).normal(0, 1, hours)
    values = 100 + 10 * np.sin(2 * np.pi * t / 24) + 3 * np.sin(2 * np.pi * t / 168) + noise
    return pd.Series(values, index=START + pd.to_timedelta(t, unit="h"))


def write_bars(path, hourly: pd.Series) -> None:
    """Four 15-minute bars per hour, stamped with a +01:00 offset; the hour's value is its last bar
    (the bar at :45), the other three are off by 5."""
    stamps, values = [], []
    for hour, value in hourly.items():
        for minute in (0, 15, 30, 45):
            stamps.append((hour + pd.Timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:00+01:00"))
            values.append(value if minute == 45 else value - 5)
    pd.DataFrame({"time": stamps, "mw": values}).to_csv(path, index=False)


@pytest.fixture
def world(tmp_path, sqlite_url):
    def configure(frequency: str | None = None) -> list[str]:
        extra = f'frequency = "{frequency}"\n' if frequency else ""
        config = tmp_path / "t.toml"
        config.write_text(
            '[[series]]\nkey = "csv:load"\npath = "load.csv"\ndate_column = "time"\nvalue_column = "mw"\n'
            + extra
            + FAST_MODEL
        )
        return ["--db", sqlite_url, "--config", str(config)]

    return configure, tmp_path / "load.csv", sqlite_url


def stored(url: str) -> list[tuple]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            obs = schema.observations.c
            return conn.execute(sa.select(obs.ts, obs.value).order_by(obs.ts)).all()
    finally:
        engine.dispose()


def one(url: str, sql: str):
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).all()
    finally:
        engine.dispose()


def test_15_minute_bars_are_stored_hour_by_hour_on_the_files_clock(world, capsys):
    configure, csv, url = world
    truth = load(24 * 21)
    write_bars(csv, truth)
    assert main([*configure(), "ingest"]) == 0
    out, _ = capsys.readouterr()
    rows = stored(url)
    assert [ts for ts, _ in rows] == [
        d.date() if d.hour == 0 else d.to_pydatetime() for d in truth.index
    ]  # 10:45+01:00 is 10:00 here: the wall clock, to the hour
    np.testing.assert_allclose([v for _, v in rows], truth.to_numpy(), rtol=1e-12)
    assert one(url, "SELECT frequency, last_note FROM series") == [
        ("H", f"collapsed {3 * len(truth)} duplicate hour(s), keeping the last bar of each hour")
    ]
    assert "2024-03-21 23:00" in out  # the last stamp stored, in the summary
    raw = [ts for (ts,) in one(url, "SELECT ts FROM observations ORDER BY ts LIMIT 3")]
    assert raw == ["2024-03-01", "2024-03-01 01:00:00", "2024-03-01 02:00:00"]


def test_the_same_bars_configured_daily_keep_the_last_bar_of_each_day(world):
    configure, csv, url = world
    truth = load(24 * 21)
    write_bars(csv, truth)
    assert main([*configure("D"), "ingest"]) == 0
    rows = stored(url)
    closes = truth[truth.index.hour == 23]
    assert [ts for ts, _ in rows] == [d.date() for d in closes.index]
    np.testing.assert_allclose([v for _, v in rows], closes.to_numpy(), rtol=1e-12)


def test_an_hourly_series_forecasts_48_hours_is_scored_hour_by_hour_and_backfills(world, capsys, tmp_path):
    configure, csv, url = world
    write_bars(csv, load(24 * 21))
    argv = configure()
    assert main([*argv, "run", "-q"]) == 0
    capsys.readouterr()
    assert main([*argv, "forecasts", "--format", "json"]) == 0
    published = json.loads(capsys.readouterr().out)
    steps = [r for r in published if r["level"] == 0.8]
    assert [r["step"] for r in steps] == list(range(1, 49))
    assert {r["last_ts"] for r in steps} == {"2024-03-21T23:00:00"}
    expected = pd.date_range("2024-03-22 00:00", periods=48, freq="h").strftime("%Y-%m-%dT%H:%M:%S").tolist()
    assert [r["target_ts"] for r in steps] == expected
    # ten more hours: ten of the 48 steps are scored, each against the hour it was for
    write_bars(csv, load(24 * 21 + 10))
    assert main([*argv, "run", "-q"]) == 0
    scored = one(
        url,
        "SELECT e.target_ts, e.actual, o.value FROM forecast_errors e JOIN observations o "
        "ON o.series_id = e.series_id AND o.ts = e.target_ts "
        "WHERE e.model = 'published' AND e.level = 0.8 ORDER BY e.target_ts",
    )
    assert [t for t, _, _ in scored] == ["2024-03-22"] + [f"2024-03-22 {h:02d}:00:00" for h in range(1, 10)]
    assert all(actual == value for _, actual, value in scored)
    capsys.readouterr()
    assert main([*argv, "accuracy", "--format", "json"]) == 0
    by_step = [r for r in json.loads(capsys.readouterr().out) if r["model"] == "published" and r["level"] == 0.8]
    assert [(r["step"], r["n"]) for r in by_step] == [(k, 1) for k in range(1, 11)]
    # backfilled origins: one horizon (48 hours) apart, back from the newest whose targets are all observed
    assert main([*argv, "backfill", "--origins", "2", "-q"]) == 0
    origins = one(url, "SELECT DISTINCT origin_ts FROM forecasts WHERE backfilled = 1 ORDER BY origin_ts")
    assert [o for (o,) in origins] == ["2024-03-18 09:00:00", "2024-03-20 09:00:00"]
    assert main([*argv, "backfill", "--since", "2024-03-15", "-q"]) == 0
    origins = one(url, "SELECT DISTINCT origin_ts FROM forecasts WHERE backfilled = 1 ORDER BY origin_ts")
    assert [o for (o,) in origins] == ["2024-03-16 09:00:00", "2024-03-18 09:00:00", "2024-03-20 09:00:00"]
    png = tmp_path / "load.png"
    assert main([*argv, "plot", "csv:load", "-o", str(png)]) == 0
    assert png.stat().st_size > 10_000


def test_stamps_read_back_as_dates_at_midnight_and_datetimes_otherwise(world):
    configure, csv, url = world
    write_bars(csv, load(30))
    assert main([*configure(), "ingest", "-q"]) == 0
    rows = stored(url)
    assert rows[0][0] == date(2024, 3, 1) and rows[1][0] == datetime(2024, 3, 1, 1)
    assert rows[24][0] == date(2024, 3, 2)


def test_a_series_stored_day_by_day_stays_daily_until_re_read_in_full(world, capsys):
    """What an older tickcast stored (one value per day, no frequency configured) stays daily on the
    next fetches; `tickcast ingest --full KEY` re-reads it from the source, hour by hour."""
    configure, csv, url = world
    truth = load(24 * 10)
    write_bars(csv, truth)
    assert main([*configure("D"), "ingest", "-q"]) == 0  # as an older tickcast stored it: daily
    write_bars(csv, load(24 * 11))
    assert main([*configure(), "ingest", "-q"]) == 0
    assert len(stored(url)) == 11 and one(url, "SELECT frequency FROM series") == [("D",)]
    assert main([*configure(), "ingest", "--full", "csv:load"]) == 0
    rows = stored(url)
    assert len(rows) == 24 * 11 and rows[-1][0] == datetime(2024, 3, 11, 23)
    assert one(url, "SELECT frequency FROM series") == [("H",)]
    assert "history re-fetched in full and replaced" in capsys.readouterr().out


def test_backfill_since_an_hour(world, capsys):
    configure, csv, url = world
    write_bars(csv, load(24 * 21 + 10))  # to 2024-03-22 09:00: origins 48 hours apart back from 03-20 09:00
    argv = configure()
    assert main([*argv, "run", "-q"]) == 0

    def origins() -> list[str]:
        return [o for (o,) in one(url, "SELECT DISTINCT origin_ts FROM forecasts WHERE backfilled = 1 ORDER BY 1")]

    assert main([*argv, "backfill", "--since", "2024-03-18 09:01", "-q"]) == 0
    assert origins() == ["2024-03-20 09:00:00"]
    assert main([*argv, "backfill", "--since", "2024-03-18T09:00", "-q"]) == 0
    assert origins() == ["2024-03-18 09:00:00", "2024-03-20 09:00:00"]
    capsys.readouterr()
    assert main([*argv, "backfill", "--since", "2024-03-18 25:00"]) == 2
    assert capsys.readouterr().err == (
        "tickcast: --since must be a date YYYY-MM-DD (or, for hourly series, YYYY-MM-DD HH:MM), "
        "got '2024-03-18 25:00'\n"
    )
