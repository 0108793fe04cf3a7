"""Baseline forecasts every model has to beat: naive, seasonal naive, drift, and the M3
benchmarks Naive2 (naive on the seasonally adjusted series) and Theta (the M3 winner).

Each maps a history ``y`` (n,), oldest first, to ``h`` point forecasts (h,) in its units;
``m`` is the seasonal period (1: none).
"""

from __future__ import annotations

import numpy as np

from .seasonality import Seasonality

# SES smoothing parameters searched: a coarse grid, then a fine one around its best point.
_ALPHA_COARSE = np.linspace(0.02, 0.98, 25)


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


def naive2(y, h: int, m: int = 1) -> np.ndarray:
    """Naive on the seasonally adjusted series (classical multiplicative decomposition, used only
    when the 90 % autocorrelation test at lag m finds seasonality: the M4 rule, on the levels
    alone), reseasonalised."""
    arr = _history(y)
    season = Seasonality.fit(arr, m, m4_test=True)
    return season.restore(naive(season.remove(arr), h))


def _ses_sse(y: np.ndarray, alphas: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each alpha (A,): the in-sample SSE of SES with its best initial level, that level,
    and the final level (the forecast). One-step forecasts are linear in the initial level l0:
    yhat_t = (1 - a)^t l0 + b_t, so the best l0 is a least-squares coefficient."""
    n = y.size
    decay = 1.0 - alphas  # (A,)
    b = np.zeros_like(alphas)  # level path with l0 = 0
    B = np.empty((n, alphas.size))  # (n, A) forecasts, l0 = 0
    for t in range(n):
        B[t] = b
        b = alphas * y[t] + decay * b
    P = decay[None, :] ** np.arange(n)[:, None]  # (n, A) weight of l0
    resid = y[:, None] - B  # (n, A)
    l0 = np.einsum("na,na->a", P, resid) / np.einsum("na,na->a", P, P)
    sse = np.sum((resid - P * l0) ** 2, axis=0)
    final = b + decay**n * l0  # l_{n-1} with the best l0
    return sse, l0, final


def ses(y, h: int) -> tuple[np.ndarray, float]:
    """Simple exponential smoothing with the smoothing parameter and initial level that minimise
    the in-sample squared one-step errors; returns (forecast (h,), alpha)."""
    arr = _history(y)
    if arr.size < 3:
        return naive(arr, h), 1.0
    sse, _, final = _ses_sse(arr, _ALPHA_COARSE)
    best = _ALPHA_COARSE[np.argmin(sse)]
    fine = np.clip(np.linspace(best - 0.04, best + 0.04, 17), 0.001, 0.999)
    sse, _, final = _ses_sse(arr, fine)
    k = int(np.argmin(sse))
    return np.full(int(h), final[k]), float(fine[k])


def theta(y, h: int, m: int = 1) -> np.ndarray:
    """The classic Theta method (Assimakopoulos & Nikolopoulos, 2000, in the form of Hyndman &
    Billah, 2003): on the seasonally adjusted series, SES plus a drift of half the slope of the
    linear trend, ``b/2 * (k - 1 + (1 - (1 - alpha)^n) / alpha)`` at step k; reseasonalised."""
    arr = _history(y)
    season = Seasonality.fit(arr, m, m4_test=True)
    x = season.remove(arr)
    n = x.size
    if n < 3:
        return season.restore(drift(x, h))
    t = np.arange(n, dtype=np.float64)
    slope = float(np.polyfit(t, x, 1)[0])
    level, alpha = ses(x, h)
    k = np.arange(int(h), dtype=np.float64)
    return season.restore(level + 0.5 * slope * (k + (1.0 - (1.0 - alpha) ** n) / alpha))
