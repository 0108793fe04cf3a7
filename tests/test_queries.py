"""The read side (service/queries.py) on a real database: what `tickcast forecasts`, `history` and
`health` show, checked against the rows they read.

Two kinds of state: a real run of two CSV series (the forecasts and loss histories it stored),
and runs, fits and leases written row by row where a case needs a state a run makes only by
accident (a run every series of which failed, a clock ahead of this one, a lease held elsewhere)."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from tickcast.service import schema
from tickcast.service.cli import main
from tickcast.service.clock import as_utc
from tickcast.service.config import load_settings
from tickcast.service.db import open_database, open_existing_database, write_transaction
from tickcast.service.errors import TickcastError
from tickcast.service.queries import (
    RUN_FIRST,
    NothingStored,
    completed_run_since,
    forecast_columns,
    health,
    last_verdict_run,
    latest_fit,
    latest_forecasts,
    level_name,
    loss_history,
    recent_observations,
)

from .support.small_model import small_model

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for key in list(os.environ):
        if key.startswith("TICKCAST_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("TICKCAST_WORKERS", "1")


def _write(path, start: str, values) -> None:
    dates = pd.date_range(start, periods=len(values), freq="D")
    pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "value": values}).to_csv(path, index=False)


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """Two series run twice (beta gains points in between: two fits, alpha one and then up to date)."""
    folder = tmp_path_factory.mktemp("queries")
    _write(folder / "beta.csv", "2021-01-01", [10.0 + (i % 7) + 0.1 * i for i in range(60)])
    _write(folder / "alpha.csv", "2021-01-01", [50.0 - 0.3 * i + (i % 5) for i in range(50)])
    config = folder / "tickcast.toml"
    config.write_text(
        '[watchlist]\n\n[[series]]\nkey = "csv:beta"\npath = "beta.csv"\n\n[[series]]\nkey = "csv:alpha"\n'
        'path = "alpha.csv"\n\n[forecast]\nhorizon = 3\n' + small_model()
    )
    url = f"sqlite:///{folder / 'tickcast.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TICKCAST_WORKERS", "1")
        assert main(["--config", str(config), "--db", url, "-q", "run"]) == 0
        _write(folder / "beta.csv", "2021-01-01", [10.0 + (i % 7) + 0.1 * i for i in range(64)])
        assert main(["--config", str(config), "--db", url, "-q", "run"]) == 0
    return config, url


def _rows(engine, sql: str, **params) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(sql), params)]


# ---------------------------------------------------------------------------- forecasts
def test_latest_forecasts_are_the_published_rows_of_each_series_newest_fit(ran, capsys):
    config, url = ran
    engine = open_existing_database(url)
    try:
        rows = latest_forecasts(engine)
        newest = {
            r["key"]: r
            for r in _rows(
                engine,
                "SELECT s.key, s.id, MAX(f.id) AS fit_id FROM fits f JOIN series s ON s.id = f.series_id "
                "WHERE f.status = 'ok' AND f.backfill = 0 GROUP BY s.key, s.id",
            )
        }
        assert sorted(newest) == ["csv:alpha", "csv:beta"]
        fits_of_beta = _rows(engine, "SELECT id FROM fits WHERE series_id = :s", s=newest["csv:beta"]["id"])
        assert len(fits_of_beta) == 2  # the newest of two is shown
        assert [(r["series_key"], r["step"]) for r in rows] == [
            (k, s) for k in ("csv:alpha", "csv:beta") for s in (1, 2, 3)
        ]
        for row in rows:
            series = newest[row["series_key"]]
            stored = _rows(
                engine,
                "SELECT step, level, value, lower, upper, target_ts, origin_ts, created_at FROM forecasts "
                "WHERE fit_id = :fit AND model = 'published' AND step = :step ORDER BY level",
                fit=series["fit_id"],
                step=row["step"],
            )
            assert [s["level"] for s in stored] == row["levels"] == [0.8, 0.95]
            (fit,) = _rows(engine, "SELECT created_at FROM fits WHERE id = :f", f=series["fit_id"])
            assert row["fit_id"] == series["fit_id"]
            assert row["fitted_at"] == as_utc(datetime.fromisoformat(str(fit["created_at"])))
            assert row["fitted_at"].utcoffset() == timedelta(0)
            assert row["forecast"] == stored[0]["value"]
            assert (row["lower_80"], row["upper_80"]) == (stored[0]["lower"], stored[0]["upper"])
            assert (row["lower_95"], row["upper_95"]) == (stored[1]["lower"], stored[1]["upper"])
            assert (row["lower"], row["upper"], row["level"]) == (stored[0]["lower"], stored[0]["upper"], 0.8)
            last = _rows(
                engine,
                "SELECT ts, value FROM observations WHERE series_id = :s ORDER BY ts DESC LIMIT 1",
                s=series["id"],
            )[0]
            assert str(row["last_ts"]) == str(last["ts"]) and row["last_value"] == last["value"]
            assert row["change_pct"] == pytest.approx(100 * (row["forecast"] - last["value"]) / abs(last["value"]))

        only = latest_forecasts(engine, "csv:beta")
        assert only == [r for r in rows if r["series_key"] == "csv:beta"]
        assert forecast_columns(rows) == [
            "series_key", "last_ts", "last_value", "target_ts", "step", "forecast",
            "lower_80", "upper_80", "lower_95", "upper_95", "change_pct", "skill",
        ]  # fmt: skip
    finally:
        engine.dispose()

    assert main(["--config", str(config), "--db", url, "forecasts", "--format", "csv"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert header.split(",")[:6] == ["series_key", "series_name", "last_ts", "last_value", "target_ts", "step"]
    assert main(["--config", str(config), "--db", url, "forecasts", "csv:alpha"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == forecast_columns(rows) and len(table) == 1 + 1 + 3  # header, rule, three steps


def test_forecast_columns_name_every_level_in_order():
    rows = [{"levels": [0.8, 0.975]}, {"levels": [0.5, 0.8]}]
    assert forecast_columns(rows) == [
        "series_key", "last_ts", "last_value", "target_ts", "step", "forecast",
        "lower_50", "upper_50", "lower_80", "upper_80", "lower_97.5", "upper_97.5", "change_pct", "skill",
    ]  # fmt: skip
    assert forecast_columns([{}]) == [
        "series_key", "last_ts", "last_value", "target_ts", "step", "forecast", "change_pct", "skill"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("level", "name"), [(0.8, "80"), (0.95, "95"), (0.975, "97.5"), (0.57, "57"), (0.999, "99.9"), (0.5, "50")]
)
def test_a_level_is_named_in_percent(level, name):
    assert level_name(level) == name


def test_the_loss_history_is_the_newest_fit_s_stored_epochs(ran, capsys):
    config, url = ran
    engine = open_existing_database(url)
    try:
        for key in ("csv:alpha", "csv:beta"):
            history = loss_history(engine, key)
            (newest,) = _rows(
                engine,
                "SELECT MAX(f.id) AS id FROM fits f JOIN series s ON s.id = f.series_id "
                "WHERE s.key = :k AND f.status = 'ok'",
                k=key,
            )
            assert history.fit.id == history.model_fit.id == newest["id"] and not history.shared
            stored = _rows(
                engine,
                "SELECT epoch, train_loss, val_loss, grad_norm, clip_fraction FROM loss_history "
                "WHERE fit_id = :f ORDER BY epoch",
                f=newest["id"],
            )
            assert stored and history.rows == stored
            fit = history.fit
            assert history.describe(key) == (
                f"fit {fit.id} of {key}: {fit.mode} {fit.cell}, {fit.epochs} epochs (best {fit.best_epoch}), "
                f"train {fit.train_start} .. {fit.train_end}, {fit.seconds:.2f} s"
            )
        assert main(["--config", str(config), "--db", url, "history", "csv:beta"]) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[0] == loss_history(engine, "csv:beta").describe("csv:beta")
        assert out[1].split() == ["epoch", "train_loss", "val_loss", "grad_norm", "clip_fraction"]
    finally:
        engine.dispose()


def test_recent_observations_are_the_newest_in_date_order(ran):
    _, url = ran
    engine = open_existing_database(url)
    try:
        (beta,) = _rows(engine, "SELECT id FROM series WHERE key = 'csv:beta'")
        stored = _rows(engine, "SELECT ts, value FROM observations WHERE series_id = :s ORDER BY ts", s=beta["id"])
        got = recent_observations(engine, beta["id"], 5)
        assert [(str(ts), v) for ts, v in got] == [(str(r["ts"]), r["value"]) for r in stored[-5:]]
    finally:
        engine.dispose()


# ---------------------------------------------------------------------------- rows written by hand
class Rows:
    """Writes series, runs, fits and forecasts into an upgraded database."""

    def __init__(self, url: str):
        self.engine = open_database(url)

    def _insert(self, table: sa.Table, **values) -> int:
        with write_transaction(self.engine) as conn:
            return conn.execute(sa.insert(table).values(**values).returning(table.c.id)).scalar_one()

    def series(self, key: str, **values) -> int:
        source, symbol = key.split(":", 1)
        return self._insert(
            schema.series, key=key, source=source, symbol=symbol, created_at=NOW - timedelta(days=30), **values
        )

    def run(self, status: str, started: datetime, finished: datetime | None = None, **values) -> int:
        values = {"trigger": "manual", **values}
        return self._insert(schema.runs, status=status, started_at=started, finished_at=finished, **values)

    def fit(self, series_id: int, status: str, **values) -> int:
        return self._insert(schema.fits, series_id=series_id, status=status, created_at=NOW, **values)

    def forecast(self, series_id: int, fit_id: int, step: int, level: float, value: float) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(
                sa.insert(schema.forecasts).values(
                    series_id=series_id,
                    origin_ts=date(2026, 3, 1),
                    step=step,
                    level=level,
                    fit_id=fit_id,
                    target_ts=date(2026, 3, 1) + timedelta(days=step),
                    value=value,
                    lower=value - 10 * level,
                    upper=value + 10 * level,
                    created_at=NOW,
                )
            )

    def lease(self, run_id: int, host: str, expires: datetime) -> None:
        with write_transaction(self.engine) as conn:
            conn.execute(
                sa.insert(schema.run_lease).values(
                    name="run",
                    holder=f"{host}:1:abc",
                    host=host,
                    pid=1,
                    run_id=run_id,
                    acquired_at=NOW - timedelta(hours=1),
                    expires_at=expires,
                )  # fmt: skip
            )


@pytest.fixture
def rows(db_url):
    made = Rows(db_url)
    yield made
    made.engine.dispose()


def test_rows_of_a_forecast_are_grouped_in_key_step_and_level_order_whatever_the_order_stored(rows):
    zeta, alpha = rows.series("csv:zeta"), rows.series("csv:alpha")  # zeta has the lower id
    for sid in (zeta, alpha):
        fit = rows.fit(sid, "ok")
        for step in (3, 2, 1):
            for level in (0.95, 0.8):
                rows.forecast(sid, fit, step, level, 100.0 * sid + step)
    got = latest_forecasts(rows.engine)
    assert [(r["series_key"], r["step"], r["levels"]) for r in got] == [
        (key, step, [0.8, 0.95]) for key in ("csv:alpha", "csv:zeta") for step in (1, 2, 3)
    ]
    for r in got:
        assert (r["level"], r["lower"], r["upper"]) == (0.8, r["forecast"] - 8.0, r["forecast"] + 8.0)
        assert (r["lower_95"], r["upper_95"]) == (r["forecast"] - 9.5, r["forecast"] + 9.5)
    assert [r["series_key"] for r in latest_forecasts(rows.engine, "csv:zeta")] == ["csv:zeta"] * 3


def test_why_a_series_has_no_forecast_yet(rows):
    engine = rows.engine
    with pytest.raises(NothingStored) as empty:
        latest_forecasts(engine)
    assert str(empty.value) == f"no forecasts yet: {RUN_FIRST}"
    with pytest.raises(TickcastError) as unknown:
        latest_forecasts(engine, "csv:nothing")
    assert str(unknown.value) == (
        "unknown series 'csv:nothing': not in the database (run 'tickcast ingest' or 'tickcast run' first, "
        "or check 'tickcast forecasts' for the known keys)"
    )
    cases = {}
    cases["csv:fresh"] = (None, RUN_FIRST)  # no fit at all, while another series' fit failed
    other = rows.series("csv:other")
    rows.fit(other, "failed", error="other's failure")
    fetched = rows.series("csv:fetched", last_error="csv:fetched: cannot connect")
    rows.fit(fetched, "failed", error="not this")
    cases["csv:fetched"] = (fetched, "its last fetch failed: cannot connect")
    skipped = rows.series("csv:skipped")
    rows.fit(skipped, "failed", error="an older failure")
    rows.fit(skipped, "skipped", error="too short to train")
    cases["csv:skipped"] = (skipped, "its newest fit was skipped: too short to train")
    failed = rows.series("csv:failed")
    rows.fit(failed, "skipped", error="an older skip")
    rows.fit(failed, "failed", error="training diverged")
    rows.fit(failed, "failed", error="a backfill's failure", backfill=1)
    cases["csv:failed"] = (failed, "its newest fit failed: training diverged")
    quiet = rows.series("csv:quiet")
    rows.fit(quiet, "failed")  # no reason stored
    cases["csv:quiet"] = (quiet, RUN_FIRST)
    unpublished = rows.series("csv:unpublished")
    rows.fit(unpublished, "ok")  # a fit without forecasts
    cases["csv:unpublished"] = (unpublished, RUN_FIRST)
    rows.series("csv:fresh")
    for key, (_, why) in cases.items():
        with pytest.raises(NothingStored) as nothing:
            latest_forecasts(engine, key)
        assert str(nothing.value) == f"no forecasts yet for {key}: {why}", key
        if key != "csv:unpublished":
            with pytest.raises(NothingStored) as no_fit:
                loss_history(engine, key)
            assert str(no_fit.value) == f"no successful fit yet for {key}: {why}", key


def test_the_latest_fit_is_the_newest_successful_one_that_is_not_a_backfill(rows):
    sid = rows.series("csv:s")
    first = rows.fit(sid, "ok")
    rows.fit(sid, "ok", backfill=1)
    rows.fit(sid, "failed", error="x")
    rows.fit(rows.series("csv:t"), "ok")
    assert latest_fit(rows.engine, sid).id == first
    second = rows.fit(sid, "ok")
    rows.fit(sid, "skipped", error="y")
    assert latest_fit(rows.engine, sid).id == second
    assert latest_fit(rows.engine, rows.series("csv:u")) is None


def test_a_history_without_seconds_and_one_of_a_group_s_shared_fit(rows):
    sid = rows.series("csv:s")
    common = dict(mode="cold", cell="gru", epochs=4, best_epoch=2, train_start=date(2020, 1, 1))
    own = rows.fit(sid, "ok", train_end=date(2020, 3, 1), **common)
    with write_transaction(rows.engine) as conn:
        for epoch in (2, 0, 1):  # stored out of order
            conn.execute(sa.insert(schema.loss_history).values(fit_id=own, epoch=epoch, train_loss=1.0 / (epoch + 1)))
    history = loss_history(rows.engine, "csv:s")
    assert (
        history.describe("csv:s") == f"fit {own} of csv:s: cold gru, 4 epochs (best 2), train 2020-01-01 .. 2020-03-01"
    )
    assert [r["epoch"] for r in history.rows] == [0, 1, 2]
    assert history.rows[1] == {
        "epoch": 1,
        "train_loss": 0.5,
        "val_loss": None,
        "grad_norm": None,
        "clip_fraction": None,
    }

    group = rows.fit(
        None, "ok", scope="group", group_key="D", n_series=2, seconds=1.5, train_end=date(2020, 4, 1), **common
    )
    with write_transaction(rows.engine) as conn:
        conn.execute(sa.insert(schema.loss_history).values(fit_id=group, epoch=0, train_loss=3.0, grad_norm=0.5))
    member = rows.fit(sid, "ok", group_fit_id=group)
    shared = loss_history(rows.engine, "csv:s")
    assert shared.fit.id == member and shared.model_fit.id == group and shared.shared
    assert shared.rows == [{"epoch": 0, "train_loss": 3.0, "val_loss": None, "grad_norm": 0.5, "clip_fraction": None}]
    assert shared.describe("csv:s") == (
        f"fit {member} of csv:s uses group D's shared fit {group}, shared by 2 series: cold gru, 4 epochs "
        "(best 2), train 2020-01-01 .. 2020-04-01, 1.50 s"
    )


# ---------------------------------------------------------------------------- health
def _settings(tmp_path, db_url, max_age_hours=10, max_failed_fraction=0.25):
    path = tmp_path / "health.toml"
    path.write_text(
        f"[watchlist]\n\n[schedule]\nmax_age_hours = {max_age_hours}\nmax_failed_fraction = {max_failed_fraction}\n"
    )
    return load_settings(str(path), db_url=db_url, env={})


def test_health_of_runs_that_went_well_or_too_long_ago(rows, tmp_path, db_url):
    settings = _settings(tmp_path, db_url)
    assert health(rows.engine, settings, now=NOW) == (False, "unhealthy: no completed run yet")
    rows.run("ok", NOW - timedelta(hours=11), NOW - timedelta(hours=10), series_total=4, series_ok=3, series_failed=1)
    assert health(rows.engine, settings, now=NOW) == (True, "ok: run 1 (ok) finished 10.0 h ago; 1 of 4 series failed")
    assert health(rows.engine, settings, now=NOW + timedelta(seconds=1)) == (
        False,
        "unhealthy: the last completed run (1, ok) finished 10.0 h ago, more than schedule.max_age_hours = 10",
    )
    finished = NOW - timedelta(hours=9.951)  # 9.951 h shows as 10.0
    rows.run("partial", finished - timedelta(minutes=5), finished, series_total=4, series_ok=4)
    assert health(rows.engine, settings, now=NOW) == (True, "ok: run 2 (partial) finished 10.0 h ago")
    # a finish up to a minute ahead of this clock is not skew; a second more is
    ahead = NOW + timedelta(minutes=1)
    rows.run("ok", NOW - timedelta(minutes=1), ahead, series_total=1, series_ok=1)
    assert health(rows.engine, settings, now=NOW) == (True, "ok: run 3 (ok) finished 0.0 h ago")
    rows.run("ok", NOW, ahead + timedelta(hours=2), series_total=1, series_ok=1)
    ok, message = health(rows.engine, settings, now=NOW)
    assert not ok and message == (
        "unhealthy: clock skew: the last completed run (4, ok) finished at 2026-03-02 14:01 UTC, 2.0 h ahead "
        "of this machine's clock (2026-03-02 12:00 UTC): the clock of this machine or of the one that ran it is wrong"
    )


def test_health_names_the_series_that_failed(rows, tmp_path, db_url):
    settings = _settings(tmp_path, db_url)
    started = NOW - timedelta(hours=2)
    run = rows.run("partial", started, NOW - timedelta(hours=1), series_total=8, series_ok=5, series_failed=3)
    long_reason = "x" * 81
    for key, error in (("csv:d", "csv:d: diverged\nTraceback ..."), ("csv:b", None), ("csv:a", long_reason)):
        rows.fit(rows.series(key), "failed", error=error, run_id=run)
    rows.series("csv:e", last_error="csv:e: " + "y" * 80, last_fetch_at=started)  # stored before c
    rows.series("csv:c", last_error="csv:c: cannot connect", last_fetch_at=started + timedelta(minutes=1))
    rows.fit(rows.series("csv:fine", last_fetch_at=started), "ok", run_id=run)  # fetched and fitted
    rows.fit(rows.series("csv:short"), "skipped", error="too short", run_id=run)
    rows.series("csv:old", last_error="before the run", last_fetch_at=started - timedelta(seconds=1))
    rows.series("csv:gone", last_error="inactive", last_fetch_at=started, active=False)
    rows.fit(rows.series("csv:other"), "failed", error="another run's", run_id=rows.run("failed", started, started))
    ok, message = health(rows.engine, settings, now=NOW)
    assert not ok and message == (
        "unhealthy: run 1 (partial) finished 1.0 h ago, 3 of 8 series failed: csv:a (" + "x" * 77 + "...), "
        "csv:b (no reason stored), csv:d (diverged) and 2 more: more than schedule.max_failed_fraction = 0.25"
    )
    # the fetch's reason is the one named when a series' fetch and fit both failed; 80 characters stay whole
    rows.fit(rows.series("csv:0"), "failed", error="its fit", run_id=run)
    with write_transaction(rows.engine) as conn:
        conn.execute(
            sa.update(schema.series)
            .where(schema.series.c.key.in_(["csv:0", "csv:a", "csv:b", "csv:d"]))
            .values(last_error=None)
        )
        conn.execute(
            sa.update(schema.series)
            .where(schema.series.c.key == "csv:0")
            .values(last_error="csv:0: its fetch", last_fetch_at=NOW)
        )
        conn.execute(
            sa.delete(schema.fits).where(schema.fits.c.error.in_(["x" * 81, "csv:d: diverged\nTraceback ..."]))
        )
        conn.execute(sa.delete(schema.fits).where(schema.fits.c.error.is_(None)))
    assert health(rows.engine, settings, now=NOW)[1] == (
        "unhealthy: run 1 (partial) finished 1.0 h ago, 3 of 8 series failed: csv:0 (its fetch), csv:c (cannot "
        "connect), csv:e (" + "y" * 80 + "): more than schedule.max_failed_fraction = 0.25"
    )
    rows.fit(rows.series("csv:1"), "failed", error="one more", run_id=run)
    assert health(rows.engine, settings, now=NOW)[1].endswith(
        ": csv:0 (its fetch), csv:1 (one more), csv:c (cannot connect) and 1 more: more than "
        "schedule.max_failed_fraction = 0.25"
    )  # the failed fits first (csv:0's named by its fetch), then the other fetches


def test_health_when_every_series_failed_and_which_runs_give_the_verdict(rows, tmp_path, db_url):
    settings = _settings(tmp_path, db_url, max_failed_fraction=1)
    hour = timedelta(hours=1)
    rows.run("ok", NOW - 9 * hour, NOW - 9 * hour, series_total=1, series_ok=1)  # 1
    verdicts = {1: "ok: run 1 (ok) finished 9.0 h ago"}
    # runs that say nothing of the sources or the models: each newer than the last verdict, none replaces it
    rows.run("running", NOW - 8 * hour)  # 2: in progress or abandoned (named: see below)
    rows.run("failed", NOW - 7 * hour, None, series_total=1, series_failed=1)  # 3: never finished
    rows.run("ok", NOW - 6 * hour, NOW - 6 * hour, trigger="backfill", series_total=1, series_ok=1)  # 4
    rows.run("failed", NOW - 5 * hour, NOW - 5 * hour, series_total=0)  # 5: failed before any series
    rows.run("failed", NOW - 4 * hour, NOW - 4 * hour, series_total=2, series_ok=1, series_failed=1)  # 6: crashed
    rows.run("failed", NOW - 3 * hour, NOW - 3 * hour, series_total=3, series_failed=1, series_skipped=1)  # 7: stopped
    assert last_verdict_run(rows.engine).id == 1
    assert health(rows.engine, settings, now=NOW)[1].startswith(verdicts[1] + "; run 2 is still marked running")
    rows.run("failed", NOW - 2 * hour, NOW - 2 * hour, series_total=3, series_failed=2, series_skipped=1)  # 8
    assert last_verdict_run(rows.engine).id == 8
    ok, message = health(rows.engine, settings, now=NOW)
    assert not ok and message.startswith(
        "unhealthy: run 8 finished 2.0 h ago and every series failed (2 of 3 series failed); run 2 is still marked"
    )
    rows.run("failed", NOW - hour, NOW - hour, series_total=1, series_failed=1)  # 9: one series, failed
    assert last_verdict_run(rows.engine).id == 9
    rows.run("partial", NOW - hour, NOW - hour / 2, series_total=2, series_ok=1, series_failed=1)  # 10
    assert health(rows.engine, settings, now=NOW)[1].startswith(
        "ok: run 10 (partial) finished 0.5 h ago; 1 of 2 series failed; run 2 "
    )


def test_health_names_runs_still_marked_running(rows, tmp_path, db_url):
    settings = _settings(tmp_path, db_url)
    rows.run("ok", NOW - timedelta(hours=3), NOW - timedelta(hours=2), series_total=1, series_ok=1)
    first = rows.run("running", datetime(2026, 3, 2, 9, 0, tzinfo=UTC), host="h1", pid=11)
    second = rows.run("running", datetime(2026, 3, 2, 10, 30, tzinfo=UTC), host="h2", pid=22)
    rows.lease(second, "elsewhere.invalid", NOW + timedelta(minutes=5))  # held by a live process of another host
    ok, message = health(rows.engine, settings, now=NOW)
    assert ok and message == (
        "ok: run 1 (ok) finished 2.0 h ago"
        f"; run {first} is still marked running but its process is gone (started 2026-03-02 09:00 UTC by pid 11 "
        "on h1): it crashed or was killed; the next run records it as failed"
        f"; run {second} in progress (started 2026-03-02 10:30 UTC by pid 22 on h2)"
    )
    later = NOW + timedelta(minutes=10)  # the lease expired: its holder is gone too
    assert (
        f"; run {second} is still marked running but its process is gone" in health(rows.engine, settings, now=later)[1]
    )


def test_a_completed_run_since(rows):
    engine = rows.engine
    since = NOW - timedelta(hours=1)
    assert not completed_run_since(engine, since, now=NOW)
    rows.run("ok", since - timedelta(seconds=1), since)  # started before
    assert completed_run_since(engine, since - timedelta(seconds=1), now=NOW)  # at the instant counts
    rows.run("failed", since, since)
    rows.run("running", since)
    rows.run("ok", since, since, trigger="backfill")
    assert not completed_run_since(engine, since, now=NOW)
    rows.run("ok", NOW + timedelta(minutes=1, seconds=1), None)  # started in the future: a wrong clock
    assert not completed_run_since(engine, since, now=NOW)
    rows.run("partial", NOW + timedelta(minutes=1), None)  # within the tolerance of clocks
    assert completed_run_since(engine, since, now=NOW)
    assert not completed_run_since(engine, NOW + timedelta(minutes=1, microseconds=1), now=NOW)
