"""The challengers' and the combination's intervals (models/conformal.py) against values computed by
hand: the smoothed conformal quantile, the Laplace half-width where a step has too few residuals
for its level, the interval on
the log and the linear scale, its floor, and the fall-back when exp overflows."""

from __future__ import annotations

import math
import warnings
from statistics import NormalDist

import numpy as np
import pytest

from tickcast.models.conformal import (
    MIN_RELATIVE_HALF_WIDTH,
    Conformal,
    levels_of,
    random_walk_residuals,
    residuals,
    spread_at_end,
    spread_path,
)

Z95 = NormalDist().inv_cdf(0.975)


def laplace_quantile(n: int, mean: float, level: float) -> float:
    """The level quantile of a new |e| when |e| is exponential and its mean is estimated from n
    draws: P(|e| > q) = (1 + q / (n mean))^(-n)."""
    return n * mean * ((1 - level) ** (-1 / n) - 1)


def test_too_few_residuals_for_the_level_give_the_laplace_predictive_half_width():
    e = np.column_stack([np.arange(1.0, 6.0), 2.0 * np.arange(1.0, 6.0)])  # five residuals, two steps
    c = Conformal.from_residuals([e], 2)
    # The quantile function of 1..5 on the 201-point grid: 1 at p = 0 and on (0, 0.2] (41 points),
    # then 2, 3, 4, 5 on 40 points each: its mean (41 + 40 * (2 + 3 + 4 + 5)) / 201.
    mean1 = (41 + 40 * (2 + 3 + 4 + 5)) / 201
    # rank 6 * 0.95 = 5.7 > 5 residuals: no conformal quantile; the Laplace one, wider than the largest
    expected = laplace_quantile(5, mean1, 0.95) * np.array([1.0, 2.0, 2.0 * math.sqrt(3 / 2)])  # step 3: beyond K
    assert expected[0] > 5.0
    np.testing.assert_allclose(c.half_widths(3, 0.95), expected, rtol=1e-12)
    # at 80 %: rank 6 * 0.8 = 4.8 < 5, between the 4th and 5th smallest: 0.2 * 4 + 0.8 * 5
    np.testing.assert_allclose(c.half_widths(3, 0.8), [4.8, 9.6, 9.6 * math.sqrt(3 / 2)], rtol=1e-12)


@pytest.mark.parametrize(("n", "level"), [(8, 0.8), (30, 0.8), (12, 0.5), (40, 0.95)])
def test_the_smoothed_conformal_quantile_covers_its_level_on_exchangeable_residuals(n, level):
    """A new residual drawn like the n behind the interval falls inside it with probability level
    (up to the simulation's noise), where the conservative ceil rule covers ceil(level (n+1)) / (n+1)
    (8 / 9 for n = 8 at 80 %)."""
    rng = np.random.default_rng(n)
    trials = 4000
    draws = np.abs(rng.standard_t(4, size=(trials, n + 1)))  # heavy-tailed errors; any law will do
    inside = 0
    for row in draws:
        q = Conformal.from_residuals([row[:n, None]], 1).half_widths(1, level)[0]
        inside += row[n] <= q
    se = math.sqrt(level * (1 - level) / trials)
    assert abs(inside / trials - level) < 4 * se
    if n == 8:  # the ceil rule: the 8th smallest of 8, covering 8 / 9
        assert inside / trials < math.ceil(level * (n + 1)) / (n + 1) - 4 * se


@pytest.mark.parametrize("n", [3, 8, 15])
def test_with_too_few_residuals_laplace_errors_are_covered_at_95(n):
    """The small-sample rule is exact for Laplace errors: |e| exponential, its mean unknown."""
    rng = np.random.default_rng(100 + n)
    trials = 4000
    draws = rng.exponential(2.5, size=(trials, n + 1))
    inside = 0
    for row in draws:
        c = Conformal.from_residuals([row[:n, None]], 1)
        q = c.half_widths(1, 0.95)[0]
        assert q == pytest.approx(max(laplace_quantile(n, float(np.mean(c.Q[0])), 0.95), float(row[:n].max())))
        inside += row[n] <= q
    # the grid's mean of the quantile function is the sample mean up to a little: within 1 point
    assert abs(inside / trials - 0.95) < 0.01


def _steady(residual: float, n: int = 20) -> Conformal:
    return Conformal.from_residuals([np.full((n, 1), residual)], 1)


def test_an_interval_on_the_linear_scale():
    y = np.arange(-5.0, 15.0)  # not positive: the linear scale; one-step changes of 1, so the spread is 1
    np.testing.assert_array_equal(spread_path(y), 1.0)
    point = np.array([15.0, 16.0])
    lower, upper = _steady(2.0).interval(y, point, 0.8)
    half = 2.0 * np.array([1.0, math.sqrt(2.0)])  # the residual's quantile, step 2 grown like a random walk
    np.testing.assert_allclose(lower, point - half, rtol=1e-12)
    np.testing.assert_allclose(upper, point + half, rtol=1e-12)


def test_an_interval_on_the_log_scale_is_relative():
    y = 2.0 ** np.arange(1.0, 21.0)  # positive: the log scale; every change is log 2
    point = np.array([2.0**21, 2.0**22])
    lower, upper = _steady(1.0).interval(y, point, 0.8)
    half = np.log(2.0) * np.array([1.0, math.sqrt(2.0)])
    np.testing.assert_allclose(lower, point * np.exp(-half), rtol=1e-12)
    np.testing.assert_allclose(upper, point * np.exp(half), rtol=1e-12)


def test_a_forecast_at_or_below_zero_of_a_positive_series_gets_a_linear_interval():
    y = np.arange(1.0, 21.0)  # positive, changes of 1 on the linear scale
    point = np.array([0.0, 3.0])
    lower, upper = _steady(2.0).interval(y, point, 0.8)
    half = 2.0 * np.array([1.0, math.sqrt(2.0)])
    np.testing.assert_allclose(lower, point - half, rtol=1e-12)
    np.testing.assert_allclose(upper, point + half, rtol=1e-12)


def test_a_series_that_never_moved_still_gets_an_interval():
    steps = np.sqrt([1.0, 2.0, 3.0])
    lower, upper = _steady(0.0).interval(np.full(20, 5.0), np.full(3, 5.0), 0.8)  # log scale
    np.testing.assert_allclose(lower, 5.0 * np.exp(-MIN_RELATIVE_HALF_WIDTH * steps), rtol=1e-12)
    np.testing.assert_allclose(upper, 5.0 * np.exp(MIN_RELATIVE_HALF_WIDTH * steps), rtol=1e-12)
    lower, upper = _steady(0.0).interval(np.full(20, -5.0), np.full(3, -5.0), 0.8)  # linear scale
    np.testing.assert_allclose(lower, -5.0 - MIN_RELATIVE_HALF_WIDTH * 5.0 * steps, rtol=1e-12)
    np.testing.assert_allclose(upper, -5.0 + MIN_RELATIVE_HALF_WIDTH * 5.0 * steps, rtol=1e-12)


def test_an_interval_whose_exp_overflows_falls_back_to_a_linear_one_of_the_same_relative_width():
    y = 2.0 ** np.arange(1.0, 21.0)
    point = np.array([100.0])
    lower, upper = _steady(1e6).interval(y, point, 0.8)  # exp(log 100 + 1e6 log 2) overflows
    width = 100.0 * math.expm1(30.0)
    np.testing.assert_allclose(lower, [100.0 - width], rtol=1e-12)
    np.testing.assert_allclose(upper, [100.0 + width], rtol=1e-12)


def test_the_local_size_of_changes_is_an_exponentially_weighted_mean():
    x = np.array([0.0, 1.0, 3.0, 3.0, 7.0, 8.0, 10.0])  # changes 1, 2, 0, 4, 1, 2
    lam = 1.0 - 0.5 ** (1.0 / 20.0)  # a half-life of 20 points
    s = (1 + 2 + 0 + 4 + 1) / 5  # started at the mean of the first five changes
    expected = [s, s]
    for change in (1.0, 2.0, 0.0, 4.0, 1.0, 2.0):
        s = (1 - lam) * s + lam * change
        expected.append(s)
    np.testing.assert_allclose(spread_path(x), expected, rtol=1e-15)
    assert spread_path(np.array([3.0])).tolist() == pytest.approx([3e-8, 3e-8])  # no change: a floor


def test_a_positive_series_below_one_is_on_the_log_scale_and_one_with_a_zero_is_not():
    y = 0.5 ** np.arange(1.0, 21.0)  # positive, under 1: every change is log 2 on the log scale
    point = np.array([0.5**21, 0.5**22])
    lower, upper = _steady(1.0).interval(y, point, 0.8)
    half = np.log(2.0) * np.array([1.0, math.sqrt(2.0)])
    np.testing.assert_allclose(lower, point * np.exp(-half), rtol=1e-12)
    np.testing.assert_allclose(upper, point * np.exp(half), rtol=1e-12)
    y = np.r_[0.0, np.arange(1.0, 20.0)]  # a zero: the linear scale, changes of 1
    lower, upper = _steady(2.0).interval(y, np.array([20.0]), 0.8)
    np.testing.assert_allclose([lower[0], upper[0]], [18.0, 22.0], rtol=1e-12)


def test_the_half_width_scales_with_the_spread_at_the_end_of_the_series():
    y = np.r_[np.arange(0.0, 40.0, 1.0), 40.0 + np.arange(1.0, 21.0) * 3.0]  # changes of 1, then of 3
    end = spread_path(y)[-1]
    assert 1.0 < end < 3.0 and end != spread_path(y)[-2]
    lower, upper = _steady(2.0).interval(y, np.array([0.0]), 0.8)  # a zero point: the linear scale
    np.testing.assert_allclose([lower[0], upper[0]], [-2.0 * end, 2.0 * end], rtol=1e-12)


def test_a_linear_series_that_never_moved_gets_a_floor_relative_to_its_level_even_below_one():
    lower, upper = _steady(0.0).interval(np.full(20, -0.25), np.full(2, -0.25), 0.8)
    half = MIN_RELATIVE_HALF_WIDTH * 0.25 * np.sqrt([1.0, 2.0])
    np.testing.assert_allclose(lower, -0.25 - half, rtol=1e-12)
    np.testing.assert_allclose(upper, -0.25 + half, rtol=1e-12)


def test_an_overflowing_interval_raises_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lower, upper = _steady(1e6).interval(2.0 ** np.arange(1.0, 21.0), np.array([100.0]), 0.8)
    assert np.isfinite(lower[0]) and np.isfinite(upper[0])


def test_residuals_by_hand_nan_past_the_end():
    y = np.array([1.0, 2.0, 4.0, 4.0, 8.0, 9.0])  # linear: a zero-free but tested here on the linear scale
    spread = spread_path(y)
    F = np.array([[5.0, 3.0, -1.0], [3.0, 10.0, 7.0], [0.5, 2.0, 2.0]])  # from origins 3, 4, 5
    r = residuals(y, F, 3, log=False)
    expected = np.array(
        [
            [abs(4.0 - 5.0) / spread[3], abs(8.0 - 3.0) / spread[3], abs(9.0 + 1.0) / spread[3]],
            [abs(8.0 - 3.0) / spread[4], abs(9.0 - 10.0) / spread[4], np.nan],
            [abs(9.0 - 0.5) / spread[5], np.nan, np.nan],
        ]
    )
    np.testing.assert_allclose(r, expected, rtol=1e-15)  # NaN where it is expected, and only there


def test_residuals_on_the_log_scale_take_a_forecast_at_or_below_zero_as_the_tiniest_positive():
    y = np.array([1.0, 2.0, 4.0, 8.0])
    x = np.log(y)
    spread = spread_path(x)
    r = residuals(y, np.array([[0.5, -3.0], [16.0, 1.0]]), 2, log=True)
    tiny = np.log(1e-300)
    expected = [
        [abs(x[2] - np.log(0.5)) / spread[2], abs(x[3] - tiny) / spread[2]],
        [abs(x[3] - np.log(16.0)) / spread[3], np.nan],
    ]
    np.testing.assert_allclose(r, expected, rtol=1e-15)


def test_random_walk_residuals_are_the_scaled_one_step_changes():
    y = np.array([1.0, 2.0, 8.0])
    x = np.log(y)
    spread = spread_path(x)
    r = random_walk_residuals(y, 2, log=True)
    expected = [[abs(x[1] - x[0]) / spread[1], np.nan], [abs(x[2] - x[1]) / spread[2], np.nan]]
    np.testing.assert_allclose(r, expected, rtol=1e-15)
    two = random_walk_residuals(np.array([3.0, 5.0]), 1, log=False)
    np.testing.assert_allclose(two, [[1.0]], rtol=1e-15)  # |5 - 3| over the spread 2
    assert random_walk_residuals(np.array([3.0]), 2, log=False).shape == (0, 2)


def test_the_spread_of_nothing_is_the_floor():
    np.testing.assert_array_equal(spread_path(np.array([])), [1e-12])


def test_a_step_with_too_few_residuals_of_its_own_uses_the_count_its_quantiles_came_from():
    e = np.full((30, 2), 1.0)
    e[:, 0] = np.arange(1.0, 31.0) / 10
    e[3:, 1] = np.nan  # step 2 has 3 residuals: its quantile function is grown from step 1's 30
    c = Conformal.from_residuals([e], 2)
    q = c.half_widths(3, 0.95)
    assert q[0] == pytest.approx(0.95 * 31 / 10)  # rank 29.45 of 1..30, over 10
    grown = c.Q[0] * math.sqrt(2)
    np.testing.assert_allclose(c.Q[1], grown)
    want = max(float(grown[-1]), laplace_quantile(30, float(np.mean(grown)), 0.95))
    assert q[1] == pytest.approx(want, rel=1e-12)
    assert q[2] == pytest.approx(want * math.sqrt(3 / 2), rel=1e-12)


def test_steps_beyond_the_residuals_grow_from_the_last_step_with_two_residuals():
    e = np.array([[1.0, 2.0, 5.0], [3.0, 4.0, 7.0]])  # three steps, two residuals each
    c = Conformal.from_residuals([e], 3)
    # no step has MIN_RESIDUALS: the one-step residuals (two) grown like a random walk
    np.testing.assert_allclose(c.Q, c.Q[0][None, :] * np.sqrt([1.0, 2.0, 3.0])[:, None])
    q = c.half_widths(5, 0.8)
    base = max(float(c.Q[0, -1]), laplace_quantile(2, float(np.mean(c.Q[0])), 0.8))
    np.testing.assert_allclose(q, base * np.sqrt([1.0, 2.0, 3.0, 4.0, 5.0]), rtol=1e-12)


@pytest.mark.parametrize(("level", "expected"), [(0.05, 0.5), (0.15, 1.5), (0.5, 5.0)])
def test_the_smoothed_quantile_interpolates_from_zero_below_the_smallest(level, expected):
    """Residuals 1..9: rank level * 10 between the order statistics (the 0th is 0)."""
    c = Conformal.from_residuals([np.arange(1.0, 10.0)[:, None]], 1)
    assert c.half_widths(1, level)[0] == pytest.approx(expected, rel=1e-12)


def test_a_step_with_few_residuals_takes_its_count_from_the_step_its_quantiles_grew_from():
    e = np.full((10, 3), np.nan)
    e[:, 0] = np.arange(1.0, 11.0)  # ten one-step residuals
    e[:5, 1] = np.arange(1.0, 6.0)  # five two-step ones: exactly enough to be well estimated
    e[:3, 2] = 1.0  # three three-step ones: grown from step 2
    c = Conformal.from_residuals([e], 3)
    np.testing.assert_allclose(c.Q[2], c.Q[1] * math.sqrt(3 / 2))
    q = c.half_widths(3, 0.95)
    assert q[1] == pytest.approx(max(5.0, laplace_quantile(5, float(np.mean(c.Q[1])), 0.95)), rel=1e-12)
    assert q[2] == pytest.approx(max(float(c.Q[2, -1]), laplace_quantile(5, float(np.mean(c.Q[2])), 0.95)))


def test_with_no_step_well_estimated_the_count_is_the_first_step_s():
    e = np.full((4, 2), np.nan)
    e[:, 0] = [1.0, 2.0, 3.0, 4.0]  # four one-step residuals, two two-step ones: none has five
    e[:2, 1] = [1.0, 1.0]
    c = Conformal.from_residuals([e], 2)
    q = c.half_widths(2, 0.8)
    for k in range(2):
        assert q[k] == pytest.approx(max(float(c.Q[k, -1]), laplace_quantile(4, float(np.mean(c.Q[k])), 0.8)))


def test_a_single_residual_gives_the_laplace_quantile_of_one_draw():
    c = Conformal.from_residuals([np.array([[2.0]])], 1)
    assert c.half_widths(1, 0.95)[0] == pytest.approx(2.0 * (1 / 0.05 - 1))  # 38: n = 1, mean 2


def test_the_largest_residual_bounds_the_laplace_quantile_from_below():
    e = np.ones((300, 1))
    e[0, 0] = 1000.0  # one outlier among 300: the Laplace quantile (about 30) is far below it
    c = Conformal.from_residuals([e], 1)
    assert laplace_quantile(300, float(np.mean(c.Q[0])), 0.999) < 100
    assert c.half_widths(1, 0.999)[0] == 1000.0


@pytest.mark.parametrize("level", [0.0, 1.0, 1.5])
def test_the_half_widths_refuse_a_level_outside_zero_to_one(level):
    with pytest.raises(ValueError, match=rf"^level must be in \(0, 1\), got {level}$"):
        _steady(1.0).half_widths(2, level)


@pytest.mark.parametrize("level", [0.0, 1.0, 1.5, -0.1])
def test_a_level_outside_zero_to_one_is_refused_with_its_value(level):
    with pytest.raises(ValueError, match=rf"^level must be in \(0, 1\), got {level}$"):
        levels_of([0.5, level])
    assert levels_of(0.8) == ([0.8], True) and levels_of([0.8, 0.95]) == ([0.8, 0.95], False)


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 6, 7, 40, 2500, 30000])
def test_the_spread_at_the_end_is_the_last_point_of_the_path(n):
    """What an interval uses (one dot product) against the path's loop, across lengths and scales."""
    rng = np.random.default_rng(n)
    for scale in (1e-6, 1.0, 1e6):
        x = np.cumsum(rng.normal(0.0, 1.0, n)) * scale
        assert spread_at_end(x) == pytest.approx(spread_path(x)[-1], rel=1e-13)
    assert spread_at_end(np.full(n, 3.0)) == pytest.approx(spread_path(np.full(n, 3.0))[-1], rel=1e-13)
