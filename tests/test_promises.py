"""The service's promises end to end, as a user relies on them: a running `tickcast serve` fires its
cron job by itself; the counters in `runs` say what happened; every option that changes output
changes it as its help says."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from tickcast.service.cli import main

from .support.daemon import Daemon, db_rows
from .support.small_model import FAST_MODEL


def write_walk(path, n: int, start: str = "2021-01-04") -> None:
    values = [100 + ((i * 37) % 11) - 5 + 0.1 * i for i in range(n)]
    dates = pd.bdate_range(start, periods=n).strftime("%Y-%m-%d")
    pd.DataFrame({"date": dates, "value": values}).to_csv(path, index=False)


def test_a_running_serve_fires_its_cron_job_by_itself(tmp_path):
    """No hand call: the schedule names a second a few seconds ahead (the six-field form, second
    first) on today's date only, so nothing is missed and there is no catch-up; the daemon runs then."""
    fire = (datetime.now(UTC) + timedelta(seconds=15)).replace(microsecond=0)
    write_walk(tmp_path / "walk.csv", 120)
    cfg = tmp_path / "tickcast.toml"
    cron = f"{fire.second} {fire.minute} {fire.hour} {fire.day} {fire.month} *"
    cfg.write_text(
        f'[service]\nworkers = 1\n[schedule]\ncron = "{cron}"\ntimezone = "UTC"\n'
        '[watchlist]\nsample = []\n[[series]]\nkey = "csv:walk"\npath = "walk.csv"\n' + FAST_MODEL
    )
    env = {"TICKCAST_CONFIG": str(cfg), "TICKCAST_DATA_DIR": str(tmp_path / "data")}
    daemon = Daemon(["serve"], env)
    try:
        announced = daemon.wait_for("tickcast serve: schedule ", timeout=120)
        assert datetime.now(UTC) < fire, "serve took too long to start: the scheduled second had passed"
        assert announced.endswith(fire.isoformat()), announced
        daemon.wait_for("run 1 finished", timeout=300)
    finally:
        assert daemon.terminate() == 0
    runs = db_rows(tmp_path, "SELECT id, trigger, status, started_at FROM runs ORDER BY id")
    assert [(r[1], r[2]) for r in runs] == [("schedule", "ok")]
    started = datetime.fromisoformat(str(runs[0][3])).replace(tzinfo=UTC)
    assert fire <= started < fire + timedelta(seconds=30)  # at the scheduled second, not before


@pytest.fixture
def world(tmp_path):
    write_walk(tmp_path / "walk.csv", 120)
    cfg = tmp_path / "tickcast.toml"
    cfg.write_text(
        '[service]\nworkers = 1\n[watchlist]\nsample = ["core-cpi"]\n'
        '[[series]]\nkey = "csv:walk"\npath = "walk.csv"\n'
        '[[series]]\nkey = "csv:gone"\npath = "missing.csv"\n' + FAST_MODEL
    )
    db = tmp_path / "t.db"
    return tmp_path, ["--config", str(cfg), "--db", f"sqlite:///{db}"], db


def runs_row(db, run_id: int) -> dict:
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM runs WHERE id = :i"), {"i": run_id}).one()._asdict()
        stored = conn.execute(sa.text("SELECT count(*) FROM observations")).scalar_one()
    engine.dispose()
    return row | {"stored": stored}


def test_the_run_counters_say_what_happened(world, capsys):
    tmp_path, args, db = world
    assert main([*args, "-q", "run"]) == 3  # one series cannot be fetched: partial
    first = runs_row(db, 1)
    assert first["new_observations"] == first["stored"] > 120  # the walk's 120 and the sample's rows
    assert (first["series_total"], first["series_ok"], first["series_failed"], first["series_skipped"]) == (3, 2, 1, 0)
    write_walk(tmp_path / "walk.csv", 127)  # seven new days
    assert main([*args, "-q", "run"]) == 3
    second = runs_row(db, 2)
    assert second["new_observations"] == 7 == second["stored"] - first["stored"]
    assert (second["series_ok"], second["series_failed"]) == (2, 1)
    (tmp_path / "missing.csv").write_text("date,value\n2021-01-04,1\n")  # too short to train: skipped
    assert main([*args, "-q", "run"]) == 0
    third = runs_row(db, 3)
    assert (third["series_ok"], third["series_failed"], third["series_skipped"], third["new_observations"]) == (
        2,
        0,
        1,
        1,
    )
    capsys.readouterr()


def test_every_option_that_changes_output_changes_it(world, capsys):
    tmp_path, args, db = world
    main([*args, "-q", "run"])
    capsys.readouterr()

    # -q: no progress lines; without it, one per stage and series
    write_walk(tmp_path / "walk.csv", 121)
    main([*args, "run", "csv:walk"])
    err = capsys.readouterr().err
    assert "[ingest 1/1] csv:walk: 1 new" in err and "sample:core-cpi" not in err  # KEY: only that series
    write_walk(tmp_path / "walk.csv", 122)
    main([*args, "-q", "run", "csv:walk"])
    assert "[ingest" not in capsys.readouterr().err

    # forecasts: KEY filters, --format changes the form and not the numbers
    main([*args, "forecasts", "csv:walk", "--format", "json"])
    as_json = json.loads(capsys.readouterr().out)
    assert {r["series_key"] for r in as_json} == {"csv:walk"} and [r["step"] for r in as_json] == [1, 2, 3, 4, 5]
    main([*args, "forecasts", "csv:walk", "--format", "csv"])
    as_csv = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [float(r["forecast"]) for r in as_csv] == [r["forecast"] for r in as_json]
    main([*args, "forecasts", "csv:walk"])
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:2] == ["series_key", "last_ts"] and len(table) == 1 + 5 + 1  # header, rows, rule
    main([*args, "forecasts", "--format", "json"])
    assert {r["series_key"] for r in json.loads(capsys.readouterr().out)} == {"csv:walk", "sample:core-cpi"}

    # history KEY --format json: the newest fit's loss history, epoch 0 first
    main([*args, "history", "csv:walk", "--format", "json"])
    history = json.loads(capsys.readouterr().out)
    assert [r["epoch"] for r in history][:2] == [0, 1]

    # accuracy --by month: one row per month and level instead of per step
    main([*args, "accuracy", "csv:walk", "--format", "json"])
    by_step = json.loads(capsys.readouterr().out)
    main([*args, "accuracy", "csv:walk", "--by", "month", "--format", "json"])
    by_month = json.loads(capsys.readouterr().out)
    assert by_step and by_month and "step" in by_step[0] and "month" in by_month[0] and "step" not in by_month[0]


def test_plot_points_draws_that_many_observations(world, capsys):
    pytest.importorskip("matplotlib")
    from tickcast.service.db import open_existing_database
    from tickcast.service.plot import draw_series

    tmp_path, args, db = world
    main([*args, "-q", "run"])
    capsys.readouterr()
    engine = open_existing_database(f"sqlite:///{db}")
    try:
        for points in (30, 90):
            fig = draw_series(engine, "csv:walk", points)
            observed = [line for line in fig.axes[0].get_lines() if line.get_label() == "observed"]
            assert len(observed[0].get_xdata()) == points
    finally:
        engine.dispose()
    images = {}
    for points in ("30", "90", "90"):
        out = tmp_path / f"p{points}-{len(images)}.png"
        assert main([*args, "plot", "csv:walk", "-o", str(out), "--points", points]) == 0
        images.setdefault(points, []).append(out.read_bytes())
    assert images["90"][0] == images["90"][1]  # the same picture for the same option
    assert images["30"][0] != images["90"][0]  # and another for another
