"""Backfill: the forecasts the service would have published at past origins, so that the ledger
(``forecast_errors``, ``tickcast accuracy``, the plot) shows realised accuracy from day one.

For each series, origins step back from the newest one whose every target has an actual (the last
observation minus one horizon), one horizon apart: ``origins`` of them, or every one since a date.
At each origin the series' own published forecaster is trained cold on the data up to the origin
and nothing after it (``max_points`` observations at most, as a run would), and its forecasts are
stored as usual, marked ``backfilled`` (``fits.backfill``: such a fit is never a series' newest fit,
nor continued). An origin already stored is skipped: a backfill can be repeated or resumed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tickcast.models import MIN_LENGTH

from .. import schema
from ..errors import TickcastError
from ..frequencies import horizon, season_length
from ..settings import SeriesSpec, Settings
from ..stamps import as_datetime, canonical
from ..status import FitMode, FitStatus, SeriesFit
from .plan import Plan
from .values import FitRecord, SeriesTask, forecaster_params, series_hash

MAX_ORIGINS = 1000  # per series: a typo (1e6) would otherwise train for days


@dataclass(frozen=True)
class Backfill:
    """Which past origins: the newest ``origins`` (one horizon apart), or every one since ``since``."""

    origins: int | None = None
    since: date | None = None

    def __post_init__(self):
        if (self.origins is None) == (self.since is None):
            raise TickcastError("backfill needs --origins N or --since DATE (one of them)")
        if self.origins is not None and not 1 <= self.origins <= MAX_ORIGINS:
            raise TickcastError(f"--origins must be between 1 and {MAX_ORIGINS}, got {self.origins}")


def backfill_plans(
    engine: Engine, settings: Settings, specs: list[SeriesSpec], run_id: int, request: Backfill, stop: threading.Event
) -> list[Plan]:
    """A plan per series and past origin, oldest origin first within a series (so that each
    origin's adaptive interval factor learns from the ones before it)."""
    series = schema.series.c
    with engine.connect() as conn:
        rows = {r.key: r for r in conn.execute(sa.select(series.id, series.key, series.frequency, series.calendar))}
    plans: list[Plan] = []
    for spec in specs:
        if stop.is_set():
            break
        if spec.key in rows:
            plans += _series_plans(engine, settings, spec, rows[spec.key], run_id, request)
    return plans


def _series_plans(engine: Engine, settings: Settings, spec: SeriesSpec, row, run_id: int, request: Backfill) -> list:
    obs, forecasts = schema.observations.c, schema.forecasts.c
    with engine.connect() as conn:
        observed = conn.execute(sa.select(obs.ts, obs.value).where(obs.series_id == row.id).order_by(obs.ts)).all()
        done = set(
            conn.execute(
                sa.select(forecasts.origin_ts)
                .where(forecasts.series_id == row.id, forecasts.model == schema.PUBLISHED)
                .distinct()
            ).scalars()
        )
    dates = [canonical(r.ts) for r in observed]
    values = [float(r.value) for r in observed]
    h = horizon(row.frequency, spec.horizon, settings.forecast.horizon)
    minimum = max(settings.forecast.min_length, MIN_LENGTH)
    newest = len(dates) - 1 - h  # the newest origin whose every target is observed
    origins = []
    for i in range(newest, minimum - 2, -h):
        if request.since is not None and as_datetime(dates[i]) < as_datetime(request.since):
            break
        origins.append(i)
        if request.origins is not None and len(origins) == request.origins:
            break
    done_dates = {canonical(d) for d in done}
    season = season_length(row.frequency, spec.season_length)
    params = forecaster_params(settings.model, spec.key, season, h)
    fingerprint = series_hash(params, settings.model, settings.forecast, h)
    plans = []
    for i in sorted(origins):
        if dates[i] in done_dates:
            continue
        first = max(0, i + 1 - settings.model.max_points)
        record = FitRecord(
            run_id=run_id,
            series_id=row.id,
            status=FitStatus.OK,
            settings_hash=fingerprint,
            mode=FitMode.COLD,
            cell=settings.model.forecaster.cell,
            train_start=dates[first],
            train_end=dates[i],
            n_obs=i + 1 - first,
            frequency=row.frequency,
            calendar=row.calendar,
            levels=settings.forecast.levels,
            interval_adapt_rate=settings.forecast.interval_adapt_rate,
            horizon=h,
            backfill=True,
        )
        task = SeriesTask(
            key=spec.key,
            series_id=row.id,
            values=np.array(values[first : i + 1], dtype=np.float64),  # up to the origin: no look-ahead
            params=params,
            horizon=h,
            levels=settings.forecast.levels,
            members=settings.model.members,
        )
        plans.append(Plan(spec, row.id, record, SeriesFit.TRAINED, task))
    return plans
