"""tickcast.forecast and tickcast.cross_validation, as a statsforecast user calls them: a long frame
in, a dated long frame out; exchange calendars; no look-ahead; one clear error for a wrong frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import tickcast
from tickcast.models import AutoForecaster, RNNForecaster
from tickcast.service.run import published
from tickcast.service.run.values import forecaster_params
from tickcast.service.settings import ModelSettings

FAST = ModelSettings(forecaster=RNNForecaster(hidden_size=8, epochs=3, ensemble=1).config)


def walk(n: int, seed: int, level: float = 100.0) -> np.ndarray:
    return level * np.exp(np.cumsum(np.random.default_rng(seed).normal(0.001, 0.01, n)))


def long_frame(dates_by_id: dict) -> pd.DataFrame:
    parts = [
        pd.DataFrame({"unique_id": uid, "ds": dates, "y": walk(len(dates), i)})
        for i, (uid, dates) in enumerate(dates_by_id.items())
    ]
    return pd.concat(parts, ignore_index=True)


def test_forecast_dates_each_series_by_its_frequency_with_interval_columns():
    df = long_frame(
        {
            "daily": pd.date_range("2024-01-01", periods=120, freq="D"),
            "monthly": pd.date_range("2015-01-01", periods=60, freq="MS"),
            "month-ends": pd.date_range("2015-01-31", periods=60, freq="ME"),
        }
    )
    out = tickcast.forecast(df, level=[80, 95], model=FAST)
    assert list(out.columns) == [
        "unique_id", "ds", "tickcast", "tickcast-lo-80", "tickcast-hi-80", "tickcast-lo-95", "tickcast-hi-95"
    ]  # fmt: skip
    by = {uid: g for uid, g in out.groupby("unique_id")}
    assert list(by["daily"]["ds"]) == list(pd.date_range("2024-04-30", periods=14, freq="D"))  # 14 days
    assert list(by["monthly"]["ds"]) == list(pd.date_range("2020-01-01", periods=18, freq="MS"))  # 18 months
    assert list(by["month-ends"]["ds"]) == list(pd.date_range("2020-01-31", periods=18, freq="ME"))
    assert (out["tickcast-lo-95"] <= out["tickcast-lo-80"]).all() and (out["tickcast-lo-80"] <= out["tickcast"]).all()
    assert (out["tickcast"] <= out["tickcast-hi-80"]).all() and (out["tickcast-hi-80"] <= out["tickcast-hi-95"]).all()


def test_forecast_is_the_model_the_service_trains_for_that_series():
    """The same seed (from the series' id) and settings: the numbers equal a direct fit."""
    y = walk(150, 3)
    df = pd.DataFrame({"unique_id": "csv:a", "ds": pd.bdate_range("2023-01-02", periods=150), "y": y})
    out = tickcast.forecast(df, h=5, freq="B", level=[0.8], model=FAST)  # fractions work too
    direct = published.forecaster(forecaster_params(FAST, "csv:a", 1, 5), FAST.members).fit(y)
    assert isinstance(direct, AutoForecaster) and set(direct.members_) == set(FAST.members)
    assert np.array_equal(out["tickcast"].to_numpy(), direct.predict(5))
    lower, upper = direct.predict_interval(5, level=0.8)
    assert np.array_equal(out["tickcast-lo-80"].to_numpy(), lower) and np.array_equal(out["tickcast-hi-80"], upper)


def test_a_series_with_a_datetime_index_and_an_exchange_calendar():
    dates = pd.bdate_range("2018-06-01", "2018-12-31")
    series = pd.Series(walk(len(dates), 4, 2500.0), index=dates, name="sp500")
    out = tickcast.forecast(series, h=3, calendar="XNYS", model=FAST)
    assert set(out["unique_id"]) == {"sp500"}
    # New Year's Day is no NYSE session (statsforecast's freq="B" would give 2019-01-01)
    assert list(out["ds"]) == [pd.Timestamp("2019-01-02"), pd.Timestamp("2019-01-03"), pd.Timestamp("2019-01-04")]


def test_cross_validation_uses_no_data_after_each_cutoff():
    dates = pd.bdate_range("2023-01-02", periods=200)
    df = long_frame({"a": dates, "b": dates})
    cv = tickcast.cross_validation(df, h=5, n_windows=3, step_size=5, level=[80], model=FAST)
    assert list(cv.columns[:4]) == ["unique_id", "ds", "cutoff", "y"]
    assert sorted(set(cv["cutoff"])) == [dates[-16], dates[-11], dates[-6]]
    assert len(cv) == 2 * 3 * 5 and (cv["ds"] > cv["cutoff"]).all()
    expected = df.set_index(["unique_id", "ds"])["y"]
    assert np.array_equal(cv["y"].to_numpy(), expected.loc[list(zip(cv["unique_id"], cv["ds"]))].to_numpy())
    # What happened after a cutoff changes nothing at that cutoff
    future = df.copy()
    future.loc[future["ds"] > dates[-16], "y"] *= 10
    again = tickcast.cross_validation(future, h=5, n_windows=3, step_size=5, level=[80], model=FAST)
    first = cv["cutoff"] == dates[-16]
    assert np.array_equal(cv.loc[first, "tickcast"].to_numpy(), again.loc[first, "tickcast"].to_numpy())


@pytest.mark.parametrize(
    "frame, message",
    [
        (pd.DataFrame({"id": ["a"], "date": ["2024-01-01"], "value": [1.0]}), "needs columns unique_id, ds, y"),
        (pd.DataFrame({"unique_id": ["a"] * 3, "ds": ["x", "y", "z"], "y": [1.0, 2, 3]}), "column ds must hold dates"),
        (
            pd.DataFrame({"unique_id": ["a"] * 3, "ds": pd.date_range("2024-01-01", periods=3), "y": ["1", "b", "3"]}),
            "column y must hold numbers, without gaps; got 'b'",
        ),
        (
            pd.DataFrame({"unique_id": ["a"] * 2, "ds": pd.date_range("2024-01-01", periods=2), "y": [1.0, 2]}),
            "at least 3 are needed",
        ),  # fmt: skip
        (pd.Series([1.0, 2.0, 3.0]), "needs a DatetimeIndex"),
        ([1, 2, 3], "expected a pandas DataFrame"),
    ],
)
def test_a_wrong_frame_is_one_clear_error(frame, message):
    with pytest.raises(tickcast.FrameError, match=message) as raised:
        tickcast.forecast(frame, h=2, model=FAST)
    assert "\n" not in str(raised.value)


def test_wrong_options_are_one_clear_error():
    df = long_frame({"a": pd.date_range("2024-01-01", periods=30)})
    for kwargs, message in (
        ({"level": ["high"]}, "level must be coverages"),
        ({"level": [120]}, "between 0 and 100"),
        ({"freq": "fortnightly"}, "freq must be a pandas frequency"),
        ({"calendar": "MOON"}, "calendar must be an exchange calendar"),
    ):
        with pytest.raises(tickcast.FrameError, match=message):
            tickcast.forecast(df, h=2, model=FAST, **kwargs)
    with pytest.raises(tickcast.FrameError, match="n_windows must be a positive integer"):
        tickcast.cross_validation(df, h=2, n_windows=0, model=FAST)
