"""RNNForecaster's forecasts and intervals restated from its members' weights, cell by cell (not
the stacked passes the model uses): the series as each fit prepares it, the shared log scale
across series, the steps used per pass, the clipped median of the members, the fallbacks where a
value does not fit a float, the interval floor, warm starts, and the checks of fit_each,
combine and predict with their exact errors."""

import pickle
import re
import warnings
from types import SimpleNamespace

import numpy as np
import pytest

from tickcast.models import RNNForecaster, TrainingDiverged, ensemble, passes, persist
from tickcast.models.bank import Bank, Gather, Windows
from tickcast.models.cells import CELLS, ElmanRNN
from tickcast.models.intervals import floored_half_widths, residual_quantiles
from tickcast.models.metrics import mae, naive_scale, rmse, smape
from tickcast.models.network import shrunk_mean_targets
from tickcast.models.params import allocate, flatten
from tickcast.models.seasonality import Seasonality
from tickcast.models.stack import make_stack, stacked_forward
from tickcast.models.train import Data, auto_batch_size
from tickcast.models.windows import Prepared, cut_windows, last_window, prepare, split_point, spread_path

SMALL = dict(hidden_size=8, epochs=3, precision="float64", significance=0.0, min_delta=0.0)


# ---------------------------------------------------------------- the restatement
def steps_per_pass(ns, K, cap):
    """The outputs used per pass: the steps that at least half as many windows (and at least
    two) had a target for as step 1."""
    counts = [sum(max(0, min(n - k, cap)) for n in ns) for k in range(1, K + 1)]
    for k, count in enumerate(counts):
        if count < max(2.0, counts[0] / 2.0):
            return k
    return K


def member_outputs(model, xs, scales):
    """(M, S, K): each member's output for the window after the end of each x, its cell's own
    forward pass."""
    out = []
    for member in model._members:
        X = np.stack([last_window(x, member.L, s) for x, s in zip(xs, scales)])
        out.append(np.array(member.cell.forward(member.params, X)[0]))
    return np.array(out)


def forecast_x(model, preps, h, steps, out_max):
    xs, scales = [p.x.copy() for p in preps], [p.scale for p in preps]
    rows = [np.empty(0) for _ in preps]
    while rows[0].size < h:
        median = np.clip(np.nan_to_num(np.median(member_outputs(model, xs, scales), axis=0)), -out_max, out_max)
        take = min(steps, h - rows[0].size)
        for i in range(len(preps)):
            new = xs[i][-1] + median[i, :take] * scales[i]
            rows[i], xs[i] = np.concatenate([rows[i], new]), np.concatenate([xs[i], new])
    return np.array(rows)


def forecasts(model, preps, h, steps):
    return np.array([p.to_y(row) for p, row in zip(preps, forecast_x(model, preps, h, steps, model._out_max))])


def intervals(model, preps, spreads, h, level, steps):
    q = floored_half_widths(model._Q, model._counts, h, level)
    growth = np.sqrt(np.arange(1, h + 1))
    out = []
    for p, spread, row in zip(preps, spreads, forecast_x(model, preps, h, steps, model._out_max)):
        level_x = 1.0 if p.log else max(abs(p.x[-1]), np.mean(np.abs(p.x)), 1e-12)
        half = np.maximum(q * spread, 1e-4 * level_x * growth)
        out.append((p.to_y(row - half), p.to_y(row + half)))
    return out


def prepared(ys, season_length, transform="auto"):
    """The series as a cold fit prepares them: log-scale ones share the median of their scales."""
    preps = [prepare(np.asarray(y, dtype=float), season_length, transform) for y in ys]
    logs = [p.scale for p in preps if p.log]
    if len(preps) > 1 and logs:
        preps = [Prepared(p.x, p.season, p.log, float(np.median(logs))) if p.log else p for p in preps]
    return preps


def assert_restated(model, preps, steps, h, level=0.8, spreads=None):
    got = model.predict_many(h)
    np.testing.assert_allclose(np.array(got), forecasts(model, preps, h, steps), rtol=1e-10)
    spreads = [spread_path(p.x)[-1] for p in preps] if spreads is None else spreads
    for (lo, hi), (elo, ehi) in zip(
        model.predict_interval_many(h, level), intervals(model, preps, spreads, h, level, steps)
    ):
        np.testing.assert_allclose(lo, elo, rtol=1e-10)
        np.testing.assert_allclose(hi, ehi, rtol=1e-10)


# ---------------------------------------------------------------- series
def rising(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return 5.0 + np.cumsum(np.abs(rng.normal(1.0, 0.5, n)))


def seasonal(n=64, level=100.0, seed=1, m=4):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return level * (1 + 0.3 * np.sin(2 * np.pi * t / m + 0.4)) * np.exp(np.cumsum(rng.normal(0.01, 0.03, n)))


def prices(n=50, seed=3, level=100.0):
    """A wandering positive series: the log scale."""
    return level * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.02, n)))


def walk(n=50, seed=2, start=0.0):
    return start + np.cumsum(np.random.default_rng(seed).normal(0, 1, n))


# ---------------------------------------------------------------- forecasts
@pytest.mark.parametrize(
    "case",
    ["short", "seasonal-log", "linear-seasonal", "long-linear", "many-short", "mixed-scales"],
)
def test_forecasts_and_intervals_are_the_clipped_member_median_pass_after_pass(case):
    if case == "short":  # 10 points, K = 8: 5 steps a pass
        ys, kw = [rising(10)], dict(season_length=1)
    elif case == "seasonal-log":
        ys, kw = [seasonal(64, level=0.4)], dict(season_length=4)
    elif case == "linear-seasonal":  # values below zero: an additive season on the linear scale
        ys, kw = [seasonal(64, level=10.0) - 12.0], dict(season_length=4)
    elif case == "long-linear":
        ys, kw = [walk(300)], dict(season_length=1, transform="linear")
    elif case == "many-short":  # six series of 3 points: 2 steps a pass
        ys, kw = [rising(3, seed=s) for s in range(6)], dict(season_length=1)
    else:  # log series at three levels share one unit; the linear one keeps its own
        ys, kw = [prices(40, 0, 1.0), prices(30, 1, 30.0), prices(50, 2, 900.0), walk(40)], dict(season_length=1)
    fit = RNNForecaster(**SMALL, **kw)
    model = fit.fit(ys[0]) if len(ys) == 1 else fit.fit_many(ys)
    preps = prepared(ys, kw["season_length"], kw.get("transform", "auto"))
    assert [p.log for p in preps] == [t == "log" for t in model.transforms_]
    if case == "mixed-scales":
        assert model.transforms_ == ["log", "log", "log", "linear"]
        assert len({p.scale for p in preps}) == 2 and len({prepare(y, 1).scale for y in ys}) == 4
    steps = steps_per_pass([p.n for p in preps], model.horizon_, model.config.max_windows)
    assert steps == {"short": 5, "many-short": 2}.get(case, model.horizon_)
    assert_restated(model, preps, steps, 2 * model.horizon_ + 3)
    assert_restated(model, preps, steps, 3, level=0.95)


def test_a_float32_model_forecasts_in_float32():
    model = RNNForecaster(hidden_size=8, epochs=3, season_length=1).fit(seasonal(70, level=30.0))
    assert all(np.any(m.params["Why"]) for m in model._members)  # trained: the recurrence runs
    xs, scale = [p.x for p in model._preps], np.array([p.scale for p in model._preps])
    out = model._member_outputs(xs, scale)
    assert model.config.precision == "float32"
    np.testing.assert_array_equal(out, out.astype(np.float32).astype(np.float64))
    np.testing.assert_allclose(out, member_outputs(model, xs, scale), rtol=1e-4, atol=1e-5)


def test_many_histories_in_chunks_are_each_history_alone():
    y = walk(700, start=50.0)
    model = RNNForecaster(**SMALL, season_length=1).fit(y)
    histories = [y[:n] for n in range(100, 700)]  # more than one chunk of 512
    together = model.predict_histories(4, histories)
    np.testing.assert_allclose(
        together[[0, 300, 511, 512, 599]],
        [model.predict(4, y=histories[i]) for i in (0, 300, 511, 512, 599)],
        rtol=1e-12,
    )


def constant_members(model, bias):
    for member in model._members:
        member.params["Why"][:] = 0.0
        member.params["by"][:] = bias


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_outputs_beyond_the_largest_change_seen_are_clipped(sign):
    y = seasonal(64, level=20.0)
    model = RNNForecaster(**SMALL, season_length=4).fit(y)
    constant_members(model, sign * 1e6)
    p = model._preps[0]
    h = 2 * model.horizon_
    expected = p.to_y(np.array([p.x[-1] + sign * model._out_max * p.scale]))
    np.testing.assert_allclose(model.predict(1), expected, rtol=1e-12)
    assert 0 < model._out_max < 1e3
    assert_restated(model, [p], model._steps_per_pass, h)


def test_members_that_output_nan_forecast_no_change():
    y = seasonal(64, level=20.0)
    model = RNNForecaster(**SMALL, season_length=4).fit(y)
    constant_members(model, np.nan)
    p = model._preps[0]
    f = model.predict(9)
    np.testing.assert_allclose(f, p.to_y(np.full(9, p.x[-1])), rtol=1e-12)  # the adjusted level, re-seasoned
    assert len(set(np.round(f, 9))) > 1  # the season is back on it


def test_forecasts_that_overflow_a_float_are_the_last_value_without_a_warning():
    y = seasonal(64, level=20.0)
    model = RNNForecaster(**SMALL, season_length=4).fit(y)
    assert model.transform_ == "log" and model.season_length_ == 4
    constant_members(model, 1e6)
    model._out_max = np.inf  # weights that say more than a float holds
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = model.predict(10)
        lo, hi = model.predict_interval(10)
    np.testing.assert_allclose(f, np.full(10, y[-1]), rtol=1e-12)
    np.testing.assert_allclose(lo, np.full(10, y[-1]), rtol=1e-12)
    np.testing.assert_array_equal(hi, np.full(10, np.finfo(np.float64).max))


@pytest.mark.parametrize(
    "y, transform",
    [
        (rising(30), "linear"),  # the last value is the largest
        (rising(30)[::-1].copy(), "linear"),  # the mean of |x| is the largest
        (rising(30) * 1e-3, "linear"),  # below one: 1e-4 of the level, not of 1
        (np.zeros(30), "auto"),  # never moved: still an interval, not a point
        (seasonal(48, level=3.0), "log"),
    ],
)
def test_the_interval_floor_follows_the_level(y, transform):
    model = RNNForecaster(**SMALL, season_length=1, transform=transform).fit(y)
    model._Q = np.zeros_like(model._Q)  # no validation error at all: only the floor is left
    p = model._preps[0]
    assert_restated(model, [p], model._steps_per_pass, 12)
    lo, hi = model.predict_interval(12)
    f = model.predict(12)
    assert np.all(lo < f) and np.all(f < hi)


def test_an_interval_from_another_history_uses_that_history_s_spread():
    y = walk(120, start=200.0)
    model = RNNForecaster(**SMALL, season_length=1).fit(y)
    other = np.concatenate([y, y[-1] + np.cumsum(np.random.default_rng(5).normal(0, 6, 30))])  # wilder now
    own = model._preps[0]
    prep = Prepared(own.to_x(other), Seasonality(own.season.indices, other.size), own.log, own.scale)
    h = model._steps_per_pass + 2
    ((elo, ehi),) = intervals(model, [prep], [spread_path(prep.x)[-1]], h, 0.8, model._steps_per_pass)
    lo, hi = model.predict_interval(h, y=other)
    np.testing.assert_allclose(lo, elo, rtol=1e-10)
    np.testing.assert_allclose(hi, ehi, rtol=1e-10)
    assert np.all(hi - lo > (model.predict_interval(h)[1] - model.predict_interval(h)[0]))


# ---------------------------------------------------------------- other histories
def test_a_single_series_model_forecasts_a_longer_history_with_its_own_season_and_unit():
    y = seasonal(80, level=50.0)
    model = RNNForecaster(**SMALL, season_length=4).fit(y[:70])
    own = model._preps[0]
    assert own.season.active
    for history in (y, y[:1]):
        prep = Prepared(own.to_x(history), Seasonality(own.season.indices, history.size), own.log, own.scale)
        np.testing.assert_allclose(
            model.predict(11, y=history), forecasts(model, [prep], 11, model._steps_per_pass)[0], rtol=1e-10
        )


def test_a_log_scale_model_refuses_histories_with_values_at_or_below_zero():
    y = seasonal(48, level=0.5)  # below one: fine on a log scale
    model = RNNForecaster(**SMALL, season_length=1).fit(y)
    assert model.transform_ == "log"
    assert np.all(np.isfinite(model.predict(3, y=y[:40])))
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match=r"^the model uses a log scale but y has values <= 0$"):
            model.predict(3, y=np.r_[y[:40], bad])


@pytest.mark.parametrize("transform", ["auto", "linear"])
def test_a_global_model_prepares_a_new_series_as_it_prepared_its_own(transform):
    ys = [walk(40, seed=3), prices(40, 1, 20.0), prices(50, 2, 300.0)]  # the first one is on a linear scale
    model = RNNForecaster(**SMALL, season_length=1, transform=transform).fit_many(ys)
    shared = [p.scale for p in model._preps if p.log]
    assert model.transforms_ == (["linear", "log", "log"] if transform == "auto" else ["linear"] * 3)
    for new in (prices(30, 4, 7.0), walk(30, seed=5), np.array([4.0])):
        p = prepare(new, 1, transform)
        prep = Prepared(p.x, p.season, p.log, shared[0] if p.log else p.scale)
        np.testing.assert_allclose(
            model.predict(10, y=new), forecasts(model, [prep], 10, model._steps_per_pass)[0], rtol=1e-10
        )
    assert (transform == "auto") == bool(shared)


def test_a_global_model_of_two_series_is_a_global_model():
    ys = [seasonal(60, level=10.0, m=4), seasonal(60, level=30.0, seed=2, m=4)]
    model = RNNForecaster(**SMALL, season_length=4).fit_many(ys)
    preps = prepared(ys, 4)  # two log-scale series: one unit, the mean of their two
    assert preps[0].scale == preps[1].scale != prepare(ys[0], 4).scale
    assert_restated(model, preps, model.horizon_, 7)
    new = seasonal(60, level=70.0, seed=3, m=4)
    p = prepare(new, 4)
    prep = Prepared(p.x, p.season, p.log, preps[0].scale)
    np.testing.assert_allclose(
        model.predict(6, y=new), forecasts(model, [prep], 6, model._steps_per_pass)[0], rtol=1e-10
    )


# ---------------------------------------------------------------- warm starts
@pytest.mark.parametrize("level", [0.4, 40.0, -60.0])
def test_a_warm_start_refits_the_season_and_keeps_the_unit(level):
    y = seasonal(90, level=abs(level), m=4) * np.sign(level) + (0 if level > 0 else 10.0)
    cold = RNNForecaster(**SMALL, season_length=4).fit(y[:80])
    warm = RNNForecaster(**SMALL, season_length=4).fit(y, warm_start=cold)
    old = cold._preps[0]
    season = Seasonality.fit(y, 4)
    assert season.active and old.log == (level > 0)
    sa = season.remove(y)
    prep = Prepared(np.log(sa) if old.log else sa, season, old.log, old.scale)
    assert_restated(warm, [prep], cold._steps_per_pass, 10)
    again = RNNForecaster(**SMALL, season_length=4)
    if old.log:
        with pytest.raises(ValueError, match=r"^warm start: the model uses a log scale but y has values <= 0$"):
            again.fit(np.r_[y, 0.0], warm_start=cold)
    else:  # the linear scale takes any value
        assert np.all(np.isfinite(again.fit(np.r_[y, 0.0], warm_start=cold).predict(3)))


def test_a_warm_start_whose_season_would_reach_log_zero_drops_the_season(monkeypatch):
    y = seasonal(60, level=20.0, m=4)
    cold = RNNForecaster(**SMALL, season_length=4).fit(y[:50])
    broken = Seasonality(np.array([1.0, np.inf, 1.0, 1.0]), y.size)
    monkeypatch.setattr(Seasonality, "fit", classmethod(lambda cls, y, m, m4_test=False: broken))
    warm = RNNForecaster(**SMALL, season_length=4).fit(y, warm_start=cold)
    p = warm._preps[0]
    assert p.log and not p.season.active and p.season.n == y.size and p.season.m == 1
    np.testing.assert_array_equal(p.x, np.log(y))
    prep = Prepared(np.log(y), Seasonality(np.ones(1), y.size), True, cold._preps[0].scale)
    np.testing.assert_allclose(warm.predict(5), forecasts(warm, [prep], 5, cold._steps_per_pass)[0], rtol=1e-10)


def test_warm_fits_train_the_epochs_asked_for():
    ys = [rising(40, s) for s in range(3)]
    cold = RNNForecaster(**SMALL, season_length=1).fit_many(ys)
    warm = RNNForecaster(**SMALL, season_length=1).fit_many(ys, warm_start=cold, epochs=5)
    assert warm.n_epochs_ == 5 and all(len(h) == 6 for h in warm.histories_)
    one = RNNForecaster(**SMALL, season_length=1).fit(
        ys[0], warm_start=RNNForecaster(**SMALL, season_length=1).fit(ys[0]), epochs=[1, 2, 4]
    )
    assert [len(h) for h in one.histories_] == [2, 3, 5]


def test_a_warm_start_must_be_a_fitted_forecaster():
    for bad in (RNNForecaster(), "model"):
        with pytest.raises(ValueError, match=r"^warm_start must be a fitted RNNForecaster$"):
            RNNForecaster().fit(rising(20), warm_start=bad)


# ---------------------------------------------------------------- fit_each
class _ShortWindowsDiverge(ElmanRNN):
    """The Elman cell, except that windows shorter than 8 steps come out NaN: every network of a
    short series diverges, the others train as usual."""

    name = "test-short-windows-diverge"

    def forward(self, p, X):
        out, cache = super().forward(p, X)
        return (out * np.nan if X.shape[1] < 8 else out), cache


def test_fit_each_returns_or_raises_a_series_that_diverged(monkeypatch):
    monkeypatch.setitem(CELLS, _ShortWindowsDiverge.name, _ShortWindowsDiverge)
    ys = [walk(60, start=30.0), rising(6)]  # windows of 12-24 steps; of 5
    kw = dict(SMALL, cell="test-short-windows-diverge", season_length=1, max_backoffs=1)
    out = RNNForecaster(**kw).fit_each(ys, errors="return")
    assert isinstance(out[0], RNNForecaster) and isinstance(out[1], TrainingDiverged)
    np.testing.assert_allclose(out[0].predict(3), RNNForecaster(**kw).fit(ys[0]).predict(3), rtol=1e-9)
    with pytest.raises(TrainingDiverged):
        RNNForecaster(**kw).fit_each(ys)


def test_fit_each_names_what_is_wrong():
    with pytest.raises(ValueError, match=r"^errors must be 'raise' or 'return', got 'ignore'$"):
        RNNForecaster().fit_each([rising(10)], errors="ignore")
    with pytest.raises(ValueError, match=r"^series 1 contains 1 NaN"):
        RNNForecaster().fit_each([rising(10), np.r_[rising(10), np.nan]])
    out = RNNForecaster(**SMALL).fit_each([rising(10), np.r_[rising(10), np.nan]], errors="return")
    assert str(out[1]).startswith("series 1 contains 1 NaN")


# ---------------------------------------------------------------- combine
def parts_of(ys, members, **kw):
    return [RNNForecaster(**SMALL, season_length=1, **kw).fit_many(ys, members=[j]) for j in members]


def test_combine_refuses_parts_of_other_settings_horizons_or_series():
    ys = [rising(30, s) for s in range(3)]
    a, _b, _c = parts_of(ys, [0, 1, 2])
    other_lr = RNNForecaster(**{**SMALL, "lr": 0.01}, season_length=1).fit_many(ys, members=[1])
    other_k = RNNForecaster(**SMALL, season_length=1, horizon=5).fit_many(ys, members=[1])
    assert other_k.config != a.config  # the horizon is a setting: a different K is a different config
    fewer = parts_of(ys[:2], [1])[0]
    prefix = parts_of(ys + [rising(30, 9)], [1])[0]
    for bad in (other_lr, other_k, fewer, prefix):
        with pytest.raises(ValueError, match=r"^combine: the parts were fitted with different settings or series$"):
            RNNForecaster.combine([a, bad])
    shifted = parts_of([ys[0] + 1.0, *ys[1:]], [1])[0]
    with pytest.raises(ValueError, match=r"^combine: the parts were fitted on different series or warm starts$"):
        RNNForecaster.combine([a, shifted])
    with pytest.raises(
        ValueError, match=r"^combine needs parts: models fitted with fit_many\(\.\.\., members=\[\.\.\.\]\)$"
    ):
        RNNForecaster.combine([a, RNNForecaster(**SMALL).fit_many(ys)])


def test_combine_refuses_parts_that_continue_different_models():
    ys = [rising(30, s) for s in range(3)]
    first = RNNForecaster(**SMALL, season_length=1).fit_many(ys)
    second = RNNForecaster(**SMALL, season_length=1, seed=1).fit_many(ys)
    same = [RNNForecaster(**SMALL, season_length=1).fit_many(ys, warm_start=first, members=[j]) for j in range(3)]
    combined = RNNForecaster.combine(same)
    whole = RNNForecaster(**SMALL, season_length=1).fit_many(ys, warm_start=first)
    np.testing.assert_allclose(np.array(combined.predict_many(4)), np.array(whole.predict_many(4)), rtol=1e-12)
    mixed = [same[0], RNNForecaster(**SMALL, season_length=1).fit_many(ys, warm_start=second, members=[1]), same[2]]
    with pytest.raises(ValueError, match=r"^combine: the parts were fitted on different series or warm starts$"):
        RNNForecaster.combine(mixed)
    cold = parts_of(ys, [1])[0]
    with pytest.raises(ValueError, match="different series or warm starts"):
        RNNForecaster.combine([same[0], cold, same[2]])


# ---------------------------------------------------------------- the rest of the contract
def test_a_pickled_model_leaves_its_buffers_behind():
    model = RNNForecaster(**SMALL, season_length=1).fit(walk(200, start=100.0))
    before = len(pickle.dumps(model))
    f = model.predict_histories(3, [walk(200, start=100.0)[:n] for n in range(150, 200)])
    assert len(pickle.dumps(model)) == before
    np.testing.assert_array_equal(
        pickle.loads(pickle.dumps(model)).predict_histories(3, [walk(200, start=100.0)[:150]]), f[:1]
    )


def test_an_unfitted_model_or_a_part_says_what_to_do():
    with pytest.raises(RuntimeError, match=r"^RNNForecaster is not fitted; call fit\(y\) or fit_many\(ys\) first$"):
        RNNForecaster().predict(3)
    part = parts_of([rising(20, s) for s in range(2)], [1])[0]
    with pytest.raises(
        RuntimeError,
        match=r"^this is a part of a fit \(members \[1\]\): assemble the parts with RNNForecaster.combine$",
    ):
        part.predict_many(3)
    assert part.backtests_ == [] and part.backtest_ is None


@pytest.mark.parametrize(
    "epochs, message",
    [
        (-1, "epochs must be a non-negative integer or a list of them, got -1"),
        (1.5, "epochs must be a non-negative integer or a list of them, got 1.5"),
        (True, "epochs must be a non-negative integer or a list of them, got True"),
        ("three", "epochs must be a non-negative integer or a list of them, got 'three'"),
        ([1, None, 2], "epochs must be a non-negative integer or a list of them, got [1, None, 2]"),
        ([1, 2], "epochs: one per ensemble member (3), got 2"),
    ],
)
def test_epochs_that_are_not_a_count_per_member_are_refused(epochs, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        RNNForecaster(**SMALL).fit(rising(20), epochs=epochs)


def test_a_cold_fit_trains_each_member_at_most_its_epochs():
    model = RNNForecaster(**SMALL, season_length=1, patience=10).fit(walk(80, start=50.0), epochs=[0, 1, 2])
    assert [len(h) for h in model.histories_] == [1, 2, 3]
    assert model.n_epochs_ == 0
    many = RNNForecaster(**SMALL, season_length=1, patience=10).fit_many([walk(80), walk(60, 4)], epochs=2)
    assert [len(h) for h in many.histories_] == [3, 3, 3]


@pytest.mark.parametrize("members", [[], [0, 0], [3], [-1]])
def test_members_of_a_part_are_distinct_indices_of_the_ensemble(members):
    message = f"members must be distinct indices in 0..2, got {sorted(members)}"
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        RNNForecaster(**SMALL).fit_many([rising(20)], members=members)


@pytest.mark.parametrize("kind, m, expected", [("seasonal", 4, 4), ("walk", 4, 1), ("walk", 1, 1)])
def test_the_season_length_is_the_one_found(kind, m, expected):
    y = seasonal(60, level=20.0, m=4) if kind == "seasonal" else walk(60, start=100.0)
    model = RNNForecaster(**SMALL, season_length=m).fit(y)
    assert model.season_length_ == expected
    assert model._preps[0].season.active == (expected > 1)


def test_a_series_that_never_moved_forecasts_no_move_whatever_its_weights():
    y = np.full(30, 5.0)
    model = RNNForecaster(**SMALL, season_length=1).fit(y)
    constant_members(model, 1e6)  # the largest change seen is none: outputs clip to 1.5e-12
    np.testing.assert_allclose(model.predict(4), np.full(4, 5.0), rtol=1e-9)


def test_a_warm_start_keeps_the_steps_per_pass_and_forgets_the_model_it_continued():
    cold = RNNForecaster(**SMALL, season_length=1).fit(rising(10))  # 5 steps a pass
    y = rising(30)
    warm = RNNForecaster(**SMALL, season_length=1).fit(y, warm_start=cold)
    old = cold._preps[0]
    prep = Prepared(old.to_x(y) if not old.log else np.log(y), Seasonality(np.ones(1), y.size), old.log, old.scale)
    np.testing.assert_allclose(warm.predict(12), forecasts(warm, [prep], 12, 5)[0], rtol=1e-10)
    assert warm._steps_per_pass == 5 and steps_per_pass([30], warm.horizon_, 4096) == warm.horizon_
    held = vars(pickle.loads(pickle.dumps(warm))).values()  # what travels to another process
    assert not any(isinstance(v, RNNForecaster) for v in held)


# ---------------------------------------------------------------- validation: backtests, residuals
BACKTEST_KEYS = ("mae", "rmse", "smape", "mase", "naive_mae", "naive_rmse", "naive_smape", "naive_mase", "relative_mae")


def scored(model, ys, preps):
    """The backtests and residual quantiles of a fit without refit, restated: the members' clipped
    median forecasts every validation cut t (of the newest 50 cuts where there is no validation
    part), one step for the backtest against the naive forecast, K steps for the residuals."""
    cfg, K = model.config, model.horizon_
    has_val = cfg.val_fraction > 0
    backtests, resid = [], []
    for y, p in zip(ys, preps):
        s = split_point(p.n, cfg.val_fraction) if has_val else max(1, p.n - 50)
        ts = np.arange(s, p.n)
        outs = np.median(member_outputs(model, [p.x[:t] for t in ts], [p.scale] * ts.size), axis=0)  # (N, K)
        outs = np.clip(np.nan_to_num(outs), -model._out_max, model._out_max)
        path = spread_path(p.x)
        for t, row in zip(ts, outs):
            target = np.full(K, np.nan)
            ahead = p.x[t : t + K]
            target[: ahead.size] = (ahead - p.x[t - 1]) / p.scale
            resid.append(np.abs(target - row) * p.scale / path[t])
        if not has_val:
            backtests.append({"n": 0, **dict.fromkeys(BACKTEST_KEYS), "mase_scale": 0.0})
            continue
        y_hat = p.values_at(p.x[ts - 1] + outs[:, 0] * p.scale, ts)
        actual, naive = y[ts], y[ts - 1]
        scale = naive_scale(y[:s]) if s > 1 else 0.0
        bt = {"n": int(ts.size), "mase_scale": scale}
        for prefix, f in (("", y_hat), ("naive_", naive)):
            bt[prefix + "mae"] = mae(actual, f)
            bt[prefix + "rmse"] = rmse(actual, f)
            bt[prefix + "smape"] = smape(actual, f)
            bt[prefix + "mase"] = bt[prefix + "mae"] / scale if scale > 0 else None
        bt["relative_mae"] = bt["mae"] / bt["naive_mae"] if bt["naive_mae"] > 0 else None
        backtests.append(bt)
    Q, counts = residual_quantiles(np.array(resid).astype(np.float32))
    return backtests, Q, counts


@pytest.mark.parametrize("case", ["seasonal", "many", "no-validation", "no-validation-short", "flat-start"])
def test_backtests_and_interval_residuals_are_the_members_median_on_the_validation_part(case):
    kw = dict(SMALL, refit=False)
    if case == "seasonal":
        ys, kw = [seasonal(70, level=30.0)], dict(kw, season_length=4)
    elif case == "many":  # different lengths, scales and validation parts; one on a linear scale
        ys, kw = [prices(60, 1, 5.0), prices(25, 2, 80.0), walk(40, seed=6), rising(3)], dict(kw, season_length=1)
    elif case == "no-validation":  # intervals from the newest 50 cuts, no backtest
        ys, kw = [walk(90, start=20.0)], dict(kw, season_length=1, val_fraction=0.0)
    elif case == "no-validation-short":  # fewer than 50 cuts: all of them, from the first
        ys, kw = [walk(30, start=20.0)], dict(kw, season_length=1, val_fraction=0.0)
    else:  # a naive forecast without error before the validation part: no MASE
        ys, kw = [np.r_[np.full(25, 7.0), walk(5, seed=8, start=7.0)]], dict(kw, season_length=1, transform="linear")
    fit = RNNForecaster(**kw)
    model = fit.fit(ys[0]) if len(ys) == 1 else fit.fit_many(ys)
    preps = prepared(ys, kw["season_length"], kw.get("transform", "auto"))
    backtests, Q, counts = scored(model, ys, preps)
    assert len(model.backtests_) == len(ys)
    for got, expected in zip(model.backtests_, backtests):
        assert set(got) >= set(expected)
        for key, value in expected.items():
            if value is None:
                assert got[key] is None, key
            else:
                assert got[key] == pytest.approx(value, rel=1e-9), key
    if case.startswith("no-validation"):
        assert model.backtests_ == backtests  # every score there, None
    if case == "flat-start":
        assert model.backtest_["mase_scale"] == 0.0 and model.backtest_["mase"] is None
    np.testing.assert_array_equal(model._counts, counts)
    # residuals are kept in float32 (the one record of a group fit that grows with its windows):
    # float64 ones would move the quantiles by more than 1e-9
    np.testing.assert_allclose(model._Q, Q, rtol=1e-9, atol=1e-12)


def largest_change(p, K, end):
    """The largest |x[t + k] - x[t - 1]| / scale over the windows' targets before ``end``."""
    return max(abs(p.x[t + k] - p.x[t - 1]) / p.scale for t in range(1, end) for k in range(K) if t + k < end)


@pytest.mark.parametrize("season_length, jump", [(1, 1.0), (4, 1.0), (4, 1.8)])
def test_a_refit_trains_again_on_everything_and_keeps_the_validation_scores(season_length, jump):
    y = seasonal(70, level=30.0) * np.r_[np.ones(64), np.full(6, jump)]  # a jump in the validation part
    kept = RNNForecaster(**SMALL, season_length=season_length, refit=False).fit(y)
    refit = RNNForecaster(**SMALL, season_length=season_length).fit(y)
    assert refit.backtests_ == kept.backtests_
    np.testing.assert_array_equal(refit._Q, kept._Q)
    p, K = refit._preps[0], refit.horizon_
    split = split_point(p.n, 0.2)
    assert kept._out_max == pytest.approx(1.5 * largest_change(p, K, split), rel=1e-12)
    assert refit._out_max == pytest.approx(1.5 * largest_change(p, K, p.n), rel=1e-12)
    assert (refit._out_max > kept._out_max) == (jump > 1)  # the newest part moved more than anything before
    # the read-out bias starts at the (shrunk) mean change over all the windows now
    _, Y, M = cut_windows(p.x, 1, K, p.scale, np.arange(1, p.n))
    by = shrunk_mean_targets(SimpleNamespace(Y=Y, M=M))
    trained = [m.best_epoch > 0 for m in kept._members]
    assert all(trained) == (season_length == 1) and any(trained) == all(trained)
    for a, b, was_trained in zip(kept._members, refit._members, trained):
        assert a.best_epoch == b.best_epoch and a.history == b.history
        if was_trained:  # trained again from the same start on everything
            assert not np.allclose(a.params["Why"], b.params["Why"])
        else:  # left at the start, with the bias of everything
            np.testing.assert_allclose(b.params["by"], by, rtol=1e-12)
            assert not np.allclose(a.params["by"], by)
            for key in a.params:
                if key != "by":
                    np.testing.assert_array_equal(a.params[key], b.params[key])


def test_the_repr_shows_the_settings_that_differ_from_the_defaults():
    assert repr(RNNForecaster()) == "RNNForecaster()"
    assert repr(RNNForecaster(lr=0.01, hidden_size=8, seed=0)) == "RNNForecaster(hidden_size=8, lr=0.01)"


def test_fit_many_needs_a_series():
    with pytest.raises(ValueError, match=r"^fit_many needs at least one series$"):
        RNNForecaster().fit_many([])


def test_combine_leaves_its_parts_as_they_were():
    ys = [rising(30, s) for s in range(3)]
    parts = parts_of(ys, [2, 0, 1])
    before = [pickle.dumps(p) for p in parts]
    combined = RNNForecaster.combine(parts)
    assert [pickle.dumps(p) for p in parts] == before
    assert combined.members_ == [0, 1, 2] and [p.members_ for p in parts] == [[2], [0], [1]]


@pytest.mark.parametrize("key, error", [("horizon", "KeyError: 'horizon'"), ("members", "KeyError: 'members'")])
def test_a_blob_without_what_a_model_needs_names_what_is_missing(key, error):
    model = RNNForecaster(**SMALL, season_length=1).fit(rising(20))
    meta, arrays = persist.unpack(model.to_bytes())
    del meta[key]
    with pytest.raises(ValueError, match="^" + re.escape(f"corrupt tickcast model blob: {error}") + "$"):
        RNNForecaster.from_bytes(persist.pack(meta, arrays))


# ---------------------------------------------------------------- what each network is trained with
@pytest.fixture
def runs(monkeypatch):
    """The jobs of every engine.run a fit makes (the real run, watched)."""
    seen: list[list] = []
    real = ensemble.engine.run

    def watched(stack, jobs, dtype):
        seen.append(list(jobs))
        return real(stack, jobs, dtype)

    monkeypatch.setattr(ensemble.engine, "run", watched)
    return seen


def test_each_phase_trains_its_networks_with_its_own_settings(runs):
    ys = [seasonal(60, level=40.0, seed=s) for s in range(3)] + [seasonal(30, level=40.0, seed=9)]
    kw = dict(SMALL, season_length=1, transform="linear", min_delta=0.04, significance=1.0, patience=4, max_windows=40)
    kw["lookbacks"], kw["ensemble"], kw["max_window"] = [0.1, 1.5, 100.0], 4, 30
    cold = RNNForecaster(**kw).fit_many(ys)
    K, S = cold.horizon_, len(ys)
    L = [min(max(2, round(b * K)), 30, 59) for b in (0.1, 1.5, 100.0, 0.1)]
    assert [m.L for m in cold._members] == L == [2, 12, 30, 2]
    splits = [split_point(y.size, 0.2) for y in ys]
    train = sum(s - max(1, s - 40) for s in splits)
    val = sum(y.size - s for y, s in zip(ys, splits))
    everything = sum(y.size - max(1, y.size - 40) for y in ys)
    first, refit = runs
    for j, job in enumerate(first):
        st = job.settings
        assert (len(job.train), len(job.val), job.train.L, job.val.L) == (train, val, L[j], L[j])
        assert (st.epochs, st.batch_size, st.lr, st.patience, st.max_backoffs) == (
            3,
            auto_batch_size(train),
            3e-3,
            4,
            6,
        )
        assert (st.optimizer, st.clip, st.clip_mode, st.loss) == ("adam", 1.0, "norm", "mae")
        assert st.min_delta == pytest.approx(0.04 / np.sqrt(S)) and st.significance == pytest.approx(1.0 / np.sqrt(S))
        assert job.record
    for j, job in enumerate(refit):
        st = job.settings
        assert (len(job.train), job.val, job.train.L, job.record) == (everything, None, L[j], False)
        assert (st.epochs, st.batch_size, st.patience) == (cold._members[j].best_epoch, auto_batch_size(everything), 0)
        assert st.min_delta == pytest.approx(0.04 / np.sqrt(S)) and st.lr == 3e-3
    assert all(m.best_epoch > 0 for m in cold._members)
    cold._members[3].params["Why"][:] = 0.0  # as if validation had kept none of its training
    runs.clear()
    RNNForecaster(**{**kw, "warm_windows": 7, "batch_size": 5}).fit_many(ys, warm_start=cold)
    warm, nothing = runs  # no refit after a warm start
    assert nothing == []
    for j, job in enumerate(warm):
        st = job.settings
        untrained = j == 3
        assert (len(job.train), job.val, job.train.L) == (7 * S, None, L[j])
        assert (st.epochs, st.batch_size, st.lr, st.patience) == (0 if untrained else 3, 5, 3e-3 * 0.3, 0)
        assert st.min_delta == 0.0 and st.significance == 0.0
    runs.clear()
    RNNForecaster(**{**kw, "warm_windows": 60}).fit_many(ys, warm_start=cold)  # more than a series has
    assert [len(job.train) for job in runs[0]] == [sum(y.size - 1 for y in ys)] * 4


class _Loud(ElmanRNN):
    """The Elman cell plus a million, minus a million after a rise: forecasts beyond any change
    the series has shown, up and down."""

    name = "test-loud"

    def forward(self, p, X):
        out, cache = super().forward(p, X)
        return out + 1e6 * np.where(X[:, -2:-1, 0] < 0, -1.0, 1.0), cache


@pytest.mark.parametrize("kind", ["walk", "flat"])
def test_validation_forecasts_are_clipped_to_the_largest_change_seen(monkeypatch, kind):
    monkeypatch.setitem(CELLS, _Loud.name, _Loud)
    y = walk(60, start=30.0) if kind == "walk" else np.full(40, 5.0)
    # a read-out that starts at random weights: the networks' outputs are computed, never the bias alone
    kw = dict(SMALL, cell="test-loud", season_length=1, transform="linear", refit=False, out_scale=0.1)
    model = RNNForecaster(**kw).fit(y)
    preps = prepared([y], 1, "linear")
    backtests, Q, counts = scored(model, [y], preps)
    assert model._out_max == pytest.approx(
        1.5e-12 if kind == "flat" else 1.5 * largest_change(preps[0], model.horizon_, split_point(y.size, 0.2))
    )
    for key, value in backtests[0].items():
        assert model.backtest_[key] == (None if value is None else pytest.approx(value, rel=1e-9)), key
    np.testing.assert_array_equal(model._counts, counts)
    np.testing.assert_allclose(model._Q, Q, rtol=1e-9, atol=1e-12)
    if kind == "walk":  # clipped both ways: every forecast error is at least the largest change's half
        assert model.backtest_["mae"] > model.backtest_["naive_mae"]


def test_parts_with_more_than_a_chunk_of_validation_windows_score_as_the_whole_fit():
    ys = [walk(300, seed=s, start=500.0) for s in range(80)]  # 80 x 60 validation windows: two chunks of 4096
    kw = dict(SMALL, season_length=1, epochs=1)
    whole = RNNForecaster(**kw).fit_many(ys)
    parts = [RNNForecaster(**kw).fit_many(ys, members=m) for m in ([0, 2], [1])]
    combined = RNNForecaster.combine(parts)
    assert combined.backtests_ == whole.backtests_
    np.testing.assert_array_equal(combined._counts, whole._counts)
    np.testing.assert_allclose(combined._Q, whole._Q, rtol=1e-12)


@pytest.mark.parametrize("n, lengths", [(3, [2, 2, 2]), (10, [9, 9, 9]), (15, [12, 14, 14]), (40, [12, 16, 24])])
def test_a_member_s_window_is_at_most_the_series_less_one_point(n, lengths):
    model = RNNForecaster(**SMALL, season_length=1).fit(rising(n))
    assert model.horizon_ == 8 and [m.L for m in model._members] == lengths


def test_units_fit_in_stacks_of_any_size_give_the_same_models(monkeypatch):
    ys = [walk(40 + 10 * s, seed=s, start=60.0) for s in range(4)] + [seasonal(50, level=9.0)]
    together = RNNForecaster(**SMALL, season_length=1).fit_each(ys)
    monkeypatch.setattr(ensemble, "STACK_BYTES", 1)  # every unit in a stack of its own
    alone = RNNForecaster(**SMALL, season_length=1).fit_each(ys)
    for a, b in zip(together, alone):
        np.testing.assert_allclose(a.predict(5), b.predict(5), rtol=1e-9)
        assert a.backtest_ == pytest.approx(b.backtest_, rel=1e-9)
        for ha, hb in zip(a.histories_, b.histories_):
            assert [e["val_loss"] for e in ha] == pytest.approx([e["val_loss"] for e in hb], rel=1e-9)


def test_a_warm_fit_s_members_keep_the_seeds_they_were_born_with():
    y = seasonal(60, level=20.0)
    cold = RNNForecaster(**SMALL, season_length=1, seed=5).fit(y)
    warm = RNNForecaster(**SMALL, season_length=1).fit(y, warm_start=cold)
    assert [m.seed for m in cold._members] == [m.seed for m in warm._members] == [5, 6, 7]


def test_a_float32_fit_trains_and_scores_in_float32(monkeypatch):
    seen = []
    run, chunks = ensemble.engine.run, ensemble.passes.forward_chunks

    def watched_run(stack, jobs, dtype):
        seen.append(("run", np.dtype(dtype)))
        return run(stack, jobs, dtype)

    def watched_chunks(stack, W, sources, dtype=np.float64):
        seen.append(("chunks", np.dtype(dtype)))
        return chunks(stack, W, sources, dtype)

    monkeypatch.setattr(ensemble.engine, "run", watched_run)
    monkeypatch.setattr(ensemble.passes, "forward_chunks", watched_chunks)
    RNNForecaster(**{**SMALL, "precision": "float32"}, season_length=1).fit(seasonal(60, level=20.0))
    kinds = [kind for kind, _ in seen]
    assert kinds.count("run") == 2 and "chunks" in kinds  # fit and refit; scoring
    assert {dtype for _, dtype in seen} == {np.dtype(np.float32)}
    seen.clear()
    monkeypatch.setattr(ensemble, "STACK_BYTES", 1)  # two stacks
    RNNForecaster(**{**SMALL, "precision": "float32"}, season_length=1).fit_each([seasonal(60), seasonal(50, seed=4)])
    assert [kind for kind, _ in seen].count("run") == 4 and {dtype for _, dtype in seen} == {np.dtype(np.float32)}


def test_a_refit_that_diverges_fails_the_fit(monkeypatch):
    run = ensemble.engine.run

    def refit_diverges(stack, jobs, dtype):
        out = run(stack, jobs, dtype)
        for job in jobs:
            if not job.record:  # the refit's jobs (nobody reads their history)
                job.error = TrainingDiverged("the refit diverged")
        return out

    monkeypatch.setattr(ensemble.engine, "run", refit_diverges)
    y = seasonal(60, level=20.0)
    with pytest.raises(TrainingDiverged, match="^the refit diverged$"):
        RNNForecaster(**SMALL, season_length=1).fit(y)
    out = RNNForecaster(**SMALL, season_length=1).fit_each([y, y[:40]], errors="return")
    assert [str(e) for e in out] == ["the refit diverged"] * 2
    assert isinstance(RNNForecaster(**SMALL, season_length=1, refit=False).fit(y), RNNForecaster)


def test_a_series_scored_beside_a_shorter_one_scores_as_alone():
    """The validation windows of fit_each's units go through the networks in chunks of at most 512
    a network: the long series' last chunk holds none of the short one's windows."""
    ys = [walk(40, seed=1, start=50.0), walk(3000, seed=2, start=50.0)]
    _, long = RNNForecaster(**SMALL, season_length=1).fit_each(ys)
    alone = RNNForecaster(**SMALL, season_length=1).fit(ys[1])
    assert long.backtest_["n"] == 600 and long.backtest_ == pytest.approx(alone.backtest_, rel=1e-9)
    np.testing.assert_allclose(long._Q, alone._Q, rtol=1e-6)


# ---------------------------------------------------------------- the window bank
def test_a_window_set_refuses_windows_longer_than_the_bank_pads_and_counts_empty_ranges_as_none():
    preps = [prepare(walk(n, seed=n, start=30.0), 1) for n in (12, 20)]
    bank = Bank(preps, before=5, after=3)
    ok = Windows(bank, [0, 1], [4, 3], [4, 9], [12, 20], 5, 3)  # the first range is empty
    assert len(ok) == 6 and ok.owners()[0].tolist() == [1] * 6
    assert len(Windows(bank, [0, 1], [7, 3], [4, 9], [12, 20], 5, 3)) == 6  # hi below lo: none either
    for L, K in ((6, 3), (5, 4), (6, 4)):
        with pytest.raises(
            ValueError, match=re.escape(f"windows of L={L}, K={K} do not fit the bank (L <= 5, K <= 3)")
        ):
            Windows(bank, [0], [1], [9], [12], L, K)
    with pytest.raises(ValueError, match=r"^windows of L=6 do not fit the bank \(L <= 5\)$"):
        ok.with_length(6)


def test_a_batch_over_several_window_sets_skips_the_empty_ones():
    preps = [prepare(walk(n, seed=n, start=30.0), 1) for n in (12, 20, 15)]
    bank = Bank(preps, before=6, after=3)
    empty = Windows(bank, [0], [5], [5], [12], 4, 3)
    a = Windows(bank, [0, 1], [1, 10], [6, 20], [12, 20], 4, 3)
    b = Windows(bank, [2], [2], [15], [15], 6, 3)
    assert len(empty) == 0
    assert (
        Gather.usable([a, empty, b])
        and not Gather.usable([])
        and not Gather.usable([a, Windows(Bank(preps, 6, 3), [0], [1], [5], [12], 4, 3)])
    )
    gather = Gather([a, empty, b])
    ids = np.array([[0, 7, 14, 3], [1, 12, 5, 0]])
    X, Y, M = np.zeros((2, 4, 6, 1)), np.zeros((2, 4, 3)), np.zeros((2, 4, 3))
    gather.fill(np.array([0, 2]), ids, np.array([4, 3]), X, Y, M)
    for row, (w, n) in enumerate(((a, 4), (b, 3))):
        Xe, Ye, Me = np.zeros((n, 6, 1)), np.zeros((n, 3)), np.zeros((n, 3))
        w.fill(ids[row, :n], Xe, Ye, Me)
        np.testing.assert_array_equal(X[row, :n, 6 - w.L :], Xe[:, 6 - w.L :])
        np.testing.assert_array_equal(Y[row, :n], Ye)
        np.testing.assert_array_equal(M[row, :n], Me)
    np.testing.assert_array_equal(M[1, 3:], 0.0)


# ---------------------------------------------------------------- forward passes over window sets
def test_evaluating_window_sets_in_chunks_is_each_window_through_its_network():
    """Window sets that are not cut from one bank (arrays of windows, as the engine's reference
    tests give it) go through their networks set by set, more than one chunk of 512 each."""
    rng = np.random.default_rng(4)
    stack = make_stack("rnn", 1, 5, 3)
    sets = []
    for n, L, masked in ((700, 6, False), (40, 9, False), (30, 4, True)):
        M = np.zeros((n, 3)) if masked else (rng.random((n, 3)) > 0.3).astype(float)
        sets.append(Data(rng.standard_normal((n, L, 1)), rng.standard_normal((n, 3)), M))
    flats = []
    for s in range(3):
        flat, params = allocate(stack.shapes)
        flat[:] = flatten(stack.init_params(np.random.default_rng(s), 0.5), stack.shapes)
        if s == 2:
            params["Why"][:] = 0.0  # a read-out of zeros: its bias is all it forecasts
        flats.append(flat)
    W = np.stack(flats)
    losses, per_window, weight = passes.evaluate(stack, W, sets, "mae")
    for i, data in enumerate(sets):
        out = stacked_forward(stack, W[i : i + 1], data.X[None], np.array([data.L]))[0]
        expected = np.sum(np.abs(out - data.Y) * data.M, axis=1)
        np.testing.assert_allclose(per_window[i], expected, rtol=1e-12, atol=1e-15)
        assert weight[i] == data.M.sum()
        assert losses[i] == (None if data.M.sum() == 0 else pytest.approx(expected.sum() / data.M.sum(), rel=1e-12))
    assert list(passes.forward_chunks(stack, W[:0], [])) == []
