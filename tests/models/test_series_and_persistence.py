"""Input checks, short, constant and awkward series, scales, and the bytes round trip."""

import json
import struct
import subprocess
import sys

import numpy as np
import pytest

from tickcast.models import MIN_LENGTH, ForecasterConfig, RNNForecaster, SeriesTooShort
from tickcast.models.persist import MAGIC, pack, unpack
from tickcast.models.windows import cut_windows, prepare, series_scale


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
    assert (back.transform_, back.window_, back.best_epoch_, back.n_epochs_, back.horizon_) == (
        m.transform_,
        m.window_,
        m.best_epoch_,
        m.n_epochs_,
        m.horizon_,
    )
    # a loaded model can seed a warm start
    assert RNNForecaster(cell=cell, hidden_size=8).fit(y, warm_start=back, epochs=1).warm_started_


def test_seasonal_and_global_models_round_trip(make_series):
    ys = [make_series("sine", n, seed=n) for n in (60, 96, 130)]
    m = RNNForecaster(season_length=12, epochs=3).fit_many(ys)
    back = RNNForecaster.from_bytes(m.to_bytes())
    for a, b in zip(back.predict_many(30), m.predict_many(30)):
        np.testing.assert_array_equal(a, b)
    for (a, b), (c, d) in zip(back.predict_interval_many(5), m.predict_interval_many(5)):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    assert back.backtests_ == m.backtests_ and back.n_series_ == 3


def test_blob_header_is_json_with_a_format_version(make_series):
    blob = RNNForecaster(epochs=1).fit(make_series("sine", 100)).to_bytes()
    start = len(MAGIC) + 4
    hlen = int.from_bytes(blob[len(MAGIC) : start], "little")
    header = json.loads(blob[start : start + hlen])
    assert header["format_version"] == 2
    assert {"weights", "tails", "residual_quantiles"} <= set(header["arrays"])
    assert header["meta"]["config"]["cell"] == "rnn"


def _rebuild(blob, edit):
    """The blob with its header and arrays passed through ``edit(meta, arrays)``."""
    meta, arrays = unpack(blob)
    edit(meta, arrays)
    return pack(meta, arrays)


def test_corrupt_or_foreign_blobs_are_rejected(make_series):
    blob = RNNForecaster(epochs=1).fit(make_series("sine", 100)).to_bytes()
    with pytest.raises(ValueError, match="magic"):
        RNNForecaster.from_bytes(b"\x80\x04pickle" + blob)
    with pytest.raises(ValueError):
        RNNForecaster.from_bytes(blob[: len(MAGIC) + 20])
    with pytest.raises(ValueError, match="corrupt"):
        RNNForecaster.from_bytes(blob[:-8])
    with pytest.raises(ValueError):
        RNNForecaster.from_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(ValueError, match="corrupt"):
        RNNForecaster.from_bytes(MAGIC + struct.pack("<I", 10**6) + b"{}")


def test_blobs_whose_arrays_disagree_with_their_header_are_rejected(make_series):
    blob = RNNForecaster(epochs=1).fit(make_series("sine", 100)).to_bytes()

    def nan_weights(meta, arrays):
        arrays["weights"][0, 3] = np.nan

    def fewer_members(meta, arrays):
        arrays["weights"] = arrays["weights"][:1]

    def other_hidden_size(meta, arrays):
        meta["config"]["hidden_size"] = 16

    def other_horizon(meta, arrays):
        meta["horizon"] = meta["horizon"] + 3

    def lost_series(meta, arrays):
        meta["series"] = []

    for edit in (nan_weights, fewer_members, other_hidden_size, other_horizon, lost_series):
        with pytest.raises(ValueError) as info:
            RNNForecaster.from_bytes(_rebuild(blob, edit))
        assert "corrupt" in str(info.value) or "weights" in str(info.value), edit.__name__


def test_too_short_raises_a_clear_error():
    assert MIN_LENGTH == 3
    with pytest.raises(SeriesTooShort, match=r"2 point\(s\).*at least 3"):
        RNNForecaster().fit([1.0, 2.0])
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


@pytest.mark.parametrize("n", [MIN_LENGTH, 5, 14, 20, 45])
def test_short_series_are_forecast(n):
    """Every series from three points on gets a forecast (M3's yearly series have 14)."""
    years = np.arange(n)
    y = 50.0 + 2.0 * years + np.random.default_rng(n).normal(0, 1.0, n)  # yearly, trending
    m = RNNForecaster().fit(y)
    point = m.predict(6)
    lower, upper = m.predict_interval(6)
    assert np.all(np.isfinite(point)) and np.all(lower <= point) and np.all(point <= upper)
    assert abs(point[0] - y[-1]) < 10.0  # a step the size the series has shown, not garbage
    assert 1 <= m._steps_per_pass <= m.horizon_


@pytest.mark.parametrize(
    "y",
    [np.full(60, 4.25), np.full(60, -1.0), np.zeros(10), np.r_[np.linspace(1, 2, 80), np.full(20, 2.0)]],
    ids=["constant", "negative-constant", "zeros", "last-fifth-constant"],
)
def test_constant_series_are_forecast_flat(y):
    """A policy rate held for months or a halted ticker: a flat forecast and finite intervals."""
    m = RNNForecaster().fit(y)
    point = m.predict(5)
    lower, upper = m.predict_interval(5)
    if np.ptp(y) == 0:
        np.testing.assert_allclose(point, y[-1], rtol=1e-9, atol=1e-12)
    else:  # what came before the flat end still counts, but it does not run away
        np.testing.assert_allclose(point, y[-1], rtol=0.05)
    assert np.all(np.isfinite(lower)) and np.all(np.isfinite(upper))
    assert np.all(lower <= point) and np.all(point <= upper)
    if y[-1] != 0:  # an interval, not a point: narrow, but there
        assert np.all(upper - lower > 0) and np.all(upper - lower < 0.01 * abs(y[-1]) + (np.ptp(y) > 0))
    assert RNNForecaster.from_bytes(m.to_bytes()).predict(5).tolist() == point.tolist()


def test_scales_follow_the_sign_of_the_series(wti, make_series):
    y = wti[-800:]  # FRED's WTI: missing days ('.') were dropped by the loader
    m = RNNForecaster().fit(y)
    assert m.transform_ == "log" and np.all(np.isfinite(m.predict(10)))
    anomaly = make_series("ar1", 300, seed=2)  # crosses zero: no logs
    m = RNNForecaster().fit(anomaly)
    assert m.transform_ == "linear" and np.all(np.isfinite(m.predict_interval(5)[0]))


def test_explicit_transform_is_respected_and_checked(make_series):
    y = make_series("walk", 200)
    assert RNNForecaster(transform="linear", epochs=1).fit(y).transform_ == "linear"
    with pytest.raises(ValueError, match="strictly positive"):
        RNNForecaster(transform="log").fit(y - 200)


def test_windows_are_normalised_to_their_last_value():
    x = np.log(np.array([10.0, 11.0, 12.0, 13.0, 14.0]))
    X, Y, M = cut_windows(x, L=3, K=2, scale=0.5, cuts=np.array([1, 3, 4]))
    # cut 1: history [10], padded with the first value; targets 11, 12
    np.testing.assert_allclose(X[0, :, 0], 0.0)
    np.testing.assert_allclose(Y[0], (x[1:3] - x[0]) / 0.5)
    # cut 3: history 10, 11, 12; targets 13, 14
    np.testing.assert_allclose(X[1, :, 0], (x[0:3] - x[2]) / 0.5)
    np.testing.assert_allclose(Y[1], (x[3:5] - x[2]) / 0.5)
    # cut 4: the second target is past the end: masked
    np.testing.assert_array_equal(M, [[1, 1], [1, 1], [1, 0]])
    assert Y[2, 1] == 0.0
    p = prepare(np.exp(x), 1)
    assert p.log and p.scale == pytest.approx(series_scale(x))


def test_predict_needs_a_fit_and_a_valid_horizon(make_series):
    with pytest.raises(RuntimeError, match="not fitted"):
        RNNForecaster().predict(3)
    m = RNNForecaster(epochs=1).fit(make_series("sine", 80))
    for h in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="positive integer"):
            m.predict(h)
    g = RNNForecaster(epochs=1).fit_many([make_series("sine", 80), make_series("sine", 90, seed=1)])
    with pytest.raises(ValueError, match="predict_many"):
        g.predict(3)


def test_config_is_frozen_json_able_and_validated():
    m = RNNForecaster(cell="gru", hidden_size=16, seed=3, lookbacks=[1.0, 2.0])
    params = m.get_params()
    assert json.loads(json.dumps(params)) == params and params["cell"] == "gru"
    assert RNNForecaster(**params).config == m.config
    with pytest.raises(AttributeError):
        m.config.lr = 1.0
    for bad in (
        {"cell": "lstm"},
        {"val_fraction": 0.7},
        {"lr": -1},
        {"clip_mode": "x"},
        {"transform": "sqrt"},
        {"horizon": -1},
        {"horizon": 10**6},
        {"ensemble": 0},
        {"lookbacks": []},
        {"lookbacks": [0]},
        {"loss": "huber"},
        {"hidden_size": 2.5},
        {"refit": "yes"},
        {"lr": float("nan")},
        {"no_such_knob": 1},
    ):
        with pytest.raises(ValueError):
            RNNForecaster(**bad)
    assert ForecasterConfig().to_dict() == RNNForecaster().get_params()


def test_models_imports_with_numpy_only():
    code = (
        "import sys, tickcast.models; bad = {'pandas', 'torch', 'logging.config', 'sqlalchemy'} & "
        "set(sys.modules); assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_settings_class_loads_without_numpy():
    """The service checks its [model] settings with ForecasterConfig on every start-up, `tickcast
    health` included: that must not cost a NumPy import."""
    code = (
        "import sys; from tickcast.models import ForecasterConfig; ForecasterConfig(cell='gru', lr=0.01); "
        "assert 'numpy' not in sys.modules, 'numpy imported'; "
        "from tickcast.models import RNNForecaster; assert 'numpy' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
