"""The challengers' shared contract (models/challenger.py) checked value by value: backtests
against hand-computed scores, the models one fit_many splits into and the model concat builds
against fits of their own, bytes that keep every fitted attribute, warm starts that find where
a series continues, the seasonal naive forecast written out, and one clear error per misuse."""

from __future__ import annotations

import numpy as np
import pytest

from tickcast.models import AutoETS, AutoForecaster, Naive, SeasonalNaive, Theta, persist
from tickcast.models.challenger import HEAD_MATCH, MAGIC, continuation
from tickcast.models.validation import default_horizon, split_point

CHALLENGERS = [AutoETS, Theta, Naive, SeasonalNaive]
LEVELS = [0.8, 0.95]


def seasonal(n, m=4, seed=0, level=50.0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return level + 0.2 * t + 5 * np.sin(2 * np.pi * t / m) + rng.normal(0, 1, n)


def hand_backtest(y, split, F):
    """The backtest written out: one-step forecasts of the validation part against the naive one."""
    a, f, naive = y[split:], F[:, 0], y[split - 1 : -1]
    scale = np.mean(np.abs(np.diff(y[:split])))
    out = {"n": a.size, "mase_scale": scale}
    for prefix, p in (("", f), ("naive_", naive)):
        out[prefix + "mae"] = np.mean(np.abs(a - p))
        out[prefix + "rmse"] = np.sqrt(np.mean((a - p) ** 2))
        out[prefix + "smape"] = np.mean(200 * np.abs(a - p) / (np.abs(a) + np.abs(p)))
        out[prefix + "mase"] = out[prefix + "mae"] / scale
    out["relative_mae"] = out["mae"] / out["naive_mae"]
    return out


def assert_same(a, b, h=7):
    """Same forecasts, intervals at two levels, backtests and validation forecasts, series by series."""
    for p, q in zip(a.predict_many(h), b.predict_many(h)):
        np.testing.assert_allclose(p, q, rtol=1e-12)
    for p, q in zip(a.predict_interval_many(h, LEVELS), b.predict_interval_many(h, LEVELS)):
        np.testing.assert_allclose(np.array(p), np.array(q), rtol=1e-12)
    assert a.backtests_ == b.backtests_
    assert a.season_lengths_ == b.season_lengths_ and a.horizon_ == b.horizon_
    assert a.warm_started_ == b.warm_started_
    for (s, F), (t, G) in zip(a.validation_, b.validation_):
        assert s == t and (F is None) == (G is None)
        if F is not None:
            np.testing.assert_allclose(F, G, rtol=1e-12)


@pytest.mark.parametrize("cls", CHALLENGERS)
def test_backtest_is_the_validation_part_scored_against_naive(cls):
    y = seasonal(40, 4, 1)
    model = cls(season_length=4).fit(y)
    split, F = model.validation_[0]
    assert split == split_point(y.size, 4, default_horizon(4)) < y.size
    assert F.shape == (y.size - split, model.horizon_)
    want = hand_backtest(y, split, F)
    assert set(model.backtest_) == set(want)
    for key, value in want.items():
        assert model.backtest_[key] == pytest.approx(value, rel=1e-12), key
    short = cls(season_length=1).fit(np.array([3.0, 5.0, 4.0]))  # too short to hold anything out
    bt = short.backtest_
    assert bt["n"] == 0 and bt["mase_scale"] == pytest.approx(1.5)
    assert all(bt[k] is None for k in bt if k not in ("n", "mase_scale"))


@pytest.mark.parametrize("cls", CHALLENGERS)
def test_split_and_concat_give_the_models_of_their_own_fits(cls):
    ys = [seasonal(30 + 7 * i, 4, i) for i in range(5)]
    H = default_horizon(4)
    together = cls(season_length=4, horizon=H).fit_many(ys)
    for y, alone in zip(ys, together.split()):  # each series' own interval residuals
        assert_same(alone, cls(season_length=4, horizon=H).fit(y))
    parts = [cls(season_length=4, horizon=H).fit_many(ys[a:b]) for a, b in ((0, 2), (2, 3), (3, 5))]
    assert_same(cls.concat(parts), together)  # residuals pooled over all the series again
    prev = cls(season_length=4, horizon=H).fit_many([y[:-2] for y in ys])
    warm = [
        cls(season_length=4, horizon=H).fit_many(ys[a:b], warm_start=prev.subset(a, b)) for a, b in ((0, 3), (3, 5))
    ]
    assert_same(cls.concat(warm), cls(season_length=4, horizon=H).fit_many(ys, warm_start=prev))
    with pytest.raises(
        ValueError, match="^split: a warm-started model's residuals are its previous model's; split cold fits$"
    ):
        cls.concat(warm).split()
    with pytest.raises(ValueError, match="^concat: the parts were fitted with different settings$"):
        cls.concat([parts[0], cls(season_length=4, horizon=H + 1).fit_many(ys[2:3])])
    monthly = 100 + 20 * np.sin(2 * np.pi * np.arange(96) / 12)  # detected: period 12, horizon 18
    auto = [cls().fit_many(ys[:1]), cls().fit_many([monthly])]
    assert auto[0].get_params() == auto[1].get_params() and auto[0].horizon_ != auto[1].horizon_
    with pytest.raises(ValueError, match="^concat: the parts were fitted with different settings$"):
        cls.concat(auto)
    assert together.subset(0, 2).warm_started_ is False and cls.concat(warm).subset(1, 2).warm_started_ is True
    with pytest.raises(ValueError, match="^concat: some parts are warm-started and some are not$"):
        cls.concat([parts[0], warm[1]])
    with pytest.raises(ValueError, match="needs fitted"):
        cls.concat([parts[0], cls(season_length=4)])
    with pytest.raises(ValueError, match="needs fitted"):
        cls.concat([])


@pytest.mark.parametrize("cls", CHALLENGERS)
def test_bytes_keep_every_fitted_attribute(cls):
    ys = [seasonal(30, 4, 3), seasonal(41, 4, 4), np.array([2.0, 3.0])]
    cold = cls(season_length=4).fit_many(ys)
    warm = cls(season_length=4).fit_many([np.r_[y, y[-1] + 1.0] for y in ys], warm_start=cold)
    for model in (cold, warm):
        back = cls.from_bytes(model.to_bytes())
        assert_same(back, model)
        assert back.get_params() == model.get_params()
    other = Naive if cls is not Naive else SeasonalNaive
    with pytest.raises(ValueError, match=f"holds a {cls.__name__}, not a {other.__name__}"):
        other.from_bytes(cold.to_bytes())
    with pytest.raises(ValueError, match=r"^not a tickcast challenger blob \(bad magic bytes\)$"):
        cls.from_bytes(b"nonsense" + cold.to_bytes())
    with pytest.raises(ValueError, match="corrupt challenger blob"):
        cls.from_bytes(MAGIC + b"\x00" * 40)
    meta, arrays = persist.unpack(cold.to_bytes()[len(MAGIC) :])

    def blob(meta, arrays):
        return MAGIC + persist.pack(meta, arrays)

    for bad in ({**arrays, "lengths": arrays["lengths"] + 1}, {**arrays, "lengths": arrays["lengths"][:2]}):
        with pytest.raises(ValueError, match="^corrupt challenger blob: its arrays disagree with its header$"):
            cls.from_bytes(blob(meta, bad))
    with pytest.raises(ValueError, match="^corrupt challenger blob: KeyError: 'periods'$"):
        cls.from_bytes(blob({k: v for k, v in meta.items() if k != "periods"}, arrays))
    older = cls.from_bytes(blob({k: v for k, v in meta.items() if k != "warm_started"}, arrays))
    assert older.warm_started_ is False  # blobs from before warm starts were recorded


def test_continuation_finds_where_a_series_picks_up_again():
    old = np.arange(10.0)
    assert continuation(old, old) == 0
    assert continuation(old, np.arange(3.0, 14.0)) == 3  # dropped 3 at its start, gained 4 at its end
    assert continuation(old, np.arange(9.0, 12.0)) == 9
    assert continuation(old, np.array([42.0])) is None
    assert continuation(old, np.array([])) is None and continuation(np.array([]), old) is None
    revised = np.arange(2.0, 40.0)
    revised[HEAD_MATCH:] += 0.5  # values revised after the first half of the shared points
    assert continuation(np.arange(40.0), revised) == 2
    late = np.arange(2.0, 40.0)
    late[5] += 0.5  # a revision inside the first half: no stretch to trust
    assert continuation(np.arange(40.0), late) is None
    repeated = np.r_[1.0, 2.0, 1.0, 2.0, 3.0]
    assert continuation(repeated, np.array([1.0, 2.0, 3.0])) == 2  # the first place it fully continues
    assert continuation(np.r_[1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 4.0], np.r_[1.0, 2.0, 3.0, 4.0, 5.0]) == 3  # and goes on
    assert continuation(np.array([5.0]), np.array([5.0, 6.0])) == 0
    assert continuation(np.array([5.0, 6.0, 7.0]), np.array([6.0, 9.0])) == 1  # revised: its first point matches
    shared = np.arange(2.0, 22.0)  # 20 points in common: the first 10 must match
    shared[8] += 0.5
    assert continuation(np.arange(22.0), shared) is None


def test_warm_starts_refuse_what_they_cannot_continue():
    ys = [seasonal(30, 4, 1), seasonal(30, 4, 2)]
    prev = Theta(season_length=4).fit_many(ys)
    with pytest.raises(ValueError, match=r"differs in \{'season_length': \(4, 1\)\}"):
        Theta(season_length=1).fit_many(ys, warm_start=prev)
    with pytest.raises(ValueError, match="uses periods"):
        Theta(season_length=4).fit_many(ys, season_lengths=[4, 2], warm_start=prev)
    with pytest.raises(ValueError, match="fitted on 2 series, not 1"):
        Theta(season_length=4).fit_many(ys[:1], warm_start=prev)
    with pytest.raises(ValueError, match=r"series 1 does not continue .*: fit it cold$"):
        Theta(season_length=4).fit_many([ys[0], ys[1] + 100.0], warm_start=prev)
    with pytest.raises(ValueError, match="must be a fitted Theta"):
        Theta(season_length=4).fit_many(ys, warm_start=Naive(season_length=4).fit_many(ys))
    same = Theta(season_length=4, seed=9).fit_many(ys, warm_start=prev)  # the seed draws nothing
    assert same.warm_started_


def test_a_warm_start_that_lost_points_at_its_start_runs_its_states_over_them():
    y = seasonal(60, 4, 7)
    for cls in (AutoETS, Theta):
        prev = cls(season_length=4).fit(y[:50])
        rolled = cls(season_length=4).fit(y[5:55], warm_start=prev)  # 5 dropped, 5 new
        whole = cls(season_length=4).fit(y[:55], warm_start=prev)
        np.testing.assert_allclose(rolled.predict(6), whole.predict(6), rtol=1e-9)
        again = cls(season_length=4).fit(y[9:60], warm_start=rolled)  # a second roll starts where the first ended
        np.testing.assert_allclose(again.predict(6), cls(season_length=4).fit(y, warm_start=prev).predict(6), rtol=1e-9)


def test_seasonal_naive_repeats_the_last_season_written_out():
    y = np.arange(1.0, 15.0) ** 1.5
    model = SeasonalNaive(season_length=4).fit(y)
    np.testing.assert_array_equal(model.predict(9), [y[10], y[11], y[12], y[13]] * 2 + [y[10]])
    F = model._forecasts(y, {}, 4, np.array([2, 4, 5]), 3)  # less than a season of history: naive
    np.testing.assert_array_equal(F, [[y[1]] * 3, [y[0], y[1], y[2]], [y[1], y[2], y[3]]])
    two = SeasonalNaive(season_length=2).fit(y)
    np.testing.assert_array_equal(two.predict(3), [y[12], y[13], y[12]])
    one = SeasonalNaive(season_length=1).fit(y)
    np.testing.assert_array_equal(one.predict(3), [y[-1]] * 3)
    np.testing.assert_array_equal(Naive().fit(y).predict(2), [y[-1]] * 2)


def test_periods_are_detected_only_on_series_long_enough():
    rng = np.random.default_rng(2)
    t = np.arange(96)
    strong = 100 + 20 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 1, t.size)
    model = Naive(season_length=0).fit_many([strong, strong[:8], strong[:9]])
    assert model.season_lengths_[0] == 12 and model.season_lengths_[1] == 1
    assert model.season_lengths_[2] in (1, 2, 3, 4)  # 9 points: detection runs (and finds little)


@pytest.mark.parametrize("cls", CHALLENGERS)
def test_misuse_gets_one_clear_error(cls):
    with pytest.raises(RuntimeError, match=f"{cls.__name__} is not fitted"):
        cls().predict(3)
    with pytest.raises(ValueError, match=rf"{cls.__name__} has no setting\(s\) \['colour'\]"):
        cls(colour="red")
    model = cls(season_length=1).fit_many([seasonal(20, 4, 1), seasonal(25, 4, 2)])
    with pytest.raises(ValueError, match="fitted on 2 series: use predict_many"):
        model.predict(3)
    for h in (0, -1, 1.5, True, "3"):
        with pytest.raises(ValueError, match="h must be a positive integer"):
            model.predict_many(h)
    assert [f.shape for f in model.predict_many(1)] == [(1,), (1,)]
    assert model.predict_interval_many(np.int64(2), 0.8)[0][0].shape == (2,)


class Broken(Naive):
    """A model whose recursion blows up: its forecasts are NaN."""

    def _forecasts(self, y, state, m, origins, h):
        return np.full((len(origins), h), np.nan)


def test_a_forecast_that_is_not_finite_falls_back_to_naive():
    y = seasonal(30, 4, 8)
    model = Broken(season_length=4).fit(y)
    np.testing.assert_array_equal(model.predict(3), [y[-1]] * 3)
    split, F = model.validation_[0]
    np.testing.assert_array_equal(F[:, 0], y[split - 1 : -1])  # validation forecasts too
    lo, hi = model.predict_interval(3)
    assert np.all(np.isfinite(lo) & np.isfinite(hi))


@pytest.mark.parametrize("cls", CHALLENGERS)
def test_the_default_interval_level_is_80_percent(cls):
    ys = [seasonal(30, 4, 1), seasonal(36, 4, 2)]
    model = cls(season_length=4).fit_many(ys)
    for got, want in zip(model.predict_interval_many(5), model.predict_interval_many(5, 0.8)):
        np.testing.assert_array_equal(got, want)
    one = cls(season_length=4).fit(ys[0])
    np.testing.assert_array_equal(one.predict_interval(5), one.predict_interval(5, 0.8))


def test_backtests_of_small_numbers_and_of_series_without_a_validation_part():
    y = seasonal(40, 4, 1) / 1000  # naive errors well below 1
    bt = Naive(season_length=4).fit(y).backtest_
    assert 0 < bt["mase_scale"] < 1 and bt["mase"] == pytest.approx(bt["mae"] / bt["mase_scale"])
    assert 0 < bt["naive_mae"] < 1 and bt["relative_mae"] == pytest.approx(1.0)
    keys = set(bt)
    for short, scale in ((np.array([3.0]), 0.0), (np.array([3.0, 5.0]), 2.0), (np.array([3.0, 5.0, 4.0]), 1.5)):
        b = Naive(season_length=1).fit(short).backtest_
        assert set(b) == keys and b["n"] == 0 and b["mase_scale"] == pytest.approx(scale)
    early = Naive(season_length=1).fit_many([y], splits=[2]).backtest_  # the earliest origin allowed
    assert early["n"] == y.size - 2 and early["mase_scale"] == pytest.approx(abs(y[1] - y[0]))


def test_bad_series_and_settings_are_named():
    with pytest.raises(ValueError, match=r"^y must be one-dimensional, got shape \(2, 2\)$"):
        AutoForecaster().fit(np.ones((2, 2)))  # one series is "y"
    with pytest.raises(ValueError, match=r"^y has 0 point\(s\); at least 1 needed$"):
        AutoForecaster().fit([])
    for model in (Naive(), AutoETS(), Theta()):  # fit's one series is "y" too
        with pytest.raises(ValueError, match=r"^y must be one-dimensional, got shape \(2, 2\)$"):
            model.fit(np.ones((2, 2)))
        with pytest.raises(ValueError, match=r"^y contains NaN or infinite values; drop or fill them first$"):
            model.fit([1.0, np.nan])
    np.testing.assert_array_equal(Naive().fit([[1.0], [2.0], [4.0]]).predict(1), [4.0])  # a column is a series
    np.testing.assert_array_equal(Naive().fit([7.0]).predict(2), [7.0, 7.0])  # one point is enough
    with pytest.raises(ValueError, match=r"^series 1 must be one-dimensional"):
        Naive().fit_many([np.ones(5), np.ones((2, 3))])
    with pytest.raises(ValueError, match="^fit_many needs at least one series$"):
        Naive().fit_many([])
    y = seasonal(20, 4, 2)
    for bad in ([4, 0], [4]):
        with pytest.raises(ValueError, match="^season_lengths must give a period >= 1 for every series$"):
            Naive().fit_many([y, y], season_lengths=bad)
    for ok in (2, y.size):
        assert Naive().fit_many([y], splits=[ok]).validation_[0][0] == ok
    for bad in (1, y.size + 1):
        with pytest.raises(
            ValueError, match="^splits must give each series a first validation origin in 2..its length$"
        ):
            Naive().fit_many([y], splits=[bad])
