"""What training is made of, for one network: its settings, windows held in arrays, the masked
loss, the evaluation and the test of a validation gain. The loop itself, for one network or
many at once, is :mod:`models.engine`.

Shapes: X (N, T, D) windows, Y (N, K) targets, M (N, K) target weights (0 masks a target out:
past the end of a series or inside the validation part). Loss per batch, with d = out - Y:
``mae``: sum(M |d|) / sum(M), ``mse``: sum(M d^2) / sum(M).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .config import LOSSES  # noqa: F401 (re-exported)

EVAL_CHUNK = 512  # windows per forward pass when only evaluating: bounds the buffers' size


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

    def take(self, idx) -> Data:
        return Data(self.X[idx], self.Y[idx], self.M[idx])

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


def predict_scaled(cell, params, X: np.ndarray) -> np.ndarray:
    """Network output for windows X (N, T, D) -> (N, K), in chunks of EVAL_CHUNK."""
    out = np.empty((X.shape[0], cell.O))
    for start in range(0, X.shape[0], EVAL_CHUNK):
        o, _ = cell.forward(params, X[start : start + EVAL_CHUNK])  # (b, T, D) -> (b, K)
        out[start : start + EVAL_CHUNK] = o
    return out


def loss_and_grad(out: np.ndarray, Y: np.ndarray, M: np.ndarray, kind: str) -> tuple[float, np.ndarray]:
    """Masked loss of out (B, K) against Y (B, K) and its gradient dL/dout (B, K)."""
    weight = float(M.sum())
    if weight <= 0:
        return 0.0, np.zeros_like(out)
    d = out - Y
    if kind == "mae":
        return float(np.sum(np.abs(d) * M)) / weight, np.sign(d) * M / weight
    return float(np.sum(d * d * M)) / weight, 2.0 * d * M / weight


def evaluate(cell, params, data: Data | None, kind: str) -> float | None:
    if data is None or len(data) == 0 or data.M.sum() <= 0:
        return None
    return loss_and_grad(predict_scaled(cell, params, data.X), data.Y, data.M, kind)[0]


def window_losses(cell, params, data: Data, kind: str) -> np.ndarray:
    """Per-window summed loss (N,): the validation loss is their sum over sum(M)."""
    d = predict_scaled(cell, params, data.X) - data.Y
    return np.sum((np.abs(d) if kind == "mae" else d * d) * data.M, axis=1)


def significant(new: np.ndarray, old: np.ndarray, weight: float, z: float, min_delta: float, block: int = 1) -> bool:
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
