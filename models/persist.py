"""A fitted model as bytes: a JSON header plus raw little-endian arrays, no pickle.

``pack``/``unpack`` are the container; ``dump``/``restore`` what an RNNForecaster puts in it.

Layout: MAGIC, the header length as a little-endian uint32, the UTF-8 JSON header, then the
arrays back to back. The header holds ``format_version``, the caller's JSON-able metadata and,
for every array, its dtype, shape and byte offset. Arrays are stored bit for bit, so a round
trip reproduces forecasts exactly.
"""

from __future__ import annotations

import json
import struct

import numpy as np

from .network import Member
from .seasonality import Seasonality
from .windows import TailPrepared

MAGIC = b"tickcast-rnn\n"
FORMAT_VERSION = 2
_DTYPES = {"<f8", "<i8"}


def pack(meta: dict, arrays: dict[str, np.ndarray]) -> bytes:
    """Serialise JSON-able ``meta`` and float64/int64 ``arrays``."""
    index, chunks, offset = {}, [], 0
    for name, a in arrays.items():
        a = np.ascontiguousarray(a, dtype=np.dtype(a.dtype).newbyteorder("<"))
        dtype = a.dtype.str
        if dtype not in _DTYPES:
            raise TypeError(f"array {name!r} has unsupported dtype {a.dtype}")
        raw = a.tobytes()
        index[name] = {"dtype": dtype, "shape": list(a.shape), "offset": offset, "nbytes": len(raw)}
        chunks.append(raw)
        offset += len(raw)
    header = json.dumps(
        {"format_version": FORMAT_VERSION, "meta": meta, "arrays": index}, allow_nan=False, sort_keys=True
    ).encode("utf-8")
    return b"".join([MAGIC, struct.pack("<I", len(header)), header, *chunks])


def unpack(blob: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """Inverse of :func:`pack`; ValueError for anything that is not a blob of this format."""
    blob = bytes(blob)
    if not blob.startswith(MAGIC):
        raise ValueError("not a tickcast model blob (bad magic bytes)")
    start = len(MAGIC) + 4
    if len(blob) < start:
        raise ValueError("truncated tickcast model blob")
    (hlen,) = struct.unpack("<I", blob[len(MAGIC) : start])
    if start + hlen > len(blob):
        raise ValueError(f"corrupt tickcast model blob: a header of {hlen} bytes in {len(blob)}")
    try:
        header = json.loads(blob[start : start + hlen].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"corrupt tickcast model header: {exc}") from None
    if not isinstance(header, dict) or not isinstance(header.get("arrays"), dict) or "meta" not in header:
        raise ValueError("corrupt tickcast model header: not a header of this format")
    version = header.get("format_version")
    if version != FORMAT_VERSION:
        raise ValueError(f"model blob has format_version {version}; this code reads {FORMAT_VERSION}")
    data = memoryview(blob)[start + hlen :]
    arrays = {}
    for name, spec in header["arrays"].items():
        try:
            count = int(np.prod(spec["shape"], dtype=np.int64))
            ok = (
                spec["dtype"] in _DTYPES
                and 0 <= spec["offset"]
                and spec["offset"] + spec["nbytes"] <= len(data)
                and count * 8 == spec["nbytes"]
                and all(d >= 0 for d in spec["shape"])
            )
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"corrupt tickcast model blob (array {name!r})")
        raw = data[spec["offset"] : spec["offset"] + spec["nbytes"]]
        arrays[name] = np.frombuffer(raw, dtype=spec["dtype"]).reshape(spec["shape"]).copy()
    return header["meta"], arrays


def dump(model) -> bytes:
    """A fitted RNNForecaster as bytes: config, K, members (weights stacked, window lengths, seeds,
    epochs, histories), every series' seasonal indices, scale, length and tail on the model's scale
    (enough for the longest window), the local size of changes at their ends, backtests and the
    interval residual quantiles."""
    tail = max(m.L for m in model._members)
    tails = [p.x[-tail:] for p in model._preps]
    meta = {
        "config": model.config.to_dict(),
        "horizon": model.horizon_,
        "out_max": model._out_max,
        "steps_per_pass": model._steps_per_pass,
        "members": [m.meta() for m in model._members],
        "histories": model.histories_,
        "series": [{**p.meta(), "n": p.n} for p in model._preps],
        "backtests": model.backtests_,
        "warm_started": model.warm_started_,
        "n_obs": model.n_obs_,
    }
    arrays = {
        "weights": np.stack([m.flat for m in model._members]),
        "tails": np.concatenate(tails),
        "tail_lengths": np.array([t.size for t in tails]),
        "spreads": model._spreads,
        "residual_quantiles": model._Q,
        "residual_counts": model._counts,
    }
    return pack(meta, arrays)


def restore(m, meta: dict, arrays: dict):
    """Fill the new RNNForecaster ``m`` (its config from meta["config"]) from an unpacked blob;
    ValueError when the arrays disagree with the header or are not finite."""
    K = int(meta["horizon"])
    W, lengths, tails = arrays["weights"], arrays["tail_lengths"], arrays["tails"]
    series = meta["series"]
    if (
        W.ndim != 2
        or W.shape[0] != len(meta["members"])
        or len(series) != lengths.size
        or int(lengths.sum()) != tails.size
        or arrays["spreads"].shape != (len(series),)
        or arrays["residual_quantiles"].ndim != 2
        or arrays["residual_quantiles"].shape[0] != K
    ):
        raise ValueError("corrupt tickcast model blob: its arrays disagree with its header")
    if not all(np.all(np.isfinite(a)) for a in (W, tails, arrays["spreads"], arrays["residual_quantiles"])):
        raise ValueError("corrupt tickcast model blob: non-finite weights or statistics")
    m._members = [
        Member(
            m.config.cell,
            m.config.hidden_size,
            K,
            int(d["L"]),
            int(d["seed"]),
            flat=w,
            best_epoch=int(d["best_epoch"]),
            n_epochs=int(d["n_epochs"]),
        )
        for d, w in zip(meta["members"], W)
    ]
    for member, hist in zip(m._members, meta["histories"]):
        member.history = hist
    m.members_ = list(range(len(m._members)))
    m._preps = []
    for s, x in zip(series, np.split(tails, np.cumsum(lengths)[:-1])):
        season = Seasonality.from_dict(s["season"])
        # Only the tail of x is kept; positions still count from the series' first point.
        season = Seasonality(season.indices, int(s["n"]), season.multiplicative)
        m._preps.append(TailPrepared(x, season, bool(s["log"]), float(s["scale"]), int(s["n"])))
    m.horizon_, m._out_max = K, float(meta["out_max"])
    m._steps_per_pass = int(meta["steps_per_pass"])
    if not 1 <= m._steps_per_pass <= K:
        raise ValueError("corrupt tickcast model blob: steps_per_pass outside 1..horizon")
    m._spreads, m._Q, m._counts = arrays["spreads"], arrays["residual_quantiles"], arrays["residual_counts"]
    m.backtests_, m.histories_ = meta["backtests"], meta["histories"]
    first = m._members[0]
    m.history_, m.best_epoch_, m.n_epochs_, m.window_ = first.history, first.best_epoch, first.n_epochs, first.L
    m.backtest_ = m.backtests_[0]
    p0 = m._preps[0]
    m.transforms_ = ["log" if p.log else "linear" for p in m._preps]
    m.transform_ = m.transforms_[0]
    m.season_length_ = p0.season.m if p0.season.active else 1
    m.n_obs_, m.n_series_, m.warm_started_ = meta["n_obs"], len(m._preps), meta["warm_started"]
    return m
