"""An AutoForecaster's bytes refused, each kind of damage with its own line (the service stores the
line as the fit's note and fits afresh: tests/reliability/test_model_faults.py), and a loaded model
that continues as the one that wrote it (its settings, its warm start)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from tickcast.models import AutoForecaster, persist
from tickcast.models.auto_persist import MAGIC

FAST_RNN = {"ensemble": 2, "epochs": 3, "hidden_size": 8}


def series(n, seed, m=12):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 50 + 0.2 * t + 4 * np.sin(2 * np.pi * t / m) + rng.normal(0, 1.0, n)


@pytest.fixture(scope="module")
def fitted():
    ys = [series(60, s) for s in range(3)]
    return ys, AutoForecaster(season_length=12, rnn=FAST_RNN, members=("rnn", "ets", "theta")).fit_many(ys)


def parts(blob: bytes) -> tuple[dict, dict, bytes]:
    start = len(MAGIC) + 8
    (size,) = struct.unpack("<Q", blob[len(MAGIC) : start])
    meta, arrays = persist.unpack(blob[start : start + size])
    return meta, arrays, blob[start + size :]


def joined(meta: dict, arrays: dict, members: bytes) -> bytes:
    core = persist.pack(meta, arrays)
    return MAGIC + struct.pack("<Q", len(core)) + core + members


def refusal(blob: bytes) -> str:
    with pytest.raises(ValueError) as info:
        AutoForecaster.from_bytes(blob)
    return str(info.value)


def test_what_is_not_an_autoforecaster_blob_is_refused_as_such(fitted):
    _, a = fitted
    blob = a.to_bytes()
    bad_magic = "not a tickcast AutoForecaster blob (bad magic bytes)"
    assert refusal(b"tickcast-rnn\n" + blob[len(MAGIC) :]) == bad_magic  # another blob, long enough
    assert refusal(MAGIC + bytes(7)) == bad_magic  # too short for the length of its core
    assert refusal(MAGIC) == bad_magic
    # a length and nothing after it: an empty core, refused by the core's own reader
    assert refusal(MAGIC + struct.pack("<Q", 0)) == "not a tickcast model blob (bad magic bytes)"


def test_a_blob_cut_anywhere_is_truncated(fitted):
    _, a = fitted
    blob = a.to_bytes()
    start = len(MAGIC) + 8
    (size,) = struct.unpack("<Q", blob[len(MAGIC) : start])
    for cut in (start + 1, start + size // 2, start + size - 1):  # within the core
        assert refusal(blob[:cut]) == "truncated tickcast AutoForecaster blob"
    for cut in (start + size, start + size + 10, len(blob) - 1):  # within the members' blobs
        assert refusal(blob[:cut]) == "truncated tickcast AutoForecaster blob"


def test_arrays_that_disagree_with_the_header_are_corrupt(fitted):
    _, a = fitted
    disagree = "corrupt tickcast AutoForecaster blob: its arrays disagree with its header"
    meta, arrays, members = parts(a.to_bytes())
    one_short = {**arrays, "available": arrays["available"][:, :-1]}  # the weights right, the mask not
    assert refusal(joined(meta, one_short, members)) == disagree
    both_short = {**arrays, "weights": arrays["weights"][:, :-1], "available": arrays["available"][:, :-1]}
    assert refusal(joined(meta, both_short, members)) == disagree  # alike, and both wrong
    fewer = {**arrays, "residual_quantiles": arrays["residual_quantiles"][:-1]}
    assert refusal(joined(meta, fewer, members)) == (
        "corrupt tickcast AutoForecaster blob: its residual quantiles disagree with its series"
    )
    no_horizon = {k: v for k, v in meta.items() if k != "horizon"}
    assert refusal(joined(no_horizon, arrays, members)) == "corrupt tickcast AutoForecaster blob: KeyError: 'horizon'"


def test_a_loaded_model_has_the_settings_it_was_fitted_with_and_warm_starts_as_it_would(fitted):
    ys, a = fitted
    b = AutoForecaster.from_bytes(a.to_bytes())
    assert b.get_params() == a.get_params()  # members a tuple again, not a list
    assert b.to_bytes() == a.to_bytes()
    grown = [np.append(y, y[-1] + 0.5) for y in ys]
    x = AutoForecaster(**a.get_params()).fit_many(grown, warm_start=a, epochs=1)
    y = AutoForecaster(**a.get_params()).fit_many(grown, warm_start=b, epochs=1)
    for f, g in zip(x.predict_many(12), y.predict_many(12)):
        np.testing.assert_array_equal(f, g)
    assert x.weights_ == y.weights_ and x.chosen_ == y.chosen_
