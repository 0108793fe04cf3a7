"""The four theta models (Fiorucci et al. 2016) against a reference written from their definition
alone: the lines are least-squares fits (np.polyfit), the one-step forecasts are computed step by
step, and for each alpha the best (l0, theta) is the least-squares solution of the one-step errors,
found from the forecasts themselves (they are affine in l0 and kappa = 1 - 1/theta), with theta's
bound. The fit must reach that optimum at its alpha, and no alpha of its grid may do better; its
multi-step forecasts feed each forecast back as the next observation."""

from __future__ import annotations

import numpy as np
import pytest
from theta_reference import DYNAMIC, line, reference_forecasts  # tests/models/theta_reference.py

from tickcast.models import Theta
from tickcast.models.theta_models import ALPHA_RANGE, KAPPA_MAX, MODELS, SKIP, advance, filter_forecasts, fit_theta

OPTIMISED = {"dotm": True, "otm": True, "dstm": False, "stm": False}


def one_step(x, model, alpha, l0, kappa):
    """mu_t, t = 1..n-1: the forecast of x_t from x_0..x_{t-1}."""
    whole = line(x)
    level, out = alpha * x[0] + (1 - alpha) * l0, []
    for t in range(1, x.size):
        A, B = line(x[:t]) if DYNAMIC[model] else whole
        out.append(level + kappa * (A * (1 - alpha) ** t + B * (1 - (1 - alpha) ** (t + 1)) / alpha))
        level = alpha * x[t] + (1 - alpha) * level
    return np.array(out)


def sse(x, model, alpha, l0, kappa):
    e = x[1:] - one_step(x, model, alpha, l0, kappa)
    return float(np.sum(e[SKIP - 1 :] ** 2))  # errors from the fourth point on


def best_given_alpha(x, model, alpha):
    """(sse, l0, kappa) minimising the scored squared errors; kappa in [0, KAPPA_MAX] (0.5, theta = 2,
    for the models that do not optimise it)."""
    base = one_step(x, model, alpha, 0.0, 0.0)
    c = one_step(x, model, alpha, 1.0, 0.0) - base  # the weight of l0 in each forecast
    d = one_step(x, model, alpha, 0.0, 1.0) - base  # and of kappa
    r = (x[1:] - base)[SKIP - 1 :]
    c, d = c[SKIP - 1 :], d[SKIP - 1 :]
    if OPTIMISED[model]:
        (l0, kappa), *_ = np.linalg.lstsq(np.stack([c, d], axis=1), r, rcond=None)
        if not 0.0 <= kappa <= KAPPA_MAX:  # on the bound, l0 is the best for that kappa
            kappa = min(max(kappa, 0.0), KAPPA_MAX)
            l0 = float(c @ (r - kappa * d) / (c @ c))
    else:
        kappa = 0.5
        l0 = float(c @ (r - kappa * d) / (c @ c))
    return sse(x, model, alpha, l0, kappa), float(l0), float(kappa)


def series():
    rng = np.random.default_rng(12)
    t = np.arange(60, dtype=np.float64)
    # (no random walks: their alpha is near 1, where l0 barely matters and is not determined)
    return [
        50 + 0.8 * t[:31] + rng.normal(0, 2, 31),  # a trend
        100 - 0.5 * t + 0.02 * t**2 + rng.normal(0, 1.5, 60),  # a bend the dynamic lines follow
        10 + rng.normal(0, 1, 17),  # short and flat
        100 + 20 * (1 - np.exp(-t[:50] / 15)) + rng.normal(0, 1, 50),  # a trend dying out: theta inside its range
        np.r_[np.full(20, 10.0), np.full(25, 14.0)] + rng.normal(0, 1, 45),  # a level shift
    ]


@pytest.mark.parametrize("model", MODELS)
def test_theta_fits_reach_the_reference_optimum(model):
    xs = series()
    fits = fit_theta(xs, model)  # different lengths in one padded chunk
    coarse = np.linspace(*ALPHA_RANGE, 30)
    bounds = []
    for x, p in zip(xs, fits):
        assert p["model"] == model and ALPHA_RANGE[0] <= p["alpha"] <= ALPHA_RANGE[1]
        got = sse(x, model, p["alpha"], p["l0"], 1 - 1 / p["theta"])
        want, l0, kappa = best_given_alpha(x, model, p["alpha"])
        assert got == pytest.approx(want, rel=1e-6)  # (the fit adds a tiny ridge for l0)
        # l0 as far as it matters to the scored forecasts (where alpha is near 1 its weight dies out
        # within a few points)
        fitted = one_step(x, model, p["alpha"], p["l0"], 1 - 1 / p["theta"])
        best = one_step(x, model, p["alpha"], l0, kappa)
        np.testing.assert_allclose(fitted[SKIP - 1 :], best[SKIP - 1 :], rtol=1e-4)
        assert 1 - 1 / p["theta"] == pytest.approx(kappa, abs=1e-7)
        assert got <= min(best_given_alpha(x, model, a)[0] for a in coarse) * (1 + 1e-9)
        # a little finer than the fit's grid finds almost nothing more
        dense = np.clip(p["alpha"] + np.linspace(-0.05, 0.05, 21), *ALPHA_RANGE)
        assert got <= min(best_given_alpha(x, model, a)[0] for a in dense) * 1.02
        A, B = line(x)
        assert p["intercept"] == pytest.approx(A, rel=1e-9, abs=1e-9) and p["slope"] == pytest.approx(B, abs=1e-9)
        bounds.append(kappa in (0.0, KAPPA_MAX))
    if OPTIMISED[model]:
        assert fits[0]["theta"] > 1.2  # the trend is followed
        assert not all(bounds)
    else:
        assert all(p["theta"] == pytest.approx(2.0) for p in fits)


@pytest.mark.parametrize("model", MODELS)
def test_theta_forecasts_feed_each_forecast_back(model):
    for x, p in zip(series(), fit_theta(series(), model)):
        origins = np.array([1, 5, x.size - 3, x.size])  # from one point on: its line is that point, flat
        F = filter_forecasts(x, p, origins, 6)
        for row, origin in zip(F, origins):
            np.testing.assert_allclose(row, reference_forecasts(x, p, origin, 6), rtol=1e-9)


def test_theta_settings_and_the_model_fitted():
    y = series()[3]
    for model in MODELS:
        assert Theta(season_length=1, model=model).fit(y).params_[0]["model"] == model
    with pytest.raises(ValueError, match=r"model must be one of \('dotm', 'otm', 'dstm', 'stm'\), got 'nope'"):
        Theta(model="nope")
    with pytest.raises(ValueError, match=r"Theta has no setting\(s\) \['colour'\]"):
        Theta(colour="red")


def test_advancing_by_no_points_keeps_the_start_state():
    x = series()[0]
    (p,) = fit_theta([x], "dotm")
    start = advance(x, p, None, 0)
    assert start == {"position": 0, "level": p["l0"], "mean": 0.0, "intercept": p["intercept"], "slope": p["slope"]}
    later = advance(x, p, None, 7)
    assert advance(x[7:], p, later, 0) == later and advance(x[7:], p, later, 0) is not later
    np.testing.assert_allclose(
        filter_forecasts(x[7:], p, np.array([x.size - 7]), 4, later), filter_forecasts(x, p, np.array([x.size]), 4)
    )


@pytest.mark.parametrize("level", [-200.0, 200.0])  # negative: an additive season; positive: multiplicative
def test_theta_forecasts_carry_the_season(level):
    t = np.arange(48)
    pattern = np.array([6.0, -2.0, -7.0, 3.0])
    y = level + pattern[t % 4] + np.random.default_rng(6).normal(0, 0.3, t.size)
    f = Theta(season_length=4).fit(y).predict(8)
    np.testing.assert_allclose(f, level + pattern[np.arange(48, 56) % 4], atol=1.5)


@pytest.mark.parametrize("model", MODELS)
def test_a_series_too_short_to_score_follows_its_last_value(model):
    """At most SKIP points: no one-step error is scored, so there is nothing to fit l0 and theta
    on. The model is simple exponential smoothing from the first value at the largest alpha
    (theta 1: no line): the forecast stays by the last value (it once fell from 100, 101 to 60, 35)."""
    for y in ([100.0], [100.0, 101.0], [100.0, 101.0, 102.0], [6.0, 5.0], [-3.0, -4.0, -2.0]):
        x = np.array(y)
        (p,) = fit_theta([x], model)
        assert (p["alpha"], p["theta"], p["l0"]) == (ALPHA_RANGE[1], 1.0, y[0])
        level = y[0]
        for v in y:
            level = ALPHA_RANGE[1] * v + (1 - ALPHA_RANGE[1]) * level
        f = Theta(season_length=1, model=model).fit(x).predict(4)
        np.testing.assert_allclose(f, level, rtol=1e-12)
        assert abs(f[0] - y[-1]) < 0.02 * max(abs(v) for v in y)
    (p,) = fit_theta([np.array([100.0, 101.0, 102.0, 103.0])], model)  # one scored error: fitted
    assert p["theta"] != 1.0 or p["l0"] != 100.0


@pytest.mark.parametrize("model", MODELS)
def test_a_series_of_zeros_is_forecast_zero(model):
    """Its line is 0, so theta has nothing to weigh (no information on kappa): a finite fit, 0 ahead."""
    (p,) = fit_theta([np.zeros(12)], model)
    assert all(np.isfinite(v) for v in (p["alpha"], p["theta"], p["l0"]))
    np.testing.assert_array_equal(Theta(season_length=1, model=model).fit(np.zeros(12)).predict(3), 0.0)
