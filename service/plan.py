"""Plan stage: decide what a run does with each series, from what the tables hold after ingest.

A series is skipped (nothing stored yet, or too short to train), left alone (its newest observation
and settings already have a fit: "up to date"), or trained: cold (from scratch) the first time,
after a settings change, after its history was replaced (a fit marked ``history_replaced_at`` is on
the old basis: never continued, never "up to date") and every ``model.full_retrain_days``; warm
(fine-tuned from its newest fit) in between. The state of every series' fits is read once, in a few grouped queries; each
series' observations and, for a warm start, the weights it continues from are read once, as that
series is planned.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from . import faults, schema
from .config import SeriesSpec, Settings
from .forecast import FitRecord
from .status import FitMode, FitStatus, SeriesFit
from .train import TrainTask, model_params, settings_hash

NO_DATA = "no observations stored yet"


@dataclass
class Plan:
    spec: SeriesSpec
    series_id: int
    record: FitRecord  # the fit row this run writes for the series (if any)
    action: SeriesFit  # TRAINED: train ``task``; UP_TO_DATE; SKIPPED (the reason in record.error)
    task: TrainTask | None = None

    @property
    def records_skip(self) -> bool:
        """A series too short to train gets a 'skipped' fit row with the reason, once per newest
        observation; one with nothing stored at all gets none."""
        return self.action == SeriesFit.SKIPPED and bool(self.record.n_obs)


@dataclass(frozen=True)
class _FitState:
    """What the fits table says about one series."""

    latest_status: str | None = None  # of its newest fit, whatever its settings
    latest_train_end: date | None = None
    latest_hash: str | None = None
    latest_replaced: bool = False  # its history was replaced after the newest fit
    base_id: dict[str, int] = field(default_factory=dict)  # settings hash -> its newest successful fit
    last_cold: dict[str, date] = field(default_factory=dict)  # settings hash -> newest successful cold fit's train_end


def _fit_states(conn: Connection) -> dict[int, _FitState]:
    """The fits of every series, summarised by two grouped queries (not three queries per series)."""
    fits = schema.fits.c
    newest = sa.select(sa.func.max(fits.id)).group_by(fits.series_id).scalar_subquery()
    latest = {row.series_id: row for row in conn.execute(
        sa.select(fits.series_id, fits.status, fits.train_end, fits.settings_hash, fits.history_replaced_at)
        .where(fits.id.in_(newest)))}
    base: dict[int, dict[str, int]] = {}
    cold: dict[int, dict[str, date]] = {}
    for row in conn.execute(
            sa.select(fits.series_id, fits.settings_hash, sa.func.max(fits.id).label("base_id"),
                      sa.func.max(sa.case((fits.mode == FitMode.COLD, fits.train_end))).label("last_cold"))
            .where(fits.status == FitStatus.OK, fits.history_replaced_at.is_(None))
            .group_by(fits.series_id, fits.settings_hash)):
        base.setdefault(row.series_id, {})[row.settings_hash] = row.base_id
        if row.last_cold is not None:
            cold.setdefault(row.series_id, {})[row.settings_hash] = _as_date(row.last_cold)
    states = {}
    for series_id in set(latest) | set(base):
        newest_fit = latest.get(series_id)
        states[series_id] = _FitState(
            latest_status=newest_fit.status if newest_fit else None,
            latest_train_end=newest_fit.train_end if newest_fit else None,
            latest_hash=newest_fit.settings_hash if newest_fit else None,
            latest_replaced=newest_fit is not None and newest_fit.history_replaced_at is not None,
            base_id=base.get(series_id, {}), last_cold=cold.get(series_id, {}))
    return states


def _as_date(value) -> date:
    # SQLite hands max() over a CASE back as the stored ISO text
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _load_values(conn: Connection, series_id: int, max_points: int) -> tuple[list[date], np.ndarray]:
    obs = schema.observations.c
    rows = conn.execute(sa.select(obs.ts, obs.value).where(obs.series_id == series_id)
                        .order_by(obs.ts.desc()).limit(max_points)).all()
    rows.reverse()
    return [r.ts for r in rows], np.array([r.value for r in rows], dtype=np.float64)


def plan_series(engine: Engine, settings: Settings, specs: list[SeriesSpec], run_id: int,
                stop: threading.Event) -> list[Plan]:
    """One plan per series of ``specs``, in their order; on ``stop`` the series not planned yet are
    left out. Reads only: the store stage writes."""
    with engine.connect() as conn:
        series = {row.key: row for row in conn.execute(
            sa.select(schema.series.c.id, schema.series.c.key, schema.series.c.frequency,
                      schema.series.c.calendar))}
        states = _fit_states(conn)
    plans = []
    for spec in specs:
        if stop.is_set():
            break
        faults.reached("plan")
        row = series[spec.key]
        plans.append(_plan_one(engine, settings, spec, row, states.get(row.id, _FitState()), run_id))
    return plans


def _plan_one(engine: Engine, settings: Settings, spec: SeriesSpec, series: sa.Row, state: _FitState,
              run_id: int) -> Plan:
    from tickcast.models import MIN_LENGTH

    model = settings.model
    fingerprint = settings_hash(settings, spec.key)
    series_id = series.id
    with engine.connect() as conn:  # a short read per series: no snapshot held across the stage
        dates, values = _load_values(conn, series_id, model.max_points)
        record = FitRecord(run_id=run_id, series_id=series_id, status=FitStatus.OK, settings_hash=fingerprint,
                           cell=model.cell, train_start=dates[0] if dates else None,
                           train_end=dates[-1] if dates else None, n_obs=len(values), frequency=series.frequency,
                           calendar=series.calendar, level=settings.forecast.level,
                           interval_adapt_rate=settings.forecast.interval_adapt_rate)
        minimum = max(settings.forecast.min_length, MIN_LENGTH)
        if not len(values):
            record.status, record.error = FitStatus.SKIPPED, NO_DATA
            return Plan(spec, series_id, record, SeriesFit.SKIPPED)
        if (state.latest_hash == fingerprint and state.latest_train_end == record.train_end
                and state.latest_status in (FitStatus.OK, FitStatus.SKIPPED) and not state.latest_replaced):
            return Plan(spec, series_id, record, SeriesFit.UP_TO_DATE)
        if len(values) < minimum:
            record.status = FitStatus.SKIPPED
            record.error = f"too short to train: {len(values)} observation(s), the minimum is {minimum}"
            return Plan(spec, series_id, record, SeriesFit.SKIPPED)
        base_id, last_cold = state.base_id.get(fingerprint), state.last_cold.get(fingerprint)
        warm_blob = None
        if base_id is not None and last_cold is not None and (record.train_end - last_cold).days < model.full_retrain_days:
            warm_blob = conn.execute(sa.select(schema.fits.c.weights).where(schema.fits.c.id == base_id)).scalar()
    record.mode = FitMode.WARM if warm_blob is not None else FitMode.COLD
    record.warm_started_from = base_id if warm_blob is not None else None
    task = TrainTask(key=spec.key, series_id=series_id, values=values, params=model_params(model, spec.key),
                     horizon=settings.forecast.horizon, level=settings.forecast.level, warm_blob=warm_blob,
                     warm_epochs=model.warm_epochs)
    return Plan(spec, series_id, record, SeriesFit.TRAINED, task)
