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

The benchmarks (``BENCHMARKS``: naive, seasonal naive) are screened, per series: one joins the
combination of a series only where the validation part is long enough to judge it (at least
``MIN_BLOCKS`` origins whose forecasts do not overlap, as below) and its validation error is below
that of the combination of the other members (by the same rule); it has weight 0 elsewhere (the
forecast pooling of Kourentzes, Barrow and Petropoulos, 2019: average the models that validation
does not rule out). Where the seasonal pattern repeats (long hourly series, where the seasonal
naive forecast is the one to beat) it joins. On a validation part of one or two such origins, as
every M3 series has, a benchmark's lead is mostly luck: it joined a fifth of a set of weekly
series (validation forecasts reach 48 weeks, the seasonal naive forecast looks good there, and
it is poor 13 weeks ahead) and made them worse, and on M3 it cost yearly series what it gained
monthly ones (models/README.md). Where one joins, the weights are the rule's over the members
that take part, with equal weights as the prior.

Then, of the members that take part, validation rules out any that is clearly worse than the best
of them (the pooling's other half: average only the models the evidence does not rule out). A
member is ruled out when its validation MAE is more than ``WORSE_RATIO`` times the best member's
and the difference is significant: at least ``MIN_BLOCKS`` validation origins whose forecasts do
not overlap (one every H steps) and a mean paired difference of ``WORSE_SE`` standard errors or
more over them. Its weight goes to the others in proportion to theirs. Why a quarter: the mean of
two forecasts whose errors correlate as forecasts' errors do (rho 0.7-0.9) is worse than the
better one alone once the other's error is 1.05-1.17 times as large (equal weights beat the better
forecast when r^2 + 2 rho r < 3 for the ratio r of their error scales), so a member a quarter
worse costs the combination more than its diversity brings. The evidence bar keeps it from acting
on a short validation part (an M3 series has at most three non-overlapping origins), while on a
long hourly series where yesterday repeats today (normal temperatures) the smoothing models, a
quarter worse than the seasonal naive forecast on every origin, are ruled out (models/README.md).
"""

from __future__ import annotations

import numpy as np

COMBINATIONS = ("median", "mean", "inverse", "select")
BENCHMARKS = ("naive", "seasonal_naive")
MIN_POOLED_SERIES = 10  # fewer series than this: the prior is equal weights
WORSE_RATIO = 1.25  # a member whose validation MAE is this many times the best's ...
WORSE_SE = 2.0  # ... by this many standard errors of the paired difference ...
MIN_BLOCKS = 3  # ... over at least this many non-overlapping validation origins is ruled out


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


def n_blocks(v: int, H: int) -> int:
    """How many validation origins whose targets do not overlap (one every H steps) v origins hold."""
    return len(range(0, v, H))


def block_errors(y: np.ndarray, split: int, F: np.ndarray) -> np.ndarray:
    """(b,) MAE of the forecasts (v, H) from the validation origins split, split + H, ... of y
    (whose targets do not overlap), each over its steps whose target is known."""
    n, H = y.size, F.shape[1]
    rows = np.arange(0, n - split, H)
    idx = (split + rows)[:, None] + np.arange(H)[None, :]
    known = idx < n
    err = np.where(known, np.abs(y[np.minimum(idx, n - 1)] - F[rows]), 0.0)
    return err.sum(axis=1) / known.sum(axis=1)


def ruled_out(y: np.ndarray, split: int, Fs: list, live: list[int]) -> list[int]:
    """The members among ``live`` (indices into Fs, each with validation forecasts) that
    validation rules out against the best of them (module docstring)."""
    if len(live) < 2:
        return []
    if n_blocks(y.size - split, Fs[live[0]].shape[1]) < MIN_BLOCKS:
        return []
    blocks = np.array([block_errors(y, split, Fs[j]) for j in live])  # (L, b)
    total = member_errors(y, split, [Fs[j] for j in live])
    best = int(np.argmin(total))
    out = []
    for k, j in enumerate(live):
        d = blocks[k] - blocks[best]
        se = d.std(ddof=1) / np.sqrt(d.size)
        if total[k] > WORSE_RATIO * total[best] and d.mean() > WORSE_SE * se:
            out.append(j)
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
    """Combine member forecasts F (M, ...) with weights w (M,); members of weight 0 take no part
    (the median's too)."""
    part = w > 0
    if not part.any():
        raise ValueError("combine_forecasts: no member has a positive weight")
    if rule == "median":
        return np.median(F[part], axis=0)
    return np.tensordot(w[part] / w[part].sum(), F[part], axes=1)


def screened_weights(
    ys: list,
    splits: list,
    Fs: list,
    errors: np.ndarray,
    avail: np.ndarray,
    names: list,
    rule: str,
    shrinkage: float,
    pooled: bool,
) -> tuple[np.ndarray, list[str]]:
    """Weights (S, M) and what was done per series, with the benchmarks among ``names`` screened
    and the members validation rules out dropped (module docstring): ``Fs[i][j]`` member j's
    validation forecasts on series i (None: none)."""
    W, chosen = _screened(ys, splits, Fs, errors, avail, names, rule, shrinkage, pooled)
    for i, (y, s) in enumerate(zip(ys, splits)):
        live = [j for j in range(len(names)) if W[i, j] > 0 and Fs[i][j] is not None]
        out = ruled_out(y, s, Fs[i], live)
        if out:
            W[i, out] = 0.0
            W[i] /= W[i].sum()
            chosen[i] = f"{chosen[i]} without {', '.join(names[j] for j in out)}"
    return W, chosen


def _screened(ys, splits, Fs, errors, avail, names, rule, shrinkage, pooled) -> tuple[np.ndarray, list[str]]:
    """``screened_weights`` before members are ruled out: the benchmarks screened."""
    bench = np.array([n in BENCHMARKS for n in names], dtype=bool)
    if bench.all() or not bench.any():
        return member_weights(errors, avail, rule, shrinkage, pooled)
    base = np.flatnonzero(~bench)
    Wb, chosen = member_weights(errors[:, base], avail[:, base], rule, shrinkage, pooled)
    W = np.zeros(errors.shape)
    W[:, base] = Wb
    for i, (y, s) in enumerate(zip(ys, splits)):
        live = [k for k, j in enumerate(base) if Wb[i, k] > 0 and Fs[i][j] is not None]
        if not live or s >= y.size:
            continue
        C = combine_forecasts(np.array([Fs[i][base[k]] for k in live]), Wb[i, live], rule)
        if n_blocks(y.size - s, C.shape[1]) < MIN_BLOCKS:
            continue  # too short a validation part to judge a benchmark on: it stays out
        e_base = member_errors(y, s, [C])[0]
        joined = [j for j in np.flatnonzero(bench) if avail[i, j] and errors[i, j] < e_base]
        if joined:
            take = avail[i] & (~bench | np.isin(np.arange(bench.size), joined))
            W[i] = member_weights(errors[i : i + 1], take[None, :], rule, shrinkage, False)[0][0]
            chosen[i] = f"{chosen[i]} with {', '.join(names[j] for j in joined)}"
    return W, chosen


__all__ = [
    "BENCHMARKS",
    "COMBINATIONS",
    "MIN_BLOCKS",
    "WORSE_RATIO",
    "WORSE_SE",
    "block_errors",
    "n_blocks",
    "ruled_out",
    "member_errors",
    "member_weights",
    "combine_forecasts",
    "pooled_prior",
    "screened_weights",
]
