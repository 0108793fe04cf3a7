"""The read side: what ``forecasts``, ``history``, ``plot`` and ``health`` show. Plain SELECTs on the
public tables and the ``latest_forecasts`` view, the same ones a person would type."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from . import schema
from .clock import as_utc, utcnow
from .errors import TickcastError
from .keys import parse_key
from .lease import holder_alive
from .settings import Settings
from .status import COMPLETED_RUNS, FitStatus, RunStatus, Trigger


class NothingStored(TickcastError):
    """The database has no rows of the kind asked for yet."""


def resolve_series(engine: Engine, key: str) -> sa.Row:
    source, symbol = parse_key(key)
    with engine.connect() as conn:
        row = conn.execute(sa.select(schema.series).where(schema.series.c.key == f"{source}:{symbol}")).first()
    if row is None:
        raise TickcastError(
            f"unknown series {key!r}: not in the database (run 'tickcast ingest' or "
            "'tickcast run' first, or check 'tickcast forecasts' for the known keys)"
        )
    return row


RUN_FIRST = "run 'tickcast run' (or wait for the scheduled run) first"


def why_nothing_yet(engine: Engine, series: sa.Row) -> str:
    """Why a series has no successful fit: its last fetch failed (with nothing stored, or nothing
    new since), its newest fit was skipped or failed, or no run has reached it yet."""
    if series.last_error:
        reason = series.last_error.removeprefix(f"{series.key}: ")  # the stored reason starts with the key
        return f"its last fetch failed: {reason}"
    fits = schema.fits
    with engine.connect() as conn:
        newest = conn.execute(
            sa.select(fits.c.status, fits.c.error)
            .where(fits.c.series_id == series.id, fits.c.backfill == 0)
            .order_by(fits.c.id.desc())
            .limit(1)
        ).first()
    if newest is not None and newest.status != FitStatus.OK and newest.error:
        return f"its newest fit {'was skipped' if newest.status == FitStatus.SKIPPED else 'failed'}: {newest.error}"
    return RUN_FIRST


def level_name(level: float) -> str:
    """80 for 0.8: how an interval's level is named in columns (lower_80, upper_80). Six significant
    digits, so that 0.57 * 100 = 56.99999999999999 is 57."""
    return f"{level * 100:g}"


def latest_forecasts(engine: Engine, key: str | None = None) -> list[dict]:
    """The published forecast of each series' newest fit: one row per series and step, with the
    bounds of every interval level as ``lower_<level>``/``upper_<level>`` (``lower_80``), and
    ``lower``/``upper``/``level`` those of the first level."""
    view = schema.latest_forecasts
    query = sa.select(view).order_by(view.c.series_key, view.c.step, view.c.level)
    series = resolve_series(engine, key) if key is not None else None
    if series is not None:
        query = query.where(view.c.series_key == series.key)
    rows: list[dict] = []
    with engine.connect() as conn:
        for r in conn.execute(query):
            row = dict(r._mapping)
            if not rows or (rows[-1]["series_key"], rows[-1]["step"]) != (row["series_key"], row["step"]):
                row["fitted_at"] = as_utc(row["fitted_at"])
                row["levels"] = []
                rows.append(row)
            first = rows[-1]
            name = level_name(row["level"])
            first[f"lower_{name}"], first[f"upper_{name}"] = row["lower"], row["upper"]
            first["levels"].append(row["level"])
    if not rows:
        if series is None:
            raise NothingStored(f"no forecasts yet: {RUN_FIRST}")
        raise NothingStored(f"no forecasts yet for {series.key}: {why_nothing_yet(engine, series)}")
    return rows


def forecast_columns(rows: list[dict]) -> list[str]:
    """The columns of `tickcast forecasts`: each interval level's bounds named by it (lower_80)."""
    levels = sorted({lv for row in rows for lv in row.get("levels", [])})
    bounds = [f"{side}_{level_name(lv)}" for lv in levels for side in ("lower", "upper")]
    return ["series_key", "last_ts", "last_value", "target_ts", "step", "forecast", *bounds, "change_pct", "skill"]


def latest_fit(engine: Engine, series_id: int) -> sa.Row | None:
    fits = schema.fits
    with engine.connect() as conn:
        return conn.execute(
            sa.select(fits)
            .where(fits.c.series_id == series_id, fits.c.status == FitStatus.OK, fits.c.backfill == 0)
            .order_by(fits.c.id.desc())
            .limit(1)
        ).first()


@dataclass(frozen=True)
class LossHistory:
    """The loss history behind a series' newest successful fit: its own, or (a group member) that
    of its group's shared fit, whose model made its forecasts."""

    fit: sa.Row  # the series' newest successful fit
    model_fit: sa.Row  # the fit whose model (weights, epochs, loss history) it uses: ``fit`` or the shared fit
    rows: list[dict]  # epoch, train_loss, val_loss, grad_norm, clip_fraction

    @property
    def shared(self) -> bool:
        return self.model_fit.id != self.fit.id

    def describe(self, key: str) -> str:
        """One line: which fit, how it was trained (and, for a group, that its model is shared)."""
        model = self.model_fit
        seconds = "" if model.seconds is None else f", {model.seconds:.2f} s"
        how = (
            f"{model.mode} {model.cell}, {model.epochs} epochs (best {model.best_epoch}), "
            f"train {model.train_start} .. {model.train_end}{seconds}"
        )
        if not self.shared:
            return f"fit {self.fit.id} of {key}: {how}"
        return (
            f"fit {self.fit.id} of {key} uses group {model.group_key}'s shared fit {model.id}, shared by "
            f"{model.n_series} series: {how}"
        )


def loss_history(engine: Engine, key: str) -> LossHistory:
    series = resolve_series(engine, key)
    fit = latest_fit(engine, series.id)
    if fit is None:
        raise NothingStored(f"no successful fit yet for {series.key}: {why_nothing_yet(engine, series)}")
    lh, fits = schema.loss_history, schema.fits
    with engine.connect() as conn:
        model_fit = fit
        if fit.group_fit_id is not None:
            model_fit = conn.execute(sa.select(fits).where(fits.c.id == fit.group_fit_id)).first() or fit
        rows = [
            dict(r._mapping)
            for r in conn.execute(
                sa.select(lh.c.epoch, lh.c.train_loss, lh.c.val_loss, lh.c.grad_norm, lh.c.clip_fraction)
                .where(lh.c.fit_id == model_fit.id)
                .order_by(lh.c.epoch)
            )
        ]
    return LossHistory(fit, model_fit, rows)


def recent_observations(engine: Engine, series_id: int, limit: int) -> list[tuple]:
    obs = schema.observations
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(obs.c.ts, obs.c.value).where(obs.c.series_id == series_id).order_by(obs.c.ts.desc()).limit(limit)
        ).all()
    return [(r.ts, r.value) for r in reversed(rows)]


def last_verdict_run(engine: Engine) -> sa.Row | None:
    """The newest run (not a backfill) that went through all its series: ok, partial, or failed with
    every series that could run failing. Runs stopped, crashed or abandoned part-way are left out: they say
    nothing about the sources or the models."""
    c = schema.runs.c
    every_series_failed = sa.and_(
        c.status == RunStatus.FAILED,
        c.series_failed > 0,
        c.series_ok == 0,
        c.series_ok + c.series_failed + c.series_skipped == c.series_total,
    )
    with engine.connect() as conn:
        return conn.execute(
            sa.select(schema.runs)
            .where(
                c.finished_at.is_not(None),
                c.trigger != Trigger.BACKFILL,  # it forecasts the past: it says nothing of today's run
                sa.or_(c.status.in_(COMPLETED_RUNS), every_series_failed),
            )
            .order_by(c.id.desc())
            .limit(1)
        ).first()


CLOCK_TOLERANCE = timedelta(minutes=1)  # hosts' clocks disagree by a little; by more, one of them is wrong


def completed_run_since(engine: Engine, since: datetime, now: datetime | None = None) -> bool:
    """Whether a run that finished (ok or partial; not a backfill) started at or after ``since``. A run that started
    in the future (beyond CLOCK_TOLERANCE: a clock that was wrong) does not count: it would otherwise
    count as the newest run until that date came, and no missed run would be caught up."""
    runs = schema.runs
    latest = (now or utcnow()) + CLOCK_TOLERANCE
    with engine.connect() as conn:
        started = conn.execute(
            sa.select(sa.func.max(runs.c.started_at)).where(
                runs.c.status.in_(COMPLETED_RUNS),
                runs.c.started_at <= latest,
                runs.c.trigger != Trigger.BACKFILL,  # no ingest, no forecast from today: not the scheduled run
            )
        ).scalar()
    return started is not None and as_utc(started) >= since


def health(engine: Engine, settings: Settings, now: datetime | None = None) -> tuple[bool, str]:
    """Healthy when the newest run that went through all its series finished within
    ``schedule.max_age_hours`` (and not in the future: clock skew makes its age meaningless) and at
    most ``schedule.max_failed_fraction`` of its series failed; a run in which every series failed
    is unhealthy whatever that fraction. Runs still marked running are named: in progress, or left
    behind by a process that died."""
    now = now or utcnow()
    run = last_verdict_run(engine)
    unfinished = "".join(f"; {text}" for text in unfinished_runs(engine, now))
    if run is None:
        return False, "unhealthy: no completed run yet" + unfinished
    finished = as_utc(run.finished_at)
    hours = (now - finished).total_seconds() / 3600
    failed = f"{run.series_failed} of {run.series_total} series failed"
    schedule = settings.schedule
    if now - finished < -CLOCK_TOLERANCE:
        return False, (
            f"unhealthy: clock skew: the last completed run ({run.id}, {run.status}) finished at "
            f"{finished:%Y-%m-%d %H:%M} UTC, {-hours:.1f} h ahead of this machine's clock "
            f"({now:%Y-%m-%d %H:%M} UTC): the clock of this machine or of the one that ran it is wrong" + unfinished
        )
    if run.status == RunStatus.FAILED:
        return False, (
            f"unhealthy: run {run.id} finished {hours:.1f} h ago and every series failed ({failed}"
            f"{which_failed(engine, run)})" + unfinished
        )
    if run.series_total and run.series_failed / run.series_total > schedule.max_failed_fraction:
        return False, (
            f"unhealthy: run {run.id} ({run.status}) finished {hours:.1f} h ago, {failed}{which_failed(engine, run)}: "
            f"more than schedule.max_failed_fraction = {schedule.max_failed_fraction:g}" + unfinished
        )
    if hours > schedule.max_age_hours:
        return False, (
            f"unhealthy: the last completed run ({run.id}, {run.status}) finished {hours:.1f} h ago, "
            f"more than schedule.max_age_hours = {schedule.max_age_hours:g}" + unfinished
        )
    return True, (
        f"ok: run {run.id} ({run.status}) finished {max(hours, 0.0):.1f} h ago"
        + (f"; {failed}" if run.series_failed else "")
        + unfinished
    )


NAMED_FAILURES = 3  # health names this many failed series, with their reasons, and counts the rest


def which_failed(engine: Engine, run: sa.Row) -> str:
    """ ": yahoo:SPY (cannot reach Yahoo ...), fred:DGS10 (...) and 4 more": the series whose fetch or
    fit failed in ``run``, so that an operator sees at once what is unreachable."""
    series, fits = schema.series.c, schema.fits.c
    with engine.connect() as conn:
        fetches = conn.execute(
            sa.select(series.key, series.last_error)
            .where(series.last_error.is_not(None), series.last_fetch_at >= run.started_at, series.active)
            .order_by(series.key)
        ).all()
        fitted = conn.execute(
            sa.select(series.key, fits.error)
            .join(schema.fits)  # on its foreign key, fits.series_id
            .where(fits.run_id == run.id, fits.status == FitStatus.FAILED)
            .order_by(series.key)
        ).all()
    failures = {key: error for key, error in [*fitted, *fetches]}
    if not failures:
        return ""
    named = [f"{key} ({_short(error, key)})" for key, error in list(failures.items())[:NAMED_FAILURES]]
    more = len(failures) - len(named)
    return ": " + ", ".join(named) + (f" and {more} more" if more > 0 else "")


def _short(error: str | None, key: str, limit: int = 80) -> str:
    text = error.splitlines()[0].removeprefix(f"{key}: ") if error else "no reason stored"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def unfinished_runs(engine: Engine, now: datetime) -> list[str]:
    """One phrase per run marked running: in progress (its process holds the run lease) or
    abandoned (its process died: crashed, killed, or the machine went down)."""
    runs, lease = schema.runs, schema.run_lease
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(runs.c.id, runs.c.started_at, runs.c.pid, runs.c.host)
            .where(runs.c.status == RunStatus.RUNNING)
            .order_by(runs.c.id)
        ).all()
        holder = conn.execute(sa.select(lease).where(lease.c.name == "run")).first()
    phrases = []
    for row in rows:
        since = f"started {as_utc(row.started_at):%Y-%m-%d %H:%M} UTC by pid {row.pid} on {row.host}"
        if holder is not None and holder.run_id == row.id and holder_alive(holder, now):
            phrases.append(f"run {row.id} in progress ({since})")
        else:
            phrases.append(
                f"run {row.id} is still marked running but its process is gone ({since}): it crashed "
                "or was killed; the next run records it as failed"
            )
    return phrases
