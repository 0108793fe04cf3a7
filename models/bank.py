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
        bank, L, K = self.bank, self.L, self.K
        pos = bank.offset[s] + cut  # (b,) index of x[t]
        last = bank.buf[pos - 1][:, None]  # (b, 1) x[t-1]
        scale = bank.scale[s][:, None]  # (b, 1)
        x = bank.buf[pos[:, None] + np.arange(-L, 0)]  # (b, L) = x[t-L:t]
        X[:, X.shape[1] - L :, 0] = (x - last) / scale
        y = bank.buf[pos[:, None] + np.arange(K)]  # (b, K) = x[t:t+K]
        mask = cut[:, None] + np.arange(K) < end[:, None]  # (b, K)
        Y[...] = np.where(mask, (y - last) / scale, 0.0)
        M[...] = mask

    def chunks(self, size: int = CHUNK) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every window's targets in chunks: (Y (c, K), M (c, K))."""
        for start in range(0, len(self), size):
            ids = np.arange(start, min(len(self), start + size))
            s, cut, end = self.locate(ids)
            pos = self.bank.offset[s] + cut
            last = self.bank.buf[pos - 1][:, None]
            y = self.bank.buf[pos[:, None] + np.arange(self.K)]
            mask = cut[:, None] + np.arange(self.K) < end[:, None]
            yield np.where(mask, (y - last) / self.bank.scale[s][:, None], 0.0), mask.astype(np.float64)

    def owners(self) -> tuple[np.ndarray, np.ndarray]:
        """(bank series (N,), cut (N,)) of every window, in order."""
        s, cut, _ = self.locate(np.arange(len(self)))
        return s, cut
