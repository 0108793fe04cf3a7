"""Baseline forecasts and accuracy metrics, against hand-computed values."""

import numpy as np
import pytest

from tickcast.models import drift, mae, mase, naive, rmse, seasonal_naive, smape
from tickcast.models.metrics import naive_scale


def test_baselines():
    y = np.array([1.0, 2.0, 4.0, 3.0, 5.0])
    np.testing.assert_array_equal(naive(y, 3), [5.0, 5.0, 5.0])
    np.testing.assert_array_equal(seasonal_naive(y, 5, m=2), [3.0, 5.0, 3.0, 5.0, 3.0])
    np.testing.assert_allclose(drift(y, 2), [6.0, 7.0])
    with pytest.raises(ValueError):
        seasonal_naive(y, 2, m=6)
    with pytest.raises(ValueError):
        naive([], 2)


def test_metrics():
    a, p = np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 1.0])
    assert mae(a, p) == pytest.approx(1.0)
    assert rmse(a, p) == pytest.approx(np.sqrt(5 / 3))
    assert smape(a, p) == pytest.approx(100 * np.mean([2 / 3, 0.0, 1.0]))
    assert smape([0.0], [0.0]) == 0.0
    train = np.array([1.0, 3.0, 2.0, 4.0])
    assert naive_scale(train) == pytest.approx(5 / 3)
    assert mase(a, p, train) == pytest.approx(1.0 / (5 / 3))
    assert mase(a, p, scale=2.0) == pytest.approx(0.5)
    assert np.isnan(mase(a, p, np.ones(5)))
    with pytest.raises(ValueError, match="shape"):
        mae([1.0, 2.0], [1.0])
