"""The training loop: shuffled mini-batches, clipping, Adam/SGD, a cosine learning-rate decay,
early stopping, back-off after non-finite steps.

Shapes: X (N, T, D) windows, Y (N, K) targets, M (N, K) target weights (0 masks a target out:
past the end of a series or inside the validation part). Loss per batch, with d = out - Y:
``mae``: sum(M |d|) / sum(M), ``mse``: sum(M d^2) / sum(M).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .config import LOSSES  # noqa: F401 (re-exported)
from .errors import TrainingDiverged
from .optim import clip_flat, make_optimizer
from .params import allocate

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


def train(
    cell,
    flat: np.ndarray,
    params: dict,
    data: Data,
    val: Data | None,
    settings: TrainSettings,
    rng: np.random.Generator,
) -> tuple[list[dict], int, int]:
    """Train ``params`` (views of ``flat``) in place; returns ``(history, best_epoch, epochs_run)``.

    Epoch 0 is the loss before any update. After each epoch the validation loss (the training
    loss when there is no validation data) decides early stopping (``patience`` 0 disables
    it); the best weights, epoch 0 included, are restored at the end. A validation improvement
    counts when it is ``min_delta`` (relative) and ``significance`` standard errors large. A step whose loss or
    gradient is not finite never updates the weights: the best weights are restored, the
    optimizer reset and the learning rate halved; after ``max_backoffs`` of those
    TrainingDiverged is raised.
    """
    # Overflow to inf/NaN is detected and handled; NumPy's warnings about it are noise here.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return Trainer(cell, flat, params, settings, rng).run(data, val)


class Trainer:
    """The training state of one fit: weights (flat, updated in place), gradient buffers, the
    optimizer, the best weights so far and the back-off count. ``run`` is the whole loop,
    ``epoch`` one pass of mini-batch steps (the unit bench/train.py times)."""

    def __init__(self, cell, flat, params, settings: TrainSettings, rng: np.random.Generator):
        self.cell, self.flat, self.params, self.st, self.rng = cell, flat, params, settings, rng
        self.g_flat, self.grads = allocate(cell.shapes)
        self.opt = make_optimizer(settings.optimizer, flat.size, settings.lr)
        self.base_lr = settings.lr  # halved by back-offs; the cosine decay scales it
        self.best = flat.copy()
        self.backoffs = 0

    def run(self, data: Data, val: Data | None) -> tuple[list[dict], int, int]:
        cell, params, st = self.cell, self.params, self.st
        train_loss = evaluate(cell, params, data, st.loss)
        val_loss = evaluate(cell, params, val, st.loss)
        monitored = val_loss if val_loss is not None else train_loss
        if monitored is None or not np.isfinite(monitored):
            raise TrainingDiverged("the loss at initialisation is not finite")
        history = [_entry(0, train_loss, val_loss, 0.0, 0.0, self.opt.lr)]
        best_loss, best_epoch, wait, epoch = monitored, 0, 0, 0
        if val_loss is not None:
            val_weight = float(val.M.sum())
            best_windows = window_losses(cell, params, val, st.loss)
        for epoch in range(1, st.epochs + 1):
            # cosine decay from lr to lr/10 over the epoch budget: big steps first, settling later
            self.opt.lr = self.base_lr * (0.55 + 0.45 * math.cos(math.pi * (epoch - 1) / max(st.epochs, 1)))
            train_loss, grad_norm, clip_fraction = self.epoch(data)
            val_loss = evaluate(cell, params, val, st.loss)
            finite = train_loss is not None and np.isfinite(train_loss + grad_norm)
            if not finite or (val_loss is not None and not np.isfinite(val_loss)):
                self._back_off("non-finite validation loss" if finite else "no finite training loss in an epoch")
                val_loss = evaluate(cell, params, val, st.loss)
                train_loss, grad_norm = evaluate(cell, params, data, st.loss), 0.0
            history.append(_entry(epoch, train_loss, val_loss, grad_norm, clip_fraction, self.opt.lr))
            if val_loss is not None:
                windows = window_losses(cell, params, val, st.loss)
                better = significant(windows, best_windows, val_weight, st.significance, st.min_delta, cell.O)
            else:
                better = np.isfinite(train_loss) and train_loss < best_loss * (1.0 - st.min_delta)
            if better:
                best_loss = val_loss if val_loss is not None else train_loss
                best_epoch, wait = epoch, 0
                if val_loss is not None:
                    best_windows = windows
                self.best[:] = self.flat
            else:
                wait += 1
                if st.patience and wait >= st.patience:
                    break
        self.flat[:] = self.best
        return history, best_epoch, epoch

    def epoch(self, data: Data) -> tuple[float | None, float, float]:
        """One pass over shuffled mini-batches -> (mean train loss or None if no step was
        finite, mean gradient norm before clipping, fraction of steps clipped)."""
        cell, params, st = self.cell, self.params, self.st
        perm = self.rng.permutation(len(data))
        loss_sum = norm_sum = 0.0
        n_seen = n_steps = n_clipped = 0
        for start in range(0, len(data), st.batch_size):
            idx = perm[start : start + st.batch_size]
            out, cache = cell.forward(params, data.X[idx])  # (b, T, D) -> (b, K)
            loss, dout = loss_and_grad(out, data.Y[idx], data.M[idx], st.loss)
            cell.backward(params, dout, cache, self.grads)
            g, norm, clipped = clip_flat(self.g_flat, st.clip, st.clip_mode)
            if not (np.isfinite(loss) and np.isfinite(norm)):
                self._back_off("non-finite loss or gradient")
                continue
            self.opt.step(self.flat, g)
            loss_sum += loss * idx.size
            n_seen += idx.size
            norm_sum += norm
            n_steps += 1
            n_clipped += clipped
        if not n_seen:
            return None, 0.0, 0.0
        return loss_sum / n_seen, norm_sum / n_steps, n_clipped / n_steps

    def _back_off(self, reason: str) -> None:
        """Never step from non-finite values: restore the best weights, reset the optimizer's
        moments and halve the learning rate, or give up after max_backoffs."""
        self.backoffs += 1
        if self.backoffs > self.st.max_backoffs:
            raise TrainingDiverged(
                f"{reason} after {self.st.max_backoffs} learning-rate back-offs (lr now "
                f"{self.opt.lr:.3g}, started at {self.st.lr:.3g}); lower lr or check the series"
            )
        self.flat[:] = self.best
        self.opt.reset()
        self.base_lr *= 0.5
        self.opt.lr *= 0.5


def _entry(epoch, train_loss, val_loss, grad_norm, clip_fraction, lr) -> dict:
    return {
        "epoch": int(epoch),
        "train_loss": float(train_loss),
        "val_loss": None if val_loss is None else float(val_loss),
        "grad_norm": float(grad_norm),
        "clip_fraction": float(clip_fraction),
        "lr": float(lr),
    }
