"""Plan stage: decide what a run does with each series, from what the tables hold after ingest.

A series is skipped (nothing stored yet, or too short to train), left alone (its newest observation
and settings already have a fit: "up to date"), or trained: cold (from scratch) the first time,
after a settings change, after its history was replaced (a fit marked ``history_replaced_at`` is on
the old basis: never continued, never "up to date") and every ``model.full_retrain_days``; warm
(fine-tuned from its newest fit) in between. Series of one frequency may be trained together, as a
group (service/groups.py decides which way, and plans the group).

The state of every series' fits (and of the groups' shared fits) is read once, in two grouped
queries; each series' observations and, for a warm start, the weights it continues from are read
once, as that series (or group) is planned.
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
from .train import GroupTask, SeriesTask, forecaster_params, series_hash
from .watchlist import season_length

NO_DATA = "no observations stored yet"


@dataclass
class Plan:
    spec: SeriesSpec
    series_id: int
    record: FitRecord  # the fit row this run writes for the series (if any)
    action: SeriesFit  # TRAINED: train ``task``; UP_TO_DATE; SKIPPED (the reason in record.error)
    task: SeriesTask | None = None

    @property
    def records_skip(self) -> bool:
        """A series too short to train gets a 'skipped' fit row with the reason, once per newest
        observation; one with nothing stored at all gets none."""
        return self.action == SeriesFit.SKIPPED and bool(self.record.n_obs)


@dataclass
class GroupPlan:
    """One model trained across the series of a group. ``record`` is the shared fit's row; each
    member's plan holds its own row (and, when ``compare``, its own per-series task: ``auto``
    trains both ways on a group's cold fits and keeps the better)."""

    key: str
    record: FitRecord
    task: GroupTask
    members: list[Plan]
    compare: bool = False
    action: SeriesFit = SeriesFit.TRAINED


Unit = Plan | GroupPlan


@dataclass(frozen=True)
class FitState:
    """What the fits table says about one series (or, under the key None, the groups' shared fits)."""

    latest_id: int | None = None  # its newest fit, whatever its settings
    latest_status: str | None = None
    latest_train_end: date | None = None
    latest_hash: str | None = None
    latest_replaced: bool = False  # its history was replaced after the newest fit
    latest_group_fit: int | None = None  # the newest fit's shared fit, for a group member's row
    base_id: dict[str, int] = field(default_factory=dict)  # settings hash -> its newest successful fit
    last_cold: dict[str, date] = field(default_factory=dict)  # settings hash -> newest successful cold fit's train_end


def _fit_states(conn: Connection) -> dict[int | None, FitState]:
    """The fits of every series, summarised by two grouped queries (not three queries per series).
    The groups' shared fits (series_id NULL) are summarised under the key None."""
    fits = schema.fits.c
    newest = sa.select(sa.func.max(fits.id)).where(fits.series_id.is_not(None)).group_by(fits.series_id)
    latest = {
        row.series_id: row
        for row in conn.execute(
            sa.select(
                fits.id,
                fits.series_id,
                fits.status,
                fits.train_end,
                fits.settings_hash,
                fits.history_replaced_at,
                fits.group_fit_id,
            ).where(fits.id.in_(newest.scalar_subquery()))
        )
    }
    base: dict[int | None, dict[str, int]] = {}
    cold: dict[int | None, dict[str, date]] = {}
    for row in conn.execute(
        sa.select(
            fits.series_id,
            fits.settings_hash,
            sa.func.max(fits.id).label("base_id"),
            sa.func.max(sa.case((fits.mode == FitMode.COLD, fits.train_end))).label("last_cold"),
        )
        .where(fits.status == FitStatus.OK, fits.history_replaced_at.is_(None))
        .group_by(fits.series_id, fits.settings_hash)
    ):
        base.setdefault(row.series_id, {})[row.settings_hash] = row.base_id
        if row.last_cold is not None:
            cold.setdefault(row.series_id, {})[row.settings_hash] = _as_date(row.last_cold)
    states = {}
    for series_id in set(latest) | set(base):
        newest_fit = latest.get(series_id)
        states[series_id] = FitState(
            latest_id=newest_fit.id if newest_fit else None,
            latest_status=newest_fit.status if newest_fit else None,
            latest_train_end=newest_fit.train_end if newest_fit else None,
            latest_hash=newest_fit.settings_hash if newest_fit else None,
            latest_replaced=newest_fit is not None and newest_fit.history_replaced_at is not None,
            latest_group_fit=newest_fit.group_fit_id if newest_fit else None,
            base_id=base.get(series_id, {}),
            last_cold=cold.get(series_id, {}),
        )
    return states


def _as_date(value) -> date:
    # SQLite hands max() over a CASE back as the stored ISO text
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _load_values(conn: Connection, series_id: int, max_points: int) -> tuple[list[date], np.ndarray]:
    obs = schema.observations.c
    rows = conn.execute(
        sa.select(obs.ts, obs.value).where(obs.series_id == series_id).order_by(obs.ts.desc()).limit(max_points)
    ).all()
    rows.reverse()
    return [r.ts for r in rows], np.array([r.value for r in rows], dtype=np.float64)


def read_weights(engine: Engine, fit_id: int) -> bytes | None:
    with engine.connect() as conn:
        return conn.execute(sa.select(schema.fits.c.weights).where(schema.fits.c.id == fit_id)).scalar()


@dataclass
class Candidate:
    """One series as the plan sees it: its stored values, its fit state and the row it would write."""

    spec: SeriesSpec
    series_id: int
    frequency: str | None
    season_length: int
    values: np.ndarray
    state: FitState
    record: FitRecord
    in_run: bool  # one of the run's series (else only a member of one of their groups)
    skip: str | None = None  # why it cannot be trained (nothing stored, too short)

    def up_to_date(self, fingerprint: str, group_fit: int | None = None) -> bool:
        """Its newest fit has these settings, this newest observation and went through (ok, or a
        skip of a too-short series), its history was not replaced since, and (a member's row) it
        came from ``group_fit``."""
        s = self.state
        return (
            s.latest_hash == fingerprint
            and s.latest_train_end == self.record.train_end
            and s.latest_status in (FitStatus.OK, FitStatus.SKIPPED)
            and not s.latest_replaced
            and (group_fit is None or s.latest_group_fit == group_fit)
        )


def plan_series(
    engine: Engine, settings: Settings, specs: list[SeriesSpec], run_id: int, stop: threading.Event
) -> list[Unit]:
    """The run's work, in the order of ``specs``: a Plan per series, or a GroupPlan where a group
    is trained together (in place of its first member; a group takes in every active member, also
    those not among ``specs``). On ``stop`` nothing is planned (the next run does it). Reads only:
    the store stage writes."""
    from .groups import plan_groups

    with engine.connect() as conn:
        rows = {
            row.key: row
            for row in conn.execute(
                sa.select(schema.series.c.id, schema.series.c.key, schema.series.c.frequency, schema.series.c.calendar)
            )
        }
        states = _fit_states(conn)
    run_keys = {spec.key for spec in specs}
    candidates = []
    for spec in _with_group_companions(settings, specs, rows):
        if stop.is_set():
            break
        faults.reached("plan")
        candidates.append(_candidate(engine, settings, spec, rows[spec.key], states, run_id, spec.key in run_keys))
    if stop.is_set():
        return []  # a group planned from some of its members would be another group: the next run plans all
    return plan_groups(engine, settings, candidates, states.get(None, FitState()), run_id)


def _with_group_companions(settings: Settings, specs: list[SeriesSpec], rows: dict) -> list[SeriesSpec]:
    """``specs`` and, after them, the other active series that could share a group with one of them
    (same frequency and season): a group is trained whole."""
    from .groups import group_key

    if settings.model.training == "series":
        return list(specs)

    def key_of(spec):
        row = rows[spec.key]
        return group_key(row.frequency, season_length(row.frequency, spec.season_length))

    wanted = {key_of(spec) for spec in specs} - {None}
    chosen = {spec.key for spec in specs}
    extra = [
        spec
        for spec in settings.series
        if spec.active and spec.key not in chosen and spec.key in rows and key_of(spec) in wanted
    ]
    return list(specs) + extra


def _candidate(
    engine: Engine, settings: Settings, spec: SeriesSpec, series: sa.Row, states: dict, run_id: int, in_run: bool
) -> Candidate:
    from tickcast.models import MIN_LENGTH

    with engine.connect() as conn:  # a short read per series: no snapshot held across the stage
        dates, values = _load_values(conn, series.id, settings.model.max_points)
    record = FitRecord(
        run_id=run_id,
        series_id=series.id,
        status=FitStatus.OK,
        settings_hash="",
        cell=settings.model.forecaster.cell,
        train_start=dates[0] if dates else None,
        train_end=dates[-1] if dates else None,
        n_obs=len(values),
        frequency=series.frequency,
        calendar=series.calendar,
        level=settings.forecast.level,
        interval_adapt_rate=settings.forecast.interval_adapt_rate,
    )
    candidate = Candidate(
        spec,
        series.id,
        series.frequency,
        season_length(series.frequency, spec.season_length),
        values,
        states.get(series.id, FitState()),
        record,
        in_run,
    )
    minimum = max(settings.forecast.min_length, MIN_LENGTH)
    if not len(values):
        candidate.skip = NO_DATA
    elif len(values) < minimum:
        candidate.skip = f"too short to train: {len(values)} observation(s), the minimum is {minimum}"
    return candidate


def plan_alone(
    engine: Engine,
    settings: Settings,
    c: Candidate,
    group_hash: str | None = None,
    note: str | None = None,
    group_key: str | None = None,
) -> Plan:
    """A series trained on its own: up to date, skipped, or a cold or warm task. ``group_hash``:
    ``auto`` chose per-series models for its group (part of its fingerprint, see train.series_hash)."""
    fingerprint = series_hash(settings, c.spec.key, c.season_length, group_hash)
    record = c.record
    record.settings_hash, record.group_key = fingerprint, group_key
    if c.skip == NO_DATA:
        record.status, record.error = FitStatus.SKIPPED, NO_DATA
        return Plan(c.spec, c.series_id, record, SeriesFit.SKIPPED)
    if c.up_to_date(fingerprint):
        return Plan(c.spec, c.series_id, record, SeriesFit.UP_TO_DATE)
    if c.skip is not None:
        record.status, record.error = FitStatus.SKIPPED, c.skip
        return Plan(c.spec, c.series_id, record, SeriesFit.SKIPPED)
    base_id, last_cold = c.state.base_id.get(fingerprint), c.state.last_cold.get(fingerprint)
    warm_blob = None
    if (
        base_id is not None
        and last_cold is not None
        and (record.train_end - last_cold).days < settings.model.full_retrain_days
    ):
        warm_blob = read_weights(engine, base_id)
    record.mode = FitMode.WARM if warm_blob is not None else FitMode.COLD
    record.warm_started_from = base_id if warm_blob is not None else None
    record.note = note
    return Plan(c.spec, c.series_id, record, SeriesFit.TRAINED, series_task(settings, c, warm_blob))


def series_task(settings: Settings, c: Candidate, warm_blob: bytes | None = None) -> SeriesTask:
    return SeriesTask(
        key=c.spec.key,
        series_id=c.series_id,
        values=c.values,
        params=forecaster_params(settings.model, c.spec.key, c.season_length, settings.forecast.horizon),
        horizon=settings.forecast.horizon,
        level=settings.forecast.level,
        warm_blob=warm_blob,
    )
