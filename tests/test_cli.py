"""The command line as people use it: exit codes, one-line errors, summaries. Mostly in-process;
a few through the installed ``tickcast`` entry point in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tickcast.service.cli import main

from .support.cli import run_cli
from .support.pg import free_port


@pytest.fixture
def config_file(tmp_path, make_series):
    make_series("alpha", [float(i) for i in range(1, 41)])
    path = tmp_path / "tickcast.toml"
    path.write_text('[watchlist]\nsample = ["core-cpi"]\n\n[[series]]\nkey = "csv:alpha"\npath = "alpha.csv"\n')
    return path


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for key in list(os.environ):
        if key.startswith("TICKCAST_"):
            monkeypatch.delenv(key)


def test_init_then_ingest_prints_a_summary_table(tmp_path, config_file, capsys, db_url):
    assert main(["--db", db_url, "--config", str(config_file), "init"]) == 0
    assert "upgraded from empty to revision" in capsys.readouterr().out
    assert main(["--db", db_url, "--config", str(config_file), "ingest"]) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split() == ["key", "new_rows", "total_rows", "last_ts", "status"]
    assert any(line.split()[:5] == ["csv:alpha", "40", "40", "2020-02-09", "ok"] for line in lines)
    assert any(line.startswith("sample:core-cpi") and "2018-11-01" in line for line in lines)
    assert "[2/2]" in err  # progress on multi-series work
    assert main(["--db", db_url, "--config", str(config_file), "init"]) == 0
    assert "already at revision" in capsys.readouterr().out


def test_ingest_options_after_the_command_and_selected_keys(tmp_path, config_file, capsys, sqlite_url):
    assert main(["ingest", "--db", sqlite_url, "--config", str(config_file), "csv:alpha"]) == 0
    out = capsys.readouterr().out
    assert "csv:alpha" in out and "core-cpi" not in out


def call(args: list[str]) -> int:
    try:
        return main(args)
    except SystemExit as exc:  # argparse's usage errors
        return exc.code


@pytest.mark.parametrize(
    "args,message",
    [
        (["ingest", "yahoo:NVDA"], "tickcast: unknown series 'yahoo:NVDA': not in the watchlist"),
        (["ingest", "yahoo:BAD TICKER!"], "tickcast: malformed series key 'yahoo:BAD TICKER!'"),
        (["ingest", "nope:x"], "unknown source 'nope'"),
        (["--config", "/nonexistent/t.toml", "ingest"], "tickcast: config file not found: /nonexistent/t.toml"),
        (["--db", "mysql://x/y", "ingest"], "tickcast: unsupported database 'mysql'"),
        (["frobnicate"], "tickcast: argument COMMAND: invalid choice: 'frobnicate'"),
        (
            ["--db", "postgresql://tickcast@127.0.0.1:1/tickcast", "browse"],
            "tickcast: browse serves a SQLite database file with Datasette; for PostgreSQL use psql",
        ),
        (["--db", "sqlite://", "browse"], "tickcast: browse serves a SQLite database file with Datasette"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_nonzero(config_file, capsys, args, message, sqlite_url):
    code = call(["--config", str(config_file), "--db", sqlite_url] + args)  # the last --config/--db wins
    err = capsys.readouterr().err
    assert code != 0
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_unreachable_url_is_one_line_nonzero_and_keeps_stored_data(tmp_path, capsys, sqlite_url, make_series):
    make_series("alpha", [1.0, 2.0, 3.0])
    port = free_port()
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[[series]]\nkey = "csv:alpha"\npath = "alpha.csv"\n[[series]]\nkey = "csv:web"\n'
        f'url = "http://127.0.0.1:{port}/web.csv"\n'
    )
    assert main(["--db", sqlite_url, "--config", str(cfg), "ingest", "csv:alpha"]) == 0
    capsys.readouterr()
    assert main(["--db", sqlite_url, "--config", str(cfg), "ingest", "csv:web"]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        f"tickcast: csv:web: cannot connect to http://127.0.0.1:{port}/web.csv (connection refused)"
    ]
    # a partly failing ingest exits 3 and the stored series is intact
    assert main(["--db", sqlite_url, "--config", str(cfg), "ingest"]) == 3
    out = capsys.readouterr().out
    assert any(line.split()[:3] == ["csv:alpha", "0", "3"] for line in out.splitlines())


def test_installed_entry_point_end_to_end(tmp_path, config_file):
    env = {"TICKCAST_CONFIG": str(config_file), "TICKCAST_DATA_DIR": str(tmp_path / "data")}
    done = run_cli("ingest", env=env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "data" / "tickcast.db").exists()
    assert "csv:alpha" in done.stdout
    bad = run_cli("ingest", "yahoo:???", env=env)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    helptext = run_cli("ingest", "--help").stdout
    assert "example:" in helptext and "tickcast ingest yahoo:AAPL" in helptext


def test_unwritable_database_directory_is_a_clear_error(tmp_path, config_file):
    if os.geteuid() == 0:
        target = "sqlite:////proc/tickcast/tickcast.db"  # root ignores permissions; /proc refuses anyway
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = f"sqlite:///{locked}/sub/tickcast.db"
    done = run_cli("--db", target, "--config", str(config_file), "init")
    assert done.returncode == 1
    assert done.stderr.startswith("tickcast: cannot create the database directory")
    assert done.stderr.count("\n") == 1


# --- read commands never create a database ----------------------------------------------------

READ_COMMANDS = [
    ["forecasts"],
    ["forecasts", "sample:core-cpi"],
    ["history", "sample:core-cpi"],
    ["health"],
    ["plot", "sample:core-cpi", "-o", "out.png"],
    ["accuracy"],
    ["accuracy", "sample:core-cpi"],
]


@pytest.mark.parametrize("argv", READ_COMMANDS, ids=lambda argv: " ".join(argv[:2]))
def test_read_commands_without_a_database_say_so_and_create_nothing(argv, tmp_path, config_file, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "not" / "yet" / "tickcast.db"
    code = main(["--config", str(config_file), "--db", f"sqlite:///{missing}", *argv])
    assert code == 1
    assert capsys.readouterr().err == (
        f"tickcast: no database at {missing}: run 'tickcast init' or 'tickcast run' first\n"
    )
    assert not (tmp_path / "not").exists() and not (tmp_path / "out.png").exists()
    # the default location too (TICKCAST_DATA_DIR): no directory, no file
    monkeypatch.setenv("TICKCAST_DATA_DIR", str(tmp_path / "data"))
    assert main(["--config", str(config_file), *argv]) == 1
    assert "tickcast: no database at " + str(tmp_path / "data" / "tickcast.db") in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


def test_read_commands_on_an_empty_file_or_database_create_no_tables(tmp_path, config_file, capsys, db_url):
    """An empty SQLite file, or an empty PostgreSQL database: not a tickcast database yet, and a
    read command does not make it one. A write command then does."""
    import sqlalchemy as sa

    if db_url.startswith("sqlite"):
        (tmp_path / "tickcast.db").touch()
    for argv in READ_COMMANDS:
        assert main(["--config", str(config_file), "--db", db_url, *argv]) == 1
        err = capsys.readouterr().err
        assert err.startswith("tickcast: no tickcast tables in ") and err.endswith(
            ": run 'tickcast init' or 'tickcast run' first\n"
        ), err
    engine = sa.create_engine(db_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
    assert main(["--config", str(config_file), "--db", db_url, "init"]) == 0
    capsys.readouterr()
    assert main(["--config", str(config_file), "--db", db_url, "health"]) == 1
    assert capsys.readouterr().err == "tickcast: unhealthy: no completed run yet\n"


def test_a_read_command_upgrades_an_older_database(tmp_path, config_file, capsys, sqlite_url):
    from tickcast.service.db import current_revision, downgrade, head_revision, open_database

    engine = open_database(sqlite_url)
    downgrade(engine, "0001")
    assert current_revision(engine) == "0001"
    assert main(["--config", str(config_file), "--db", sqlite_url, "forecasts"]) == 1
    assert "no forecasts yet" in capsys.readouterr().err
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_forecasts_of_a_series_that_failed_to_fetch_show_the_stored_reason(tmp_path, capsys, sqlite_url, make_series):
    make_series("short", [1.0, 2.0])  # below the model's minimum of 3
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[watchlist]\nfred = ["DGS10"]\n[[series]]\nkey = "csv:short"\npath = "short.csv"\n'
        '[sources]\nretries = 0\nfred_base_url = "http://127.0.0.1:9/fredgraph.csv"\n'
    )
    assert main(["--config", str(cfg), "--db", sqlite_url, "-q", "run"]) == 1  # every runnable series failed
    capsys.readouterr()
    assert main(["--config", str(cfg), "--db", sqlite_url, "forecasts", "fred:dgs10"]) == 1
    assert capsys.readouterr().err == (
        "tickcast: no forecasts yet for fred:DGS10: its last fetch failed: cannot "
        "connect to http://127.0.0.1:9/fredgraph.csv (connection refused)\n"
    )
    assert main(["--config", str(cfg), "--db", sqlite_url, "history", "fred:DGS10"]) == 1
    assert capsys.readouterr().err.startswith(
        "tickcast: no successful fit yet for fred:DGS10: its last fetch failed: cannot connect to"
    )
    assert main(["--config", str(cfg), "--db", sqlite_url, "forecasts", "csv:short"]) == 1
    assert capsys.readouterr().err == (
        "tickcast: no forecasts yet for csv:short: its newest fit was skipped: too "
        "short to train: 2 observation(s), the minimum is 3\n"
    )


# --- matplotlib is the plot extra -------------------------------------------------------------


def without_matplotlib(*argv: str, env: dict, cwd) -> subprocess.CompletedProcess:
    """The real command in a Python where ``import matplotlib`` fails as it does when the plot extra
    is not installed (ModuleNotFoundError, name 'matplotlib')."""
    code = (
        "import sys; sys.modules['matplotlib'] = None; from tickcast.service.cli import main; "
        "sys.exit(main(sys.argv[1:]))"
    )
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TICKCAST_")} | env
    return subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, env=full_env, cwd=cwd, timeout=300
    )


def test_without_the_plot_extra_only_plot_fails_with_one_line(tmp_path, config_file):
    env = {"TICKCAST_CONFIG": str(config_file), "TICKCAST_DATA_DIR": str(tmp_path / "data"), "TICKCAST_WORKERS": "1"}
    for argv in (["run", "-q"], ["forecasts"], ["history", "csv:alpha"], ["health"]):
        done = without_matplotlib(*argv, env=env, cwd=tmp_path)
        assert done.returncode == 0, (argv, done.stderr)
    plotted = without_matplotlib("plot", "csv:alpha", "-o", "alpha.png", env=env, cwd=tmp_path)
    assert plotted.returncode == 1
    assert plotted.stderr == "tickcast: tickcast plot needs matplotlib: pip install 'tickcast[plot]'\n"
    assert not (tmp_path / "alpha.png").exists()
    # the same command with matplotlib installed draws
    assert run_cli("plot", "csv:alpha", "-o", "alpha.png", env=env, cwd=tmp_path).returncode == 0
    assert (tmp_path / "alpha.png").stat().st_size > 0


def test_the_plot_labels_its_axes_and_marks_the_best_epoch(tmp_path, config_file, capsys, sqlite_url, monkeypatch):
    from matplotlib.ticker import MaxNLocator

    from tickcast.service.db import open_existing_database
    from tickcast.service.plot import draw_series

    monkeypatch.setenv("TICKCAST_WORKERS", "1")
    assert main(["--config", str(config_file), "--db", sqlite_url, "-q", "run"]) == 0
    engine = open_existing_database(sqlite_url)
    for key, value_label in (("sample:core-cpi", "CPILFESL"), ("csv:alpha", "value")):
        fig = draw_series(engine, key)
        top, overview, bottom, realised = fig.axes
        assert not realised.axison  # one run: nothing scored yet, the panel says so
        assert overview.get_title().startswith("whole history (")  # the whole history, small
        (observed,) = [line for line in top.get_lines() if line.get_label() == "observed"]
        forecast_steps = len([line for line in top.get_lines() if line.get_label() == "forecast"][0].get_xdata()) - 1
        zoomed = len(observed.get_xdata())  # four horizons (at least 30 points), or all there is
        assert zoomed == min(
            max(4 * forecast_steps, 30), int(overview.get_title().split("(")[1].split()[0].replace(",", ""))
        )
        assert "no later epoch lowered the validation loss by 1.0% of the loss and 2" in bottom.get_title()
        title = top.get_title()
        assert key in title and "((" not in title and "))" not in title, title
        assert top.get_ylabel() == value_label and bottom.get_ylabel() and bottom.get_xlabel().startswith("epoch")
        assert isinstance(bottom.xaxis.get_major_locator(), MaxNLocator)
        ticks = [t for t in bottom.get_xticks() if bottom.get_xlim()[0] <= t <= bottom.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
        best = [line for line in bottom.get_lines() if "best epoch" in (line.get_label() or "")]
        with engine.connect() as conn:
            best_epoch = conn.exec_driver_sql(
                "SELECT f.best_epoch FROM fits f JOIN series s ON s.id = f.series_id WHERE s.key = ?", (key,)
            ).scalar_one()
        assert len(best) == 1 and list(best[0].get_xdata()) == [best_epoch, best_epoch]
        fig.clf()
    engine.dispose()
    assert (
        main(
            [
                "--config",
                str(config_file),
                "--db",
                sqlite_url,
                "plot",
                "sample:core-cpi",
                "-o",
                str(tmp_path / "cpi.png"),
            ]
        )
        == 0
    )
    assert (tmp_path / "cpi.png").read_bytes()[:4] == b"\x89PNG"
