"""The challengers' and the combination's intervals (models/conformal.py) against values computed by
hand: the Gaussian half-width where a step has too few residuals for its level, the interval on
the log and the linear scale, its floor, and the fall-back when exp overflows."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from tickcast.models.conformal import MIN_RELATIVE_HALF_WIDTH, Conformal, spread_path

Z95 = NormalDist().inv_cdf(0.975)


def test_too_few_residuals_for_the_level_give_the_gaussian_half_width():
    e = np.column_stack([np.arange(1.0, 6.0), 2.0 * np.arange(1.0, 6.0)])  # five residuals, two steps
    c = Conformal.from_residuals([e], 2)
    # The quantile function of 1..5 on the 201-point grid: 1 at p = 0 and on (0, 0.2] (41 points),
    # then 2, 3, 4, 5 on 40 points each: mean of squares (41 + 40 * (4 + 9 + 16 + 25)) / 201.
    rms1 = math.sqrt((41 + 40 * (4 + 9 + 16 + 25)) / 201)
    allowance = 1 + (Z95**2 + 1) / (4 * (5 - 1))  # about the t / z quantile ratio for 5 residuals
    # ceil(6 * 0.95) = 6 > 5 residuals: the conformal quantile would be the largest (5), narrower
    expected = Z95 * rms1 * allowance * np.array([1.0, 2.0, 2.0 * math.sqrt(3 / 2)])  # step 3: beyond K
    assert expected[0] > 5.0
    np.testing.assert_allclose(c.half_widths(3, 0.95), expected, rtol=1e-12)
    # at 80 %: ceil(6 * 0.8) = 5 <= 5 residuals, the conformal quantile: the 5th smallest
    np.testing.assert_allclose(c.half_widths(3, 0.8), [5.0, 10.0, 10.0 * math.sqrt(3 / 2)], rtol=1e-12)


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
