"""What a run stores is what the model computed: each stored model, loaded back from ``fits.weights``,
gives the stored loss history row by row and the stored forecasts step by step (values, bounds,
target dates, level, the adaptive interval factor), for fits per series and across series, on the
local executor and on a Dask cluster, cold, warm-started and after a re-basing rescaled them.

Independent computations stand beside the stored values: target dates from exchange_calendars and
pandas directly, the interval factor from the actuals and the stored bounds, never from the views.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime

import exchange_calendars
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tickcast.models import AutoForecaster
from tickcast.service.run import published
from tickcast.service.run.cycle import run_cycle
from tickcast.service.run.ingest import ingest

from .support.dask_cluster import local_cluster
from .support.small_model import small_model
from .support.tables import LEVELS, MEMBERS, PUBLISHED

HISTORY = ("epoch", "train_loss", "val_loss", "grad_norm", "clip_fraction")
BACKTEST = ("mae", "rmse", "smape", "mase", "naive_mae")
RATE = 0.05  # forecast.interval_adapt_rate, the default


@pytest.fixture(scope="module")
def cluster():
    with local_cluster() as shared:
        yield shared


@pytest.fixture(params=["local", pytest.param("dask", marks=pytest.mark.cluster)])
def executor(request):
    if request.param == "local":
        return "[service]\nworkers = 2\n"
    address = request.getfixturevalue("cluster")[0].scheduler_address
    return f'[service]\nexecutor = "dask"\ndask_address = "{address}"\n'


def rows(engine, sql: str, **params) -> list:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).all()


def walk(n: int, seed: int, start: str = "2021-01-04", freq: str = "B", level: float = 50.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    values = level * np.exp(np.cumsum(rng.normal(0.0005, 0.01, n)))
    if freq == "MS":
        values = values * (1 + 0.1 * np.sin(np.arange(n) * 2 * np.pi / 12))
    return pd.DataFrame({"date": pd.date_range(start, periods=n, freq=freq).strftime("%Y-%m-%d"), "value": values})


def hourly(n: int, seed: int, start: str = "2024-01-01", level: float = 100.0) -> pd.DataFrame:
    """``n`` hours with a daily cycle, a weekly one and noise, stamped ``YYYY-MM-DD HH:MM``."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    values = level + 10 * np.sin(2 * np.pi * t / 24) + 3 * np.sin(2 * np.pi * t / 168) + rng.normal(0, 1, n)
    return pd.DataFrame({"date": pd.date_range(start, periods=n, freq="h").strftime("%Y-%m-%d %H:%M"), "value": values})


def expected_targets(origin: date, frequency: str, calendar: str | None, h: int) -> list[date]:
    """Target stamps computed apart from tickcast: an exchange's sessions, weekdays, months, or
    hours (each midnight a date, as stamps are)."""
    if frequency == "H":
        return [_as_date(pd.Timestamp(origin) + pd.Timedelta(hours=k)) for k in range(1, h + 1)]
    if frequency == "B" and calendar:
        sessions = exchange_calendars.get_calendar(calendar).sessions
        return [d.date() for d in sessions[sessions > pd.Timestamp(origin)][:h]]
    if frequency == "B":
        return [d.date() for d in pd.bdate_range(pd.Timestamp(origin) + pd.Timedelta(days=1), periods=h)]
    assert frequency == "M"
    return [(pd.Timestamp(origin) + pd.DateOffset(months=k)).date() for k in range(1, h + 1)]


def expected_factor(engine, series_id: int, origin: date, model: str, level: float) -> float:
    """The adaptive factor of ``model``'s ``level`` intervals from the actuals: the previous origin's
    factor (of the same model and level) times exp(rate x sum of (level - inside)) over that model's
    stored forecasts at that level whose target is in (previous origin, origin]."""
    previous = rows(
        engine,
        "SELECT origin_ts, interval_factor FROM forecasts WHERE series_id = :s AND origin_ts < :o "
        "AND model = :m AND level = :l ORDER BY origin_ts DESC LIMIT 1",
        s=series_id,
        o=origin,
        m=model,
        l=level,
    )
    if not previous:
        return 1.0
    prev_origin, prev_factor = previous[0]
    actuals = {
        _as_date(ts): value
        for ts, value in rows(engine, "SELECT ts, value FROM observations WHERE series_id = :s", s=series_id)
    }
    excess = 0.0
    for target, lower, upper in rows(
        engine,
        "SELECT target_ts, lower, upper FROM forecasts WHERE series_id = :s AND model = :m AND level = :l",
        s=series_id,
        m=model,
        l=level,
    ):
        target = _as_date(target)
        if pd.Timestamp(_as_date(prev_origin)) < pd.Timestamp(target) <= pd.Timestamp(origin) and target in actuals:
            excess += level - (1.0 if lower <= actuals[target] <= upper else 0.0)
    return min(max(prev_factor * math.exp(RATE * excess), 0.25), 4.0)


def _as_date(value) -> date:
    """A stamp as read raw (SQLite's text, PostgreSQL's timestamp, a pandas Timestamp) the way tickcast
    hands stamps around: a date at midnight, else a datetime."""
    stamp = pd.Timestamp(str(value) if isinstance(value, str) else value)
    return stamp.date() if stamp == stamp.normalize() else stamp.to_pydatetime()


def assert_history_stored(engine, fit_id: int, model: AutoForecaster) -> None:
    stored = rows(
        engine,
        "SELECT epoch, train_loss, val_loss, grad_norm, clip_fraction FROM loss_history WHERE fit_id = :f "
        "ORDER BY epoch",
        f=fit_id,
    )
    rnn = model.members_["rnn"]
    computed = [tuple(row.get(k) for k in HISTORY) for row in rnn.history_]
    assert [tuple(r) for r in stored] == computed, f"fit {fit_id}: loss history differs from the model's"
    # epoch 0, before the first update, then one row per epoch run (a warm start of a member whose
    # read-out was never trained runs none)
    assert computed[0][0] == 0 and len(computed) == rnn.n_epochs_ + 1
    assert rnn.n_epochs_ >= 1 or rnn.warm_started_


def computed_forecasts(model: AutoForecaster, i: int, h: int) -> dict:
    """What the loaded model computes for its ``i``-th series, ``h`` steps: {model name: (point,
    {level: (lower, upper)})} for the published combination and each member it combined there."""
    out = {
        PUBLISHED: (model.predict_many(h)[i], dict(zip(LEVELS, model.predict_interval_many(h, level=list(LEVELS))[i])))
    }
    for name, point in model.predict_members_many(h)[i].items():
        member = model.members_[name]
        j = model._rnn_index.index(i) if name == "rnn" else i  # the RNN: fitted on the long series only
        out[name] = (point, {lv: member.predict_interval_many(h, level=lv)[j] for lv in LEVELS})
    return out


def assert_forecasts_stored(engine, fit_id: int, computed: dict, backtest: dict, rescaled: float = 1.0) -> None:
    """The stored forecasts of fit ``fit_id`` (a series' own fit or a group member's row) against the
    model's (``computed_forecasts``: before the adaptive factor), model by model, level by level,
    step by step; a wider level's interval is widened where needed to contain a narrower one's."""
    (series_id, origin, frequency, calendar), *_ = rows(
        engine,
        "SELECT f.series_id, f.train_end, s.frequency, s.calendar FROM fits f "
        "JOIN series s ON s.id = f.series_id WHERE f.id = :f",
        f=fit_id,
    )
    origin = _as_date(origin)
    stored = rows(
        engine,
        "SELECT model, level, step, target_ts, value, lower, upper, interval_factor, rescaled_by, backfilled "
        "FROM forecasts WHERE fit_id = :f ORDER BY model, level, step",
        f=fit_id,
    )
    assert {(r.model, r.level) for r in stored} == {(m, lv) for m in computed for lv in LEVELS}
    assert len(computed) == 1 + len(MEMBERS)  # every member has a forecast of these series
    for name, (point, intervals) in computed.items():
        h = len(point)
        inner = None
        for level in LEVELS:
            these = [r for r in stored if r.model == name and r.level == level]
            assert [r.step for r in these] == list(range(1, h + 1))
            assert [_as_date(r.target_ts) for r in these] == expected_targets(origin, frequency, calendar, h)
            (f,) = {r.interval_factor for r in these}  # one factor per model and level
            lo, hi = (np.asarray(a[:h], dtype=np.float64) for a in intervals[level])
            lower, upper = point - f * (point - lo), point + f * (hi - point)
            if inner is not None:
                lower, upper = np.minimum(lower, inner[0]), np.maximum(upper, inner[1])
            inner = (lower, upper)
            for r, p, low, high in zip(these, point, lower, upper):
                assert (r.rescaled_by or 1.0) == pytest.approx(rescaled, rel=1e-12)
                assert r.backfilled == 0
                assert r.value == pytest.approx(p * rescaled, rel=1e-12)
                assert r.lower == pytest.approx(low * rescaled, rel=1e-12)
                assert r.upper == pytest.approx(high * rescaled, rel=1e-12)
                assert r.lower <= r.value <= r.upper
    fit = rows(engine, f"SELECT {', '.join(BACKTEST)}, skill FROM fits WHERE id = :f", f=fit_id)[0]
    for column in BACKTEST:
        assert getattr(fit, column) == pytest.approx(backtest[column], rel=1e-12), column
    assert fit.skill == pytest.approx(1 - backtest["mae"] / backtest["naive_mae"], rel=1e-12)


def assert_combination_stored(engine, fit_id: int, model: AutoForecaster, i: int) -> None:
    (combination,) = rows(engine, "SELECT combination FROM fits WHERE id = :f", f=fit_id)[0]
    if isinstance(combination, str):  # SQLite's JSON as text through a raw SELECT
        combination = json.loads(combination)
    assert combination == {"weights": model.weights_[i], "rule": model.chosen_[i]}


def assert_window_stored(engine, fit) -> None:
    """The fit's training window is ``n_obs`` consecutive stored observations ending on a stored
    date: its first and last dates, as dates, on either backend (later runs may have added more)."""
    end = _as_date(fit.train_end)
    dates = [
        _as_date(ts)
        for (ts,) in rows(
            engine,
            "SELECT ts FROM observations WHERE series_id = :s AND ts <= :e ORDER BY ts DESC",
            s=fit.series_id,
            e=end,
        )
    ]
    assert 0 < fit.n_obs <= len(dates)
    assert (_as_date(fit.train_start), end) == (dates[fit.n_obs - 1], dates[0]), fit.id


def check_run(engine, run_id: int, rescaled: dict | None = None) -> int:
    """Every ok fit of ``run_id``, loaded back and compared; returns how many forecast steps were
    checked (each at every model and level). Each fit is checked over the steps stored for it (its
    series' horizon)."""
    checked = 0
    fits = rows(
        engine,
        "SELECT id, series_id, scope, weights, train_start, train_end, n_obs, mode, transform, epochs, best_epoch "
        "FROM fits WHERE run_id = :r "
        "AND status = 'ok' "
        "AND weights IS NOT NULL ORDER BY id",
        r=run_id,
    )
    assert fits, "no fit stored a model"
    for fit in fits:
        model = published.load(bytes(fit.weights))
        assert isinstance(model, AutoForecaster)
        assert_history_stored(engine, fit.id, model)
        assert (fit.transform, fit.epochs, fit.best_epoch) == (model.transform_, model.n_epochs_, model.best_epoch_)
        if fit.series_id is not None:  # a series' own fit
            assert_window_stored(engine, fit)
            horizon = stored_steps(engine, fit.id)
            for name in (PUBLISHED, *MEMBERS):
                for level in LEVELS:
                    (factor,) = rows(
                        engine,
                        "SELECT DISTINCT interval_factor FROM forecasts "
                        "WHERE fit_id = :f AND model = :m AND level = :l",
                        f=fit.id,
                        m=name,
                        l=level,
                    )[0]
                    expected = expected_factor(engine, fit.series_id, _as_date(fit.train_end), name, level)
                    assert factor == pytest.approx(expected, rel=1e-12), (name, level)
            computed = computed_forecasts(model, 0, horizon)
            assert_forecasts_stored(engine, fit.id, computed, model.backtest_, (rescaled or {}).get(fit.id, 1.0))
            assert_combination_stored(engine, fit.id, model, 0)
            checked += horizon
            continue
        members = rows(engine, "SELECT id FROM fits WHERE group_fit_id = :f ORDER BY id", f=fit.id)
        assert len(members) == model.n_series_
        scales = rows(engine, "SELECT transform FROM fits WHERE group_fit_id = :f ORDER BY id", f=fit.id)
        assert [t for (t,) in scales] == model.transforms_  # each member's own scale in the RNN
        horizon = max(stored_steps(engine, member_id) for (member_id,) in members)
        for i, ((member_id,), backtest) in enumerate(zip(members, model.backtests_)):
            steps = stored_steps(engine, member_id)
            computed = computed_forecasts(model, i, horizon)
            computed = {
                name: (point[:steps], {lv: (lo[:steps], hi[:steps]) for lv, (lo, hi) in ivs.items()})
                for name, (point, ivs) in computed.items()
            }
            assert_forecasts_stored(engine, member_id, computed, backtest)
            assert_combination_stored(engine, member_id, model, i)
            checked += steps
    return checked


def stored_steps(engine, fit_id: int) -> int:
    """The steps stored for a fit: its published forecast's rows at one level."""
    return rows(
        engine,
        "SELECT count(*) FROM forecasts WHERE fit_id = :f AND model = :m AND level = :l",
        f=fit_id,
        m=PUBLISHED,
        l=LEVELS[0],
    )[0][0]


def write_world(tmp_path, frames: dict[str, pd.DataFrame], model: str, executor: str) -> str:
    tables = ""
    for name, frame in frames.items():
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        tables += f'[[series]]\nkey = "csv:{name}"\npath = "{name}.csv"\n'
    return executor + '[watchlist]\nsample = ["sp500"]\n' + tables + model


def test_per_series_fits_cold_then_warm_store_what_they_computed(tmp_path, make_settings, fresh_db, executor):
    model = small_model(full_retrain_days=365)
    frames = {"walk": walk(300, 1), "monthly": walk(60, 2, "2015-01-01", "MS")}
    toml = write_world(tmp_path, frames, model, executor)
    engine = fresh_db()
    first = run_cycle(engine, make_settings(toml))
    assert first.status == "ok"
    assert check_run(engine, first.run_id) == 5 + 5 + 18  # trading days: 5; months: 18
    # Ten more business days: the walk is warm-started, its factor now comes from scored forecasts.
    frames["walk"] = walk(310, 1)
    toml = write_world(tmp_path, frames, model, executor)
    second = run_cycle(engine, make_settings(toml))
    assert second.status == "ok"
    warm = rows(
        engine,
        "SELECT mode, warm_started_from FROM fits WHERE run_id = :r AND series_id = "
        "(SELECT id FROM series WHERE key = 'csv:walk')",
        r=second.run_id,
    )
    assert warm[0].mode == "warm" and warm[0].warm_started_from is not None
    assert check_run(engine, second.run_id) == 5
    factors = rows(
        engine,
        "SELECT DISTINCT interval_factor FROM forecasts f JOIN fits t ON t.id = f.fit_id WHERE t.run_id = :r",
        r=second.run_id,
    )
    assert factors and factors[0][0] != 1.0  # scored forecasts moved it: the comparison above is not trivial


def test_hourly_series_store_what_they_computed_hour_by_hour(tmp_path, make_settings, fresh_db, executor):
    """An hourly series (its frequency inferred from the stamps), cold then warm, and a group of hourly
    series: 48 steps an hour apart (M4's horizon), the model given a day and a week as seasons."""
    model = small_model(full_retrain_days=365)
    frames = {"load": hourly(24 * 30, 1)}
    toml = replace_sample(write_world(tmp_path, frames, model, executor))
    engine = fresh_db()
    first = run_cycle(engine, make_settings(toml))
    assert first.status == "ok"
    assert rows(engine, "SELECT frequency FROM series WHERE key = 'csv:load'") == [("H",)]
    assert check_run(engine, first.run_id) == 48
    (blob,) = rows(engine, "SELECT weights FROM fits WHERE run_id = :r", r=first.run_id)[0]
    assert published.load(bytes(blob)).season_length == (24, 168)
    (origin,) = rows(engine, "SELECT DISTINCT origin_ts FROM forecasts")[0]
    assert _as_date(origin) == datetime(2024, 1, 30, 23)  # the last hour stored
    # Twelve more hours: a warm start, whose interval factor comes from the hours scored since.
    frames["load"] = hourly(24 * 30 + 12, 1)
    second = run_cycle(engine, make_settings(replace_sample(write_world(tmp_path, frames, model, executor))))
    assert rows(engine, "SELECT mode FROM fits WHERE run_id = :r", r=second.run_id) == [("warm",)]
    assert check_run(engine, second.run_id) == 48
    scored = rows(engine, "SELECT count(*) FROM forecast_errors WHERE model = 'published' AND level = 0.8")
    assert scored == [(12,)]  # the first run's forecasts of the twelve hours that came
    # Three hourly series trained as one group.
    group = small_model(training="group", group_min_series=3, full_retrain_days=365)
    frames = {f"h{i}": hourly(24 * 20, 10 + i, level=50 + 20 * i) for i in range(3)}
    toml = replace_sample(write_world(tmp_path, frames, group, executor))
    summary = run_cycle(engine, make_settings(toml))
    assert summary.status == "ok"
    keys = rows(engine, "SELECT DISTINCT group_key FROM fits WHERE run_id = :r AND scope = 'group'", r=summary.run_id)
    assert keys == [("H/(24, 168)",)]
    assert check_run(engine, summary.run_id) == 3 * 48


def test_a_group_fit_stores_what_its_model_computed_for_each_member(tmp_path, make_settings, fresh_db, executor):
    model = small_model(training="group", group_min_series=3, full_retrain_days=365)
    frames = {f"m{i}": walk(48, 10 + i, "2016-01-01", "MS", level=20 + 10 * i) for i in range(3)}
    line = frames["m2"].copy()  # steady steps, rising from 20 to about 160: the RNN's linear scale
    line["value"] = 20.0 + 3.0 * np.arange(48) + np.random.default_rng(3).normal(0, 0.3, 48)
    frames["m3"] = line
    toml = write_world(tmp_path, frames, model, executor).replace('sample = ["sp500"]', "sample = []")
    engine = fresh_db()
    summary = run_cycle(engine, make_settings(toml))
    scales = rows(engine, "SELECT transform FROM fits WHERE run_id = :r AND group_fit_id IS NOT NULL", r=summary.run_id)
    assert sorted(t for (t,) in scales) == ["linear", "log", "log", "log"]  # stored per member: compared below
    assert summary.status == "ok"
    shared = rows(
        engine,
        "SELECT count(*) FROM fits WHERE run_id = :r AND scope = 'group' AND series_id IS NULL",
        r=summary.run_id,
    )
    assert shared == [(1,)]
    assert check_run(engine, summary.run_id) == 4 * 18


def test_forecasts_rescaled_by_a_rebasing_are_the_model_times_the_factor(tmp_path, make_settings, fresh_db):
    executor = "[service]\nworkers = 1\n"
    frames = {"walk": walk(300, 7)}
    toml = write_world(tmp_path, frames, small_model(), executor).replace('sample = ["sp500"]', "sample = []")
    engine = fresh_db()
    first = run_cycle(engine, make_settings(toml))
    fit_id = rows(engine, "SELECT id FROM fits WHERE run_id = :r", r=first.run_id)[0][0]
    # A 2-for-1 split: every earlier price halves at the source, and two new days arrive.
    split = walk(302, 7)
    split.loc[:299, "value"] = split.loc[:299, "value"] / 2
    split.to_csv(tmp_path / "walk.csv", index=False)
    ingest(engine, make_settings(toml))
    assert rows(engine, "SELECT DISTINCT rescaled_by FROM forecasts WHERE fit_id = :f", f=fit_id) == [(0.5,)]
    assert check_run(engine, first.run_id, rescaled={fit_id: 0.5}) == 5
    second = run_cycle(engine, make_settings(toml))
    mode = rows(engine, "SELECT mode FROM fits WHERE run_id = :r", r=second.run_id)
    assert mode == [("cold",)]  # the old basis is never continued
    assert check_run(engine, second.run_id) == 5


@pytest.mark.parametrize("model,level", [("published", 0.8), ("theta", 0.95), ("rnn", 0.8)])
def test_the_check_catches_a_forecast_stored_out_of_order(tmp_path, make_settings, fresh_db, model, level):
    """The comparison itself can fail: swap two stored steps of one model at one level and it does
    (the published combination's rows, and a member's)."""
    frames = {"walk": walk(200, 3)}
    toml = write_world(tmp_path, frames, small_model(), "[service]\nworkers = 1\n")
    engine = fresh_db()
    summary = run_cycle(engine, make_settings(replace_sample(toml)))
    check_run(engine, summary.run_id)  # as stored, it passes
    fit_id = rows(engine, "SELECT id FROM fits WHERE run_id = :r", r=summary.run_id)[0][0]
    where = "fit_id = :f AND model = :m AND level = :l"
    with engine.begin() as conn:
        values = dict(
            conn.execute(
                sa.text(f"SELECT step, value FROM forecasts WHERE {where}"), {"f": fit_id, "m": model, "l": level}
            ).all()
        )
        assert values[1] != values[2]  # a swap that changes something
        for step, other in ((1, 2), (2, 1)):
            conn.execute(
                sa.text(f"UPDATE forecasts SET value = :v WHERE {where} AND step = :s"),
                {"v": values[other], "f": fit_id, "m": model, "l": level, "s": step},
            )
    with pytest.raises(AssertionError):
        check_run(engine, summary.run_id)


def replace_sample(toml: str) -> str:
    return toml.replace('sample = ["sp500"]', "sample = []")


def test_stored_history_check_catches_a_validation_loss_stored_as_the_training_loss(tmp_path, make_settings, fresh_db):
    frames = {"walk": walk(200, 4)}
    toml = replace_sample(write_world(tmp_path, frames, small_model(), "[service]\nworkers = 1\n"))
    engine = fresh_db()
    summary = run_cycle(engine, make_settings(toml))
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE loss_history SET val_loss = train_loss WHERE epoch = 1"))
    with pytest.raises(AssertionError, match="loss history differs"):
        check_run(engine, summary.run_id)
