"""The rows a trained unit writes (service/run/settle.py), from planned rows and training results
whose every field is known: a series' own fit, a group's shared fit and its members' rows, and
``auto``'s choice between them. The runs that go through it end to end are in test_groups.py and
test_pipeline.py; here each rule is checked field by field."""

from __future__ import annotations

from tickcast.service.run.plan import GroupPlan, Plan
from tickcast.service.run.settle import GroupWrite, SeriesWrite, choose, settle, settle_series
from tickcast.service.run.values import FitRecord, Forecast, GroupResult, GroupTrained, SeriesResult
from tickcast.service.status import FitMode, FitScope, FitStatus, SeriesFit


def _record(series_id: int | None, **values) -> FitRecord:
    base = dict(run_id=1, series_id=series_id, status=FitStatus.OK, settings_hash=f"h{series_id}", mode=FitMode.WARM)
    return FitRecord(**{**base, "warm_started_from": 5, **values})


def _plan(i: int, **values) -> Plan:
    return Plan(None, i, _record(i, **values), SeriesFit.TRAINED)


def _bt(mae: float, naive: float = 1.0) -> dict:
    return {"n": 10, "mae": mae, "naive_mae": naive}


def test_a_series_row_says_how_its_training_went():
    plan = _plan(1, note="planned")
    ok = settle_series(plan, SeriesResult("k1", 1, FitStatus.OK))
    assert isinstance(ok, SeriesWrite) and ok.plan is plan and ok.decision is None
    assert (ok.record.status, ok.record.mode, ok.record.warm_started_from, ok.record.note) == (
        FitStatus.OK, FitMode.WARM, 5, "planned"
    )  # fmt: skip
    result = SeriesResult("k1", 1, FitStatus.FAILED, error="boom", note="the warm start was abandoned")
    failed = settle_series(plan, result, decision="auto: per-series")
    assert failed.result is result and failed.decision == "auto: per-series"
    assert (failed.record.status, failed.record.mode, failed.record.warm_started_from) == (
        FitStatus.FAILED, FitMode.COLD, None
    )  # fmt: skip
    assert failed.record.note == "planned; auto: per-series; the warm start was abandoned"
    assert settle_series(_plan(2), SeriesResult("k2", 2, FitStatus.OK)).record.note is None
    # a Plan settles as its series alone
    (alone,) = settle(plan, SeriesResult("k1", 1, FitStatus.OK))
    assert alone == ok


def _group(compare: bool = False, note: str | None = None) -> GroupPlan:
    members = tuple(_plan(i, group_key="Q/4") for i in range(3))
    shared = _record(None, settings_hash="g", scope=FitScope.GROUP, group_key="Q/4", n_series=3, note=note)
    return GroupPlan("Q/4", shared, None, members, compare)


def test_a_group_s_shared_fit_and_its_members_rows():
    plan = _group()
    forecasts = [Forecast(_bt(0.1 * (i + 1))) for i in range(3)]
    result = GroupResult("Q/4", FitStatus.OK, forecasts=forecasts, note="the warm start was abandoned")
    (write,) = settle(plan, GroupTrained(result))
    assert isinstance(write, GroupWrite) and write.plan is plan and write.result is result and write.decision is None
    shared = write.record
    assert (shared.status, shared.mode, shared.warm_started_from, shared.note) == (
        FitStatus.OK, FitMode.COLD, None, "the warm start was abandoned"
    )  # fmt: skip
    assert [m.plan for m in write.members] == list(plan.members)
    assert [m.forecast for m in write.members] == forecasts
    for m in write.members:
        r = m.record
        assert (r.scope, r.settings_hash, r.status, r.mode, r.note, r.error) == (
            FitScope.GROUP, "g", FitStatus.OK, FitMode.COLD, "the warm start was abandoned", None
        )  # fmt: skip
        assert (r.series_id, r.group_key) == (m.plan.series_id, "Q/4")

    failed = GroupResult("Q/4", FitStatus.FAILED, error="TrainingDiverged: x")
    (write,) = settle(plan, GroupTrained(failed))
    assert (write.record.status, write.record.mode, write.record.warm_started_from) == (
        FitStatus.FAILED,
        FitMode.WARM,
        5,
    )
    assert [m.forecast for m in write.members] == [None] * 3
    assert {(m.record.status, m.record.error, m.record.mode) for m in write.members} == {
        (FitStatus.FAILED, "TrainingDiverged: x", FitMode.WARM)
    }


def test_auto_keeps_one_way_and_says_why_on_the_rows():
    plan = _group(compare=True, note=None)
    group = GroupResult("Q/4", FitStatus.OK, forecasts=[Forecast(_bt(m)) for m in (0.5, 0.6, 0.7)])
    alone = [SeriesResult(f"k{i}", i, FitStatus.OK, forecast=Forecast(_bt(0.9))) for i in range(3)]
    (kept,) = settle(plan, GroupTrained(group, alone))
    assert kept.decision.startswith("auto: the group's model kept for group Q/4 (3 series): ")
    assert kept.record.note == kept.decision and {m.record.note for m in kept.members} == {kept.decision}

    better = [SeriesResult(f"k{i}", i, FitStatus.OK, forecast=Forecast(_bt(0.1))) for i in range(3)]
    writes = settle(plan, GroupTrained(group, better))
    assert [type(w) for w in writes] == [SeriesWrite] * 3 and [w.plan for w in writes] == list(plan.members)
    (decision,) = {w.decision for w in writes}
    assert decision.startswith("auto: per-series models kept for group Q/4 (3 series): ")
    assert [w.record.note for w in writes] == [decision] * 3 and [w.result for w in writes] == better


def test_auto_s_choice_leaves_out_what_did_not_score_both_ways():
    plan = _group(compare=True)
    group = GroupResult("Q/4", FitStatus.OK, forecasts=[Forecast(_bt(m)) for m in (0.5, 0.5, 0.5)])
    # a per-series fit that failed keeps the backtest of its validation phase: it is not a score
    failed = SeriesResult("k0", 0, FitStatus.FAILED, forecast=Forecast(_bt(0.01)))
    alone = [failed, *(SeriesResult(f"k{i}", i, FitStatus.OK, forecast=Forecast(_bt(0.9))) for i in (1, 2))]
    kept, note = choose(plan, group, alone)
    assert kept is True and note == (
        "auto: the group's model kept for group Q/4 (3 series): mean relative validation MAE 0.5000 for the "
        "group's model, 0.9000 for per-series models, over 2 of 3 series"
    )
    unscored = [SeriesResult(f"k{i}", i, FitStatus.FAILED) for i in range(3)]
    assert choose(plan, group, unscored) == (
        False,
        "auto: per-series models kept for group Q/4 (3 series): no series has a validation score both ways to compare",
    )
