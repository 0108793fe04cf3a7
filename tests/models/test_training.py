"""Training behaviour: initialisation, overfitting, early stopping, back-off and divergence."""

import math

import numpy as np
import pytest
from tests.support.single_network import evaluate, loss_and_grad

from tickcast.models import RNNForecaster, TrainingDiverged
from tickcast.models.cells import make_cell
from tickcast.models.engine import train
from tickcast.models.network import shrunk_mean_targets
from tickcast.models.params import allocate, flatten
from tickcast.models.train import Data, TrainSettings, auto_batch_size, significant
from tickcast.models.windows import assemble, prepare, split_point


def _windows(m, y, end=None):
    """The windows and targets the model's first member saw, rebuilt from public pieces."""
    p = m._preps[0]
    n = p.n if end is None else end
    X, Y, M, _, _ = assemble([p], m.window_, m.horizon_, [(max(1, n - m.config.max_windows), n, n)])
    return Data(X, Y, M)


@pytest.mark.parametrize("cell", ["rnn", "gru"])
@pytest.mark.parametrize("loss", ["mse", "mae"])
def test_epoch0_loss_is_that_of_the_mean_change(make_series, cell, loss):
    """by = the (shrunk) mean target per step and Why = 0: before any update the network forecasts
    exactly the mean change, and its loss is that constant forecast's loss: with a clear drift
    (hardly shrunk) the targets' variance for MSE, not variance + mean^2 + noise from a random
    read-out (the 'hockey stick')."""
    y = make_series("walk", 800, seed=3, drift=0.004, sigma=0.01)
    m = RNNForecaster(cell=cell, loss=loss, epochs=0, val_fraction=0.0, ensemble=1, season_length=1).fit(y)
    data = _windows(m, y)
    by = m._members[0].params["by"]
    np.testing.assert_allclose(by, shrunk_mean_targets(data), rtol=1e-12)
    mean = (data.Y * data.M).sum(0) / data.M.sum(0)
    np.testing.assert_allclose(by, mean, rtol=0.02)  # a drift this clear is hardly shrunk
    np.testing.assert_allclose(m.predict(m.horizon_), y[-1] * np.exp(by * m._preps[0].scale), rtol=1e-12)
    constant = loss_and_grad(np.broadcast_to(by, data.Y.shape), data.Y, data.M, loss)[0]
    assert m.history_[0]["epoch"] == 0
    assert m.history_[0]["train_loss"] == pytest.approx(constant, rel=1e-12)
    if loss == "mse":
        variance = float((((data.Y - mean) ** 2) * data.M).sum() / data.M.sum())
        assert m.history_[0]["train_loss"] == pytest.approx(variance, rel=0.02)
    assert m.n_epochs_ == 0 and m.best_epoch_ == 0


def test_a_large_read_out_init_would_break_the_epoch0_promise(make_series):
    y = make_series("walk", 800, seed=3, drift=0.004, sigma=0.01)
    kw = dict(loss="mse", epochs=0, val_fraction=0.0, ensemble=1, season_length=1)
    calm = RNNForecaster(**kw).fit(y)
    wild = RNNForecaster(out_scale=30.0, **kw).fit(y)
    assert wild.history_[0]["train_loss"] > 1.5 * calm.history_[0]["train_loss"]


def test_an_unclear_drift_is_shrunk_towards_no_change():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((400, 3))
    noise -= noise.mean(0)
    clear = noise + 5.0
    ones = np.ones_like(noise)
    # a mean of one standard error (step k has 400 / k independent targets) is not a drift
    faint = noise + 0.9 * noise.std(0) * np.sqrt(np.arange(1, 4) / 400.0)
    np.testing.assert_array_equal(shrunk_mean_targets(Data(None, faint, ones)), 0.0)
    np.testing.assert_allclose(shrunk_mean_targets(Data(None, clear, ones)), clear.mean(0), rtol=0.01)
    masked = ones.copy()
    masked[:, 2] = 0.0  # no targets this far ahead: nothing to learn from, no change
    assert shrunk_mean_targets(Data(None, clear, masked))[2] == 0.0


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_overfits_one_short_sequence(cell):
    """40 points of white noise, no validation, 300 epochs: the loss falls below 1% of start."""
    y = np.random.default_rng(7).standard_normal(40)
    m = RNNForecaster(
        cell=cell,
        horizon=1,
        lookbacks=[8],
        ensemble=1,
        val_fraction=0.0,
        epochs=300,
        patience=0,
        lr=1e-2,
        loss="mse",
        transform="linear",
        season_length=1,
    ).fit(y)
    assert m.history_[-1]["train_loss"] < 0.01 * m.history_[0]["train_loss"]
    assert m.history_[0]["val_loss"] is None


def test_history_records_every_epoch_without_nan(make_series):
    y = make_series("sine", 300, seed=1)
    m = RNNForecaster(epochs=6, patience=0).fit(y)
    assert [h["epoch"] for h in m.history_] == list(range(7)) and m.n_epochs_ == 6
    for h in m.history_:
        for key in ("train_loss", "val_loss", "grad_norm", "clip_fraction"):
            assert np.isfinite(h[key]), (key, h)
        assert 0.0 <= h["clip_fraction"] <= 1.0
    assert all(h["grad_norm"] > 0 for h in m.history_[1:])
    assert len(m.histories_) == m.config.ensemble


def test_early_stopping_restores_the_best_weights(make_series):
    """A seasonal series learns for a while, then stops improving; the kept weights give exactly
    the validation loss recorded for the best epoch (checked before any refit)."""
    y = make_series("sine", 600, seed=5, noise=1.0)
    # float64: the validation loss is recomputed below in float64 and compared to 1e-12
    m = RNNForecaster(
        epochs=60, patience=2, lr=1e-2, refit=False, ensemble=1, season_length=1, precision="float64"
    ).fit(y)
    assert m.best_epoch_ > 0 and m.n_epochs_ < 60
    assert m.n_epochs_ - m.best_epoch_ == 2
    s = split_point(m._preps[0].n, m.config.val_fraction)
    p = m._preps[0]
    X, Y, M, _, _ = assemble([p], m.window_, m.horizon_, [(s, p.n, p.n)])
    member = m._members[0]
    val = evaluate(member.cell, member.params, Data(X, Y, M), m.config.loss)
    assert val == pytest.approx(m.history_[m.best_epoch_]["val_loss"], rel=1e-12)


def _gain_is_significant(new, old, weight, z, min_delta, block) -> bool:
    """significant()'s docstring, restated with plain loops: the mean change must beat min_delta
    (relative to the old loss) and, when z > 0 and there are at least two blocks of ``block``
    windows, lie z standard errors below zero, the error taken over the blocks' estimates."""
    diff = [float(a) - float(b) for a, b in zip(new, old, strict=True)]
    change = sum(diff) / weight
    if not math.isfinite(change) or not change < -min_delta * (sum(float(b) for b in old) / weight):
        return False
    if z <= 0:
        return True
    k = len(diff) // max(block, 1)
    if k < 2:
        return True
    size = len(diff) // k
    estimates = [sum(diff[b * size : (b + 1) * size]) * k / weight for b in range(k)]
    mean = sum(estimates) / k
    se = math.sqrt(sum((e - mean) ** 2 for e in estimates) / (k - 1)) / math.sqrt(k)
    return change < -z * se


def test_the_gain_test_matches_its_definition_on_many_cases():
    """Sizes from one window to 40, blocks of 0 to 7, z from 0 to 3, min_delta 0 to 0.2, gains
    steady and noisy, and a weight that is not the window count: every answer as restated."""
    rng = np.random.default_rng(7)
    answers = []
    for _ in range(3000):
        n = int(rng.integers(1, 41))
        old = rng.uniform(0.5, 2.0, n)
        new = old + rng.normal(float(rng.choice([-0.3, -0.05, 0.0, 0.1])), float(rng.choice([0.0, 0.05, 0.5])), n)
        weight = float(n * rng.choice([1, 2, 3]))
        z, min_delta, block = (
            float(rng.choice([0.0, 0.5, 1.0, 2.0, 3.0])),
            float(rng.choice([0.0, 0.01, 0.2])),
            int(rng.integers(0, 8)),
        )
        got = significant(new, old, weight, z, min_delta, block)
        assert got is _gain_is_significant(new, old, weight, z, min_delta, block), (n, z, min_delta, block)
        answers.append(got)
    assert 0.2 < np.mean(answers) < 0.8  # both answers are exercised


def test_the_gain_test_at_its_edges():
    """The boundaries: a gain of exactly min_delta is not one; exactly z standard errors is not
    either; two blocks are enough to test the noise; 0 < z <= 1 still tests it."""
    ones = np.ones(4)
    assert not significant(0.5 * ones, ones, 4.0, z=0.0, min_delta=0.5, block=1)  # exactly min_delta
    assert significant(0.49 * ones, ones, 4.0, z=0.0, min_delta=0.5, block=1)
    # two windows, block 1: change -4, standard error 2 (estimates -6 and -2): at z = 2 a tie
    old, new = np.array([4.0, 4.0]), np.array([1.0, 3.0])
    assert not significant(new, old, 1.0, z=2.0, min_delta=0.0, block=1)
    assert significant(new, old, 1.0, z=1.999, min_delta=0.0, block=1)
    # four windows: change -1, standard error sqrt(16 / 3) / 2 = 1.155: passes at z = 0.5, not at 1
    old, new = np.full(4, 4.0), np.array([1.0, 5.0, 1.0, 5.0])
    assert significant(new, old, 4.0, z=0.5, min_delta=0.0, block=1)
    assert not significant(new, old, 4.0, z=1.0, min_delta=0.0, block=1)
    assert significant(new, old, 4.0, z=1.0, min_delta=0.0, block=4)  # one block: min_delta decides
    assert not significant(new, old, 4.0, z=1.0, min_delta=0.0, block=0)  # as block 1
    assert not significant(np.array([np.nan, 1.0]), old[:2], 2.0, z=0.0, min_delta=0.0, block=1)


@pytest.mark.parametrize(
    ("n_windows", "batch"),
    [
        (0, 1),
        (1, 1),
        (2, 2),
        (31, 31),
        (32, 32),
        (33, 32),
        (1000, 32),
        (1400, 32),
        (1450, 64),
        (2000, 64),
        (3000, 128),
        (8192, 256),
        (20000, 256),
        (10**6, 256),
    ],
)
def test_the_batch_size_by_default(n_windows, batch):
    """About 32 steps an epoch: n / 32 rounded to a power of two on the log scale, within [32, 256],
    all the windows when there are fewer than 32 (at least one)."""
    assert auto_batch_size(n_windows) == batch
    assert isinstance(auto_batch_size(n_windows), int)


def test_noise_is_not_an_improvement():
    """The gain test of early stopping: a consistent gain passes, the same mean gain with noise
    that large does not, and a gain under min_delta never does."""
    rng = np.random.default_rng(1)
    old = np.full(400, 1.0)
    steady = old - 0.05
    e = rng.normal(0, 2.0, 400)
    noisy = old - 0.05 + (e - e.mean())
    assert significant(steady, old, 400.0, z=2.0, min_delta=0.01, block=5)
    assert not significant(noisy, old, 400.0, z=2.0, min_delta=0.01, block=5)
    assert significant(noisy, old, 400.0, z=0.0, min_delta=0.01, block=5)  # without the noise test
    assert not significant(old - 0.005, old, 400.0, z=2.0, min_delta=0.01, block=5)
    # too few windows to estimate the noise (one block): min_delta alone decides
    assert significant(old[:3] - 0.5, old[:3], 3.0, z=2.0, min_delta=0.01, block=5)
    assert not significant(old[:3] - 0.005, old[:3], 3.0, z=2.0, min_delta=0.01, block=5)


def test_a_price_like_random_walk_keeps_the_untrained_forecast(make_series):
    """On a random walk the network finds nothing that holds up in validation; its forecast
    stays the (shrunk) mean change, close to naive."""
    y = make_series("walk", 2000, seed=12, sigma=0.01)
    m = RNNForecaster(season_length=1, horizon=5).fit(y)
    assert all(member.best_epoch == 0 for member in m._members)
    assert np.all(np.abs(m.predict(5) / y[-1] - 1) < 0.003)


def test_same_seed_same_forecasts_other_seed_differs(make_series):
    y = make_series("sine", 200, seed=2)
    a = RNNForecaster(seed=11, epochs=5).fit(y).predict(6)
    b = RNNForecaster(seed=11, epochs=5).fit(y).predict(6)
    c = RNNForecaster(seed=12, epochs=5, significance=0.0).fit(y).predict(6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("cell", ["rnn", "gru"])
@pytest.mark.parametrize("lr", [1e6, 1e300])
def test_absurd_learning_rate_is_finite_or_diverged_never_nan(make_series, cell, lr):
    y = make_series("walk", 500, seed=4)
    try:
        m = RNNForecaster(cell=cell, lr=lr, significance=0.0, min_delta=0.0).fit(y)
    except TrainingDiverged as exc:
        assert "back-offs" in str(exc)
        return
    lower, upper = m.predict_interval(5)
    assert np.all(np.isfinite(m.predict(5))) and np.all(np.isfinite(lower)) and np.all(np.isfinite(upper))
    assert all(np.isfinite(h["train_loss"]) for h in m.history_)
    assert RNNForecaster.from_bytes(m.to_bytes()).history_ == m.history_  # JSON-able, no inf


class _NaNCell:
    """A real cell whose outputs are NaN on chosen forward calls of batches of ``batch`` windows
    (6: the training batches below; 8: the validation windows)."""

    def __init__(self, bad_calls, batch: int = 6):
        self.inner, self.bad_calls, self.calls, self.batch = make_cell("rnn", 1, 4, 2), bad_calls, 0, batch

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def forward(self, p, X):
        out, cache = self.inner.forward(p, X)
        if X.shape[0] == self.batch:
            self.calls += 1
            if self.calls in self.bad_calls:
                out = out * np.nan
        return out, cache


def _tiny_problem(cell):
    rng = np.random.default_rng(0)
    flat, params = allocate(cell.shapes)
    flat[:] = flatten(cell.init_params(rng, 0.1), cell.shapes)
    X, Y = rng.standard_normal((32, 5, 1)), rng.standard_normal((32, 2))
    M = np.ones_like(Y)
    return flat, params, Data(X[:24], Y[:24], M[:24]), Data(X[24:], Y[24:], M[24:]), rng


def test_a_non_finite_step_never_updates_and_halves_the_learning_rate():
    cell = _NaNCell(bad_calls={1})
    flat, params, data, val, rng = _tiny_problem(cell)
    settings = TrainSettings(1, 6, 1e-2, "adam", 1.0, "norm", 0, 0.0, 3)
    history, _, _ = train(cell, flat, params, data, val, settings, rng)
    assert history[-1]["lr"] == pytest.approx(5e-3)
    # the three finite steps of the epoch were taken and recorded, the NaN one was not
    assert all(np.isfinite(history[-1][k]) for k in ("train_loss", "val_loss", "grad_norm"))
    assert np.all(np.isfinite(flat))


def test_repeated_non_finite_steps_raise_training_diverged_with_weights_untouched():
    cell = _NaNCell(bad_calls=set(range(1, 100)))
    flat, params, data, val, rng = _tiny_problem(cell)
    start = flat.copy()
    settings = TrainSettings(5, 6, 1e-2, "adam", 1.0, "norm", 0, 0.0, 3)
    with pytest.raises(TrainingDiverged, match="non-finite loss or gradient after 3 learning-rate back-offs"):
        train(cell, flat, params, data, val, settings, rng)
    np.testing.assert_array_equal(flat, start)


def test_an_epoch_without_a_finite_step_is_recorded_with_the_restored_weights_losses():
    cell = _NaNCell(bad_calls={1, 2, 3, 4})  # every batch of the first epoch (24 windows, 6 a batch)
    flat, params, data, val, rng = _tiny_problem(cell)
    settings = TrainSettings(2, 6, 1e-2, "adam", 1.0, "norm", 0, 0.0, 8)
    history, _, _ = train(cell, flat, params, data, val, settings, rng)
    first, backed_off = history[0], history[1]
    assert backed_off["train_loss"] == pytest.approx(first["train_loss"], rel=1e-12)  # the weights of epoch 0
    assert backed_off["val_loss"] == pytest.approx(first["val_loss"], rel=1e-12)
    assert backed_off["grad_norm"] == 0.0 and backed_off["lr"] <= 1e-2 / 2**4  # a back-off per NaN step
    assert history[2]["grad_norm"] > 0.0 and np.isfinite(history[2]["train_loss"])


def test_a_non_finite_validation_loss_backs_off_and_says_so():
    cell = _NaNCell(bad_calls=set(range(2, 100)), batch=8)  # every validation after epoch 0's
    flat, params, data, val, rng = _tiny_problem(cell)
    start = flat.copy()
    settings = TrainSettings(5, 6, 1e-2, "adam", 1.0, "norm", 0, 0.0, 3)
    with pytest.raises(TrainingDiverged, match="non-finite validation loss after 3 learning-rate back-offs"):
        train(cell, flat, params, data, val, settings, rng)
    np.testing.assert_array_equal(flat, start)


def test_sgd_and_value_clipping_options_train(make_series):
    y = make_series("sine", 300, seed=6)
    m = RNNForecaster(
        optimizer="sgd", lr=0.05, clip=0.5, clip_mode="value", epochs=8, season_length=1, significance=0.0
    ).fit(y)
    assert min(h["val_loss"] for h in m.history_) < m.history_[0]["val_loss"]
    assert np.all(np.isfinite(m.predict(4)))


def test_prepare_uses_only_what_it_is_given():
    """Scale and seasonal indices of a prefix do not depend on the points after it."""
    y = 10 + np.sin(np.arange(120) * 2 * np.pi / 12) + np.random.default_rng(0).normal(0, 0.1, 120)
    a, b = prepare(y[:96], 12), prepare(y, 12)
    assert a.n == 96 and a.season.m == b.season.m == 12
    assert not np.array_equal(a.season.indices, b.season.indices)
