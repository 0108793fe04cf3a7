"""What the read commands print, in this process: `forecasts`, `history` and `accuracy` in each
format (the table in the columns' units; csv and json the stored numbers), `accuracy --model`, an
empty ledger as csv, `plot --points`; `init` waiting only as long as the config says for another
writer, and naming every repair; and `main`'s answer to each kind of failure a command can end in
(one line, the exit code the module's docstring gives)."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import threading
import time

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tickcast.service import cli
from tickcast.service.accuracy import BY
from tickcast.service.cli import main
from tickcast.service.db import make_engine
from tickcast.service.errors import TickcastError
from tickcast.service.queries import forecast_columns, latest_forecasts
from tickcast.service.stopping import StopNow
from tickcast.service.tables import UNIT_FORMATS, render

from .support.small_model import FAST_MODEL


@pytest.fixture
def world(make_series, sqlite_url, tmp_path):
    """Two CSV series, one forecast a single step ahead (one row of forecasts), run once."""
    rng = np.random.default_rng(4)
    dates = pd.bdate_range("2023-01-02", periods=150)
    make_series("a", 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 150))), dates=dates)
    make_series("one", 50 + np.cumsum(rng.normal(0, 1, 150)), dates=dates)
    config = tmp_path / "t.toml"
    config.write_text(
        '[[series]]\nkey = "csv:a"\npath = "a.csv"\nprice = true\n'
        '[[series]]\nkey = "csv:one"\npath = "one.csv"\nhorizon = 1\n' + FAST_MODEL
    )
    base = ["--db", sqlite_url, "--config", str(config)]
    assert main([*base, "run", "-q"]) == 0
    return base, sqlite_url


def engine_of(url: str):
    return make_engine(url)


def test_forecasts_as_a_table_show_the_units_and_as_csv_or_json_the_stored_numbers(world, capsys):
    base, url = world
    capsys.readouterr()
    engine = engine_of(url)
    rows = latest_forecasts(engine, "csv:a")
    engine.dispose()
    assert main([*base, "forecasts", "csv:a"]) == 0
    table = capsys.readouterr().out
    assert table == render(rows, forecast_columns(rows), formatters=UNIT_FORMATS) + "\n"
    change = table.splitlines()[2].split()[-2]
    assert change[0] in "+-" and len(change.split(".")[1]) == 2  # signed percent, two decimals
    for fmt in ("csv", "json"):
        assert main([*base, "forecasts", "csv:one", "--format", fmt]) == 0  # a single row
        out = capsys.readouterr().out
        parsed = list(csv.DictReader(io.StringIO(out))) if fmt == "csv" else json.loads(out)
        assert len(parsed) == 1 and "levels" not in parsed[0]
        assert {"series_key", "target_ts", "forecast", "lower_80", "upper_95"} <= set(parsed[0])
        engine = engine_of(url)
        (stored,) = latest_forecasts(engine, "csv:one")
        engine.dispose()
        assert float(parsed[0]["forecast"]) == stored["forecast"]  # unrounded


def test_history_in_each_format(world, capsys):
    base, url = world
    capsys.readouterr()
    engine = engine_of(url)
    with engine.connect() as conn:
        stored = conn.execute(
            sa.text(
                "SELECT h.epoch, h.train_loss FROM loss_history h WHERE h.fit_id = (SELECT max(f.id) FROM fits f "
                "JOIN series s ON s.id = f.series_id WHERE s.key = 'csv:a') ORDER BY h.epoch"
            )
        ).all()
    engine.dispose()
    assert main([*base, "history", "csv:a", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert list(rows[0]) == ["epoch", "train_loss", "val_loss", "grad_norm", "clip_fraction"]
    assert [(int(r["epoch"]), float(r["train_loss"])) for r in rows] == [tuple(s) for s in stored]
    assert main([*base, "history", "csv:a", "--format", "json"]) == 0
    assert [r["epoch"] for r in json.loads(capsys.readouterr().out)] == [s[0] for s in stored]
    assert main([*base, "history", "csv:a"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("fit ") and "epoch  train_loss" in out


def test_accuracy_scores_the_model_asked_for_and_an_empty_ledger_is_a_document(world, capsys, make_series):
    base, url = world
    capsys.readouterr()
    for fmt, by in (("csv", "step"), ("json", "model")):
        assert main([*base, "accuracy", "--format", fmt, "--by", by]) == 0  # nothing scored yet
        out, err = capsys.readouterr()
        assert err.startswith("tickcast: no forecast") and err.count("\n") == 1
        if fmt == "csv":
            assert out == ",".join(BY[by]) + "\n"
        else:
            assert json.loads(out) == []
    assert main([*base, "accuracy"]) == 1  # a table for people: the reason, and exit 1
    # ten more days: the forecasts are scored, each model on its own
    rng = np.random.default_rng(4)
    dates = pd.bdate_range("2023-01-02", periods=160)
    make_series("a", 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 160))), dates=dates)
    assert main([*base, "ingest", "-q"]) == 0
    capsys.readouterr()
    assert main([*base, "accuracy", "csv:a", "--model", "rnn", "--format", "json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored and {r["model"] for r in scored} == {"rnn"}
    assert main([*base, "accuracy", "csv:a", "--format", "json"]) == 0
    assert {r["model"] for r in json.loads(capsys.readouterr().out)} == {"published"}


def test_plot_zooms_on_the_points_asked_for_and_says_where_it_wrote(world, capsys, tmp_path):
    pytest.importorskip("matplotlib")
    base, _ = world
    capsys.readouterr()
    pngs = []
    for points, name in ((None, "default.png"), (40, "forty.png")):
        path = tmp_path / name
        assert main([*base, "plot", "csv:a", "-o", str(path), *(["--points", str(points)] if points else [])]) == 0
        assert capsys.readouterr().out == f"wrote {path}\n"
        pngs.append(path.read_bytes())
    assert pngs[0] != pngs[1]  # another zoom: another picture


def while_locked(url: str, argv: list[str]) -> tuple[int, float]:
    """``main(argv)`` while another connection holds the SQLite file's write lock (released after
    20 s whatever the command does, so a command that waits too long fails its test, never hangs);
    its exit code and the seconds it took."""
    holder = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another process's write transaction
    release = threading.Timer(20, holder.rollback)
    release.start()
    try:
        started = time.monotonic()
        code = main(argv)
        return code, time.monotonic() - started
    finally:
        release.cancel()
        holder.rollback()
        holder.close()


def test_init_waits_for_another_writer_only_as_long_as_configured(world, capsys, tmp_path):
    base, url = world
    config = tmp_path / "t.toml"
    config.write_text(config.read_text() + "\n[service]\nbusy_timeout_minutes = 0.01\n")  # 0.6 s
    code, waited = while_locked(url, [*base, "init"])
    err = capsys.readouterr().err
    assert code == 1 and waited < 15, (code, waited, err)
    assert err.startswith("tickcast: ") and "locked" in err and err.count("\n") == 1


def test_init_names_every_repair(world, capsys):
    base, url = world
    engine = engine_of(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP VIEW forecast_accuracy_monthly"))
        conn.execute(sa.text("DROP VIEW forecast_accuracy"))
    engine.dispose()
    capsys.readouterr()
    assert main([*base, "init"]) == 0
    out = capsys.readouterr().out
    assert "; schema drift repaired: recreated the view forecast_accuracy, recreated the view " in out


def failing(monkeypatch, error: BaseException) -> None:
    """`tickcast health` ending in ``error`` (the command's own work never gets that far)."""

    def command(args):
        import sqlalchemy  # noqa: F401  (loaded, as every command that opens a database has it)

        raise error

    monkeypatch.setattr(cli, "cmd_health", command)


@pytest.mark.parametrize(
    "error,code,line",
    [
        (ValueError("boom"), 70, "tickcast: internal error: ValueError: boom (set TICKCAST_DEBUG=1 for the traceback)"),
        (KeyError("lost"), 70, "tickcast: internal error: KeyError: 'lost' (set TICKCAST_DEBUG=1 for the traceback)"),
        (
            sa.exc.OperationalError("SELECT 1", {}, sqlite3.OperationalError("disk I/O error")),
            1,
            "tickcast: database error: disk I/O error",
        ),
        (sa.exc.ArgumentError("could not parse the URL"), 1, "tickcast: database error: could not parse the URL"),
        (
            ValueError("y" * 300),
            70,
            f"tickcast: internal error: {('ValueError: ' + 'y' * 300)[:200]} (set TICKCAST_DEBUG=1 for the traceback)",
        ),
        (
            PermissionError(13, "Permission denied", "/srv/tickcast.db"),
            1,
            "tickcast: Permission denied: /srv/tickcast.db",
        ),
        (OSError("no space left"), 1, "tickcast: no space left"),
        (TickcastError("unknown series 'csv:x'"), 1, "tickcast: unknown series 'csv:x'"),
        (KeyboardInterrupt(), 130, "tickcast: interrupted"),
        (StopNow("stopped by SIGTERM while fetching"), 1, "tickcast: stopped by SIGTERM while fetching"),
        (
            MemoryError(),
            1,
            "tickcast: out of memory (lower model.max_points or service.workers, or allow more memory)",
        ),
    ],
)
def test_every_failure_is_one_line_and_its_exit_code(monkeypatch, capsys, tmp_path, error, code, line):
    monkeypatch.delenv("TICKCAST_DEBUG", raising=False)
    failing(monkeypatch, error)
    assert main(["--db", f"sqlite:///{tmp_path / 'x.db'}", "health"]) == code
    out, err = capsys.readouterr()
    assert (out, err) == ("", line + "\n")


def test_with_debug_an_internal_error_raises_for_its_traceback(monkeypatch, tmp_path):
    monkeypatch.setenv("TICKCAST_DEBUG", "1")
    failing(monkeypatch, ValueError("boom"))
    with pytest.raises(ValueError, match="boom"):
        main(["--db", f"sqlite:///{tmp_path / 'x.db'}", "health"])


def test_a_write_command_waits_for_another_writer_only_as_long_as_configured(world, capsys, tmp_path):
    """`ingest` opens the database to write with the configured busy timeout, and a read command
    that must first upgrade an older database waits the same."""
    from tickcast.service import db

    base, url = world
    config = tmp_path / "t.toml"
    config.write_text(config.read_text() + "\n[service]\nbusy_timeout_minutes = 0.01\n")  # 0.6 s
    older = f"sqlite:///{tmp_path / 'older.db'}"
    engine = make_engine(older)
    db.upgrade(engine, "0006")
    engine.dispose()
    for argv, path in (([*base, "ingest"], url), (["--db", older, "--config", str(config), "forecasts"], older)):
        code, waited = while_locked(path, argv)
        err = capsys.readouterr().err
        assert code == 1 and waited < 15 and "locked" in err, (argv, code, waited, err)


def test_a_long_reason_is_cut_to_one_bounded_line(monkeypatch, capsys, tmp_path):
    from tickcast.service.errors import MESSAGE_LIMIT, cut

    reason = "x" * (5 * MESSAGE_LIMIT)
    failing(monkeypatch, TickcastError(reason))
    assert main(["--db", f"sqlite:///{tmp_path / 'x.db'}", "health"]) == 1
    err = capsys.readouterr().err
    assert err == cut(f"tickcast: {reason}", 2 * MESSAGE_LIMIT) + "\n" and len(err) < 3 * MESSAGE_LIMIT


def test_a_reader_that_leaves_is_not_an_error(monkeypatch, capsys, tmp_path):
    """`tickcast forecasts | head`: the pipe closes, the command ends quietly with 0, and anything
    it would still write goes nowhere instead of raising again at exit."""
    import os
    import sys

    read_end, write_end = os.pipe()
    out = os.fdopen(write_end, "w")
    monkeypatch.setattr(sys, "stdout", out)
    failing(monkeypatch, BrokenPipeError())
    try:
        assert main(["--db", f"sqlite:///{tmp_path / 'x.db'}", "health"]) == 0
        os.write(write_end, b"after")  # the descriptor is /dev/null now: the pipe gets nothing
        assert os.read(read_end, 10) == b""  # and has no writer left: end of file
    finally:
        out.close()
        os.close(read_end)
    assert capsys.readouterr().err == ""


def test_points_must_be_a_positive_integer(world, capsys):
    base, _ = world
    capsys.readouterr()
    for text in ("abc", "0", "-3", "1.5"):
        with pytest.raises(SystemExit) as exited:
            main([*base, "plot", "csv:a", "-o", "x.png", "--points", text])
        assert exited.value.code == 2
        assert capsys.readouterr().err == (
            f"tickcast: argument --points: expected a positive integer, got {text!r} (see 'tickcast --help')\n"
        )


def test_run_of_keys_without_forecasts_says_so_when_others_have_some(world, capsys, tmp_path):
    base, _ = world
    (tmp_path / "short.csv").write_text("date,value\n2023-01-02,1.0\n2023-01-03,2.0\n")
    config = tmp_path / "t.toml"
    config.write_text(
        config.read_text().replace("[model]", '[[series]]\nkey = "csv:short"\npath = "short.csv"\n[model]')
    )
    capsys.readouterr()
    assert main([*base, "run", "csv:short"]) in (0, 3)
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "no forecasts yet"  # csv:a's forecasts are not csv:short's
