"""What training is made of: its settings, windows held in arrays, the batch size by default and
the test of a validation gain. The loop, for many networks at once, is :mod:`models.engine`; the
masked loss and the forward passes are :mod:`models.passes`.

Shapes: X (N, T, D) windows, Y (N, K) targets, M (N, K) target weights (0 masks a target out:
past the end of a series or inside the validation part).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TrainSettings:
    epochs: int
    batch_size: int
    lr: float
    optimizer: str
    clip: float | None
    clip_mode: str
    patience: int
    min_delta: float
    max_backoffs: int
    loss: str = "mae"
    significance: float = 0.0


@dataclass
class Data:
    """Windows and their targets; ``M`` weights each target (0: not seen)."""

    X: np.ndarray
    Y: np.ndarray
    M: np.ndarray

    def __len__(self) -> int:
        return self.X.shape[0]

    @property
    def L(self) -> int:
        return self.X.shape[1]

    @property
    def D(self) -> int:
        return self.X.shape[2]

    @property
    def K(self) -> int:
        return self.Y.shape[1]

    def fill(self, ids: np.ndarray, X: np.ndarray, Y: np.ndarray, M: np.ndarray) -> None:
        """Windows ``ids`` into X (b, T, D) right-aligned (X[:, T-L:]), Y (b, K), M (b, K)."""
        X[:, X.shape[1] - self.L :] = self.X[ids]
        Y[...] = self.Y[ids]
        M[...] = self.M[ids]


def auto_batch_size(n_windows: int) -> int:
    """About 32 steps per epoch, in [32, 256] windows per step (all of them when fewer)."""
    return int(min(max(n_windows, 1), max(32, min(256, 2 ** round(math.log2(max(n_windows / 32, 1)))))))


def significant(new: np.ndarray, old: np.ndarray, weight: float, z: float, min_delta: float, block: int) -> bool:
    """Is the loss with per-window losses ``new`` (N,) better than with ``old`` by at least
    ``min_delta`` (relative) and by ``z`` standard errors of the paired difference?

    The second test keeps early stopping from chasing noise: on a series close to a random walk
    every "improvement" is one, and a tiny validation part is all noise. Neighbouring windows
    share targets, so the standard error is taken over blocks of ``block`` (= K) consecutive
    windows, whose sums are nearly independent.
    """
    change = float((new - old).sum() / weight)
    if not np.isfinite(change) or change >= -min_delta * float(old.sum() / weight):
        return False
    if z <= 0:
        return True
    n_blocks = new.size // max(block, 1)
    if n_blocks < 2:
        return True  # too few windows to estimate the noise: min_delta alone decides
    size = new.size // n_blocks
    sums = (new - old)[: n_blocks * size].reshape(n_blocks, size).sum(axis=1) / weight * n_blocks
    return bool(change < -z * float(sums.std(ddof=1)) / np.sqrt(n_blocks))
