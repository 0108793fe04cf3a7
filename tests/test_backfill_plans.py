"""Backfill's plans (service/run/backfill.py ``backfill_plans``), on a real database with series and
observations written by hand: which past origins (one horizon apart from the newest one whose every
target is observed, down to the first with ``min_length`` points before it; ``--origins N`` or
``--since DATE``), the data each origin trains on (up to it, ``max_points`` at most), the fit row it
writes, and the origins already stored that it skips. tests/test_backfill.py runs it end to end."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
import sqlalchemy as sa

from tickcast.service import schema
from tickcast.service.db import write_transaction
from tickcast.service.errors import TickcastError
from tickcast.service.run.backfill import MAX_ORIGINS, Backfill, backfill_plans
from tickcast.service.run.values import forecaster_params, series_hash
from tickcast.service.settings import SeriesSpec
from tickcast.service.status import FitMode, FitStatus, SeriesFit

from .support.small_model import small_model

START = date(2020, 1, 1)


def months(n: int) -> list[date]:
    return [date(START.year + (START.month - 1 + i) // 12, (START.month - 1 + i) % 12 + 1, 1) for i in range(n)]


def add(conn, key: str, values, dates, frequency: str = "M", calendar: str | None = None, shuffled=False) -> int:
    sid = conn.execute(
        sa.insert(schema.series)
        .values(
            key=key,
            source="csv",
            symbol=key[4:],
            frequency=frequency,
            calendar=calendar,
            created_at=datetime.now(UTC),
        )
        .returning(schema.series.c.id)
    ).scalar_one()
    rows = [{"series_id": sid, "ts": d, "value": float(v)} for d, v in zip(dates, values, strict=True)]
    if shuffled:  # stored out of date order (PostgreSQL then reads them back in that order unless sorted)
        rows = [rows[i] for i in np.random.default_rng(3).permutation(len(rows))]
    conn.execute(sa.insert(schema.observations), rows)
    return sid


def spec(key: str, **kw) -> SeriesSpec:
    return SeriesSpec(key=key, source="csv", symbol=key[4:], path=f"{key[4:]}.csv", **kw)


def published_at(conn, sid: int, origin: date, model: str = schema.PUBLISHED) -> None:
    """A stored forecast from ``origin`` (a fit row and one step), as an earlier backfill leaves it."""
    fit = conn.execute(
        sa.insert(schema.fits)
        .values(series_id=sid, created_at=datetime.now(UTC), status="ok", backfill=True)
        .returning(schema.fits.c.id)
    ).scalar_one()
    target = origin + timedelta(days=31)
    conn.execute(
        sa.insert(schema.forecasts).values(
            series_id=sid,
            origin_ts=origin,
            model=model,
            level=0.8,
            step=1,
            fit_id=fit,
            target_ts=target,
            value=1.0,
            lower=0.0,
            upper=2.0,
            backfilled=True,
            created_at=datetime.now(UTC),
        )
    )


@pytest.fixture
def store(fresh_db, make_settings, db_url):
    """A database, settings (a ``[forecast]`` table, the small model with some knobs changed), and
    the plans of a backfill request."""
    engine = fresh_db()

    def settings_for(forecast: str = "", **model):
        return make_settings((f"[forecast]\n{forecast}\n" if forecast else "") + small_model(**model), db_url=db_url)

    def plans(specs, request, settings=None, stop=None, run_id=7):
        settings = settings or settings_for()
        return backfill_plans(engine, settings, specs, run_id, request, stop or threading.Event())

    return engine, settings_for, plans


def origins_of(plans) -> list[date]:
    return [p.record.train_end for p in plans]


def test_the_request_is_one_of_origins_or_since_within_bounds():
    with pytest.raises(TickcastError) as neither:
        Backfill()
    assert str(neither.value) == "backfill needs --origins N or --since DATE (one of them)"
    with pytest.raises(TickcastError) as both:
        Backfill(origins=3, since=START)
    assert str(both.value) == "backfill needs --origins N or --since DATE (one of them)"
    for bad in (0, -1, MAX_ORIGINS + 1):
        with pytest.raises(TickcastError) as out:
            Backfill(origins=bad)
        assert str(out.value) == f"--origins must be between 1 and {MAX_ORIGINS}, got {bad}"
    assert MAX_ORIGINS == 1000
    assert Backfill(origins=1).origins == 1 and Backfill(origins=MAX_ORIGINS).origins == MAX_ORIGINS
    assert Backfill(since=START).since == START


def test_origins_step_back_one_horizon_from_the_newest_whose_targets_are_all_observed(store):
    engine, settings_for, plans = store
    dates = months(60)
    values = 100 + np.arange(60.0)
    with write_transaction(engine) as conn:
        sid = add(conn, "csv:m", values, dates)
    settings = settings_for(forecast="horizon = 6")
    got = plans([spec("csv:m")], Backfill(origins=3), settings)
    # the newest origin leaves 6 observed targets after it: index 53; then 47, 41 (oldest first)
    assert origins_of(got) == [dates[41], dates[47], dates[53]]
    params = forecaster_params(settings.model, "csv:m", 12, 6)
    fingerprint = series_hash(params, settings.model, settings.forecast, 6)
    for plan, i in zip(got, (41, 47, 53), strict=True):
        assert (plan.spec.key, plan.series_id, plan.action) == ("csv:m", sid, SeriesFit.TRAINED)
        r = plan.record
        assert (r.run_id, r.series_id, r.status, r.mode, r.backfill) == (7, sid, FitStatus.OK, FitMode.COLD, True)
        assert (r.settings_hash, r.cell, r.horizon) == (fingerprint, settings.model.forecaster.cell, 6)
        assert (r.train_start, r.train_end, r.n_obs) == (dates[0], dates[i], i + 1)
        assert (r.frequency, r.calendar, r.levels) == ("M", None, settings.forecast.levels)
        assert r.interval_adapt_rate == settings.forecast.interval_adapt_rate
        t = plan.task
        assert (t.key, t.series_id, t.horizon, t.params) == ("csv:m", sid, 6, params)
        assert (t.levels, t.members) == (settings.forecast.levels, settings.model.members)
        assert t.values.dtype == np.float64 and t.values.tolist() == values[: i + 1].tolist()  # no look-ahead


def test_the_oldest_origin_has_min_length_points_and_since_goes_back_to_a_date(store):
    engine, settings_for, plans = store
    dates = months(30)
    with write_transaction(engine) as conn:
        add(conn, "csv:m", np.linspace(10, 40, 30), dates)
    settings = settings_for(forecast="horizon = 1\nmin_length = 20")
    every = plans([spec("csv:m")], Backfill(since=START), settings)
    # horizon 1: every origin from index 19 (20 points) to index 28 (the last target observed)
    assert origins_of(every) == dates[19:29]
    assert [p.record.n_obs for p in every] == list(range(20, 30))
    assert origins_of(plans([spec("csv:m")], Backfill(since=dates[25]), settings)) == dates[25:29]
    assert origins_of(plans([spec("csv:m")], Backfill(origins=MAX_ORIGINS), settings)) == dates[19:29]
    # forecast.min_length below the model's own minimum (3): the model's applies
    low = settings_for(forecast="horizon = 1\nmin_length = 1")
    assert origins_of(plans([spec("csv:m")], Backfill(since=START), low))[0] == dates[2]


def test_max_points_caps_what_each_origin_trains_on(store):
    engine, settings_for, plans = store
    dates = months(40)
    values = np.arange(40.0) + 1
    with write_transaction(engine) as conn:
        add(conn, "csv:m", values, dates)
    settings = settings_for(forecast="horizon = 4", max_points=10)
    got = plans([spec("csv:m")], Backfill(origins=2), settings)
    assert origins_of(got) == [dates[31], dates[35]]
    for plan, i in zip(got, (31, 35), strict=True):
        assert plan.task.values.tolist() == values[i - 9 : i + 1].tolist()
        assert (plan.record.train_start, plan.record.n_obs) == (dates[i - 9], 10)


def test_the_horizon_is_the_series_own_else_the_settings_else_its_frequencys(store):
    engine, settings_for, plans = store
    dates = months(80)
    with write_transaction(engine) as conn:
        add(conn, "csv:m", np.linspace(1, 2, 80), dates)
    one = Backfill(origins=1)
    assert [p.task.horizon for p in plans([spec("csv:m")], one)] == [18]  # monthly: 18
    assert origins_of(plans([spec("csv:m")], one)) == [dates[79 - 18]]
    everywhere = settings_for(forecast="horizon = 5")
    assert [p.task.horizon for p in plans([spec("csv:m")], one, everywhere)] == [5]
    own = plans([spec("csv:m", horizon=3)], Backfill(origins=2), everywhere)
    assert [p.task.horizon for p in own] == [3, 3] and origins_of(own) == [dates[73], dates[76]]
    assert [p.record.horizon for p in own] == [3, 3]


def test_every_series_given_is_planned_and_unknown_ones_are_left_out(store):
    engine, settings_for, plans = store
    with write_transaction(engine) as conn:
        a = add(conn, "csv:a", np.linspace(1, 2, 40), months(40))
        b = add(conn, "csv:b", np.linspace(5, 9, 50), months(50), calendar="XNYS")
    settings = settings_for(forecast="horizon = 6")
    got = plans([spec("csv:a"), spec("csv:new"), spec("csv:b")], Backfill(origins=2), settings)
    assert [(p.spec.key, p.series_id, p.record.train_end) for p in got] == [
        ("csv:a", a, months(40)[27]),
        ("csv:a", a, months(40)[33]),
        ("csv:b", b, months(50)[37]),
        ("csv:b", b, months(50)[43]),
    ]
    assert {p.record.calendar for p in got if p.spec.key == "csv:b"} == {"XNYS"}
    # each series seeds its own forecaster from its key
    assert got[0].task.params == forecaster_params(settings.model, "csv:a", 12, 6)
    assert got[2].task.params == forecaster_params(settings.model, "csv:b", 12, 6)


def test_a_stop_plans_no_more_series(store):
    engine, _, plans = store
    with write_transaction(engine) as conn:
        add(conn, "csv:a", np.linspace(1, 2, 40), months(40))
    stop = threading.Event()
    stop.set()
    assert plans([spec("csv:a")], Backfill(origins=2), stop=stop) == []


def test_origins_already_published_are_skipped_others_series_and_models_do_not_count(store):
    engine, settings_for, plans = store
    dates = months(40)
    with write_transaction(engine) as conn:
        a = add(conn, "csv:a", np.linspace(1, 2, 40), dates)
        b = add(conn, "csv:b", np.linspace(1, 2, 40), dates)
        published_at(conn, a, dates[33])  # a's newest origin is stored
        published_at(conn, b, dates[27])  # another series' origin
        published_at(conn, a, dates[21], model="theta")  # a member's forecast only: not published
    settings = settings_for(forecast="horizon = 6")
    got = plans([spec("csv:a")], Backfill(origins=3), settings)
    assert origins_of(got) == [dates[21], dates[27]]  # three origins asked, one already stored
    with write_transaction(engine) as conn:
        published_at(conn, a, dates[15])  # an older origin stored: the newer ones still to do
    assert origins_of(plans([spec("csv:a")], Backfill(origins=4), settings)) == [dates[21], dates[27]]


def test_the_season_is_the_series_own_else_its_frequencys(store):
    engine, settings_for, plans = store
    with write_transaction(engine) as conn:
        add(conn, "csv:q", np.linspace(1, 2, 40), months(40), frequency="Q")
    settings = settings_for(forecast="horizon = 4")
    (by_frequency,) = plans([spec("csv:q")], Backfill(origins=1), settings)
    assert by_frequency.task.params == forecaster_params(settings.model, "csv:q", 4, 4)
    (own,) = plans([spec("csv:q", season_length=6)], Backfill(origins=1), settings)
    assert own.task.params == forecaster_params(settings.model, "csv:q", 6, 4)
    assert own.task.params != by_frequency.task.params
    assert own.record.settings_hash == series_hash(own.task.params, settings.model, settings.forecast, 4)


def test_observations_are_read_in_date_order_whatever_order_they_were_stored_in(store):
    engine, settings_for, plans = store
    dates = months(36)
    values = np.arange(36.0) * 3 + 1
    with write_transaction(engine) as conn:
        add(conn, "csv:m", values, dates, shuffled=True)
    (plan,) = plans([spec("csv:m")], Backfill(origins=1), settings_for(forecast="horizon = 6"))
    assert plan.record.train_end == dates[29] and plan.record.train_start == dates[0]
    assert plan.task.values.tolist() == values[:30].tolist()
