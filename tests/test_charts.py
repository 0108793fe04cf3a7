"""tickcast's Datasette chart plugin on its own (tests/test_browse.py loads it in a real browser):
the series chart of a daily and of an hourly series, x positions and tick labels."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pandas as pd
import pytest

from tickcast.service.browse import plugins_dir

PLUGIN = Path(plugins_dir()) / "tickcast_charts.py"  # the file `tickcast browse` hands Datasette


@pytest.fixture(scope="module")
def charts():
    spec = importlib.util.spec_from_file_location("tickcast_charts_under_test", PLUGIN)  # as Datasette loads it
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rows_of(stamps: list[str], history: int) -> list[dict]:
    """The canned query's rows: ``history`` actuals, then forecasts with their interval."""
    return [
        {"ts": t, "actual": float(i), "forecast": None, "lower": None, "upper": None, "level": None}
        if i < history
        else {"ts": t, "actual": None, "forecast": float(i), "lower": i - 1.0, "upper": i + 1.0, "level": 0.8}
        for i, t in enumerate(stamps)
    ]


def xs(svg: str, css: str) -> list[float]:
    path = re.search(rf'<path class="{css}" d="([^"]+)"', svg).group(1)
    return [float(x) for x in re.findall(r"[ML](-?[\d.]+),", path)]


@pytest.mark.parametrize(
    "stamp,day",
    [
        ("2024-03-01", 738946.0),
        ("2024-03-01 12:00:00", 738946.5),
        ("2024-03-01 06:00", 738946.25),
        ("2024-03-01T18:00:00+01:00", 738946.75),  # an offset: the clock time as written
        ("2024-03-01x", 738946.0),  # trailing text after a date
        ("March", None),
        (None, None),
    ],
)
def test_a_stamp_is_a_day_with_its_time_as_a_fraction(charts, stamp, day):
    assert charts.to_day(stamp) == day


def test_an_hourly_series_is_drawn_hour_by_hour_with_times_on_its_ticks(charts):
    hours = pd.date_range("2024-03-01", periods=60, freq="h")
    stamps = [t.isoformat(sep=" ") if t.hour else t.date().isoformat() for t in hours]  # as SQLite stores them
    svg = charts.series_chart(rows_of(stamps, 36))
    actual, forecast = xs(svg, "actual"), xs(svg, "forecast")
    assert len(set(actual)) == 36 and actual == sorted(actual)  # one point per hour, none on top of another
    assert forecast[0] == actual[-1] and len(set(forecast)) == 25  # from the last hour observed, 24 ahead
    labels = re.findall(r">(2024-03-0\d[^<]*)<", svg)
    assert labels and len(set(labels)) == len(labels) and all(re.fullmatch(r"2024-03-0\d \d\d:\d\d", x) for x in labels)


def test_a_daily_series_has_dates_on_its_ticks(charts):
    stamps = [d.date().isoformat() for d in pd.date_range("2024-01-01", periods=90)]
    svg = charts.series_chart(rows_of(stamps, 80))
    assert len(set(xs(svg, "actual"))) == 80
    labels = re.findall(r">(2024-0\d-\d\d[^<]*)<", svg)
    assert labels and all(re.fullmatch(r"2024-0\d-\d\d", x) for x in labels)
