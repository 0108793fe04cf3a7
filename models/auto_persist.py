"""An AutoForecaster as bytes: MAGIC, the length of its core as a little-endian uint64, the core
(``models.persist``: settings, weights, backtests, residual quantiles, the series), then every
member's own blob back to back. No pickle.

The core's header says ``warm_started``; blobs written before warm starts existed (without it)
load as cold fits. Residual quantiles are each series' own (S, K, grid); a blob written when they
were pooled over the series (K, grid) loads with that one for every series.
"""

from __future__ import annotations

import struct

import numpy as np

from . import persist
from .conformal import Conformal

MAGIC = b"tickcast-auto\n"


def dump(a) -> bytes:
    """The bytes of a fitted AutoForecaster ``a``."""
    blobs = [a.members_[nm].to_bytes() for nm in a._names]
    meta = {
        "params": a.get_params(),
        "names": a._names,
        "blob_lengths": [len(b) for b in blobs],
        "chosen": a.chosen_,
        "backtests": a.backtests_,
        "periods": a._ms,
        "horizon": a.horizon_,
        "across": a.across_,
        "splits": a._splits,
        "rnn_index": a._rnn_index,
        "warm_started": a.warm_started_,
        "rnn_record": a._rnn_record,
    }
    arrays = {
        "series": np.concatenate(a._ys),
        "lengths": np.array([y.size for y in a._ys], dtype=np.int64),
        "weights": a._W,
        "available": a._avail.astype(np.int64),
        "residual_quantiles": np.stack([c.Q for c in a._conformal]),  # (S, K, grid): each series' own
        "residual_counts": np.stack([c.counts for c in a._conformal]),
    }
    core = persist.pack(meta, arrays)
    return b"".join([MAGIC, struct.pack("<Q", len(core)), core, *blobs])


def load(cls, blob: bytes, kinds: dict):
    """A ``cls`` (AutoForecaster) from its bytes; ``kinds``: member name -> its class."""
    blob = bytes(blob)
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 8:
        raise ValueError("not a tickcast AutoForecaster blob (bad magic bytes)")
    start = len(MAGIC) + 8
    (size,) = struct.unpack("<Q", blob[len(MAGIC) : start])
    if start + size > len(blob):
        raise ValueError("truncated tickcast AutoForecaster blob")
    meta, arrays = persist.unpack(blob[start : start + size])
    try:
        params: dict = {k: (tuple(v) if isinstance(v, list) else v) for k, v in meta["params"].items()}
        a = cls(**params)
        members, pos = {}, start + size
        for name, length in zip(meta["names"], meta["blob_lengths"]):
            part = blob[pos : pos + length]
            if len(part) != length:
                raise ValueError("truncated tickcast AutoForecaster blob")
            members[name] = kinds[name].from_bytes(part)
            pos += length
        lengths = arrays["lengths"]
        a._ys = list(np.split(arrays["series"], np.cumsum(lengths)[:-1]))
        a._names, a.members_ = list(meta["names"]), members
        a._W, a._avail = arrays["weights"], arrays["available"].astype(bool)
        if a._W.shape != (len(a._ys), len(a._names)) or a._avail.shape != a._W.shape or set(members) != set(a._names):
            raise ValueError("corrupt tickcast AutoForecaster blob: its arrays disagree with its header")
        a._ms, a.horizon_, a.across_ = [int(v) for v in meta["periods"]], int(meta["horizon"]), bool(meta["across"])
        a._splits, a._rnn_index = [int(s) for s in meta["splits"]], [int(i) for i in meta["rnn_index"]]
        a.chosen_, a.backtests_ = meta["chosen"], meta["backtests"]
        a.warm_started_ = bool(meta.get("warm_started", False))
        a._rnn_record = meta.get("rnn_record")  # absent before final fits continued validation fits
        Q, counts = arrays["residual_quantiles"], arrays["residual_counts"]
        if Q.ndim == 2:  # written before each series had its own: one pooled for all
            a._conformal = [Conformal(Q, counts)] * len(a._ys)
        elif Q.shape[0] == counts.shape[0] == len(a._ys):
            a._conformal = [Conformal(q, c) for q, c in zip(Q, counts)]
        else:
            raise ValueError("corrupt tickcast AutoForecaster blob: its residual quantiles disagree with its series")
    except (KeyError, TypeError, IndexError) as exc:
        raise ValueError(f"corrupt tickcast AutoForecaster blob: {type(exc).__name__}: {exc}") from None
    a._cache = {}
    return a


__all__ = ["dump", "load", "MAGIC"]
