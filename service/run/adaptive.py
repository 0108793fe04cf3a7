"""Adaptive intervals: realised coverage fed back into the width of new intervals.

The model's intervals come from its validation residuals; when the world changes they can cover
far less (or more) than their nominal level. Adaptive conformal inference (Gibbs & Candès, 2021)
corrects that online from the outcomes themselves: after each scored forecast, move the interval
by ``rate x (miss - (1 - level))``: widen after a miss, narrow a little after a hit, so that in the
long run the misses settle at the nominal 1 - level whatever the model does.

Here the adjustment is a factor on the model's interval half-widths, one per series, recorded on
every stored forecast (``forecasts.interval_factor``). When a series' forecasts from origin ``O``
are stored, and its previous forecasts (the newest origin ``P`` before ``O``) used factor ``f``:

    f_new = clip(f x exp(rate x sum over scored forecasts with target in (P, O] of (level - inside)), 1/4, 4)

``inside`` is 1 when the actual fell inside the interval *as stored*, so the factor corrects itself:
each scored forecast of the series counts exactly once (its target date lies in one (P, O] span),
and the factor only drifts far from 1 while realised coverage stays far from nominal. Deterministic
from the tables: re-storing the same origin gives the same factor. The bounds keep one bad spell
from making intervals useless (or vanishing).
"""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .. import schema
from ..stamps import as_datetime

FACTOR_BOUNDS = (0.25, 4.0)


def adaptive_interval_factor(
    conn: Connection, series_id: int, origin: date, rate: float, model: str, level: float
) -> float:
    """The factor for the ``level`` interval of ``model``'s forecasts of ``series_id`` from ``origin``
    (1 with ``rate`` 0 or no earlier such forecasts): each model's intervals at each level learn
    from their own misses."""
    return adaptive_interval_factors(conn, series_id, origin, rate, [(model, level)])[(model, level)]


def adaptive_interval_factors(
    conn: Connection, series_id: int, origin: date, rate: float, keys: list[tuple[str, float]]
) -> dict[tuple[str, float], float]:
    """:func:`adaptive_interval_factor` for several (model, level) pairs of one series and origin in
    three queries, whatever their number (a series stores four models at two levels: eight factors)."""
    out = {key: 1.0 for key in keys}
    if rate == 0 or not keys:
        return out
    f, errors = schema.forecasts.c, schema.forecast_errors.c
    newest = sa.func.max(f.origin_ts)
    previous = {
        (row.model, row.level): row.origin
        for row in conn.execute(
            sa.select(f.model, f.level, newest.label("origin"))
            .where(f.series_id == series_id, f.origin_ts < origin)
            .group_by(f.model, f.level)
        )
        if (row.model, row.level) in out
    }
    if not previous:
        return out
    factors = {
        (row.model, row.level, row.origin_ts): row.factor
        for row in conn.execute(
            sa.select(f.model, f.level, f.origin_ts, sa.func.max(f.interval_factor).label("factor"))
            .where(f.series_id == series_id, f.origin_ts.in_(sorted(set(previous.values()), key=as_datetime)))
            .group_by(f.model, f.level, f.origin_ts)
        )
    }
    by_origin: dict[date, list[tuple[str, float]]] = {}
    for key, since in previous.items():
        by_origin.setdefault(since, []).append(key)
    for since, group in by_origin.items():  # usually one: every model was stored at the same origins
        excess = {
            (row.model, row.level): float(row.excess)
            for row in conn.execute(
                sa.select(errors.model, errors.level, sa.func.sum(errors.level - errors.inside).label("excess"))
                .where(
                    errors.series_id == series_id,
                    errors.model.in_(sorted({m for m, _ in group})),
                    errors.level.in_(sorted({lv for _, lv in group})),
                    errors.target_ts > since,
                    errors.target_ts <= origin,
                )
                .group_by(errors.model, errors.level)
            )
        }
        for key in group:
            factor = factors[(*key, since)] * math.exp(rate * excess.get(key, 0.0))
            out[key] = float(min(max(factor, FACTOR_BOUNDS[0]), FACTOR_BOUNDS[1]))
    return out


def scale_interval(
    point: np.ndarray, lower: np.ndarray, upper: np.ndarray, factor: float
) -> tuple[np.ndarray, np.ndarray]:
    """Each side of the interval scaled by ``factor`` around the point forecast (shapes (h,))."""
    point, lower, upper = (np.asarray(a, dtype=np.float64) for a in (point, lower, upper))
    return point - factor * (point - lower), point + factor * (upper - point)


def nest_interval(
    lower: np.ndarray, upper: np.ndarray, inner_lower: np.ndarray, inner_upper: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A higher level's interval widened, where needed, to contain a lower level's (``inner``): each
    level's factor adapts on its own misses, so after a run of misses the 80 % interval may have
    grown past the 95 % one; an interval of higher coverage is never the narrower."""
    return np.minimum(lower, inner_lower), np.maximum(upper, inner_upper)
