"""Training across series: which series form a group, how a group is trained, and ``auto``'s choice.

A group is the active series of one frequency and season length (its key, e.g. ``M/12``), each long
enough to train. ``model.training``:

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
"""

from __future__ import annotations

from statistics import mean, median

from sqlalchemy.engine import Engine

from .config import Settings
from .forecast import FitRecord
from .plan import Candidate, FitState, GroupPlan, Plan, Unit, plan_alone, read_weights, series_task
from .status import FitMode, FitScope, FitStatus, SeriesFit, Training
from .train import GroupResult, GroupTask, SeriesResult, forecaster_params, group_hash, relative_mae, series_hash
from .watchlist import FREQUENCIES


def group_key(frequency: str | None, season_length: int) -> str | None:
    """``M/12``: the group of a series of this frequency and season length; None for an unknown
    frequency (such a series trains alone)."""
    return f"{frequency}/{season_length}" if frequency in FREQUENCIES else None


def training_of(settings: Settings, members: list[Candidate]) -> Training:
    """How a group's series are trained: SERIES (each alone), GROUP, or AUTO (both ways, the better kept)."""
    model = settings.model
    if model.training == Training.SERIES or len(members) < model.group_min_series:
        return Training.SERIES
    if model.training == Training.AUTO and median(m.values.size for m in members) > model.group_max_median_length:
        return Training.SERIES
    return Training(model.training)


def plan_groups(
    engine: Engine, settings: Settings, candidates: list[Candidate], shared: FitState, run_id: int
) -> list[Unit]:
    """The run's units in candidate order: a Plan for each run series trained alone (or skipped,
    or up to date), and the plans of each group where its first member stands."""
    groups: dict[str, list[Candidate]] = {}
    position = {spec.key: i for i, spec in enumerate(settings.series)}
    for c in sorted(candidates, key=lambda c: position.get(c.spec.key, len(position))):  # the watchlist's order
        key = _key(c)
        if key is not None:
            groups.setdefault(key, []).append(c)
    units: list[Unit] = []
    done = set()
    for c in candidates:
        key = _key(c)
        how = training_of(settings, groups[key]) if key is not None else Training.SERIES
        if how == Training.SERIES:
            if c.in_run:
                units.append(plan_alone(engine, settings, c))
        elif key not in done:
            done.add(key)
            units.extend(_plan_group(engine, settings, key, groups[key], shared, run_id, how))
    return units


def _key(c: Candidate) -> str | None:
    return group_key(c.frequency, c.season_length) if c.skip is None and c.spec.active else None


def _plan_group(
    engine: Engine, settings: Settings, key: str, members: list[Candidate], shared: FitState, run_id: int, how: Training
) -> list[Unit]:
    season = members[0].season_length
    fingerprint = group_hash(settings, key, season, [m.spec.key for m in members])
    base_id, last_cold = shared.base_id.get(fingerprint), shared.last_cold.get(fingerprint)
    group_end = max(m.record.train_end for m in members)
    fresh = last_cold is not None and (group_end - last_cold).days < settings.model.full_retrain_days
    kept = _kept(settings, members, fingerprint) if how == Training.AUTO else Training.GROUP
    if kept == Training.SERIES:
        decided = [m.state.last_cold.get(series_hash(settings, m.spec.key, season, fingerprint)) for m in members]
        decided = [d for d in decided if d is not None]
        if decided and (group_end - max(decided)).days < settings.model.full_retrain_days:
            return [plan_alone(engine, settings, m, group_hash=fingerprint, group_key=key) for m in members if m.in_run]
        kept = None
    if kept == Training.GROUP and base_id is not None and all(m.up_to_date(fingerprint, base_id) for m in members):
        return [Plan(m.spec, m.series_id, m.record, SeriesFit.UP_TO_DATE) for m in members if m.in_run]
    warm = kept == Training.GROUP and base_id is not None and fresh
    compare = how == Training.AUTO and not warm
    return [_group_plan(engine, settings, key, members, fingerprint, run_id, base_id if warm else None, compare)]


def _kept(settings: Settings, members: list[Candidate], fingerprint: str) -> Training | None:
    """What ``auto`` kept for this group at its last cold fit, read from the newest fit of its
    members: GROUP, SERIES, or None (not decided yet, or the group has changed since)."""
    newest = max(members, key=lambda m: m.state.latest_id or 0)
    latest = newest.state.latest_hash
    if newest.state.latest_id is None:
        return None
    if latest == fingerprint:
        return Training.GROUP
    if latest == series_hash(settings, newest.spec.key, newest.season_length, fingerprint):
        return Training.SERIES
    return None


def _group_plan(
    engine: Engine,
    settings: Settings,
    key: str,
    members: list[Candidate],
    fingerprint: str,
    run_id: int,
    base_id: int | None,
    compare: bool,
) -> GroupPlan:
    warm_blob = read_weights(engine, base_id) if base_id is not None else None
    mode = FitMode.WARM if warm_blob is not None else FitMode.COLD
    season = members[0].season_length
    record = FitRecord(
        run_id=run_id,
        series_id=None,
        status=FitStatus.OK,
        settings_hash=fingerprint,
        mode=mode,
        warm_started_from=base_id if warm_blob is not None else None,
        cell=settings.model.forecaster.cell,
        train_start=min(m.record.train_start for m in members),
        train_end=max(m.record.train_end for m in members),
        n_obs=sum(m.record.n_obs for m in members),
        scope=FitScope.GROUP,
        group_key=key,
        n_series=len(members),
    )
    task = GroupTask(
        group_key=key,
        keys=[m.spec.key for m in members],
        series_ids=[m.series_id for m in members],
        values=[m.values for m in members],
        params=forecaster_params(settings.model, key, season, settings.forecast.horizon),
        horizon=settings.forecast.horizon,
        level=settings.forecast.level,
        warm_blob=warm_blob,
    )
    plans = []
    for m in members:
        # The row each member gets if per-series models are kept (compare); else the store stage
        # makes it a member's row of the shared fit.
        m.record.settings_hash = series_hash(settings, m.spec.key, season, fingerprint)
        m.record.group_key, m.record.mode = key, mode
        plans.append(
            Plan(m.spec, m.series_id, m.record, SeriesFit.TRAINED, series_task(settings, m) if compare else None)
        )
    return GroupPlan(key, record, task, plans, compare)


def choose(plan: GroupPlan, group: GroupResult, alone: list[SeriesResult]) -> tuple[bool, str]:
    """``auto``'s choice after a cold fit both ways: (keep the group's model?, the note saying why).
    The lower mean relative validation MAE over the series both ways score wins; a tie keeps the
    per-series models (the model's default)."""
    n = len(plan.members)
    if group.status != FitStatus.OK:
        return False, f"auto: per-series models kept for group {plan.key}: its model failed ({group.error})"
    pairs = [
        (relative_mae(g.backtest), relative_mae(s.forecast.backtest) if s.status == FitStatus.OK else None)
        for g, s in zip(group.forecasts, alone)
    ]
    pairs = [(g, s) for g, s in pairs if g is not None and s is not None]
    if not pairs:
        return False, (
            f"auto: per-series models kept for group {plan.key} ({n} series): no series has a "
            "validation score both ways to compare"
        )
    shared, own = mean(g for g, _ in pairs), mean(s for _, s in pairs)
    scores = (
        f"mean relative validation MAE {shared:.4f} for the group's model, {own:.4f} for per-series "
        f"models, over {len(pairs)} of {n} series"
    )
    if shared < own:
        return True, f"auto: the group's model kept for group {plan.key} ({n} series): {scores}"
    return False, f"auto: per-series models kept for group {plan.key} ({n} series): {scores}"
