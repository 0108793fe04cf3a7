"""One network's loss and evaluation, written plainly for the tests' references: the single-network
cell (models.cells) run over all windows, and the masked loss of the docstring of
:mod:`models.train` (d = out - Y: ``mae`` sum(M |d|) / sum(M), ``mse`` sum(M d^2) / sum(M)).
The service trains and scores through the stacked passes (models.engine, models.passes); the
tests check those against these."""

from __future__ import annotations

import numpy as np

from tickcast.models.train import Data

EVAL_CHUNK = 512  # windows per forward pass: bounds the buffers' size


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
    """The loss over all of ``data``'s windows (None without a weighted target)."""
    if data is None or len(data) == 0 or data.M.sum() <= 0:
        return None
    return loss_and_grad(predict_scaled(cell, params, data.X), data.Y, data.M, kind)[0]


def window_losses(cell, params, data: Data, kind: str) -> np.ndarray:
    """Per-window summed loss (N,): the validation loss is their sum over sum(M)."""
    d = predict_scaled(cell, params, data.X) - data.Y
    return np.sum((np.abs(d) if kind == "mae" else d * d) * data.M, axis=1)
