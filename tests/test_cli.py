"""The command line as people use it: exit codes, one-line errors, summaries. Mostly in-process;
a few through the installed ``tickcast`` entry point in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tickcast.service.cli import main

from .support.pg import free_port


def tickcast_executable() -> list[str]:
    script = Path(sys.executable).parent / "tickcast"
    return [str(script)] if script.exists() else [sys.executable, "-m", "tickcast"]


def run_cli(*args: str, env: dict | None = None, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TICKCAST_")}
    full_env.update(env or {})
    return subprocess.run(tickcast_executable() + list(args), capture_output=True, text=True, env=full_env,
                          cwd=cwd, timeout=timeout)


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


@pytest.mark.parametrize("args,message", [
    (["ingest", "yahoo:NVDA"], "tickcast: unknown series 'yahoo:NVDA': not in the watchlist"),
    (["ingest", "yahoo:BAD TICKER!"], "tickcast: malformed series key 'yahoo:BAD TICKER!'"),
    (["ingest", "nope:x"], "unknown source 'nope'"),
    (["--config", "/nonexistent/t.toml", "ingest"], "tickcast: config file not found: /nonexistent/t.toml"),
    (["--db", "mysql://x/y", "ingest"], "tickcast: unsupported database 'mysql'"),
    (["frobnicate"], "tickcast: argument COMMAND: invalid choice: 'frobnicate'"),
])
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
    cfg.write_text(f'[[series]]\nkey = "csv:alpha"\npath = "alpha.csv"\n[[series]]\nkey = "csv:web"\n'
                   f'url = "http://127.0.0.1:{port}/web.csv"\n')
    assert main(["--db", sqlite_url, "--config", str(cfg), "ingest", "csv:alpha"]) == 0
    capsys.readouterr()
    assert main(["--db", sqlite_url, "--config", str(cfg), "ingest", "csv:web"]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"tickcast: csv:web: cannot connect to http://127.0.0.1:{port}/web.csv "
                                        "(connection refused)"]
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
