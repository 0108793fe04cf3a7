"""Baseline forecasts every model has to beat: naive, seasonal naive and drift.

Each maps a history ``y`` (n,), oldest first, to ``h`` point forecasts (h,) in its units.
"""
from __future__ import annotations

import numpy as np


def _history(y) -> np.ndarray:
    arr = np.asarray(y, dtype=np.float64)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError("y must be a non-empty 1-D series")
    return arr


def naive(y, h: int) -> np.ndarray:
    """Repeat the last value (the random-walk forecast)."""
    return np.full(int(h), _history(y)[-1])


def seasonal_naive(y, h: int, m: int) -> np.ndarray:
    """Repeat the last full season of period ``m``: step k forecasts y[n - m + (k - 1) % m]."""
    arr = _history(y)
    if m < 1 or arr.size < m:
        raise ValueError(f"seasonal naive needs m >= 1 and at least m={m} points")
    last_season = arr[-m:]
    return last_season[np.arange(int(h)) % m]


def drift(y, h: int) -> np.ndarray:
    """Last value plus the average change over the history, times the step."""
    arr = _history(y)
    slope = (arr[-1] - arr[0]) / (arr.size - 1) if arr.size > 1 else 0.0
    return arr[-1] + slope * np.arange(1, int(h) + 1)
