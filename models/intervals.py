"""Split-conformal prediction intervals, one residual distribution per forecast step.

For every step k = 1..K the absolute residuals |e_k| of k-step-ahead forecasts made from the
validation origins are summarised by their empirical quantile function on a fixed grid. A
level-L interval at step k uses the finite-sample conformal quantile: the
ceil((n_k + 1) L)-th smallest of the n_k residuals. Steps with fewer than MIN_RESIDUALS
residuals, and steps beyond K, grow from the last well-estimated step like a random walk
(sqrt of the step ratio).

Where a step has too few residuals for the level (fewer than ``1 / (1 - level) - 1``: 19 for 95 %,
4 for 80 %), the conformal quantile is the largest residual whatever the level, so an 80 % and a
95 % interval would be the same; ``floored_half_widths`` then takes the Gaussian half-width,
``z * RMS`` of the residuals with a small-sample allowance, where that is wider.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

GRID = np.linspace(0.0, 1.0, 201)  # probability grid of the stored quantile functions
MIN_RESIDUALS = 5


def residual_quantiles(abs_residuals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """abs_residuals (n, K), NaN where the actual value is not yet known ->
    ``(Q (K, len(GRID)), counts (K,))``, the quantile functions of |e_k| and their sample sizes."""
    n, K = abs_residuals.shape
    Q = np.zeros((K, GRID.size))
    counts = np.zeros(K, dtype=np.int64)
    last = -1
    for k in range(K):
        e = abs_residuals[:, k]
        e = e[np.isfinite(e)]
        counts[k] = e.size
        if e.size >= MIN_RESIDUALS:
            Q[k] = np.quantile(e, GRID, method="inverted_cdf")
            last = k
        elif last >= 0:
            Q[k] = Q[last] * math.sqrt((k + 1) / (last + 1))
    if last < 0 and n > 0:  # too few residuals anywhere: use whatever one-step ones there are
        e = abs_residuals[:, 0]
        e = e[np.isfinite(e)]
        if e.size:
            base = np.quantile(e, GRID, method="inverted_cdf")
            Q = base[None, :] * np.sqrt(np.arange(1, K + 1))[:, None]
    return Q, counts


def half_widths(Q: np.ndarray, counts: np.ndarray, h: int, level: float) -> np.ndarray:
    """Interval half-widths (h,) on the residual scale for steps 1..h at coverage ``level``."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    K = Q.shape[0]
    out = np.empty(h)
    for k in range(min(h, K)):
        n = max(int(counts[k]), MIN_RESIDUALS)
        adjusted = min(1.0, math.ceil((n + 1) * level) / n)
        out[k] = np.interp(adjusted, GRID, Q[k])
    for k in range(K, h):
        out[k] = out[K - 1] * math.sqrt((k + 1) / K)
    return out


def floored_half_widths(Q: np.ndarray, counts: np.ndarray, h: int, level: float) -> np.ndarray:
    """``half_widths``, and at least the Gaussian half-width where a step has too few residuals
    for the level (its conformal quantile would be the largest residual)."""
    q = half_widths(Q, counts, h, level)
    K = Q.shape[0]
    n = np.array([counts[min(k, K - 1)] for k in range(h)], dtype=np.float64)
    short = np.ceil((n + 1) * level) > n
    if short.any():
        z = NormalDist().inv_cdf(0.5 + level / 2)
        rms = np.sqrt(np.mean(Q**2, axis=1))  # (K,) from the quantile functions
        rms = np.array([rms[k] if k < K else rms[-1] * math.sqrt((k + 1) / K) for k in range(h)])
        allowance = 1.0 + (z * z + 1.0) / (4.0 * np.maximum(n - 1.0, 1.0))  # ~ t / z quantile ratio
        q = np.where(short, np.maximum(q, z * rms * allowance), q)
    return q


def _order_statistic(Qk: np.ndarray, n: int, j: int) -> float:
    """The j-th smallest of the n residuals behind the quantile function Qk (``inverted_cdf`` on
    GRID), 0 for j = 0."""
    return 0.0 if j <= 0 else float(np.interp((j - 0.5) / n, GRID, Qk))


def conformal_half_widths(Q: np.ndarray, counts: np.ndarray, h: int, level: float) -> np.ndarray:
    """Half-widths (h,) for steps 1..h at coverage ``level`` from the quantile functions of |e_k|
    (the combination's and the challengers' intervals, ``models.conformal``).

    - Enough residuals (n of them, level (n+1) < n): the smoothed conformal quantile, rank
      r = level (n+1) interpolated between the order statistics around it. A new residual
      exchangeable with the n falls below the j-th smallest with probability j / (n+1), so this
      covers ``level`` (the smoothed conformal predictor, Vovk et al. 2005, without the coin). The
      ceil(r)-th smallest of ``half_widths`` covers ceil(r) / (n+1): with the dozen residuals of a
      single series' step, up to 0.89 for 80 %.
    - Too few (a 95 % interval from fewer than 20): the exact predictive quantile for Laplace
      errors, |e| exponential with its mean estimated from the n residuals behind the step's
      quantile function: P(|e_new| > q) = (1 + q / (n mean))^(-n), so q = n mean ((1 - level)^(-1/n)
      - 1), or the largest residual if wider. Forecast errors have heavier tails than the
      Gaussian's (on M3 per series the Gaussian rule covered 0.91-0.93 for 95 %).
    - Steps past the quantile functions grow like a random walk from the last (sqrt of the step).
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    K = Q.shape[0]
    out = np.empty(h)
    last = -1
    for k in range(min(h, K)):
        n = int(counts[k])
        if n >= MIN_RESIDUALS:
            last = k
        # the residuals behind Q[k]: its own, or those of the step it was grown from
        source = n if n >= MIN_RESIDUALS else int(counts[last] if last >= 0 else counts[0])
        r = level * (n + 1)
        if n >= MIN_RESIDUALS and r < n:
            j, frac = int(math.floor(r)), r - math.floor(r)
            out[k] = (1.0 - frac) * _order_statistic(Q[k], n, j) + frac * _order_statistic(Q[k], n, j + 1)
        else:
            m = max(source, 1)
            mean = float(np.mean(Q[k]))
            out[k] = max(float(Q[k, -1]), m * mean * ((1.0 - level) ** (-1.0 / m) - 1.0))
    for k in range(K, h):
        out[k] = out[K - 1] * math.sqrt((k + 1) / K)
    return out
