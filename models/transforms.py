"""Series transforms: what the network sees instead of the raw levels, and the way back.

``log_return``: ``z_t = log(y_t / y_{t-1})`` (strictly positive series, e.g. prices);
``diff``: ``z_t = y_t - y_{t-1}``; ``level``: ``z_t = y_t``. The signal is then standardised
with a mean and standard deviation taken from the training part only. Forecasts of the scaled
signal are mapped back to the units of ``y`` one step at a time.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

TRANSFORMS = ("log_return", "diff", "level")
# Lag-1 autocorrelation above which a series that may be <= 0 is treated as persistent
# (random-walk-like) and differenced; below it the standardised level is kept.
PERSISTENT_AUTOCORR = 0.9


@dataclass(frozen=True)
class Transform:
    """A fitted transform: its name and the training part's signal mean and std (signal units)."""

    name: str
    mean: float
    std: float

    @property
    def lag(self) -> int:
        """How many points of ``y`` the signal loses at the start (0 for ``level``)."""
        return 0 if self.name == "level" else 1

    def to_dict(self) -> dict:
        return asdict(self)

    def scale(self, z: np.ndarray) -> np.ndarray:
        return (z - self.mean) / self.std

    def unscale(self, s: np.ndarray) -> np.ndarray:
        return s * self.std + self.mean

    def next_value(self, y_last: np.ndarray, s_next: np.ndarray) -> np.ndarray:
        """The next value in units of y from the last value (B,) and the scaled signal (B,)."""
        z = self.unscale(s_next)
        if self.name == "log_return":
            return y_last * np.exp(z)
        if self.name == "diff":
            return y_last + z
        return z

    def residual(self, actual: np.ndarray, predicted: np.ndarray) -> np.ndarray:
        """Forecast error on the scale intervals are built on: log ratio for log returns
        (intervals scale with the level), plain difference otherwise."""
        if self.name == "log_return":
            return np.log(actual / predicted)
        return actual - predicted

    def widen(self, predicted: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Interval ``(lower, upper)`` around ``predicted`` for a residual half-width ``q >= 0``."""
        if self.name == "log_return":
            return predicted * np.exp(-q), predicted * np.exp(q)
        return predicted - q, predicted + q


def choose_transform(y: np.ndarray, requested: str = "auto") -> str:
    """Resolve ``requested`` (``"auto"`` or a name in TRANSFORMS) for the series ``y``.

    ``auto``: log returns for a strictly positive series; otherwise differences when the
    series is persistent (lag-1 autocorrelation >= PERSISTENT_AUTOCORR), else levels.
    """
    if requested != "auto":
        if requested not in TRANSFORMS:
            raise ValueError(f"transform must be 'auto' or one of {TRANSFORMS}, got {requested!r}")
        if requested == "log_return" and np.any(y <= 0):
            raise ValueError("transform='log_return' needs a strictly positive series")
        return requested
    if np.all(y > 0):
        return "log_return"
    return "diff" if lag1_autocorr(y) >= PERSISTENT_AUTOCORR else "level"


def lag1_autocorr(y: np.ndarray) -> float:
    """Sample lag-1 autocorrelation of y (0.0 for a constant series)."""
    d = y - y.mean()
    denom = d @ d
    return float((d[1:] @ d[:-1]) / denom) if denom > 0 else 0.0


def signal(y: np.ndarray, name: str) -> np.ndarray:
    """The unscaled signal z of y: length n - 1 for returns and differences, n for levels."""
    if name == "log_return":
        return np.diff(np.log(y))
    if name == "diff":
        return np.diff(y)
    return y.copy()


def fit_transform(name: str, z_train: np.ndarray) -> Transform:
    """Standardisation statistics from the training part of the signal. A constant signal gets
    std 1 so that scaling stays finite."""
    mean, std = float(np.mean(z_train)), float(np.std(z_train))
    if not np.isfinite(std) or std <= 1e-12 * max(1.0, abs(mean)):
        std = 1.0
    return Transform(name, mean, std)
