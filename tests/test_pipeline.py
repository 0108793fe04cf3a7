"""`tickcast run` end to end on both backends: what a cycle writes, what a second cycle does not,
warm starts, skips, failures, workers and the run lease."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tickcast.service import schema
from tickcast.service.db import write_transaction
from tickcast.service.frequencies import next_dates
from tickcast.service.lease import LeaseLost, RunInProgress, acquire
from tickcast.service.run.cycle import run_cycle

from .support.httpserver import Reply
from .support.small_model import FAST_MODEL
from .support.tables import LEVELS, MEMBERS, ROWS_PER_STEP, add_dead_holders_lease, fits_by_key, published, table


def assert_all_finite(engine):
    for name, columns in (
        ("fits", ("train_loss", "val_loss", "mae", "rmse", "mase", "naive_mae", "skill")),
        ("loss_history", ("train_loss", "val_loss", "grad_norm", "clip_fraction")),
        ("forecasts", ("value", "lower", "upper")),
    ):
        for row in table(engine, name):
            for column in columns:
                value = row[column]
                assert value is None or math.isfinite(value), (name, column, row)


@pytest.fixture
def samples_settings(make_settings, db_url):
    def make(extra: str = "", **sources):
        return make_settings(
            '[watchlist]\nsample = ["sp500", "core-cpi"]\n' + FAST_MODEL + extra, db_url=db_url, **sources
        )

    return make


@pytest.mark.parametrize("members", [["ets", "theta"], ["naive"]])
def test_a_combination_without_the_rnn_stores_its_forecasts_and_no_loss_history(fresh_db, samples_settings, members):
    """``model.members`` may leave the RNN out: such fits have no loss history to store (an empty
    insert must not be attempted: it failed the whole run), and the run is as complete as the RNN's."""
    settings = samples_settings(f"members = {members!r}\n".replace("'", '"'))
    engine = fresh_db()
    summary = run_cycle(engine, settings)
    assert summary.status == "ok", [o.error for o in summary.outcomes]
    fits = fits_by_key(engine)
    for key in ("sample:sp500", "sample:core-cpi"):
        fit = fits[key][0]
        assert fit.status == "ok" and fit.mode == "cold" and fit.weights and fit.epochs is None
        assert fit.hyperparams["members"] == members and set(fit.combination["weights"]) <= set(members)
    assert table(engine, "loss_history") == []
    stored = table(engine, "forecasts")
    assert len(stored) == (5 + 18) * len(LEVELS) * (1 + len(members))
    assert {f["model"] for f in stored} == {"published", *members}
    assert_all_finite(engine)


def test_a_run_writes_fits_histories_and_forecasts_for_every_sample(fresh_db, samples_settings):
    settings = samples_settings()
    engine = fresh_db()
    summary = run_cycle(engine, settings)
    assert summary.status == "ok"
    assert {o.key: o.fit for o in summary.outcomes} == {"sample:sp500": "trained", "sample:core-cpi": "trained"}
    fits = fits_by_key(engine)
    for key in ("sample:sp500", "sample:core-cpi"):
        (fit,) = fits[key]
        assert fit.status == "ok" and fit.mode == "cold" and fit.run_id == summary.run_id
        assert fit.weights and fit.hyperparams["rnn"]["hidden_size"] == 8 and fit.epochs >= 1
        assert fit.hyperparams["members"] == list(MEMBERS) and set(fit.combination["weights"]) <= set(MEMBERS)
        assert fit.n_obs == 300 and fit.train_end in (date(2018, 12, 31), date(2018, 11, 1))
        assert fit.mae > 0 and fit.naive_mae > 0 and fit.backtest_n > 0
        assert fit.skill == pytest.approx(1 - fit.mae / fit.naive_mae)
    history = table(engine, "loss_history")
    assert {h["epoch"] for h in history if h["fit_id"] == fits["sample:sp500"][0].id} >= {0, 1}
    stored = table(engine, "forecasts")
    # the horizons of their frequencies (a trading week, 18 months), for every model at every level
    assert len(stored) == (5 + 18) * ROWS_PER_STEP
    assert {(f["model"], f["level"]) for f in stored} == {(m, lv) for m in ("published", *MEMBERS) for lv in LEVELS}
    for f in stored:
        assert f["lower"] <= f["value"] <= f["upper"] and f["backfilled"] == 0
    forecasts = published(stored)
    assert len(forecasts) == 5 + 18
    spx = sorted((f for f in forecasts if f["origin_ts"] == date(2018, 12, 31)), key=lambda f: f["step"])
    assert [f["target_ts"] for f in spx] == [
        date(2019, 1, 2),
        date(2019, 1, 3),
        date(2019, 1, 4),
        date(2019, 1, 7),
        date(2019, 1, 8),
    ]  # NYSE: New Year, weekends
    cpi = sorted((f for f in forecasts if f["origin_ts"] == date(2018, 11, 1)), key=lambda f: f["step"])
    assert [f["target_ts"] for f in cpi][:3] == [date(2018, 12, 1), date(2019, 1, 1), date(2019, 2, 1)]
    (run,) = table(engine, "runs")
    assert (run["status"], run["series_total"], run["series_ok"], run["series_failed"]) == ("ok", 2, 2, 0)
    assert run["finished_at"] is not None
    with engine.connect() as conn:
        view = conn.execute(
            sa.select(schema.latest_forecasts).order_by(
                schema.latest_forecasts.c.series_key, schema.latest_forecasts.c.step
            )
        ).all()
    assert len(view) == (18 + 5) * len(LEVELS)  # core-cpi 18 months, sp500 a trading week, at each level
    assert {v.level for v in view} == set(LEVELS)
    first = view[0]
    assert first.series_key == "sample:core-cpi" and first.last_value == pytest.approx(259.481)
    assert first.change_pct == pytest.approx(100 * (first.forecast - first.last_value) / first.last_value)
    assert_all_finite(engine)


def test_a_second_run_the_same_day_adds_no_duplicates(fresh_db, samples_settings):
    settings = samples_settings()
    engine = fresh_db()
    run_cycle(engine, settings)
    before = {name: table(engine, name) for name in ("fits", "loss_history", "forecasts", "observations")}
    second = run_cycle(engine, settings)
    assert second.status == "ok"
    assert {o.fit for o in second.outcomes} == {"up-to-date"}
    for name, rows in before.items():
        assert table(engine, name) == rows, name
    assert [r["status"] for r in table(engine, "runs")] == ["ok", "ok"]


def test_a_failing_source_gives_a_partial_run_and_the_others_are_forecast(fresh_db, samples_settings, http_server):
    http_server.route("/broken.csv", Reply(500, "x"))
    settings = samples_settings(f'[[series]]\nkey = "csv:broken"\nurl = "{http_server.base_url}/broken.csv"\n')
    engine = fresh_db()
    summary = run_cycle(engine, settings)
    assert summary.status == "partial"
    outcome = {o.key: o for o in summary.outcomes}
    assert outcome["csv:broken"].failed and "HTTP 500" in outcome["csv:broken"].error
    assert outcome["sample:sp500"].fit == "trained"
    (run,) = table(engine, "runs")
    assert (run["status"], run["series_failed"], run["series_ok"]) == ("partial", 1, 2)
    assert len(table(engine, "forecasts")) == (5 + 18) * ROWS_PER_STEP


def test_new_data_warm_starts_then_a_cold_retrain_after_the_cadence(fresh_db, make_settings, make_series, db_url):
    rng = np.random.default_rng(1)
    values = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 400)))
    dates = pd.bdate_range("2020-01-01", periods=400)
    make_series("walk", values[:380], dates=dates[:380])
    settings = make_settings(
        '[[series]]\nkey = "csv:walk"\npath = "walk.csv"\nprice = true\n' + FAST_MODEL + "full_retrain_days = 7\n",
        db_url=db_url,
    )
    engine = fresh_db()
    run_cycle(engine, settings)
    make_series("walk", values[:381], dates=dates[:381])  # one new day
    second = run_cycle(engine, settings)
    assert second.outcomes[0].mode == "warm"
    fits = fits_by_key(engine)["csv:walk"]
    assert fits[1].mode == "warm" and fits[1].warm_started_from == fits[0].id
    make_series("walk", values[:392], dates=dates[:392])  # 11 trading days after the cold fit
    third = run_cycle(engine, settings)
    assert third.outcomes[0].mode == "cold"
    # forecasts from each origin are kept (forecast history), one set per origin
    origins = sorted({f["origin_ts"] for f in table(engine, "forecasts")})
    assert origins == [dates[379].date(), dates[380].date(), dates[391].date()]


def test_changed_settings_retrain_from_scratch(fresh_db, samples_settings, make_settings, db_url):
    engine = fresh_db()
    run_cycle(engine, samples_settings())
    changed = make_settings(
        '[watchlist]\nsample = ["sp500", "core-cpi"]\n' + FAST_MODEL.replace("hidden_size = 8", "hidden_size = 6"),
        db_url=db_url,
    )
    summary = run_cycle(engine, changed)
    assert {(o.fit, o.mode) for o in summary.outcomes} == {("trained", "cold")}
    # the same origin's forecasts were replaced, not duplicated
    assert len(table(engine, "forecasts")) == (5 + 18) * ROWS_PER_STEP
    assert {f["fit_id"] for f in table(engine, "forecasts")} == {o.fit_id for o in summary.outcomes}


def test_too_short_series_are_skipped_once_with_a_reason(fresh_db, make_settings, make_series, db_url):
    make_series("tiny", [1.0, 2.0])  # below the model's minimum of 3
    settings = make_settings(
        '[watchlist]\nsample = ["core-cpi"]\n[[series]]\nkey = "csv:tiny"\npath = "tiny.csv"\n' + FAST_MODEL,
        db_url=db_url,
    )
    engine = fresh_db()
    summary = run_cycle(engine, settings)
    assert summary.status == "ok"
    tiny = {o.key: o for o in summary.outcomes}["csv:tiny"]
    assert tiny.fit == "skipped" and "too short to train: 2 observation(s), the minimum is 3" in tiny.error
    run_cycle(engine, settings)
    (fit,) = fits_by_key(engine)["csv:tiny"]
    assert fit.status == "skipped" and "too short" in fit.error
    (run,) = table(engine, "runs")[:1]
    assert run["series_skipped"] == 1


def test_results_do_not_depend_on_the_number_of_workers(make_settings, tmp_path):
    def forecasts_with(workers: int):
        url = f"sqlite:///{tmp_path / f'w{workers}.db'}"
        settings = make_settings('[watchlist]\nsample = ["sp500", "nasdaq", "wti"]\n' + FAST_MODEL, db_url=url)
        settings = replace(settings, execution=replace(settings.execution, workers=workers))
        from tickcast.service.db import open_database

        engine = open_database(url)
        summary = run_cycle(engine, settings)
        assert summary.status == "ok"
        rows = sorted(
            (f["series_id"], f["step"], f["value"], f["lower"], f["upper"]) for f in table(engine, "forecasts")
        )
        weights = [f["weights"] for f in table(engine, "fits")]
        engine.dispose()
        return rows, weights

    assert forecasts_with(1) == forecasts_with(2)


def test_a_second_concurrent_run_is_refused(fresh_db, samples_settings):
    settings = samples_settings()
    engine = fresh_db()
    holder = acquire(engine)  # a live process (this one) holds the lease
    with pytest.raises(RunInProgress, match="another run is in progress"):
        run_cycle(engine, settings)
    assert table(engine, "runs") == []
    holder.release()
    assert run_cycle(engine, settings).status == "ok"


def test_a_run_that_loses_its_lease_mid_run_stops_and_leaves_the_new_holders_work_alone(fresh_db, samples_settings):
    """Another process takes the lease over between two series (as one would after this run's lease
    expired): the run raises LeaseLost at its next renewal, before storing anything more, is closed
    as failed, and neither the new holder's lease nor its run row is touched."""
    engine = fresh_db()
    now = pd.Timestamp.now(tz="UTC").to_pydatetime()
    taken: list[int] = []

    def take_over(message: str, problem: bool = False) -> None:
        if message.startswith("[train 1/2]") and not taken:
            with write_transaction(engine) as conn:
                other_run = conn.execute(
                    sa.insert(schema.runs)
                    .values(trigger="manual", status="running", started_at=now, host="elsewhere", pid=4321)
                    .returning(schema.runs.c.id)
                ).scalar_one()
                conn.execute(
                    sa.update(schema.run_lease)
                    .where(schema.run_lease.c.name == "run")
                    .values(holder="elsewhere:4321:new", host="elsewhere", pid=4321, run_id=other_run)
                )
            taken.append(other_run)

    with pytest.raises(LeaseLost, match="lost the run lease to another process"):
        run_cycle(engine, samples_settings(), progress=take_over)
    (other_run,) = taken
    runs = {r["id"]: r for r in table(engine, "runs")}
    (mine,) = [r for r in runs.values() if r["id"] != other_run]
    assert mine["status"] == "failed" and "lost the run lease" in mine["error"]
    assert (runs[other_run]["status"], runs[other_run]["finished_at"]) == ("running", None)
    ((holder, run_id),) = [(r["holder"], r["run_id"]) for r in table(engine, "run_lease")]
    assert (holder, run_id) == ("elsewhere:4321:new", other_run)
    # the first series' results were stored while the lease was ours; nothing after the loss
    assert len(table(engine, "fits")) == 1
    (fit,) = table(engine, "fits")
    assert {f["series_id"] for f in table(engine, "forecasts")} == {fit["series_id"]}


def test_a_stale_lease_is_taken_over(fresh_db, samples_settings):
    engine = fresh_db()
    now = pd.Timestamp.now(tz="UTC").to_pydatetime()
    with write_transaction(engine) as conn:  # a crashed holder: same host, a pid that no longer exists
        add_dead_holders_lease(conn, now)
    lease = acquire(engine)
    assert lease.taken_over and "pid 4206649" in lease.taken_over
    lease.release()
    with write_transaction(engine) as conn:  # an expired holder on another host
        conn.execute(
            sa.insert(schema.run_lease).values(
                name="run",
                holder="other",
                host="elsewhere",
                pid=1,
                run_id=None,
                acquired_at=now - timedelta(hours=2),
                expires_at=now - timedelta(hours=1),
            )
        )
    summary = run_cycle(engine, samples_settings())
    assert summary.status == "ok"
    assert table(engine, "run_lease") == []  # released at the end


@pytest.mark.parametrize(
    "last,freq,expected",
    [
        ("2024-11-22", "B", ["2024-11-25", "2024-11-26", "2024-11-27"]),  # a Friday
        ("2024-11-22", "D", ["2024-11-23", "2024-11-24", "2024-11-25"]),
        ("2024-11-22", "W", ["2024-11-29", "2024-12-06", "2024-12-13"]),
        ("2024-01-01", "M", ["2024-02-01", "2024-03-01", "2024-04-01"]),
        ("2024-01-31", "M", ["2024-02-29", "2024-03-31", "2024-04-30"]),
        ("2024-01-01", "Q", ["2024-04-01", "2024-07-01", "2024-10-01"]),
        ("2020-01-01", "A", ["2021-01-01", "2022-01-01", "2023-01-01"]),
    ],
)
def test_next_dates(last, freq, expected):
    assert [d.isoformat() for d in next_dates(date.fromisoformat(last), freq, 3)] == expected


def test_a_stop_request_ends_the_run_between_series(fresh_db, samples_settings):
    import threading

    engine = fresh_db()
    stop = threading.Event()

    def progress(message, problem=False):  # a SIGTERM arriving right after the first series was stored
        if message.startswith("[train 1/2]"):
            stop.set()

    summary = run_cycle(engine, samples_settings(), progress=progress, stop=stop)
    assert summary.stopped and summary.status == "failed"
    assert [o.fit for o in summary.outcomes].count("pending") == 1
    assert len(table(engine, "fits")) == 1
    (run,) = table(engine, "runs")
    assert run["status"] == "failed" and "stopped before finishing" in run["error"]
    resumed = run_cycle(engine, samples_settings())
    assert resumed.status == "ok" and sorted(o.fit for o in resumed.outcomes) == ["trained", "up-to-date"]


def test_a_stop_request_after_the_last_series_is_not_a_failure(fresh_db, samples_settings):
    import threading

    engine = fresh_db()
    stop = threading.Event()
    summary = run_cycle(
        engine,
        samples_settings(),
        stop=stop,
        progress=lambda m, problem=False: stop.set() if m.startswith("[train 2/2]") else None,
    )
    assert not summary.stopped and summary.status == "ok"


def _reads_during(engine, action):
    """The SELECT statements the engine runs during ``action()``, by the table they read first."""
    import re

    seen = []

    def record(conn, cursor, statement, parameters, context, executemany):
        table = re.search(r"\bFROM\s+(\w+)", statement)
        if statement.lstrip().upper().startswith("SELECT") and table:
            seen.append(table.group(1))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    return seen


def test_a_run_reads_the_series_and_fits_tables_a_fixed_number_of_times(fresh_db, make_settings, db_url):
    """The plan stage loads what it needs once: one read of the series table and two grouped reads of
    fits, however many series; only each warm start reads its own weights."""
    counts = {}
    engine = fresh_db()
    for samples in (["core-cpi"], ["core-cpi", "sp500", "wti"]):
        settings = make_settings(f"[watchlist]\nsample = {samples!r}\n".replace("'", '"') + FAST_MODEL, db_url=db_url)
        with write_transaction(engine) as conn:  # an empty database for each round
            for name in ("forecasts", "loss_history", "fits", "observations", "runs", "series"):
                conn.execute(sa.delete(schema.metadata.tables[name]))
        reads = _reads_during(engine, lambda settings=settings: run_cycle(engine, settings))
        counts[len(samples)] = (reads.count("series"), reads.count("fits"))
    assert counts[1] == counts[3], counts
    series_reads, fits_reads = counts[3]
    assert series_reads <= 3 and fits_reads == 2, counts  # sync (before and after) + plan; the fit states


def test_the_status_words_are_the_documented_ones():
    """The tables hold the words the README documents (people filter on them in SQL)."""
    import re
    from pathlib import Path

    from tickcast.service.status import FitMode, FitStatus, RunStatus, Trigger

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    runs_row = next(line for line in readme.splitlines() if line.startswith("| `runs` |"))
    documented = re.findall(r"`([a-z-]+)`", runs_row.split("|")[2])
    assert documented == [*Trigger] + [*RunStatus]
    assert [*FitStatus] == ["ok", "failed", "skipped"] and [*FitMode] == ["cold", "warm"]


def test_every_level_is_stored_and_the_wider_interval_contains_the_narrower(
    fresh_db, make_settings, make_series, db_url
):
    """Each model's forecast at 80 and 95 %: the 95 % interval contains the 80 % one at every step,
    also when each level's adaptive factor has moved its own way (the 80 % intervals missed every
    time and grew to the bound, the 95 % ones hit and shrank)."""
    rng = np.random.default_rng(5)
    values = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 203)))
    dates = pd.bdate_range("2023-03-01", periods=203)
    make_series("walk", values[:200], dates=dates[:200])
    settings = make_settings(
        '[[series]]\nkey = "csv:walk"\npath = "walk.csv"\nprice = true\n'
        + FAST_MODEL
        + "[forecast]\ninterval_adapt_rate = 1\n",
        db_url=db_url,
    )
    engine = fresh_db()
    run_cycle(engine, settings)
    with write_transaction(engine) as conn:  # the 80 % intervals had no width, the 95 % ones were huge
        f = schema.forecasts
        conn.execute(sa.update(f).where(f.c.level == 0.8).values(lower=f.c.value, upper=f.c.value))
        conn.execute(sa.update(f).where(f.c.level == 0.95).values(lower=f.c.value - 1e6, upper=f.c.value + 1e6))
    make_series("walk", values, dates=dates)  # three days later: three forecasts of each scored
    run_cycle(engine, settings)
    second = dates[202].date()
    rows = {(r["model"], r["step"], r["level"]): r for r in table(engine, "forecasts") if r["origin_ts"] == second}
    assert len(rows) == 5 * ROWS_PER_STEP
    nested = 0
    for model in ("published", *MEMBERS):
        for step in range(1, 6):
            narrow, wide = rows[(model, step, 0.8)], rows[(model, step, 0.95)]
            assert narrow["interval_factor"] == 4.0  # exp(1 x 3 x 0.8) = 11, bounded
            assert wide["interval_factor"] == pytest.approx(math.exp(-3 * 0.05), rel=1e-12)
            assert wide["lower"] <= narrow["lower"] <= narrow["value"] <= narrow["upper"] <= wide["upper"]
            assert narrow["value"] == wide["value"]
            nested += (wide["lower"], wide["upper"]) == (narrow["lower"], narrow["upper"])
    assert nested  # the factors alone would have left some 95 % intervals inside the 80 % ones
