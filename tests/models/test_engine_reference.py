"""The stacked training loop (models.engine) against a reference written independently here, one
network at a time, from the promises in ``models.engine.train``'s docstring: a plain loop over
the single-network cell (models.cells), the masked loss and evaluation of
tests/support/single_network.py, the single-network optimizers and ``clip_flat``. Nothing of the
stack's machinery (padding, batched matmuls, row bookkeeping, back-off and stopping state per
row) is shared with the reference.

Every job of a mixed stack (window lengths, batch sizes, budgets, patience, validation or none,
non-finite targets that force back-offs, a job that fails at initialisation and one that fails
mid-run) must end with exactly the reference's history, best epoch, epochs run, weights and error.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from tests.support.single_network import loss_and_grad, window_losses

from tickcast.models.cells import make_cell
from tickcast.models.engine import Job, masked_loss, run
from tickcast.models.errors import TrainingDiverged
from tickcast.models.optim import SGD, Adam, clip_flat
from tickcast.models.params import flatten, unflatten
from tickcast.models.stack import stack_of
from tickcast.models.train import Data, TrainSettings, significant

RTOL = 1e-9  # batched matmuls sum in another order than the single cell's: identical up to that


# ---------------------------------------------------------------------------- the reference
class _Diverged(Exception):
    pass


def _loss(cell, W, data: Data | None, kind: str):
    """(loss or None, per-window losses or None, weight) of all of data's windows."""
    if data is None:
        return None, None, 0.0
    per = window_losses(cell, unflatten(W, cell.shapes), data, kind)
    weight = float(data.M.sum())
    return (float(per.sum() / weight) if weight > 0 else None), per, weight


def reference_train(cell, flat: np.ndarray, data: Data, val: Data | None, st: TrainSettings, rng):
    """-> (history, best_epoch, epochs_run, weights, error message or None)."""
    shapes, P = cell.shapes, flat.size
    W, best = flat.copy(), flat.copy()
    opt = Adam(P, st.lr) if st.optimizer == "adam" else SGD(P, st.lr)
    state = {"base_lr": st.lr, "backoffs": 0}

    def back_off(reason):
        state["backoffs"] += 1
        if state["backoffs"] > st.max_backoffs:
            raise _Diverged(
                f"{reason} after {st.max_backoffs} learning-rate back-offs (lr now "
                f"{opt.lr:.3g}, started at {st.lr:.3g}); lower lr or check the series"
            )
        W[:] = best
        opt.reset()
        state["base_lr"] *= 0.5
        opt.lr *= 0.5

    def entry(epoch, tl, vl, gn, cf):
        return {
            "epoch": epoch,
            "train_loss": None if tl is None else float(tl),
            "val_loss": None if vl is None else float(vl),
            "grad_norm": float(gn),
            "clip_fraction": float(cf),
            "lr": float(opt.lr),
        }

    tl, _, _ = _loss(cell, W, data, st.loss)
    vl, best_windows, weight = _loss(cell, W, val, st.loss)
    monitored = vl if vl is not None else tl
    if monitored is None or not np.isfinite(monitored):
        return [], 0, 0, flat.copy(), "the loss at initialisation is not finite"
    history = [entry(0, tl, vl, 0.0, 0.0)]
    best_loss, wait, best_epoch = monitored, 0, 0
    n = len(data)
    batch = min(st.batch_size, max(n, 1))
    try:
        for epoch in range(1, st.epochs + 1):
            opt.lr = state["base_lr"] * (0.55 + 0.45 * math.cos(math.pi * (epoch - 1) / max(st.epochs, 1)))
            perm = rng.permutation(n)
            loss_sum = seen = norm_sum = steps = clipped = 0
            for s in range(0, n, batch):
                ids = perm[s : s + batch]
                p = unflatten(W, shapes)
                out, cache = cell.forward(p, data.X[ids])
                loss, dout = loss_and_grad(out, data.Y[ids], data.M[ids], st.loss)
                g = flatten(cell.backward(p, dout, cache), shapes)
                g, norm, was = clip_flat(g, st.clip, st.clip_mode)
                if not (np.isfinite(loss) and np.isfinite(norm)):
                    back_off("non-finite loss or gradient")
                    continue
                opt.step(W, g)
                loss_sum += loss * len(ids)
                seen += len(ids)
                norm_sum += norm
                steps += 1
                clipped += was
            tl = loss_sum / seen if seen else None
            gn, cf = (norm_sum / steps, clipped / steps) if steps else (0.0, 0.0)
            vl, windows, _ = _loss(cell, W, val, st.loss)
            if tl is None or not np.isfinite(tl + gn) or (vl is not None and not np.isfinite(vl)):
                back_off(
                    "no finite training loss in an epoch"
                    if tl is None or not np.isfinite(tl + gn)
                    else "non-finite validation loss"
                )
                vl, windows, _ = _loss(cell, W, val, st.loss)
                tl, gn = _loss(cell, W, data, st.loss)[0], 0.0
            history.append(entry(epoch, tl, vl, gn, cf))
            if vl is not None:
                better = significant(windows, best_windows, weight, st.significance, st.min_delta, cell.O)
            else:
                better = tl is not None and np.isfinite(tl) and tl < best_loss * (1.0 - st.min_delta)
            if better:
                best_loss, wait, best_epoch, best[:] = (vl if vl is not None else tl), 0, epoch, W
                if vl is not None:
                    best_windows = windows
            else:
                wait += 1
                if st.patience and wait >= st.patience:
                    return history, best_epoch, epoch, best, None
    except _Diverged as error:
        return history, best_epoch, 0, flat.copy(), str(error)
    return history, best_epoch, st.epochs, best, None


# ---------------------------------------------------------------------------- the cases
def _data(rng, n, L, K, inf_rows=(), masked_rows=(), huge_rows=(), drop=0.15):
    X, Y = rng.standard_normal((n, L, 1)), rng.standard_normal((n, K))
    M = (rng.random((n, K)) > drop).astype(float)
    M[list(masked_rows)] = 0.0
    Y[list(huge_rows)], M[list(huge_rows)] = 1.7e308, 1.0  # finite targets whose losses overflow
    Y[list(inf_rows), 0] = np.inf
    M[list(inf_rows), 0] = 1.0
    return Data(X, Y, M)


def _settings(loss, optimizer, clip, clip_mode, **kw):
    base = dict(epochs=5, batch_size=8, lr=0.02, patience=0, min_delta=0.0, max_backoffs=3, significance=0.0)
    base.update(kw)
    return TrainSettings(
        base["epochs"], base["batch_size"], base["lr"], optimizer, clip, clip_mode, base["patience"],
        base["min_delta"], base["max_backoffs"], loss, base["significance"],
    )  # fmt: skip


def _cases(loss, optimizer, clip, clip_mode):
    """(name, train data, validation data or None, settings) for one stack (shared loss/optimizer/clip)."""
    rng = np.random.default_rng(11)
    S = lambda **kw: _settings(loss, optimizer, clip, clip_mode, **kw)  # noqa: E731
    return [
        # longest window first in the stack: its failure at the end of epoch 1 is followed by others
        ("fails at the end of epoch 1", _data(rng, 10, 9, 2, inf_rows=range(10)), _data(rng, 6, 9, 2),
         S(batch_size=5, max_backoffs=2)),
        ("fails at initialisation", _data(rng, 12, 8, 2), _data(rng, 5, 8, 2, huge_rows=[1, 2]), S()),
        ("validation, significance and patience", _data(rng, 40, 7, 2), _data(rng, 12, 7, 2),
         S(epochs=8, patience=2, min_delta=0.01, significance=1.0)),
        ("a bad batch every epoch", _data(rng, 20, 7, 2, inf_rows=[3]), _data(rng, 8, 7, 2),
         S(epochs=4, batch_size=5, max_backoffs=10)),
        ("no validation: the training loss decides", _data(rng, 30, 5, 2), None,
         S(epochs=6, batch_size=7, patience=1, min_delta=0.05, lr=0.05)),
        ("no finite step at all", _data(rng, 8, 4, 2, inf_rows=range(8)), _data(rng, 5, 4, 2),
         S(epochs=3, batch_size=4, max_backoffs=20)),
        ("fails mid-epoch", _data(rng, 9, 6, 2, inf_rows=range(9)), _data(rng, 4, 6, 2),
         S(epochs=4, batch_size=3, max_backoffs=4)),
        ("one window a step, some fully masked", _data(rng, 12, 3, 2, masked_rows=[0, 4, 5]), _data(rng, 4, 3, 2),
         S(epochs=2, batch_size=1)),
        ("one epoch, large batch", _data(rng, 25, 6, 2), _data(rng, 7, 6, 2), S(epochs=1, batch_size=64)),
    ]  # fmt: skip


def _initial(cell, seed):
    return flatten(cell.init_params(np.random.default_rng(seed), 0.5), cell.shapes)


def _assert_same_history(got, want, name):
    assert [e["epoch"] for e in got] == [e["epoch"] for e in want], name
    for g, w in zip(got, want):
        for key in ("train_loss", "val_loss", "grad_norm", "clip_fraction", "lr"):
            if w[key] is None or not np.isfinite(w[key]):
                assert g[key] == w[key], (name, g["epoch"], key)
            else:
                assert g[key] == pytest.approx(w[key], rel=RTOL, abs=1e-300), (name, g["epoch"], key)


STACKS = [
    pytest.param("mae", "adam", 0.5, "norm", id="mae-adam-clip-norm"),
    pytest.param("mse", "sgd", 0.05, "value", id="mse-sgd-clip-value"),
    pytest.param("mse", "adam", None, "norm", id="mse-adam-no-clip"),
]


@pytest.mark.parametrize("loss, optimizer, clip, clip_mode", STACKS)
def test_every_network_of_a_mixed_stack_trains_exactly_as_the_reference_loop(loss, optimizer, clip, clip_mode):
    cell = make_cell("rnn", 1, 5, 2)
    cases = _cases(loss, optimizer, clip, clip_mode)
    jobs = [
        Job(_initial(cell, k), data, val, st, np.random.default_rng(100 + k))
        for k, (_, data, val, st) in enumerate(cases)
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # overflow and inf - inf are handled: NumPy must not warn
        run(stack_of(cell), jobs)
    backed_off = trained = 0
    for k, ((name, data, val, st), job) in enumerate(zip(cases, jobs)):
        with np.errstate(over="ignore", invalid="ignore"):
            history, best_epoch, n_epochs, weights, error = reference_train(
                make_cell("rnn", 1, 5, 2), _initial(cell, k), data, val, st, np.random.default_rng(100 + k)
            )
        _assert_same_history(job.history, history, name)
        assert (job.best_epoch, job.n_epochs) == (best_epoch, n_epochs), name
        np.testing.assert_allclose(job.flat, weights, rtol=RTOL, atol=1e-300, err_msg=name)
        if error is None:
            assert job.error is None, (name, job.error)
        else:
            assert isinstance(job.error, TrainingDiverged) and str(job.error) == error, name
        backed_off += any(h["lr"] < 0.5 * st.lr * 0.55 for h in history)
        trained += best_epoch > 0
    # the cases do what their names say (a reference that never backed off or trained proves little)
    assert backed_off >= 3 and trained >= 3
    errors = {name: job.error for (name, *_), job in zip(cases, jobs)}
    assert "no finite training loss in an epoch after 2 " in str(errors["fails at the end of epoch 1"])
    assert "non-finite loss or gradient after 4 " in str(errors["fails mid-epoch"])
    assert str(errors["fails at initialisation"]) == "the loss at initialisation is not finite"
    assert errors["no finite step at all"] is None and errors["a bad batch every epoch"] is None
    if clip is not None:
        fractions = [h["clip_fraction"] for job in jobs for h in job.history]
        assert 0.0 < max(fractions) and min(fractions) < 1.0


def test_jobs_nobody_reads_skip_the_evaluation_and_others_do_not():
    cell = make_cell("rnn", 1, 4, 2)
    rng = np.random.default_rng(3)
    data, val = _data(rng, 10, 4, 2), _data(rng, 4, 4, 2)
    st0, st1 = _settings("mae", "adam", 1.0, "norm", epochs=0), _settings("mae", "adam", 1.0, "norm", epochs=1)
    jobs = [
        Job(_initial(cell, 0), data, None, st0, np.random.default_rng(0), record=False),  # nothing to do
        Job(_initial(cell, 1), data, val, st0, np.random.default_rng(1), record=False),  # validation loss
        Job(_initial(cell, 2), data, None, st0, np.random.default_rng(2)),  # recorded
        Job(_initial(cell, 3), data, None, st1, np.random.default_rng(3), record=False),  # one epoch
    ]
    run(stack_of(cell), jobs)
    assert jobs[0].history == [] and jobs[0].n_epochs == 0
    np.testing.assert_array_equal(jobs[0].flat, _initial(cell, 0))
    assert [e["epoch"] for e in jobs[1].history] == [0] and jobs[1].history[0]["val_loss"] is not None
    assert [e["epoch"] for e in jobs[2].history] == [0] and jobs[2].n_epochs == 0
    assert jobs[3].n_epochs == 1 and [e["epoch"] for e in jobs[3].history] == [0, 1]
    history, *_ = reference_train(cell, _initial(cell, 3), data, None, st1, np.random.default_rng(3))
    _assert_same_history(jobs[3].history, history, "one epoch")


def test_a_stack_refuses_networks_that_do_not_share_their_loss_optimizer_and_clipping():
    cell = make_cell("rnn", 1, 4, 2)
    data = _data(np.random.default_rng(4), 10, 4, 2)
    a = Job(_initial(cell, 0), data, None, _settings("mae", "adam", 1.0, "norm"), np.random.default_rng(0))
    b = Job(_initial(cell, 1), data, None, _settings("mse", "adam", 1.0, "norm"), np.random.default_rng(1))
    with pytest.raises(
        ValueError, match=r"^networks trained as one stack share their optimizer, loss, clip, clip_mode$"
    ):
        run(stack_of(cell), [a, b])


@pytest.mark.parametrize("kind", ["mae", "mse"])
def test_masked_loss_by_hand(kind):
    out = np.array([[[1.0, 2.0], [3.0, -1.0]], [[0.5, 0.5], [0.0, 0.0]]])  # (N=2, B=2, K=2)
    Y = np.array([[[0.0, 4.0], [3.5, 9.0]], [[1.0, 1.0], [1.0, 1.0]]])
    M = np.array([[[1.0, 1.0], [1.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])  # network 1: no target at all
    loss, dout = masked_loss(out, Y, M, kind)
    if kind == "mae":
        assert loss[0] == pytest.approx((1.0 + 2.0 + 0.5) / 3)
        np.testing.assert_array_equal(dout[0], [[1 / 3, -1 / 3], [-1 / 3, 0.0]])
    else:
        assert loss[0] == pytest.approx((1.0 + 4.0 + 0.25) / 3)
        np.testing.assert_allclose(dout[0], [[2 / 3, -4 / 3], [-1 / 3, 0.0]], rtol=1e-15)
    assert loss[1] == 0.0 and np.all(dout[1] == 0.0)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_learning_rates_given_as_whole_numbers_are_halved_by_a_back_off_not_truncated(optimizer):
    """RNNForecaster(lr=1) trains every member with lr 1 (an int): a stack of only such networks."""
    cell = make_cell("rnn", 1, 4, 2)
    rng = np.random.default_rng(12)
    st = _settings("mae", optimizer, 0.5, "norm", epochs=3, batch_size=5, lr=1, max_backoffs=10)
    cases = [(_data(rng, 15, 5, 2, inf_rows=[2]), _data(rng, 5, 5, 2)) for _ in range(2)]
    jobs = [Job(_initial(cell, k), d, v, st, np.random.default_rng(k)) for k, (d, v) in enumerate(cases)]
    run(stack_of(cell), jobs)
    for k, ((data, val), job) in enumerate(zip(cases, jobs)):
        history, *_ = reference_train(cell, _initial(cell, k), data, val, st, np.random.default_rng(k))
        _assert_same_history(job.history, history, f"job {k}")
        assert job.history[-1]["lr"] > 0.0 and len(job.history) == 4


def test_a_network_that_cannot_improve_stops_at_its_patience_with_its_first_weights():
    """A read-out of zeros forecasts its bias (0) exactly, the targets are 0: the loss is 0 from the
    start and every gradient is 0. An equal loss is not an improvement: patience ends the run."""
    cell = make_cell("rnn", 1, 4, 2)
    flat = flatten(cell.init_params(np.random.default_rng(0), 0.0), cell.shapes)
    X = np.random.default_rng(1).standard_normal((12, 5, 1))
    data = Data(X, np.zeros((12, 2)), np.ones((12, 2)))
    st = _settings("mae", "adam", 1.0, "norm", epochs=10, patience=2, batch_size=4)
    job = Job(flat.copy(), data, None, st, np.random.default_rng(2))
    run(stack_of(cell), [job])
    assert [h["train_loss"] for h in job.history] == [0.0, 0.0, 0.0]
    assert (job.best_epoch, job.n_epochs) == (0, 2)
    np.testing.assert_array_equal(job.flat, flat)


def test_significance_is_judged_over_blocks_of_k_windows():
    """A validation gain must exceed z standard errors of sums over blocks of K (= outputs)
    neighbouring windows, which share targets. This case is one where the block size decides:
    judged window by window, epoch 1's gain would not count (checked when this test was written by
    running the engine with blocks of one window)."""
    cell = make_cell("rnn", 1, 5, 2)
    rng = np.random.default_rng(4)
    data, val = _data(rng, 40, 7, 2), _data(rng, 16, 7, 2)
    st = _settings("mae", "adam", 0.5, "norm", epochs=8, significance=1.0, lr=0.05)
    job = Job(_initial(cell, 4), data, val, st, np.random.default_rng(4))
    run(stack_of(cell), [job])
    history, best_epoch, n_epochs, weights, _ = reference_train(
        cell, _initial(cell, 4), data, val, st, np.random.default_rng(4)
    )
    _assert_same_history(job.history, history, "significance")
    assert (job.best_epoch, job.n_epochs) == (best_epoch, n_epochs) == (1, 8)
    np.testing.assert_allclose(job.flat, weights, rtol=RTOL)


class _DtypeSpy:
    """A real stack that notes the dtype of everything its forward and backward passes are given."""

    def __init__(self, inner):
        self.inner, self.seen = inner, set()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def forward(self, p, X, lengths):
        self.seen |= {("forward X", X.dtype)} | {(f"forward {k}", v.dtype) for k, v in p.items()}
        return self.inner.forward(p, X, lengths)

    def backward(self, p, dout, cache, grads):
        self.seen |= {("backward dout", dout.dtype)} | {(f"gradient {k}", v.dtype) for k, v in grads.items()}
        return self.inner.backward(p, dout, cache, grads)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_passes_run_in_the_precision_asked_for(dtype):
    """precision="float32" promises forward and backward passes in float32 (weights, optimizer and
    losses stay float64): every array the passes get, in training and in evaluation, after networks
    leave the stack too (a job with a shorter budget finishes first)."""
    cell = make_cell("rnn", 1, 4, 2)
    rng = np.random.default_rng(7)
    jobs = [
        Job(_initial(cell, k), _data(rng, 20, 5, 2), _data(rng, 6, 5, 2),
            _settings("mae", "adam", 1.0, "norm", epochs=epochs, batch_size=6), np.random.default_rng(k))
        for k, epochs in enumerate((1, 3, 3))
    ]  # fmt: skip
    # and the losses recomputed after a back-off at the end of an epoch (no finite step at all)
    jobs.append(Job(_initial(cell, 3), _data(rng, 8, 5, 2, inf_rows=range(8)), _data(rng, 4, 5, 2),
                    _settings("mae", "adam", 1.0, "norm", epochs=2, batch_size=4, max_backoffs=20),
                    np.random.default_rng(3)))  # fmt: skip
    spy = _DtypeSpy(stack_of(cell))
    run(spy, jobs, dtype=dtype)
    assert {kind.split()[0] for kind, _ in spy.seen} == {"forward", "backward", "gradient"}
    assert {d for _, d in spy.seen} == {np.dtype(dtype)}, sorted(spy.seen)
    assert all(job.flat.dtype == np.float64 and job.n_epochs == job.settings.epochs for job in jobs)
    assert jobs[-1].history[-1]["grad_norm"] == 0.0 and jobs[-1].history[-1]["lr"] < 0.02 / 8  # it backed off
