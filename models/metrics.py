"""Point-forecast accuracy: MAE, RMSE, sMAPE (percent) and MASE.

All take ``actual`` and ``predicted`` of the same shape, in the units of the series.
"""

from __future__ import annotations

import numpy as np


def _pair(actual, predicted) -> tuple[np.ndarray, np.ndarray]:
    a, p = np.asarray(actual, dtype=np.float64), np.asarray(predicted, dtype=np.float64)
    if a.shape != p.shape:
        raise ValueError(f"actual {a.shape} and predicted {p.shape} differ in shape")
    if a.size == 0:
        raise ValueError("no points to score")
    return a, p


def mae(actual, predicted) -> float:
    """Mean absolute error."""
    a, p = _pair(actual, predicted)
    return float(np.mean(np.abs(a - p)))


def rmse(actual, predicted) -> float:
    """Root mean squared error."""
    a, p = _pair(actual, predicted)
    return float(np.sqrt(np.mean((a - p) ** 2)))


def smape(actual, predicted) -> float:
    """Symmetric MAPE in percent, 0..200: mean of 2|a - p| / (|a| + |p|); a point where both
    are 0 counts as 0."""
    a, p = _pair(actual, predicted)
    denom = np.abs(a) + np.abs(p)
    ratio = np.divide(2.0 * np.abs(a - p), denom, out=np.zeros_like(denom), where=denom > 0)
    return float(100.0 * np.mean(ratio))


def naive_scale(y_train, m: int = 1) -> float:
    """In-sample MAE of the (seasonal, period m) naive forecast on the training series."""
    y = np.asarray(y_train, dtype=np.float64)
    if y.size <= m:
        raise ValueError(f"need more than m={m} training points for the MASE scale")
    return float(np.mean(np.abs(y[m:] - y[:-m])))


def mase(actual, predicted, y_train=None, m: int = 1, scale: float | None = None) -> float:
    """Mean absolute scaled error: MAE divided by the in-sample naive MAE of ``y_train``
    (seasonal period ``m``), or by ``scale`` when given. ``nan`` when the scale is 0."""
    if scale is None:
        if y_train is None:
            raise ValueError("mase needs y_train or scale")
        scale = naive_scale(y_train, m)
    err = mae(actual, predicted)
    return float(err / scale) if scale > 0 else float("nan")
