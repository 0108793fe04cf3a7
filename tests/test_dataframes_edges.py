"""The DataFrame API at its edges, each against a direct fit of the published forecaster: the
defaults and the frequency or calendar that cross-validation passes on, what it says where nothing
was observed, the bounds of "within a day", the convention of the last date (month ends, the
weekday of weekly data), the 120 most recent dates, the group keys and seasons of data measured
within a day, and when series are trained across or alone (tests/test_dataframes_rules.py has the
rules themselves)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import tickcast
from tests.support.dataframes import FAST, direct, family, frame, monthly_frame, seasonal
from tickcast.service.run import published
from tickcast.service.run.values import forecaster_params, relative_mae


def together(ys, key: str, season, h: int, model):
    return published.forecaster(forecaster_params(model, key, season, h), model.members).fit_many(ys)


# --- cross-validation ----------------------------------------------------------------------------------


def test_cross_validation_by_default_has_one_window_seed_0_and_a_fresh_index():
    dates = pd.date_range("2015-01-01", periods=30, freq="MS")
    y = seasonal(30, 12, 50)
    cv = tickcast.cross_validation(frame("c", dates, y), h=3, model=FAST)
    assert list(cv["cutoff"]) == [dates[26]] * 3
    assert np.array_equal(cv["tickcast"].to_numpy(), direct(y[:27], "c", 12, 3, seed=0).predict(3))
    two = tickcast.cross_validation(frame("c", dates, y), h=3, n_windows=2, model=FAST)
    assert two.index.equals(pd.RangeIndex(6))


def test_cross_validation_steps_by_the_frequency_given():
    dates = pd.date_range("2020-01-01", periods=40, freq="2D")
    y = seasonal(40, 5, 51)
    cv = tickcast.cross_validation(frame("z", dates, y), h=2, freq="10D", model=FAST)
    assert list(cv["ds"]) == [dates[37] + pd.Timedelta(days=10), dates[37] + pd.Timedelta(days=20)]
    assert np.array_equal(cv["tickcast"].to_numpy(), direct(y[:38], "z", 0, 2).predict(2))
    assert cv["y"].isna().all()  # nothing was observed on those dates


def test_cross_validation_dates_trading_days_by_the_calendar_and_nan_where_nothing_was_observed():
    dates = pd.bdate_range(end="2024-07-08", periods=60)  # weekdays: 4 July (a holiday) included
    y = seasonal(60, 5, 52, 500.0)
    cv = tickcast.cross_validation(frame("spx", dates, y), h=3, calendar="XNYS", model=FAST)
    assert list(cv["cutoff"]) == [pd.Timestamp("2024-07-03")] * 3
    assert list(cv["ds"]) == [pd.Timestamp(d) for d in ("2024-07-05", "2024-07-08", "2024-07-09")]
    assert cv["y"].dtype == np.float64
    assert cv["y"].iloc[0] == y[-2] and cv["y"].iloc[1] == y[-1] and np.isnan(cv["y"].iloc[2])
    assert np.array_equal(cv["tickcast"].to_numpy(), direct(y[:57], "spx", 1, 3).predict(3))
    # a calendar makes data with weekends trading days too (season 1, not the week's 7)
    days = pd.date_range(end="2024-07-07", periods=80, freq="D")
    w = seasonal(80, 7, 65, 500.0)
    cv = tickcast.cross_validation(frame("spx", days, w), h=2, calendar="XNYS", model=FAST)
    assert list(cv["ds"]) == [pd.Timestamp("2024-07-08"), pd.Timestamp("2024-07-09")]  # after Friday 5 July
    assert np.array_equal(cv["tickcast"].to_numpy(), direct(w[:78], "spx", 1, 2).predict(2))


def test_whole_numbers_are_forecast_as_numbers_and_observed_as_floats():
    dates = pd.date_range("2015-01-01", periods=30, freq="MS")
    y = np.round(seasonal(30, 12, 53)).astype(np.int64)
    cv = tickcast.cross_validation(frame("i", dates, y), h=2, model=FAST)
    assert cv["y"].dtype == np.float64 and list(cv["y"]) == [float(v) for v in y[-2:]]
    assert np.array_equal(cv["tickcast"].to_numpy(), direct(y[:28].astype(float), "i", 12, 2).predict(2))


# --- frames in --------------------------------------------------------------------------------------------


def test_three_observations_are_enough():
    dates = pd.date_range("2015-01-01", periods=3, freq="MS")
    out = tickcast.forecast(frame("t", dates, [1.0, 2.0, 4.0]), h=2, model=FAST)
    assert np.array_equal(out["tickcast"].to_numpy(), direct(np.array([1.0, 2.0, 4.0]), "t", 12, 2).predict(2))


def test_series_come_out_in_the_order_they_first_appear_not_sorted():
    dates = pd.date_range("2015-01-01", periods=30, freq="MS")
    df = pd.concat([frame("zeta", dates, seasonal(30, 12, 54)), frame("alpha", dates, seasonal(30, 12, 55))])
    out = tickcast.forecast(df, h=1, model=FAST)
    assert list(out["unique_id"]) == ["zeta", "alpha"]


def test_a_series_without_dates_and_dates_that_are_not_dates_are_said_in_full():
    with pytest.raises(tickcast.FrameError) as raised:
        tickcast.forecast(pd.Series([1.0, 2, 3]), model=FAST)
    assert str(raised.value) == (
        "a Series to forecast needs a DatetimeIndex (its dates); or pass a frame with columns unique_id, ds, y"
    )
    with pytest.raises(tickcast.FrameError) as raised:
        tickcast.forecast(frame("a", ["2024-01-01", "someday", "2024-01-03"], [1.0, 2, 3]), model=FAST)
    assert str(raised.value).startswith("column ds must hold dates: ") and "someday" in str(raised.value)


# --- frequencies ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("freq", ["0h", "-1D", "-2MS"])
def test_a_frequency_that_does_not_step_forward_is_refused(freq):
    dates = pd.date_range("2024-01-01", periods=10, freq="D")
    with pytest.raises(tickcast.FrameError) as raised:
        tickcast.forecast(frame("a", dates, seasonal(10, 7, 66)), freq=freq, model=FAST)
    assert str(raised.value) == f"freq must step forward in time, got {freq!r}"


def test_days_given_are_days_a_week_of_season_14_ahead():
    dates = pd.date_range("2024-01-01", periods=60, freq="D")
    y = seasonal(60, 7, 56)
    out = tickcast.forecast(frame("d", dates, y), freq="D", model=FAST)
    assert list(out["ds"]) == list(pd.date_range(dates[-1], periods=15, freq="D")[1:])
    assert np.array_equal(out["tickcast"].to_numpy(), direct(y, "d", 7, 14).predict(14))


@pytest.mark.parametrize(
    ("freq", "within_a_day"),
    [("17h", True), ("18h", False), ("ns", True)],
)
def test_within_a_day_means_a_step_shorter_than_18_hours(freq, within_a_day):
    """Within a day: 48 steps ahead; a step of 18 hours or more that tickcast does not know is an
    unknown frequency (8 steps ahead). Neither has a season here (a day is not whole steps)."""
    dates = pd.date_range("2024-01-01", periods=60, freq=freq)
    y = seasonal(60, 4, 57)
    out = tickcast.forecast(frame("x", dates, y), freq=freq, model=FAST)
    h = 48 if within_a_day else 8
    assert list(out["ds"]) == list(pd.date_range(dates[-1], periods=h + 1, freq=freq)[1:])
    assert np.array_equal(out["tickcast"].to_numpy(), direct(y, "x", 0, h).predict(h))


def test_a_spacing_of_18_hours_inferred_is_not_within_a_day():
    dates = pd.date_range("2024-01-01", periods=60, freq="18h")
    out = tickcast.forecast(frame("x", dates, seasonal(60, 4, 58)), model=FAST)
    assert len(out) == 14  # daily data's horizon, not 48


def test_the_spacing_is_that_of_the_120_most_recent_dates():
    """Before them, days; in them, 60 hourly steps and 59 of two days: the median is an hour."""
    recent = [pd.Timestamp("2024-03-01")]
    for i in range(119):
        recent.append(recent[-1] + (pd.Timedelta(hours=1) if i % 2 == 0 else pd.Timedelta(days=2)))
    recent = recent[:120]
    early = pd.date_range(end=recent[0] - pd.Timedelta(days=2), periods=30, freq="2D")
    dates = early.append(pd.DatetimeIndex(recent))
    assert len(dates) == 150
    out = tickcast.forecast(frame("m", dates, seasonal(150, 6, 59)), h=2, model=FAST)
    assert list(out["ds"]) == [dates[-1] + pd.Timedelta(hours=1), dates[-1] + pd.Timedelta(hours=2)]


def test_month_ends_and_weekdays_follow_the_last_date():
    months = pd.DatetimeIndex(["2020-01-15", "2020-02-15", *pd.date_range("2020-03-31", periods=20, freq="ME")])
    out = tickcast.forecast(frame("m", months, seasonal(22, 12, 60)), h=2, model=FAST)
    assert list(out["ds"]) == [pd.Timestamp("2021-11-30"), pd.Timestamp("2021-12-31")]
    starts = pd.date_range("2020-01-01", periods=20, freq="MS").append(pd.DatetimeIndex(["2021-08-15", "2021-09-30"]))
    out = tickcast.forecast(frame("s", starts, seasonal(22, 12, 61)), h=1, model=FAST)
    assert list(out["ds"]) == [pd.Timestamp("2021-10-31")]
    weeks = pd.date_range("2024-01-01", periods=30, freq="W-MON").append(pd.DatetimeIndex(["2024-07-26"]))
    out = tickcast.forecast(frame("w", weeks, seasonal(31, 52, 62)), h=2, model=FAST)
    assert list(out["ds"]) == [pd.Timestamp("2024-08-02"), pd.Timestamp("2024-08-09")]  # Fridays


@pytest.mark.parametrize(
    ("freq", "key", "season"),
    [
        ("h", "h/(24, 168)", (24, 168)),
        ("15min", "15min/96", 96),
        ("12h", "12h/(2, 14)", (2, 14)),
        ("216s", "216s/400", 400),
    ],
)
def test_data_within_a_day_is_trained_across_by_its_spacing_and_seasons(freq, key, season):
    """The group key (the seed of the model across series) names the spacing and the seasons: a
    day of steps, and a week where the model takes it (at most 400 steps)."""
    model = replace(FAST, training="group", group_min_series=2)
    dates = pd.date_range("2024-03-01", periods=300, freq=freq)
    ys = [seasonal(300, 24, 63), seasonal(300, 24, 64, 80.0)]
    df = pd.concat([frame("a", dates, ys[0]), frame("b", dates, ys[1])], ignore_index=True)
    out = tickcast.forecast(df, h=3, model=model)
    fitted = together(ys, key, season, 3, model)
    assert np.array_equal(out["tickcast"].to_numpy(), np.concatenate(fitted.predict_many(3)))


# --- across series or alone ------------------------------------------------------------------------------


def unlike(n: int = 24) -> list[np.ndarray]:
    """A trend, noise and a season: the per-series models validate better than one across them."""
    rng = np.random.default_rng(100)
    t = np.arange(n)
    return [
        50 + 3 * t + rng.normal(0, 1, n),
        20 + rng.normal(0, 5, n),
        100 + 20 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 1, n),
    ]


def validated(ys, model):
    """(the model across the series, those of each alone, their mean relative validation MAEs)."""
    across = together(ys, "M/12", 12, 3, model)
    alone = [direct(y, f"s{i}", 12, 3) for i, y in enumerate(ys)]
    g = np.mean([relative_mae(b) for b in across.backtests_])
    return across, alone, g, np.mean([relative_mae(m.backtests_[0]) for m in alone])


def test_auto_keeps_the_per_series_models_when_they_validate_better_and_group_never_does():
    ys = unlike()
    auto = replace(FAST, training="auto", group_min_series=3)
    _, alone, g, a = validated(ys, auto)
    assert a < g  # the premise
    got = tickcast.forecast(monthly_frame(ys), h=3, model=auto)["tickcast"].to_numpy()
    assert np.array_equal(got, np.concatenate([m.predict(3) for m in alone]))
    # group: across the series whatever validation says, and however long they are
    for limit in (400, 10):
        group = replace(FAST, training="group", group_min_series=3, group_max_median_length=limit)
        got = tickcast.forecast(monthly_frame(ys), h=3, model=group)["tickcast"].to_numpy()
        assert np.array_equal(got, np.concatenate(together(ys, "M/12", 12, 3, group).predict_many(3)))


def test_auto_groups_series_as_long_as_the_longest_median_allowed():
    ys = family(3)  # 48 observations each; across them validates better
    auto = replace(FAST, training="auto", group_min_series=3, group_max_median_length=48)
    across, _, g, a = validated(ys, auto)
    assert g < a  # the premise
    got = tickcast.forecast(monthly_frame(ys), h=3, model=auto)["tickcast"].to_numpy()
    assert np.array_equal(got, np.concatenate(across.predict_many(3)))
