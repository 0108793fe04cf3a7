"""The validation protocol every challenger and the combination share: where a series is split,
from which origins it is forecast, and how far ahead.

A model is fitted on ``y[:split]`` only; then, with its parameters fixed, it forecasts ``horizon``
steps from every origin t in ``split .. n-1`` (the history ``y[:t]``; targets past the end are
unknown, NaN). Those forecasts are the honest errors the combination weights and the conformal
intervals learn from. Then every model is fitted again on all of ``y`` for the forecast.
"""

from __future__ import annotations

import numpy as np

# The validation part: a fifth of the series, at least a forecast horizon, at most MAX_ORIGINS.
VAL_FRACTION = 0.2
MAX_ORIGINS = 150
# Points a model is fitted on, at least (and three seasons where the series leaves four origins).
MIN_TRAIN = 6


# A final fit continues the validation fit instead of starting again when that fit saw at least
# this share of the series (series longer than 1,500 points, whose validation part is capped at
# MAX_ORIGINS): on so nearly the same data a second search, or a second training from scratch, is
# mostly spent finding the same thing. Shorter series are fitted again from scratch: on M3
# (validation parts of a fifth) the statistical models chosen on all of each series are better.
REFIT_SHARE = 0.9


def continues_validation(split: int, n: int) -> bool:
    """Whether the final fit of a series of n points whose validation fit saw ``split`` of them
    continues that fit (see REFIT_SHARE)."""
    return split < n and split >= REFIT_SHARE * n


def default_horizon(season_length: int) -> int:
    """How far ahead validation forecasts reach: a season and a half, at least 8, at most 48
    (the RNN's read-out length K uses the same rule)."""
    return max(8, min(round(1.5 * max(int(season_length), 1)), 48))


def split_point(n: int, season_length: int, horizon: int) -> int:
    """The first validation origin; ``n`` when the series is too short to hold anything out."""
    m = max(int(season_length), 1)
    v = min(max(round(VAL_FRACTION * n), horizon), MAX_ORIGINS)
    floor = max(MIN_TRAIN, min(3 * m, n - 4))
    return int(min(max(n - v, floor), n))


def actuals(y: np.ndarray, split: int, horizon: int) -> np.ndarray:
    """(v, horizon) targets of the origins split..n-1: ``A[i, k] = y[split + i + k]``, NaN past
    the end of the series."""
    n = y.size
    idx = np.arange(split, n)[:, None] + np.arange(horizon)[None, :]  # (v, H)
    return np.where(idx < n, y[np.minimum(idx, n - 1)], np.nan)


__all__ = [
    "default_horizon", "split_point", "actuals", "continues_validation",
    "VAL_FRACTION", "MIN_TRAIN", "MAX_ORIGINS", "REFIT_SHARE",
]  # fmt: skip
