"""Many AutoForecasters at once and one over several processes: fit_each equals fit series by
series, combine(fit_many_part(...)) equals fit_many; what the service reads; bytes."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from tickcast.models import AutoForecaster, RNNForecaster
from tickcast.models.auto_parts import assign, slices
from tickcast.models.conformal import Conformal, on_log_scale, residuals

FAST_RNN = {"ensemble": 2, "epochs": 3, "hidden_size": 8}
DATA = Path(__file__).resolve().parent / "data"
# fit_each and combine are the same arithmetic as fit and fit_many except for the challengers'
# sums over series padded to their chunk's longest (AutoETS fits CHUNK series at once), which
# can reassociate: forecasts agree to this relative tolerance (in practice they are identical).
RTOL = 1e-9


def series(n, m=12, seed=0, level=100.0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return level + 0.3 * t + 6 * np.sin(2 * np.pi * t / m) + rng.normal(0, 1.0, n)


def assert_same_model(a: AutoForecaster, b: AutoForecaster, h: int = 20, rtol: float = RTOL) -> None:
    for x, y in zip(a.predict_many(h), b.predict_many(h)):
        np.testing.assert_allclose(x, y, rtol=rtol)
    for x, y in zip(a.predict_interval_many(h, [0.8, 0.95]), b.predict_interval_many(h, [0.8, 0.95])):
        for (l1, u1), (l2, u2) in zip(x, y):
            np.testing.assert_allclose(l1, l2, rtol=rtol)
            np.testing.assert_allclose(u1, u2, rtol=rtol)
    for x, y in zip(a.predict_members_many(h), b.predict_members_many(h)):
        assert set(x) == set(y)
        for k in x:
            np.testing.assert_allclose(x[k], y[k], rtol=rtol)
    np.testing.assert_allclose(a._W, b._W, rtol=rtol)
    assert a._names == b._names and a.chosen_ == b.chosen_
    assert a.warm_started_ == b.warm_started_ and a._rnn_index == b._rnn_index


@pytest.fixture(scope="module")
def group():
    ys = [series(50 + 9 * s, 12, s) for s in range(7)] + [np.array([5.0, 6.0]), series(30, 12, 9)]
    return ys, AutoForecaster(season_length=12, rnn=FAST_RNN).fit_many(ys)


def test_fit_each_equals_fit_series_by_series():
    walks = [100 * np.exp(np.cumsum(np.random.default_rng(s).normal(0, 0.01, 3000))) for s in (6, 7)]
    ys = [series(40 + 13 * s, 12, s) for s in range(4)] + [np.array([2.0, 3.0]), series(200, 4, 5), *walks]
    seeds = list(range(len(ys)))
    each = AutoForecaster(season_length=12, rnn=FAST_RNN).fit_each(ys, seeds=seeds)
    for y, seed, got in zip(ys, seeds, each):
        assert_same_model(got, AutoForecaster(season_length=12, rnn=FAST_RNN, seed=seed).fit(y))
        assert got.seed == seed and not got.across_
    epochs = [len(h) - 1 for got in each if "rnn" in got.members_ for h in got.members_["rnn"].histories_]
    assert 0 in epochs and max(epochs) > 0  # final fits with members left untrained and trained, side by side


def test_fit_each_warm_and_cold_mixed_equals_fit():
    full = [series(60 + 10 * s, 12, s) for s in range(4)]
    prev = [AutoForecaster(season_length=12, rnn=FAST_RNN, seed=s).fit(y[:-3]) for s, y in enumerate(full)]
    warm = [prev[0], None, prev[2], None]
    each = AutoForecaster(season_length=12, rnn=FAST_RNN).fit_each(full, seeds=range(4), warm_starts=warm, epochs=2)
    for s, (y, w, got) in enumerate(zip(full, warm, each)):
        expected = AutoForecaster(season_length=12, rnn=FAST_RNN, seed=s).fit(y, warm_start=w, epochs=2)
        assert_same_model(got, expected)
        assert got.warm_started_ == (w is not None)


def test_fit_each_reports_or_raises_a_bad_series():
    ys = [series(50, 12, 0), np.array([1.0, np.nan, 2.0]), series(60, 12, 1)]
    auto = AutoForecaster(season_length=12, rnn=FAST_RNN)
    with pytest.raises(ValueError, match="series 1"):
        auto.fit_each(ys)
    out = auto.fit_each(ys, warm_starts=[None, None, auto.fit(series(40, 12, 5))], errors="return")
    assert isinstance(out[0], AutoForecaster) and isinstance(out[1], ValueError) and isinstance(out[2], ValueError)
    with pytest.raises(ValueError, match="seeds"):
        auto.fit_each(ys, seeds=[1])


@pytest.mark.parametrize("parts", [1, 2, 3])
def test_combined_parts_equal_fit_many(group, parts):
    ys, whole = group
    pieces = [
        AutoForecaster(season_length=12, rnn=FAST_RNN).fit_many_part(ys, part=k, parts=parts) for k in range(parts)
    ]
    pieces = [pickle.loads(pickle.dumps(p)) for p in reversed(pieces)]  # across processes, any order
    assert_same_model(AutoForecaster.combine(pieces), whole)


def test_warm_parts_equal_the_warm_fit_many(group):
    ys, whole = group
    new = [np.r_[y[1:], y[-1] * 1.01] if y.size > 5 else y for y in ys]
    warm = AutoForecaster(season_length=12, rnn=FAST_RNN).fit_many(new, warm_start=whole, epochs=1)
    pieces = [
        AutoForecaster(season_length=12, rnn=FAST_RNN).fit_many_part(new, part=k, parts=2, warm_start=whole, epochs=1)
        for k in range(2)
    ]
    assert_same_model(AutoForecaster.combine(pieces), warm)


def test_parts_that_do_not_belong_together_are_refused(group):
    ys, _ = group
    auto = AutoForecaster(season_length=12, rnn=FAST_RNN)
    a, b = (auto.fit_many_part(ys, part=k, parts=2) for k in range(2))
    other = AutoForecaster(season_length=12, rnn=FAST_RNN, seed=1).fit_many_part(ys, part=1, parts=2)
    moved = auto.fit_many_part([y + 1 for y in ys], part=1, parts=2)
    for bad, match in [
        ([a], "0..1"),
        ([a, a], "0..1"),
        ([a, other], "settings"),
        ([a, moved], "series"),
        ([], "needs the parts"),
    ]:
        with pytest.raises(ValueError, match=match):
            AutoForecaster.combine(bad)
    with pytest.raises(ValueError, match="part"):
        auto.fit_many_part(ys, part=2, parts=2)


def test_work_is_spread_evenly():
    assert assign([3.0, 2.4, 2.0, 1.6, 1.5, 1.2], 2) == [0, 1, 1, 0, 1, 0]
    assert slices([10] * 7, 2) == [(0, 4), (4, 7)]
    assert slices([5, 5], 3) == [(0, 1), (1, 2), (2, 2)]


def test_what_the_service_reads(group):
    ys, a = group
    params = json.loads(json.dumps(a.get_params()))
    assert AutoForecaster(**params).get_params() == a.get_params()
    rnn = a.members_["rnn"]
    assert a.history_ == rnn.history_ and a.best_epoch_ == rnn.best_epoch_ and a.n_epochs_ == rnn.n_epochs_
    assert a.transform_ == rnn.transform_ and a.transforms_[-2] is None and a.transforms_[0] == "log"
    one = a.predict_members_interval_many(6, 0.8)
    many = a.predict_members_interval_many(6, [0.8, 0.95])
    rnn_iv = rnn.predict_interval_many(6, 0.95)
    ets_iv = a.members_["ets"].predict_interval_many(6, [0.8, 0.95])
    for i, (d1, d2) in enumerate(zip(one, many)):
        assert set(d1) == set(d2) == set(a.weights_[i])
        np.testing.assert_array_equal(d1["ets"][0], ets_iv[i][0][0])
        np.testing.assert_array_equal(d2["ets"][1][1], ets_iv[i][1][1])
        if "rnn" in d1:
            np.testing.assert_array_equal(d2["rnn"][1][0], rnn_iv[a._rnn_index.index(i)][0])
    stat = AutoForecaster(season_length=12, members=("ets", "theta")).fit_many(ys)
    assert stat.history_ == [] and stat.n_epochs_ is None and stat.transforms_ == [None] * len(ys)


def test_round_trip_of_a_warm_model_and_an_old_blob(group):
    ys, a = group
    warm = AutoForecaster(season_length=12, rnn=FAST_RNN).fit_many(ys, warm_start=a, epochs=1)
    again = AutoForecaster.from_bytes(warm.to_bytes())
    assert_same_model(again, warm, rtol=0)
    assert again.warm_started_ and again.history_ == warm.history_
    blob = (DATA / "auto-d95edbc.bin").read_bytes()  # written by the AutoForecaster before warm starts
    expected = json.loads((DATA / "auto-d95edbc.json").read_text())
    old = AutoForecaster.from_bytes(blob)
    assert not old.warm_started_ and old.weights_ == expected["weights"]
    for f, e in zip(old.predict_many(20), expected["predict_20"]):
        np.testing.assert_allclose(f, e, rtol=1e-12)
    # Its residual quantiles were pooled over its series: every series uses them, with today's
    # quantile rule (for 80 % the smoothed conformal quantile: never wider than the ceil rule the
    # stored intervals were computed with; where too few residuals were left for 95 % the Laplace
    # rule replaced the Gaussian one, so those may be wider).
    (pooled,) = {id(c): c for c in old._conformal}.values()
    assert pooled.Q.ndim == 2 and len(old._conformal) == len(expected["ys"])
    points = old.predict_many(20)
    for y, f, ivs, e in zip(old._ys, points, old.predict_interval_many(20, [0.8, 0.95]), expected["intervals_20"]):
        for (lo, hi), level in zip(ivs, (0.8, 0.95)):
            want = pooled.interval(y, f, level)
            np.testing.assert_allclose(lo, want[0], rtol=1e-12)
            np.testing.assert_allclose(hi, want[1], rtol=1e-12)
        (lo, hi), (lo_then, hi_then) = ivs[0], e[0]
        assert np.all(lo >= np.array(lo_then) - 1e-9) and np.all(hi <= np.array(hi_then) + 1e-9)
        np.testing.assert_allclose(hi - lo, np.array(hi_then) - np.array(lo_then), rtol=0.2)
    longer = [np.r_[y, y[-1]] for y in expected["ys"]]
    step = AutoForecaster(**old.get_params()).fit_many(longer, warm_start=old, epochs=1)
    assert all(np.all(np.isfinite(f)) for f in step.predict_many(5))
    assert isinstance(step.members_["rnn"], RNNForecaster)


def test_across_series_each_series_intervals_come_from_its_own_validation_errors():
    """One member (AutoETS), so the combination's validation forecasts are its own: each series'
    interval is the conformal interval of that series' residuals alone, not of all series' pooled
    (a calm series keeps a narrow interval beside a wild one)."""
    rng = np.random.default_rng(3)
    t = np.arange(96)
    calm = 50 + 5 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.2, t.size)
    wild = 50 + np.cumsum(rng.standard_t(2, t.size))  # jumps its own spread does not foresee
    ys = [calm, wild, calm[::-1].copy()]
    a = AutoForecaster(season_length=12, members=("ets",)).fit_many(ys)
    ets = a.members_["ets"]
    points = a.predict_many(6)
    widths = []
    for y, f, (s, F), (lo, hi) in zip(ys, points, ets.validation_, a.predict_interval_many(6, 0.8)):
        own = Conformal.from_residuals([residuals(y, F, s, on_log_scale(y))], a.horizon_)
        want = own.interval(y, f, 0.8)
        np.testing.assert_allclose(lo, want[0], rtol=1e-12)
        np.testing.assert_allclose(hi, want[1], rtol=1e-12)
        widths.append(np.mean((hi - lo) / f))
    assert widths[0] < widths[1] and widths[2] < widths[1]
    pooled = Conformal.from_residuals(
        [residuals(y, F, s, on_log_scale(y)) for y, (s, F) in zip(ys, ets.validation_)], a.horizon_
    )
    assert not np.allclose(pooled.half_widths(6, 0.8), a._conformal[0].half_widths(6, 0.8))
