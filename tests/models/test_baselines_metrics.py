"""Baseline forecasts and accuracy metrics, against hand-computed values."""

from decimal import Decimal

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


def test_metrics_take_any_numbers_as_float64():
    """Decimals (what a NUMERIC column of PostgreSQL returns), small unsigned integers (whose
    differences would wrap around) and float32 are all scored in float64."""
    dec = [Decimal("1.5"), Decimal("2"), Decimal("0")]
    floats = [1.0, 3.0, 0.0]
    assert mae(dec, floats) == mae(floats, dec) == pytest.approx((0.5 + 1.0) / 3)
    assert rmse(dec, floats) == pytest.approx(np.sqrt((0.25 + 1.0) / 3))
    assert smape(dec, floats) == smape(floats, dec) == pytest.approx(100 * (1 / 2.5 + 2 / 5) / 3)
    assert mase(dec, floats, y_train=[Decimal("1"), Decimal("3")]) == pytest.approx(0.5 / 2)
    small = np.array([5, 3, 4], dtype=np.uint8)
    assert mae(small, np.array([3, 5, 4], dtype=np.uint8)) == pytest.approx(4 / 3)
    assert naive_scale(small) == 1.5 and naive_scale(small, m=2) == 1.0
    a32, p32 = np.array([16777216.0], dtype=np.float32), np.array([0.1], dtype=np.float32)
    assert mae(a32, p32) == 16777216.0 - float(np.float32(0.1)) != 16777216.0


@pytest.mark.filterwarnings("error")  # and quietly: no division by zero, no uninitialised memory
def test_smape_counts_a_point_where_both_are_zero_as_zero_and_any_other_point_in_full():
    a, p = np.r_[np.zeros(5), 0.2], np.r_[np.zeros(5), 0.4]
    assert smape(a, p) == pytest.approx(100 * (2 * 0.2 / 0.6) / 6)  # small values count in full
    assert smape([0.2], [0.0]) == 200.0 and smape([0.5], [0.25]) == pytest.approx(100 * 0.5 / 0.75)


def test_metric_errors_say_what_is_wrong():
    for call, message in [
        (lambda: mae([], []), "no points to score"),
        (lambda: smape([1.0, 2.0], [1.0]), "actual (2,) and predicted (1,) differ in shape"),
        (lambda: naive_scale([1.0, 2.0], m=2), "need more than m=2 training points for the MASE scale"),
        (lambda: naive_scale([1.0]), "need more than m=1 training points for the MASE scale"),
        (lambda: mase([1.0], [2.0]), "mase needs y_train or scale"),
    ]:
        with pytest.raises(ValueError) as e:
            call()
        assert str(e.value) == message


def test_mase_scales_by_the_seasonal_naive_error_of_the_period_given():
    train = np.array([1.0, 5.0, 2.0, 6.0, 3.0, 7.0])  # a season of 2: each step 1 above a season ago
    assert naive_scale(train, m=2) == 1.0 and naive_scale(train) == pytest.approx(18 / 5)
    assert mase([4.0], [3.5], train, m=2) == 0.5
    assert mase([4.0], [3.5], train) == pytest.approx(0.5 / (18 / 5))
    assert mase([4.0], [3.5], scale=0.5) == 1.0 and mase([4.0], [3.5], scale=2.0) == 0.25
    assert np.isnan(mase([4.0], [3.5], scale=0.0)) and np.isnan(mase([4.0], [3.5], [2.0, 2.0, 2.0]))
