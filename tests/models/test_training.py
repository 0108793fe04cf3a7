"""Training behaviour: initialisation, overfitting, early stopping, back-off and divergence."""
import numpy as np
import pytest

from tickcast.models import RNNForecaster, TrainingDiverged
from tickcast.models.cells import make_cell
from tickcast.models.data import make_windows, split_sizes
from tickcast.models.params import allocate, flatten
from tickcast.models.train import TrainSettings, mse, train
from tickcast.models.transforms import fit_transform, signal


def _training_targets(y, m):
    """The scaled training targets the model saw, rebuilt from public pieces."""
    z = signal(y, m.transform_)
    T = m.window_
    n_train, _ = split_sizes(z.size - T, m.config.val_fraction)
    tf = fit_transform(m.transform_, z[:n_train + T])
    _, Y = make_windows(tf.scale(z), T)
    return Y[:n_train]


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_epoch0_loss_is_the_target_variance(make_series, cell):
    """by = mean target and a small Why: the loss before any update is var(targets) within 2%
    (a random read-out would start at var + mean^2 + var(h Why), the 'hockey stick')."""
    y = make_series("walk", 800, seed=3, drift=0.002, sigma=0.01)
    m = RNNForecaster(cell=cell, epochs=0).fit(y)
    targets = _training_targets(y, m)
    assert m.history_[0]["epoch"] == 0
    assert m.history_[0]["train_loss"] == pytest.approx(np.var(targets), rel=0.02)
    assert m.n_epochs_ == 0 and m.best_epoch_ == 0
    # standardised targets have a mean near 0, so check the bias itself as well
    assert m._params["by"][0] == pytest.approx(np.mean(targets), rel=1e-12, abs=1e-15)


def test_a_large_read_out_init_would_break_the_epoch0_promise(make_series):
    y = make_series("walk", 800, seed=3, drift=0.002, sigma=0.01)
    m = RNNForecaster(epochs=0, out_scale=30.0).fit(y)
    assert m.history_[0]["train_loss"] > 1.5 * np.var(_training_targets(y, m))


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_overfits_one_short_sequence(cell):
    """40 points of white noise, no validation, 300 epochs: the loss falls below 1% of start."""
    y = np.random.default_rng(7).standard_normal(40)
    m = RNNForecaster(cell=cell, window=8, val_fraction=0.0, epochs=300, patience=0, lr=1e-2,
                      transform="level").fit(y)
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


def test_early_stopping_restores_the_best_weights(make_series):
    """Pure noise: validation loss stops improving quickly; the kept weights are the best."""
    y = make_series("walk", 1200, seed=5)
    m = RNNForecaster(epochs=30, patience=2, lr=1e-2).fit(y)
    vals = [h["val_loss"] for h in m.history_]
    assert m.n_epochs_ < 30
    assert m.best_epoch_ == int(np.argmin(vals))
    assert m.n_epochs_ - m.best_epoch_ == 2
    # the restored weights give exactly the best validation loss recorded
    z = signal(y, m.transform_)
    n_train, _ = split_sizes(z.size - m.window_, m.config.val_fraction)
    X, Y = make_windows(fit_transform(m.transform_, z[:n_train + m.window_]).scale(z), m.window_)
    assert mse(m._cell, m._params, X[n_train:], Y[n_train:]) == pytest.approx(min(vals), rel=1e-12)


def test_same_seed_same_forecasts_other_seed_differs(make_series):
    y = make_series("sine", 200, seed=2)
    a = RNNForecaster(seed=11, epochs=5).fit(y).predict(6)
    b = RNNForecaster(seed=11, epochs=5).fit(y).predict(6)
    c = RNNForecaster(seed=12, epochs=5).fit(y).predict(6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("cell", ["rnn", "gru"])
@pytest.mark.parametrize("lr", [1e6, 1e300])
def test_absurd_learning_rate_is_finite_or_diverged_never_nan(make_series, cell, lr):
    y = make_series("walk", 500, seed=4)
    try:
        m = RNNForecaster(cell=cell, lr=lr).fit(y)
    except TrainingDiverged as exc:
        assert "back-offs" in str(exc)
        return
    lower, upper = m.predict_interval(5)
    assert np.all(np.isfinite(m.predict(5))) and np.all(np.isfinite(lower)) and np.all(np.isfinite(upper))
    assert all(np.isfinite(h["train_loss"]) for h in m.history_)
    assert RNNForecaster.from_bytes(m.to_bytes()).history_ == m.history_  # JSON-able, no inf


class _NaNCell:
    """A real cell whose outputs are NaN on chosen forward calls (training batches only)."""

    def __init__(self, bad_calls):
        self.inner, self.bad_calls, self.calls = make_cell("rnn", 1, 4, 1), bad_calls, 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def forward(self, p, X):
        out, cache = self.inner.forward(p, X)
        if X.shape[0] == 6:  # the training batch size below
            self.calls += 1
            if self.calls in self.bad_calls:
                out = out * np.nan
        return out, cache


def _tiny_problem(cell):
    rng = np.random.default_rng(0)
    flat, params = allocate(cell.shapes)
    flat[:] = flatten(cell.init_params(rng), cell.shapes)
    X, Y = rng.standard_normal((32, 5, 1)), rng.standard_normal(32)
    return flat, params, X, Y, rng


def test_a_non_finite_step_never_updates_and_halves_the_learning_rate():
    cell = _NaNCell(bad_calls={1})
    flat, params, X, Y, rng = _tiny_problem(cell)
    settings = TrainSettings(1, 6, 1e-2, "adam", 1.0, "norm", 0, 0.0, 3)
    history, _, _ = train(cell, flat, params, X[:24], Y[:24], X[24:], Y[24:], settings, rng)
    assert history[-1]["lr"] == pytest.approx(5e-3)
    # the three finite steps of the epoch were taken and recorded, the NaN one was not
    assert all(np.isfinite(history[-1][k]) for k in ("train_loss", "val_loss", "grad_norm"))
    assert np.all(np.isfinite(flat))


def test_repeated_non_finite_steps_raise_training_diverged_with_weights_untouched():
    cell = _NaNCell(bad_calls=set(range(1, 100)))
    flat, params, X, Y, rng = _tiny_problem(cell)
    start = flat.copy()
    settings = TrainSettings(5, 6, 1e-2, "adam", 1.0, "norm", 0, 0.0, 3)
    with pytest.raises(TrainingDiverged, match="3 learning-rate back-offs"):
        train(cell, flat, params, X[:24], Y[:24], X[24:], Y[24:], settings, rng)
    np.testing.assert_array_equal(flat, start)


def test_sgd_and_value_clipping_options_train(make_series):
    y = make_series("sine", 300, seed=6)
    m = RNNForecaster(optimizer="sgd", lr=0.05, clip=0.5, clip_mode="value", epochs=8).fit(y)
    assert min(h["val_loss"] for h in m.history_) < m.history_[0]["val_loss"]
    assert np.all(np.isfinite(m.predict(4)))
