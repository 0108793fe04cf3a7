"""AutoForecaster: the published combination, its members, weights, intervals and bytes."""

from __future__ import annotations

import numpy as np
import pytest

from tickcast.models import AutoForecaster, RNNForecaster
from tickcast.models.auto import choose_period
from tickcast.models.combine import combine_forecasts, member_errors, member_weights, pooled_prior, screened_weights
from tickcast.models.config import ForecasterConfig
from tickcast.models.validation import continues_validation

FAST_RNN = {"ensemble": 1, "epochs": 2, "hidden_size": 8}


def series(n=60, m=12, seed=0, level=100.0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return level + 0.3 * t + 6 * np.sin(2 * np.pi * t / m) + rng.normal(0, 1.0, n)


@pytest.fixture(scope="module")
def fitted_many():
    ys = [series(60, 12, s) for s in range(4)] + [np.array([4.0, 5.0])]
    return ys, AutoForecaster(season_length=12, rnn=FAST_RNN).fit_many(ys)


def test_published_forecast_is_the_mean_of_its_members(fitted_many):
    ys, a = fitted_many
    for f, members, w, chosen in zip(a.predict_many(10), a.predict_members_many(10), a.weights_, a.chosen_):
        assert set(members) == set(w)
        taking = [k for k in members if w[k] > 0]
        # the seasonal naive benchmark takes part only where it beat the others on validation
        assert ("seasonal_naive" in taking) == chosen.endswith("with seasonal_naive")
        assert all(w[k] == pytest.approx(1 / len(taking)) for k in taking)
        np.testing.assert_allclose(f, np.mean([members[k] for k in taking], axis=0), rtol=1e-12)
        assert sum(w.values()) == pytest.approx(1.0)
    assert a.chosen_[0].startswith("mean") and a.across_


def test_a_series_too_short_for_the_rnn_is_forecast_by_the_others(fitted_many):
    ys, a = fitted_many
    assert "rnn" not in a.weights_[-1] and "rnn" in a.weights_[0]
    f = a.predict_many(5)[-1]
    assert np.all(np.isfinite(f))
    assert isinstance(a.members_["rnn"], RNNForecaster) and a.members_["rnn"].n_series_ == 4


def test_round_trip_is_identical(fitted_many):
    _, a = fitted_many
    b = AutoForecaster.from_bytes(a.to_bytes())
    for x, y in zip(a.predict_many(20), b.predict_many(20)):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(a.predict_interval_many(20, [0.8, 0.95]), b.predict_interval_many(20, [0.8, 0.95])):
        for (l1, u1), (l2, u2) in zip(x, y):
            np.testing.assert_array_equal(l1, l2)
            np.testing.assert_array_equal(u1, u2)
    assert b.weights_ == a.weights_ and b.chosen_ == a.chosen_ and b.backtests_ == a.backtests_
    with pytest.raises(ValueError):
        AutoForecaster.from_bytes(a.to_bytes()[:-10])
    with pytest.raises(ValueError):
        AutoForecaster.from_bytes(b"tickcast-rnn\n" + bytes(40))


def test_intervals_are_ordered_and_nested(fitted_many):
    _, a = fitted_many
    for f, ((lo80, up80), (lo95, up95)) in zip(a.predict_many(12), a.predict_interval_many(12, [0.8, 0.95])):
        assert np.all(lo95 <= lo80) and np.all(lo80 <= f) and np.all(f <= up80) and np.all(up80 <= up95)


def test_fit_per_series_and_odd_inputs():
    for y in [np.full(40, 5.0), np.array([1.0, 2.0, 3.0]), np.array([2.0]), -series(50, 4, 1), 1e9 * series(50, 4, 2)]:
        a = AutoForecaster(season_length=4, rnn=FAST_RNN).fit(y)
        f = a.predict(8)
        lo, up = a.predict_interval(8, 0.9)
        assert np.all(np.isfinite(f)) and np.all(lo <= f) and np.all(f <= up)
        assert set(a.predict_members(8)) == set(a.weights_[0])
        assert not a.across_


def test_bad_input_and_settings():
    with pytest.raises(ValueError):
        AutoForecaster(members=("rnn", "prophet"))
    with pytest.raises(ValueError):
        AutoForecaster(combination="vote")
    with pytest.raises(ValueError):
        AutoForecaster(rnn={"hidden_size": -1})
    with pytest.raises(ValueError):
        AutoForecaster(season_length=(24, 0))
    with pytest.raises(ValueError):
        AutoForecaster().fit([1.0, np.nan, 3.0])
    with pytest.raises(ValueError):
        AutoForecaster().fit_many([])
    with pytest.raises(RuntimeError):
        AutoForecaster().predict(3)


def test_several_seasonalities_a_longer_one_where_it_repeats_the_series_clearly_better():
    t = np.arange(24 * 7 * 4)
    rng = np.random.default_rng(3)
    daily = 100 + 10 * np.sin(2 * np.pi * t / 24)
    weekend = 5.0 * (t // 24 % 7 >= 5)
    # weather-like: a daily cycle on a wandering level, the same on every weekday
    wandering = daily + np.cumsum(rng.normal(0, 0.1, t.size))
    assert choose_period(wandering, (24, 168)) == 24
    assert choose_period(wandering + weekend, (24, 168)) == 168  # weekends differ: a week repeats it
    assert choose_period((wandering + weekend)[: 24 * 20], (24, 168)) == 24  # fewer than 3 weeks
    assert choose_period(np.zeros(30), (24, 168)) == 1
    assert choose_period(np.zeros(24 * 30), (24, 168)) == 24  # a tie keeps the shorter
    # the gain needed is a fifth: by hand, the weekly changes against the daily ones on the same points
    ratios = []
    for c in np.linspace(0.0, 15.0, 151):
        y = wandering + c * weekend / 5
        r = np.mean(np.abs(y[168:] - y[:-168])) / np.mean(np.abs(y[168:] - y[144:-24]))
        ratios.append(r)
        assert choose_period(y, (24, 168)) == (168 if r < 0.8 else 24), r
    assert min(ratios) < 0.75 and max(ratios) > 0.85 and any(0.8 <= r < 0.85 for r in ratios)
    y = 100 + 10 * np.sin(2 * np.pi * t / 24) + weekend + rng.normal(0, 1, t.size)
    a = AutoForecaster(season_length=(24, 168), members=("ets", "theta", "seasonal_naive")).fit(y[:-48])
    assert a.season_length_ == 168
    f = a.predict(48)
    assert np.mean(np.abs(f - y[-48:])) < 0.5 * np.mean(np.abs(y[-49] - y[-48:]))  # far better than naive


def test_combination_rules():
    errors = np.array([[1.0, 2.0, 4.0], [2.0, 2.0, np.nan]])
    avail = np.array([[True, True, True], [True, True, False]])
    W, chosen = member_weights(errors, avail, "inverse", 0.0, pooled=False)
    np.testing.assert_allclose(W[0], np.array([4, 2, 1]) / 7)
    np.testing.assert_allclose(W[1], [0.5, 0.5, 0.0])
    W, _ = member_weights(errors, avail, "inverse", 1.0, pooled=False)
    np.testing.assert_allclose(W[0], [1 / 3] * 3)
    W, _ = member_weights(errors, avail, "select", 0.0, pooled=False)
    np.testing.assert_array_equal(W[0], [1, 0, 0])
    F = np.array([[1.0, 2.0], [3.0, 4.0], [10.0, 10.0]])
    np.testing.assert_allclose(combine_forecasts(F, np.ones(3) / 3, "median"), [3.0, 4.0])
    np.testing.assert_allclose(combine_forecasts(F, np.array([1.0, 1.0, 0.0]), "mean"), [2.0, 3.0])
    many = np.tile([1.0, 2.0, 4.0], (20, 1))
    np.testing.assert_allclose(pooled_prior(many, np.ones_like(many, dtype=bool)), np.array([4, 2, 1]) / 7)


def test_member_errors_use_known_targets_only():
    y = np.arange(10.0)
    F = np.tile(np.arange(8.0, 11.0), (2, 1))  # origins 8 and 9, three steps
    e = member_errors(y, 8, [F, None])
    assert e[0] == pytest.approx((0 + 0 + 1) / 3)  # targets 8, 9 from origin 8 (exact); 9 from 9 (off by 1)
    assert np.isnan(e[1])


def test_per_series_a_member_training_never_helped_on_a_long_series_is_not_trained_again():
    """Series of 1,450 points: long enough for the evidence (the validation model's held-out part
    holds 260 windows, 32 stretches of 8 steps), short enough that the final fit starts again."""
    t = np.arange(1450)
    walks = [100 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.01, t.size))) for seed in (4, 1)]
    pattern = 100 + 10 * np.sin(2 * np.pi * t / 5) + np.random.default_rng(5).normal(0, 1, t.size)  # learnt
    short = 100 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.01, 400)))
    cases = {"walk": walks[0], "walk 1": walks[1], "pattern": pattern, "short walk": short}
    trained = {}
    for name, y in cases.items():
        a = AutoForecaster(season_length=1).fit(y)
        assert not continues_validation(a._splits[0], y.size)
        val = RNNForecaster(season_length=1).fit(y[: a._splits[0]])  # the validation fit, as fit makes it
        never = [min(r["val_loss"] for r in h[1:]) >= h[0]["val_loss"] for h in val.histories_]
        long_enough = name != "short walk"  # 1,600 held-out windows of 8 steps; 400 points hold 10 stretches
        caps = [0 if n and long_enough else ForecasterConfig().epochs for n in never]
        expected = RNNForecaster(season_length=1).fit(y, epochs=caps)
        rnn = a.members_["rnn"]
        assert not rnn.warm_started_ and a.history_ == rnn.history_ and a.n_epochs_ == rnn.n_epochs_
        np.testing.assert_array_equal(rnn.predict(5), expected.predict(5))
        for got, want in zip(rnn.histories_, expected.histories_):
            assert got == want
        trained[name] = ([len(h) - 1 for h in rnn.histories_], never)
    assert trained["walk"] == ([0, 0, 0], [True] * 3)  # not one epoch on the whole series
    epochs, never = trained["walk 1"]
    assert never == [False, True, True] and epochs[1:] == [0, 0] and epochs[0] > 0  # member by member
    assert min(trained["pattern"][0]) > 0 and not any(trained["pattern"][1])
    assert min(trained["short walk"][0]) > 0 and any(trained["short walk"][1])  # too little evidence to skip


def test_per_series_the_final_rnn_continues_the_validation_model_when_that_saw_nine_tenths():
    """On 2,000 points the validation fit sees 1,850: the final RNN is that model fine-tuned on the
    whole series (a warm start: members whose training never helped carried over as they are),
    with or without an epochs setting; AutoForecaster.fit_each does the same."""
    t = np.arange(2000)
    walk = 100 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.01, t.size)))
    pattern = 100 + 10 * np.sin(2 * np.pi * t / 5) + np.random.default_rng(5).normal(0, 1, t.size)
    for y, epochs in ((walk, None), (pattern, None), (pattern, 2)):
        a = AutoForecaster(season_length=1).fit(y, epochs=epochs)
        split = a._splits[0]
        assert continues_validation(split, y.size) and split == 1850
        val = RNNForecaster(season_length=1).fit(y[:split], epochs=epochs)
        expected = RNNForecaster(season_length=1).fit(y, warm_start=val, epochs=epochs)
        rnn = a.members_["rnn"]
        assert rnn.warm_started_
        np.testing.assert_array_equal(rnn.predict(5), expected.predict(5))
        assert rnn.histories_ == expected.histories_
        # what the fit reports (and the service stores) is the training from scratch: the
        # validation model's record, kept through bytes; a warm start reports its own fine-tune
        assert a.history_ == val.history_ and (a.n_epochs_, a.best_epoch_) == (val.n_epochs_, val.best_epoch_)
        again = AutoForecaster.from_bytes(a.to_bytes())
        assert again.history_ == val.history_ and again.n_epochs_ == val.n_epochs_
        warm = AutoForecaster(season_length=1).fit(np.r_[y, y[-1]], warm_start=again)
        assert warm.history_ == warm.members_["rnn"].history_ != val.history_
        fine_tuned = [len(h) - 1 for h in rnn.histories_]
        if y is walk:  # every member's training found nothing: carried over untrained
            assert fine_tuned == [0, 0, 0]
        else:
            assert min(fine_tuned) > 0 and max(fine_tuned) <= (epochs or ForecasterConfig().warm_epochs)
    (each,) = AutoForecaster(season_length=1).fit_each([pattern], seeds=[0])
    np.testing.assert_array_equal(each.predict(5), AutoForecaster(season_length=1).fit(pattern).predict(5))


def test_epochs_per_member():
    y = series(120, 12, 3)
    m = RNNForecaster(season_length=12, ensemble=3, hidden_size=8, epochs=4).fit(y, epochs=[0, 2, 5])
    assert [len(h) for h in m.histories_][0] == 1
    assert len(m.histories_[1]) <= 3 and len(m.histories_[2]) <= 6
    same = RNNForecaster(season_length=12, ensemble=3, hidden_size=8).fit(y, epochs=(2, 2, 2))
    np.testing.assert_array_equal(
        same.predict(6), RNNForecaster(season_length=12, ensemble=3, hidden_size=8).fit(y, epochs=2).predict(6)
    )
    for bad in ([1, 2], [1, -1, 2], [1, 1.5, 2], [True, 1, 1], "3"):
        with pytest.raises(ValueError, match="epochs"):
            RNNForecaster(season_length=12, ensemble=3, hidden_size=8).fit(y, epochs=bad)


def test_which_final_fits_continue_the_validation_fit():
    assert continues_validation(900, 1000) and continues_validation(1350, 1500)  # nine tenths: continues
    assert not continues_validation(899, 1000) and not continues_validation(1000, 1000)  # none held out


def test_benchmarks_join_a_series_combination_only_where_they_beat_it_on_validation():
    # validation part: origins 3, 4 and 5, enough to judge a benchmark on (MIN_BLOCKS); the members
    # taking part stay within a quarter of the best, so none is ruled out (the screening alone)
    y = np.array([0.0, 0.0, 0.0, 10.0, 10.0, 10.0])
    split, names = 3, ["ets", "theta", "seasonal_naive", "naive"]

    def const(v):
        return np.full((3, 1), v)  # one-step forecasts from the 3 origins

    # the combination of ets and theta (mean 9.0) errs by 1.0; seasonal naive by 0.9, naive by 1.0 (a tie)
    Fs = [[const(8.9), const(9.1), const(10.9), const(9.0)]]
    errors = np.array([member_errors(y, split, F) for F in Fs])
    np.testing.assert_allclose(errors[0], [1.1, 0.9, 0.9, 1.0])
    avail = np.ones((1, 4), dtype=bool)
    W, chosen = screened_weights([y], [split], Fs, errors, avail, names, "mean", 0.5, pooled=False)
    np.testing.assert_allclose(W[0], [1 / 3, 1 / 3, 1 / 3, 0.0])  # the tie stays out
    assert chosen == ["mean with seasonal_naive"]
    # the same from two validation origins: too few to judge a benchmark on, so none joins
    short = [[F[:2] for F in Fs[0]]]
    W_short, chosen_short = screened_weights([y[:5]], [split], short, errors, avail, names, "mean", 0.5, False)
    np.testing.assert_allclose(W_short[0], [0.5, 0.5, 0.0, 0.0])
    assert chosen_short == ["mean"]
    # the median of the members taking part: the naive forecast of weight 0 is not among them
    F = np.array([[1.0], [2.0], [100.0], [-50.0]])
    assert combine_forecasts(F, W[0], "median")[0] == 2.0
    assert combine_forecasts(F, W[0], "mean")[0] == pytest.approx(103 / 3)
    # worse than the combination: out, weight 0; the rule's weights of the others unchanged
    Fs = [[const(8.8), const(11.0), const(5.0), const(9.0)]]
    errors = np.array([member_errors(y, split, F) for F in Fs])
    W, chosen = screened_weights([y], [split], Fs, errors, avail, names, "inverse", 0.0, pooled=False)
    np.testing.assert_allclose(W[0], [5 / 11, 6 / 11, 0.0, 0.0])  # inverse of (1.2, 1): their combination is exact
    assert chosen == ["inverse"]
    # a series without a validation part: the members without the benchmarks
    W, chosen = screened_weights([y], [6], Fs, np.full((1, 4), np.nan), avail, names, "mean", 0.5, pooled=False)
    np.testing.assert_allclose(W[0], [0.5, 0.5, 0.0, 0.0])
    # only benchmarks: nothing to screen them against (and neither is a quarter behind the other)
    Fb = [[const(10.9), const(9.0)]]
    eb = np.array([member_errors(y, split, F) for F in Fb])
    W, _ = screened_weights([y], [split], Fb, eb, avail[:, 2:], names[2:], "mean", 0.5, False)
    np.testing.assert_allclose(W[0], [0.5, 0.5])
    with pytest.raises(ValueError, match="^combine_forecasts: no member has a positive weight$"):
        combine_forecasts(F, np.zeros(4), "mean")


def test_where_yesterday_repeats_today_the_seasonal_naive_forecast_joins_and_the_others_are_ruled_out():
    """A daily cycle whose shape drifts from day to day (as a season's daylight does): yesterday
    is nearly today, the smoothing models' seasonal indices (averaged over weeks) lag, and the
    network of two epochs has not learnt it. Validation rules them out, and the published forecast
    is the seasonal naive one. On a trending series the seasonal naive forecast stays out."""
    t = np.arange(24 * 7 * 5 + 48)
    rng = np.random.default_rng(5)
    drift = t / t[-1]
    drifting = 60 + (20 + 10 * drift) * np.sin(2 * np.pi * (t / 24 - 0.1 * drift)) + 0.05 * rng.normal(size=t.size)
    trending = 100 + 0.5 * t + 5 * np.sin(2 * np.pi * t / 24) + rng.normal(0, 0.5, t.size)
    ys = [drifting[:-48], trending[:-48]]
    a = AutoForecaster(season_length=24, rnn=FAST_RNN).fit_many(ys)
    w_drift, w_trend = a.weights_
    assert a.chosen_[0] == "mean with seasonal_naive without rnn, ets, theta"
    assert w_drift == {"rnn": 0.0, "ets": 0.0, "theta": 0.0, "seasonal_naive": 1.0}
    f = a.predict_many(48)
    np.testing.assert_array_equal(f[0], np.tile(ys[0][-24:], 2))
    members = a.predict_members_many(48)
    test = drifting[-48:]
    mean_of_all = np.mean([members[0][k] for k in members[0]], axis=0)
    assert np.mean(np.abs(f[0] - test)) < 0.2 * np.mean(np.abs(mean_of_all - test))
    # the trending series: seasonal naive out; whatever else is out is named, the rest share equally
    assert w_trend["seasonal_naive"] == 0.0 and "with seasonal_naive" not in a.chosen_[1]
    out = [k for k in ("rnn", "ets", "theta") if w_trend[k] == 0]
    assert len(out) < 3 and a.chosen_[1] == "mean" + (f" without {', '.join(out)}" if out else "")
    assert all(w_trend[k] == pytest.approx(1 / (3 - len(out))) for k in ("rnn", "ets", "theta") if k not in out)
    for g, m, w in zip(f, members, a.weights_):
        np.testing.assert_allclose(g, sum(w[k] * m[k] for k in w), rtol=1e-12)
    np.testing.assert_array_equal(
        members[1]["seasonal_naive"], np.tile(ys[1][-24:], 2)
    )  # still forecast, for the ledger
