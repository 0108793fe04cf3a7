"""`tickcast run` in this process, on a real SQLite file and CSV series: its progress lines, the
forecasts it prints (those of the keys asked for, or of all), its summary line and counts, the run
recorded as manual, and `--quiet`. tests/test_cli.py runs the command itself."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tickcast.service import schema
from tickcast.service.cli import main
from tickcast.service.db import make_engine
from tickcast.service.queries import forecast_columns, latest_forecasts
from tickcast.service.tables import UNIT_FORMATS, render

from .support.small_model import FAST_MODEL

SUMMARY = re.compile(r"run (\d+): (\w+) \((\d+) trained, (\d+) up to date, (\d+) skipped, (\d+) failed\) in \d+\.\d s")


@pytest.fixture
def world(make_series, sqlite_url, tmp_path):
    rng = np.random.default_rng(5)
    dates = pd.bdate_range("2022-01-03", periods=200)
    for name in ("a", "b"):
        make_series(name, 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 200))), dates=dates)
    toml = "".join(f'[[series]]\nkey = "csv:{n}"\npath = "{n}.csv"\nprice = true\n' for n in ("a", "b")) + FAST_MODEL
    (tmp_path / "t.toml").write_text(toml)
    return ["--db", sqlite_url, "--config", str(tmp_path / "t.toml")], sqlite_url


def summary(out: str) -> tuple:
    (line,) = [line for line in out.splitlines() if line.startswith("run ")]
    match = SUMMARY.fullmatch(line)
    assert match, line
    return tuple(int(g) if g.isdigit() else g for g in match.groups())


def test_tickcast_run_prints_the_forecasts_of_the_keys_asked_for_and_its_counts(world, capsys):
    base, url = world
    assert main([*base, "run", "csv:a"]) == 0
    out, err = capsys.readouterr()
    assert summary(out) == (1, "ok", 1, 0, 0, 0)
    engine = make_engine(url)
    try:
        rows = latest_forecasts(engine)
        assert {r["series_key"] for r in rows} == {"csv:a"}
        # the table printed is the stored forecasts, in the units the tables show
        assert render(rows, forecast_columns(rows), formatters=UNIT_FORMATS) in out
        assert render(rows, forecast_columns(rows)) not in out  # unformatted, it would differ
        assert "csv:b" not in out
        lines = err.splitlines()  # the progress, on standard error
        assert lines[:2] == ["run 1 (manual): 1 series", "[ingest 1/1] csv:a: 200 new"], lines
        assert lines[2].startswith("[train 1/1] csv:a: cold fit in "), lines
        with engine.connect() as conn:
            assert conn.execute(sa.select(schema.runs.c.trigger)).scalars().all() == ["manual"]
    finally:
        engine.dispose()
    # everything: b trained, a up to date; the forecasts of both printed
    assert main([*base, "run"]) == 0
    out, _ = capsys.readouterr()
    assert summary(out) == (2, "ok", 1, 1, 0, 0)
    assert "csv:a" in out and "csv:b" in out


def test_tickcast_run_quiet_prints_the_summary_only(world, capsys):
    base, _ = world
    assert main(["-q", *base, "run"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert summary(out) == (1, "ok", 2, 0, 0, 0)


def test_tickcast_run_of_keys_without_forecasts_says_so(world, capsys, tmp_path):
    base, _ = world
    (tmp_path / "b.csv").write_text("date,value\n2022-01-03,1.0\n")  # too short to forecast
    assert main(["-q", *base, "run", "csv:b"]) == 0
    out, _ = capsys.readouterr()
    assert "no forecasts yet" in out.splitlines()
    assert summary(out) == (1, "ok", 0, 0, 1, 0)  # skipped: too short, not failed
