"""models/persist.py, the RNN's bytes, at every check: what a round trip restores (scales, seasons,
members), the container's layout (little-endian, sorted header, no NaN), and the exact error for
each way a blob can be damaged, one at a time."""

from __future__ import annotations

import json
import re
import struct

import numpy as np
import pytest

from tickcast.models import RNNForecaster
from tickcast.models.persist import FORMAT_VERSION, MAGIC, pack, unpack

SMALL = {"hidden_size": 4, "ensemble": 2, "epochs": 2}


def seasonal(n, seed=0):
    t = np.arange(n)
    return (100 + t) * (1 + 0.3 * np.sin(2 * np.pi * t / 12)) + np.random.default_rng(seed).normal(0, 0.5, n)


def line(n, seed=0):
    return 20.0 + 3.0 * np.arange(n) + np.random.default_rng(seed).normal(0, 0.2, n)


@pytest.fixture(scope="module")
def fitted():
    return RNNForecaster(season_length=12, **SMALL).fit_many([seasonal(72), line(60, 1)])


def exactly(message):
    return "^" + re.escape(message) + "$"


def raw_blob(header: bytes, body: bytes = b"") -> bytes:
    return MAGIC + struct.pack("<I", len(header)) + header + body


def test_a_round_trip_restores_every_series_scale_season_and_member(fitted):
    back = RNNForecaster.from_bytes(fitted.to_bytes())
    assert back.transforms_ == fitted.transforms_ == ["log", "linear"]
    assert back.transform_ == "log" and back.season_length_ == 12 == fitted.season_length_
    assert back.members_ == fitted.members_ == [0, 1]
    assert (back.n_obs_, back.n_series_, back.warm_started_) == (fitted.n_obs_, 2, False)
    assert back.backtests_ == fitted.backtests_ and back.histories_ == fitted.histories_
    assert (back.window_, back.horizon_, back.best_epoch_) == (fitted.window_, fitted.horizon_, fitted.best_epoch_)
    for a, b in zip(back.predict_many(20), fitted.predict_many(20)):
        np.testing.assert_array_equal(a, b)
    flat = RNNForecaster(season_length=1, **SMALL).fit(line(50))  # no season, the linear scale
    again = RNNForecaster.from_bytes(flat.to_bytes())
    assert (again.season_length_, again.transform_, again.transforms_) == (1, "linear", ["linear"])
    no_season = RNNForecaster(season_length=12, **SMALL).fit(line(60))  # tested for 12, none found
    assert no_season._preps[0].season.m == 12 and not no_season._preps[0].season.active
    assert RNNForecaster.from_bytes(no_season.to_bytes()).season_length_ == no_season.season_length_ == 1
    warm = RNNForecaster(season_length=12, **SMALL).fit_many([seasonal(73), line(61, 1)], warm_start=fitted)
    assert RNNForecaster.from_bytes(warm.to_bytes()).warm_started_ is True


def test_the_container_is_little_endian_sorted_and_without_nan():
    big = np.arange(6, dtype=">f8").reshape(2, 3)[:, ::2]  # big-endian and not contiguous
    meta, arrays = unpack(pack({"k": [1, 2]}, {"a": big, "n": np.array([3, -4], dtype=">i8")}))
    assert meta == {"k": [1, 2]} and arrays["a"].dtype.str == "<f8" and arrays["n"].dtype.str == "<i8"
    np.testing.assert_array_equal(arrays["a"], [[0.0, 2.0], [3.0, 5.0]])
    np.testing.assert_array_equal(arrays["n"], [3, -4])
    assert pack({"b": 1, "a": 2}, {}) == pack({"a": 2, "b": 1}, {})  # the same model, the same bytes
    blob = pack({"b": 1}, {"z": np.zeros(1), "y": np.ones(1)})
    (hlen,) = struct.unpack("<I", blob[len(MAGIC) : len(MAGIC) + 4])
    header = json.loads(blob[len(MAGIC) + 4 : len(MAGIC) + 4 + hlen])
    assert list(header) == ["arrays", "format_version", "meta"] and list(header["arrays"]) == ["y", "z"]
    with pytest.raises(ValueError):
        pack({"x": float("nan")}, {})  # JSON has no NaN: a header that other readers could not read
    with pytest.raises(TypeError, match=exactly("array 'f' has unsupported dtype float32")):
        pack({}, {"f": np.ones(2, dtype=np.float32)})
    assert unpack(pack({"k": 1}, {})) == ({"k": 1}, {})  # a header that fills the blob
    meta, arrays = unpack(pack({}, {"e": np.zeros((0, 3))}))
    assert arrays["e"].shape == (0, 3)


def test_each_damaged_container_says_what_is_wrong():
    good = json.dumps({"format_version": FORMAT_VERSION, "meta": {}, "arrays": {}}).encode()
    cases = [
        (b"PK\x03\x04" + good, "not a tickcast model blob (bad magic bytes)"),
        (MAGIC + b"\x01\x02\x03", "truncated tickcast model blob"),
        (
            MAGIC + struct.pack("<I", len(good) + 1) + good,
            f"corrupt tickcast model blob: a header of {len(good) + 1} bytes in {len(MAGIC) + 4 + len(good)}",
        ),
        (
            MAGIC + b"\xff\xff\xff\xff" + good,
            f"corrupt tickcast model blob: a header of 4294967295 bytes in {len(MAGIC) + 4 + len(good)}",
        ),
        (raw_blob(b"[1, 2]"), "corrupt tickcast model header: not a header of this format"),
        (raw_blob(b'{"meta": {}, "arrays": []}'), "corrupt tickcast model header: not a header of this format"),
        (raw_blob(b'{"arrays": {}}'), "corrupt tickcast model header: not a header of this format"),
        (
            raw_blob(b'{"format_version": 1, "meta": {}, "arrays": {}}'),
            f"model blob has format_version 1; this code reads {FORMAT_VERSION}",
        ),
        (
            raw_blob(b'{"meta": {}, "arrays": {}}'),
            f"model blob has format_version None; this code reads {FORMAT_VERSION}",
        ),
    ]
    for blob, message in cases:
        with pytest.raises(ValueError, match=exactly(message)):
            unpack(blob)
    for blob in (MAGIC + struct.pack("<I", 0), raw_blob(b"{not json"), raw_blob(b"\xff\xfe")):
        with pytest.raises(ValueError, match="^corrupt tickcast model header: "):
            unpack(blob)


@pytest.mark.parametrize(
    "spec",
    [
        {"dtype": "<f4", "shape": [2], "offset": 0, "nbytes": 16},
        {"dtype": "<f8", "shape": [2], "offset": -8, "nbytes": 16},
        {"dtype": "<f8", "shape": [2], "offset": 8, "nbytes": 16},  # past the end
        {"dtype": "<f8", "shape": [3], "offset": 0, "nbytes": 16},
        {"dtype": "<f8", "shape": [-2, -1], "offset": 0, "nbytes": 16},
        {"dtype": "<f8", "shape": "two", "offset": 0, "nbytes": 16},
        {"dtype": "<f8", "shape": [2], "nbytes": 16},
    ],
)
def test_each_damaged_array_entry_is_named(spec):
    header = json.dumps({"format_version": FORMAT_VERSION, "meta": {}, "arrays": {"w": spec}}).encode()
    with pytest.raises(ValueError, match=exactly("corrupt tickcast model blob (array 'w')")):
        unpack(raw_blob(header, np.ones(2).tobytes()))


def rebuilt(fitted, edit) -> bytes:
    meta, arrays = unpack(fitted.to_bytes())
    edit(meta, arrays)
    return pack(meta, arrays)


DISAGREE = "corrupt tickcast model blob: its arrays disagree with its header"
NOT_FINITE = "corrupt tickcast model blob: non-finite weights or statistics"


def _set(name, fn):
    def edit(meta, arrays):
        arrays[name] = fn(arrays[name])

    edit.__name__ = name
    return edit


@pytest.mark.parametrize(
    "edit, message",
    [
        (_set("spreads", lambda a: np.r_[a, 1.0]), DISAGREE),
        (_set("residual_quantiles", lambda a: a[:, :, None]), DISAGREE),  # 3-D, K rows still
        (_set("residual_quantiles", lambda a: a[1:]), DISAGREE),
        (_set("tails", lambda a: np.r_[a, 1.0]), DISAGREE),
        (_set("tail_lengths", lambda a: np.r_[a, 0]), DISAGREE),  # a series more, the same points
        (_set("weights", lambda a: a[0]), DISAGREE),
        (_set("tails", lambda a: np.where(np.arange(a.size) == 3, np.inf, a)), NOT_FINITE),
        (_set("spreads", lambda a: np.r_[a[:-1], np.nan]), NOT_FINITE),
        (_set("residual_quantiles", lambda a: np.where(a == a.flat[0], np.nan, a)), NOT_FINITE),
    ],
    ids=lambda x: getattr(x, "__name__", str(x)[:20]),
)
def test_each_disagreement_of_arrays_and_header_is_refused(fitted, edit, message):
    with pytest.raises(ValueError, match=exactly(message)):
        RNNForecaster.from_bytes(rebuilt(fitted, edit))


def test_the_steps_per_pass_must_lie_within_the_horizon(fitted):
    K = fitted.horizon_
    for steps, ok in ((0, False), (1, True), (K, True), (K + 1, False)):
        blob = rebuilt(fitted, lambda meta, arrays, steps=steps: meta.update(steps_per_pass=steps))
        if ok:
            assert RNNForecaster.from_bytes(blob)._steps_per_pass == steps
        else:
            with pytest.raises(
                ValueError, match=exactly("corrupt tickcast model blob: steps_per_pass outside 1..horizon")
            ):
                RNNForecaster.from_bytes(blob)
