"""The challengers' shared edges (models/challenger.py): settings refused with the setting named,
how they print, intervals on the log scale for positive series (with and without a validation
part), one-step scores of one point or none, the MASE scale of a one-point training part, and how
series are chunked for the vectorised fits (shortest first, at most ``most``, within the budget)."""

from __future__ import annotations

import numpy as np
import pytest

from tickcast.models import AutoETS, Naive, SeasonalNaive, Theta
from tickcast.models.challenger import backtest, scores, size_chunks

MODELS = (Naive, SeasonalNaive, Theta, AutoETS)


@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize(
    "name,value", [("season_length", -1), ("horizon", 1.5), ("seed", True), ("seed", -2), ("horizon", "3")]
)
def test_a_bad_common_setting_is_refused_with_its_name(cls, name, value):
    with pytest.raises(ValueError) as info:
        cls(**{name: value})
    assert str(info.value) == f"{name} must be an integer >= 0, got {value!r}"


@pytest.mark.parametrize("cls", MODELS)
def test_numpy_integers_are_settings_and_the_model_prints_them(cls):
    model = cls(season_length=np.int64(7), horizon=np.int32(4), seed=3)
    assert (model.season_length, model.horizon, model.seed) == (7, 4, 3)
    assert repr(model).startswith(f"{cls.__name__}(season_length=7, horizon=4, seed=3")
    with pytest.raises(ValueError, match=rf"^{cls.__name__} has no setting\(s\) \['colour'\]$"):
        cls(colour="red")


def test_the_models_print_their_own_settings_too():
    assert repr(Naive()) == "Naive(season_length=0, horizon=0, seed=0)"
    assert repr(Theta(model="otm")) == "Theta(season_length=0, horizon=0, seed=0, model='otm')"
    assert (
        repr(AutoETS(trends=("N",))) == "AutoETS(season_length=0, horizon=0, seed=0, trends=['N'], errors=['A', 'M'])"
    )


@pytest.mark.parametrize("n", [60, 4])  # with a validation part, and too short for one
def test_a_positive_series_intervals_are_wider_above_than_below(n):
    y = 100 * np.exp(np.cumsum(np.random.default_rng(0).normal(0.01, 0.05, 60)))[:n]
    model = Naive().fit(y)
    assert (model.validation_[0][1] is None) == (n == 4)
    f = model.predict(3)
    (lo, hi) = model.predict_interval(3, 0.8)
    assert np.all(hi - f > f - lo)  # a percentage either way: the log scale
    np.testing.assert_allclose(np.log(hi) - np.log(f), np.log(f) - np.log(lo), rtol=1e-9)
    shifted = Naive().fit(y - 1000.0)  # negative values: the interval is symmetric on the data's scale
    g = shifted.predict(3)
    (lo2, hi2) = shifted.predict_interval(3, 0.8)
    np.testing.assert_allclose(hi2 - g, g - lo2, rtol=1e-9)


def test_one_step_scores_of_one_point_and_of_none():
    one = scores(np.array([2.0]), np.array([2.5]), np.array([1.0]), 0.5)
    assert (one["n"], one["mae"], one["naive_mae"], one["mase"], one["relative_mae"]) == (1, 0.5, 1.0, 1.0, 0.5)
    none = scores(None, None, None, 0.5)
    assert none["n"] == 0 and none["mae"] is None and none["mase_scale"] == 0.5
    assert scores(np.array([]), np.array([]), np.array([]), 0.0)["n"] == 0


def test_a_backtest_without_validation_forecasts_reports_the_series_scale():
    y = np.array([1.0, 3.0, 2.0, 6.0])
    empty = backtest(y, 2, None)
    assert empty["n"] == 0 and empty["mase_scale"] == pytest.approx(7 / 3)  # mean |change| of all of y
    assert backtest(y, 4, np.ones((1, 1)))["n"] == 0
    assert backtest(np.array([5.0]), 1, None)["mase_scale"] == 0.0
    early = backtest(y, 1, np.full((3, 1), 2.0))  # one point to train on: no change to scale by
    assert early["n"] == 3 and early["mase_scale"] == 0.0 and early["mase"] is None
    later = backtest(y, 2, np.full((2, 1), 2.0))
    assert later["mase_scale"] == 2.0 and later["mae"] == pytest.approx(2.0) and later["mase"] == pytest.approx(1.0)


def test_series_are_chunked_shortest_first_within_a_count_and_a_budget():
    assert size_chunks([5, 1, 3], width=1, most=2, budget=10**9) == [[1, 2], [0]]
    assert size_chunks([5, 1, 3], width=1, most=3, budget=10**9) == [[1, 2, 0]]
    # (members + 1) x width x the newest member's length within the budget: 2 x 2 x 10 = 40 fits 40
    assert size_chunks([10, 10, 10], width=2, most=10, budget=40) == [[0, 1], [2]]
    assert size_chunks([10, 10, 10], width=2, most=10, budget=39) == [[0], [1], [2]]
    assert size_chunks([10, 10, 10, 10], width=1, most=10, budget=30) == [[0, 1, 2], [3]]
    assert size_chunks([100], width=5, most=1, budget=1) == [[0]]  # a chunk's first series always fits
    ties = [4] * 40 + [1] * 40
    assert size_chunks(ties, width=1, most=100, budget=10**9) == [list(range(40, 80)) + list(range(40))]
    assert size_chunks([], width=1, most=2, budget=10) == []


def test_fit_theta_names_the_models_it_knows():
    from tickcast.models.theta_models import MODELS, fit_theta

    with pytest.raises(ValueError) as info:
        fit_theta([np.arange(10.0)], model="nope")
    assert str(info.value) == f"theta model must be one of {MODELS}, got 'nope'"


def test_a_series_of_integers_is_fitted_as_float64():
    from tickcast.models.challenger import as_series

    y = as_series([1, 2, 4])
    assert y.dtype == np.float64 and y.tolist() == [1.0, 2.0, 4.0]
    model = AutoETS(season_length=1).fit(np.arange(1, 30) ** 2)  # integers in, float64 forecasts out
    assert model.predict(3).dtype == np.float64
