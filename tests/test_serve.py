"""The daemon and the commands around it, as real processes: `tickcast serve` with its scheduler,
signals, catch-up and health; `run` refused beside a running one; the read commands."""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tickcast.service import schema
from tickcast.service.db import open_database, write_transaction
from tickcast.service.lease import acquire
from tickcast.service.queries import health
from tickcast.service.scheduler import Service, cron_trigger, last_fire_time, needs_catch_up

from .support.cli import run_cli
from .support.daemon import Daemon, db_rows
from .support.small_model import FAST_MODEL as FAST
from .support.tables import ROWS_PER_STEP


@pytest.fixture
def workdir(tmp_path):
    """A data dir and config for real `tickcast` processes: two bundled samples, fast model."""
    cfg = tmp_path / "tickcast.toml"
    cfg.write_text('[service]\nworkers = 1\n[watchlist]\nsample = ["sp500", "core-cpi"]\n' + FAST)
    env = {"TICKCAST_CONFIG": str(cfg), "TICKCAST_DATA_DIR": str(tmp_path / "data")}
    return tmp_path, env


def test_serve_runs_now_then_stops_cleanly_on_sigterm(workdir):
    tmp_path, env = workdir
    daemon = Daemon(["serve", "--run-now"], env)
    daemon.wait_for("next run")
    daemon.wait_for("finished: ok")
    assert daemon.terminate() == 0
    assert any("stopped" in line for line in daemon.lines)
    runs = db_rows(tmp_path, "SELECT trigger, status FROM runs")
    assert runs == [("manual", "ok")]
    # a trading week, 18 months: the published forecast and each model's, at every level
    assert db_rows(tmp_path, "SELECT count(*) FROM forecasts") == [((5 + 18) * ROWS_PER_STEP,)]
    assert db_rows(tmp_path, "SELECT count(*) FROM forecasts WHERE model = 'published' AND level = 0.8") == [(5 + 18,)]
    assert db_rows(tmp_path, "SELECT count(*) FROM run_lease") == [(0,)]
    assert run_cli("health", env=env).returncode == 0


def test_sigterm_during_a_run_exits_0_and_the_next_run_resumes(workdir):
    tmp_path, env = workdir
    cfg = tmp_path / "tickcast.toml"
    cfg.write_text(
        cfg.read_text()
        .replace('sample = ["sp500", "core-cpi"]', 'sample = ["sp500", "nasdaq", "wti", "core-cpi"]')
        .replace("epochs = 3", "epochs = 60\npatience = 100")
    )  # fits long enough to interrupt
    daemon = Daemon(["serve", "--run-now"], env)
    daemon.wait_for("[train 1/4]")
    assert daemon.terminate() == 0
    assert db_rows(tmp_path, "SELECT count(*) FROM runs WHERE status = 'running'") == [(0,)]
    ((status, error),) = db_rows(tmp_path, "SELECT status, error FROM runs")
    assert status == "failed" and "stopped before finishing" in error
    assert db_rows(tmp_path, "SELECT count(*) FROM run_lease") == [(0,)]
    done = db_rows(tmp_path, "SELECT count(*) FROM fits")[0][0]
    assert 1 <= done < 4
    # every stored fit is complete: its loss history and its forecasts are there
    assert db_rows(
        tmp_path, "SELECT count(*) FROM fits f WHERE NOT EXISTS (SELECT 1 FROM forecasts x WHERE x.fit_id = f.id)"
    ) == [(0,)]
    resumed = run_cli("run", "-q", env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert db_rows(tmp_path, "SELECT count(*) FROM fits") == [(4,)]  # only the rest were trained
    assert db_rows(tmp_path, "SELECT count(*) FROM forecasts WHERE model = 'published' AND level = 0.8") == [
        (3 * 5 + 18,)
    ]  # three price samples a trading week each, core-cpi 18 months
    assert db_rows(tmp_path, "SELECT count(*) FROM forecasts") == [((3 * 5 + 18) * ROWS_PER_STEP,)]


def test_serve_catches_up_a_missed_run_exactly_once(workdir):
    tmp_path, env = workdir
    cfg = tmp_path / "tickcast.toml"
    cfg.write_text(cfg.read_text() + '\n[schedule]\ncron = "0 0 * * *"\ntimezone = "UTC"\n')  # fired at midnight
    daemon = Daemon(["serve"], env)
    daemon.wait_for("catching up the run scheduled for")
    daemon.wait_for("finished: ok")
    assert daemon.terminate() == 0
    again = Daemon(["serve"], env)  # a restart after the catch-up run: nothing to catch up
    again.wait_for("next run")
    time.sleep(1.0)
    assert again.terminate() == 0
    assert not any("catching up" in line for line in again.lines)
    assert db_rows(tmp_path, "SELECT trigger, status FROM runs") == [("catch-up", "ok")]


def test_the_scheduled_job_function_runs_a_cycle(make_settings, sqlite_url):
    settings = make_settings('[watchlist]\nsample = ["core-cpi"]\n' + FAST, db_url=sqlite_url)
    engine = open_database(sqlite_url)
    service = Service(engine, settings)
    runner = threading.Thread(target=service.scheduler.start)  # the real scheduler, in a thread
    runner.start()
    try:
        deadline = time.time() + 10
        while not service.scheduler.running and time.time() < deadline:
            time.sleep(0.01)
        job = service.scheduler.get_job("daily-run")
        assert job.coalesce is True and job.max_instances == 1 and job.misfire_grace_time == 6 * 3600
        assert job.next_run_time.tzinfo is not None and str(job.trigger.timezone) == "America/New_York"
    finally:
        service.scheduler.shutdown(wait=True)
        runner.join(timeout=10)
    service.job("schedule")
    (summary,) = service.runs
    assert summary.status == "ok"
    with engine.connect() as conn:
        assert conn.execute(sa.select(schema.runs.c.trigger)).scalars().all() == ["schedule"]


def test_catch_up_logic_and_health(make_settings, sqlite_url):
    settings = make_settings(
        '[watchlist]\nsample = ["core-cpi"]\n[schedule]\ncron = "30 17 * * mon-fri"\n'
        'timezone = "America/New_York"\nmax_age_hours = 30\n',
        db_url=sqlite_url,
    )
    engine = open_database(sqlite_url)
    saturday = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    friday_run = datetime(2026, 11, 20, 22, 30, tzinfo=UTC)  # 17:30 in New York
    assert last_fire_time(cron_trigger(settings), saturday) == friday_run
    assert needs_catch_up(engine, settings, saturday) == friday_run
    assert health(engine, settings, saturday) == (False, "unhealthy: no completed run yet")
    with write_transaction(engine) as conn:
        conn.execute(
            sa.insert(schema.runs).values(
                trigger="schedule", status="ok", started_at=friday_run, finished_at=friday_run + timedelta(minutes=5)
            )
        )
    assert needs_catch_up(engine, settings, saturday) is None
    ok, message = health(engine, settings, saturday)
    assert ok and message.startswith("ok: run 1 (ok) finished 13.4 h ago")
    ok, message = health(engine, settings, saturday + timedelta(days=2))
    assert not ok and "more than schedule.max_age_hours = 30" in message


def _add_run(engine, status, ok=0, failed=0, skipped=0, total=None, finished=None, error=None):
    finished = finished or datetime(2026, 11, 20, 22, 35, tzinfo=UTC)
    with write_transaction(engine) as conn:
        conn.execute(
            sa.insert(schema.runs).values(
                trigger="schedule",
                status=status,
                started_at=finished - timedelta(minutes=5),
                finished_at=finished,
                series_ok=ok,
                series_failed=failed,
                series_skipped=skipped,
                series_total=ok + failed + skipped if total is None else total,
                error=error,
            )
        )


def test_health_judges_the_newest_run_that_went_through_its_series(make_settings, sqlite_url):
    settings = make_settings('[watchlist]\nsample = ["core-cpi"]\n', db_url=sqlite_url)
    strict = make_settings(
        '[watchlist]\nsample = ["core-cpi"]\n[schedule]\nmax_failed_fraction = 0.3\n', db_url=sqlite_url
    )
    lenient = make_settings(
        '[watchlist]\nsample = ["core-cpi"]\n[schedule]\nmax_failed_fraction = 1\n', db_url=sqlite_url
    )
    engine = open_database(sqlite_url)
    saturday = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    _add_run(engine, "ok", ok=10)
    assert health(engine, settings, saturday) == (True, "ok: run 1 (ok) finished 13.4 h ago")
    _add_run(engine, "partial", ok=5, failed=4, skipped=1)
    assert health(engine, settings, saturday) == (
        True,
        "ok: run 2 (partial) finished 13.4 h ago; 4 of 10 series failed",
    )
    ok, message = health(engine, strict, saturday)
    assert not ok and message == (
        "unhealthy: run 2 (partial) finished 13.4 h ago, 4 of 10 series failed: more than "
        "schedule.max_failed_fraction = 0.3"
    )
    # stopped part-way, abandoned by a crash: no verdict, the run before them still counts
    _add_run(engine, "failed", ok=2, total=10, error="stopped before finishing; ...")
    _add_run(engine, "failed", total=0, error="abandoned: the process running it died")
    assert health(engine, settings, saturday)[1].startswith("ok: run 2 (partial)")
    _add_run(engine, "partial", ok=4, failed=6)
    assert health(engine, settings, saturday) == (
        False,
        "unhealthy: run 5 (partial) finished 13.4 h ago, 6 of 10 series failed: more than "
        "schedule.max_failed_fraction = 0.5",
    )
    assert health(engine, lenient, saturday)[0]
    # every series that could run failed: unhealthy whatever the setting
    _add_run(engine, "failed", failed=9, skipped=1)
    for any_settings in (settings, lenient):
        assert health(engine, any_settings, saturday) == (
            False,
            "unhealthy: run 6 finished 13.4 h ago and every series failed (9 of 10 series failed)",
        )
    _add_run(engine, "ok", ok=10, finished=saturday - timedelta(hours=1))
    assert health(engine, settings, saturday) == (True, "ok: run 7 (ok) finished 1.0 h ago")
    engine.dispose()


def test_health_command_with_failing_series(tmp_path, make_series):
    """The healthcheck's command after real runs in which some, then all, series fail to fetch."""
    make_series("gone", [float(i) for i in range(1, 41)])
    (tmp_path / "gone.csv").unlink()  # configured, but the file is missing: its fetch fails
    series = '[[series]]\nkey = "csv:gone"\npath = "gone.csv"\n'
    cfg = tmp_path / "tickcast.toml"
    cfg.write_text('[service]\nworkers = 1\n[watchlist]\nsample = ["core-cpi"]\n' + FAST + series)
    env = {"TICKCAST_CONFIG": str(cfg), "TICKCAST_DATA_DIR": str(tmp_path / "data")}
    assert run_cli("run", "-q", env=env).returncode == 3  # partial
    healthy = run_cli("health", env=env)
    assert healthy.returncode == 0 and healthy.stdout.startswith(
        "ok: run 1 (partial) finished 0.0 h ago; 1 of 2 series failed"
    )
    cfg.write_text(cfg.read_text().replace(FAST, FAST + "[schedule]\nmax_failed_fraction = 0.4\n"))
    unhealthy = run_cli("health", env=env)
    assert unhealthy.returncode == 1 and unhealthy.stderr.startswith(
        "tickcast: unhealthy: run 1 (partial) finished 0.0 h ago, 1 of 2 series failed: csv:gone (file not found: /"
    )  # the failed series is named, with its reason cut short
    assert unhealthy.stderr.endswith("): more than schedule.max_failed_fraction = 0.4\n")
    assert unhealthy.stderr.count("\n") == 1 and len(unhealthy.stderr) < 250
    cfg.write_text("[service]\nworkers = 1\n[schedule]\nmax_failed_fraction = 1.0\n" + series)
    assert run_cli("run", "-q", env=env).returncode == 1  # every series failed
    unhealthy = run_cli("health", env=env)
    assert unhealthy.returncode == 1 and "run 2 finished 0.0 h ago and every series failed" in unhealthy.stderr


def test_run_beside_a_running_run_is_refused(workdir):
    tmp_path, env = workdir
    assert run_cli("init", env=env).returncode == 0
    engine = open_database(f"sqlite:///{tmp_path / 'data' / 'tickcast.db'}")
    lease = acquire(engine)  # held by this (live) test process
    try:
        refused = run_cli("run", env=env)
        assert refused.returncode == 1
        assert refused.stderr.startswith("tickcast: another run is in progress (pid ")
        assert refused.stderr.count("\n") == 1
    finally:
        lease.release()
        engine.dispose()
    assert db_rows(tmp_path, "SELECT count(*) FROM runs") == [(0,)]


def test_read_commands_on_an_empty_and_a_populated_database(workdir):
    tmp_path, env = workdir
    assert run_cli("init", env=env).returncode == 0
    empty = run_cli("forecasts", env=env)
    assert empty.returncode == 1 and empty.stderr.strip() == (
        "tickcast: no forecasts yet: run 'tickcast run' (or wait for the scheduled run) first"
    )
    assert run_cli("health", env=env).returncode == 1
    assert "unknown series 'sample:wti': not in the database" in run_cli("history", "sample:wti", env=env).stderr
    done = run_cli("run", env=env)
    assert done.returncode == 0, done.stderr
    assert "run 1: ok (2 trained, 0 up to date, 0 skipped, 0 failed)" in done.stdout
    table = run_cli("forecasts", "sample:sp500", env=env).stdout.splitlines()
    assert table[0].split() == [
        "series_key",
        "last_ts",
        "last_value",
        "target_ts",
        "step",
        "forecast",
        "lower_80",
        "upper_80",
        "lower_95",
        "upper_95",
        "change_pct",
        "skill",
    ]
    assert len(table) == 2 + 5 and table[2].split()[:4] == ["sample:sp500", "2018-12-31", "2,506.85", "2019-01-02"]
    change_pct, skill = table[2].split()[-2:]  # as stored: a percentage and a fraction, no % signs
    assert re.fullmatch(r"[+-]\d+\.\d\d", change_pct) and re.fullmatch(r"[+-]\d\.\d{3}", skill), table[2]
    csv_out = run_cli("forecasts", "--format", "csv", env=env).stdout.splitlines()
    assert csv_out[0].startswith("series_key,series_name,last_ts,last_value,target_ts,step,forecast,lower,upper")
    assert len(csv_out) == 1 + 5 + 18
    import json

    rows = json.loads(run_cli("forecasts", "--format", "json", env=env).stdout)
    assert len(rows) == 5 + 18 and all(r["lower"] <= r["forecast"] <= r["upper"] for r in rows)
    # every level's bounds, the 95 % interval around the 80 % one; lower and upper: the first level's
    for r in rows:
        assert r["lower_95"] <= r["lower_80"] <= r["forecast"] <= r["upper_80"] <= r["upper_95"], r
        assert (r["lower"], r["upper"], r["level"]) == (r["lower_80"], r["upper_80"], 0.8)
    history = run_cli("history", "sample:core-cpi", env=env).stdout.splitlines()
    assert history[0].startswith("fit ") and history[1].split() == [
        "epoch",
        "train_loss",
        "val_loss",
        "grad_norm",
        "clip_fraction",
    ]
    assert history[3].split()[0] == "0"  # epoch 0: the loss before the first update
    png = tmp_path / "out" / "sp500.png"
    refused = run_cli("plot", "sample:sp500", "-o", str(png), env=env)  # a folder is not made up
    assert (
        refused.returncode == 1
        and refused.stderr == f"tickcast: no directory {str(png.parent)!r} for the plot: create it first\n"
    )
    assert not png.parent.exists()
    png.parent.mkdir()
    plotted = run_cli("plot", "sample:sp500", "-o", str(png), env=env)
    assert plotted.returncode == 0, plotted.stderr
    import matplotlib.image

    image = matplotlib.image.imread(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and image.shape[0] > 300 and image.shape[1] > 500
    assert image[..., :3].std() > 0.05  # not a blank canvas
    bad = run_cli("plot", "sample:sp500", "-o", str(tmp_path / "x.jpg"), env=env)
    assert bad.returncode == 1 and "must be a .png file" in bad.stderr
