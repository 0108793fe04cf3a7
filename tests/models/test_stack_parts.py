"""The parts of the recurrent cells (models.cells) and of their stacks (models.stack) that the
gradient checks do not reach: defaults and initial scales, which networks run at each step, the
memory bound of the weight gradients' sums, one-step windows, float32 kept float32, saturated
units without warnings, and the errors."""

import warnings

import numpy as np
import pytest
from tests.support.stacks import stacked_problem

from tickcast.models import stack as stack_module
from tickcast.models.cells import CELLS, ElmanRNN, make_cell, register_cell
from tickcast.models.params import allocate_stack
from tickcast.models.stack import LoopStack, make_stack, running


class _LoopOnly(ElmanRNN):
    """A registered cell with no stacked version (its stacks are LoopStacks)."""

    name = "loop-only-test"


@pytest.fixture
def loop_cell():
    register_cell(_LoopOnly)
    yield _LoopOnly.name
    CELLS.pop(_LoopOnly.name)


def _gradients(stack, params, X, target, lengths):
    out, cache = stack.forward(params, X, lengths)
    _, grads = allocate_stack(X.shape[0], stack.shapes, dtype=X.dtype)
    stack.backward(params, out - target, cache, grads)
    return out, grads


@pytest.mark.parametrize("name", ["rnn", "gru"])
def test_defaults_one_input_32_units_one_output_and_a_small_read_out(name):
    cell, stack = make_cell(name), make_stack(name)
    assert (cell.D, cell.H, cell.O) == (stack.D, stack.H, stack.O) == (1, 32, 1)
    assert (type(cell)().D, type(cell)().H, type(cell)().O) == (1, 32, 1)
    for made in (cell, stack):
        default, given = made.init_params(np.random.default_rng(3)), made.init_params(np.random.default_rng(3), 0.1)
        for k in default:
            np.testing.assert_array_equal(default[k], given[k])


def test_a_loop_stack_has_its_cells_defaults_and_initialisation(loop_cell):
    stack = make_stack(loop_cell, 2, 5, 3)
    assert isinstance(stack, LoopStack) and (stack.D, stack.H, stack.O) == (2, 5, 3)
    assert (make_stack(loop_cell).D, make_stack(loop_cell).H, make_stack(loop_cell).O) == (1, 32, 1)
    cell = make_cell(loop_cell, 2, 5, 3)
    for scale in (None, 0.7):
        args = () if scale is None else (scale,)
        mine, theirs = (
            stack.init_params(np.random.default_rng(1), *args),
            cell.init_params(np.random.default_rng(1), *args),
        )
        for k in mine:
            np.testing.assert_array_equal(mine[k], theirs[k])


@pytest.mark.parametrize("name", ["rnn", "gru"])
def test_initial_scales(name):
    """Input weights with std 1/sqrt(D), orthogonal recurrent blocks, a read-out with std
    out_scale/sqrt(H) (the first forecasts sit at the bias)."""
    D, H, O = 64, 32, 8  # noqa: E741
    cell = make_cell(name, D, H, O)
    p = cell.init_params(np.random.default_rng(0), out_scale=0.5)
    assert p["Wxh"].std() == pytest.approx(1 / np.sqrt(D), rel=0.1)
    assert p["Why"].std() == pytest.approx(0.5 / np.sqrt(H), rel=0.15)
    for g in range(p["Whh"].shape[1] // H):
        block = p["Whh"][:, g * H : (g + 1) * H]
        np.testing.assert_allclose(block @ block.T, np.eye(H), atol=1e-12)


def test_which_networks_run_at_each_step():
    """Windows right-aligned in T steps, longest first: at step t the networks whose window has begun."""
    assert running(np.array([6, 4, 4, 2]), 6).tolist() == [1, 1, 3, 3, 4, 4]
    assert running(np.array([3, 3]), 3).tolist() == [2, 2, 2]  # equal lengths, as long as T
    assert running(np.array([2, 1]), 5).tolist() == [0, 0, 0, 1, 2]  # shorter than T
    assert running(np.array([], dtype=int), 3).tolist() == [0, 0, 0]  # no network
    for lengths, T in (([2, 4], 4), ([7, 3], 6), ([3, 3, 4], 4)):
        with pytest.raises(ValueError) as err:
            running(np.array(lengths), T)
        assert str(err.value) == f"window lengths must be non-increasing and at most T={T}, got {lengths}"


@pytest.mark.parametrize("name", ["rnn", "gru"])
@pytest.mark.parametrize("lengths", [(1, 1), (5, 5, 5), (5, 3, 3, 1), (4, 2), (6, 4, 4, 2)])
def test_a_stack_of_any_lengths_computes_each_network_alone(name, lengths):
    """Network n of a stack = the single cell on its own window X[n, :, T - L_n:], forward and
    backward, whatever the networks around it: every shape of schedule (one-step windows, all
    equal, mixed)."""
    stack, cell, _, params, X, target, lens = stacked_problem(name, lengths, seed=sum(lengths))
    out, grads = _gradients(stack, params, X, target, lens)
    T = X.shape[2]
    for n, L in enumerate(lengths):
        one = {k: v[n] for k, v in params.items()}
        o, c = cell.forward(one, X[n, :, T - L :])
        g = cell.backward(one, o - target[n], c)
        np.testing.assert_allclose(out[n], o, rtol=1e-12, atol=1e-14)
        for k in one:
            np.testing.assert_allclose(grads[k][n], g[k], rtol=1e-10, atol=1e-13, err_msg=f"{k} network {n}")


@pytest.mark.parametrize("name", ["rnn", "gru"])
@pytest.mark.parametrize("rows", [1, 2, 3, 7])
def test_the_memory_bound_of_the_gradient_sums_changes_no_bit(name, rows, monkeypatch):
    """Weight gradients are summed over time through a temporary of at most _SUM_BUDGET bytes, a
    few steps per matmul; a budget of any number of steps gives exactly the same gradients."""
    stack, _, _, params, X, target, lengths = stacked_problem(name, (9, 9, 6, 2), H=4)
    _, whole = _gradients(stack, params, X, target, lengths)
    N, H, D = 4, 4, 2
    widest = max(N * H * 4 * H, N * 4 * H * (D + 1), N * (H + D + 1) * H) * 8  # one step's product, bytes
    monkeypatch.setattr(stack_module, "_SUM_BUDGET", widest * (rows + 1))
    _, parted = _gradients(stack, params, X, target, lengths)
    for k in whole:
        np.testing.assert_array_equal(parted[k], whole[k], err_msg=k)


@pytest.mark.parametrize("budget_rows", [0, 1, 2, 5, 50])
@pytest.mark.parametrize("shape", [(3, 5, 7, 40), (2, 6, 6, 9), (5, 2, 3, 4)])
def test_the_steps_per_sum_fill_the_budget_and_no_more(budget_rows, shape, monkeypatch):
    N, p, r, T = shape
    one = N * p * r * 8
    for extra in (0, one // 2):
        monkeypatch.setattr(stack_module, "_SUM_BUDGET", one * (budget_rows + 1) + extra)
        rows = make_stack("rnn")._sum_rows(N, p, r, T)
        assert rows == max(1, min(T, budget_rows)), (shape, budget_rows, extra)


@pytest.mark.parametrize("name", ["rnn", "gru"])
def test_float32_stays_float32(name):
    stack, _, _, params, X, target, lengths = stacked_problem(name, (6, 4, 4, 2), dtype=np.float32)
    out, grads = _gradients(stack, params, X, target, lengths)
    stack64, _, _, params64, X64, target64, _ = stacked_problem(name, (6, 4, 4, 2))
    out64, grads64 = _gradients(stack64, params64, X64, target64, lengths)
    assert out.dtype == np.float32 and all(g.dtype == np.float32 for g in grads.values())
    np.testing.assert_allclose(out, out64, rtol=1e-4, atol=1e-5)
    for k in grads:
        np.testing.assert_allclose(grads[k], grads64[k], rtol=1e-3, atol=1e-4, err_msg=k)


@pytest.mark.parametrize("name", ["rnn", "gru"])
def test_saturated_units_give_exact_limits_and_no_warning(name):
    """Pre-activations far beyond the range of exp: tanh is exactly ±1 and no overflow is warned
    about, in a cell and in a stack."""
    stack, cell, _, params, X, target, lengths = stacked_problem(name, (3, 2), seed=4)
    for v in params.values():
        v *= 1e4
    X *= 1e4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out, _ = stack.forward(params, X, lengths)
        one = {k: v[0] for k, v in params.items()}
        single, _ = cell.forward(one, X[0])
    assert np.isfinite(out).all()
    np.testing.assert_allclose(single, out[0], rtol=1e-12)


@pytest.mark.parametrize("name", ["rnn", "gru"])
def test_inputs_of_the_wrong_width_are_refused(name):
    cell = make_cell(name, 2, 3, 1)
    p = cell.init_params(np.random.default_rng(0))
    with pytest.raises(ValueError) as err:
        cell.forward(p, np.zeros((4, 5, 3)))
    assert str(err.value) == "X has 3 inputs per step, the cell expects 2"


@pytest.mark.parametrize("name", ["rnn", "gru"])
def test_a_stack_class_has_the_cells_defaults(name):
    stack = type(make_stack(name))()
    assert (stack.D, stack.H, stack.O) == (1, 32, 1)


@pytest.mark.parametrize("name", ["rnn", "gru"])
def test_float64_gradients_are_exact_at_any_scale(name):
    """Backward is linear in dL/dout: a loss 1e-25 times smaller gives gradients 1e-25 times smaller,
    every step of a long window included (nothing small is flushed in float64)."""
    stack, _, _, params, X, target, lengths = stacked_problem(name, (20, 20, 13, 4), seed=2)
    out, cache = stack.forward(params, X, lengths)
    dout = out - target
    for scale in (1.0, 1e-25):
        _, grads = allocate_stack(4, stack.shapes)
        out, cache = stack.forward(params, X, lengths)
        stack.backward(params, dout * scale, cache, grads)
        if scale == 1.0:
            reference = {k: v.copy() for k, v in grads.items()}
        else:
            for k in grads:
                np.testing.assert_allclose(grads[k], reference[k] * scale, rtol=1e-12, atol=0, err_msg=k)


@pytest.mark.parametrize("name", ["rnn", "gru"])
def test_float32_flushes_state_gradients_below_1e_20_every_eighth_step(name):
    """float32 only (subnormals are slow): going back through a 20-step window, a state gradient
    whose entries are all below FLUSH_BELOW is zero from step 16 down, so inputs before it get no
    gradient; float64 keeps them."""
    assert (stack_module.FLUSH_EVERY, stack_module.FLUSH_BELOW) == (8, 1e-20)
    grads = {}
    for dtype in (np.float64, np.float32):
        stack, _, _, params, X, target, lengths = stacked_problem(name, (20, 20), seed=6, dtype=dtype)
        X[:, :, 16:] = 0.0  # inputs only before the flush at step 16
        out, cache = stack.forward(params, X, lengths)
        _, grads[dtype] = allocate_stack(2, stack.shapes, dtype=dtype)
        stack.backward(params, (out - target) * 1e-24, cache, grads[dtype])
    assert np.all(grads[np.float64]["Wxh"] != 0.0)
    np.testing.assert_array_equal(grads[np.float32]["Wxh"], 0.0)


@pytest.mark.parametrize("name", ["rnn", "gru"])
def test_float32_over_long_windows_stays_close_to_float64(name):
    """Windows past the flush steps (8, 16): at ordinary scales float32 loses nothing but precision."""
    lengths = (21, 17, 9, 3)
    stack, _, _, params, X, target, lens = stacked_problem(name, lengths, dtype=np.float32)
    out, grads = _gradients(stack, params, X, target, lens)
    stack64, _, _, params64, X64, target64, _ = stacked_problem(name, lengths)
    out64, grads64 = _gradients(stack64, params64, X64, target64, lens)
    np.testing.assert_allclose(out, out64, rtol=1e-4, atol=1e-5)
    for k in grads:
        np.testing.assert_allclose(grads[k], grads64[k], rtol=1e-3, atol=1e-4, err_msg=k)


@pytest.mark.parametrize("name", ["rnn", "gru"])
def test_a_stack_reused_with_more_networks_or_another_dtype_computes_afresh(name):
    """Buffers are kept between calls (per batch, steps, inputs and dtype): a call with more networks
    or in float32 after float64 gives what a new stack gives."""
    used = make_stack(name, 2, 3, 2)
    for lengths, dtype in (((5, 5), np.float64), ((5, 5, 4, 2), np.float64), ((5, 5, 4, 2), np.float32)):
        fresh, _, _, params, X, target, lens = stacked_problem(name, lengths, seed=len(lengths), dtype=dtype)
        out, grads = _gradients(fresh, params, X, target, lens)
        again, again_grads = _gradients(used, params, X, target, lens)
        assert again.dtype == dtype
        np.testing.assert_array_equal(again, out)
        for k in grads:
            np.testing.assert_array_equal(again_grads[k], grads[k])


@pytest.mark.parametrize("name", ["rnn", "gru"])
def test_a_cell_reused_with_another_batch_computes_afresh_and_fills_the_gradients_given(name):
    rng = np.random.default_rng(8)
    used = make_cell(name, 2, 3, 2)
    p = used.init_params(rng, out_scale=1.0)
    for B in (4, 6, 4):
        X, dout = rng.standard_normal((B, 5, 2)), rng.standard_normal((B, 2))
        fresh = make_cell(name, 2, 3, 2)
        out, cache = fresh.forward(p, X)
        expected = fresh.backward(p, dout, cache)
        again, again_cache = used.forward(p, X)
        given = {k: np.full_like(v, np.nan) for k, v in p.items()}
        returned = used.backward(p, dout, again_cache, given)
        assert returned is given
        np.testing.assert_array_equal(again, out)
        for k in expected:
            np.testing.assert_array_equal(given[k], expected[k])
