"""Input checks, adaptive window length, sliding windows and the chronological split."""
from __future__ import annotations

import numpy as np

from .errors import SeriesTooShort

# Shortest series fit() accepts: 16 points give a window of 3 over 15 returns, 12 windows,
# 10 to train on and 2 to validate. Below that a forecast would be noise fitted to noise.
MIN_LENGTH = 16
# The window never takes more than a quarter of the signal, so short (yearly, quarterly)
# series still yield several windows; it is at least 2 steps.
MIN_WINDOW = 2


def as_series(y, min_length: int = MIN_LENGTH, why: str = "(models.MIN_LENGTH)") -> np.ndarray:
    """y as a 1-D float64 array; ValueError for bad shape or non-finite values, SeriesTooShort
    below ``min_length`` (``why`` ends its message)."""
    arr = np.asarray(y, dtype=np.float64)
    if arr.ndim != 1:
        arr = np.squeeze(arr)
        if arr.ndim != 1:
            raise ValueError(f"y must be one-dimensional, got shape {np.shape(y)}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise ValueError(f"y contains {bad} NaN or infinite value(s); drop or fill them first")
    if arr.size < min_length:
        raise SeriesTooShort(
            f"series has {arr.size} points; the RNN forecaster needs at least {min_length} {why}")
    return arr


def effective_window(window: int, n_signal: int) -> int:
    """Window length actually used for a signal of ``n_signal`` points."""
    return int(min(window, max(MIN_WINDOW, n_signal // 4)))


def make_windows(s: np.ndarray, T: int) -> tuple[np.ndarray, np.ndarray]:
    """Sliding windows of the scaled signal s (N + T,) -> X (N, T, 1), Y (N,): Y[i] = s[i + T]."""
    N = s.size - T
    X = np.lib.stride_tricks.sliding_window_view(s[:-1], T)[:N]       # (N, T) view
    return np.ascontiguousarray(X)[:, :, None], s[T:].copy()          # (N, T) -> (N, T, 1)


def split_sizes(N: int, val_fraction: float) -> tuple[int, int]:
    """(n_train, n_val) windows: the last ``val_fraction`` (at least 1 when > 0) validate."""
    if val_fraction <= 0:
        return N, 0
    n_val = max(1, int(round(N * val_fraction)))
    n_val = min(n_val, N - max(1, N // 2))  # keep at least half the windows for training
    return N - n_val, n_val
