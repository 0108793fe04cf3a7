"""The model's safeguards as wired into training, each against a value computed by hand: gradient
clipping bounds a real training step's update and is counted in the history, the read-out bias
starts at the shrunk mean target, and intervals use the finite-sample conformal quantile."""

from __future__ import annotations

import math
import warnings
from statistics import NormalDist

import numpy as np
import pytest

from tickcast.models import RNNForecaster
from tickcast.models.cells import make_cell
from tickcast.models.conformal import Conformal
from tickcast.models.engine import train
from tickcast.models.intervals import floored_half_widths, half_widths, residual_quantiles
from tickcast.models.network import Member, initial_weights, largest_target, shrunk_mean_targets
from tickcast.models.optim import SGD, Adam, clip_flat, clip_grads, clip_rows, make_stacked_optimizer
from tickcast.models.params import allocate, flatten, unflatten
from tickcast.models.train import Data, TrainSettings

LR = 0.01


def _one_step(clip, mode="norm", seed=0):
    """One epoch of one SGD step (24 windows, batch 64) of a real Elman network, validated on its
    own windows (so the step, which lowers the loss, is kept): (update, history)."""
    cell = make_cell("rnn", 1, 6, 2)
    rng = np.random.default_rng(seed)
    flat, params = allocate(cell.shapes)
    flat[:] = flatten(cell.init_params(rng, 0.1), cell.shapes)
    X, Y = rng.standard_normal((24, 5, 1)), rng.standard_normal((24, 2))
    data = Data(X, Y, np.ones_like(Y))
    start = flat.copy()
    settings = TrainSettings(1, 64, LR, "sgd", clip, mode, 0, 0.0, 3, "mse", 0.0)
    history, best, epochs = train(cell, flat, params, data, data, settings, rng)
    assert (best, epochs) == (1, 1)  # the step was kept: the update below is the step's
    return flat - start, history


def test_a_clipped_step_moves_the_weights_by_exactly_lr_times_the_clip_norm():
    clip = 1e-3
    update, history = _one_step(clip)
    assert history[1]["grad_norm"] > 100 * clip  # the gradient was much longer than the bound
    assert np.linalg.norm(update) == pytest.approx(LR * clip, rel=1e-9)
    assert history[1]["clip_fraction"] == 1.0


def test_an_unclipped_step_moves_the_weights_by_lr_times_the_gradient():
    for clip in (None, 0.0, 1e6):  # off, off, and a bound the gradient never reaches
        update, history = _one_step(clip)
        assert np.linalg.norm(update) == pytest.approx(LR * history[1]["grad_norm"], rel=1e-9)
        assert history[1]["clip_fraction"] == 0.0


def test_element_wise_clipping_bounds_every_weight_s_update():
    clip = 1e-3
    update, history = _one_step(clip, mode="value")
    assert np.abs(update).max() == pytest.approx(LR * clip, rel=1e-9)
    assert np.linalg.norm(update) < LR * history[1]["grad_norm"]
    assert history[1]["clip_fraction"] == 1.0


@pytest.mark.parametrize("how", ["fit", "fit_each", "fit_many"])
def test_every_fit_path_counts_its_clipped_steps(make_series, how):
    ys = [make_series("walk", 300, seed=s) for s in (1, 2)]
    kw = dict(epochs=3, patience=0, ensemble=2, season_length=1)

    def histories(clip):
        model = RNNForecaster(clip=clip, **kw)
        if how == "fit":
            return [model.fit(ys[0]).history_]
        if how == "fit_each":
            return [m.history_ for m in model.fit_each(ys, seeds=[0, 1])]
        return [model.fit_many(ys).history_]

    for history in histories(1e-6):  # every step's gradient is longer than this
        assert [h["clip_fraction"] for h in history[1:]] == [1.0] * 3
        assert all(h["grad_norm"] > 1e-6 for h in history[1:])  # the norm before clipping is what is kept
    for history in histories(None):
        assert [h["clip_fraction"] for h in history] == [0.0] * 4


def test_the_read_out_bias_starts_at_the_shrunk_mean_target_computed_by_hand():
    # targets of two windows: step 1 sees 1 and 3, step 2 sees 2 and 4
    Y = np.array([[1.0, 2.0], [3.0, 4.0]])
    targets = Data(None, Y, np.ones_like(Y))
    # mean (2, 3), variance (1, 1); overlapping windows: step k has 2 / k independent targets, so
    # squared standard errors (1/2, 1/1); kept: 1 - se^2 / mean^2 = (1 - 0.5/4, 1 - 1/9)
    expected = np.array([2.0 * 0.875, 3.0 * 8.0 / 9.0])
    np.testing.assert_allclose(shrunk_mean_targets(targets), expected, rtol=1e-15)
    cell = make_cell("rnn", 1, 4, 2)
    view, params = allocate(cell.shapes)  # params: named views of the flat vector
    view[:] = initial_weights(cell, 7, targets, out_scale=0.0)
    np.testing.assert_allclose(params["by"], expected, rtol=1e-15)
    np.testing.assert_array_equal(params["Why"], 0.0)  # the read-out's weights start at 0


def test_a_drift_within_its_standard_error_is_not_extrapolated():
    # mean 0.5, variance 1.25 over two steps-1 targets: se^2 = 1.25 / 2 > mean^2 = 0.25: kept 0
    Y = np.array([[-0.5], [1.5]])
    np.testing.assert_array_equal(shrunk_mean_targets(Data(None, Y, np.ones_like(Y))), [0.0])


@pytest.mark.parametrize(
    ("n", "level", "expected", "without_correction"),
    [
        (10, 0.8, 9.0, 8.0),  # ceil(11 * 0.8) = 9: the 9th smallest of 1..10, not the 8th
        (20, 0.8, 17.0, 16.0),  # ceil(21 * 0.8) = 17
        (20, 0.9, 19.0, 18.0),  # ceil(21 * 0.9) = 19
        (19, 0.95, 19.0, 19.0),  # ceil(20 * 0.95) = 19: the largest
    ],
)
def test_intervals_use_the_finite_sample_conformal_quantile(n, level, expected, without_correction):
    residuals = np.arange(1.0, n + 1.0)[:, None]  # |e| = 1, 2, ..., n at one step
    rng = np.random.default_rng(n)
    shuffled = rng.permutation(residuals)  # order does not matter
    Q, counts = residual_quantiles(shuffled)
    assert counts.tolist() == [n]
    assert half_widths(Q, counts, 1, level)[0] == expected
    assert np.quantile(residuals, level, method="inverted_cdf") == without_correction
    # The combination's and the challengers' intervals interpolate the order statistics around
    # rank level (n + 1) (the smoothed conformal quantile: coverage level, not ceil(rank) / (n + 1));
    # for 1..n the k-th smallest is k, so the half-width is the rank itself. Without room for it
    # (19 residuals at 95 %: rank 19 of 19), the Laplace predictive quantile.
    rank = level * (n + 1)
    got = Conformal.from_residuals([shuffled], 1).half_widths(1, level)[0]
    if rank < n:
        assert got == pytest.approx(rank, rel=1e-12)
    else:
        mean = float(np.mean(Q[0]))  # of the quantile function on its grid: about (n + 1) / 2
        assert mean == pytest.approx((n + 1) / 2, rel=0.02)
        assert got == pytest.approx(n * mean * ((1 - level) ** (-1 / n) - 1), rel=1e-12) and got > n


def test_steps_beyond_the_residuals_grow_like_a_random_walk():
    Q, counts = residual_quantiles(np.column_stack([np.arange(1.0, 11.0), 2.0 * np.arange(1.0, 11.0)]))
    widths = half_widths(Q, counts, 5, 0.8)  # two steps of residuals, five forecast
    np.testing.assert_allclose(widths, [9.0, 18.0, 18.0 * np.sqrt(3 / 2), 18.0 * np.sqrt(4 / 2), 18.0 * np.sqrt(5 / 2)])


def test_a_step_with_too_few_residuals_grows_from_the_last_well_estimated_one():
    e = np.full((6, 3), np.nan)
    e[:, 0] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]  # six one-step residuals
    e[:5, 1] = [2.0, 4.0, 6.0, 8.0, 10.0]  # five two-step ones: exactly enough
    e[:4, 2] = [50.0, 60.0, 70.0, 80.0]  # four three-step ones: too few, not used
    Q, counts = residual_quantiles(e)
    assert counts.tolist() == [6, 5, 4]
    np.testing.assert_allclose(Q[2], Q[1] * np.sqrt(3 / 2))
    assert Q[1, -1] == 10.0 and Q[0, -1] == 6.0


def test_too_few_residuals_anywhere_fall_back_to_the_one_step_ones_scaled_like_a_random_walk():
    e = np.array([[1.0, np.nan], [3.0, np.nan], [2.0, 9.0]])  # three one-step residuals, one two-step
    Q, counts = residual_quantiles(e)
    assert counts.tolist() == [3, 1]
    # the empirical quantile function of {1, 2, 3} (no interpolation): 1 up to p = 1/3, 2 up to 2/3, then 3
    grid = np.linspace(0.0, 1.0, 201)
    np.testing.assert_array_equal(Q[0], np.where(grid <= 1 / 3, 1.0, np.where(grid <= 2 / 3, 2.0, 3.0)))
    np.testing.assert_allclose(Q[1], Q[0] * np.sqrt(2))


def test_a_single_residual_row_is_still_used():
    Q, counts = residual_quantiles(np.array([[4.0, 5.0, np.nan]]))
    assert counts.tolist() == [1, 1, 0]
    np.testing.assert_allclose(Q, 4.0 * np.sqrt([[1.0], [2.0], [3.0]]) * np.ones((1, 201)))


def test_steps_after_a_well_estimated_first_step_grow_from_it():
    e = np.full((6, 3), np.nan)
    e[:, 0] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]  # only the one-step residuals are enough
    e[:2, 1] = [40.0, 50.0]
    Q, counts = residual_quantiles(e)
    assert counts.tolist() == [6, 2, 0]
    np.testing.assert_allclose(Q[1], Q[0] * np.sqrt(2))
    np.testing.assert_allclose(Q[2], Q[0] * np.sqrt(3))


@pytest.mark.parametrize("level", [0.0, 1.0, -0.1, 1.5])
def test_a_level_outside_zero_to_one_is_refused(level):
    Q, counts = residual_quantiles(np.arange(1.0, 11.0)[:, None])
    with pytest.raises(ValueError, match="level must be in"):
        half_widths(Q, counts, 1, level)


def test_a_gradient_exactly_at_the_clip_norm_is_not_counted_as_clipped():
    g = np.array([3.0, 4.0])  # norm 5
    out, norm, was = clip_flat(g, 5.0, "norm")
    assert (norm, was) == (5.0, False) and out.tolist() == [3.0, 4.0]
    out, norms, was = clip_rows(np.array([[3.0, 4.0], [6.0, 8.0]]), 5.0, "norm")
    assert norms.tolist() == [5.0, 10.0] and was.tolist() == [False, True]
    np.testing.assert_allclose(out, [[3.0, 4.0], [3.0, 4.0]], rtol=1e-15)
    out, norms, was = clip_rows(np.array([[3.0, 4.0]]), None)
    assert was.dtype == bool and was.tolist() == [False] and out.tolist() == [[3.0, 4.0]]
    with pytest.raises(ValueError, match="clip_mode must be one of"):
        clip_rows(np.zeros((1, 2)), 1.0, "bogus")


class _Chunked:
    """A window source read piecewise, as a group fit's windows are."""

    def __init__(self, *chunks):
        self._chunks = chunks

    def chunks(self):
        return [(Y, np.ones_like(Y) if M is None else M) for Y, M in self._chunks]


def test_targets_read_in_chunks_give_the_same_bias_as_read_whole():
    Y = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 9.0]])
    whole = shrunk_mean_targets(Data(None, Y, np.ones_like(Y)))
    np.testing.assert_allclose(shrunk_mean_targets(_Chunked((Y[:1], None), (Y[1:], None))), whole, rtol=1e-15)


def test_a_step_with_one_target_starts_at_it_and_one_at_mean_one_is_kept():
    Y = np.array([[1.0, 7.0], [1.0, 0.0]])
    M = np.array([[1.0, 1.0], [1.0, 0.0]])  # step 2 has one target (7): no spread, nothing to shrink
    np.testing.assert_allclose(shrunk_mean_targets(Data(None, Y, M)), [1.0, 7.0], rtol=1e-15)


def test_the_largest_target_ignores_masked_ones():
    Y = np.array([[0.5, -0.25], [100.0, 0.1]])
    M = np.array([[1.0, 1.0], [0.0, 1.0]])
    assert largest_target(Data(None, Y, M)) == 0.5
    assert largest_target(Data(None, Y, np.zeros_like(Y))) == 0.0  # nothing seen


def test_a_step_whose_targets_average_exactly_zero_starts_at_zero():
    Y = np.array([[1.0, 2.0, 0.0], [-1.0, 2.5, 0.0]])  # step 1 averages 0, step 3 is all 0: no drift, not NaN
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 0 / 0 on the way
        by = shrunk_mean_targets(Data(None, Y, np.ones_like(Y)))
    assert by[0] == 0.0 and by[2] == 0.0 and 0.0 < by[1] < 2.25


def test_an_unknown_optimizer_is_refused_by_name():
    with pytest.raises(ValueError, match="^optimizer must be 'adam' or 'sgd', got 'rmsprop'$"):
        make_stacked_optimizer("rmsprop", 2, 3, 0.1)


def test_a_source_without_any_chunk_has_no_largest_target():
    assert largest_target(_Chunked()) == 0.0


def test_a_member_forecasts_what_its_cell_computes_and_refuses_weights_of_another_shape():
    cell = make_cell("rnn", 1, 4, 3)
    flat = flatten(cell.init_params(np.random.default_rng(5), 0.5), cell.shapes)
    member = Member("rnn", 4, 3, 6, seed=5, flat=flat)
    X = np.random.default_rng(6).standard_normal((7, 6, 1))
    want, _ = cell.forward(unflatten(flat, cell.shapes), X)
    np.testing.assert_allclose(member.predict(X), want, rtol=1e-12)
    assert member.predict(X).shape == (7, 3)
    with pytest.raises(ValueError, match=r"^member weights have shape \(5,\), the configuration needs \(\d+,\)$"):
        Member("rnn", 4, 3, 6, seed=5, flat=np.zeros(5))


def test_the_optimizers_defaults_are_the_usual_ones():
    adam, sgd = Adam(3), SGD(3)
    assert (adam.lr, adam.beta1, adam.beta2, adam.eps) == (1e-3, 0.9, 0.999, 1e-8)
    assert (sgd.lr, sgd.momentum) == (1e-2, 0.9)


def test_clip_grads_rescales_the_whole_dict_by_its_global_norm_by_default():
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])}  # global norm 5
    clipped, norm, was = clip_grads(grads, 1.0)
    assert norm == 5.0 and was
    np.testing.assert_allclose(clipped["a"], [0.6, 0.0], rtol=1e-15)
    np.testing.assert_allclose(clipped["b"], [[0.8]], rtol=1e-15)
    clipped, _, was = clip_grads(grads, 1.0, "value")
    assert was and clipped["b"][0, 0] == 1.0 and clipped["a"][0] == 1.0


# The RNN's own intervals (forecaster.py) keep the conservative quantile with a Gaussian floor:
# ``floored_half_widths`` against values computed by hand.
Z95 = NormalDist().inv_cdf(0.975)


def test_the_rnn_rule_gives_the_gaussian_half_width_where_too_few_residuals_for_the_level():
    e = np.column_stack([np.arange(1.0, 6.0), 2.0 * np.arange(1.0, 6.0)])  # five residuals, two steps
    Q, counts = residual_quantiles(e)
    # The quantile function of 1..5 on the 201-point grid: 1 at p = 0 and on (0, 0.2] (41 points),
    # then 2, 3, 4, 5 on 40 points each: mean of squares (41 + 40 * (4 + 9 + 16 + 25)) / 201.
    rms1 = math.sqrt((41 + 40 * (4 + 9 + 16 + 25)) / 201)
    allowance = 1 + (Z95**2 + 1) / (4 * (5 - 1))  # about the t / z quantile ratio for 5 residuals
    # ceil(6 * 0.95) = 6 > 5 residuals: the conformal quantile would be the largest (5), narrower
    expected = Z95 * rms1 * allowance * np.array([1.0, 2.0, 2.0 * math.sqrt(3 / 2)])  # step 3: beyond K
    assert expected[0] > 5.0
    np.testing.assert_allclose(floored_half_widths(Q, counts, 3, 0.95), expected, rtol=1e-12)
    # at 80 %: ceil(6 * 0.8) = 5 <= 5 residuals, the conformal quantile: the 5th smallest
    np.testing.assert_allclose(floored_half_widths(Q, counts, 3, 0.8), [5.0, 10.0, 10.0 * math.sqrt(3 / 2)])


def test_the_rnn_rule_takes_a_last_step_s_own_count():
    e = np.full((30, 3), 1.0)
    e[:, 1] = 2.0
    e[3:, 2] = np.nan  # step 3 has 3 residuals: too few for 90 %, the Gaussian width with its allowance
    Q, counts = residual_quantiles(e)
    z = NormalDist().inv_cdf(0.95)
    q = floored_half_widths(Q, counts, 4, 0.9)
    assert q[0] == pytest.approx(1.0) and q[1] == pytest.approx(2.0)
    rms3 = math.sqrt(np.mean(Q[2] ** 2))
    assert rms3 == pytest.approx(2.0 * math.sqrt(3 / 2))  # grown from step 2's
    assert q[2] == pytest.approx(z * rms3 * (1 + (z * z + 1) / (4 * 2)), rel=1e-12)
    assert q[3] == pytest.approx(z * rms3 * math.sqrt(4 / 3) * (1 + (z * z + 1) / (4 * 2)), rel=1e-12)


def test_the_rnn_rule_grows_steps_beyond_the_residuals_from_the_last_step_s_rms():
    e = np.array([[1.0, 2.0, 5.0], [3.0, 4.0, 7.0]])  # three steps, two residuals each
    Q, counts = residual_quantiles(e)
    z = NormalDist().inv_cdf(0.9)
    rms = np.sqrt(np.mean(Q**2, axis=1))
    assert len(set(np.round(rms, 9))) == 3
    allowance = 1 + (z * z + 1) / 4  # n - 1 = 1
    q = floored_half_widths(Q, counts, 5, 0.8)
    expected = z * allowance * np.r_[rms, rms[-1] * np.sqrt([4 / 3, 5 / 3])]
    np.testing.assert_allclose(q, np.maximum(expected, q), rtol=1e-12)
    np.testing.assert_allclose(q[3:], expected[3:], rtol=1e-12)
