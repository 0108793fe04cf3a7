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
    loss decides early stopping; the best weights (epoch 0 included) are restored at the end.
    A step whose loss or gradient is not finite is skipped, the best weights are restored, the
    optimizer is reset and the learning rate halved; after ``max_backoffs`` of those
    TrainingDiverged is raised.
    """
    st = settings
    has_val = X_val is not None and len(X_val) > 0
    g_flat, grads = allocate(cell.shapes)
    opt = make_optimizer(st.optimizer, flat.size, st.lr)
    best = flat.copy()
    backoffs = 0

    def back_off(reason: str) -> None:
        nonlocal backoffs
        backoffs += 1
        if backoffs > st.max_backoffs:
            raise TrainingDiverged(
                f"{reason} after {st.max_backoffs} learning-rate back-offs (lr now {opt.lr:.3g}, "
                f"started at {st.lr:.3g}); lower lr or check the series")
        flat[:] = best
        opt.reset()
        opt.lr *= 0.5

    train_loss = mse(cell, params, X, Y)
    val_loss = mse(cell, params, X_val, Y_val) if has_val else None
    monitored = val_loss if has_val else train_loss
    if not np.isfinite(monitored):
        raise TrainingDiverged("the loss at initialisation is not finite")
    history = [_entry(0, train_loss, val_loss, 0.0, 0.0, opt.lr)]
    best_loss, best_epoch, wait, epoch = monitored, 0, 0, 0
    N, B = len(X), st.batch_size
    for epoch in range(1, st.epochs + 1):
        perm = rng.permutation(N)
        loss_sum = norm_sum = 0.0
        n_seen = n_steps = n_clipped = 0
        for start in range(0, N, B):
            idx = perm[start:start + B]
            b = idx.size
            out, cache = cell.forward(params, X[idx])               # (b, T, 1) -> (b, 1)
            d = out[:, 0] - Y[idx]
            loss = float(d @ d) / b
            cell.backward(params, (2.0 / b) * d[:, None], cache, grads)
            g, norm, clipped = clip_flat(g_flat, st.clip, st.clip_mode)
            if not (np.isfinite(loss) and np.isfinite(norm)):
                back_off("non-finite loss or gradient")
                continue
            opt.step(flat, g)
            loss_sum += loss * b
            n_seen += b
            norm_sum += norm
            n_steps += 1
            n_clipped += clipped
        val_loss = mse(cell, params, X_val, Y_val) if has_val else None
        if n_seen == 0 or (has_val and not np.isfinite(val_loss)):
            back_off("non-finite validation loss" if n_seen else "no finite step in an epoch")
            val_loss = mse(cell, params, X_val, Y_val) if has_val else None
        train_loss = loss_sum / n_seen if n_seen else mse(cell, params, X, Y)
        history.append(_entry(epoch, train_loss, val_loss, norm_sum / max(n_steps, 1),
                              n_clipped / max(n_steps, 1), opt.lr))
        monitored = val_loss if has_val else train_loss
        if np.isfinite(monitored) and monitored < best_loss * (1.0 - st.min_delta):
            best_loss, best_epoch, wait = monitored, epoch, 0
            best[:] = flat
        else:
            wait += 1
            if st.patience and wait >= st.patience:
                break
    flat[:] = best
    return history, best_epoch, epoch


def _entry(epoch, train_loss, val_loss, grad_norm, clip_fraction, lr) -> dict:
    return {"epoch": int(epoch), "train_loss": float(train_loss),
            "val_loss": None if val_loss is None else float(val_loss),
            "grad_norm": float(grad_norm), "clip_fraction": float(clip_fraction), "lr": float(lr)}
