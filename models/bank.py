"""Windows cut on the fly: series side by side in one buffer, a window a few index operations.

Training across hundreds of long series used to materialise every window of every series
(``windows.assemble``: X (N, L, 1) for N ~ one window per point); here a window set is the cut
ranges of its series, and a mini-batch of windows is gathered from the series when it is drawn.
Memory is the series themselves plus what a batch needs.

A window set enumerates its windows series by series, cuts ascending: the order of
``windows.assemble``, so a seeded permutation draws the same mini-batches as it did.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeGuard

import numpy as np

from .windows import Prepared

# Windows per chunk when a whole window set is read (targets' statistics).
CHUNK = 4096


class Bank:
    """Prepared series in one buffer, each preceded by ``before`` copies of its first value (the
    padding of windows that reach before the first point) and followed by ``after`` zeros (targets
    past the end, always masked). ``offset[i]`` is the index of series i's first point."""

    def __init__(self, preps: Sequence[Prepared], before: int, after: int):
        self.n = np.array([p.n for p in preps], dtype=np.int64)  # (S,) lengths
        self.scale = np.array([p.scale for p in preps])  # (S,) network units
        self.before, self.after = int(before), int(after)
        seg = self.before + self.n + self.after
        self.offset = np.concatenate([[0], np.cumsum(seg)[:-1]]) + self.before  # (S,)
        self.buf = np.zeros(int(seg.sum()))
        for o, p in zip(self.offset, preps):
            self.buf[o - self.before : o] = p.x[0]
            self.buf[o : o + p.n] = p.x

    def __len__(self) -> int:
        return self.n.size

    def _rows(self, width: int) -> np.ndarray:
        """(len(buf) - width + 1, width): row i is buf[i : i + width] (a view, no copy; kept)."""
        views = self.__dict__.setdefault("_views", {})
        if width not in views:
            views[width] = np.lib.stride_tricks.sliding_window_view(self.buf, width)
        return views[width]

    def cut(self, s, cut, end, X, Y, M) -> None:
        """Windows of series ``s`` at cut points ``cut`` (any shape ...), targets seen before ``end``:
        inputs into X (..., T) (the last T points before the cut; None: not needed), targets into
        Y (..., K) (0 where masked) and the mask into M (..., K), normalised to x[t-1] and the
        series' scale. Windows are whole rows of a sliding view of the buffer, gathered at once."""
        pos = self.offset[s] + cut  # (...) index of x[t]
        last = self.buf[pos - 1][..., None]  # (..., 1) x[t-1]
        scale = self.scale[s][..., None]  # (..., 1)
        # (in float64, then stored in X's and Y's precision)
        if X is not None:
            T = X.shape[-1]
            x = self._rows(T)[pos - T]  # (..., T) x[t-T:t], a copy
            x -= last
            np.divide(x, scale, out=X, casting="same_kind")
        K = Y.shape[-1]
        y = self._rows(K)[pos]  # (..., K) x[t:t+K]
        y -= last
        np.divide(y, scale, out=Y, casting="same_kind")
        mask = cut[..., None] + np.arange(K) < end[..., None]  # (..., K)
        Y[~mask] = 0.0
        M[...] = mask


class Windows:
    """Windows of length L at cut points ``lo[i] <= t < hi[i]`` of the bank's series ``series[i]``,
    targets seen before ``end[i]``: input ``(x[t-L:t] - x[t-1]) / scale``, targets
    ``(x[t:t+K] - x[t-1]) / scale`` (see :func:`models.windows.cut_windows`)."""

    def __init__(self, bank: Bank, series, lo, hi, end, L: int, K: int):
        self.bank, self.L, self.K, self.D = bank, int(L), int(K), 1
        if self.L > bank.before or self.K > bank.after:
            raise ValueError(f"windows of L={L}, K={K} do not fit the bank (L <= {bank.before}, K <= {bank.after})")
        self.series = np.asarray(series, dtype=np.int64)
        self.lo = np.maximum(np.asarray(lo, dtype=np.int64), 1)
        self.end = np.asarray(end, dtype=np.int64)
        counts = np.maximum(np.asarray(hi, dtype=np.int64) - self.lo, 0)
        self.first = np.concatenate([[0], np.cumsum(counts)])  # (S + 1,) window index where each begins

    def __len__(self) -> int:
        return int(self.first[-1])

    def with_length(self, L: int) -> Windows:
        """The same windows, L points long."""
        out = Windows.__new__(Windows)
        out.__dict__.update(self.__dict__)
        out.L = int(L)
        if out.L > self.bank.before:
            raise ValueError(f"windows of L={L} do not fit the bank (L <= {self.bank.before})")
        return out

    def locate(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Window indices (b,) -> bank series (b,), cut point t (b,) and target end (b,)."""
        k = np.searchsorted(self.first, ids, side="right") - 1
        return self.series[k], self.lo[k] + ids - self.first[k], self.end[k]

    def fill(self, ids: np.ndarray, X: np.ndarray, Y: np.ndarray, M: np.ndarray) -> None:
        """Write windows ``ids`` (b,) into X (b, T, 1) (right-aligned: X[:, T-L:]), their targets
        into Y (b, K) (0 where masked) and the mask into M (b, K)."""
        s, cut, end = self.locate(ids)
        self.bank.cut(s, cut, end, X[:, X.shape[1] - self.L :, 0], Y, M)

    def chunks(self, size: int = CHUNK) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every window's targets in chunks: (Y (c, K), M (c, K))."""
        for start in range(0, len(self), size):
            ids = np.arange(start, min(len(self), start + size))
            Y, M = np.empty((ids.size, self.K)), np.empty((ids.size, self.K))
            s, cut, end = self.locate(ids)
            self.bank.cut(s, cut, end, None, Y, M)
            yield Y, M

    def owners(self) -> tuple[np.ndarray, np.ndarray]:
        """(bank series (N,), cut (N,)) of every window, in order."""
        s, cut, _ = self.locate(np.arange(len(self)))
        return s, cut


class Gather:
    """Mini-batches of several window sets over one bank in one go: ``fill(rows, ids, counts, X,
    Y, M)`` writes window ``ids[i, :counts[i]]`` of set ``rows[i]`` into row i (the rest masked),
    the same values as each set's :meth:`Windows.fill`, with a few NumPy calls for all rows."""

    def __init__(self, sources: Sequence[Windows]):
        self.bank = sources[0].bank
        sizes = np.array([len(w) for w in sources])
        self.base = np.concatenate([[0], np.cumsum(sizes)[:-1]])  # (n,) first global id of each set
        self.first = np.concatenate([w.first[:-1] + b for w, b in zip(sources, self.base)])
        self.series = np.concatenate([w.series for w in sources])
        self.lo = np.concatenate([w.lo for w in sources])
        self.end = np.concatenate([w.end for w in sources])
        # A series or set without windows starts where the next one does: the lookup's
        # searchsorted(side="right") takes the last of equal starts, never the empty one.

    @staticmethod
    def usable(sources: Sequence) -> TypeGuard[Sequence[Windows]]:
        """Are these window sets over one bank (so one Gather serves them)?"""
        return bool(sources) and all(isinstance(w, Windows) and w.bank is sources[0].bank for w in sources)

    def fill(self, rows, ids, counts, X: np.ndarray, Y: np.ndarray, M: np.ndarray) -> None:
        """ids (a, b) local window indices (any value past counts), X (a, b, T, 1), Y, M (a, b, K)."""
        a, b = ids.shape
        real = np.arange(b) < np.asarray(counts)[:, None]  # (a, b)
        g = np.where(real, ids, 0) + self.base[rows][:, None]  # (a, b) global ids
        k = np.searchsorted(self.first, g, side="right") - 1
        cut = self.lo[k] + g - self.first[k]
        self.bank.cut(self.series[k], cut, self.end[k], X[..., 0], Y, M)
        M *= real[..., None]
