"""Store stage: a fit's row with its loss history and forecasts, in one transaction (a crash leaves a
series either fully written or untouched). The row is written as the plan stage decided it; the
forecasts get their target dates from the series' frequency and trading calendar, and their
intervals the series' adaptive factor (run/adaptive.py)."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from .. import faults, schema
from ..clock import utcnow
from ..db import write_transaction
from ..frequencies import next_dates
from ..status import FitStatus
from .adaptive import adaptive_interval_factors, nest_interval, scale_interval
from .values import FitRecord, Forecast, GroupResult, ModelForecast, SeriesResult


def _finite(value):
    return value if value is None or (isinstance(value, (int, float)) and math.isfinite(value)) else None


BACKTEST_COLUMNS = ("mae", "rmse", "smape", "mase", "naive_mae", "naive_rmse", "naive_smape", "naive_mase")


def store_fit(
    engine: Engine, record: FitRecord, model: SeriesResult | GroupResult | None = None, forecast: Forecast | None = None
) -> int:
    """Insert one fits row in one transaction, and return its id. ``model``: the training result
    whose model the row holds (a series' own fit, or a group's shared fit): settings, weights,
    epochs and, for a successful fit, its loss history. ``forecast``: the series' backtest and,
    for a successful fit, its forecasts (replacing any made earlier from the same last observation):
    a series' own fit, or a group member's row."""
    now: datetime = utcnow()
    values: dict[str, object] = dict(
        run_id=record.run_id,
        series_id=record.series_id,
        created_at=now,
        status=record.status,
        error=record.error,
        mode=record.mode,
        warm_started_from=record.warm_started_from,
        cell=record.cell,
        settings_hash=record.settings_hash,
        train_start=record.train_start,
        train_end=record.train_end,
        n_obs=record.n_obs,
        scope=record.scope,
        group_key=record.group_key,
        group_fit_id=record.group_fit_id,
        n_series=record.n_series,
        note=record.note,
        backfill=int(record.backfill),
    )
    ok = record.status == FitStatus.OK
    if model is not None:
        history = model.history if ok else []
        values.update(
            hyperparams=model.params,
            cell=model.params.get("rnn", model.params).get("cell", record.cell),
            transform=model.transform,
            epochs=model.epochs,
            best_epoch=model.best_epoch,
            seconds=model.seconds,
            weights=model.blob if ok else None,
            train_loss=_finite(history[-1]["train_loss"]) if history else None,
            val_loss=_finite(history[-1].get("val_loss")) if history else None,
        )
        if record.status == FitStatus.FAILED and model.error:
            values["error"] = model.error
    if forecast is not None:
        bt = forecast.backtest
        skill = None
        if bt.get("naive_mae") and bt.get("mae") is not None:
            skill = 1.0 - bt["mae"] / bt["naive_mae"]
        values.update(
            backtest_n=int(bt["n"]) if bt.get("n") is not None else None,
            skill=_finite(skill),
            **{k: _finite(bt.get(k)) for k in BACKTEST_COLUMNS},
        )
        if forecast.transform is not None and model is None:  # a group member: its own scale
            values["transform"] = forecast.transform
        if forecast.combination is not None:
            values["combination"] = forecast.combination
    with write_transaction(engine) as conn:
        fit_id = conn.execute(sa.insert(schema.fits).values(**values).returning(schema.fits.c.id)).scalar_one()
        faults.reached("store-fit")
        if ok and model is not None and model.history:  # none without an RNN among the models
            conn.execute(
                sa.insert(schema.loss_history),
                [
                    dict(
                        fit_id=fit_id,
                        epoch=int(row["epoch"]),
                        train_loss=row["train_loss"],
                        val_loss=_finite(row.get("val_loss")),
                        grad_norm=_finite(row.get("grad_norm")),
                        clip_fraction=_finite(row.get("clip_fraction")),
                    )
                    for row in model.history
                ],
            )
            faults.reached("store-history")
        if ok and forecast is not None:
            _store_forecasts(conn, record, fit_id, forecast, now)
            faults.reached("store-forecasts")
    return fit_id


def _store_forecasts(conn, record: FitRecord, fit_id: int, forecast: Forecast, now: datetime) -> None:
    """The published forecast and each combined model's own, at every level: one row per model,
    step and level, replacing whatever was stored for the same origin."""
    assert record.series_id is not None and record.train_end is not None  # a series' row, with data
    conn.execute(
        sa.delete(schema.forecasts).where(
            schema.forecasts.c.series_id == record.series_id, schema.forecasts.c.origin_ts == record.train_end
        )
    )
    steps = min(record.horizon or len(forecast.point), len(forecast.point))  # a group may forecast further
    targets = next_dates(record.train_end, record.frequency, steps, record.calendar)
    models = {schema.PUBLISHED: ModelForecast(forecast.point, forecast.intervals), **forecast.members}
    levels = sorted(record.levels)
    factors = adaptive_interval_factors(
        conn,
        record.series_id,
        record.train_end,
        record.interval_adapt_rate,
        [(name, level) for name in models for level in levels],
    )
    rows = []
    for name, made in models.items():
        point = np.asarray(made.point[:steps])
        inner: tuple[np.ndarray, np.ndarray] | None = None
        for level in levels:
            lo, hi = made.intervals[level]
            factor = factors[(name, level)]
            lower, upper = scale_interval(point, np.asarray(lo[:steps]), np.asarray(hi[:steps]), factor)
            if inner is not None:  # each level's factor learns alone: keep a wider level around a narrower
                lower, upper = nest_interval(lower, upper, *inner)
            inner = (lower, upper)
            rows += [
                dict(
                    series_id=record.series_id,
                    origin_ts=record.train_end,
                    model=name,
                    step=step,
                    level=level,
                    fit_id=fit_id,
                    target_ts=target,
                    value=float(value),
                    lower=float(low),
                    upper=float(high),
                    interval_factor=factor,
                    backfilled=int(record.backfill),
                    created_at=now,
                )
                for step, (target, value, low, high) in enumerate(zip(targets, point, lower, upper), 1)
            ]
    conn.execute(sa.insert(schema.forecasts), rows)
