"""Forward passes over whole window sets, many networks at once: the losses early stopping
watches, and the outputs that validation forecasts and scores are made of.

Every source (a network's windows) goes through its network chunk by chunk, all networks in
one stack per chunk; a chunk has as many windows per network as fit EVAL_BUDGET bytes of buffers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

import numpy as np

from .bank import Gather
from .params import stack_views

# Bytes the buffers of one evaluation pass may take: sets how many windows per network a chunk has.
EVAL_BUDGET = 24 << 20


class Source(Protocol):
    """A network's windows: ``len``, their length ``L``, inputs per step ``D``, targets ``K``, and
    ``fill(ids, X (b, T, D), Y (b, K), M (b, K))`` writing windows ``ids`` right-aligned into X."""

    L: int
    D: int
    K: int

    def __len__(self) -> int: ...

    def fill(self, ids: np.ndarray, X: np.ndarray, Y: np.ndarray, M: np.ndarray) -> None: ...


def window_losses(out: np.ndarray, Y: np.ndarray, M: np.ndarray, kind: str) -> np.ndarray:
    """Summed loss per window (N, B) of out (N, B, K): a validation loss is their sum over sum(M)."""
    d = out - Y
    return np.sum((np.abs(d) if kind == "mae" else d * d) * M, axis=2)


def chunk_size(n: int, T: int, H: int, gates: int, most: int) -> int:
    """Windows per network in one evaluation pass: the cell's buffers within EVAL_BUDGET."""
    per_window = n * (T + 1) * H * (gates + 1) * 8 * 4
    return int(max(1, min(most, max(32, EVAL_BUDGET // max(per_window, 1)))))


def forward_chunks(
    stack, W: np.ndarray, sources: Sequence[Source], dtype=np.float64, most: int = 512
) -> Iterator[tuple[np.ndarray, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Every window of every source through its network (weights W (N, P), any order of lengths),
    chunk by chunk: yields ``(rows, start, counts, out, Y, M)`` with out, Y, M (a, C, K) float64 for
    the sources ``rows`` (a,) that reach window ``start``; row i has ``counts[i]`` real windows."""
    sizes = np.array([len(s) for s in sources])
    if sizes.size == 0 or sizes.max() == 0:
        return
    order = np.argsort(-np.array([s.L for s in sources]), kind="stable")  # longest window first
    sources, sizes = [sources[i] for i in order], sizes[order]
    lengths = np.array([s.L for s in sources])
    T, K, D = int(lengths.max()), sources[0].K, sources[0].D
    C = chunk_size(len(sources), T, stack.H, getattr(stack, "gates", 1), min(most, int(sizes.max())))
    X = np.zeros((len(sources), C, T, D), dtype=dtype)
    Y = np.zeros((len(sources), C, K))
    M = np.zeros((len(sources), C, K))
    W = W[order]
    p = stack_views(W, stack.shapes)
    # A read-out whose weights are all zero (every member before its first update, and after
    # training that validation did not keep) forecasts its bias whatever the window: exactly
    # h_T @ 0 + by. Such networks skip the recurrence.
    constant = ~np.any(p["Why"].reshape(len(sources), -1) != 0, axis=1)
    cast = W.astype(dtype)
    gather = Gather(sources) if Gather.usable(sources) else None
    out = np.zeros((len(sources), C, K))
    for start in range(0, int(sizes.max()), C):
        rows = np.flatnonzero(sizes > start)
        counts = np.minimum(sizes[rows] - start, C)
        a = rows.size
        if gather is not None:
            ids = np.broadcast_to(np.arange(start, start + C), (a, C))
            gather.fill(rows, ids, counts, X[:a], Y[:a], M[:a])
        else:
            for i, (r, b) in enumerate(zip(rows, counts)):
                sources[r].fill(np.arange(start, start + b), X[i, :b], Y[i, :b], M[i, :b])
                M[i, b:] = 0.0
        run = ~constant[rows]
        if not run.all():
            out[:a][~run] = p["by"][rows[~run]][:, None, :]
        if run.any():
            live = rows[run]
            w = cast if live.size == len(sources) else cast[live]
            o, _ = stack.forward(stack_views(w, stack.shapes), X[:a][run], lengths[live])
            out[:a][run] = o
        yield order[rows], start, counts, out[:a], Y[:a], M[:a]


def evaluate(stack, W: np.ndarray, sources: Sequence[Source], kind: str, dtype=np.float64):
    """Per source: (loss over all its windows or None without targets, per-window losses (N_i,))."""
    wl = [np.zeros(len(s)) for s in sources]
    weight = np.zeros(len(sources))
    for rows, start, counts, out, Y, M in forward_chunks(stack, W, sources, dtype):
        per = window_losses(out, Y, M, kind)
        for i, (r, b) in enumerate(zip(rows, counts)):
            wl[r][start : start + b] = per[i, :b]
        weight[rows] += M.sum(axis=(1, 2))
    losses = [float(w.sum() / total) if total > 0 else None for w, total in zip(wl, weight)]
    return losses, wl, weight
