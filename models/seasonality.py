"""Classical multiplicative seasonality: the test, the indices, and the way out and back.

The M3/M4 practice (and what separates Naive2 from naive): a series of period ``m`` is treated
as seasonal when its autocorrelation at lag ``m`` passes a 90 % test,
``|r_m| > 1.645 * sqrt((1 + 2 * sum_{k<m} r_k^2) / n)``; its seasonal indices are then the mean,
per position in the season, of the ratios of the series to its centred moving average,
normalised to average 1. Dividing by the indices deseasonalises; multiplying reseasonalises.
A series with values <= 0 gets additive indices instead (differences from the moving average,
mean 0), subtracted and added back.

The yearly period of weekly data (52) must pass the same test a second time, on the series
detrended by its centred moving average: on hundreds of points the autocorrelation of the
levels at lag 52 is mostly trend (weekly prices passed in 16 of 119 windows:
bench/results/weekly-accuracy.md), and a year is not a whole number of weeks, so 52 indices
estimated on noise cost a forecast what they never explain. The hourly week (168) keeps the
levels test: its daily cycle raises the test's limit on the detrended series past what a clear
weekly pattern reaches (on M4's hourly sample DOTM went from 10.1 to 26.3: models/README.md), and
``AutoForecaster`` takes it only where it repeats the series clearly better than the day. The
M4 benchmarks (Naive2, Theta) keep the test on the levels alone (``m4_test``).

When the period is not known, :func:`detect_period` tries the usual ones (4, 5, 7, 12, 24, 52)
with the same test on the differenced series (so that a trend or a random walk does not pass
for seasonality) and returns the strongest that passes.
"""

from __future__ import annotations

import numpy as np

# One-sided 90 % normal quantile of the M3/M4 seasonality test.
Z90 = 1.645


def acf(y: np.ndarray, k: int) -> float:
    """Sample autocorrelation of y (n,) at lag k (0.0 for a constant series)."""
    y = np.asarray(y, dtype=np.float64)
    d = y - np.mean(y)  # the mean of the float64 values (of float32 input, np.mean would be float32)
    denom = d @ d  # (n,) @ (n,) -> ()
    return float(d[k:] @ d[: d.size - k] / denom) if denom > 0 and k < d.size else 0.0


# Periods tried by detect_period, and the stricter quantile it uses for trying several.
CANDIDATE_PERIODS = (4, 5, 7, 12, 24, 52)
Z_DETECT = 2.326


def _acf_test(y: np.ndarray, m: int, z: float) -> float | None:
    """r_m if it passes ``|r_m| > z * sqrt((1 + 2 sum_{k<m} r_k^2) / n)``, else None."""
    r = np.array([acf(y, k) for k in range(1, m + 1)])  # r_1 .. r_m
    limit = z * np.sqrt((1.0 + 2.0 * np.sum(r[:-1] ** 2)) / y.size)
    return float(r[-1]) if abs(r[-1]) > limit else None


# Periods also tested on the detrended series: the yearly one of weekly data.
DETRENDED_TEST_PERIODS = (52,)


def is_seasonal(y: np.ndarray, m: int, m4_test: bool = False) -> bool:
    """The 90 % autocorrelation test at lag ``m``; False for m <= 1 and for fewer than three
    full seasons (too little to estimate indices from). A period of ``DETRENDED_TEST_PERIODS``
    must also pass it on the series detrended by its centred moving average (log ratios to it,
    or differences from it for a series with values <= 0), unless ``m4_test`` (the M4
    benchmarks' rule: the levels alone)."""
    y = np.asarray(y, dtype=np.float64)
    if m <= 1 or y.size < 3 * m or np.ptp(y) == 0:
        return False
    if _acf_test(y, m, Z90) is None:
        return False
    if m4_test or m not in DETRENDED_TEST_PERIODS:
        return True
    cma = centred_moving_average(y, m)
    inside = ~np.isnan(cma)
    detrended = np.log(y[inside] / cma[inside]) if np.all(y > 0) else y[inside] - cma[inside]
    return np.ptp(detrended) > 0 and _acf_test(detrended, m, Z90) is not None


def detect_period(y: np.ndarray) -> int:
    """The seasonal period of a series whose frequency is unknown: the candidate with the largest
    positive autocorrelation of the (log-)differenced series that passes the test at 99 %
    (several periods are tried, hence the stricter level); 1 when none does."""
    y = np.asarray(y, dtype=np.float64)
    d = np.diff(np.log(y)) if np.all(y > 0) else np.diff(y)
    best, best_r = 1, 0.0
    for m in CANDIDATE_PERIODS:
        if d.size < 3 * m or np.ptp(d) == 0:
            continue
        r = _acf_test(d, m, Z_DETECT)
        if r is not None and r > best_r:
            best, best_r = m, r
    return best


def centred_moving_average(y: np.ndarray, m: int) -> np.ndarray:
    """The centred moving average of period m (2 x m for even m), NaN where it is undefined."""
    n = y.size
    out = np.full(n, np.nan)
    c = np.concatenate([[0.0], np.cumsum(y)])
    ma = (c[m:] - c[:-m]) / m  # (n - m + 1,) plain m-MA
    if m % 2:
        out[m // 2 : n - m // 2] = ma
    else:
        out[m // 2 : n - m // 2] = 0.5 * (ma[:-1] + ma[1:])  # 2 x m: centred on a point
    return out


def seasonal_indices(y: np.ndarray, m: int, multiplicative: bool = True, m4_test: bool = False) -> np.ndarray:
    """Indices (m,), position i for the points y[i::m]: ratios to the centred moving average
    (mean 1) or, additive, differences from it (mean 0). Neutral (ones or zeros) when the series
    fails the seasonality test (``is_seasonal``, with its ``m4_test``)."""
    y = np.asarray(y, dtype=np.float64)
    neutral = np.ones(max(int(m), 1)) if multiplicative else np.zeros(max(int(m), 1))
    if not is_seasonal(y, m, m4_test):
        return neutral
    cma = centred_moving_average(y, m)  # NaN at both ends
    if multiplicative:
        ratio = y / cma
        si = np.array([np.nanmean(ratio[i::m]) for i in range(m)])
        return si / si.mean()
    diff = y - cma
    si = np.array([np.nanmean(diff[i::m]) for i in range(m)])
    return si - si.mean()


class Seasonality:
    """Fitted indices of one series: ``remove`` before a model, ``restore`` after it. Positions
    count from the first point of the fitted series (index 0)."""

    def __init__(self, indices: np.ndarray, n: int, multiplicative: bool = True):
        self.indices = np.asarray(indices, dtype=np.float64)  # (m,)
        self.n = int(n)  # length of the fitted series
        self.multiplicative = bool(multiplicative)

    @classmethod
    def fit(cls, y: np.ndarray, m: int, m4_test: bool = False) -> Seasonality:
        """Multiplicative indices for a positive series, additive otherwise (``m4_test``: the
        M4 benchmarks' seasonality test, see ``is_seasonal``)."""
        y = np.asarray(y, dtype=np.float64)
        multiplicative = bool(np.all(y > 0))
        return cls(seasonal_indices(y, m, multiplicative, m4_test), y.size, multiplicative)

    @property
    def m(self) -> int:
        return self.indices.size

    @property
    def active(self) -> bool:
        return bool(np.any(self.indices != (1.0 if self.multiplicative else 0.0)))

    def factors(self, start: int, length: int) -> np.ndarray:
        """Indices for positions start .. start+length-1 of the series (negative: before it)."""
        return self.indices[np.arange(start, start + length) % self.m]

    def remove(self, y: np.ndarray, start: int = 0) -> np.ndarray:
        """Deseasonalise y whose first point is position ``start`` of the fitted series."""
        y = np.asarray(y, dtype=np.float64)
        if not self.active:
            return y
        f = self.factors(start, y.shape[-1])
        return y / f if self.multiplicative else y - f

    def restore(self, values: np.ndarray, start: int | None = None) -> np.ndarray:
        """Reseasonalise values (..., k) at positions start.. (default: right after the fitted
        series)."""
        if not self.active:
            return values
        f = self.factors(self.n if start is None else start, values.shape[-1])
        return values * f if self.multiplicative else values + f

    def to_dict(self) -> dict:
        return {"indices": [float(v) for v in self.indices], "n": self.n, "multiplicative": self.multiplicative}

    @classmethod
    def from_dict(cls, d: dict) -> Seasonality:
        return cls(np.array(d["indices"], dtype=np.float64), d["n"], d["multiplicative"])
