"""transform="auto": the log scale where changes grow with the level, the linear one where they do not."""

from __future__ import annotations

import numpy as np
import pytest

from tickcast.models import RNNForecaster
from tickcast.models.windows import LEVEL_RANGE, changes_grow_with_level, resolve_transform


def test_a_straight_line_continues_straight():
    np.testing.assert_allclose(RNNForecaster().fit(np.arange(1, 11)).predict(3), [11.0, 12.0, 13.0], rtol=1e-9)
    np.testing.assert_allclose(RNNForecaster().fit(np.arange(50.0, 0.0, -2.0)).predict(2), [0.0, -2.0], atol=1e-9)


def test_steady_steps_with_noise_are_linear_growth_in_proportion_is_log():
    rng = np.random.default_rng(0)
    t = np.arange(200.0)
    steps = 5.0 + 2.0 * t + rng.normal(0, 0.5, t.size)  # 5 to 400, steps of 2 whatever the level
    compound = 10.0 * np.exp(0.02 * t + np.cumsum(rng.normal(0, 0.01, t.size)))  # 10 to 550, +2 % a step
    prices = 100.0 * np.exp(np.cumsum(rng.normal(0.0005, 0.02, 2500)))  # a geometric random walk
    assert not changes_grow_with_level(steps) and not resolve_transform(steps, "auto")
    assert changes_grow_with_level(compound) and resolve_transform(compound, "auto")
    assert np.max(prices) > LEVEL_RANGE * np.min(prices) and resolve_transform(prices, "auto")


def test_a_narrow_range_keeps_the_log_scale_and_non_positive_series_the_linear_one():
    narrow = 100.0 + np.arange(30.0)  # steady steps, but the level varies by less than LEVEL_RANGE
    assert np.max(narrow) < LEVEL_RANGE * np.min(narrow) and resolve_transform(narrow, "auto")
    assert not resolve_transform(np.arange(-5.0, 25.0), "auto")
    assert not resolve_transform(np.array([3.0, 0.0, 4.0, 9.0]), "auto")


def test_too_few_changes_to_tell_keep_the_log_scale():
    assert changes_grow_with_level(np.array([1.0, 1.0, 1.0, 5.0, 5.0]))  # one change only


@pytest.mark.parametrize("transform", ["log", "linear"])
def test_an_explicit_transform_is_obeyed(transform):
    y = np.arange(1.0, 11.0)
    assert resolve_transform(y, transform) == (transform == "log")
