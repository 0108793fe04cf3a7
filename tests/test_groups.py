"""Training across series in the service, on both backends: a group's shared fit and its members'
rows, forecasts that point to the members' rows, the history of a member, warm runs of a group, a
membership change, and ``auto``'s choice between the group's model and per-series models."""

from __future__ import annotations

import re
from dataclasses import replace
from statistics import mean

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tickcast.service import schema
from tickcast.service.cli import main
from tickcast.service.db import write_transaction
from tickcast.service.run.cycle import run_cycle

from .support.small_model import small_model
from .support.tables import ROWS_PER_STEP, published, table

GROUP_MODEL = small_model(group_min_series=3, full_retrain_days=100)
MONTHS = 48


def monthly_family(n_series: int, n: int = MONTHS + 6, seed: int = 5) -> list[np.ndarray]:
    """Series that share one yearly shape at different levels and phases."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return [
        rng.uniform(20, 200)
        * (1 + 0.2 * np.sin(2 * np.pi * t / 12 + rng.uniform(0, 2 * np.pi)))
        * np.exp(rng.normal(0, 0.03, n))
        for _ in range(n_series)
    ]


@pytest.fixture
def group_world(make_series, make_settings, db_url):
    """Monthly CSV series m0..m{k-1} (the first ``months`` values of each), and the daily sample
    sp500, which has no company of its frequency and trains alone."""
    default = monthly_family(6)

    def make(k: int = 4, months: int = MONTHS, training: str = "group", extra: str = "", family=None):
        family = default if family is None else family
        tables = ""
        for i in range(k):
            make_series(f"m{i}", family[i][:months], start="2015-01-01", freq="MS")
            tables += f'[[series]]\nkey = "csv:m{i}"\npath = "m{i}.csv"\n'
        return make_settings(
            '[watchlist]\nsample = ["sp500"]\n' + tables + GROUP_MODEL + f'training = "{training}"\n' + extra,
            db_url=db_url,
        )

    return make


def fits_of(engine) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(schema.fits, schema.series.c.key)
            .join(schema.series, schema.series.c.id == schema.fits.c.series_id, isouter=True)
            .order_by(schema.fits.c.id)
        ).all()
    return [dict(r._mapping) for r in rows]


def test_a_group_is_one_shared_fit_and_a_row_per_member_that_its_forecasts_point_to(
    fresh_db, group_world, capsys, db_url, tmp_path
):
    settings = group_world()
    engine = fresh_db()
    summary = run_cycle(engine, settings)
    assert summary.status == "ok"
    assert {o.key: (o.fit, o.mode) for o in summary.outcomes} == {
        key: ("trained", "cold") for key in ("sample:sp500", "csv:m0", "csv:m1", "csv:m2", "csv:m3")
    }
    fits = fits_of(engine)
    (shared,) = [f for f in fits if f["series_id"] is None]
    assert (shared["scope"], shared["group_key"], shared["n_series"], shared["status"], shared["mode"]) == (
        "group",
        "M/12",
        4,
        "ok",
        "cold",
    )
    assert shared["weights"] and shared["epochs"] >= 1 and shared["hyperparams"]["season_length"] == 12
    assert shared["n_obs"] == 4 * MONTHS and shared["mae"] is None  # scores are per series, on the members
    history = [h for h in table(engine, "loss_history") if h["fit_id"] == shared["id"]]
    assert sorted(h["epoch"] for h in history) == list(range(shared["epochs"] + 1))
    members = [f for f in fits if f["scope"] == "group" and f["series_id"] is not None]
    assert [m["key"] for m in members] == ["csv:m0", "csv:m1", "csv:m2", "csv:m3"]
    for m in members:
        assert m["group_fit_id"] == shared["id"] and m["group_key"] == "M/12" and m["status"] == "ok"
        assert m["weights"] is None and m["settings_hash"] == shared["settings_hash"] and m["n_obs"] == MONTHS
        assert m["mae"] > 0 and m["naive_mae"] > 0 and m["skill"] == pytest.approx(1 - m["mae"] / m["naive_mae"])
        assert not [h for h in table(engine, "loss_history") if h["fit_id"] == m["id"]]
    (alone,) = [f for f in fits if f["key"] == "sample:sp500"]
    assert (alone["scope"], alone["group_key"], alone["group_fit_id"], alone["hyperparams"]["season_length"]) == (
        "series",
        None,
        None,
        1,
    )
    # each member's forecasts point to its own row; the view shows them per series
    forecasts = table(engine, "forecasts")
    by_member = {m["series_id"]: m["id"] for m in members}
    for f in forecasts:
        if f["series_id"] in by_member:
            assert f["fit_id"] == by_member[f["series_id"]]
    # sp500 a trading week, the monthly members 18 months: every model at every level
    assert len(forecasts) == (5 + 4 * 18) * ROWS_PER_STEP
    assert len(published(forecasts)) == 5 + 4 * 18
    with engine.connect() as conn:
        view = conn.execute(sa.select(schema.latest_forecasts)).all()
    assert {(r.series_key, r.fit_id) for r in view} == {(m["key"], m["id"]) for m in members} | {
        ("sample:sp500", alone["id"])
    }
    # `tickcast history` of a member: the shared fit's loss history, said to be shared
    config = tmp_path / "groups.toml"
    config.write_text(
        '[watchlist]\nsample = ["sp500"]\n'
        + "".join(f'[[series]]\nkey = "csv:m{i}"\npath = "m{i}.csv"\n' for i in range(4))
        + GROUP_MODEL
        + 'training = "group"\n'
    )
    assert main(["--config", str(config), "--db", db_url, "history", "csv:m2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(
        f"fit {members[2]['id']} of csv:m2 uses group M/12's shared fit {shared['id']}, "
        f"shared by 4 series: cold rnn, {shared['epochs']} epochs"
    ), out[0]
    epochs = [int(line.split()[0]) for line in out[1:] if line.split()[0].isdigit()]
    assert epochs == list(range(shared["epochs"] + 1))
    assert main(["--config", str(config), "--db", db_url, "history", "sample:sp500"]) == 0
    assert "shared" not in capsys.readouterr().out.splitlines()[0]
    # `tickcast plot` of a member: the shared fit's loss curve, said to be shared
    from tickcast.service.plot import draw_series

    fig = draw_series(engine, "csv:m2")
    _, _, bottom, _ = fig.axes
    assert bottom.get_title().startswith(f"group M/12's shared fit {shared['id']} (shared by 4 series): cold rnn")
    assert "both divided by sqrt(4) for 4 series" in bottom.get_title().replace("\n", " ")  # a group's bars
    assert bottom.get_ylabel() == "MAE (network units)"
    (best,) = [line for line in bottom.get_lines() if "best epoch" in (line.get_label() or "")]
    assert list(best.get_xdata()) == [shared["best_epoch"]] * 2
    fig.clf()


def test_warm_runs_of_a_group_then_a_new_member_trains_it_cold(fresh_db, group_world):
    engine = fresh_db()
    run_cycle(engine, group_world())
    first = [f for f in fits_of(engine) if f["series_id"] is None][0]
    second = run_cycle(engine, group_world(months=MONTHS + 1))  # one new month for each series
    assert {o.key: o.mode for o in second.outcomes if o.key != "sample:sp500"} == {
        f"csv:m{i}": "warm" for i in range(4)
    }
    shared = [f for f in fits_of(engine) if f["series_id"] is None]
    assert len(shared) == 2 and shared[1]["mode"] == "warm" and shared[1]["warm_started_from"] == first["id"]
    assert shared[1]["settings_hash"] == first["settings_hash"]
    members = [f for f in fits_of(engine) if f["group_fit_id"] == shared[1]["id"]]
    assert len(members) == 4 and {m["mode"] for m in members} == {"warm"}
    before = fits_of(engine)
    third = run_cycle(engine, group_world(months=MONTHS + 1))  # nothing new: the group is up to date
    assert {o.fit for o in third.outcomes} == {"up-to-date"}
    assert fits_of(engine) == before
    fourth = run_cycle(engine, group_world(k=5, months=MONTHS + 1))  # a member joins
    assert {o.key: o.mode for o in fourth.outcomes if o.key != "sample:sp500"} == {
        f"csv:m{i}": "cold" for i in range(5)
    }
    newest = [f for f in fits_of(engine) if f["series_id"] is None][-1]
    assert newest["n_series"] == 5 and newest["mode"] == "cold" and newest["settings_hash"] != first["settings_hash"]


def test_a_run_of_one_member_trains_its_whole_group(fresh_db, group_world):
    engine = fresh_db()
    run_cycle(engine, group_world())
    later = group_world(months=MONTHS + 1)
    summary = run_cycle(engine, later, keys=["csv:m1"])  # only csv:m1 is fetched: its new month
    assert sorted((o.key, o.fit, o.mode) for o in summary.outcomes) == [
        (f"csv:m{i}", "trained", "warm") for i in range(4)
    ]
    shared = [f for f in fits_of(engine) if f["series_id"] is None]
    assert len(shared) == 2 and shared[1]["n_series"] == 4
    assert {f["key"]: f["train_end"].month for f in fits_of(engine) if f["group_fit_id"] == shared[1]["id"]} == {
        "csv:m0": 12,
        "csv:m1": 1,
        "csv:m2": 12,
        "csv:m3": 12,
    }
    assert {o.fit for o in run_cycle(engine, later, keys=["csv:m1"]).outcomes} == {"up-to-date"}
    assert {o.fit for o in run_cycle(engine, later).outcomes if o.key != "sample:sp500"} == {"trained"}


def test_a_member_whose_history_is_replaced_trains_its_group_cold(fresh_db, group_world, tmp_path):
    """The shared fit saw the member's old history too: it is marked, and never continued."""
    from tickcast.service.run.ingest import ingest

    engine = fresh_db()
    settings = group_world()
    run_cycle(engine, settings)
    csv = tmp_path / "m2.csv"
    csv.write_text("".join(line for i, line in enumerate(csv.read_text().splitlines(True)) if i != 1))  # a row removed
    ingest(engine, settings, ["csv:m2"], full=True)
    shared = [f for f in fits_of(engine) if f["series_id"] is None]
    assert shared[0]["history_replaced_at"] is not None
    assert [f["history_replaced_at"] is not None for f in fits_of(engine) if f["key"] in ("csv:m1", "csv:m2")] == [
        False,
        True,
    ]
    summary = run_cycle(engine, settings)
    assert {o.key: o.mode for o in summary.outcomes if o.key != "sample:sp500"} == {
        f"csv:m{i}": "cold" for i in range(4)
    }


def test_fewer_series_than_group_min_series_train_alone(fresh_db, group_world):
    engine = fresh_db()
    run_cycle(engine, group_world(k=2))
    fits = fits_of(engine)
    assert all(f["series_id"] is not None and f["scope"] == "series" for f in fits) and len(fits) == 3


def _note_scores(note: str) -> tuple[float, float]:
    found = re.search(r"mean relative validation MAE ([0-9.]+) for the group's model, ([0-9.]+) for per-series", note)
    assert found, note
    return float(found.group(1)), float(found.group(2))


def unrelated_trends(n: int = 60, seed: int = 1) -> list[np.ndarray]:
    """Four monthly series with nothing in common (up, down, noise, a season): one model for all
    of them validates worse than a model each."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return [
        100 + 5 * t + rng.normal(0, 1, n),
        300 - 4 * t + rng.normal(0, 1, n),
        50 * np.exp(rng.normal(0, 0.3, n)),
        80 + 30 * np.sin(2 * np.pi * t / 12),
    ]


@pytest.mark.parametrize(
    "kept, months, family",
    [
        # 30 months of one shared shape: too little for a model each, enough for one across them
        ("group", 30, None),
        ("series", 48, unrelated_trends()),
    ],
)
def test_auto_trains_both_ways_keeps_the_better_and_keeps_its_choice_on_warm_runs(
    fresh_db, group_world, kept, months, family
):
    engine = fresh_db()
    said: list[tuple[str, bool]] = []
    run_cycle(
        engine,
        group_world(training="auto", months=months, family=family),
        progress=lambda message, problem=False: said.append((message, problem)),
    )
    fits = [f for f in fits_of(engine) if f["key"] != "sample:sp500"]
    notes = {f["note"] for f in fits}
    assert len(notes) == 1
    (note,) = notes
    (line,) = [(m, p) for m, p in said if m.startswith("[train ") and " group M/12 " in m]
    if kept == "group":  # the shared fit's line, with the decision
        assert re.fullmatch(r"\[train \d/2\] group M/12 \(4 series\): cold group fit in \d+\.\d s \((.+)\)", line[0])
        assert line[0].endswith(f"({note})") and line[1] is False
    else:  # no shared fit stored: the decision, and the time of the fits both ways
        assert re.fullmatch(
            rf"\[train \d/2\] group M/12 \(4 series\): {re.escape(note)}; cold fits in \d+\.\d s", line[0]
        )
        assert line[1] is False
    shared_score, own_score = _note_scores(note)
    members = [f for f in fits if f["series_id"] is not None]
    assert len(members) == 4 and {m["group_key"] for m in members} == {"M/12"}
    kept_score = mean(m["mae"] / m["naive_mae"] for m in members)
    if kept == "group":  # the group's model was kept: its members' scores are the note's
        assert shared_score < own_score, note
        assert note.startswith("auto: the group's model kept for group M/12 (4 series)")
        assert len(fits) == 5 and {m["scope"] for m in members} == {"group"}
        assert kept_score == pytest.approx(shared_score, abs=1e-4)
    else:  # per-series models were kept: no shared fit stored, each series has its own weights
        assert own_score <= shared_score, note
        assert note.startswith("auto: per-series models kept for group M/12 (4 series)")
        assert len(fits) == 4 and {m["scope"] for m in members} == {"series"} and all(m["weights"] for m in members)
        assert kept_score == pytest.approx(own_score, abs=1e-4)
    scope = members[0]["scope"]
    warm = run_cycle(engine, group_world(training="auto", months=months + 1, family=family))
    assert {o.mode for o in warm.outcomes if o.key != "sample:sp500"} == {"warm"}
    newest = [f for f in fits_of(engine) if f["key"] != "sample:sp500"][len(fits) :]
    assert {f["scope"] for f in newest} == {scope} and {f["mode"] for f in newest} == {"warm"}
    assert len(newest) == len(fits)  # the same way, without training the other one again
    assert {f["group_key"] for f in newest} == {"M/12"}  # per-series fits too name the group auto decided for
    if kept == "series":  # training = "group" from now on: the group's model, cold, whatever auto had kept
        grouped = run_cycle(engine, group_world(training="group", months=months + 2, family=family))
        assert {(o.fit, o.mode) for o in grouped.outcomes if o.key != "sample:sp500"} == {("trained", "cold")}
        (shared,) = [f for f in fits_of(engine) if f["series_id"] is None]
        assert (shared["scope"], shared["n_series"], shared["mode"]) == ("group", 4, "cold")


def test_auto_does_not_train_a_group_of_long_series(fresh_db, group_world):
    engine = fresh_db()
    run_cycle(engine, group_world(training="auto", extra="group_max_median_length = 40\n"))
    fits = fits_of(engine)
    assert len(fits) == 5 and {f["scope"] for f in fits} == {"series"} and {f["note"] for f in fits} == {None}


def test_the_choice_follows_the_scores(group_world):
    """``choose`` in isolation, with results whose scores are known."""
    from tickcast.service.run.plan import GroupPlan, Plan
    from tickcast.service.run.settle import choose
    from tickcast.service.run.values import Forecast, GroupResult, SeriesResult

    def bt(mae, naive=1.0):
        return {"n": 10, "mae": mae, "naive_mae": naive}

    members = [Plan(None, i, None, "trained") for i in range(3)]
    plan = GroupPlan("Q/4", None, None, members, compare=True)

    def group(*maes, status="ok"):
        return GroupResult(
            "Q/4",
            status,
            error="TrainingDiverged: x" if status != "ok" else None,
            forecasts=[Forecast(bt(m)) for m in maes],
        )

    def alone(*maes):
        return [SeriesResult(f"k{i}", i, "ok", forecast=Forecast(bt(m))) for i, m in enumerate(maes)]

    assert choose(plan, group(0.8, 0.9, 1.0), alone(0.9, 0.9, 1.0))[0] is True
    assert choose(plan, group(0.9, 0.9, 1.0), alone(0.8, 0.9, 1.0))[0] is False
    assert choose(plan, group(0.9, 0.9, 1.0), alone(0.9, 0.9, 1.0))[0] is False  # a tie: per-series
    kept, note = choose(plan, group(0.5, 0.5, 0.5, status="failed"), alone(0.9, 0.9, 1.0))
    assert kept is False and "its model failed (TrainingDiverged: x)" in note
    # a series without a score either way (a constant series: naive MAE 0) is left out of the means
    scores = GroupResult("Q/4", "ok", forecasts=[Forecast(bt(0.8)), Forecast(bt(0.5, naive=0.0)), Forecast(bt(1.0))])
    kept, note = choose(plan, scores, [*alone(0.9, 0.9), SeriesResult("k2", 2, "failed")])
    assert kept is True and "over 1 of 3 series" in note and "0.8000" in note and "0.9000" in note


def test_a_settings_change_that_shapes_a_fit_changes_its_fingerprint(make_settings):
    from tickcast.models import ForecasterConfig
    from tickcast.service.frequencies import horizon
    from tickcast.service.run.values import forecaster_params, group_hash, series_hash

    base = make_settings("")
    changed = {
        "cell": "gru",
        "hidden_size": 9,
        "transform": "log",
        "lookbacks": [2.0],
        "ensemble": 2,
        "epochs": 7,
        "batch_size": 16,
        "lr": 0.01,
        "optimizer": "sgd",
        "loss": "mse",
        "clip": 2.0,
        "clip_mode": "value",
        "val_fraction": 0.1,
        "refit": False,
        "patience": 5,
        "min_delta": 0.1,
        "significance": 1.0,
        "max_backoffs": 2,
        "warm_epochs": 4,
        "warm_lr_scale": 0.5,
        "warm_windows": 64,
        "max_windows": 100,
        "max_window": 64,
        "out_scale": 0.1,
        "seed": 3,
        "precision": "float64",
    }
    settable = set(ForecasterConfig().to_dict()) - {"horizon", "season_length"}
    assert set(changed) == settable  # every knob of the model is tried (a new one must be added here)

    def series_fingerprint(settings, key, season, group=None):
        steps = horizon("M", None, settings.forecast.horizon)
        params = forecaster_params(settings.model, key, season, steps)
        return series_hash(params, settings.model, settings.forecast, steps, group)

    def group_fingerprint(settings, key, season, members):
        steps = horizon("M", None, settings.forecast.horizon)
        params = forecaster_params(settings.model, key, season, steps)
        return group_hash(params, settings.model, settings.forecast, steps, members)

    hashes = {series_fingerprint(base, "csv:a", 12)}
    for knob, value in changed.items():
        other = make_settings(f"[model]\n{knob} = {value!r}\n".replace("'", '"').replace("False", "false"))
        hashes.add(series_fingerprint(other, "csv:a", 12))
    for toml in (
        "[model]\nmax_points = 100\n",
        "[forecast]\nhorizon = 6\n",
        "[forecast]\nlevel = 0.9\n",
        "[forecast]\nmin_length = 30\n",
        '[model]\nmembers = ["rnn", "ets"]\n',
    ):
        hashes.add(series_fingerprint(make_settings(toml), "csv:a", 12))
    hashes |= {
        series_fingerprint(base, "csv:b", 12),
        series_fingerprint(base, "csv:a", 4),
        series_fingerprint(base, "csv:a", 12, "g"),
    }
    assert len(hashes) == 1 + len(changed) + 5 + 3
    assert group_fingerprint(base, "M/12", 12, ["csv:a", "csv:b"]) != group_fingerprint(
        base, "M/12", 12, ["csv:b", "csv:a"]
    )
    assert group_fingerprint(base, "M/12", 12, ["csv:a", "csv:b"]) != group_fingerprint(
        base, "M/12", 12, ["csv:a", "csv:b", "csv:c"]
    )
    models = make_settings('[model]\nmembers = ["rnn", "theta"]\n')
    assert group_fingerprint(base, "M/12", 12, ["csv:a"]) != group_fingerprint(models, "M/12", 12, ["csv:a"])
    # the service's retraining policy is not a fit's setting
    retrain = make_settings("[model]\nfull_retrain_days = 3\n")
    assert series_fingerprint(retrain, "csv:a", 12) == series_fingerprint(base, "csv:a", 12)


def test_daily_prices_have_no_season_and_a_series_table_may_set_one(fresh_db, make_settings, make_series, db_url):
    rng = np.random.default_rng(2)
    dates = pd.date_range("2020-01-01", periods=120, freq="D")
    make_series("visits", 50 + 10 * np.sin(2 * np.pi * np.arange(120) / 7) + rng.normal(0, 1, 120), dates=dates)
    make_series("other", 50 + rng.normal(0, 1, 120), dates=dates)
    settings = make_settings(
        '[watchlist]\nsample = ["sp500", "core-cpi"]\n'
        '[[series]]\nkey = "csv:visits"\npath = "visits.csv"\n'
        '[[series]]\nkey = "csv:other"\npath = "other.csv"\nseason_length = 0\n' + GROUP_MODEL,
        db_url=db_url,
    )
    engine = fresh_db()
    assert run_cycle(engine, settings).status == "ok"
    seasons = {f["key"]: f["hyperparams"]["season_length"] for f in fits_of(engine)}
    assert seasons == {"sample:sp500": 1, "sample:core-cpi": 12, "csv:visits": 7, "csv:other": 0}


def test_a_group_gives_the_same_results_whatever_the_number_of_workers(group_world, tmp_path):
    """A group's task and (auto) its members' own tasks go to worker processes as plain data; on a
    pool the group's fit runs in parts on every worker, combined by the driver into the very model
    one process fits: cold, warm, and cold again after its stored model was damaged."""
    from tickcast.service.db import open_database

    def outcome(workers: int):
        url = f"sqlite:///{tmp_path / f'w{workers}.db'}"
        engine = open_database(url)
        runs = []
        for months, damage in ((MONTHS, False), (MONTHS + 1, False), (MONTHS + 2, True)):
            settings = group_world(months=months, training="auto")
            settings = replace(settings, execution=replace(settings.execution, workers=workers), db_url=url)
            if damage:  # the group's newest shared model, cut short: the next fit starts cold, with a note
                with write_transaction(engine) as conn:
                    shared = conn.execute(
                        sa.select(schema.fits.c.id, schema.fits.c.weights)
                        .where(schema.fits.c.series_id.is_(None))
                        .order_by(schema.fits.c.id.desc())
                        .limit(1)
                    ).one()
                    conn.execute(
                        sa.update(schema.fits).where(schema.fits.c.id == shared.id).values(weights=shared.weights[:100])
                    )
            summary = run_cycle(engine, settings)
            assert summary.status == "ok"
            runs.append(sorted((o.key, o.mode) for o in summary.outcomes))
        forecasts = sorted(
            (f["series_id"], f["origin_ts"], f["model"], f["step"], f["level"], f["value"], f["lower"], f["upper"])
            for f in table(engine, "forecasts")
        )
        fits = [(f["key"], f["scope"], f["mode"], f["note"], f["weights"]) for f in fits_of(engine)]
        engine.dispose()
        return runs, forecasts, fits

    one, two = outcome(1), outcome(2)
    assert one == two
    runs, _, fits = two
    assert ("csv:m0", "warm") in runs[1] and ("csv:m0", "cold") in runs[2]
    notes = [note for key, scope, _, note, _ in fits if scope == "group" and key is None and note]
    damaged = [note for note in notes if "could not be loaded" in note]
    assert len(damaged) == 1 and damaged[0].endswith("trained cold"), notes


def test_series_trained_in_batches_store_what_one_task_each_stores(group_world, tmp_path, monkeypatch):
    """Per-series tasks of equal settings go as batches (one fit_each): the stored models, forecasts
    and notes are those of one task per series, cold, warm, and when a stored model is damaged (that
    series is fitted on its own, with the note)."""
    from tickcast.service.db import open_database
    from tickcast.service.run import tasks, train

    family = monthly_family(8)
    batches: list[int] = []
    batched = tasks.train_batch

    def counting(batch):
        batches.append(len(batch.tasks))
        return batched(batch)

    monkeypatch.setattr(tasks, "train_batch", counting)

    def outcome(batch_max: int, workers: int = 1):
        monkeypatch.setattr(train, "BATCH_MAX", batch_max)
        monkeypatch.setattr(train, "BATCH_SPREAD", 4 if workers == 1 else 1)  # on the pool: batches of 4
        url = f"sqlite:///{tmp_path / f'b{batch_max}-{workers}.db'}"
        engine = open_database(url)
        for months, damage in ((MONTHS, False), (MONTHS + 1, False), (MONTHS + 2, True)):
            settings = replace(group_world(k=8, months=months, training="series", family=family), db_url=url)
            settings = replace(settings, execution=replace(settings.execution, workers=workers))
            if damage:  # csv:m3's newest model, cut short
                with write_transaction(engine) as conn:
                    newest = conn.execute(
                        sa.select(schema.fits.c.id, schema.fits.c.weights)
                        .join(schema.series, schema.series.c.id == schema.fits.c.series_id)
                        .where(schema.series.c.key == "csv:m3")
                        .order_by(schema.fits.c.id.desc())
                        .limit(1)
                    ).one()
                    conn.execute(
                        sa.update(schema.fits).where(schema.fits.c.id == newest.id).values(weights=newest.weights[:100])
                    )
            assert run_cycle(engine, settings).status == "ok"
        forecasts = sorted(
            (f["series_id"], f["origin_ts"], f["model"], f["step"], f["level"], f["value"], f["lower"], f["upper"])
            for f in table(engine, "forecasts")
        )
        fits = [(f["key"], f["mode"], f["note"], f["weights"]) for f in fits_of(engine)]
        engine.dispose()
        return forecasts, fits

    alone = outcome(1)
    assert batches == []
    together = outcome(8)
    assert batches and max(batches) == 2  # 9 series, one worker: batches of two keep four a worker
    assert together == alone
    assert outcome(8, workers=2) == alone  # batches of four in worker processes
    notes = [note for key, _, note, _ in together[1] if note and "could not be loaded" in note]
    assert [key for key, _, note, _ in together[1] if note in notes] == ["csv:m3"]
