"""`tickcast ingest`, `init` and `backfill` in this process, word for word: the progress lines on
standard error (one per series when there are several), the summary table and its status column, the
failures after it, the exit codes (0, 3 for some failed, 1 for all), and what `init` says it did.
tests/test_cli.py runs them through the installed command too."""

from __future__ import annotations

import os
import re

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tickcast.service.cli import main
from tickcast.service.db import make_engine

from .support.small_model import FAST_MODEL

PROGRESS = re.compile(r"\[(\d)/(\d)\] (\S+): (.+) \((\d+\.\d) s\)")


@pytest.fixture
def world(make_series, sqlite_url, tmp_path):
    rng = np.random.default_rng(2)
    dates = pd.bdate_range("2023-01-02", periods=120)
    make_series("good", 100 + np.cumsum(rng.normal(0, 1, 120)), dates=dates)
    (tmp_path / "noted.csv").write_text(
        "date,value\n" + "".join(f"{d:%Y-%m-%d},{'x' if i == 5 else 50 + i}\n" for i, d in enumerate(dates))
    )

    def configure(*names: str) -> list[str]:
        toml = "".join(f'[[series]]\nkey = "csv:{n}"\npath = "{n}.csv"\n' for n in names)
        (tmp_path / "t.toml").write_text(toml + FAST_MODEL)
        return ["--db", sqlite_url, "--config", str(tmp_path / "t.toml")]

    return configure, sqlite_url


def table_rows(out: str) -> dict[str, list[str]]:
    lines = out.splitlines()
    assert lines[0].split() == ["key", "new_rows", "total_rows", "last_ts", "status"]
    return {line.split()[0]: re.split(r"\s{2,}", line.strip()) for line in lines[2:]}


def test_ingest_of_several_says_each_in_turn_then_the_table_then_the_failures(world, capsys):
    configure, _ = world
    argv = configure("good", "noted", "missing")
    assert main([*argv, "ingest"]) == 3  # one failed: partial
    out, err = capsys.readouterr()
    progress = [PROGRESS.fullmatch(line) for line in err.splitlines()[:3]]
    assert all(progress), err
    assert [(m[1], m[2], m[3], m[4]) for m in progress] == [
        ("1", "3", "csv:good", "120 new row(s)"),
        ("2", "3", "csv:noted", "119 new row(s)"),
        ("3", "3", "csv:missing", "failed"),
    ]
    (failure,) = err.splitlines()[3:]
    assert failure.startswith("tickcast: csv:missing: ") and "missing.csv" in failure
    rows = table_rows(out)
    assert rows["csv:good"] == ["csv:good", "120", "120", "2023-06-16", "ok"]
    assert rows["csv:noted"] == [
        "csv:noted",
        "119",
        "119",
        "2023-06-16",
        "ok (dropped 1 value(s) that are not numbers (e.g. 'x'))",
    ]
    assert rows["csv:missing"][:3] == ["csv:missing", "0", "0"] and rows["csv:missing"][-1] == "failed"
    # again: nothing new, the note of the last fetch stays in the table
    assert main([*argv, "ingest", "csv:good", "csv:noted"]) == 0
    out, err = capsys.readouterr()
    assert [PROGRESS.fullmatch(line)[4] for line in err.splitlines()] == ["0 new row(s)", "0 new row(s)"]
    assert table_rows(out)["csv:good"] == ["csv:good", "0", "120", "2023-06-16", "ok"]


def test_ingest_of_one_series_or_quiet_has_no_progress_and_all_failed_is_exit_1(world, capsys):
    configure, _ = world
    argv = configure("good", "missing")
    assert main([*argv, "ingest", "csv:good"]) == 0
    assert capsys.readouterr().err == ""  # one series: the table says it all
    assert main([*argv, "-q", "ingest"]) == 3
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if PROGRESS.fullmatch(line)] == []
    assert err.startswith("tickcast: csv:missing: ")
    assert main([*argv, "ingest", "csv:missing"]) == 1  # every series asked for failed


def test_ingest_full_without_keys_is_a_usage_error_that_touches_nothing(world, capsys):
    configure, url = world
    assert main([*configure("good"), "ingest", "--full"]) == 2
    assert capsys.readouterr().err == (
        "tickcast: --full replaces stored histories: name the series, e.g. tickcast ingest --full yahoo:AAPL\n"
    )
    assert not os.path.exists(url.removeprefix("sqlite:///"))  # not even created


def test_init_says_what_it_did(world, capsys):
    configure, url = world
    argv = configure("good", "noted")
    path = url  # init names the database by its URL
    assert main([*argv, "init"]) == 0
    assert capsys.readouterr().out == (
        f"database {path}: upgraded from empty to revision 0007 (head); 2 series configured\n"
    )
    assert main([*argv, "init"]) == 0
    assert capsys.readouterr().out == f"database {path}: already at revision 0007 (head); 2 series configured\n"
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP VIEW latest_forecasts"))
    engine.dispose()
    assert main([*configure("good"), "init"]) == 0
    assert capsys.readouterr().out == (
        f"database {path}: already at revision 0007 (head); schema drift repaired: recreated the view "
        "latest_forecasts; 1 series configured (1 more no longer configured, their data kept)\n"
    )


def test_backfill_says_how_many_series_it_filled_had_nothing_left_or_failed(world, capsys):
    configure, _ = world
    argv = configure("good", "noted")
    assert main([*argv, "run", "-q"]) == 0
    capsys.readouterr()
    summary = re.compile(
        r"backfill run (\d+): (\w+) \((\d+) series backfilled, (\d+) had nothing left to fill, (\d+) failed\) "
        r"in \d+\.\d s; see `tickcast accuracy`"
    )
    assert main([*argv, "backfill", "--origins", "1", "-q"]) == 0
    out, err = capsys.readouterr()
    assert summary.fullmatch(out.strip()).groups() == ("2", "ok", "2", "0", "0") and err == ""
    assert main([*argv, "backfill", "--origins", "1", "csv:good"]) == 0
    out, err = capsys.readouterr()
    assert summary.fullmatch(out.strip()).groups() == ("3", "ok", "0", "1", "0")
    assert err.splitlines()[0].startswith("run 3 (backfill)")  # its progress, unless -q


def test_a_backfill_in_which_a_fit_fails_counts_it_names_it_and_exits_partial(world, capsys, monkeypatch):
    from tickcast.models import AutoForecaster

    configure, _ = world
    argv = configure("good", "noted", "third")
    rng = np.random.default_rng(5)
    dates = pd.bdate_range("2023-01-02", periods=120)
    config_dir = os.path.dirname(argv[3])
    pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "value": 70 + np.cumsum(rng.normal(0, 1, 120))}).to_csv(
        os.path.join(config_dir, "third.csv"), index=False
    )
    with open(argv[3], "a") as config:  # fits in this process, where the fault below is planted
        config.write("\n[service]\nworkers = 1\n")
    assert main([*argv, "run", "-q"]) == 0
    assert main([*argv, "backfill", "--origins", "1", "-q", "csv:third"]) == 0  # third: nothing left to fill
    capsys.readouterr()
    real_fit, real_each = AutoForecaster.fit, AutoForecaster.fit_each

    def noted(y) -> bool:  # csv:noted's values are whole numbers, the others' are not
        return bool(np.all(np.mod(np.asarray(y, dtype=float), 1.0) == 0.0))

    def fit(self, y, *args, **kwargs):
        if noted(y):
            raise FloatingPointError("overflow in the fit")
        return real_fit(self, y, *args, **kwargs)

    def fit_each(self, ys, *args, **kwargs):  # a batch's failure is fitted again alone, by fit
        models = real_each(self, ys, *args, **kwargs)
        return [FloatingPointError("overflow") if noted(y) else m for y, m in zip(ys, models)]

    monkeypatch.setattr(AutoForecaster, "fit", fit)
    monkeypatch.setattr(AutoForecaster, "fit_each", fit_each)
    assert main([*argv, "backfill", "--origins", "1", "-q"]) == 3  # some failed: partial
    out, err = capsys.readouterr()
    assert re.fullmatch(
        r"backfill run \d+: partial \(1 series backfilled, 1 had nothing left to fill, 1 failed\) "
        r"in \d+\.\d s; see `tickcast accuracy`",
        out.strip(),
    ), out
    assert err.splitlines() == ["tickcast: FloatingPointError: overflow in the fit"]
    assert main([*argv, "backfill", "--origins", "1", "-q", "csv:noted"]) == 1  # every series failed
    out, err = capsys.readouterr()
    assert re.match(r"backfill run \d+: failed \(0 series backfilled, 0 had nothing left to fill, 1 failed\)", out)
    assert err.splitlines() == ["tickcast: FloatingPointError: overflow in the fit"]
