"""Warm starts: the challengers' states run over the new points with their parameters kept
(checked against the recursions written out by hand on the whole, longer series), and the
AutoForecaster's warm fit (the RNN fine-tuned, the rest carried over)."""

from __future__ import annotations

import numpy as np
import pytest
from theta_reference import reference_forecasts  # tests/models/theta_reference.py

from tickcast.models import AutoETS, AutoForecaster, Naive, RNNForecaster, SeasonalNaive, Theta
from tickcast.models.challenger import continuation
from tickcast.models.ets import EtsParams, advance, filter_forecasts, fit_ets
from tickcast.models.seasonality import Seasonality

FAST_RNN = {"ensemble": 2, "epochs": 3, "hidden_size": 8}


def seasonal_series(n, m=12, seed=0, level=100.0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return level + 0.4 * t + 8 * np.sin(2 * np.pi * t / m) + rng.normal(0, 1.5, n).cumsum() * 0.5


def ets_forecast_by_hand(y, p: EtsParams, h: int) -> np.ndarray:
    """The ETS recursion over all of y, one scalar step at a time from the fitted initial states,
    then the forecast from its end."""
    m = max(len(p.s0), 1)
    seasonal = list(p.s0) if p.season == "A" else [0.0] * m
    level, trend = p.l0, p.b0
    for t, v in enumerate(np.asarray(y, float) / p.c):
        if p.season == "F":
            v = v / p.s0[t % m] if p.multiplicative else v - p.s0[t % m]
        base = level + p.phi * trend
        e = v - (base + seasonal[t % m])
        level, trend = base + p.alpha * e, p.phi * trend + p.beta * e
        seasonal[t % m] += p.gamma * e
    out = []
    for k in range(1, h + 1):
        f = level + sum(p.phi**j for j in range(1, k + 1)) * trend
        pos = (len(y) + k - 1) % m
        if p.season == "A":
            f += seasonal[pos]
        elif p.season == "F":
            f = f * p.s0[pos] if p.multiplicative else f + p.s0[pos]
        out.append(f * p.c)
    return np.array(out)


@pytest.mark.parametrize("model", ["AAdA", "MNA", "AAdF", "MAdF", "ANN", "AAdN"])
def test_ets_state_advanced_over_dropped_points_equals_the_whole_recursion(model):
    y = seasonal_series(80, 4, 1)
    (p,) = fit_ets([y[:60]], 4, restrict=(model,))
    assert (p.error + p.trend + p.season) == model
    expected = ets_forecast_by_hand(y, p, 9)
    np.testing.assert_allclose(filter_forecasts(y, p, np.array([y.size]), 9)[0], expected, rtol=1e-10)
    anchor = advance(y, p, None, 7)  # the series lost its first 7 points, then 3 more
    anchor = advance(y[7:], p, anchor, 3)
    assert anchor["position"] == 10
    np.testing.assert_allclose(filter_forecasts(y[10:], p, np.array([70]), 9, anchor)[0], expected, rtol=1e-10)


@pytest.mark.parametrize("m", [1, 4, 12])
def test_warm_autoets_keeps_its_parameters_and_runs_the_new_points(m):
    y = seasonal_series(150, max(m, 2), 2)
    cold = AutoETS(season_length=m, horizon=8).fit(y[:120])
    warm = AutoETS(season_length=m, horizon=8).fit(y[:127], warm_start=cold)
    rolled = AutoETS(season_length=m, horizon=8).fit(y[5:131], warm_start=warm)
    assert warm.params_ == cold.params_ == rolled.params_ and warm.warm_started_
    p = EtsParams.from_dict(cold.params_[0])
    np.testing.assert_allclose(warm.predict(12), ets_forecast_by_hand(y[:127], p, 12), rtol=1e-9)
    np.testing.assert_allclose(rolled.predict(12), ets_forecast_by_hand(y[:131], p, 12), rtol=1e-9)
    # no validation rerun: the backtest and the interval residuals are the cold fit's
    assert rolled.backtests_ == cold.backtests_ and rolled.validation_ is cold.validation_
    np.testing.assert_array_equal(rolled._conformal.Q, cold._conformal.Q)


@pytest.mark.parametrize("model", ["dotm", "otm"])
def test_warm_theta_equals_the_theta_method_written_out(model):
    y = seasonal_series(140, 12, 3)
    cold = Theta(season_length=12, horizon=18, model=model).fit(y[:100])
    rolled = Theta(season_length=12, horizon=18, model=model).fit(y[8:111], warm_start=cold)
    rolled = Theta(season_length=12, horizon=18, model=model).fit(y[20:118], warm_start=rolled)
    assert rolled.params_ == cold.params_
    p, season = cold.params_[0], Seasonality.from_dict(cold._states[0]["season"])
    x = season.remove(y[:118])
    if model == "dotm":
        expected = reference_forecasts(x, p, x.size, 15)
    else:  # the static model keeps the line fitted on the cold series
        from_cold = Theta(season_length=12, horizon=18, model=model)._adopt(
            [y[:118]], [12], 18, cold._states, cold.validation_, cold.backtests_, cold._conformal, False
        )
        expected = season.remove(from_cold.predict(15), 118) if season.active else from_cold.predict(15)
    got = season.remove(rolled.predict(15), 118)
    np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_naive_members_forecast_the_new_series():
    y = seasonal_series(60, 4, 4)
    for kind in (Naive, SeasonalNaive):
        cold = kind(season_length=4).fit(y[:50])
        warm = kind(season_length=4).fit(y[3:57], warm_start=cold)
        np.testing.assert_array_equal(warm.predict(6), kind(season_length=4).fit(y[3:57]).predict(6))


def test_continuation_finds_where_the_new_series_starts():
    old = np.arange(10.0)
    assert continuation(old, np.arange(12.0)) == 0
    assert continuation(old, np.arange(3.0, 14.0)) == 3
    assert continuation(old, np.r_[np.arange(2.0, 9.0), 99.0, 10.0]) == 2  # a revised point: the head matches
    assert continuation(old, np.arange(20.0, 30.0)) is None
    assert continuation(np.ones(5), np.ones(7)) == 0


def test_challenger_warm_start_mismatches_are_value_errors():
    y = seasonal_series(80, 4, 5)
    cold = AutoETS(season_length=4).fit(y[:60])
    for bad, match in [
        (lambda: AutoETS(season_length=4).fit(y[40:], warm_start=Theta(season_length=4).fit(y[:60])), "AutoETS"),
        (lambda: AutoETS(season_length=12).fit(y, warm_start=cold), "differs"),
        (lambda: AutoETS(season_length=4).fit_many([y, y], warm_start=cold), "1 series"),
        (lambda: AutoETS(season_length=4).fit(y[65:] + 1000, warm_start=cold), "does not continue"),
    ]:
        with pytest.raises(ValueError, match=match):
            bad()


@pytest.fixture(scope="module")
def cold_and_warm():
    full = [seasonal_series(90 + 7 * s, 12, s) for s in range(4)] + [np.array([3.0, 4.0, 5.0, 6.0])]
    old = [y[:-4] if y.size > 10 else y[:3] for y in full]
    new = [y[2:] if y.size > 10 else y for y in full]  # a rolling window: two points dropped, four new
    cold = AutoForecaster(season_length=12, rnn=FAST_RNN).fit_many(old)
    warm = AutoForecaster(season_length=12, rnn=FAST_RNN, seed=3).fit_many(new, warm_start=cold, epochs=2)
    return old, new, cold, warm


def test_warm_auto_fine_tunes_the_rnn_and_updates_the_challengers(cold_and_warm):
    old, new, cold, warm = cold_and_warm
    rnn = RNNForecaster(**{**cold.members_["rnn"].get_params(), "seed": 3})
    rnn = rnn.fit_many([new[i] for i in cold._rnn_index], warm_start=cold.members_["rnn"], epochs=2)
    for a, b in zip(warm.members_["rnn"].predict_many(10), rnn.predict_many(10)):
        np.testing.assert_array_equal(a, b)
    ets = AutoETS(horizon=cold.horizon_).fit_many(new, season_lengths=cold._ms, warm_start=cold.members_["ets"])
    for a, b in zip(warm.members_["ets"].predict_many(10), ets.predict_many(10)):
        np.testing.assert_array_equal(a, b)
    assert warm.members_["ets"].params_ == cold.members_["ets"].params_
    assert warm.weights_ == cold.weights_ and warm.backtests_ == cold.backtests_ and warm.chosen_ == cold.chosen_
    assert len(warm._conformal) == len(cold._conformal) == 5  # each series' own, carried over
    for a, b in zip(warm._conformal, cold._conformal):
        np.testing.assert_array_equal(a.Q, b.Q)
    assert warm.warm_started_ and not cold.warm_started_ and warm.n_series_ == 5
    members = warm.predict_members_many(10)
    for f, m, w in zip(warm.predict_many(10), members, warm.weights_):
        np.testing.assert_allclose(f, sum(w[k] * m[k] for k in w), rtol=1e-12)
    for f, (lo, hi) in zip(warm.predict_many(10), warm.predict_interval_many(10, 0.9)):
        assert np.all(np.isfinite(lo)) and np.all(lo <= f) and np.all(f <= hi)


def test_warm_per_series_fit_and_an_rnn_less_model():
    y = seasonal_series(100, 12, 7)
    cold = AutoForecaster(season_length=12, rnn=FAST_RNN).fit(y[:90])
    warm = AutoForecaster(season_length=12, rnn=FAST_RNN).fit(y[1:95], warm_start=cold)
    expected = RNNForecaster(**cold.members_["rnn"].get_params()).fit(y[1:95], warm_start=cold.members_["rnn"])
    np.testing.assert_array_equal(warm.members_["rnn"].predict(6), expected.predict(6))
    stat = AutoForecaster(season_length=12, members=("ets", "theta")).fit(y[:90])
    again = AutoForecaster(season_length=12, members=("ets", "theta")).fit(y, warm_start=stat)
    assert again.history_ == [] and again.best_epoch_ is None and again.transform_ is None
    assert np.all(np.isfinite(again.predict(12)))


def test_auto_warm_start_mismatches_are_value_errors(cold_and_warm):
    old, new, cold, _ = cold_and_warm
    cases = [
        (dict(members=("rnn", "ets")), new, "members"),
        (dict(combination="median"), new, "combination"),
        (dict(rnn={**FAST_RNN, "hidden_size": 16}), new, "rnn"),
        ({}, new[:3], "5 series"),
        ({}, [y + 1e6 for y in new], "does not continue"),
    ]
    for settings, ys, match in cases:
        with pytest.raises(ValueError, match=match):
            AutoForecaster(**{"season_length": 12, "rnn": FAST_RNN, **settings}).fit_many(ys, warm_start=cold)
    with pytest.raises(ValueError, match="fit_many"):
        AutoForecaster(season_length=12, rnn=FAST_RNN).fit(new[0], warm_start=cold)
    with pytest.raises(ValueError, match="fitted AutoForecaster"):
        AutoForecaster(season_length=12, rnn=FAST_RNN).fit(new[0], warm_start=cold.members_["rnn"])
    with pytest.raises(ValueError, match="epochs"):
        AutoForecaster(season_length=12, rnn=FAST_RNN).fit_many(new, warm_start=cold, epochs=-1)


def test_challengers_validate_from_the_splits_given():
    ys = [seasonal_series(60, 4, s) for s in range(3)]
    model = Theta(season_length=4, horizon=6).fit_many(ys, splits=[50, 41, 60])
    assert [s for s, _ in model.validation_] == [50, 41, 60] and model.validation_[2][1] is None
    alone = Theta(season_length=4, horizon=6).fit(ys[1][:41])
    np.testing.assert_allclose(model.validation_[1][1][0], alone.predict(6), rtol=1e-12)
    with pytest.raises(ValueError, match="splits"):
        Theta(season_length=4).fit_many(ys, splits=[1, 2, 3])
