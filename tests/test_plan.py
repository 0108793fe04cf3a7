"""The plan stage of a group (service/run/plan.py) on a real database: what the run is about to write
for a group's shared fit and its members, cold, warm, up to date and cold again, read from
``Planner.plan`` against the observations and fits stored by real runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import sqlalchemy as sa

from tickcast.service import schema
from tickcast.service.run.cycle import run_cycle
from tickcast.service.run.ingest import ingest
from tickcast.service.run.plan import GroupPlan, Plan, Planner
from tickcast.service.status import FitMode, FitScope, FitStatus, SeriesFit

from .support.small_model import small_model

LENGTHS = (40, 44, 48)  # months: the members end on different dates


def _world(
    make_series,
    make_settings,
    db_url,
    extra_months: int = 0,
    model: dict | None = None,
    training: str = "group",
    first: str = "",
    extra: str = "",
):
    """Three monthly series of one group; ``first``: more of csv:g0's [[series]] table; ``extra``:
    more tables."""
    rng = np.random.default_rng(3)
    tables = ""
    for i, n in enumerate(LENGTHS):
        t = np.arange(n + extra_months)
        values = 50 + 10 * i + 5 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 0.5, t.size)
        make_series(f"g{i}", values, start=f"201{i}-01-01", freq="MS")
        tables += f'[[series]]\nkey = "csv:g{i}"\npath = "g{i}.csv"\n' + (first if i == 0 else "")
    return make_settings(
        "[watchlist]\n" + tables + small_model(**{"group_min_series": 3, "full_retrain_days": 400, **(model or {})})
        + f'training = "{training}"\n' + extra,
        db_url=db_url,
    )  # fmt: skip


def _plan(engine, settings, run_id: int = 99) -> list:
    ingest(engine, settings)
    planner = Planner(engine, settings.model, settings.forecast, tuple(settings.series), run_id)
    return planner.plan(list(settings.series))


def _stored(engine) -> dict[str, dict]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                schema.series.c.key,
                schema.series.c.id,
                sa.func.min(schema.observations.c.ts).label("first"),
                sa.func.max(schema.observations.c.ts).label("last"),
                sa.func.count().label("n"),
            )
            .join(schema.observations, schema.observations.c.series_id == schema.series.c.id)
            .group_by(schema.series.c.key, schema.series.c.id)
        ).all()
    return {r.key: r._asdict() for r in rows}


def _shared_fits(engine) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(schema.fits).where(schema.fits.c.series_id.is_(None)).order_by(schema.fits.c.id))
        return [dict(r._mapping) for r in rows]


def _members_own_fits(engine, unit: GroupPlan, status: FitStatus, error: str | None = None) -> None:
    """What settle writes when auto keeps per-series models for a group: each member's own cold fit."""
    with engine.begin() as conn:
        for m in unit.members:
            conn.execute(
                sa.insert(schema.fits).values(
                    series_id=m.series_id,
                    run_id=None,
                    created_at=pd.Timestamp.now(tz="UTC").to_pydatetime(),
                    status=status,
                    error=error,
                    mode=FitMode.COLD,
                    settings_hash=m.record.settings_hash,
                    group_key=unit.key,
                    train_start=m.record.train_start,
                    train_end=m.record.train_end,
                )  # fmt: skip
            )


def test_a_group_s_first_plan_is_one_cold_shared_fit_over_every_member(fresh_db, make_series, make_settings, db_url):
    engine = fresh_db()
    settings = _world(make_series, make_settings, db_url)
    (unit,) = _plan(engine, settings, run_id=7)
    stored = _stored(engine)
    keys = [f"csv:g{i}" for i in range(len(LENGTHS))]
    assert isinstance(unit, GroupPlan) and unit.key == "M/12" and not unit.compare
    record = unit.record
    assert (record.run_id, record.series_id, record.status, record.mode, record.warm_started_from) == (
        7, None, FitStatus.OK, FitMode.COLD, None
    )  # fmt: skip
    assert (record.scope, record.group_key, record.n_series, record.cell) == (
        FitScope.GROUP, "M/12", 3, settings.model.forecaster.cell
    )  # fmt: skip
    assert pd.Timestamp(record.train_start) == min(pd.Timestamp(stored[k]["first"]) for k in keys)
    assert pd.Timestamp(record.train_end) == max(pd.Timestamp(stored[k]["last"]) for k in keys)
    assert record.n_obs == sum(LENGTHS)
    task = unit.task
    assert (task.group_key, task.keys, task.series_ids) == ("M/12", keys, [stored[k]["id"] for k in keys])
    assert task.params["season_length"] == 12 and task.warm_blob is None
    assert [len(v) for v in task.values] == list(LENGTHS)
    for plan, key in zip(unit.members, keys, strict=True):
        assert isinstance(plan, Plan) and plan.spec.key == key and plan.series_id == stored[key]["id"]
        assert (plan.action, plan.task) == (SeriesFit.TRAINED, None)  # the group's task trains it
        assert (plan.record.group_key, plan.record.mode, plan.record.series_id) == (
            "M/12",
            FitMode.COLD,
            stored[key]["id"],
        )
    # auto on a group's cold fit trains it both ways: each member has its own task too
    auto = _world(make_series, make_settings, db_url, training="auto")
    (both,) = _plan(engine, auto)
    assert both.compare and [m.task.key for m in both.members] == keys


def test_a_group_plan_goes_warm_then_up_to_date_then_cold_again(fresh_db, make_series, make_settings, db_url):
    engine = fresh_db()
    assert run_cycle(engine, _world(make_series, make_settings, db_url)).status == "ok"
    # nothing new since the last run: every member is up to date, with its own row
    ups = _plan(engine, _world(make_series, make_settings, db_url))
    stored = _stored(engine)
    assert [(p.spec.key, p.action, p.series_id, p.record.series_id) for p in ups] == [
        (f"csv:g{i}", SeriesFit.UP_TO_DATE, stored[f"csv:g{i}"]["id"], stored[f"csv:g{i}"]["id"]) for i in range(3)
    ]

    (first,) = _shared_fits(engine)
    (warm,) = _plan(engine, _world(make_series, make_settings, db_url, extra_months=1))
    assert warm.record.mode == FitMode.WARM and warm.record.warm_started_from == first["id"]
    assert warm.task.warm_blob == first["weights"] and warm.task.warm_blob
    assert {m.record.mode for m in warm.members} == {FitMode.WARM}

    # past full_retrain_days a new month trains the group cold, though its last fit could be continued
    later = _world(make_series, make_settings, db_url, extra_months=1, model={"full_retrain_days": 20})
    (cold,) = _plan(engine, later)
    assert (cold.record.mode, cold.record.warm_started_from, cold.task.warm_blob) == (FitMode.COLD, None, None)

    # a shared fit whose weights are gone cannot be continued: cold
    with engine.begin() as conn:
        conn.execute(sa.update(schema.fits).where(schema.fits.c.id == first["id"]).values(weights=None))
    (gone,) = _plan(engine, _world(make_series, make_settings, db_url, extra_months=1))
    assert (gone.record.mode, gone.record.warm_started_from, gone.task.warm_blob) == (FitMode.COLD, None, None)
    assert {m.record.mode for m in gone.members} == {FitMode.COLD}


def test_a_group_s_fingerprint_follows_its_model_and_its_steps(fresh_db, make_series, make_settings, db_url):
    """After a run, a change of the network or of one member's horizon makes the group a new one:
    cold, not up to date."""
    engine = fresh_db()
    settings = _world(make_series, make_settings, db_url)
    assert run_cycle(engine, settings).status == "ok"
    (same,) = {u.action for u in _plan(engine, settings)}
    assert same == SeriesFit.UP_TO_DATE
    (bigger,) = _plan(engine, _world(make_series, make_settings, db_url, model={"hidden_size": 9}))
    assert isinstance(bigger, GroupPlan) and bigger.record.mode == FitMode.COLD
    # fewer steps stored (6 for 18): the network's read-out stays the one of a monthly season
    (fewer,) = _plan(engine, _world(make_series, make_settings, db_url, extra="[forecast]\nhorizon = 6\n"))
    assert isinstance(fewer, GroupPlan) and fewer.record.mode == FitMode.COLD and fewer.task.horizon == 6
    assert fewer.task.params["horizon"] == 0  # the model's own read-out length
    (unit,) = _plan(engine, _world(make_series, make_settings, db_url, first="horizon = 20\n"))
    assert isinstance(unit, GroupPlan) and unit.record.mode == FitMode.COLD and unit.task.horizon == 20


def test_a_group_whose_members_have_no_row_from_its_newest_shared_fit_is_trained(
    fresh_db, make_series, make_settings, db_url
):
    """A shared fit stored without its members' rows (a crash between the two) leaves the group not
    up to date, though every member's newest row has its fingerprint and its newest observation."""
    engine = fresh_db()
    settings = _world(make_series, make_settings, db_url)
    assert run_cycle(engine, settings).status == "ok"
    (first,) = _shared_fits(engine)
    with engine.begin() as conn:
        again = sa.insert(schema.fits).values({k: v for k, v in first.items() if k != "id"})
        newest = conn.execute(again.returning(schema.fits.c.id)).scalar_one()
    (unit,) = _plan(engine, settings)
    assert isinstance(unit, GroupPlan) and unit.record.mode == FitMode.WARM
    assert unit.record.warm_started_from == newest > first["id"]


def test_auto_decides_again_when_every_member_s_own_fit_failed(fresh_db, make_series, make_settings, db_url):
    """auto kept per-series models but none of them trained (no cold fit to continue): the next run
    trains the group both ways again."""
    engine = fresh_db()
    settings = _world(make_series, make_settings, db_url, training="auto")
    (unit,) = _plan(engine, settings)
    assert unit.compare
    _members_own_fits(engine, unit, FitStatus.FAILED, error="diverged")  # they all failed
    (again,) = _plan(engine, settings)
    assert isinstance(again, GroupPlan) and again.compare and again.record.mode == FitMode.COLD


def test_an_hourly_group_whose_members_start_and_end_at_midnight_and_within_a_day(
    fresh_db, make_settings, db_url, tmp_path
):
    """An hourly series' midnight reads back as a date, its other hours as datetimes (neither Python
    nor the database compares the two): the group's window is still the earliest start and the
    latest end, and a per-series choice of auto continues from its members' newest cold fits."""
    from datetime import date, datetime

    rng = np.random.default_rng(4)
    tables = ""
    # 312 hours each, of which the newest 300 (max_points) train: h0's from midnight to 11:00, h1's
    # from 13:00 to midnight
    for name, start in (("h0", "2024-03-01 12:00"), ("h1", "2024-03-01 01:00")):
        stamps = pd.date_range(start, periods=312, freq="h")
        values = 100 + 10 * np.sin(2 * np.pi * np.arange(312) / 24) + rng.normal(0, 1, 312)
        frame = pd.DataFrame({"time": stamps.strftime("%Y-%m-%d %H:%M:%S"), "value": values})
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        tables += f'[[series]]\nkey = "csv:{name}"\npath = "{name}.csv"\ndate_column = "time"\n'

    def world(training: str):
        model = small_model(group_min_series=2, full_retrain_days=400) + f'training = "{training}"\n'
        return make_settings("[watchlist]\n" + tables + model, db_url=db_url)

    engine = fresh_db()
    (unit,) = _plan(engine, world("group"))
    assert isinstance(unit, GroupPlan)
    starts = {m.spec.key: m.record.train_start for m in unit.members}
    ends = {m.spec.key: m.record.train_end for m in unit.members}
    assert starts == {"csv:h0": date(2024, 3, 2), "csv:h1": datetime(2024, 3, 1, 13)}
    assert ends == {"csv:h0": datetime(2024, 3, 14, 11), "csv:h1": date(2024, 3, 14)}
    assert (unit.record.train_start, unit.record.train_end) == (datetime(2024, 3, 1, 13), datetime(2024, 3, 14, 11))
    auto = world("auto")
    (compared,) = _plan(engine, auto)
    assert compared.compare
    _members_own_fits(engine, compared, FitStatus.OK)
    plans = _plan(engine, auto)
    assert [type(p) for p in plans] == [Plan, Plan]  # each member continues its own model
    assert sorted(p.spec.key for p in plans) == ["csv:h0", "csv:h1"]
