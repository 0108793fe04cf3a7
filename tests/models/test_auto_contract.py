"""AutoForecaster in detail: what it stores (backtests, weights, settings) equals what its members
computed, the settings reach the members, and bad calls fail with the message that says why."""

from __future__ import annotations

import numpy as np
import pytest

import tickcast.models.auto as auto
from tickcast.models import AutoForecaster, RNNForecaster, TrainingDiverged
from tickcast.models.auto import choose_period
from tickcast.models.challenger import backtest
from tickcast.models.combine import member_errors, member_weights
from tickcast.models.conformal import Conformal, random_walk_residuals

FAST_RNN = {"ensemble": 1, "epochs": 2, "hidden_size": 8}


def series(n=60, m=12, seed=0, level=100.0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return level + 0.3 * t + 6 * np.sin(2 * np.pi * t / m) + rng.normal(0, 1.0, n)


class Seen(AutoForecaster):
    """An AutoForecaster that keeps the members' validation forecasts it learnt its weights from."""

    def _learn_weights(self, ys, splits, validation):
        self.seen = {name: list(forecasts) for name, forecasts in validation.items()}
        super()._learn_weights(ys, splits, validation)


def assert_same_scores(got: dict, want: dict):
    assert set(got) == set(want)
    for key, value in want.items():
        assert got[key] == (None if value is None else pytest.approx(value, rel=1e-12)), key


def test_backtests_are_scored_on_the_median_of_the_members_that_take_part():
    """combination="median": each series' backtest is the one-step score of the median of the
    validation forecasts of its members with a positive weight (not their mean, not the benchmark
    screened out); a series with no validation part gets the empty backtest."""
    ys = [series(60, 12, s) for s in range(3)] + [np.array([4.0, 5.0, 4.5])]
    a = Seen(season_length=12, combination="median", rnn=FAST_RNN).fit_many(ys)
    checked = 0
    for i, y in enumerate(ys):
        split = a.members_["ets"].validation_[i][0]
        taking = [name for name, w in a.weights_[i].items() if w > 0]
        if split < y.size:
            assert len(taking) == 3 and a.weights_[i]["seasonal_naive"] == 0.0  # screened out: a median of three
            want = backtest(y, split, np.median([a.seen[name][i] for name in taking], axis=0))
            checked += 1
        else:
            want = backtest(y, y.size, None)
            assert want["n"] == 0
        assert_same_scores(a.backtests_[i], want)
    assert checked == 3


def test_inverse_weights_after_fit_many_are_shrunk_towards_the_pooled_prior():
    """combination="inverse": the weights are the members' inverse validation errors, shrunk by
    ``shrinkage`` towards the weights the pooled errors of all series give (fit_many), as
    ``combine.member_weights`` computes them from the members' own validation forecasts."""
    ys = [series(60, 12, s) for s in range(12)]  # at least MIN_POOLED_SERIES for a pooled prior
    members = ("rnn", "ets", "theta")  # no benchmark to screen; validation parts too short to rule out
    for shrinkage in (0.0, 1.0):
        a = Seen(season_length=12, combination="inverse", shrinkage=shrinkage, members=members, rnn=FAST_RNN)
        a.fit_many(ys)
        errors = np.array([member_errors(y, a._splits[i], [a.seen[n][i] for n in members]) for i, y in enumerate(ys)])
        W, _ = member_weights(errors, np.ones_like(errors, dtype=bool), "inverse", shrinkage, pooled=True)
        for i in range(len(ys)):
            np.testing.assert_allclose([a.weights_[i][n] for n in members], W[i], rtol=1e-12)
    # shrinkage 1: every series gets the pooled prior, which is not equal weights
    np.testing.assert_allclose(W, np.tile(W[0], (len(ys), 1)), rtol=1e-12)
    assert not np.allclose(W[0], 1 / 3)


def test_the_rnn_member_gets_the_settings_and_the_seed():
    y = series(60, 12, 1)
    a = AutoForecaster(season_length=12, seed=3, rnn={**FAST_RNN, "lr": 1e-3}).fit(y)
    params = a.members_["rnn"].get_params()
    assert (params["seed"], params["hidden_size"], params["ensemble"], params["lr"], params["season_length"]) == (
        3,
        8,
        1,
        1e-3,
        12,
    )
    expected = RNNForecaster(season_length=12, seed=3, **{**FAST_RNN, "lr": 1e-3})
    assert a.members_["rnn"].get_params() == expected.get_params()


def test_the_period_detected_or_given_and_the_horizon_it_gives():
    t = np.arange(72)
    monthly = 100 + np.random.default_rng(9).normal(0, 5, 12)[t % 12] + np.random.default_rng(2).normal(0, 1, t.size)
    detected = AutoForecaster(rnn=FAST_RNN).fit(monthly)  # season_length 0: detect per series
    assert detected.season_length_ == 12 and detected.horizon_ == 18
    short = AutoForecaster(season_length=12, rnn=FAST_RNN).fit(series(30, 12, 2))  # under three seasons
    assert short.season_length_ == 12 and short.horizon_ == 18  # told the period: kept, with its horizon
    several = AutoForecaster(season_length=(24, 168), rnn=FAST_RNN).fit(series(60, 24, 2))
    assert several.season_length_ == 1 and several.horizon_ == 8  # not three days: no period


def test_choose_period_needs_exactly_three_full_seasons():
    rng = np.random.default_rng(0)
    assert choose_period(rng.normal(size=72), (24,)) == 24
    assert choose_period(rng.normal(size=71), (24,)) == 1


def test_settings_round_trip_through_get_params_and_repr():
    a = AutoForecaster(season_length=12)
    assert a.get_params()["season_length"] == 12
    assert repr(a) == (
        "AutoForecaster(season_length=12, seed=0, horizon=0, members=['rnn', 'ets', 'theta', 'seasonal_naive'], "
        "combination='mean', shrinkage=0.5, rnn={})"
    )
    b = AutoForecaster(season_length=(24, 168), seed=2, rnn=FAST_RNN)
    assert b.get_params()["season_length"] == [24, 168]
    assert AutoForecaster(**b.get_params()).get_params() == b.get_params()
    assert "season_length=[24, 168], seed=2" in repr(b)


def test_a_warm_start_with_other_settings_says_which_and_how():
    ys = [series(60, 12, s) for s in range(2)]
    prev = AutoForecaster(season_length=12, rnn=FAST_RNN).fit_many(ys)
    with pytest.raises(ValueError) as e:
        AutoForecaster(season_length=12, combination="median", rnn=FAST_RNN).fit_many(ys, warm_start=prev)
    assert str(e.value) == "warm_start model differs in {'combination': ('mean', 'median')} (theirs, ours)"
    with pytest.raises(ValueError) as e:
        AutoForecaster(season_length=12, rnn={**FAST_RNN, "hidden_size": 4}).fit_many(ys, warm_start=prev)
    assert str(e.value) == "warm_start model differs in {'rnn.hidden_size': (8, 4)} (theirs, ours)"
    # the seed aside: another seed warm-starts
    AutoForecaster(season_length=12, seed=5, rnn=FAST_RNN).fit_many(ys, warm_start=prev)
    with pytest.raises(ValueError) as e:
        AutoForecaster(season_length=12, rnn=FAST_RNN).fit(ys[0], warm_start=prev)
    assert str(e.value) == "warm_start model was fitted with fit_many: use that"
    single = AutoForecaster(season_length=12, rnn=FAST_RNN).fit(ys[0])
    with pytest.raises(ValueError) as e:
        AutoForecaster(season_length=12, rnn=FAST_RNN).fit_many([ys[0]], warm_start=single)
    assert str(e.value) == "warm_start model was fitted with fit: use that"
    for bad in (AutoForecaster(season_length=12), RNNForecaster()):
        with pytest.raises(ValueError) as e:
            AutoForecaster(season_length=12).fit(ys[0], warm_start=bad)
        assert str(e.value) == "warm_start must be a fitted AutoForecaster"


def test_bad_calls_say_what_is_wrong():
    y = series(40, 4, 0)
    a = AutoForecaster(season_length=4, rnn=FAST_RNN)
    for call in (
        lambda: a.fit(y, epochs=-1),
        lambda: a.fit_many([y], epochs=-1),
        lambda: a.fit_each([y], epochs=-1),
        lambda: a.fit_many_part([y], 0, 2, epochs=-1),
    ):
        with pytest.raises(ValueError) as e:
            call()
        assert str(e.value) == "epochs must be a non-negative integer, got -1"
    with pytest.raises(ValueError) as e:
        a.fit_many([y, [1.0, np.nan]])
    assert str(e.value) == "series 1 contains NaN or infinite values; drop or fill them first"
    with pytest.raises(ValueError) as e:
        a.fit_many([])
    assert str(e.value) == "fit_many needs at least one series"
    with pytest.raises(ValueError) as e:
        a.fit_each([y], errors="ignore")
    assert str(e.value) == "errors must be 'raise' or 'return', got 'ignore'"
    for seed in (-1, True, 1.5):
        with pytest.raises(ValueError) as e:
            a.fit_each([y], seeds=[seed])
        assert str(e.value) == f"seeds must be integers >= 0, got {seed!r}"


def test_across_series_every_final_member_trains_even_where_training_never_helped_validation():
    """The per-series rule that leaves a member untrained in the final fit when its training never
    helped the validation model on a long series (test_auto) is not applied across series: there
    every member's final fit runs as usual (early stopping on its own held-out part)."""
    walk = 100 * np.exp(np.cumsum(np.random.default_rng(4).normal(0, 0.01, 1450)))  # per series: [0, 0, 0]
    a = AutoForecaster(season_length=1).fit_many([walk])
    assert min(len(h) - 1 for h in a.members_["rnn"].histories_) > 0


def test_bad_settings_say_what_is_wrong():
    cases = {
        "season_length must be an integer >= 0, got -1": dict(season_length=-1),
        "season_length must be an integer >= 0, got True": dict(season_length=True),
        "season_length must be an integer >= 0, got 1.5": dict(season_length=(24, 1.5)),
        "seed must be an integer >= 0, got -2": dict(seed=-2),
        "horizon must be an integer >= 0, got -3": dict(horizon=-3),
        "season_length must be one integer >= 0 or several >= 1, got (24, 0)": dict(season_length=(24, 0)),
        "season_length must be one integer >= 0 or several >= 1, got ()": dict(season_length=()),
        "members must be distinct names from ('rnn', 'ets', 'theta', 'naive', 'seasonal_naive'), "
        "got ('ets', 'ets')": dict(members=("ets", "ets")),
        "combination must be one of ('median', 'mean', 'inverse', 'select'), got 'vote'": dict(combination="vote"),
        "season_length must be at most 400": dict(season_length=(24, 401)),  # the RNN's limit
        "shrinkage must be in [0, 1], got 1.5": dict(shrinkage=1.5),
        "shrinkage must be in [0, 1], got -0.1": dict(shrinkage=-0.1),
        "shrinkage must be in [0, 1], got True": dict(shrinkage=True),
        "rnn settings may not include season_length, seed: the AutoForecaster's own apply": dict(
            rnn={"seed": 1, "season_length": 4}
        ),
    }
    for message, settings in cases.items():
        with pytest.raises(ValueError) as e:
            AutoForecaster(**settings)
        assert str(e.value) == message, settings
    # the edges that are allowed
    assert AutoForecaster().season_length == 0 and AutoForecaster().get_params()["season_length"] == 0
    assert AutoForecaster(season_length=12).season_length == 12
    assert AutoForecaster(season_length=(1, 24)).season_length == (1, 24)
    for shrinkage in (0.0, 1.0):
        assert AutoForecaster(shrinkage=shrinkage).shrinkage == shrinkage
    for call in (lambda a: a.predict(3), lambda a: a.predict_many(3), lambda a: a.predict_interval(3)):
        with pytest.raises(RuntimeError) as e:
            call(AutoForecaster())
        assert str(e.value) == "AutoForecaster is not fitted; call fit(y) or fit_many(ys) first"


def test_epochs_zero_is_allowed_and_others_are_not():
    y = series(40, 4, 0)
    a = AutoForecaster(season_length=4, rnn=FAST_RNN).fit(y, epochs=0)
    assert all(len(h) == 1 for h in a.members_["rnn"].histories_)  # the untrained network only
    for bad in (1.5, True):
        with pytest.raises(ValueError) as e:
            AutoForecaster(season_length=4, rnn=FAST_RNN).fit(y, epochs=bad)
        assert str(e.value) == f"epochs must be a non-negative integer, got {bad!r}"


def test_the_rnn_forecasts_series_of_three_points_and_more_and_is_not_trained_when_not_a_member(monkeypatch):
    ys = [series(60, 12, 0), np.array([4.0, 5.0, 4.5]), np.array([4.0, 5.0])]
    a = AutoForecaster(season_length=12, rnn=FAST_RNN).fit_many(ys)
    assert ["rnn" in w for w in a.weights_] == [True, True, False]

    def no_rnn(*args, **kwargs):
        raise AssertionError("an RNN was trained for a model without the RNN member")

    monkeypatch.setattr(auto, "fit_rnn_on", no_rnn)
    b = AutoForecaster(season_length=12, members=("ets", "theta")).fit_many(ys)
    assert "rnn" not in b.members_ and b.history_ == []


def test_the_rnn_period_is_the_one_most_series_use_or_its_own_detection():
    t = np.arange(24 * 7 * 4)
    rng = np.random.default_rng(3)
    daily = 100 + 10 * np.sin(2 * np.pi * t / 24)
    weekend = 8.0 * (t // 24 % 7 >= 5)
    weekly = [daily + weekend + rng.normal(0, 0.5, t.size) for _ in range(2)]
    plain = daily + rng.normal(0, 0.5, t.size)
    a = AutoForecaster(season_length=(24, 168), members=("rnn", "ets"), rnn=FAST_RNN).fit_many(
        [weekly[0], plain, weekly[1]]
    )
    assert a.season_lengths_ == [168, 24, 168]
    assert a.members_["rnn"].season_length_ == 168  # one network, the period most series use
    # season_length 0: the RNN detects each series' period itself (here the first one's: 4)
    quarterly = 100 + np.array([5.0, -3.0, 8.0, -10.0])[np.arange(48) % 4] + np.random.default_rng(1).normal(0, 1, 48)
    m = np.arange(72)
    monthly = 100 + np.random.default_rng(9).normal(0, 5, 12)[m % 12] + np.random.default_rng(2).normal(0, 1, 72)
    b = AutoForecaster(members=("rnn", "ets"), rnn=FAST_RNN).fit_many([quarterly, monthly, monthly + 1.0])
    assert b.season_lengths_ == [4, 12, 12]
    assert b.members_["rnn"].season_length_ == 4
    tiny = AutoForecaster(rnn=FAST_RNN).fit(np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert tiny.season_length_ == 1


def test_the_rnn_validation_forecasts_are_those_of_a_model_fitted_before_each_split():
    """The RNN's validation forecasts (what the weights and the intervals learn from) are those of
    one RNN fitted across the series that have a validation part, on their points before it,
    forecasting from every origin of it; series without one (here of 5 points) take no part."""
    ys = [series(60, 12, s) for s in range(3)] + [np.array([4.0, 5.0, 4.5, 5.5, 5.0]), np.array([3.0, 4.0])]
    a = Seen(season_length=12, rnn=FAST_RNN).fit_many(ys)
    splits = [a.members_["ets"].validation_[i][0] for i in range(len(ys))]
    held = [i for i, y in enumerate(ys) if splits[i] < y.size]
    assert held == [0, 1, 2]
    val = RNNForecaster(season_length=12, seed=0, **FAST_RNN).fit_many([ys[i][: splits[i]] for i in held])
    for i in held:
        want = val.predict_histories(a.horizon_, [ys[i][:t] for t in range(splits[i], ys[i].size)])
        np.testing.assert_array_equal(a.seen["rnn"][i], want)
    assert a.seen["rnn"][3] is None and a.seen["rnn"][4] is None


def test_a_series_without_a_validation_part_gets_intervals_from_its_own_changes_on_the_log_scale():
    y = np.array([1.0, 10.0, 100.0, 50.0])  # 4 points: nothing held out; positive: relative changes
    a = AutoForecaster(season_length=1, rnn=FAST_RNN).fit(y)
    assert a.backtest_["n"] == 0
    f = a.predict(3)
    conformal = Conformal.from_residuals([random_walk_residuals(y, a.horizon_, True)], a.horizon_)
    for level in (0.8, 0.95):
        for got, want in zip(a.predict_interval(3, level), conformal.interval(y, f, level)):
            np.testing.assert_allclose(got, want, rtol=1e-12)
    linear = Conformal.from_residuals([random_walk_residuals(y, a.horizon_, False)], a.horizon_)
    assert not np.allclose(linear.interval(y, f, 0.8)[1], a.predict_interval(3, 0.8)[1])


def test_a_diverged_rnn_leaves_the_forecast_to_the_challengers(monkeypatch):
    def diverges(*args, **kwargs):
        raise TrainingDiverged("the loss stayed non-finite after 6 back-offs")

    monkeypatch.setattr(auto, "fit_rnn_on", diverges)
    ys = [series(60, 12, s) for s in range(3)]
    a = AutoForecaster(season_length=12, rnn=FAST_RNN).fit_many(ys)
    b = AutoForecaster(season_length=12, members=("ets", "theta", "seasonal_naive")).fit_many(ys)
    assert "rnn" not in a.members_ and a.history_ == [] and a.transforms_ == [None] * 3
    for x, z in zip(a.predict_many(6), b.predict_many(6)):
        np.testing.assert_array_equal(x, z)


def test_a_non_finite_rnn_validation_forecast_is_replaced_by_the_naive_one(monkeypatch):
    """A safeguard: a validation forecast of the RNN that is not finite (from an origin whose
    history overflowed, say) never reaches the weights or the residuals; its row is the naive
    forecast from that origin."""
    real = RNNForecaster.predict_histories

    def first_row_nan(self, h, ys):
        out = np.array(real(self, h, ys), dtype=np.float64)
        out[0, 1] = np.nan
        return out

    monkeypatch.setattr(RNNForecaster, "predict_histories", first_row_nan)
    ys = [series(60, 12, s) for s in range(2)]
    a = Seen(season_length=12, rnn=FAST_RNN).fit_many(ys)
    for i, y in enumerate(ys):
        split = a.members_["ets"].validation_[i][0]
        F = a.seen["rnn"][i]
        assert np.all(np.isfinite(F)) and np.all(F[0] == y[split - 1])
        assert np.all(np.isfinite(a.predict_interval_many(6)[i][0]))


def test_single_series_calls_their_default_level_and_a_model_of_many_series():
    y = series(60, 12, 4)
    a = AutoForecaster(season_length=12, rnn=FAST_RNN).fit(y)
    many = a.predict_interval_many(6, 0.8)[0]
    for got, want in zip(a.predict_interval(6), many):  # the default level is 0.8
        np.testing.assert_array_equal(got, want)
    members = a.predict_members_interval(6)
    assert set(members) == set(a.predict_members(6))
    for name, (lo, up) in members.items():
        want_lo, want_up = a.predict_members_interval_many(6)[0][name]
        np.testing.assert_array_equal(lo, want_lo)
        np.testing.assert_array_equal(up, want_up)
        assert np.all(lo <= up)
    levels = a.predict_members_interval(6, [0.8, 0.95])
    for name, ((lo80, up80), (lo95, up95)) in levels.items():
        np.testing.assert_array_equal(lo80, members[name][0])
        assert np.all(lo95 <= lo80) and np.all(up80 <= up95)
    b = AutoForecaster(season_length=12, rnn=FAST_RNN).fit_many([y, series(60, 12, 5)])
    for call in (b.predict, b.predict_interval, b.predict_members, b.predict_members_interval):
        with pytest.raises(ValueError) as e:
            call(6)
        assert str(e.value) == "the model was fitted on 2 series: use predict_many(h)"


def test_the_published_median_is_the_median_of_the_members_that_take_part():
    ys = [series(60, 12, s) for s in range(3)]
    a = AutoForecaster(season_length=12, combination="median", rnn=FAST_RNN).fit_many(ys)
    for f, members, w in zip(a.predict_many(8), a.predict_members_many(8), a.weights_):
        taking = [name for name in members if w[name] > 0]
        assert len(taking) == 3
        np.testing.assert_array_equal(f, np.median([members[name] for name in taking], axis=0))


def test_where_no_member_has_a_finite_forecast_the_published_one_is_the_last_value(monkeypatch):
    ys = [series(60, 12, s) for s in range(2)]
    a = AutoForecaster(season_length=12, rnn=FAST_RNN).fit_many(ys)
    assert [w["seasonal_naive"] for w in a.weights_] == [0.0, 0.0]  # screened out: not in the combination
    for name, model in a.members_.items():
        if name != "seasonal_naive":
            monkeypatch.setattr(model, "predict_many", lambda h: [np.full(h, np.nan)] * len(ys))
    for y, f in zip(ys, a.predict_many(5)):
        np.testing.assert_array_equal(f, np.full(5, y[-1]))  # not the benchmark the combination left out
    assert [set(m) for m in a.predict_members_many(5)] == [{"seasonal_naive"}] * 2
