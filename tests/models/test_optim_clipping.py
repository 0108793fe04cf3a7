"""Gradient clipping (pure functions) and the optimizers."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tickcast.models.optim import SGD, Adam, clip_flat, clip_grads


def test_norm_clipping_keeps_direction_and_sets_norm_to_threshold():
    rng = np.random.default_rng(0)
    grads = {"Whh": rng.standard_normal((4, 4)) * 3, "by": rng.standard_normal(1) * 3}
    before = {k: v.copy() for k, v in grads.items()}
    clipped, norm, was_clipped = clip_grads(grads, 1.0, "norm")
    flat_in = np.concatenate([v.ravel() for v in before.values()])
    flat_out = np.concatenate([clipped[k].ravel() for k in before])
    assert was_clipped and norm == pytest.approx(np.linalg.norm(flat_in), rel=1e-12)
    assert np.linalg.norm(flat_out) == pytest.approx(1.0, rel=1e-12)
    cosine = flat_in @ flat_out / (np.linalg.norm(flat_in) * np.linalg.norm(flat_out))
    assert cosine == pytest.approx(1.0, abs=1e-12)
    for k in before:  # pure: the input is untouched
        np.testing.assert_array_equal(grads[k], before[k])


def test_norm_clipping_below_threshold_is_identity():
    g = np.array([0.3, -0.4])
    out, norm, was_clipped = clip_flat(g, 1.0, "norm")
    np.testing.assert_array_equal(out, g)
    assert norm == pytest.approx(0.5) and not was_clipped


def test_value_clipping_is_elementwise():
    out, _, was_clipped = clip_flat(np.array([-3.0, 0.5, 2.0]), 1.0, "value")
    np.testing.assert_array_equal(out, [-1.0, 0.5, 1.0])
    assert was_clipped


def test_clip_none_disables_and_bad_mode_raises():
    g = np.array([10.0, 0.0])
    out, norm, was_clipped = clip_flat(g, None)
    np.testing.assert_array_equal(out, g)
    assert norm == 10.0 and not was_clipped
    with pytest.raises(ValueError, match="clip_mode"):
        clip_flat(g, 1.0, "bogus")


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.integers(1, 50), elements=st.floats(-1e6, 1e6)), st.floats(1e-3, 1e3))
def test_norm_clipping_property(g, threshold):
    out, norm, _ = clip_flat(g, threshold, "norm")
    assert np.linalg.norm(out) <= threshold * (1 + 1e-12) or np.allclose(out, g)
    if norm > 0:  # same direction: out is a non-negative multiple of g
        np.testing.assert_allclose(out * norm, g * np.linalg.norm(out), rtol=1e-9, atol=1e-9)


def test_adam_first_step_has_size_lr_and_minimises_a_quadratic():
    theta = np.array([3.0, -2.0, 0.5])
    opt = Adam(theta.size, lr=0.1)
    start = theta.copy()
    opt.step(theta, 2 * theta)  # gradient of |theta|^2
    np.testing.assert_allclose(np.abs(theta - start), 0.1, rtol=1e-6)
    for _ in range(500):
        opt.step(theta, 2 * theta)
    assert np.linalg.norm(theta) < 1e-2


def test_sgd_with_momentum_minimises_a_quadratic():
    theta = np.array([3.0, -2.0])
    opt = SGD(theta.size, lr=0.05, momentum=0.9)
    for _ in range(300):
        opt.step(theta, 2 * theta)
    assert np.linalg.norm(theta) < 1e-3
