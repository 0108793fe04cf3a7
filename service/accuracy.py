"""The realised-accuracy ledger as ``tickcast accuracy`` and ``tickcast plot`` show it: plain SELECTs
on the views of migration 0003 (``forecast_errors``, ``forecast_accuracy``,
``forecast_accuracy_monthly``), the same ones a person would type.

Units: ``mape_pct`` is in percent; ``skill``, ``coverage`` and ``level`` are fractions; MAE, RMSE and
the Winkler score are in the series' own units.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from . import schema
from .queries import RUN_FIRST, NothingStored, resolve_series

SCORES = ["n", "mae", "rmse", "mape_pct", "naive_mae", "skill", "coverage", "winkler"]
BY = {"step": ["series_key", "step", "level", *SCORES], "month": ["series_key", "month", "level", *SCORES]}


def accuracy(engine: Engine, key: str | None = None, by: str = "step") -> tuple[list[dict], list[str]]:
    """Rows of ``forecast_accuracy`` (``by="step"``) or ``forecast_accuracy_monthly`` (``by="month"``),
    for one series or all, and the columns to show. Raises NothingStored while nothing is scored."""
    view = schema.forecast_accuracy if by == "step" else schema.forecast_accuracy_monthly
    series = resolve_series(engine, key) if key is not None else None
    query = sa.select(view).order_by(view.c.series_key, view.c[by], view.c.level)
    if series is not None:
        query = query.where(view.c.series_key == series.key)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
    if not rows:
        raise NothingStored(not_scored_yet(engine, series))
    return rows, BY[by]


def not_scored_yet(engine: Engine, series: sa.Row | None) -> str:
    """Why nothing is scored: no forecasts at all, or none whose target date has an actual yet."""
    forecasts = schema.forecasts.c
    query = sa.select(sa.func.min(forecasts.target_ts))
    if series is not None:
        query = query.where(forecasts.series_id == series.id)
    with engine.connect() as conn:
        first_target = conn.execute(query).scalar()
    whose = f" of {series.key}" if series is not None else ""
    if first_target is None:
        return f"no forecasts{whose} yet: {RUN_FIRST}"
    return (
        f"no forecast{whose} has been scored yet: a forecast is scored once the value of its target date is "
        f"ingested (the first target date is {first_target})"
    )


def scored_forecasts(engine: Engine, series_id: int, limit: int = 500) -> list[dict]:
    """The series' newest ``limit`` scored forecasts (rows of ``forecast_errors``), oldest target first."""
    view = schema.forecast_errors
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(view)
            .where(view.c.series_id == series_id)
            .order_by(view.c.target_ts.desc(), view.c.step)
            .limit(limit)
        ).all()
    return [dict(r._mapping) for r in reversed(rows)]
