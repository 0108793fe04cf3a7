"""models/baselines.py against plain re-statements: SES (its least-squares initial level, the
coarse-then-fine search of its smoothing parameter) and the classic Theta method written out step
by step, on series whose best parameter lies inside the grid and at either end of it; Naive2;
the edges (the fewest points, one season, no season by default) and the exact errors.

The competition benchmarks and the claims "below Theta" rest on these functions."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from tickcast.models import drift, naive, naive2, seasonal_naive, theta
from tickcast.models.baselines import ses
from tickcast.models.seasonality import Seasonality


def level_path(y: np.ndarray, alpha: float, l0: float) -> tuple[float, float]:
    """(in-sample SSE of one-step forecasts, final level) of SES started at level l0."""
    level, sse = l0, 0.0
    for v in y:
        sse += (v - level) ** 2
        level = alpha * v + (1 - alpha) * level
    return sse, level


def ses_at(y: np.ndarray, alpha: float) -> tuple[float, float]:
    """SES at alpha with the initial level that minimises the SSE (a parabola in l0: three
    evaluations give its vertex)."""
    s0, s1, s2 = (level_path(y, alpha, l0)[0] for l0 in (0.0, 1.0, 2.0))
    a, b = (s2 - 2 * s1 + s0) / 2, s1 - s0 - (s2 - 2 * s1 + s0) / 2
    return level_path(y, alpha, -b / (2 * a))


def ses_reference(y: np.ndarray) -> tuple[float, float]:
    """(final level, alpha): the best of 25 alphas evenly from 0.02 to 0.98, then the best of 17
    from 0.04 below it to 0.04 above, each kept within [0.001, 0.999]."""
    coarse = [0.02 + 0.04 * i for i in range(25)]
    best = min(coarse, key=lambda a: ses_at(y, a)[0])
    fine = [min(max(best - 0.04 + 0.005 * i, 0.001), 0.999) for i in range(17)]
    alpha = min(fine, key=lambda a: ses_at(y, a)[0])
    return ses_at(y, alpha)[1], alpha


def theta_reference(y: np.ndarray, h: int, m: int) -> np.ndarray:
    season = Seasonality.fit(y, m, m4_test=True)
    x = season.remove(y)
    n = x.size
    if n < 3:
        slope = (x[-1] - x[0]) / (n - 1) if n > 1 else 0.0
        return season.restore(np.array([x[-1] + slope * k for k in range(1, h + 1)]))
    t = np.arange(n)
    b = np.sum((t - t.mean()) * (x - x.mean())) / np.sum((t - t.mean()) ** 2)  # the linear trend's slope
    level, alpha = ses_reference(x)
    drift_term = [0.5 * b * (k - 1 + (1 - (1 - alpha) ** n) / alpha) for k in range(1, h + 1)]
    return season.restore(level + np.array(drift_term))


def corpus() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    t = np.arange(60.0)
    return {
        "walk (alpha near 1)": 100 + np.cumsum(rng.normal(0, 2, 60)),
        "noise around a level (alpha near 0)": 50 + rng.normal(0, 1, 60),
        "a trend with noise": 10 + 0.5 * t + rng.normal(0, 1, 60),
        "a season of 4 on a trend": (20 + 0.3 * t) * (1 + 0.2 * np.sin(2 * np.pi * t / 4)) + rng.normal(0, 0.2, 60),
        "falling, negative": -5 - 0.2 * t + rng.normal(0, 0.5, 60),
        "three points": np.array([3.0, 5.0, 4.0]),
        "four points": np.array([3.0, 5.0, 4.0, 8.0]),
    }


@pytest.mark.parametrize("name", list(corpus()))
def test_ses_is_the_least_squares_fit_of_its_two_grids(name):
    y = corpus()[name]
    (got, alpha), (level, want_alpha) = ses(y, 3), ses_reference(y)
    assert alpha == pytest.approx(want_alpha, abs=1e-12)
    np.testing.assert_allclose(got, np.full(3, level), rtol=1e-9)
    if name.startswith("walk"):
        assert alpha > 0.8
    if name.startswith("noise"):
        assert alpha < 0.1


def test_the_search_ends_where_the_grid_ends():
    walk = corpus()["walk (alpha near 1)"]
    up = np.cumsum(np.r_[0.0, np.ones(40)])  # every step the same: alpha 1 is exact, the grid stops at 0.999
    _, alpha = ses(up, 1)
    assert alpha == 0.999 and ses_reference(up)[1] == 0.999
    flat = np.r_[np.full(30, 7.0), 7.5, np.full(30, 7.0)]  # one blip: the less it moves the level, the better
    _, alpha = ses(flat, 1)
    assert alpha == ses_reference(flat)[1] == 0.001  # the grid reaches below 0: kept at 0.001
    assert ses(walk, 2)[1] <= 0.999


@pytest.mark.parametrize("name", list(corpus()))
@pytest.mark.parametrize("m", [1, 4])
def test_theta_is_ses_plus_half_the_trend(name, m):
    y = corpus()[name]
    np.testing.assert_allclose(theta(y, 7, m), theta_reference(y, 7, m), rtol=1e-9, atol=1e-9)


def test_theta_and_naive2_on_the_fewest_points():
    for y in (np.array([4.0]), np.array([4.0, 6.0]), [Decimal("4"), Decimal("6")]):
        want = theta_reference(np.asarray(y, dtype=np.float64), 3, 1)
        got = theta(y, 3)
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(theta([4.0, 6.0], 3), [8.0, 10.0, 12.0])
    np.testing.assert_array_equal(naive2([4.0, 6.0], 2), [6.0, 6.0])
    short = ses([1.0, 4.0], 2)
    assert short == (pytest.approx([4.0, 4.0]), 1.0) and ses([1.0, 4.0], 2)[0].shape == (2,)


def test_naive2_is_the_naive_forecast_of_the_seasonally_adjusted_series():
    t = np.arange(48.0)
    y = (100 + t) * (1 + 0.3 * np.sin(2 * np.pi * t / 12))
    season = Seasonality.fit(y, 12, m4_test=True)
    assert season.active
    want = season.restore(np.full(18, season.remove(y)[-1]))
    np.testing.assert_allclose(naive2(y, 18, 12), want, rtol=1e-12)
    assert not np.allclose(naive2(y, 18, 12), naive(y, 18))
    # no season unless one is given (m defaults to 1), whatever the series looks like
    alternating = np.tile([10.0, 30.0], 20) + np.arange(40.0)
    np.testing.assert_array_equal(naive2(alternating, 4), naive(alternating, 4))
    np.testing.assert_allclose(theta(alternating, 4), theta(alternating, 4, 1))
    assert not np.allclose(theta(alternating, 4, 2), theta(alternating, 4, 1))


def test_seasonal_naive_drift_and_naive_at_their_edges():
    y = np.array([1.0, 2.0, 4.0])
    np.testing.assert_array_equal(seasonal_naive(y, 4, 3), [1.0, 2.0, 4.0, 1.0])  # exactly one season
    np.testing.assert_array_equal(seasonal_naive(y, 2, 1), [4.0, 4.0])  # m = 1 is the naive forecast
    np.testing.assert_array_equal(drift([5.0], 3), [5.0, 5.0, 5.0])  # one point: no slope
    np.testing.assert_array_equal(drift([5.0, 7.0], 2), [9.0, 11.0])
    for got in (naive([Decimal("1.5")], 2), drift([Decimal("1"), Decimal("2")], 2), seasonal_naive(["1", "2"], 2, 2)):
        assert got.dtype == np.float64
    np.testing.assert_array_equal(seasonal_naive(["1", "2"], 3, 2), [1.0, 2.0, 1.0])


def test_baseline_errors_say_what_is_wrong():
    for call, message in [
        (lambda: naive([], 2), "y must be a non-empty 1-D series"),
        (lambda: theta(np.ones((3, 2)), 2), "y must be a non-empty 1-D series"),
        (lambda: seasonal_naive([1.0, 2.0], 2, 0), "seasonal naive needs m >= 1 and at least m=0 points"),
        (lambda: seasonal_naive([1.0, 2.0], 2, 3), "seasonal naive needs m >= 1 and at least m=3 points"),
    ]:
        with pytest.raises(ValueError) as e:
            call()
        assert str(e.value) == message
