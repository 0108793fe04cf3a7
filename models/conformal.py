"""Split-conformal intervals from validation forecasts, for the challengers and the combination.

A forecast from origin t is judged on the model's scale x (log y for a positive series, else y):
its absolute error at step k, divided by the local size of one-step changes at t (an exponentially
weighted mean of |x_t - x_{t-1}| over about 20 points), is a residual; a quantile of step k's
residuals (``intervals.conformal_half_widths``: the smoothed conformal quantile, or a Laplace
predictive quantile where a step has too few residuals for the level) times the local size of
changes at the end gives the half-width, on the log scale for positive series (relative,
asymmetric in y). The combination takes each series' own residuals (``AutoForecaster``, after
``fit_many`` too); a challenger's ``fit_many`` pools its series' residuals.

Without a validation part (a series too short to hold anything out) the residuals are the
series' one-step changes, grown like a random walk (sqrt of the step).
"""

from __future__ import annotations

import math

import numpy as np

from .intervals import conformal_half_widths, residual_quantiles

HALFLIFE = 20.0  # points, of the local size of changes
MIN_RELATIVE_HALF_WIDTH = 1e-4  # a series that never moved still gets an interval, not a point


def on_log_scale(y: np.ndarray) -> bool:
    return bool(np.all(y > 0))


def to_x(values: np.ndarray, log: bool) -> np.ndarray:
    return np.log(np.maximum(values, 1e-300)) if log else np.asarray(values, dtype=np.float64)


def spread_path(x: np.ndarray) -> np.ndarray:
    """(n+1,) local size of one-step changes after t points (t = 0..n): an exponentially weighted
    mean of |x_i - x_{i-1}|, started at the mean of the first few; never 0 (falls back to a small
    share of the level)."""
    n = x.size
    d = np.abs(np.diff(x))
    floor = max(1e-8 * float(np.mean(np.abs(x))) if n else 0.0, 1e-12)
    out = np.full(n + 1, np.nan)
    if d.size == 0:
        return np.full(n + 1, floor)
    lam = 1.0 - math.pow(0.5, 1.0 / HALFLIFE)
    s = float(np.mean(d[: min(d.size, 5)]))
    out[:2] = s
    path = []
    for v in d.tolist():  # change i happens between points i and i+1: known after i+2 (Python floats: fast)
        s = (1 - lam) * s + lam * v
        path.append(s)
    out[2:] = path
    return np.maximum(out, floor)


def spread_at_end(x: np.ndarray) -> float:
    """``spread_path(x)[-1]`` as one dot product instead of a loop over the series (what an
    interval needs, several times per fit): the weight of change i in the final mean is
    lam (1 - lam)^(changes after it), the starting value's (1 - lam)^(number of changes)."""
    n = x.size
    d = np.abs(np.diff(x))
    floor = max(1e-8 * float(np.mean(np.abs(x))) if n else 0.0, 1e-12)
    if d.size == 0:
        return floor
    lam = 1.0 - math.pow(0.5, 1.0 / HALFLIFE)
    s0 = float(np.mean(d[: min(d.size, 5)]))
    decay = (1.0 - lam) ** np.arange(d.size - 1, -1, -1, dtype=np.float64)  # old changes underflow to 0
    return max((1.0 - lam) ** d.size * s0 + lam * float(decay @ d), floor)


def residuals(y: np.ndarray, forecasts: np.ndarray, split: int, log: bool) -> np.ndarray:
    """Scaled absolute errors (v, h) of forecasts (v, h) made from origins split..n-1 of y (NaN
    where the target is past the end)."""
    n = y.size
    h = forecasts.shape[1]
    x = to_x(y, log)
    spread = spread_path(x)
    idx = np.arange(split, n)[:, None] + np.arange(h)[None, :]
    actual = np.where(idx < n, x[np.minimum(idx, n - 1)], np.nan)
    fx = to_x(np.maximum(forecasts, 1e-300) if log else forecasts, log)
    return np.abs(actual - fx) / spread[split:n, None]


def random_walk_residuals(y: np.ndarray, h: int, log: bool) -> np.ndarray:
    """Stand-in residuals (n-1, h) for a series without a validation part: its one-step changes,
    scaled like real residuals, at step 1 only (``residual_quantiles`` grows later steps)."""
    x = to_x(y, log)
    spread = spread_path(x)
    out = np.full((max(x.size - 1, 0), h), np.nan)
    if x.size > 1:
        out[:, 0] = np.abs(np.diff(x)) / spread[1:-1]
    return out


class Conformal:
    """Residual quantile functions (K, grid) and counts (K,), pooled over the rows given."""

    def __init__(self, Q: np.ndarray, counts: np.ndarray):
        self.Q, self.counts = np.asarray(Q, dtype=np.float64), np.asarray(counts, dtype=np.int64)

    @classmethod
    def from_residuals(cls, rows: list[np.ndarray], h: int) -> Conformal:
        stacked = np.concatenate([r for r in rows if r.size], axis=0) if any(r.size for r in rows) else None
        if stacked is None:
            stacked = np.zeros((1, h))
        Q, counts = residual_quantiles(stacked[:, :h])
        return cls(Q, counts)

    def half_widths(self, h: int, level: float) -> np.ndarray:
        """(h,) half-widths on the residual scale: the smoothed conformal quantile, or a Laplace
        predictive quantile where too few residuals (``intervals.conformal_half_widths``)."""
        return conformal_half_widths(self.Q, self.counts, h, level)

    def interval(self, y: np.ndarray, point: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) around point (h,), forecasts made at the end of y."""
        h = point.size
        log = on_log_scale(y) and bool(np.all(point > 0))
        x = to_x(y, log)
        q = self.half_widths(h, float(level)) * spread_at_end(x)  # (h,) x units
        steps = np.sqrt(np.arange(1, h + 1))
        if log:
            q = np.maximum(q, MIN_RELATIVE_HALF_WIDTH * steps)
            lx = np.log(point)
            with np.errstate(over="ignore"):
                lower, upper = np.exp(lx - q), np.exp(lx + q)
        else:
            q = np.maximum(q, MIN_RELATIVE_HALF_WIDTH * max(float(np.mean(np.abs(y))), 1e-12) * steps)
            lower, upper = point - q, point + q
        bad = ~(np.isfinite(lower) & np.isfinite(upper))
        if bad.any():  # an overflowing exp: fall back to a linear interval of the same width
            width = np.abs(point) * np.expm1(np.minimum(q, 30.0))
            lower, upper = np.where(bad, point - width, lower), np.where(bad, point + width, upper)
        return np.minimum(lower, point), np.maximum(upper, point)


def levels_of(level) -> tuple[list[float], bool]:
    """A level or a list of levels -> (list of floats in (0, 1), whether one was given)."""
    single = np.ndim(level) == 0
    out = [float(v) for v in (np.atleast_1d(level))]
    for v in out:
        if not 0.0 < v < 1.0:
            raise ValueError(f"level must be in (0, 1), got {v}")
    return out, single


__all__ = [
    "Conformal",
    "residuals",
    "random_walk_residuals",
    "spread_path",
    "spread_at_end",
    "on_log_scale",
    "levels_of",
]
