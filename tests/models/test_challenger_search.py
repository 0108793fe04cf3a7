"""What the challengers' searches promise, checked on the fits themselves: AutoETS's initial states
are the least-squares optimum for every model (with or without a trend or season) and, for an M
error, near the best of its likelihood; its smoothing parameters are refined beyond the coarse
grid; which models each season length offers, the AICc's smallest series, what counts as positive;
Theta's fit does not depend on the series' units and its alpha is on the documented grids; neither
search warns on awkward series. (tests/models/test_challengers.py checks the likelihoods against
hand-written recursions.)"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from tests.support.ets_reference import one_step_errors, seasonal_series

from tickcast.models import AutoETS
from tickcast.models.ets import ALPHAS, MAX_STATE_SEASON, EtsParams, fit_ets
from tickcast.models.theta_models import ALPHA_RANGE, MODELS, fit_theta


def with_(p: EtsParams, **changes) -> EtsParams:
    return EtsParams(**{**p.__dict__, **changes})


def m_error_lik(y, p: EtsParams, l0: float, b0: float) -> float:
    """-2 log L (up to a constant) of p's M error model started from (l0, b0)."""
    e, mu = one_step_errors(y, with_(p, l0=l0, b0=b0))
    return np.inf if np.any(mu <= 0) else y.size * np.log(np.sum((e / mu) ** 2)) + 2 * np.sum(np.log(mu))


def sse(y, p: EtsParams) -> float:
    return float(np.sum(one_step_errors(y, p)[0] ** 2))


@pytest.mark.parametrize("model", ["ANN", "ANA", "ANF", "AAdN", "AAdA", "AAdF", "AAN"])
def test_ets_initial_states_are_the_least_squares_optimum_of_every_model(model):
    """For fixed smoothing parameters the one-step errors are affine in (l0, b0): the fit's initial
    states are their exact least-squares solution, for models without a trend (b0 = 0) too."""
    y = seasonal_series(40, 4, 3)
    (p,) = fit_ets([y], 4, restrict=(model,))
    assert (p.error + p.trend + p.season, np.isfinite(p.aicc)) == (model, True)
    best = sse(y, p)
    for dl in (1e-4, -1e-4):
        assert sse(y, with_(p, l0=p.l0 + dl)) > best
    if p.trend != "N":
        for db in (1e-4, -1e-4):
            assert sse(y, with_(p, b0=p.b0 + db)) > best
    else:
        assert p.b0 == 0.0


def test_ets_smoothing_parameters_are_refined_beyond_the_coarse_grid():
    """Simple exponential smoothing with alpha 0.36, between the coarse grid's 0.32 and 0.42, on
    3,000 points: the fit lands between them, and its errors are smaller than at any coarse alpha."""
    rng = np.random.default_rng(5)
    level, y = 100.0, []
    for e in rng.normal(0, 1, 3000):
        y.append(level + e)
        level += 0.36 * e
    y = np.array(y)
    (p,) = fit_ets([y], 1, restrict=("ANN",))
    assert p.alpha not in ALPHAS and 0.32 < p.alpha < 0.42
    assert sse(y, p) < min(sse(y, with_(p, alpha=a)) for a in ALPHAS)


@pytest.mark.parametrize("m", [2, 3, MAX_STATE_SEASON])
def test_seasonal_states_and_fixed_indices_are_offered_for_every_short_season(m):
    t = np.arange(12 * m)
    y = 100 + 10 * np.sin(2 * np.pi * t / m + 0.3) + 5 * (t % m == 0) + np.random.default_rng(m).normal(0, 0.5, t.size)
    for model in ("ANA", "ANF", "MNF"):
        (p,) = fit_ets([y], m, restrict=(model,))
        assert np.isfinite(p.aicc) and p.error + p.trend + p.season == model and len(p.s0) == m
    assert fit_ets([y], m)[0].season != "N"  # the season is found


def test_longer_seasons_get_fixed_indices_only():
    m = MAX_STATE_SEASON + 1
    t = np.arange(4 * m)
    y = 100 + 10 * np.sin(2 * np.pi * t / m) + np.random.default_rng(1).normal(0, 0.5, t.size)
    (p,) = fit_ets([y], m, restrict=("ANA",))
    assert not np.isfinite(p.aicc) and p.season == "N"  # no such model: the fallback
    (p,) = fit_ets([y], m, restrict=("ANA", "ANF"))
    assert np.isfinite(p.aicc) and p.season == "F" and len(p.s0) == m


def test_no_season_means_no_seasonal_models():
    y = seasonal_series(48, 4, 1)
    (p,) = fit_ets([y], 1, restrict=("ANA", "ANF"))
    assert not np.isfinite(p.aicc) and p.season == "N" and p.s0 == ()


def test_the_aicc_needs_two_points_more_than_parameters():
    """ANN has 3 parameters (alpha, l0, sigma): 5 points give it an AICc, 4 points the fallback."""
    y = np.array([5.0, 6.0, 5.5, 7.0, 6.5])
    (p,) = fit_ets([y], 1, restrict=("ANN",))
    assert np.isfinite(p.aicc) and p.alpha != 0.99
    k, n = 3, 5
    lik = n * np.log(sse(y, p))
    assert p.aicc == pytest.approx(lik + 2 * k + 2 * k * (k + 1) / (n - k - 1), rel=1e-9)
    (p,) = fit_ets([y[:4]], 1, restrict=("ANN",))
    assert not np.isfinite(p.aicc) and p.alpha == 0.99


def test_a_series_shorter_than_three_seasons_still_gets_the_best_non_seasonal_fit():
    """Seasonal models are ruled out below three full seasons, the others are not: a short trending
    series gets a trend (not the fallback, not simple smoothing)."""
    t = np.arange(11)
    y = 10 + 3 * t + np.random.default_rng(2).normal(0, 0.3, t.size)
    (p,) = fit_ets([y], 4)
    assert p.trend != "N" and p.season == "N" and np.isfinite(p.aicc)
    assert fit_ets([seasonal_series(12, 4, 2)], 4)[0].season != "N"


def test_a_series_with_a_zero_is_not_positive():
    """The M error and multiplicative indices need every value > 0: one zero rules them out."""
    t = np.arange(48)
    y = 100 * (1 + 0.5 * np.sin(2 * np.pi * t / 4)) + np.random.default_rng(3).normal(0, 1, t.size)
    z = y.copy()
    z[20] = 0.0
    assert np.isfinite(fit_ets([y], 4, restrict=("MNN",))[0].aicc)
    (p,) = fit_ets([z], 4, restrict=("MNN",))
    assert p.error + p.trend + p.season == "ANN"  # no model of restrict applies: simple smoothing
    assert fit_ets([y], 4, restrict=("ANF",))[0].multiplicative
    assert not fit_ets([z], 4, restrict=("ANF",))[0].multiplicative
    models = AutoETS(season_length=4).fit_many([y, z]).models_
    assert not models[1].startswith("ETS(M") and "M*" not in models[1]


@pytest.mark.parametrize("model", MODELS)
def test_a_theta_fit_does_not_depend_on_the_units(model):
    """Theta fitted to a series in other units (times 1e-5 or 1e5): the same alpha and theta, the
    level in the new units (a series of small values is no exception to the search)."""
    rng = np.random.default_rng(4)
    xs = [50 + np.cumsum(rng.normal(0.3, 1.0, n)) for n in (30, 60, 144)]
    base = fit_theta(xs, model)
    for scale in (1e-5, 1e5):
        for p, q in zip(base, fit_theta([x * scale for x in xs], model)):
            assert q["alpha"] == pytest.approx(p["alpha"], abs=1e-9)
            assert q["theta"] == pytest.approx(p["theta"], rel=1e-6)
            assert q["l0"] == pytest.approx(p["l0"] * scale, rel=1e-6)


def test_m_error_initial_states_are_near_the_best_of_their_likelihood_on_a_growing_series():
    """An M error's initial states are one reweighted least-squares step from the A error's
    (weights 1 / mu^2, level and trend together): on a series that grows a hundredfold, its
    -2 log L is within 0.05 of the best found around them (with the level's step alone, up to 0.24 off)."""
    t = np.arange(40)
    for seed in range(4):
        rng = np.random.default_rng(seed)
        y = 10 * np.exp(0.12 * t) * (1 + 0.05 * rng.normal(size=t.size))
        (p,) = fit_ets([y], 1, restrict=("MAdN",))
        steps = np.linspace(-0.2, 0.2, 21)
        best = min(m_error_lik(y, p, p.l0 * (1 + a), p.b0 + b * p.l0) for a in steps for b in steps)
        assert m_error_lik(y, p, p.l0, p.b0) - best < 0.05


def test_a_theta_fits_alpha_is_on_the_documented_grids():
    """alpha: the best of 30 values evenly spaced over ALPHA_RANGE, then of 13 steps of 0.005 around
    it (clipped to the range)."""
    rng = np.random.default_rng(6)
    xs = [50 + np.cumsum(rng.normal(0.2, 1.0, n)) for n in (20, 40, 80, 160, 320)]
    coarse = np.linspace(*ALPHA_RANGE, 30)
    for p in fit_theta(xs):
        steps = (p["alpha"] - coarse) / 0.005
        near = np.abs(steps - np.round(steps)) < 1e-6
        at_edge = p["alpha"] in ALPHA_RANGE
        assert at_edge or np.any(near & (np.abs(steps) <= 6 + 1e-9))


def awkward_series() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    t = np.arange(60)
    return [
        np.array([5.0, 6.0, 5.5, 7.0]),  # the AICc's smallest
        np.full(30, 3.0),  # constant
        np.exp(0.5 * t),  # explosive growth
        np.r_[np.full(20, 1e-9), np.full(20, 1e9)],  # a jump of 18 orders
        np.abs(rng.normal(0, 1, 60)) + 1e-12,  # near zero, positive
        10 + np.sin(2 * np.pi * t / 12) * 9.99,  # a season down to nearly 0
        rng.normal(0, 1, 60).cumsum(),  # crosses zero
    ]


@pytest.mark.parametrize("m", [1, 12])
def test_the_searches_warn_about_nothing_on_awkward_series(m):
    """The searches try candidates that overflow or divide by zero on purpose (and rule them out):
    nothing of that reaches the user as a RuntimeWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fits = fit_ets(awkward_series(), m)
        theta = fit_theta(awkward_series())
    assert len(fits) == len(theta) == len(awkward_series())
