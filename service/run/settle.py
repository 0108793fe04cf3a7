"""Plan stage, after training: the rows a trained unit writes, decided once (``settle``): a series'
own fit (cold after all when its warm start was abandoned; failed with the reason); a group's shared
fit and each member's row pointing to it; or, where ``auto`` trained a group both ways, the way
that validated better (``choose``). The store stage writes these rows as given."""

from __future__ import annotations

from dataclasses import dataclass, replace
from statistics import mean

from ..status import FitMode, FitScope, FitStatus
from .plan import GroupPlan, Plan, Unit
from .values import FitRecord, Forecast, GroupResult, GroupTrained, SeriesResult, Trained, relative_mae


@dataclass(frozen=True)
class SeriesWrite:
    """A series' own fit to store: its row, the training result (model, history, forecast)."""

    plan: Plan
    record: FitRecord
    result: SeriesResult
    decision: str | None = None  # auto's choice, when it kept per-series models for the plan's group


@dataclass(frozen=True)
class MemberWrite:
    """A group member's row of the shared fit, and its forecast (None when the group failed)."""

    plan: Plan
    record: FitRecord
    forecast: Forecast | None


@dataclass(frozen=True)
class GroupWrite:
    """A group's shared fit to store (first), then each member's row pointing to it."""

    plan: GroupPlan
    record: FitRecord
    result: GroupResult
    members: tuple[MemberWrite, ...]
    decision: str | None = None  # auto's choice, when it kept the group's model


def _joined(*notes: str | None) -> str | None:
    return "; ".join(n for n in notes if n) or None


def settle_series(plan: Plan, result: SeriesResult, decision: str | None = None) -> SeriesWrite:
    """The row a series' own fit writes, from its planned row and how training went."""
    ok = result.status == FitStatus.OK
    record = replace(plan.record, status=FitStatus.OK if ok else FitStatus.FAILED)
    if result.note:  # the model to continue could not be: it was trained cold
        record = replace(record, mode=FitMode.COLD, warm_started_from=None)
    return SeriesWrite(plan, replace(record, note=_joined(record.note, decision, result.note)), result, decision)


def settle(unit: Unit, trained: Trained) -> list[SeriesWrite | GroupWrite]:
    """What a trained unit writes: a series' own fit; a group's shared fit and its members' rows; or,
    when ``auto`` compared both ways and per-series models did better, each member's own fit."""
    if isinstance(unit, Plan):
        assert isinstance(trained, SeriesResult)
        return [settle_series(unit, trained)]
    assert isinstance(trained, GroupTrained)
    group = trained.group
    keep_group, decision = choose(unit, group, trained.alone) if unit.compare else (True, None)
    if not keep_group:
        return [settle_series(m, r, decision) for m, r in zip(unit.members, trained.alone)]
    ok = group.status == FitStatus.OK
    shared = replace(unit.record, status=FitStatus.OK if ok else FitStatus.FAILED)
    if group.note:
        shared = replace(shared, mode=FitMode.COLD, warm_started_from=None)
    shared = replace(shared, note=_joined(decision, group.note))
    forecasts: list[Forecast | None] = list(group.forecasts) if ok else [None] * len(unit.members)
    members = tuple(
        MemberWrite(
            member,
            replace(
                member.record,
                scope=FitScope.GROUP,
                settings_hash=shared.settings_hash,
                status=shared.status,
                mode=shared.mode,
                note=shared.note,
                error=group.error,
            ),
            forecast,
        )
        for member, forecast in zip(unit.members, forecasts)
    )
    return [GroupWrite(unit, shared, group, members, decision)]


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
    scored = [(g, s) for g, s in pairs if g is not None and s is not None]
    if not scored:
        return False, (
            f"auto: per-series models kept for group {plan.key} ({n} series): no series has a "
            "validation score both ways to compare"
        )
    shared, own = mean(g for g, _ in scored), mean(s for _, s in scored)
    scores = (
        f"mean relative validation MAE {shared:.4f} for the group's model, {own:.4f} for per-series "
        f"models, over {len(scored)} of {n} series"
    )
    if shared < own:
        return True, f"auto: the group's model kept for group {plan.key} ({n} series): {scores}"
    return False, f"auto: per-series models kept for group {plan.key} ({n} series): {scores}"
