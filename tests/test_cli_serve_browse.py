"""`tickcast serve`, `tickcast browse` and the command line's logging, in this process, on a real
SQLite file and a CSV series.

serve is the real daemon: a run now (or none), logs at INFO (WARNING with -q), stopped by a real
SIGTERM sent to this process, also while it is still starting (reading its config from a FIFO
nobody writes). browse ends in ``os.execv``, which would replace the test process: the seam records
what would be executed and what Datasette would read on its standard input, and stops there.
tests/test_serve.py and tests/test_browse.py run both commands as their own processes."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tickcast.service import browse, schema
from tickcast.service.cli import main
from tickcast.service.config import load_settings
from tickcast.service.db import make_engine

from .support.small_model import FAST_MODEL
from .support.stop_state import cancel_grace_timer, no_stop_requested


@pytest.fixture
def world(make_series, sqlite_url, tmp_path):
    rng = np.random.default_rng(7)
    make_series("a", 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 150))), dates=pd.bdate_range("2022-01-03", periods=150))
    config = tmp_path / "t.toml"
    config.write_text('[[series]]\nkey = "csv:a"\npath = "a.csv"\nprice = true\n' + FAST_MODEL)
    return ["--db", sqlite_url, "--config", str(config)], sqlite_url


@pytest.fixture
def restored(monkeypatch):
    """No stop requested before; the signal handlers and the `tickcast` logger's level as they were,
    after the test."""
    no_stop_requested(monkeypatch)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # whatever an earlier test left: SIGTERM would end pytest
    level = logging.getLogger("tickcast").level
    yield
    cancel_grace_timer()
    for s, handler in handlers.items():
        signal.signal(s, handler)
    logging.getLogger("tickcast").setLevel(level)


def sigterm_when(ready, give_up=lambda: None, seconds: float = 180) -> threading.Thread:
    """A thread that sends SIGTERM to this process once ``ready()`` holds and tickcast's handler is
    installed (never to the default handler: it would end pytest); ``give_up()`` after ``seconds``."""

    def watch() -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN, None) and ready():
                os.kill(os.getpid(), signal.SIGTERM)
                return
            time.sleep(0.05)
        give_up()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def finished_runs(url: str) -> list:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(
                sa.select(schema.runs.c.trigger, schema.runs.c.status).where(schema.runs.c.finished_at.is_not(None))
            ).all()
    except sa.exc.OperationalError:  # no tables yet
        return []
    finally:
        engine.dispose()


def said(caplog, logger: str, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger and r.levelno == level]


def test_serve_run_now_runs_at_once_logs_at_info_and_stops_on_sigterm(world, restored, caplog):
    base, url = world
    thread = sigterm_when(lambda: bool(finished_runs(url)))
    assert main([*base, "serve", "--run-now"]) == 0
    thread.join()
    assert finished_runs(url) == [("manual", "ok")]
    info = said(caplog, "tickcast.serve", logging.INFO)
    assert info[0].startswith("tickcast serve: schedule ") and info[-1] == "stopped"
    assert any(re.fullmatch(r"run 1 finished: ok \(1 series, \d+\.\d s\)", m) for m in info), info
    assert logging.getLogger("tickcast").level == logging.INFO


def test_serve_without_run_now_waits_for_its_schedule(world, restored, caplog, capsys):
    base, url = world
    assert main([*base, "run", "-q"]) == 0  # after the last scheduled time: nothing to catch up
    served = lambda: any(m.startswith("tickcast serve: schedule") for m in said(caplog, "tickcast.serve", 20))  # noqa: E731
    thread = sigterm_when(served)
    assert main([*base, "serve"]) == 0
    thread.join()
    assert finished_runs(url) == [("manual", "ok")]  # no other run
    assert said(caplog, "tickcast.serve", logging.INFO)[-1] == "stopped"


def test_serve_quiet_logs_warnings_only(world, restored, caplog):
    base, url = world
    thread = sigterm_when(lambda: bool(finished_runs(url)))
    assert main(["-q", *base, "serve", "--run-now"]) == 0
    thread.join()
    assert finished_runs(url) == [("manual", "ok")]
    assert logging.getLogger("tickcast").level == logging.WARNING
    assert [r for r in caplog.records if r.name.startswith("tickcast") and r.levelno < logging.WARNING] == []


def unblock(fifo) -> None:
    """No handler came: an empty config ends the read, and a SIGINT (KeyboardInterrupt, or serve's
    own stop) ends what follows; the test fails instead of hanging."""
    open(fifo, "w").close()
    time.sleep(1)
    os.kill(os.getpid(), signal.SIGINT)


def test_sigterm_while_serve_reads_its_config_stops_it_cleanly(tmp_path, sqlite_url, restored, caplog):
    fifo = tmp_path / "config.toml"
    os.mkfifo(fifo)  # reading it blocks until a writer comes: none does
    thread = sigterm_when(lambda: time.sleep(0.3) is None, give_up=lambda: unblock(fifo), seconds=60)
    assert main(["--db", sqlite_url, "--config", str(fifo), "serve"]) == 0
    thread.join()
    assert said(caplog, "tickcast.serve", logging.INFO) == ["received SIGTERM during start-up: stopped before serving"]
    assert not (tmp_path / "tickcast.db").exists()


class Executed(BaseException):
    """What os.execv would have run (a BaseException: nothing on the way may catch it)."""

    def __init__(self, path: str, argv: list[str], stdin: bytes):
        super().__init__(path)
        self.path, self.argv, self.stdin = path, argv, stdin


@pytest.fixture
def execv(monkeypatch):
    """os.execv, recorded: the program, its arguments and its standard input (file descriptor 0,
    which browse points at Datasette's metadata); fd 0 restored afterwards."""
    saved = os.dup(0)

    def record(path, argv):
        chunks = []
        while chunk := os.read(0, 65536):
            chunks.append(chunk)
        raise Executed(path, list(argv), b"".join(chunks))

    monkeypatch.setattr(os, "execv", record)
    yield
    os.dup2(saved, 0)
    os.close(saved)


def browse_in_process(argv: list[str]) -> Executed:
    with pytest.raises(Executed) as executed:
        main(argv)
    return executed.value


@pytest.mark.parametrize("allow_sql", [False, True])
def test_browse_executes_datasette_on_the_database_with_its_metadata_on_stdin(world, execv, capsys, allow_sql):
    base, url = world
    assert main([*base, "init"]) == 0
    capsys.readouterr()
    extra = ["--allow-sql"] if allow_sql else []
    done = browse_in_process([*base, "browse", "--port", "8123", *extra])
    path = url.removeprefix("sqlite:///")
    assert done.path == sys.executable
    assert done.argv == [
        sys.executable,
        "-m",
        "datasette",
        "serve",
        os.path.abspath(path),
        "--metadata",
        "-",
        "--plugins-dir",
        browse.plugins_dir(),
        "--host",
        "127.0.0.1",
        "--port",
        "8123",
        "--setting",
        "sql_time_limit_ms",
        "5000",
        "--setting",
        "default_allow_sql",
        "on" if allow_sql else "off",
    ]
    assert json.loads(done.stdin) == browse.metadata_for("tickcast")
    assert capsys.readouterr() == ("", "")  # on 127.0.0.1: nothing to warn about
    settings = load_settings(base[3], url)
    launch = browse.datasette_launch(settings, "127.0.0.1", 8123, allow_sql=allow_sql)
    assert (launch.argv, launch.metadata) == (done.argv, json.loads(done.stdin))


@pytest.mark.parametrize("quiet", [False, True])
def test_browse_on_every_address_warns_even_when_quiet(world, execv, capsys, quiet):
    base, _ = world
    assert main([*base, "init"]) == 0
    capsys.readouterr()
    done = browse_in_process([*base, *(["-q"] if quiet else []), "browse", "--host", "0.0.0.0"])
    assert done.argv[done.argv.index("--host") + 1 :][:3] == ["0.0.0.0", "--port", "8001"]
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"tickcast: warning: {browse.exposure_warning('0.0.0.0', 8001)}\n"


@pytest.mark.parametrize("quiet", [False, True])
def test_browse_waiting_for_the_database_says_so_unless_quiet(world, execv, capsys, quiet):
    base, url = world
    creator = threading.Timer(0.5, lambda: main([*base, "init"]))
    creator.start()
    try:
        done = browse_in_process([*base, *(["-q"] if quiet else []), "browse", "--wait", "20"])
    finally:
        creator.join()
    assert done.argv[4] == os.path.abspath(url.removeprefix("sqlite:///"))
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.startswith("tickcast: no database")]
    if quiet:
        assert lines == []
    else:
        path = url.removeprefix("sqlite:///")
        assert lines == [
            f"tickcast: no database at {path}: run 'tickcast init' or 'tickcast run' first; waiting up to 20 s for it"
        ]


@pytest.fixture
def bare_root():
    """Empties the root logger's handlers when called, as a command line process starts (pytest adds
    its own as each test phase starts); everything put back after."""
    root = logging.getLogger()
    saved: list = []
    levels = {name: logging.getLogger(name).level for name in ("", "yfinance", "tickcast")}

    def empty() -> logging.Logger:
        saved[:] = root.handlers
        root.handlers.clear()
        for name in ("tickcast", "yfinance"):  # as set by no earlier command
            logging.getLogger(name).setLevel(logging.NOTSET)
        return root

    yield empty
    for handler in root.handlers:
        handler.close()
    root.handlers[:] = saved
    for name, value in levels.items():
        logging.getLogger(name).setLevel(value)


def test_the_command_lines_log_is_warnings_on_stderr_with_time_level_and_logger(tmp_path, bare_root, capsys):
    root = bare_root()
    assert main(["--db", f"sqlite:///{tmp_path / 'none.db'}", "health"]) == 1  # any command sets it up
    capsys.readouterr()
    logging.getLogger("tickcast.test").warning("disk %s", "full")
    logging.getLogger("tickcast.test").info("not shown")
    logging.getLogger("yfinance").error("shown as our own one-line reason instead")
    logging.getLogger("yfinance").critical("a crash")
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 2, lines
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d WARNING tickcast\.test: disk full", lines[0])
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d CRITICAL yfinance: a crash", lines[1])
    assert root.level == logging.WARNING


def test_sigterm_during_tickcast_run_stops_it_after_the_series_in_progress(
    world, restored, capsys, make_series, monkeypatch
):
    """`tickcast run` in this process, sent a real SIGTERM as soon as its handler is in place: it
    says so, finishes what it is doing, stops, and exits 1 with the line that the next run does the
    rest; the next run does."""
    base, url = world
    for name in "bcdef":
        make_series(name, 100 + np.arange(150.0), dates=pd.bdate_range("2022-01-03", periods=150))
    config = base[3]
    with open(config) as f:
        toml = f.read()
    extra = "".join(f'[[series]]\nkey = "csv:{n}"\npath = "{n}.csv"\n' for n in "bcdef")
    with open(config, "w") as f:
        f.write(toml.replace("[model]", extra + "[model]"))
    thread = sigterm_when(lambda: True, seconds=60)
    assert main([*base, "run"]) == 1
    thread.join()
    out, err = capsys.readouterr()
    assert (
        "tickcast: SIGTERM: finishing the series in progress, then stopping (at most 10 s; a second signal stops at "
        "once)"
    ) in err.splitlines(), err
    (summary,) = [line for line in out.splitlines() if line.startswith("run 1: ")]
    assert err.rstrip().endswith(
        "tickcast: run 1 stopped early; finished series are stored, the next run does the rest"
    ), err
    assert "6 trained" not in summary
    cancel_grace_timer()
    no_stop_requested(monkeypatch)  # that stop is over (a process runs once; this one runs twice)
    assert main([*base, "run", "-q"]) == 0  # the next run does the rest
