"""How the AutoForecaster combines its members, per series, from their validation errors.

Rules (``COMBINATIONS``):

- ``mean``: equal weights over the members that forecast the series.
- ``median``: the per-step median of the members' forecasts (weights reported equal).
- ``inverse``: weights proportional to 1 / (validation MAE) of each member on the series,
  shrunk by ``shrinkage`` towards a prior: equal weights after ``fit``; after ``fit_many`` the
  inverse of each member's mean *relative* error over all the series (its MAE divided by the
  members' mean MAE on the same series), a weight learnt from thousands of errors rather than one
  series' dozen.
- ``select``: the member with the smallest validation MAE (kept for measurement: selection is
  known to generalise worse than combining).

A member's validation error on a series is the mean absolute error of its forecasts from every
validation origin at every step whose target is known.
"""

from __future__ import annotations

import numpy as np

COMBINATIONS = ("median", "mean", "inverse", "select")
MIN_POOLED_SERIES = 10  # fewer series than this: the prior is equal weights


def member_errors(y: np.ndarray, split: int, forecasts: list) -> np.ndarray:
    """(M,) validation MAE of each member's forecasts (v, H) from origins split..n-1 of y (NaN
    for a member without validation forecasts)."""
    n = y.size
    out = np.full(len(forecasts), np.nan)
    if split >= n:
        return out
    for j, F in enumerate(forecasts):
        if F is None:
            continue
        idx = np.arange(split, n)[:, None] + np.arange(F.shape[1])[None, :]
        known = idx < n
        out[j] = float(np.mean(np.abs(y[idx[known]] - F[known])))
    return out


def _normalise(w: np.ndarray, avail: np.ndarray) -> np.ndarray:
    """Rows of w (S, M) restricted to avail and summing to 1 (equal over avail if all zero)."""
    w = np.where(avail, np.nan_to_num(w, nan=0.0, posinf=0.0), 0.0)
    total = w.sum(axis=1, keepdims=True)
    equal = avail / np.maximum(avail.sum(axis=1, keepdims=True), 1)
    return np.where(total > 0, w / np.where(total > 0, total, 1.0), equal)


def pooled_prior(errors: np.ndarray, avail: np.ndarray) -> np.ndarray:
    """(M,) weights from each member's mean relative error over the series every member
    forecast (errors relative to the members' mean on the same series)."""
    full = np.all(avail & np.isfinite(errors), axis=1)
    E = errors[full]
    mean = E.mean(axis=1, keepdims=True) if E.size else np.ones((0, 1))
    ok = mean[:, 0] > 0
    if ok.sum() < MIN_POOLED_SERIES:
        return np.full(errors.shape[1], 1.0 / errors.shape[1])
    R = np.mean(E[ok] / mean[ok], axis=0)  # (M,) ~1 for an average member
    w = 1.0 / np.maximum(R, 1e-12)
    return w / w.sum()


def member_weights(
    errors: np.ndarray, avail: np.ndarray, rule: str, shrinkage: float, pooled: bool
) -> tuple[np.ndarray, list[str]]:
    """Weights (S, M) over the available members of each series, and what was done per series."""
    S, M = errors.shape
    known = np.all(np.isfinite(errors) | ~avail, axis=1) & np.any(avail & np.isfinite(errors), axis=1)
    equal = _normalise(np.ones((S, M)), avail)
    if rule in ("mean", "median"):
        return equal, [rule] * S
    prior_row = pooled_prior(errors, avail) if pooled and S >= MIN_POOLED_SERIES else np.full(M, 1.0 / M)
    prior = _normalise(np.broadcast_to(prior_row, (S, M)), avail)
    chosen = [rule if k else f"{'pooled' if pooled else 'equal'} weights (no validation part)" for k in known]
    if rule == "select":
        pick = np.argmin(np.where(avail & np.isfinite(errors), errors, np.inf), axis=1)
        W = np.where(known[:, None], np.eye(M)[pick], prior)
        return W, chosen
    with np.errstate(divide="ignore"):
        own = _normalise(1.0 / np.maximum(errors, 1e-300), avail)
    W = _normalise((1.0 - shrinkage) * own + shrinkage * prior, avail)
    return np.where(known[:, None], W, prior), chosen


def combine_forecasts(F: np.ndarray, w: np.ndarray, rule: str) -> np.ndarray:
    """Combine member forecasts F (M, ...) with weights w (M,)."""
    if rule == "median":
        return np.median(F, axis=0)
    return np.tensordot(w / w.sum(), F, axes=1)


__all__ = ["COMBINATIONS", "member_errors", "member_weights", "combine_forecasts", "pooled_prior"]
