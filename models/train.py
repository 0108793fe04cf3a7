"""The training loop: shuffled mini-batches, clipping, Adam/SGD, early stopping, back-off.

Loss: mean squared error of the scaled next value, ``L = mean_b (out_b - y_b)^2``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import TrainingDiverged
from .optim import clip_flat, make_optimizer
from .params import allocate

EVAL_CHUNK = 256  # windows per forward pass when only evaluating: bounds the buffers' size


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


def predict_scaled(cell, params, X: np.ndarray) -> np.ndarray:
    """Network output for windows X (N, T, 1) -> (N,), in chunks of EVAL_CHUNK."""
    out = np.empty(X.shape[0])
    for start in range(0, X.shape[0], EVAL_CHUNK):
        o, _ = cell.forward(params, X[start:start + EVAL_CHUNK])     # (b, T, 1) -> (b, 1)
        out[start:start + EVAL_CHUNK] = o[:, 0]
    return out


def mse(cell, params, X: np.ndarray, Y: np.ndarray) -> float:
    d = predict_scaled(cell, params, X) - Y
    return float(d @ d / d.size)                                     # (N,) @ (N,) -> ()


def train(cell, flat: np.ndarray, params: dict, X: np.ndarray, Y: np.ndarray,
          X_val: np.ndarray | None, Y_val: np.ndarray | None, settings: TrainSettings,
          rng: np.random.Generator) -> tuple[list[dict], int, int]:
    """Train ``params`` (views of ``flat``) in place; returns ``(history, best_epoch, epochs_run)``.

    X (N, T, 1), Y (N,) train; X_val, Y_val validate (None: the epoch's training loss is
    monitored instead). Epoch 0 is the loss before any update. After each epoch the monitored
    loss decides early stopping (``patience`` 0 disables it); the best weights (epoch 0
    included) are restored at the end. A step whose loss or gradient is not finite is skipped,
    the best weights are restored, the optimizer is reset and the learning rate halved; after
    ``max_backoffs`` of those TrainingDiverged is raised.
    """
    # Overflow to inf/NaN is detected and handled; NumPy's warnings about it are noise here.
    with np.errstate(over="ignore", invalid="ignore"):
        return Trainer(cell, flat, params, settings, rng).run(X, Y, X_val, Y_val)


class Trainer:
    """The training state of one fit: weights (flat, updated in place), gradient buffers, the
    optimizer, the best weights so far and the back-off count. ``run`` is the whole loop,
    ``epoch`` one pass of mini-batch steps (the unit bench/train.py times)."""

    def __init__(self, cell, flat, params, settings: TrainSettings, rng: np.random.Generator):
        self.cell, self.flat, self.params, self.st, self.rng = cell, flat, params, settings, rng
        self.g_flat, self.grads = allocate(cell.shapes)
        self.opt = make_optimizer(settings.optimizer, flat.size, settings.lr)
        self.best = flat.copy()
        self.backoffs = 0

    def run(self, X, Y, X_val, Y_val) -> tuple[list[dict], int, int]:
        cell, params, st = self.cell, self.params, self.st
        has_val = X_val is not None and len(X_val) > 0
        train_loss = mse(cell, params, X, Y)
        val_loss = mse(cell, params, X_val, Y_val) if has_val else None
        monitored = val_loss if has_val else train_loss
        if not np.isfinite(monitored):
            raise TrainingDiverged("the loss at initialisation is not finite")
        history = [_entry(0, train_loss, val_loss, 0.0, 0.0, self.opt.lr)]
        best_loss, best_epoch, wait, epoch = monitored, 0, 0, 0
        for epoch in range(1, st.epochs + 1):
            train_loss, grad_norm, clip_fraction = self.epoch(X, Y)
            val_loss = mse(cell, params, X_val, Y_val) if has_val else None
            finite = train_loss is not None and np.isfinite(train_loss + grad_norm)
            if not finite or (has_val and not np.isfinite(val_loss)):
                self._back_off("non-finite validation loss" if finite
                               else "no finite training loss in an epoch")
                val_loss = mse(cell, params, X_val, Y_val) if has_val else None
                train_loss, grad_norm = mse(cell, params, X, Y), 0.0
            history.append(_entry(epoch, train_loss, val_loss, grad_norm, clip_fraction, self.opt.lr))
            monitored = val_loss if has_val else train_loss
            if np.isfinite(monitored) and monitored < best_loss * (1.0 - st.min_delta):
                best_loss, best_epoch, wait = monitored, epoch, 0
                self.best[:] = self.flat
            else:
                wait += 1
                if st.patience and wait >= st.patience:
                    break
        self.flat[:] = self.best
        return history, best_epoch, epoch

    def epoch(self, X, Y) -> tuple[float | None, float, float]:
        """One pass over shuffled mini-batches -> (mean train loss or None if no step was
        finite, mean gradient norm before clipping, fraction of steps clipped)."""
        cell, params, st = self.cell, self.params, self.st
        perm = self.rng.permutation(len(X))
        loss_sum = norm_sum = 0.0
        n_seen = n_steps = n_clipped = 0
        for start in range(0, len(X), st.batch_size):
            idx = perm[start:start + st.batch_size]
            b = idx.size
            out, cache = cell.forward(params, X[idx])               # (b, T, 1) -> (b, 1)
            d = out[:, 0] - Y[idx]
            loss = float(d @ d) / b                                  # (b,) @ (b,) -> ()
            cell.backward(params, (2.0 / b) * d[:, None], cache, self.grads)
            g, norm, clipped = clip_flat(self.g_flat, st.clip, st.clip_mode)
            if not (np.isfinite(loss) and np.isfinite(norm)):
                self._back_off("non-finite loss or gradient")
                continue
            self.opt.step(self.flat, g)
            loss_sum += loss * b
            n_seen += b
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
                f"{self.opt.lr:.3g}, started at {self.st.lr:.3g}); lower lr or check the series")
        self.flat[:] = self.best
        self.opt.reset()
        self.opt.lr *= 0.5


def _entry(epoch, train_loss, val_loss, grad_norm, clip_fraction, lr) -> dict:
    return {"epoch": int(epoch), "train_loss": float(train_loss),
            "val_loss": None if val_loss is None else float(val_loss),
            "grad_norm": float(grad_norm), "clip_fraction": float(clip_fraction), "lr": float(lr)}
