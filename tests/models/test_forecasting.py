"""Forecasts: accuracy against the naive forecast, intervals, warm starts."""

import numpy as np
import pytest

from tickcast.models import RNNForecaster
from tickcast.models.metrics import mase

# The bundled S&P 500 closes are close to a random walk: the RNN may not beat the naive
# forecast, but its one-step MASE on the last 250 trading days must stay within 2% of it.
SP500_MARGIN = 1.02


def _one_step(m, y, start):
    """One-step forecasts for y[start:], each from the history before it (weights fixed)."""
    return np.array([m.predict(1, y=y[:k])[0] for k in range(start, y.size)])


def test_beats_naive_on_a_noisy_seasonal_series(make_series):
    y = make_series("sine", 400, seed=3)
    m = RNNForecaster().fit(y[:352])
    rnn = mase(y[352:], _one_step(m, y, 352), y[:352])
    naive = mase(y[352:], y[351:-1], y[:352])
    assert rnn < 0.75 * naive, (rnn, naive)
    # and over a whole season ahead, feeding its own predictions back
    assert mase(y[352:376], m.predict(24, y=y[:352]), y[:352]) < naive


def test_does_not_lose_to_naive_on_sp500(sp500_close):
    y = sp500_close[-2500:]
    m = RNNForecaster().fit(y[:-250])
    assert m.transform_ == "log"
    rnn = mase(y[-250:], _one_step(m, y, y.size - 250), y[:-250])
    naive = mase(y[-250:], y[-251:-1], y[:-250])
    assert rnn <= SP500_MARGIN * naive, (rnn, naive)


@pytest.mark.parametrize("level,transform", [(0.0, "linear"), (50.0, "log")])
def test_intervals_cover_their_level_on_held_out_ar1(make_series, level, transform):
    """80% intervals, 1 and 3 steps ahead, 497 held-out origins: coverage 0.80 +- 0.07
    (binomial sd ~0.018; the rest is slack for 150 calibration residuals)."""
    y = make_series("ar1", 1500, seed=0, phi=0.7, level=level)
    m = RNNForecaster(season_length=1).fit(y[:1000])
    assert m.transform_ == transform
    hits1, hits3 = [], []
    for k in range(1000, y.size - 2):
        lower, upper = m.predict_interval(3, level=0.8, y=y[:k])
        hits1.append(lower[0] <= y[k] <= upper[0])
        hits3.append(lower[2] <= y[k + 2] <= upper[2])
    assert abs(np.mean(hits1) - 0.8) < 0.07 and abs(np.mean(hits3) - 0.8) < 0.07


def test_intervals_bracket_the_forecast_and_widen_with_level(make_series):
    y = make_series("walk", 600, seed=8)
    m = RNNForecaster().fit(y)
    assert m.horizon_ < 30  # beyond the read-out's K steps forecasts continue from themselves
    point = m.predict(30)
    lo80, up80 = m.predict_interval(30, level=0.8)
    lo95, up95 = m.predict_interval(30, level=0.95)
    assert lo80.shape == up80.shape == point.shape == (30,)
    assert np.all(lo80 <= point) and np.all(point <= up80)
    assert np.all(lo95 <= lo80) and np.all(up80 <= up95) and np.any(up95 > up80)
    assert up80[-1] - lo80[-1] > up80[0] - lo80[0]  # beyond the stored horizon it keeps growing
    with pytest.raises(ValueError, match="level"):
        m.predict_interval(3, level=1.5)


def test_a_short_series_gets_wider_intervals_at_a_higher_level_at_every_step(make_series):
    """A short series holds few validation residuals per step (fewer than the 19 a conformal 95 %
    quantile needs): the 95 % interval is the Gaussian one there, wider than the 80 % one at every
    step, not the largest residual for both."""
    from tickcast.models.intervals import floored_half_widths, half_widths

    y = make_series("walk", 40, seed=3)
    m = RNNForecaster(season_length=1).fit(y)
    h = 6
    assert m._counts[0] < 19  # the case: too few residuals for a conformal 95 % quantile
    lo80, up80 = m.predict_interval(h, level=0.8)
    lo95, up95 = m.predict_interval(h, level=0.95)
    assert np.all(up95 - lo95 > up80 - lo80)
    # the widths come from the floored half-widths (equal to the conformal ones where enough residuals)
    plain = half_widths(m._Q, m._counts, h, 0.95)
    floored = floored_half_widths(m._Q, m._counts, h, 0.95)
    assert np.all(floored >= plain) and np.any(floored > plain)


def test_backtest_scores_the_validation_part_against_naive(make_series):
    y = make_series("sine", 300, seed=9)
    m = RNNForecaster().fit(y)
    bt = m.backtest_
    for key in ("n", "mae", "rmse", "smape", "mase", "naive_mae", "naive_rmse", "naive_smape", "naive_mase"):
        assert bt[key] is not None and np.isfinite(bt[key]), key
    assert bt["n"] == round(0.2 * (y.size - 1))  # one-step forecasts of the validation part
    assert bt["mase"] == pytest.approx(bt["mae"] / bt["mase_scale"])
    assert bt["naive_mae"] == pytest.approx(np.mean(np.abs(np.diff(y[-bt["n"] - 1 :]))))
    assert bt["mase"] < bt["naive_mase"]


def test_warm_start_fine_tunes_from_the_previous_weights(make_series):
    y = make_series("sine", 1300, seed=10, noise=0.5)
    prev = RNNForecaster(season_length=1).fit(y[:-1])
    warm = RNNForecaster(season_length=1).fit(y, warm_start=prev, epochs=2)
    assert warm.warm_started_ and warm.n_epochs_ == 2 and len(warm.history_) == 3
    assert warm.transform_ == prev.transform_ and warm._preps[0].scale == prev._preps[0].scale
    # the fine-tune starts from the previous weights, not a fresh init, and moves them (a member
    # whose fine-tune never lowered its training loss keeps them exactly, as early stopping does)
    assert any(after.best_epoch > 0 for after in warm._members)
    for before, after in zip(prev._members, warm._members):
        moved = np.abs(after.flat - before.flat).max()
        assert moved == 0 if after.best_epoch == 0 else 0 < moved < 0.5 * np.abs(before.flat).max()
    fresh = RNNForecaster(season_length=1, epochs=0, val_fraction=0.0).fit(y)
    assert warm.history_[0]["train_loss"] < 0.9 * fresh.history_[0]["train_loss"]
    assert np.all(np.isfinite(warm.predict(5)))
    # intervals and backtest are carried over; the interval widths follow the newest data
    assert warm.backtest_ == prev.backtest_
    # epochs=0 keeps the previous weights exactly: same forecast from the same history
    same = RNNForecaster(season_length=1).fit(y, warm_start=prev, epochs=0)
    np.testing.assert_array_equal(same.predict(3, y=y[:-1]), prev.predict(3))


def test_a_warm_start_keeps_a_member_whose_read_out_was_never_trained(make_series):
    """On a random walk the cold fit's validation finds no epoch better than the untrained network
    (its read-out forecasts the drift): fine-tuned without validation on the newest windows it
    would fit their noise, so a warm start carries it over unchanged; ``epochs`` still trains it."""
    rng = np.random.default_rng(3)
    y = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 1200)))
    prev = RNNForecaster(seed=1).fit(y[:1000])
    assert all(not np.any(m.params["Why"]) for m in prev._members)  # the untrained read-out, kept
    warm = RNNForecaster(seed=1).fit(y[:1001], warm_start=prev)
    assert warm.warm_started_ and warm.n_epochs_ == 0 and [r["epoch"] for r in warm.history_] == [0]
    for before, after in zip(prev._members, warm._members):
        np.testing.assert_array_equal(after.flat, before.flat)
    np.testing.assert_array_equal(warm.predict(5), prev.predict(5, y=y[:1001]))
    asked = RNNForecaster(seed=1).fit(y[:1001], warm_start=prev, epochs=2)
    assert asked.n_epochs_ == 2 and len(asked.history_) == 3


def test_warm_start_must_match_the_architecture(make_series):
    y = make_series("walk", 400, seed=11)
    prev = RNNForecaster(hidden_size=16).fit(y)
    with pytest.raises(ValueError, match="hidden_size"):
        RNNForecaster(hidden_size=32).fit(y, warm_start=prev)
    with pytest.raises(ValueError, match="horizon"):
        RNNForecaster(hidden_size=16, horizon=3).fit(y, warm_start=prev)
    with pytest.raises(ValueError, match="transform"):
        RNNForecaster(hidden_size=16, transform="linear").fit(y, warm_start=prev)
    with pytest.raises(ValueError, match="fitted"):
        RNNForecaster().fit(y, warm_start=RNNForecaster())
    with pytest.raises(ValueError, match="1 series, not 2"):
        RNNForecaster(hidden_size=16).fit_many([y, y], warm_start=prev)


@pytest.mark.parametrize("across", [False, True])
def test_predict_histories_is_predict_after_each_history(make_series, across):
    """The validation forecasts from every origin come from one batched computation: each row is
    ``predict(h, y)`` for its history, per-series and across-series models alike, in order."""
    y = make_series("sine", 260, seed=3)
    fast = {"epochs": 2, "hidden_size": 8, "ensemble": 2, "seed": 4}
    m = RNNForecaster(**fast).fit_many([y, 1.5 * y[::-1] + 10]) if across else RNNForecaster(**fast).fit(y)
    histories = [y[:t] for t in (200, 259, 230, 260)]
    rows = m.predict_histories(4, histories)
    assert rows.shape == (4, 4)
    np.testing.assert_array_equal(rows, np.array([m.predict(4, y=h) for h in histories]))
    assert not np.array_equal(rows[0], rows[1])
    assert m.predict_histories(3, []).shape == (0, 3)
