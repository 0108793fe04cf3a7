"""A fitted model as bytes: a JSON header plus raw little-endian arrays, no pickle.

Layout: MAGIC, the header length as a little-endian uint32, the UTF-8 JSON header, then the
arrays back to back. The header holds ``format_version``, the caller's JSON-able metadata and,
for every array, its dtype, shape and byte offset. Arrays are stored bit for bit, so a round
trip reproduces forecasts exactly.
"""

from __future__ import annotations

import json
import struct

import numpy as np

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
        raise ValueError("not a tickcast RNN model blob (bad magic bytes)")
    start = len(MAGIC) + 4
    if len(blob) < start:
        raise ValueError("truncated tickcast RNN model blob")
    (hlen,) = struct.unpack("<I", blob[len(MAGIC) : start])
    if start + hlen > len(blob):
        raise ValueError(f"corrupt tickcast RNN model blob: a header of {hlen} bytes in {len(blob)}")
    try:
        header = json.loads(blob[start : start + hlen].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"corrupt tickcast RNN model header: {exc}") from None
    if not isinstance(header, dict) or not isinstance(header.get("arrays"), dict) or "meta" not in header:
        raise ValueError("corrupt tickcast RNN model header: not a header of this format")
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
            raise ValueError(f"corrupt tickcast RNN model blob (array {name!r})")
        raw = data[spec["offset"] : spec["offset"] + spec["nbytes"]]
        arrays[name] = np.frombuffer(raw, dtype=spec["dtype"]).reshape(spec["shape"]).copy()
    return header["meta"], arrays
