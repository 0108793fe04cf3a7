"""Backprop through time checked against central finite differences, every parameter, for one
network (models.cells) and for stacks of networks (models.stack)."""

import numpy as np
import pytest
from tests.support.single_network import loss_and_grad
from tests.support.stacks import stacked_problem

from tickcast.models.cells import CELLS, GRU, Cell, ElmanRNN, make_cell, register_cell
from tickcast.models.params import allocate_stack
from tickcast.models.stack import LoopStack, make_stack

# float64, eps 1e-6: truncation error ~1e-12 relative; 1e-7 leaves room for rounding but
# catches any wrong term (a missing factor shows up at 1e-2 .. 1).
EPS = 1e-6
TOLERANCE = 1e-7


def _loss(cell, params, X, target):
    out, cache = cell.forward(params, X)
    return 0.5 * float(np.sum((out - target) ** 2)), out, cache


@pytest.mark.parametrize("name", sorted(CELLS))
def test_gradients_match_finite_differences(name):
    """Every registered cell: a new cell is checked here without editing this file."""
    rng = np.random.default_rng(42)
    cell = make_cell(name, input_size=2, hidden_size=3, output_size=2)
    params = cell.init_params(rng, out_scale=1.0)
    for v in params.values():  # non-zero biases so every term of the backward pass matters
        v += 0.3 * rng.standard_normal(v.shape)
    X = rng.standard_normal((4, 5, 2))  # (B, T, D)
    target = rng.standard_normal((4, 2))  # (B, O)
    _, out, cache = _loss(cell, params, X, target)
    grads = cell.backward(params, out - target, cache)
    assert set(grads) == set(params)
    for key, p in params.items():
        numeric = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + EPS
            up = _loss(cell, params, X, target)[0]
            p[i] = old - EPS
            down = _loss(cell, params, X, target)[0]
            p[i] = old
            numeric[i] = (up - down) / (2 * EPS)
        scale = np.abs(numeric).max() + np.abs(grads[key]).max()
        rel = np.abs(numeric - grads[key]).max() / scale
        assert scale > 0, key
        assert rel < TOLERANCE, f"{name}.{key}: relative error {rel:.2e}"


@pytest.mark.parametrize("cls", [ElmanRNN, GRU])
def test_forward_matches_reference_step_by_step(cls):
    """The fused, sign-folded forward equals a plain textbook implementation."""
    rng = np.random.default_rng(1)
    cell = cls(1, 4, 1)
    p = cell.init_params(rng, out_scale=1.0)
    for v in p.values():
        v += 0.2 * rng.standard_normal(v.shape)
    X = rng.standard_normal((3, 6, 1))
    out, _ = cell.forward(p, X)
    H = 4
    h = np.zeros((3, H))
    sig = lambda a: 1.0 / (1.0 + np.exp(-a))  # noqa: E731
    for t in range(6):
        x = X[:, t]
        if cls is ElmanRNN:
            h = np.tanh(x @ p["Wxh"] + h @ p["Whh"] + p["bh"])
        else:
            gx, gh = x @ p["Wxh"] + p["bh"], h @ p["Whh"]
            r = sig(gx[:, :H] + gh[:, :H])
            z = sig(gx[:, H : 2 * H] + gh[:, H : 2 * H])
            n = np.tanh(gx[:, 2 * H :] + r * (gh[:, 2 * H :] + p["bhn"]))
            h = (1 - z) * n + z * h
    np.testing.assert_allclose(out, h @ p["Why"] + p["by"], rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("name", sorted(CELLS))
def test_registered_cells_follow_the_protocol(name):
    cell = make_cell(name, 2, 3, 4)
    assert isinstance(cell, Cell) and cell.name == name and (cell.D, cell.H, cell.O) == (2, 3, 4)
    p = cell.init_params(np.random.default_rng(0))
    assert {k: v.shape for k, v in p.items()} == cell.shapes


@pytest.mark.parametrize("name", sorted(CELLS))
@pytest.mark.parametrize("kind", ["mae", "mse"])
def test_masked_multi_step_loss_gradient(name, kind):
    """The direct multi-step read-out as trained: K outputs, some targets masked out, the MAE or
    MSE over the rest, back through every time step to every parameter."""
    rng = np.random.default_rng(7)
    cell = make_cell(name, input_size=1, hidden_size=3, output_size=4)
    params = cell.init_params(rng, out_scale=1.0)
    for v in params.values():
        v += 0.3 * rng.standard_normal(v.shape)
    X = rng.standard_normal((5, 6, 1))
    Y = rng.standard_normal((5, 4))
    M = (rng.random((5, 4)) > 0.3).astype(float)

    def loss():
        return loss_and_grad(cell.forward(params, X)[0], Y, M, kind)[0]

    out, cache = cell.forward(params, X)
    _, dout = loss_and_grad(out, Y, M, kind)
    assert np.all(dout[M == 0] == 0)  # a masked target contributes nothing
    grads = cell.backward(params, dout, cache)
    for key, p in params.items():
        numeric = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + EPS
            up = loss()
            p[i] = old - EPS
            down = loss()
            p[i] = old
            numeric[i] = (up - down) / (2 * EPS)
        rel = np.abs(numeric - grads[key]).max() / (np.abs(numeric).max() + np.abs(grads[key]).max())
        assert rel < 1e-6, f"{name}.{key} ({kind}): relative error {rel:.2e}"


@pytest.mark.parametrize("name", sorted(CELLS))
def test_saturated_inputs_stay_finite(name):
    """exp overflow inside the activations must give the exact limits, not NaN."""
    cell = make_cell(name, 1, 3, 1)
    p = cell.init_params(np.random.default_rng(0))
    out, cache = cell.forward(p, np.full((2, 4, 1), 1e6))
    grads = cell.backward(p, np.ones((2, 1)), cache)
    assert np.all(np.isfinite(out))
    assert all(np.all(np.isfinite(g)) for g in grads.values())


def test_buffers_are_reused_between_calls_of_the_same_shape():
    cell = make_cell("gru", 1, 8, 1)
    p = cell.init_params(np.random.default_rng(0))
    X = np.random.default_rng(1).standard_normal((5, 7, 1))
    first, _ = cell.forward(p, X)
    first = first.copy()
    second, _ = cell.forward(p, X)
    assert len(cell._workspaces) == 1
    np.testing.assert_array_equal(first, second)


def test_unknown_cell_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown cell 'lstm'"):
        make_cell("lstm")


# ---------------------------------------------------------------- stacked networks (models.stack)
# N networks of different window lengths in one stack (right-aligned windows, the running networks
# a prefix): every parameter of every network against central differences, float64.


@pytest.mark.parametrize("name", sorted(CELLS))
def test_stacked_gradients_match_finite_differences(name):
    stack, _, flat, params, X, target, lengths = stacked_problem(name)

    def loss():
        out, _ = stack.forward(params, X, lengths)
        return 0.5 * float(np.sum((out - target) ** 2))

    out, cache = stack.forward(params, X, lengths)
    gflat, grads = allocate_stack(flat.shape[0], stack.shapes)
    stack.backward(params, out - target, cache, grads)
    numeric = np.zeros_like(flat)
    for i in np.ndindex(flat.shape):
        old = flat[i]
        flat[i] = old + EPS
        up = loss()
        flat[i] = old - EPS
        down = loss()
        flat[i] = old
        numeric[i] = (up - down) / (2 * EPS)
    for n in range(flat.shape[0]):  # each network's gradient on its own scale
        scale = np.abs(numeric[n]).max() + np.abs(gflat[n]).max()
        rel = np.abs(numeric[n] - gflat[n]).max() / scale
        assert scale > 0 and rel < TOLERANCE, f"{name} network {n}: relative error {rel:.2e}"


# A stack computes what each network does alone: tests/models/test_stack_parts.py.


def test_stacked_windows_must_be_longest_first():
    stack, _, _, params, X, _, _ = stacked_problem("rnn")
    with pytest.raises(ValueError, match="non-increasing"):
        stack.forward(params, X, np.array([2, 4, 4, 6]))


class _Tanh2(ElmanRNN):
    """A registered cell with no stacked version: stacks of it run network by network."""

    name = "elman-test-loop"


def test_a_cell_without_a_stacked_version_runs_one_network_at_a_time():
    register_cell(_Tanh2)
    try:
        stack = make_stack(_Tanh2.name, 2, 3, 2)
        assert isinstance(stack, LoopStack)
        _, _, flat, params, X, target, lengths = stacked_problem("rnn", seed=9)
        reference = make_stack("rnn", 2, 3, 2)
        out, cache = stack.forward(params, X, lengths)
        ref, ref_cache = reference.forward(params, X, lengths)
        np.testing.assert_allclose(out, ref, rtol=1e-12)
        _, g = allocate_stack(flat.shape[0], stack.shapes)
        _, g_ref = allocate_stack(flat.shape[0], stack.shapes)
        stack.backward(params, out - target, cache, g)
        reference.backward(params, ref - target, ref_cache, g_ref)
        for k in g:
            np.testing.assert_allclose(g[k], g_ref[k], rtol=1e-10, atol=1e-13)
    finally:
        CELLS.pop(_Tanh2.name)
