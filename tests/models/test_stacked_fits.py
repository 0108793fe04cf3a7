"""Many networks as one computation: fit_each equals fitting each series alone, fit_many in parts
combines into fit_many, windows cut on the fly equal the materialised ones, and what one network
computes does not depend on the networks stacked beside it."""

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from tickcast.models import RNNForecaster, SeriesTooShort
from tickcast.models.bank import Bank, Gather, Windows
from tickcast.models.engine import Job, run
from tickcast.models.optim import SGD, Adam, StackedAdam, StackedSGD, clip_flat, clip_rows
from tickcast.models.params import allocate, flatten
from tickcast.models.stack import make_stack
from tickcast.models.train import Data, TrainSettings
from tickcast.models.windows import assemble, prepare

DATA = Path(__file__).resolve().parent / "data"

# fit_each stacks every member of every series into one computation; each network still takes
# exactly its own steps, so the results equal separate fits up to the order of floating-point sums
# in a padded batch (BLAS blocking). Measured: identical bits on these series; allowed: 1e-8.
RTOL = 1e-8


def _series(make_series):
    return [
        make_series("sine", 160, seed=1),
        make_series("walk", 400, seed=2, drift=0.002),
        make_series("ar1", 90, seed=3, level=5.0),  # crosses zero: linear scale
        make_series("sine", 30, seed=4, period=4),  # short: short windows
        np.array([3.0, 3.5, 3.2, 3.9, 4.1]),  # no validation part
        make_series("walk", 250, seed=5),
    ]


def _same_model(a: RNNForecaster, b: RNNForecaster, h: int = 14) -> None:
    np.testing.assert_allclose(b.predict(h), a.predict(h), rtol=RTOL)
    for x, y in zip(b.predict_interval(h, 0.8), a.predict_interval(h, 0.8)):
        np.testing.assert_allclose(x, y, rtol=RTOL)
    assert len(b.histories_) == len(a.histories_)
    for ha, hb in zip(a.histories_, b.histories_):
        assert [e["epoch"] for e in ha] == [e["epoch"] for e in hb]
        for ea, eb in zip(ha, hb):
            for key in ("train_loss", "grad_norm", "clip_fraction", "lr"):
                assert eb[key] == pytest.approx(ea[key], rel=RTOL, abs=1e-300), key
            assert (ea["val_loss"] is None) == (eb["val_loss"] is None)
            if ea["val_loss"] is not None:
                assert eb["val_loss"] == pytest.approx(ea["val_loss"], rel=RTOL)
    assert (b.best_epoch_, b.n_epochs_, b.window_, b.horizon_) == (a.best_epoch_, a.n_epochs_, a.window_, a.horizon_)
    for key in ("n", "mae", "smape", "naive_mae"):
        va, vb = a.backtest_[key], b.backtest_[key]
        assert (va is None and vb is None) or vb == pytest.approx(va, rel=RTOL)
    assert b.get_params() == a.get_params()


def test_fit_each_equals_fitting_each_series_alone(make_series):
    ys = _series(make_series)
    seeds = [11, 12, 13, 14, 15, 16]
    params = {"season_length": 0, "epochs": 6, "hidden_size": 8}  # periods detected: horizons differ
    alone = [RNNForecaster(**params, seed=s).fit(y) for y, s in zip(ys, seeds)]
    each = RNNForecaster(**params).fit_each(ys, seeds=np.array(seeds))  # NumPy integers will do
    assert len({m.horizon_ for m in alone}) > 1  # several stacks, one per horizon
    for a, b in zip(alone, each):
        _same_model(a, b)
        back = RNNForecaster.from_bytes(b.to_bytes())
        np.testing.assert_array_equal(back.predict(9), b.predict(9))


def test_fit_each_mixes_cold_and_warm_starts(make_series):
    ys = _series(make_series)[:3]
    params = {"season_length": 1, "epochs": 4, "hidden_size": 8}
    previous = [RNNForecaster(**params, seed=20 + i).fit(y[:-3]) for i, y in enumerate(ys)]
    warm = [previous[0], None, previous[2]]
    alone = [
        RNNForecaster(**params, seed=20 + i).fit(y, warm_start=w, epochs=2) for i, (y, w) in enumerate(zip(ys, warm))
    ]
    each = RNNForecaster(**params).fit_each(ys, seeds=[20, 21, 22], warm_starts=warm, epochs=2)
    assert [m.warm_started_ for m in each] == [True, False, True]
    for a, b in zip(alone, each):
        _same_model(a, b)


def test_fit_each_reports_or_returns_a_series_it_cannot_fit(make_series):
    ys = [make_series("sine", 80, seed=1), np.array([1.0, 2.0]), make_series("walk", 60, seed=2)]
    with pytest.raises(SeriesTooShort):
        RNNForecaster(epochs=1).fit_each(ys)
    out = RNNForecaster(epochs=1).fit_each(ys, errors="return")
    assert isinstance(out[1], SeriesTooShort)
    assert all(isinstance(m, RNNForecaster) and np.all(np.isfinite(m.predict(3))) for m in (out[0], out[2]))
    mismatched = RNNForecaster(hidden_size=4, epochs=1).fit(ys[0])
    out = RNNForecaster(epochs=1).fit_each([ys[0], ys[2]], warm_starts=[mismatched, None], errors="return")
    assert isinstance(out[0], ValueError) and "hidden_size" in str(out[0]) and isinstance(out[1], RNNForecaster)
    with pytest.raises(ValueError, match="2 series but 3 seeds"):
        RNNForecaster().fit_each(ys[:2], seeds=[1, 2, 3])


def _family(n_series=24, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_series):
        n = int(rng.integers(40, 90))
        t = np.arange(n)
        level, phase = rng.uniform(20, 200), rng.uniform(0, 2 * np.pi)
        out.append(level * (1 + 0.2 * np.sin(2 * np.pi * t / 12 + phase)) * np.exp(rng.normal(0, 0.03, n)))
    return out


def test_parts_of_fit_many_combine_into_fit_many():
    """Members 0 and 1 in one process, member 2 in another (the parts travel pickled), combined:
    the same model as fit_many at once, down to its validation scores and interval residuals."""
    ys = _family()
    kw = {"season_length": 12, "epochs": 5, "hidden_size": 8, "seed": 3}
    whole = RNNForecaster(**kw).fit_many(ys)
    a = RNNForecaster(**kw).fit_many(ys, members=[0, 1])
    b = pickle.loads(pickle.dumps(RNNForecaster(**kw).fit_many(ys, members=[2])))
    assert a.members_ == [0, 1] and b.members_ == [2]
    with pytest.raises(RuntimeError, match="combine"):
        a.predict_many(3)
    both = RNNForecaster.combine([b, a])
    assert both.members_ == [0, 1, 2]
    for x, y in zip(both.predict_many(20), whole.predict_many(20)):
        np.testing.assert_allclose(x, y, rtol=RTOL)
    for (lo, up), (lo2, up2) in zip(both.predict_interval_many(20), whole.predict_interval_many(20)):
        np.testing.assert_allclose(lo, lo2, rtol=RTOL)
        np.testing.assert_allclose(up, up2, rtol=RTOL)
    np.testing.assert_allclose(both._Q, whole._Q, rtol=RTOL)
    assert both.histories_ == whole.histories_ and both.backtests_ == whole.backtests_
    assert RNNForecaster.from_bytes(both.to_bytes()).predict_many(4)[5].tolist() == both.predict_many(4)[5].tolist()


def test_warm_parts_combine_into_the_warm_fit_many():
    ys = _family(n_series=10)
    kw = {"season_length": 12, "epochs": 3, "hidden_size": 8}
    previous = RNNForecaster(**kw).fit_many([y[:-2] for y in ys])
    whole = RNNForecaster(**kw).fit_many(ys, warm_start=previous, epochs=2)
    parts = [RNNForecaster(**kw).fit_many(ys, warm_start=previous, epochs=2, members=m) for m in ([2], [0, 1])]
    assert [len(p.histories_) for p in parts] == [1, 2]
    both = RNNForecaster.combine(parts)
    assert both.warm_started_ and both.histories_ == whole.histories_
    for x, y in zip(both.predict_many(12), whole.predict_many(12)):
        np.testing.assert_allclose(x, y, rtol=RTOL)


def test_combine_checks_its_parts():
    ys = _family(n_series=6)
    kw = {"season_length": 12, "epochs": 1, "hidden_size": 4}
    a = RNNForecaster(**kw).fit_many(ys, members=[0, 1])
    b = RNNForecaster(**kw).fit_many(ys, members=[1, 2])
    with pytest.raises(ValueError, match="each of 0..2 once"):
        RNNForecaster.combine([a, b])
    with pytest.raises(ValueError, match="each of 0..2 once"):
        RNNForecaster.combine([a])
    other = RNNForecaster(**kw).fit_many(ys[:-1] + [ys[-1] * 2], members=[2])
    with pytest.raises(ValueError, match="different series"):
        RNNForecaster.combine([a, other])
    with pytest.raises(ValueError, match="parts"):
        RNNForecaster.combine([a, RNNForecaster(**kw).fit_many(ys)])
    with pytest.raises(ValueError, match="members"):
        RNNForecaster(**kw).fit_many(ys, members=[3])


def test_windows_cut_on_the_fly_equal_the_materialised_ones(make_series):
    preps = [prepare(make_series("walk", n, seed=n), 1) for n in (5, 40, 130)]
    ranges = [(1, 5, 5), (10, 33, 36), (60, 130, 120)]
    L, K = 9, 4
    X, Y, M, owner, cut = assemble(preps, L, K, ranges)
    bank = Bank(preps, before=12, after=6)
    lo, hi, end = np.array(ranges).T
    windows = Windows(bank, np.arange(3), lo, hi, end, L, K)
    assert len(windows) == X.shape[0]
    ids = np.random.default_rng(0).permutation(len(windows))[:50]
    Xw, Yw, Mw = np.full((50, 12, 1), np.nan), np.zeros((50, K)), np.zeros((50, K))
    windows.fill(ids, Xw, Yw, Mw)
    np.testing.assert_array_equal(Xw[:, 12 - L :], X[ids])
    np.testing.assert_array_equal(Yw, Y[ids])
    np.testing.assert_array_equal(Mw, M[ids])
    s, c = windows.owners()
    np.testing.assert_array_equal(s, owner)
    np.testing.assert_array_equal(c, cut)
    # several window sets at once, a ragged batch: the same windows, the rest masked
    other = windows.with_length(5)
    gather = Gather([windows, other])
    Xg, Yg, Mg = np.zeros((2, 50, 12, 1)), np.zeros((2, 50, K)), np.zeros((2, 50, K))
    gather.fill(np.array([0, 1]), np.stack([ids, ids]), np.array([50, 20]), Xg, Yg, Mg)
    np.testing.assert_array_equal(Xg[0, :, 12 - L :], X[ids])
    np.testing.assert_array_equal(Xg[1, :20, 12 - 5 :], X[ids[:20], L - 5 :])
    np.testing.assert_array_equal(Yg[0], Y[ids])
    np.testing.assert_array_equal(Mg[1, 20:], 0.0)


def _job(rng_seed, data, val, epochs=4, batch=8, lr=1e-2):
    cell = make_stack("rnn", 1, 6, 3)
    flat, _ = allocate(cell.shapes)
    flat[:] = flatten(cell.init_params(np.random.default_rng(rng_seed), 0.5), cell.shapes)
    settings = TrainSettings(epochs, batch, lr, "adam", 1.0, "norm", 2, 0.0, 3)
    return cell, Job(flat, data, val, settings, np.random.default_rng(rng_seed + 100))


def test_a_network_trains_the_same_alone_or_in_a_stack():
    rng = np.random.default_rng(1)
    datasets = []
    for n, L in ((40, 7), (23, 5), (64, 7), (9, 3)):
        X, Y = rng.standard_normal((n, L, 1)), rng.standard_normal((n, 3))
        M = (rng.random((n, 3)) > 0.2).astype(float)
        cut = int(0.8 * n)
        datasets.append((Data(X[:cut], Y[:cut], M[:cut]), Data(X[cut:], Y[cut:], M[cut:])))
    alone = []
    for i, (data, val) in enumerate(datasets):
        cell, job = _job(i, data, val)
        run(cell, [job])
        alone.append(job)
    jobs = [_job(i, data, val)[1] for i, (data, val) in enumerate(datasets)]
    run(make_stack("rnn", 1, 6, 3), jobs)
    for a, b in zip(alone, jobs):
        assert a.history == b.history and (a.best_epoch, a.n_epochs) == (b.best_epoch, b.n_epochs)
        np.testing.assert_array_equal(a.flat, b.flat)


def test_clipping_and_optimizers_act_per_network():
    rng = np.random.default_rng(2)
    g = rng.standard_normal((4, 30)) * np.array([[0.01], [3.0], [0.5], [40.0]])
    for mode in ("norm", "value"):
        clipped, norms, was = clip_rows(g, 1.0, mode)
        for i in range(4):
            c, n, w = clip_flat(g[i], 1.0, mode)
            np.testing.assert_allclose(clipped[i], c, rtol=1e-15)
            assert norms[i] == pytest.approx(n, rel=1e-14) and was[i] == w
    theta = rng.standard_normal((4, 30))
    for stacked, single in ((StackedAdam(4, 30, [0.1, 0.2, 0.3, 0.4]), Adam), (StackedSGD(4, 30, 0.05), SGD)):
        lrs = np.broadcast_to(stacked.lr, (4,))
        ones = [single(30, lr) for lr in lrs]
        a, b = theta.copy(), theta.copy()
        for step in range(5):
            grad = rng.standard_normal((4, 30))
            rows = np.array([0, 2, 3]) if step == 2 else None  # network 1 sits a step out
            stacked.step(a, grad if rows is None else grad[rows], rows)
            for i, opt in enumerate(ones):
                if rows is None or i in rows:
                    opt.step(b[i], grad[i])
        np.testing.assert_allclose(a, b, rtol=1e-13)


def test_float32_training_stays_close_to_float64(make_series):
    """The precision knob: forward and backward passes in float32, weights, optimizer, losses and
    early stopping in float64 (gradient checks above stay float64)."""
    y = make_series("sine", 300, seed=7)
    a = RNNForecaster(season_length=12, epochs=6, precision="float64").fit(y)
    b = RNNForecaster(season_length=12, epochs=6).fit(y)  # float32: the default
    assert b.config.precision == "float32" and a.config.precision == "float64" and a.best_epoch_ == b.best_epoch_
    np.testing.assert_allclose(b.predict(12), a.predict(12), rtol=1e-4)
    # and float32 it is, not the float64 arithmetic under another name (the speed is the point):
    # the training losses after the first updates differ in their last digits
    la = np.array([h["train_loss"] for h in a.history_[1:]])
    lb = np.array([h["train_loss"] for h in b.history_[1:]])
    assert la.size and np.max(np.abs(lb / la - 1.0)) > 1e-12
    np.testing.assert_allclose(lb, la, rtol=1e-3)
    assert RNNForecaster.from_bytes(b.to_bytes()).config.precision == "float32"
    with pytest.raises(ValueError, match="precision"):
        RNNForecaster(precision="float16")


def test_a_blob_written_by_8951378_loads_and_forecasts_as_it_did():
    """Blobs stored before the networks were stacked keep loading (format_version 2, unchanged)."""
    blob = (DATA / "rnn-8951378.bin").read_bytes()
    expected = json.loads((DATA / "rnn-8951378.json").read_text())
    m = RNNForecaster.from_bytes(blob)
    np.testing.assert_allclose(m.predict(20), expected["predict_20"], rtol=1e-12)
    lo, hi = m.predict_interval(20, level=0.9)
    np.testing.assert_allclose(lo, expected["lower_90"], rtol=1e-12)
    np.testing.assert_allclose(hi, expected["upper_90"], rtol=1e-12)
    assert m.history_ == expected["history"]
    warm = RNNForecaster(**m.get_params()).fit(np.array(expected["y"]), warm_start=m, epochs=1)
    assert warm.warm_started_ and np.all(np.isfinite(warm.predict(5)))
