"""Training across series (fit_many / predict_many) and the ensemble."""

import numpy as np
import pytest

from tickcast.models import RNNForecaster
from tickcast.models.windows import last_window


def _family(n_series=60, n=36, h=6, seed=0):
    """Short noisy series that share one shape (a 12-step cycle) at different levels and phases:
    too short to learn the shape from one, plenty across all of them."""
    rng = np.random.default_rng(seed)
    t = np.arange(n + h)
    out = []
    for _ in range(n_series):
        level, phase = rng.uniform(20, 200), rng.uniform(0, 2 * np.pi)
        y = level * (1 + 0.2 * np.sin(2 * np.pi * t / 12 + phase)) * np.exp(rng.normal(0, 0.02, t.size))
        out.append((y[:n], y[n:]))
    return out


def test_fit_many_forecasts_every_series_in_order():
    family = _family(n_series=8)
    ys = [y for y, _ in family]
    m = RNNForecaster(season_length=1, epochs=3).fit_many(ys)
    forecasts = m.predict_many(6)
    intervals = m.predict_interval_many(6, level=0.8)
    assert len(forecasts) == len(intervals) == 8 and m.n_series_ == 8
    for y, f, (lo, up) in zip(ys, forecasts, intervals):
        assert f.shape == lo.shape == up.shape == (6,)
        assert np.all(lo <= f) and np.all(f <= up)
        assert 0.5 * y.min() < f.mean() < 2 * y.max()  # each in its own series' units
    assert len(m.backtests_) == 8 and all(bt["n"] > 0 for bt in m.backtests_)


def test_training_across_series_learns_what_one_series_cannot():
    family = _family()
    ys, tests = [y for y, _ in family], [t for _, t in family]
    shared = RNNForecaster(season_length=1).fit_many(ys).predict_many(6)
    alone = [RNNForecaster(season_length=1).fit(y).predict(6) for y in ys]

    def mae(forecasts):
        return np.mean([np.mean(np.abs(f - t) / t.mean()) for f, t in zip(forecasts, tests)])

    naive = [np.full(6, y[-1]) for y in ys]
    assert mae(shared) < 0.7 * mae(naive), (mae(shared), mae(naive))
    assert mae(shared) < 0.85 * mae(alone), (mae(shared), mae(alone))


def test_a_global_model_forecasts_a_series_it_has_not_seen():
    family = _family()
    m = RNNForecaster(season_length=1).fit_many([y for y, _ in family[:-1]])
    y, test = family[-1]
    f = m.predict(6, y=y)
    naive = np.full(6, y[-1])
    assert np.mean(np.abs(f - test)) < np.mean(np.abs(naive - test))
    lo, up = m.predict_interval(6, y=y)
    assert np.all(lo <= f) and np.all(f <= up)


def test_series_of_any_length_share_one_model():
    rng = np.random.default_rng(3)
    ys = [np.array([5.0, 5.5, 6.1]), 10 + np.cumsum(rng.normal(0.1, 1, 14)), 100 + np.cumsum(rng.normal(0, 1, 300))]
    m = RNNForecaster(season_length=1).fit_many(ys)
    for y, f in zip(ys, m.predict_many(8)):
        assert np.all(np.isfinite(f)) and abs(f[0] - y[-1]) < 5 * np.mean(np.abs(np.diff(y)))


def test_the_forecast_is_the_median_of_the_members():
    family = _family(n_series=10)
    ys = [y for y, _ in family]
    kw = dict(season_length=1, ensemble=3, lookbacks=[1.0, 2.0, 3.0], epochs=4, significance=0.0)
    m = RNNForecaster(**kw, precision="float64").fit_many(ys)  # members' outputs recomputed in float64 below
    assert [member.L for member in m._members] == [8, 16, 24]
    per_member = []
    for member in m._members:
        X = np.stack([last_window(p.x, member.L, p.scale) for p in m._preps])
        per_member.append(member.predict(X)[:, : m._steps_per_pass])
    p0 = m._preps[0]
    x_hat = p0.x[-1] + np.median(np.array(per_member), axis=0)[0] * p0.scale
    np.testing.assert_allclose(m.predict_many(m._steps_per_pass)[0], np.exp(x_hat), rtol=1e-12)
    assert not np.allclose(per_member[0], per_member[1])  # the members do differ


def test_fit_many_needs_series():
    with pytest.raises(ValueError, match="at least one series"):
        RNNForecaster().fit_many([])
    with pytest.raises(ValueError, match="series 1"):
        RNNForecaster().fit_many([np.ones(10), np.array([1.0, np.nan, 2.0, 3.0])])
