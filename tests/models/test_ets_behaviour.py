"""AutoETS on series whose right model is known: damping, the trend's smoothing, additive and
multiplicative seasons (as states and as fixed indices) are found and forecast; the default
family leaves out the undamped trend; bytes keep what the likelihood needs; bad settings say
which. (tests/models/test_challengers.py checks the likelihood itself against a hand-written one.)"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tickcast.models import AutoETS
from tickcast.models.ets import DEFAULT_TRENDS, PHIS, EtsParams, fit_ets


def fitted(y, m=1, **settings):
    model = AutoETS(season_length=m, **settings).fit(y)
    return model, model.params_[0]


def test_a_trend_that_dies_out_is_fitted_by_a_damped_trend():
    t = np.arange(60)
    rng = np.random.default_rng(1)
    y = 100 + 40 * (1 - 0.9**t) + rng.normal(0, 0.3, t.size)  # slope 4 fading by 10 % a step
    model, p = fitted(y)
    assert p["trend"] == "Ad" and PHIS[0] <= p["phi"] <= 0.93 and p["beta"] > 0  # found on the grid, not at its edge
    f = model.predict(10)
    assert np.all(f < 141) and np.all(f > y[-1] - 1)  # levels off near the asymptote, not a straight line


def test_a_trend_that_changes_is_followed_with_a_smoothed_slope():
    t = np.arange(80)
    rng = np.random.default_rng(2)
    slope = np.where(t < 40, 1.0, 3.0)  # the slope triples halfway
    y = 50 + np.cumsum(slope) + rng.normal(0, 0.2, t.size)
    model, p = fitted(y, trends=("A",))
    assert p["trend"] == "A" and p["beta"] > 0 and p["phi"] == 1.0
    np.testing.assert_allclose(np.diff(model.predict(5)), 3.0, atol=0.3)  # the new slope, not the average


def test_the_default_family_never_uses_the_undamped_trend():
    assert DEFAULT_TRENDS == ("N", "Ad")
    y = 10 + 2.0 * np.arange(40) + np.random.default_rng(3).normal(0, 0.1, 40)  # a straight line
    _, p = fitted(y)
    assert p["trend"] == "Ad"
    _, q = fitted(y, trends=("N", "A", "Ad"))
    assert q["trend"] in ("A", "Ad")


@pytest.mark.parametrize("level", [-200.0, 200.0])  # negative: additive only; positive: either
def test_seasonal_series_are_fitted_with_their_season(level):
    m = 4
    t = np.arange(48)
    pattern = np.array([6.0, -2.0, -7.0, 3.0])
    rng = np.random.default_rng(4)
    y = level + pattern[t % m] + rng.normal(0, 0.3, t.size)
    model, p = fitted(y, m)
    assert p["season"] in ("A", "F")
    if level < 0:
        assert p["error"] == "A" and not p["multiplicative"]
    truth = level + pattern[np.arange(48, 56) % m]
    np.testing.assert_allclose(model.predict(8), truth, atol=1.5)


def test_long_seasons_use_fixed_indices_additive_or_multiplicative():
    m = 52
    t = np.arange(52 * 4)
    shape = 10 * np.sin(2 * np.pi * t / m)
    rng = np.random.default_rng(5)
    for level, multiplicative in ((-500.0, False), (500.0, True)):
        trend = 1 + 0.002 * t  # a slow trend: the indices come from the detrended series
        y = (
            level * trend
            + (shape * (abs(level) / 100) * trend if multiplicative else shape)
            + rng.normal(0, 0.5, t.size)
        )
        model, p = fitted(y, m)
        assert p["season"] == "F" and p["multiplicative"] == multiplicative
        s0 = np.array(p["s0"])
        if multiplicative:
            assert s0.mean() == pytest.approx(1.0) and s0.max() > 1.05
        else:
            assert s0.mean() == pytest.approx(0.0, abs=1e-9) and s0.max() * p["c"] > 5  # in units of y / c
        ahead = np.arange(t.size, t.size + 10)
        trend = 1 + 0.002 * ahead
        wave = 10 * np.sin(2 * np.pi * ahead / m)
        truth = level * trend + (wave * (abs(level) / 100) * trend if multiplicative else wave)
        np.testing.assert_allclose(model.predict(10), truth, rtol=0.02, atol=2.0)


def test_params_survive_json_including_an_infinite_aicc():
    (p,) = fit_ets([np.array([1.0, 2.0, 3.0, 2.5, 4.0, 3.5, 5.0, 4.5])], 1)
    back = EtsParams.from_dict(json.loads(json.dumps(p.to_dict())))
    assert back == p and np.isfinite(back.aicc)
    inf = EtsParams.from_dict({**p.to_dict(), "aicc": None})
    assert inf.aicc == np.inf and json.loads(json.dumps(inf.to_dict()))["aicc"] is None


def test_bad_settings_say_which():
    with pytest.raises(ValueError, match=r"AutoETS has no setting\(s\) \['colour'\]"):
        AutoETS(colour="red")
    with pytest.raises(ValueError, match="trends must be a non-empty subset"):
        AutoETS(trends=("B",))
    with pytest.raises(ValueError, match="trends must be a non-empty subset"):
        AutoETS(trends=())
    with pytest.raises(ValueError, match=r"errors must be a non-empty subset of \('A', 'M'\)"):
        AutoETS(errors=("X",))
    with pytest.raises(ValueError, match="errors must be a non-empty subset"):
        AutoETS(errors=())


def test_a_season_that_changes_is_followed_by_its_states():
    t = np.arange(80)
    pattern = np.array([6.0, -2.0, -7.0, 3.0])
    grow = np.where(t < 40, 1.0, 2.5)  # the season's amplitude jumps halfway
    y = -300 + grow * pattern[t % 4] + np.random.default_rng(7).normal(0, 0.3, t.size)
    model, p = fitted(y, 4)
    assert p["season"] == "A" and p["gamma"] > 0
    np.testing.assert_allclose(model.predict(4), -300 + 2.5 * pattern[np.arange(80, 84) % 4], atol=2.0)


def test_a_series_too_short_for_any_likelihood_gets_simple_smoothing():
    model, p = fitted(np.array([5.0, 6.0, 7.0]))  # no model has an AICc on three points
    assert (p["error"], p["trend"], p["season"]) == ("A", "N", "N") and p["aicc"] is None
    assert (p["alpha"], p["beta"], p["phi"], p["gamma"], p["b0"]) == (0.99, 0.0, 1.0, 0.0, 0.0)
    assert p["l0"] * p["c"] == pytest.approx(5.0)  # the level starts at the first value
    level = 5.0
    for v in (5.0, 6.0, 7.0):
        level = 0.99 * v + 0.01 * level
    np.testing.assert_allclose(model.predict(2), [level, level], rtol=1e-12)
    for y in ([100.0], [-3.0, -4.0]):  # one point: its value; a negative series stays negative
        model, p = fitted(np.array(y))
        assert p["aicc"] is None
        np.testing.assert_allclose(model.predict(3), 0.99 * y[-1] + 0.01 * y[0], rtol=1e-12)


def test_seasonal_models_need_three_full_seasons():
    t = np.arange(12)
    y = 100 + 10 * np.array([1.0, -1.0, 2.0, -2.0])[t % 4]
    assert fitted(y, 4)[1]["season"] != "N"  # exactly three seasons
    assert fitted(y[:11], 4)[1]["season"] == "N"


def m_error_likelihood(y, p):
    """-2 log L (up to a constant) of an ETS(M, trend, N) fit, its recursion written out."""
    level, slope, errors, mus = p.l0, p.b0, [], []
    for z in y / p.c:
        mu = level + p.phi * slope
        e = z - mu
        level, slope = mu + p.alpha * e, p.phi * slope + p.beta * e
        errors.append(e / mu)
        mus.append(mu)
    return len(y) * np.log(np.sum(np.square(errors))) + 2 * np.sum(np.log(mus))


def test_m_error_initial_states_are_a_local_optimum_of_their_likelihood():
    t = np.arange(40)
    for seed in range(3):
        rng = np.random.default_rng(seed)
        y = (50 + 0.3 * t + 6 * np.sin(np.pi * t / 2) + rng.normal(0, 1, t.size)) * np.linspace(1, 1.5, t.size)
        (p,) = fit_ets([y], 1, restrict=("MAdN",))
        base = m_error_likelihood(y, p)
        for dl in np.linspace(-0.02, 0.02, 9):
            for db in np.linspace(-0.005, 0.005, 5):
                q = EtsParams(**{**p.__dict__, "l0": p.l0 + dl, "b0": p.b0 + db})
                assert m_error_likelihood(y, q) >= base - 1e-4
