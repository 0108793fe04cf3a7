"""The read side: what ``forecasts``, ``history``, ``plot`` and ``health`` show. Plain SELECTs on the
public tables and the ``latest_forecasts`` view, the same ones a person would type."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from . import schema
from .clock import as_utc
from .errors import TickcastError
from .keys import parse_key


class NothingStored(TickcastError):
    """The database has no rows of the kind asked for yet."""


def resolve_series(engine: Engine, key: str) -> sa.Row:
    source, symbol = parse_key(key)
    with engine.connect() as conn:
        row = conn.execute(sa.select(schema.series).where(schema.series.c.key == f"{source}:{symbol}")).first()
    if row is None:
        raise TickcastError(f"unknown series {key!r}: not in the database (run 'tickcast ingest' or "
                            "'tickcast run' first, or check 'tickcast forecasts' for the known keys)")
    return row


def latest_forecasts(engine: Engine, key: str | None = None) -> list[dict]:
    view = schema.latest_forecasts
    query = sa.select(view).order_by(view.c.series_key, view.c.step)
    if key is not None:
        query = query.where(view.c.series_key == resolve_series(engine, key).key)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
    for row in rows:
        row["fitted_at"] = as_utc(row["fitted_at"])
    if not rows:
        raise NothingStored("no forecasts yet" + (f" for {key}" if key else "") +
                            ": run 'tickcast run' (or wait for the scheduled run) first")
    return rows


def latest_fit(engine: Engine, series_id: int) -> sa.Row | None:
    fits = schema.fits
    with engine.connect() as conn:
        return conn.execute(sa.select(fits).where(fits.c.series_id == series_id, fits.c.status == "ok")
                            .order_by(fits.c.id.desc()).limit(1)).first()


def loss_history(engine: Engine, key: str) -> tuple[sa.Row, list[dict]]:
    series = resolve_series(engine, key)
    fit = latest_fit(engine, series.id)
    if fit is None:
        raise NothingStored(f"no successful fit yet for {series.key}: run 'tickcast run' first")
    lh = schema.loss_history
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(
            sa.select(lh.c.epoch, lh.c.train_loss, lh.c.val_loss, lh.c.grad_norm, lh.c.clip_fraction)
            .where(lh.c.fit_id == fit.id).order_by(lh.c.epoch))]
    return fit, rows


def recent_observations(engine: Engine, series_id: int, limit: int) -> list[tuple]:
    obs = schema.observations
    with engine.connect() as conn:
        rows = conn.execute(sa.select(obs.c.ts, obs.c.value).where(obs.c.series_id == series_id)
                            .order_by(obs.c.ts.desc()).limit(limit)).all()
    return [(r.ts, r.value) for r in reversed(rows)]


def last_verdict_run(engine: Engine) -> sa.Row | None:
    """The newest run that went through all its series: ok, partial, or failed with every series
    that could run failing. Runs stopped, crashed or abandoned part-way are left out: they say
    nothing about the sources or the models."""
    c = schema.runs.c
    every_series_failed = sa.and_(c.status == "failed", c.series_failed > 0, c.series_ok == 0,
                                  c.series_ok + c.series_failed + c.series_skipped == c.series_total)
    with engine.connect() as conn:
        return conn.execute(sa.select(schema.runs)
                            .where(c.finished_at.is_not(None), sa.or_(c.status.in_(("ok", "partial")),
                                                                       every_series_failed))
                            .order_by(c.id.desc()).limit(1)).first()


def completed_run_since(engine: Engine, since: datetime) -> bool:
    """Whether a run that finished (ok or partial) started at or after ``since``."""
    runs = schema.runs
    with engine.connect() as conn:
        started = conn.execute(sa.select(sa.func.max(runs.c.started_at))
                               .where(runs.c.status.in_(("ok", "partial")))).scalar()
    return started is not None and as_utc(started) >= since
