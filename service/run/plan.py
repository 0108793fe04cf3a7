"""Plan stage: decide what a run does with each series, from what the tables hold after ingest.

A series is skipped (nothing stored yet, or too short to train), left alone (its newest observation
and settings already have a fit: "up to date"), or trained: cold (from scratch) the first time,
after a settings change, after its history was replaced (a fit marked ``history_replaced_at`` is on
the old basis: never continued, never "up to date") and every ``model.full_retrain_days``; warm
(fine-tuned from its newest fit) in between.

Training across series: a group is the active series of one frequency and season length (its key,
e.g. ``M/12``), each long enough to train. ``model.training``:

- ``series``: every series has its own model;
- ``group``: one model per group (``RNNForecaster.fit_many``) once it has ``group_min_series``
  members; its shared fit (series_id NULL) holds the weights and the loss history, and each member
  gets its own row (backtest, skill, forecasts) pointing to it;
- ``auto`` (the default): a group that has ``group_min_series`` members and a median length of at
  most ``group_max_median_length`` is trained both ways on its cold fits, and the way with the
  lower mean relative validation MAE (backtest MAE / naive MAE, one step ahead, on the same
  validation part) over the group's series is kept for the whole group until its next cold fit.
  The decision and why are noted on the fits it keeps.

The decision is read back from the fits: the newest fit of a member is either a member's row of
the group's shared fit (the group was kept) or a per-series fit whose fingerprint names the group
(per-series models were kept). A group's fingerprint includes its members' keys in order, so a
member joining or leaving trains the group cold (and ``auto`` decides again).

Every row a fit writes (``FitRecord``) is decided by this stage, as an immutable value: here before
training, in ``run/settle.py`` after it (a warm start abandoned for a cold fit, a failure, ``auto``'s
choice between a group's model and per-series ones); the store stage writes them as given.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import date
from statistics import median

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tickcast.models import MIN_LENGTH

from .. import faults, schema
from ..frequencies import FREQUENCIES, horizon, season_length
from ..settings import ForecastSettings, ModelSettings, SeriesSpec
from ..stamps import as_datetime
from ..status import FitMode, FitScope, FitStatus, SeriesFit, Training
from .observations import recent_values
from .state import Candidate, FitState, fit_states, read_weights
from .values import (
    FitRecord,
    GroupTask,
    SeriesTask,
    forecaster_params,
    group_hash,
    series_hash,
)

NO_DATA = "no observations stored yet"


@dataclass(frozen=True)
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


@dataclass(frozen=True)
class GroupPlan:
    """One model trained across the series of a group. ``record`` is the shared fit's row; each
    member's plan holds the row it gets if per-series models are kept (and, when ``compare``, its
    own per-series task: ``auto`` trains both ways on a group's cold fits and keeps the better)."""

    key: str
    record: FitRecord
    task: GroupTask
    members: tuple[Plan, ...]
    compare: bool = False
    action: SeriesFit = SeriesFit.TRAINED


Unit = Plan | GroupPlan


def group_key(frequency: str | None, season: int | tuple[int, ...]) -> str | None:
    """``M/12``: the group of a series of this frequency and season length; None for an unknown
    frequency (such a series trains alone)."""
    return f"{frequency}/{season}" if frequency in FREQUENCIES else None


@dataclass(frozen=True)
class Planner:
    """The plan stage of one run: its settings (``[model]``, ``[forecast]``, the watchlist, whose
    order a group's members keep) and the run whose rows it plans."""

    engine: Engine
    model: ModelSettings
    forecast: ForecastSettings
    watchlist: tuple[SeriesSpec, ...]
    run_id: int

    def plan(self, specs: list[SeriesSpec], stop: threading.Event | None = None) -> list[Unit]:
        """The run's work, in the order of ``specs``: a Plan per series, or a GroupPlan where a group
        is trained together (in place of its first member; a group takes in every active member,
        also those not among ``specs``). On ``stop`` nothing is planned (the next run does it).
        Reads only: the store stage writes."""
        series = schema.series.c
        with self.engine.connect() as conn:
            rows = {r.key: r for r in conn.execute(sa.select(series.id, series.key, series.frequency, series.calendar))}
            states = fit_states(conn)
        run_keys = {spec.key for spec in specs}
        candidates = []
        for spec in self._with_group_companions(specs, rows):
            if stop is not None and stop.is_set():
                return []  # a group planned from some of its members would be another group: the next run plans all
            faults.reached("plan")
            candidates.append(self._candidate(spec, rows[spec.key], states, spec.key in run_keys))
        return self._units(candidates, states.get(None, FitState()))

    def _with_group_companions(self, specs: list[SeriesSpec], rows: dict) -> list[SeriesSpec]:
        """``specs`` and, after them, the other active series that could share a group with one of
        them (same frequency and season): a group is trained whole."""
        if self.model.training == Training.SERIES:
            return list(specs)

        def key_of(spec):
            row = rows[spec.key]
            return group_key(row.frequency, season_length(row.frequency, spec.season_length))

        wanted = {key_of(spec) for spec in specs} - {None}
        chosen = {spec.key for spec in specs}
        extra = [
            spec
            for spec in self.watchlist
            if spec.active and spec.key not in chosen and spec.key in rows and key_of(spec) in wanted
        ]
        return list(specs) + extra

    def _candidate(self, spec: SeriesSpec, row: sa.Row, states: dict, in_run: bool) -> Candidate:
        with self.engine.connect() as conn:  # a short read per series: no snapshot held across the stage
            first, last, values = recent_values(conn, row.id, self.model.max_points)
        record = FitRecord(
            run_id=self.run_id,
            series_id=row.id,
            status=FitStatus.OK,
            settings_hash="",
            cell=self.model.forecaster.cell,
            train_start=first,
            train_end=last,
            n_obs=len(values),
            frequency=row.frequency,
            calendar=row.calendar,
            levels=self.forecast.levels,
            interval_adapt_rate=self.forecast.interval_adapt_rate,
        )
        minimum = max(self.forecast.min_length, MIN_LENGTH)
        skip = None
        if not len(values):
            skip = NO_DATA
        elif len(values) < minimum:
            skip = f"too short to train: {len(values)} observation(s), the minimum is {minimum}"
        season = season_length(row.frequency, spec.season_length)
        steps = horizon(row.frequency, spec.horizon, self.forecast.horizon)
        params = forecaster_params(self.model, spec.key, season, steps)
        state = states.get(row.id, FitState())
        record = replace(record, horizon=steps)
        return Candidate(spec, row.id, row.frequency, season, values, state, record, in_run, params, steps, skip)

    def _training_of(self, members: list[Candidate]) -> Training:
        """How a group's series are trained: SERIES (each alone), GROUP, or AUTO (both ways, the better kept)."""
        model = self.model
        if model.training == Training.SERIES or len(members) < model.group_min_series:
            return Training.SERIES
        if model.training == Training.AUTO and median(m.values.size for m in members) > model.group_max_median_length:
            return Training.SERIES
        return Training(model.training)

    def _units(self, candidates: list[Candidate], shared: FitState) -> list[Unit]:
        """The run's units in candidate order: a Plan for each run series trained alone (or skipped,
        or up to date), and the plans of each group where its first member stands."""
        groups: dict[str, list[Candidate]] = {}
        position = {spec.key: i for i, spec in enumerate(self.watchlist)}
        for c in sorted(candidates, key=lambda c: position.get(c.spec.key, len(position))):  # the watchlist's order
            key = _key(c)
            if key is not None:
                groups.setdefault(key, []).append(c)
        units: list[Unit] = []
        done = set()
        for c in candidates:
            key = _key(c)
            how = self._training_of(groups[key]) if key is not None else Training.SERIES
            if key is None or how == Training.SERIES:
                if c.in_run:
                    units.append(self.alone(c))
            elif key not in done:
                done.add(key)
                units.extend(self._group(key, groups[key], shared, how))
        return units

    # --- one series -------------------------------------------------------------------------------

    def alone(self, c: Candidate, group_fingerprint: str | None = None, group: str | None = None) -> Plan:
        """A series trained on its own: up to date, skipped, or a cold or warm task. ``group_fingerprint``:
        ``auto`` chose per-series models for its group ``group`` (part of its fingerprint)."""
        fingerprint = series_hash(c.params, self.model, self.forecast, c.horizon, group_fingerprint)
        record = replace(c.record, settings_hash=fingerprint, group_key=group)
        if c.skip == NO_DATA:
            return Plan(
                c.spec, c.series_id, replace(record, status=FitStatus.SKIPPED, error=NO_DATA), SeriesFit.SKIPPED
            )
        if c.up_to_date(fingerprint):
            return Plan(c.spec, c.series_id, record, SeriesFit.UP_TO_DATE)
        if c.skip is not None:
            return Plan(c.spec, c.series_id, replace(record, status=FitStatus.SKIPPED, error=c.skip), SeriesFit.SKIPPED)
        base_id, last_cold = c.state.base_id.get(fingerprint), c.state.last_cold.get(fingerprint)
        warm_blob = None
        if base_id is not None and last_cold is not None and self._fresh(_end(c), last_cold):
            warm_blob = read_weights(self.engine, base_id)
        warm = warm_blob is not None
        record = replace(
            record, mode=FitMode.WARM if warm else FitMode.COLD, warm_started_from=base_id if warm else None
        )
        return Plan(c.spec, c.series_id, record, SeriesFit.TRAINED, self._series_task(c, warm_blob))

    def _fresh(self, end, last_cold) -> bool:
        """A cold fit ending at ``last_cold`` may still be continued by a fit ending at ``end``."""
        return (as_datetime(end) - as_datetime(last_cold)).days < self.model.full_retrain_days

    def _series_task(self, c: Candidate, warm_blob: bytes | None = None) -> SeriesTask:
        return SeriesTask(
            key=c.spec.key,
            series_id=c.series_id,
            values=c.values,
            params=c.params,
            horizon=c.horizon,
            members=self.model.members,
            levels=self.forecast.levels,
            warm_blob=warm_blob,
        )

    # --- a group ----------------------------------------------------------------------------------

    def _group(self, key: str, members: list[Candidate], shared: FitState, how: Training) -> list[Unit]:
        season = members[0].season_length
        steps = max(m.horizon for m in members)  # each member stores its own horizon's steps
        params = forecaster_params(self.model, key, season, steps)
        fingerprint = group_hash(params, self.model, self.forecast, steps, [m.spec.key for m in members])
        base_id, last_cold = shared.base_id.get(fingerprint), shared.last_cold.get(fingerprint)
        group_end = max((_end(m) for m in members), key=as_datetime)
        kept = self._kept(members, fingerprint) if how == Training.AUTO else Training.GROUP
        if kept == Training.SERIES:
            colds = (m.state.last_cold.get(self._member_hash(m, fingerprint)) for m in members)
            decided = [d for d in colds if d is not None]
            if decided and self._fresh(group_end, max(decided, key=as_datetime)):
                return [self.alone(m, fingerprint, key) for m in members if m.in_run]
            kept = None
        if kept == Training.GROUP and base_id is not None and all(m.up_to_date(fingerprint, base_id) for m in members):
            return [Plan(m.spec, m.series_id, m.record, SeriesFit.UP_TO_DATE) for m in members if m.in_run]
        warm = (
            kept == Training.GROUP
            and base_id is not None
            and last_cold is not None
            and self._fresh(group_end, last_cold)
        )
        compare = how == Training.AUTO and not warm
        return [self._group_plan(key, members, params, fingerprint, base_id if warm else None, compare)]

    def _member_hash(self, m: Candidate, fingerprint: str) -> str:
        """The fingerprint of a member's own fit when ``auto`` keeps per-series models for its group."""
        return series_hash(m.params, self.model, self.forecast, m.horizon, fingerprint)

    def _kept(self, members: list[Candidate], fingerprint: str) -> Training | None:
        """What ``auto`` kept for this group at its last cold fit, read from the newest fit of its
        members: GROUP, SERIES, or None (not decided yet, or the group has changed since)."""
        newest = max(members, key=lambda m: m.state.latest_id or 0)
        latest = newest.state.latest_hash
        if newest.state.latest_id is None:
            return None
        if latest == fingerprint:
            return Training.GROUP
        if latest == self._member_hash(newest, fingerprint):
            return Training.SERIES
        return None

    def _group_plan(
        self, key: str, members: list[Candidate], params: dict, fingerprint: str, base_id: int | None, compare: bool
    ) -> GroupPlan:
        warm_blob = read_weights(self.engine, base_id) if base_id is not None else None
        mode = FitMode.WARM if warm_blob is not None else FitMode.COLD
        record = FitRecord(
            run_id=self.run_id,
            series_id=None,
            status=FitStatus.OK,
            settings_hash=fingerprint,
            mode=mode,
            warm_started_from=base_id if warm_blob is not None else None,
            cell=self.model.forecaster.cell,
            train_start=min((_start(m) for m in members), key=as_datetime),
            train_end=max((_end(m) for m in members), key=as_datetime),
            n_obs=sum(m.record.n_obs or 0 for m in members),
            scope=FitScope.GROUP,
            group_key=key,
            n_series=len(members),
        )  # no horizon: each member's row stores its own steps
        task = GroupTask(
            group_key=key,
            keys=[m.spec.key for m in members],
            series_ids=[m.series_id for m in members],
            values=[m.values for m in members],
            params=params,
            horizon=max(m.horizon for m in members),
            levels=self.forecast.levels,
            members=self.model.members,
            warm_blob=warm_blob,
        )
        plans = []
        for m in members:
            # The row each member gets if per-series models are kept (compare); settle makes it a
            # member's row of the shared fit otherwise.
            own = replace(m.record, settings_hash=self._member_hash(m, fingerprint), group_key=key, mode=mode)
            plans.append(Plan(m.spec, m.series_id, own, SeriesFit.TRAINED, self._series_task(m) if compare else None))
        return GroupPlan(key, record, task, tuple(plans), compare)


def _start(c: Candidate) -> date:
    assert c.record.train_start is not None  # a group's members have data
    return c.record.train_start


def _end(c: Candidate) -> date:
    assert c.record.train_end is not None
    return c.record.train_end


def _key(c: Candidate) -> str | None:
    return group_key(c.frequency, c.season_length) if c.skip is None and c.spec.active else None
