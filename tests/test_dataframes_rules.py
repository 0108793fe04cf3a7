"""The DataFrame API's rules (tickcast.forecast, tickcast.cross_validation), each checked against a
direct fit of the published forecaster: how each series' frequency, season and horizon are found
(inferred from its dates, data measured within a day such as hourly, or ``freq``), how series are
trained (alone, or across the series of one frequency, as ``model.training`` says), the seed, the
interval levels, the order of rows and series, and one clear error for each wrong input.
tests/test_dataframes.py has the calls a statsforecast user makes first."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import tickcast
from tests.support.dataframes import FAST, direct, family, frame, monthly_frame, seasonal
from tickcast.service.run import published
from tickcast.service.run.values import forecaster_params

# --- data measured within a day ---------------------------------------------------------------------


def test_hourly_data_steps_by_the_hour_with_a_daily_and_a_weekly_season_48_steps_ahead():
    dates = pd.date_range("2024-03-01", periods=24 * 21, freq="h")
    y = seasonal(len(dates), 24, 1)
    out = tickcast.forecast(frame("load", dates, y), level=[80], model=FAST)
    assert list(out["ds"]) == list(pd.date_range(dates[-1], periods=49, freq="h")[1:])
    fitted = direct(y, "load", (24, 168), 48)
    assert np.array_equal(out["tickcast"].to_numpy(), fitted.predict(48))
    lower, upper = fitted.predict_interval(48, level=0.8)
    assert np.array_equal(out["tickcast-lo-80"].to_numpy(), lower)
    assert np.array_equal(out["tickcast-hi-80"].to_numpy(), upper)
    # three weeks hold the daily season three times over, not the weekly one: the day is chosen
    assert fitted.season_lengths_ == [24]
    given = tickcast.forecast(frame("load", dates, y), freq="h", level=[80], model=FAST)
    pd.testing.assert_frame_equal(given, out)


def test_an_hour_missing_here_and_there_does_not_change_the_step():
    dates = pd.date_range("2024-03-01", periods=24 * 10, freq="h").delete([5, 50, 51, 100])
    out = tickcast.forecast(frame("a", dates, seasonal(len(dates), 24, 2)), h=3, model=FAST)
    assert list(out["ds"]) == list(pd.date_range(dates[-1], periods=4, freq="h")[1:])


@pytest.mark.parametrize(
    ("freq", "season"),
    [("30min", (48, 336)), ("15min", 96), ("4h", (6, 42)), ("min", 0), ("7min", 0)],
)
def test_data_within_a_day_has_the_seasons_a_day_and_a_week_hold_that_the_model_takes(freq, season):
    """A season of at most 400 steps; none known (0: detected per series) when a day is not a whole
    number of steps or longer than that."""
    dates = pd.date_range("2024-03-01", periods=400, freq=freq)
    y = seasonal(400, 48, 3)
    for given in (freq, None):  # given, or inferred from the dates
        out = tickcast.forecast(frame("x", dates, y), freq=given, h=4, level=[95], model=FAST)
        assert list(out["ds"]) == list(pd.date_range(dates[-1], periods=5, freq=freq)[1:]), given
        assert np.array_equal(out["tickcast"].to_numpy(), direct(y, "x", season, 4).predict(4)), given


def test_twice_a_day_is_within_a_day_and_daily_data_is_not():
    twice = pd.date_range("2024-01-01", periods=60, freq="12h")
    y = seasonal(60, 2, 4)
    out = tickcast.forecast(frame("t", twice, y), h=2, model=FAST)
    assert list(out["ds"]) == [twice[-1] + pd.Timedelta(hours=12), twice[-1] + pd.Timedelta(hours=24)]
    assert np.array_equal(out["tickcast"].to_numpy(), direct(y, "t", (2, 14), 2).predict(2))
    daily = pd.date_range("2024-01-01", periods=60, freq="D")
    out = tickcast.forecast(frame("d", daily, y), model=FAST)
    assert len(out) == 14 and np.array_equal(out["tickcast"].to_numpy(), direct(y, "d", 7, 14).predict(14))


# --- frequencies of a day or longer -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dates", "season", "h", "step"),
    [
        (pd.bdate_range("2024-01-01", periods=80), 1, 5, "B"),
        (pd.date_range("2020-01-03", periods=80, freq="W-FRI"), 52, 13, "W-FRI"),
        (pd.date_range("2010-01-31", periods=40, freq="QE"), 4, 8, "QE"),
        (pd.date_range("2010-01-01", periods=40, freq="QS"), 4, 8, "QS"),
        (pd.date_range("1980-12-31", periods=30, freq="YE"), 1, 6, "YE"),
        (pd.date_range("1980-01-01", periods=30, freq="YS"), 1, 6, "YS"),
    ],
)
def test_each_frequency_has_its_season_horizon_and_dates(dates, season, h, step):
    y = seasonal(len(dates), 4, 5, level=80.0)
    out = tickcast.forecast(frame("s", dates, y), level=[80], model=FAST)
    assert list(out["ds"]) == list(pd.date_range(dates[-1], periods=h + 1, freq=step)[1:])
    assert np.array_equal(out["tickcast"].to_numpy(), direct(y, "s", season, h).predict(h))


@pytest.mark.parametrize(
    ("freq", "season", "h"),
    [("MS", 12, 18), ("ME", 12, 18), ("QS", 4, 8), ("YE", 1, 6), ("B", 1, 5), ("C", 1, 5), ("W-SUN", 52, 13)],
)
def test_a_frequency_given_sets_the_season_and_the_horizon(freq, season, h):
    dates = pd.date_range("2000-01-31", periods=50, freq="ME")
    y = seasonal(50, 12, 6)
    out = tickcast.forecast(frame("m", dates, y), freq=freq, model=FAST)
    assert len(out) == h
    assert list(out["ds"]) == list(pd.date_range(dates[-1], periods=h + 1, freq=freq)[1:])
    assert np.array_equal(out["tickcast"].to_numpy(), direct(y, "m", season, h).predict(h))


def test_a_frequency_tickcast_does_not_know_steps_by_it_and_detects_the_season():
    dates = pd.date_range("2020-01-01", periods=60, freq="2D")
    y = seasonal(60, 5, 7)
    out = tickcast.forecast(frame("z", dates, y), freq="10D", model=FAST)  # ten days: not daily
    assert len(out) == 8  # the horizon of a series of unknown frequency
    assert list(out["ds"]) == list(pd.date_range(dates[-1], periods=9, freq="10D")[1:])
    assert np.array_equal(out["tickcast"].to_numpy(), direct(y, "z", 0, 8).predict(8))


def test_a_calendar_makes_daily_data_trading_days():
    dates = pd.date_range("2018-11-01", "2018-12-31", freq="D")  # weekends included
    y = seasonal(len(dates), 7, 8, 2500.0)
    out = tickcast.forecast(frame("spx", dates, y), calendar="XNYS", model=FAST)
    assert len(out) == 5 and out["ds"].iloc[0] == pd.Timestamp("2019-01-02")
    assert np.array_equal(out["tickcast"].to_numpy(), direct(y, "spx", 1, 5).predict(5))
    # a calendar does not change where the frequency is given
    weekly = tickcast.forecast(frame("spx", dates, y), calendar="XNYS", freq="W-MON", h=2, model=FAST)
    assert list(weekly["ds"]) == [pd.Timestamp("2019-01-07"), pd.Timestamp("2019-01-14")]


# --- rows, series, seeds and levels --------------------------------------------------------------------


def test_rows_in_any_order_series_in_the_order_they_first_appear():
    dates = pd.date_range("2015-01-01", periods=40, freq="MS")
    ya, yb = seasonal(40, 12, 9), seasonal(40, 12, 10, 90.0)
    df = pd.concat([frame("b", dates, yb), frame("a", dates, ya)], ignore_index=True)
    shuffled = df.sample(frac=1.0, random_state=1)
    out = tickcast.forecast(shuffled, h=2, model=FAST)
    assert list(out["unique_id"]) == ["b", "b", "a", "a"] or list(out["unique_id"]) == ["a", "a", "b", "b"]
    first = shuffled["unique_id"].iloc[0]
    assert out["unique_id"].iloc[0] == first
    by = {uid: g["tickcast"].to_numpy() for uid, g in out.groupby("unique_id")}
    assert np.array_equal(by["a"], direct(ya, "a", 12, 2).predict(2))
    assert np.array_equal(by["b"], direct(yb, "b", 12, 2).predict(2))


def test_the_seed_is_the_one_given_plus_the_series_id():
    rnn = replace(FAST, members=("rnn",))  # the network alone: its forecast depends on its seed
    dates = pd.date_range("2010-01-01", periods=80, freq="MS")  # long enough for the network to be used
    y = seasonal(80, 12, 11)
    one = tickcast.forecast(frame("k", dates, y), h=3, seed=1, model=rnn)
    assert np.array_equal(one["tickcast"].to_numpy(), direct(y, "k", 12, 3, model=rnn, seed=1).predict(3))
    assert not np.array_equal(one["tickcast"].to_numpy(), direct(y, "k", 12, 3, model=rnn, seed=0).predict(3))
    other_id = tickcast.forecast(frame("j", dates, y), h=3, seed=1, model=rnn)
    assert not np.array_equal(other_id["tickcast"].to_numpy(), one["tickcast"].to_numpy())


def test_a_series_without_a_name_is_y_and_numbers_given_as_text_are_numbers():
    dates = pd.date_range("2015-01-01", periods=30, freq="MS")
    y = seasonal(30, 12, 12)
    out = tickcast.forecast(pd.Series(y, index=dates), h=2, model=FAST)
    assert list(out["unique_id"]) == ["y", "y"]
    text = frame("t", [d.strftime("%Y-%m-%d") for d in dates], [str(float(v)) for v in y])
    assert np.array_equal(
        tickcast.forecast(text, h=2, model=FAST)["tickcast"].to_numpy(), direct(y, "t", 12, 2).predict(2)
    )


@pytest.mark.parametrize(
    ("level", "columns", "fractions"),
    [
        (90, ["tickcast-lo-90", "tickcast-hi-90"], [0.9]),
        ([95, 0.8, 80], ["tickcast-lo-80", "tickcast-hi-80", "tickcast-lo-95", "tickcast-hi-95"], [0.8, 0.95]),
        ([99.5, 1], ["tickcast-lo-1", "tickcast-hi-1", "tickcast-lo-99.5", "tickcast-hi-99.5"], [0.01, 0.995]),
        ((0.5,), ["tickcast-lo-50", "tickcast-hi-50"], [0.5]),
    ],
)
def test_levels_are_percent_or_fractions_each_once_in_increasing_order(level, columns, fractions):
    dates = pd.date_range("2015-01-01", periods=36, freq="MS")
    y = seasonal(36, 12, 13)
    out = tickcast.forecast(frame("l", dates, y), h=3, level=level, model=FAST)
    assert list(out.columns) == ["unique_id", "ds", "tickcast", *columns]
    fitted = direct(y, "l", 12, 3)
    for i, fraction in enumerate(fractions):
        lower, upper = fitted.predict_interval(3, level=fraction)
        assert np.allclose(out[columns[2 * i]].to_numpy(), lower, rtol=0, atol=1e-12)
        assert np.allclose(out[columns[2 * i + 1]].to_numpy(), upper, rtol=0, atol=1e-12)


# --- across series -------------------------------------------------------------------------------------


def test_group_training_fits_one_model_across_the_series_of_a_frequency():
    ys = family(3)
    model = replace(FAST, training="group", group_min_series=3)
    out = tickcast.forecast(monthly_frame(ys), h=4, level=[80], model=model)
    together = published.forecaster(forecaster_params(model, "M/12", 12, 4), model.members).fit_many(ys)
    for i, (uid, g) in enumerate(out.groupby("unique_id", sort=False)):
        assert uid == f"s{i}"
        assert np.array_equal(g["tickcast"].to_numpy(), together.predict_many(4)[i])
        lower, upper = together.predict_interval_many(4, level=0.8)[i]
        assert np.array_equal(g["tickcast-lo-80"].to_numpy(), lower)


def test_too_few_series_of_a_frequency_train_alone_and_other_frequencies_apart():
    ys = family(2)
    model = replace(FAST, training="group", group_min_series=3)
    quarterly = seasonal(30, 4, 30)
    df = pd.concat(
        [monthly_frame(ys), frame("q", pd.date_range("2010-01-01", periods=30, freq="QS"), quarterly)],
        ignore_index=True,
    )
    out = tickcast.forecast(df, h=2, model=model)
    by = {uid: g["tickcast"].to_numpy() for uid, g in out.groupby("unique_id")}
    for i, y in enumerate(ys):
        assert np.array_equal(by[f"s{i}"], direct(y, f"s{i}", 12, 2, model=model).predict(2))
    assert np.array_equal(by["q"], direct(quarterly, "q", 4, 2, model=model).predict(2))


def test_series_training_never_groups_and_auto_keeps_the_better_on_validation():
    ys = family(3)
    alone = [direct(y, f"s{i}", 12, 3) for i, y in enumerate(ys)]
    per_series = tickcast.forecast(monthly_frame(ys), h=3, model=replace(FAST, training="series", group_min_series=2))
    for i, fitted in enumerate(alone):
        assert np.array_equal(per_series["tickcast"].to_numpy()[3 * i : 3 * i + 3], fitted.predict(3))
    auto = replace(FAST, training="auto", group_min_series=3)
    together = published.forecaster(forecaster_params(auto, "M/12", 12, 3), auto.members).fit_many(ys)
    got = tickcast.forecast(monthly_frame(ys), h=3, model=auto)["tickcast"].to_numpy()
    from tickcast.service.run.values import relative_mae

    g = np.mean([relative_mae(b) for b in together.backtests_])
    a = np.mean([relative_mae(m.backtests_[0]) for m in alone])
    expected = np.concatenate(together.predict_many(3)) if g < a else np.concatenate([m.predict(3) for m in alone])
    assert np.array_equal(got, expected)
    # long series are not grouped by auto (group_max_median_length)
    short_limit = replace(auto, group_max_median_length=40)
    got = tickcast.forecast(monthly_frame(ys), h=3, model=short_limit)["tickcast"].to_numpy()
    assert np.array_equal(got, np.concatenate([m.predict(3) for m in alone]))


# --- cross-validation ----------------------------------------------------------------------------------


def test_cross_validation_windows_step_size_and_what_each_cutoff_saw():
    dates = pd.date_range("2015-01-01", periods=40, freq="MS")
    y = seasonal(40, 12, 40)
    cv = tickcast.cross_validation(frame("c", dates, y), h=3, n_windows=2, level=[80], model=FAST)
    assert list(cv.columns) == ["unique_id", "ds", "cutoff", "y", "tickcast", "tickcast-lo-80", "tickcast-hi-80"]
    assert list(cv["cutoff"]) == [dates[33]] * 3 + [dates[36]] * 3  # step_size: h by default
    assert np.array_equal(cv["y"].to_numpy(), y[34:40])
    assert np.array_equal(cv["tickcast"].to_numpy()[:3], direct(y[:34], "c", 12, 3).predict(3))
    assert np.array_equal(cv["tickcast"].to_numpy()[3:], direct(y[:37], "c", 12, 3).predict(3))
    one = tickcast.cross_validation(frame("c", dates, y), h=2, n_windows=3, step_size=1, model=FAST)
    assert sorted(set(one["cutoff"])) == [dates[35], dates[36], dates[37]]


def test_cross_validation_needs_three_observations_before_each_cutoff():
    dates = pd.date_range("2015-01-01", periods=10, freq="MS")
    df = frame("short", dates, seasonal(10, 12, 41))
    with pytest.raises(tickcast.FrameError) as raised:
        tickcast.cross_validation(df, h=4, n_windows=3, step_size=2, model=FAST)  # the first cutoff: 2 before
    assert str(raised.value) == (
        "series 'short' has 10 observations: too few for 3 window(s) of 4 steps 2 apart "
        "(each cutoff needs at least 3 observations before it)"
    )
    cv = tickcast.cross_validation(df, h=7, n_windows=1, model=FAST)  # exactly 3 before the cutoff: enough
    assert list(cv["cutoff"]) == [dates[2]] * 7


# --- one clear error ---------------------------------------------------------------------------------------


def error_of(call) -> str:
    with pytest.raises(tickcast.FrameError) as raised:
        call()
    assert isinstance(raised.value, ValueError) and "\n" not in str(raised.value)
    return str(raised.value)


def test_each_wrong_input_is_one_error_saying_what_was_expected():
    dates = pd.date_range("2024-01-01", periods=5, freq="D")
    good = frame("a", dates, [1.0, 2, 3, 4, 5])

    def fc(df=good, **kw):
        return lambda: tickcast.forecast(df, model=FAST, **kw)

    assert error_of(fc(good[["ds", "y"]])) == (
        "the frame needs columns unique_id, ds, y (Nixtla's long format); missing: unique_id (columns: ds, y)"
    )
    assert error_of(fc(pd.DataFrame())) == (
        "the frame needs columns unique_id, ds, y (Nixtla's long format); missing: unique_id, ds, y (columns: none)"
    )
    assert error_of(fc(good.iloc[:0])) == "the frame has no rows"
    assert error_of(fc({"unique_id": ["a"]})) == (
        "expected a pandas DataFrame with columns unique_id, ds, y (or a Series), got <class 'dict'>"
    )
    assert error_of(fc(pd.Series([1.0, 2, 3], name="x"))).startswith("a Series to forecast needs a DatetimeIndex")
    gap = good.assign(y=[1.0, None, 3, 4, 5])
    assert error_of(fc(gap)) == (
        "column y must hold numbers, without gaps; got a missing value (drop or fill missing values first)"
    )
    twice = pd.concat([good, good.iloc[[2]]], ignore_index=True)
    assert error_of(fc(twice)) == "series 'a' has the date 2024-01-03 00:00:00 twice"
    assert error_of(fc(good.iloc[:2])) == "series 'a' has 2 observation(s): at least 3 are needed"
    assert error_of(fc(freq="fortnightly")) == (
        "freq must be a pandas frequency such as D, B, W, MS, QS or h, got 'fortnightly'"
    )
    assert error_of(fc(calendar="MOON")) == (
        "calendar must be an exchange calendar such as XNYS or XLON, or us-federal, got 'MOON'"
    )
    assert error_of(fc(level="high")) == "level must be coverages such as [80, 95] (or [0.8, 0.95]), got 'high'"
    for bad in ([0], [100], [-5], [80, 150]):
        assert error_of(fc(level=bad)) == (
            f"level must be coverages between 0 and 100 (percent) or 0 and 1, got {bad!r}"
        )
    for name, bad in (("h", 0), ("h", 2.0), ("h", True), ("h", -1)):
        assert error_of(fc(h=bad)) == f"{name} must be a positive integer, got {bad!r}"
    for kw, name in (({"h": 0}, "h"), ({"n_windows": 0}, "n_windows"), ({"step_size": 0}, "step_size")):
        args = {"h": 2, **kw}
        assert error_of(lambda args=args: tickcast.cross_validation(good, model=FAST, **args)) == (
            f"{name} must be a positive integer, got 0"
        )
