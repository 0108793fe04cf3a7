"""service/run/published.py: what the train stage reads from a fitted AutoForecaster (each series'
forecast, intervals, members, combination and scale) against the model itself, and which stored
blobs it can continue."""

from __future__ import annotations

import numpy as np
import pytest

from tickcast.models import AutoForecaster, RNNForecaster
from tickcast.service.run import published

RNN = {"hidden_size": 4, "ensemble": 1, "epochs": 2}


def series():
    t = np.arange(40.0)
    walk = 50 * np.exp(np.cumsum(np.random.default_rng(1).normal(0.002, 0.02, 40)))
    return [walk, 20.0 + 3.0 * t + np.random.default_rng(2).normal(0, 0.2, 40), np.array([5.0, 6.0])]


def test_each_series_forecast_is_read_with_its_own_scale_members_and_combination():
    ys = series()
    model = published.forecaster({"season_length": 1, "seed": 0, **RNN}, ("rnn", "ets", "naive"))
    model = published.fit(model, ys, None, across=True)
    out = published.forecasts(model, 4, (0.8, 0.95))
    assert [f.transform for f in out] == model.transforms_ == ["log", "linear", None]  # the last: too short
    points, members = model.predict_many(4), model.predict_members_many(4)
    for i, f in enumerate(out):
        assert f.point == [float(v) for v in points[i]]
        lo, hi = model.predict_interval_many(4, level=[0.8, 0.95])[i][1]
        assert f.intervals[0.95] == ([float(v) for v in lo], [float(v) for v in hi])
        assert set(f.members) == set(members[i]) and f.members["ets"].point == [float(v) for v in members[i]["ets"]]
        assert f.combination == {"weights": model.weights_[i], "rule": model.chosen_[i]}
        assert f.backtest == model.backtests_[i]
    assert "rnn" not in out[2].members and "rnn" in out[0].members
    assert published.history(model) == model.history_ != []
    assert published.epochs(model) == (model.n_epochs_, model.best_epoch_, "log")
    alone = published.fit(
        published.forecaster({"season_length": 1, "seed": 0, **RNN}, ("ets", "naive")), ys[0], None, False
    )
    assert published.history(alone) == [] and published.epochs(alone) == (None, None, None)
    assert [f.transform for f in published.forecasts(alone, 2, (0.8,))] == [None]


def test_only_a_combination_can_be_continued():
    y = series()[0]
    auto = AutoForecaster(season_length=1, members=("ets", "naive")).fit(y)
    again = published.load(auto.to_bytes())
    np.testing.assert_array_equal(again.predict(3), auto.predict(3))
    old = RNNForecaster(season_length=1, **RNN).fit(y).to_bytes()  # stored before combinations were published
    with pytest.raises(ValueError) as e:
        published.load(old)
    assert str(e.value) == "the stored model is an RNN alone, from before the published combination"
    for damaged in (b"not a model", old[:40]):
        with pytest.raises(Exception) as want:
            RNNForecaster.from_bytes(damaged)
        with pytest.raises(type(want.value)) as got:
            published.load(memoryview(damaged))
        assert str(got.value) == str(want.value)  # a damaged blob says what is wrong with it
