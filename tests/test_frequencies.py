"""The frequency table (``service/frequencies.py``): the season length and horizon a series gets,
the dates its forecasts target, and the frequency its dates say it has, at each edge of the table."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from tickcast.service.frequencies import (
    CODES,
    DEFAULT_HORIZON,
    FREQUENCIES,
    horizon,
    infer_frequency,
    next_dates,
    season_length,
)


def isos(dates) -> list[str]:
    return [d.isoformat() for d in dates]


# --- season length and horizon ------------------------------------------------------------------


def test_the_table_is_the_one_the_docs_give():
    """README and DESIGN name these: a change here changes every series' model and horizon."""
    assert CODES == ("H", "B", "D", "W", "M", "Q", "A")
    assert {c: season_length(c) for c in CODES} == {
        "H": (24, 168),
        "B": 1,
        "D": 7,
        "W": 52,
        "M": 12,
        "Q": 4,
        "A": 1,
    }
    assert {c: horizon(c) for c in CODES} == {"H": 48, "B": 5, "D": 14, "W": 13, "M": 18, "Q": 8, "A": 6}
    assert {c: FREQUENCIES[c].months for c in CODES} == {"H": 0, "B": 0, "D": 0, "W": 0, "M": 1, "Q": 3, "A": 12}


def test_a_configured_season_length_wins_even_when_it_is_zero():
    assert season_length("M", 4) == 4
    assert season_length("M", 0) == 0
    assert season_length(None, 24) == 24


@pytest.mark.parametrize("frequency", [None, "", "h", "m"])
def test_an_unknown_frequency_has_no_season_and_the_default_horizon(frequency):
    assert season_length(frequency) == 0
    assert horizon(frequency) == DEFAULT_HORIZON == 8


def test_a_series_horizon_wins_over_the_config_s_which_wins_over_the_frequency_s():
    assert horizon("M", series=3, everywhere=7) == 3
    assert horizon("M", series=None, everywhere=7) == 7
    assert horizon("M", series=None, everywhere=None) == 18
    assert horizon(None, series=2) == 2 and horizon(None, everywhere=9) == 9


# --- target dates -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "last, frequency, expected",
    [
        # months, quarters and years keep a month-end convention ...
        ("2023-03-31", "Q", ["2023-06-30", "2023-09-30", "2023-12-31", "2024-03-31"]),
        ("2020-12-31", "A", ["2021-12-31", "2022-12-31", "2023-12-31", "2024-12-31"]),
        ("2023-02-28", "M", ["2023-03-31", "2023-04-30", "2023-05-31", "2023-06-30"]),
        # ... and otherwise the day of the month, counted from the last date (no drift after February)
        ("2024-01-30", "M", ["2024-02-29", "2024-03-30", "2024-04-30", "2024-05-30"]),
        ("2024-01-15", "Q", ["2024-04-15", "2024-07-15", "2024-10-15", "2025-01-15"]),
        ("2020-02-29", "A", ["2021-02-28", "2022-02-28", "2023-02-28", "2024-02-29"]),
        # trading days without a calendar are weekdays; weeks are seven days
        ("2024-11-29", "B", ["2024-12-02", "2024-12-03", "2024-12-04", "2024-12-05"]),
        ("2024-12-31", "W", ["2025-01-07", "2025-01-14", "2025-01-21", "2025-01-28"]),
        # every day, and an unknown frequency: calendar days
        ("2024-02-28", "D", ["2024-02-29", "2024-03-01", "2024-03-02", "2024-03-03"]),
        ("2024-02-28", None, ["2024-02-29", "2024-03-01", "2024-03-02", "2024-03-03"]),
    ],
)
def test_next_dates_step_as_the_frequency_says(last, frequency, expected):
    assert isos(next_dates(date.fromisoformat(last), frequency, 4)) == expected


def test_trading_days_with_a_calendar_skip_its_holidays():
    # US federal: Thanksgiving 2024-11-28 is skipped, the day after is a business day
    assert isos(next_dates(date(2024, 11, 27), "B", 2, "us-federal")) == ["2024-11-29", "2024-12-02"]
    assert isos(next_dates(date(2024, 11, 27), "B", 2)) == ["2024-11-28", "2024-11-29"]


# --- inferring a frequency ----------------------------------------------------------------------


def spaced(gap_days: int, n: int = 20, start: str = "2000-01-03") -> list[date]:
    first = date.fromisoformat(start)
    return [first + timedelta(days=gap_days * i) for i in range(n)]


@pytest.mark.parametrize(
    "gap, expected",
    [(7, "W"), (10, "W"), (11, "M"), (45, "M"), (46, "Q"), (120, "Q"), (121, "A"), (3650, "A")],
)
def test_the_median_spacing_picks_the_frequency_at_each_edge(gap, expected):
    assert infer_frequency(spaced(gap)) == expected


def test_daily_data_is_trading_days_unless_it_has_weekend_dates():
    weekdays = list(pd.bdate_range("2024-01-01", periods=30).date)
    assert infer_frequency(weekdays) == "B"
    assert infer_frequency(weekdays + [date(2024, 2, 17)]) == "D"  # one Saturday
    assert infer_frequency(list(pd.date_range("2024-01-01", periods=30).date)) == "D"


def test_the_spacing_is_the_median_of_the_latest_120_dates_in_time_order():
    old_daily = list(pd.date_range("2000-01-01", periods=500).date)
    weekly = [old_daily[-1] + timedelta(weeks=k) for k in range(1, 121)]
    assert infer_frequency(old_daily + weekly) == "W"
    assert infer_frequency(old_daily + weekly[:50]) == "D"  # 70 of the latest 120 are daily: median 1
    monthly = list(pd.date_range("2000-01-01", periods=24, freq="MS").date)
    assert infer_frequency(list(reversed(monthly))) == "M"  # the order given does not matter
    # a few gaps (missing months) do not change the median
    assert infer_frequency(monthly[:5] + monthly[7:12] + monthly[15:]) == "M"


def test_exactly_the_latest_120_dates_count():
    """Daily dates, then 60 steps of 12 days: the latest 120 dates have 59 gaps of a day and 60 of
    12 days (median 12: monthly); one date more would make it 60 and 60 (median 6.5: weekly)."""
    daily = list(pd.date_range("2000-01-01", periods=200).date)
    dates = daily + [daily[-1] + timedelta(days=12 * k) for k in range(1, 61)]
    assert infer_frequency(dates) == "M"
    assert infer_frequency(dates[-121:]) == "M" and infer_frequency(dates[-120:]) == "M"


def test_fewer_than_three_dates_say_nothing():
    assert infer_frequency([]) is None
    assert infer_frequency([date(2024, 1, 1), date(2024, 2, 1)]) is None
    assert infer_frequency([date(2024, 1, 1), date(2024, 2, 1), date(2024, 3, 1)]) == "M"
