"""The realised-accuracy ledger as ``tickcast accuracy`` and ``tickcast plot`` show it: plain SELECTs
on the views of migrations 0003 and 0006 (``forecast_errors``, ``forecast_accuracy``,
``forecast_accuracy_monthly``), the same ones a person would type. Every model's forecasts are
scored: the published one (``model = 'published'``, what tickcast shows by default) and each model
it combines, so ``--by model`` says which wins on a series.

Units: ``mape_pct`` is in percent; ``skill``, ``coverage`` and ``level`` are fractions; MAE, RMSE and
the Winkler score are in the series' own units.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from . import schema
from .queries import RUN_FIRST, NothingStored, resolve_series

SCORES = ["n", "mae", "rmse", "mape_pct", "naive_mae", "skill", "coverage", "winkler"]
BY = {
    "step": ["series_key", "model", "step", "level", *SCORES],
    "month": ["series_key", "model", "month", "level", *SCORES],
    "model": ["series_key", "model", "level", *SCORES],
}
ALL_MODELS = "all"


def accuracy(
    engine: Engine, key: str | None = None, by: str = "step", model: str | None = None
) -> tuple[list[dict], list[str]]:
    """Scores per series and step (``forecast_accuracy``), target month (``forecast_accuracy_monthly``)
    or model (every step together), for one series or all, and the columns to show. ``model``: the
    published forecast's (None), one model's, or ``"all"``; ``by="model"`` shows every model.
    Raises NothingStored while nothing is scored."""
    series = resolve_series(engine, key) if key is not None else None
    if by == "model":
        view = schema.forecast_errors
        scores = [sa.func.count().label("n"), *(_score(view, name) for name in SCORES[1:])]
        query = (
            sa.select(view.c.series_key, view.c.model, view.c.level, *scores)
            .group_by(view.c.series_key, view.c.model, view.c.level)
            .order_by(view.c.series_key, view.c.level, sa.literal_column("mae"))
        )
        model = model or ALL_MODELS
    else:
        view = schema.forecast_accuracy if by == "step" else schema.forecast_accuracy_monthly
        query = sa.select(view).order_by(view.c.series_key, view.c.model, view.c[by], view.c.level)
    if series is not None:
        query = query.where(view.c.series_key == series.key)
    if (model or schema.PUBLISHED) != ALL_MODELS:
        query = query.where(view.c.model == (model or schema.PUBLISHED))
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
    if not rows:
        raise NothingStored(not_scored_yet(engine, series))
    return rows, BY[by]


def _score(view, name: str):
    """One score of the ledger's aggregates (migration 0003's SQL), over the rows grouped."""
    c = view.c
    if name == "rmse":
        return sa.func.sqrt(sa.func.avg(c.error * c.error)).label(name)
    if name == "skill":
        naive = sa.func.avg(c.naive_abs_error)
        return sa.case((naive > 0, 1 - sa.func.avg(c.abs_error) / naive)).label(name)
    columns = {"mae": c.abs_error, "mape_pct": c.ape_pct, "naive_mae": c.naive_abs_error, "coverage": c.inside}
    return sa.func.avg(columns[name] if name in columns else c[name]).label(name)


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
    """The series' newest ``limit`` scored forecasts (rows of ``forecast_errors``: the published
    forecast, its first interval level), oldest target first."""
    view = schema.forecast_errors
    first_level = sa.select(sa.func.min(view.c.level)).where(view.c.series_id == series_id).scalar_subquery()
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(view)
            .where(view.c.series_id == series_id, view.c.model == schema.PUBLISHED, view.c.level == first_level)
            .order_by(view.c.target_ts.desc(), view.c.step)
            .limit(limit)
        ).all()
    return [dict(r._mapping) for r in reversed(rows)]
