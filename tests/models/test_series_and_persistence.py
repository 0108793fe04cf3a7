"""Input checks, short and awkward series, transforms, and the bytes round trip."""
import json
import subprocess
import sys

import numpy as np
import pytest

from tickcast.models import MIN_LENGTH, ForecasterConfig, RNNForecaster, SeriesTooShort
from tickcast.models.persist import MAGIC
from tickcast.models.transforms import choose_transform, fit_transform, signal


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_round_trip_gives_bitwise_identical_forecasts(make_series, cell):
    y = make_series("walk", 500, seed=1)
    m = RNNForecaster(cell=cell, hidden_size=8, epochs=3).fit(y)
    blob = m.to_bytes()
    assert blob.startswith(MAGIC) and isinstance(blob, bytes)
    back = RNNForecaster.from_bytes(blob)
    np.testing.assert_array_equal(back.predict(12), m.predict(12))
    for a, b in zip(back.predict_interval(12, 0.9), m.predict_interval(12, 0.9)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(back.predict(4, y=y[:300]), m.predict(4, y=y[:300]))
    assert back.config == m.config and back.history_ == m.history_ and back.backtest_ == m.backtest_
    assert (back.transform_, back.window_, back.best_epoch_, back.n_epochs_) == (
        m.transform_, m.window_, m.best_epoch_, m.n_epochs_)
    # a loaded model can seed a warm start
    assert RNNForecaster(cell=cell, hidden_size=8).fit(y, warm_start=back, epochs=1).warm_started_


def test_blob_header_is_json_with_a_format_version(make_series):
    blob = RNNForecaster(epochs=1).fit(make_series("sine", 100)).to_bytes()
    start = len(MAGIC) + 4
    hlen = int.from_bytes(blob[len(MAGIC):start], "little")
    header = json.loads(blob[start:start + hlen])
    assert header["format_version"] == 1
    assert {"weights", "y_tail", "residual_quantiles"} <= set(header["arrays"])
    assert header["meta"]["config"]["cell"] == "rnn"


def test_corrupt_or_foreign_blobs_are_rejected(make_series):
    blob = RNNForecaster(epochs=1).fit(make_series("sine", 100)).to_bytes()
    with pytest.raises(ValueError, match="magic"):
        RNNForecaster.from_bytes(b"\x80\x04pickle" + blob)
    with pytest.raises(ValueError):
        RNNForecaster.from_bytes(blob[:len(MAGIC) + 20])
    with pytest.raises(ValueError, match="corrupt"):
        RNNForecaster.from_bytes(blob[:-8])


def test_too_short_raises_a_clear_error():
    with pytest.raises(SeriesTooShort, match=rf"{MIN_LENGTH - 1} points.*at least {MIN_LENGTH}"):
        RNNForecaster().fit(np.arange(1.0, MIN_LENGTH))
    assert issubclass(SeriesTooShort, ValueError)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_a_value_error(make_series, bad):
    y = make_series("walk", 100)
    y[50] = bad
    with pytest.raises(ValueError, match="NaN or infinite") as info:
        RNNForecaster().fit(y)
    assert not isinstance(info.value, SeriesTooShort)


def test_two_dimensional_input_is_rejected():
    with pytest.raises(ValueError, match="one-dimensional"):
        RNNForecaster().fit(np.ones((20, 2)))


@pytest.mark.parametrize("n", [MIN_LENGTH, 20, 30, 45])
def test_short_series_forecast_with_an_adapted_window(n):
    years = np.arange(n)
    y = 50.0 + 2.0 * years + np.random.default_rng(n).normal(0, 1.0, n)  # yearly, trending
    m = RNNForecaster().fit(y)
    assert 2 <= m.window_ <= max(2, (n - 1) // 4)
    point = m.predict(5)
    lower, upper = m.predict_interval(5)
    assert np.all(np.isfinite(point)) and np.all(lower <= point) and np.all(point <= upper)
    assert abs(point[0] - y[-1]) < 10.0  # a step the size the series has shown, not garbage


def test_series_with_gaps_removed_and_non_positive_values(wti, make_series):
    y = wti[-800:]  # FRED's WTI: missing days ('.') were dropped by the loader
    m = RNNForecaster().fit(y)
    assert m.transform_ == "log_return" and np.all(np.isfinite(m.predict(10)))
    anomaly = make_series("ar1", 300, seed=2)  # crosses zero: no log returns
    assert RNNForecaster().fit(anomaly).transform_ == "level"
    walk = np.cumsum(np.random.default_rng(3).normal(0, 1, 300)) - 40  # persistent, signed
    m = RNNForecaster().fit(walk)
    assert m.transform_ == "diff" and np.all(np.isfinite(m.predict_interval(5)[0]))


def test_explicit_transform_is_respected_and_checked(make_series):
    y = make_series("walk", 200)
    assert RNNForecaster(transform="level", epochs=1).fit(y).transform_ == "level"
    with pytest.raises(ValueError, match="strictly positive"):
        RNNForecaster(transform="log_return").fit(y - 200)


def test_transform_round_trip_and_training_only_statistics(make_series):
    y = make_series("walk", 300, seed=4)
    for name in ("log_return", "diff", "level"):
        z = signal(y, name)
        tf = fit_transform(name, z[:200])
        assert tf.mean == pytest.approx(np.mean(z[:200])) and tf.std == pytest.approx(np.std(z[:200]))
        s = tf.scale(z)
        lag = 0 if name == "level" else 1
        rebuilt = tf.next_value(y[:-1] if lag else y, s[-len(y) + lag:] if lag else s)
        np.testing.assert_allclose(rebuilt, y[lag:], rtol=1e-12)
    assert choose_transform(y) == "log_return"
    assert fit_transform("diff", np.zeros(10)).std == 1.0  # constant signal stays finite


def test_predict_needs_a_fit_and_a_valid_horizon(make_series):
    with pytest.raises(RuntimeError, match="not fitted"):
        RNNForecaster().predict(3)
    m = RNNForecaster(epochs=1).fit(make_series("sine", 80))
    for h in (0, -1, 2.5):
        with pytest.raises(ValueError, match="positive integer"):
            m.predict(h)
    with pytest.raises(SeriesTooShort, match=rf"at least {m.window_ + 1} to forecast"):
        m.predict(2, y=np.arange(1.0, 6.0))


def test_config_is_frozen_json_able_and_validated():
    m = RNNForecaster(cell="gru", hidden_size=16, seed=3)
    params = m.get_params()
    assert json.loads(json.dumps(params)) == params and params["cell"] == "gru"
    assert RNNForecaster(**params).config == m.config
    with pytest.raises(AttributeError):
        m.config.lr = 1.0
    for bad in ({"cell": "lstm"}, {"val_fraction": 0.7}, {"lr": -1}, {"clip_mode": "x"},
                {"transform": "sqrt"}, {"window": 0}, {"no_such_knob": 1}):
        with pytest.raises(ValueError):
            RNNForecaster(**bad)
    assert ForecasterConfig().to_dict() == RNNForecaster().get_params()


def test_models_imports_with_numpy_only():
    code = ("import sys, models; bad = {'pandas', 'torch', 'logging.config', 'sqlalchemy'} & "
            "set(sys.modules); assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
