"""What the network sees: each series seasonally adjusted, on a log or linear scale, cut into
windows that are normalised to their own last value.

For a series y (n,), oldest first:

1. **Seasonality** (``models.seasonality``): divided by its multiplicative indices (positive
   series) or minus its additive ones, when the autocorrelation test finds a season.
2. **Scale**: ``x = log(y_sa)`` for a strictly positive series whose changes grow with its level
   (``"log"``: every change is relative), else ``x = y_sa`` (``"linear"``; a straight line stays
   straight).
3. **Windows**: for a cut point t (the history is x[:t]) the input is the last L points
   ``x[t-L:t] - x[t-1]`` and the targets are the next K points ``x[t:t+K] - x[t-1]``, both
   divided by the series' ``scale``. A window that reaches before the first point repeats the
   first point (so short series still give windows); targets past the end are masked out.

Normalising each window to its last value is what lets one network serve series of any level
(N-BEATS, ES-RNN); the log scale makes changes relative, so levels of 10 and 10,000 look alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import TRANSFORMS
from .errors import SeriesTooShort
from .seasonality import Seasonality, detect_period

# fit() refuses fewer points: two windows with a one-step target are the least to learn from.
MIN_LENGTH = 3


def as_series(y, min_length: int = MIN_LENGTH, what: str = "y") -> np.ndarray:
    """y as a 1-D float64 array; ValueError for a bad shape or non-finite values,
    SeriesTooShort below ``min_length``."""
    arr = np.asarray(y, dtype=np.float64)
    if arr.ndim != 1:
        arr = np.squeeze(arr)
        if arr.ndim != 1:
            raise ValueError(f"{what} must be one-dimensional, got shape {np.shape(y)}")
    if not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise ValueError(f"{what} contains {bad} NaN or infinite value(s); drop or fill them first")
    if arr.size < min_length:
        raise SeriesTooShort(
            f"series has {arr.size} point(s); the forecaster needs at least {min_length} (models.MIN_LENGTH)"
        )
    return arr


@dataclass(frozen=True)
class Prepared:
    """One series as the network sees it. ``x`` (n,) is seasonally adjusted and on the model's
    scale; ``scale`` divides every window (network units = x units / scale)."""

    x: np.ndarray
    season: Seasonality
    log: bool
    scale: float

    @property
    def n(self) -> int:
        return self.x.size

    def to_x(self, y: np.ndarray, start: int = 0) -> np.ndarray:
        """Values of y (positions start.. of the series) on the model's scale."""
        sa = self.season.remove(y, start)
        return np.log(sa) if self.log else sa

    def to_y(self, x: np.ndarray, start: int | None = None) -> np.ndarray:
        """Inverse of :meth:`to_x` for positions start.. (default: right after the series)."""
        sa = np.exp(x) if self.log else x
        return self.season.restore(sa, start)

    def values_at(self, x: np.ndarray, positions: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`to_x` for single values x at arbitrary positions (same shape)."""
        sa = np.exp(x) if self.log else x
        if not self.season.active:
            return sa
        f = self.season.indices[np.asarray(positions) % self.season.m]
        return sa * f if self.season.multiplicative else sa + f

    def meta(self) -> dict:
        return {"season": self.season.to_dict(), "log": self.log, "scale": self.scale}


class TailPrepared(Prepared):
    """A prepared series restored from bytes: only its tail is kept, ``n`` is its full length."""

    _n: int

    def __init__(self, x, season, log, scale, n):
        super().__init__(x, season, log, scale)
        object.__setattr__(self, "_n", n)

    @property
    def n(self) -> int:
        return self._n


# "auto" tests whether changes grow with the level only where the level varies by more than this
# factor (over a narrower range the two scales hardly differ) and where the series moves in a
# steady direction, its mean change at least STEADY times their standard deviation: there the
# scale decides between a trend extrapolated straight or compounded. A series that wanders (prices:
# a mean daily change of a few hundredths of its spread) keeps the log scale, where changes are
# relative whatever its volatility did meanwhile (calm years at high levels would read as "changes
# do not grow with the level").
LEVEL_RANGE = 2.0
STEADY = 0.5


def changes_grow_with_level(y: np.ndarray) -> bool:
    """Whether the size of one-step changes grows with the level, as in prices and most economic
    series (then changes are relative and the log scale fits), or stays the same, as in a straight
    line or a count rising by steady steps (then the linear scale fits); see LEVEL_RANGE and STEADY
    for the series that are not tested (and keep the log scale). The slope of log|change|
    on log level (Guerrero's regression behind the Box-Cox lambda, as a choice between lambda 0
    and 1) above 1/2 means growing. ``y`` strictly positive."""
    if float(np.max(y)) < LEVEL_RANGE * float(np.min(y)):
        return True
    steps = np.diff(y)
    if abs(float(np.mean(steps))) < STEADY * float(np.std(steps)):
        return True
    change = np.abs(steps)
    moved = change > 1e-9 * float(np.max(y))  # a step of no change carries no size
    if np.count_nonzero(moved) < 3:
        return True
    level, size = np.log(y[:-1][moved]), np.log(change[moved])
    spread = float(np.var(level))
    if spread == 0.0:
        return True
    slope = float(np.mean((level - level.mean()) * (size - size.mean()))) / spread
    return slope > 0.5


def resolve_transform(y: np.ndarray, requested: str) -> bool:
    """True for the log scale: ``"auto"`` chooses it for a strictly positive series whose changes
    grow with its level (``changes_grow_with_level``)."""
    if requested not in TRANSFORMS:
        raise ValueError(f"transform must be one of {TRANSFORMS}, got {requested!r}")
    positive = bool(np.all(y > 0))
    if requested == "log" and not positive:
        raise ValueError("transform='log' needs a strictly positive series")
    if requested == "auto":
        return positive and changes_grow_with_level(y)
    return requested == "log"


def series_scale(x: np.ndarray) -> float:
    """Mean absolute one-step change of x (the naive forecast's in-sample error): one unit of
    network input/output. 1.0 for a constant series, so that scaling stays finite."""
    if x.size < 2:
        return 1.0
    s = float(np.mean(np.abs(np.diff(x))))
    return s if np.isfinite(s) and s > 1e-12 * max(1.0, float(np.max(np.abs(x)))) else 1.0


# Interval widths follow the recent size of changes: an exponentially weighted mean of |change|
# over about this many points (volatility comes in spells; a calm year says little of a wild one).
SPREAD_SPAN = 30


def spread_path(x: np.ndarray) -> np.ndarray:
    """(n + 1,): element t is the exponentially weighted mean absolute change of x[:t] (span
    SPREAD_SPAN, weights normalised so early values are not biased), the local size of one-step
    changes at cut t. Before two points: the whole series' scale; never below a thousandth of it
    (which is positive: ``series_scale``)."""
    n = x.size
    scale = series_scale(x)
    out = np.full(n + 1, scale)
    if n < 3:
        return out
    a = 2.0 / (SPREAD_SPAN + 1.0)
    num = den = 0.0
    path = []
    for d in np.abs(np.diff(x)).tolist():  # d = |x[t-1] - x[t-2]|, t = 2..n; Python floats: same bits, 3x faster
        num = (1.0 - a) * num + d
        den = (1.0 - a) * den + 1.0
        path.append(num / den)
    out[2:] = path
    return np.maximum(out, 1e-3 * scale)


def prepare(y: np.ndarray, season_length: int, transform: str = "auto") -> Prepared:
    """Seasonal adjustment (``season_length`` 0: detect it, 1: none), scale and unit of y."""
    m = detect_period(y) if season_length == 0 else int(season_length)
    season = Seasonality.fit(y, m)
    log = resolve_transform(y, transform)
    sa = season.remove(y)
    if log and np.any(sa <= 0):  # cannot happen with positive y and positive indices; be safe
        season, sa = Seasonality(np.ones(1), y.size), y
    x = np.log(sa) if log else sa.copy()
    return Prepared(x, season, log, series_scale(x))


def cut_windows(
    x: np.ndarray, L: int, K: int, scale: float, cuts: np.ndarray, end: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows at the cut points ``cuts`` (1 <= t <= n) of x (n,).

    Returns X (N, L, 1) inputs, Y (N, K) targets (0 where masked) and M (N, K) the mask: 1.0
    where the target exists and lies before ``end`` (default n), else 0.0.
    """
    n = x.size
    end = n if end is None else end
    pad = np.concatenate([np.full(L, x[0]), x, np.full(K, np.nan)])  # (L + n + K,)
    rows = np.lib.stride_tricks.sliding_window_view(pad, L + K)[cuts]  # (N, L + K); row t covers x[t-L:t+K]
    last = rows[:, L - 1 : L]  # (N, 1) = x[t-1]
    X = (rows[:, :L] - last) / scale  # (N, L)
    Y = (rows[:, L:] - last) / scale  # (N, K)
    target_idx = cuts[:, None] + np.arange(K)  # (N, K) index into x
    M = (target_idx < end).astype(np.float64)
    return X[:, :, None], np.where(M > 0, Y, 0.0), M  # (N, L) -> (N, L, 1)


def last_window(x: np.ndarray, L: int, scale: float) -> np.ndarray:
    """The window after the last point: (L, 1) input for forecasting from the end of x."""
    tail = x[-L:] if x.size >= L else np.concatenate([np.full(L - x.size, x[0]), x])
    return ((tail - x[-1]) / scale)[:, None]


def split_point(n: int, val_fraction: float, min_train: int = 2) -> int:
    """The first index of the validation part: the last ``val_fraction`` of the cut points
    (at least one), or n (no validation) when fewer than ``min_train`` points would remain."""
    if val_fraction <= 0 or n < 2:
        return n
    v = max(1, int(round(val_fraction * (n - 1))))
    s = n - v
    return s if s >= min_train else n


def assemble(
    preps: list[Prepared], L: int, K: int, ranges: list[tuple[int, int, int]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Windows of many series stacked: ``ranges[i] = (first cut, last cut + 1, end)`` for
    series i. Returns X (N, L, 1), Y (N, K), M (N, K), owner (N,) series index, cut (N,) t."""
    parts, owners, cuts_all = [], [], []
    for i, (p, (lo, hi, end)) in enumerate(zip(preps, ranges)):
        cuts = np.arange(max(lo, 1), hi)
        if cuts.size == 0:
            continue
        parts.append(cut_windows(p.x, L, K, p.scale, cuts, end))
        owners.append(np.full(cuts.size, i))
        cuts_all.append(cuts)
    if not parts:
        empty = np.zeros((0, K))
        return np.zeros((0, L, 1)), empty, empty.copy(), np.zeros(0, int), np.zeros(0, int)
    X, Y, M = (np.concatenate(a) for a in zip(*parts))
    return X, Y, M, np.concatenate(owners), np.concatenate(cuts_all)
