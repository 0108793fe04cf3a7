"""What `tickcast browse` decides before Datasette runs, in this process: who is warned about an
open port, where the plugins are, how long it waits for a database and how often it says so, and
the databases it refuses to serve. tests/test_cli_serve_browse.py follows the command to the
``execv``; tests/test_browse.py runs Datasette in a real browser."""

from __future__ import annotations

import importlib.util
import json
import shlex
import sqlite3
import sys
import threading
import time
from pathlib import Path

import pytest

from tickcast.service import browse
from tickcast.service.cli import main
from tickcast.service.config import settings_from_dict
from tickcast.service.errors import DatabaseError, NoDatabase, TickcastError

REFUSED = "browse serves a SQLite database file with Datasette; for PostgreSQL use psql or another client"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_this_machine_only_is_not_warned_about(host):
    assert browse.exposure_warning(host, 8001) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "LOCALHOST.example.org"])
def test_any_other_address_is_warned_about_in_one_line(host):
    assert browse.exposure_warning(host, 8001) == (
        f"browse listens on {host}:8001: Datasette has no authentication, so anyone who can reach this "
        "port reads every table; listen on 127.0.0.1 (the default) unless that is what you want"
    )


def test_the_plugins_are_the_packaged_charts_and_metadata():
    folder = Path(browse.plugins_dir())
    assert folder.is_dir() and folder.name == "datasette"
    assert {"tickcast_charts.py", "metadata.json"} <= {p.name for p in folder.iterdir()}


class Clock:
    """time.monotonic and time.sleep for browse, with no real waiting."""

    def __init__(self):
        self.now, self.slept = 100.0, []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(browse, "time", fake)
    return fake


def never_there(attempts: list):
    def open_it():
        attempts.append(browse.time.monotonic())
        raise NoDatabase("no database at x.db")

    return open_it


@pytest.mark.parametrize("wait,tries", [(0, [100.0]), (2, [100.0, 101.0, 102.0]), (2.5, [100.0, 101.0, 102.0, 103.0])])
def test_it_tries_once_a_second_until_the_wait_is_over_and_says_so_once(clock, wait, tries):
    attempts, said = [], []
    with pytest.raises(NoDatabase):
        browse.wait_for_database(never_there(attempts), wait, said.append)
    assert attempts == tries and clock.slept == [1] * (len(tries) - 1)
    assert said == ([] if wait == 0 else [f"no database at x.db; waiting up to {wait:g} s for it"])


def test_a_database_that_appears_ends_the_wait(clock):
    attempts, said = [], []

    def appears_on_the_third():
        attempts.append(clock.now)
        if len(attempts) < 3:
            raise NoDatabase("no database at x.db")

    browse.wait_for_database(appears_on_the_third, 30, said.append)
    assert attempts == [100.0, 101.0, 102.0] and said == ["no database at x.db; waiting up to 30 s for it"]


def settings(url: str):
    return settings_from_dict({}, env={"TICKCAST_DB_URL": url})


@pytest.mark.parametrize("url", ["postgresql://u@127.0.0.1:1/tickcast", "sqlite://", "sqlite:///:memory:"])
def test_what_is_not_a_sqlite_file_is_refused_in_one_line(url):
    with pytest.raises(TickcastError) as info:
        browse.datasette_launch(settings(url), "127.0.0.1", 8001)
    assert str(info.value) == REFUSED


def test_by_default_it_neither_waits_nor_allows_sql(tmp_path, clock):
    said = []
    url = f"sqlite:///{tmp_path}/t.db"
    with pytest.raises(NoDatabase):  # no file: refused at once, nothing said
        browse.datasette_launch(settings(url), "127.0.0.1", 8001, say=said.append)
    assert said == [] and clock.slept == []
    assert main(["--db", url, "-q", "init"]) == 0
    launch = browse.datasette_launch(settings(url), "127.0.0.1", 8001)
    assert launch.argv[-2:] == ["default_allow_sql", "off"] and launch.argv[4] == f"{tmp_path}/t.db"


def test_without_datasette_it_says_how_to_install_it(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "datasette" else real(name, *a))
    with pytest.raises(TickcastError) as info:
        browse.datasette_launch(settings(f"sqlite:///{tmp_path}/t.db"), "127.0.0.1", 8001)
    assert str(info.value) == f"Datasette is not installed: {browse.install_hint()}"


def test_the_metadata_is_the_packaged_one_under_the_name_datasette_serves():
    packaged = json.loads((Path(browse.plugins_dir()) / "metadata.json").read_text())
    served = browse.metadata_for("tc")
    assert served["databases"] == {"tc": packaged["databases"]["tickcast"]}
    assert {k: v for k, v in served.items() if k != "databases"} == {
        k: v for k, v in packaged.items() if k != "databases"
    }


def test_the_install_hint_is_a_command_for_this_checkout_or_for_the_package(tmp_path, monkeypatch):
    pip = str(Path(sys.executable).parent / "pip")
    checkout = tmp_path / "my checkout"  # a space: the hint quotes it
    (checkout / "service").mkdir(parents=True)
    (checkout / "pyproject.toml").write_text("")
    (checkout / "service" / "browse.py").write_text("")
    monkeypatch.setattr(browse, "__file__", str(checkout / "service" / "browse.py"))
    command, _, note = browse.install_hint().partition(" (")
    assert shlex.split(command) == [pip, "install", "-e", f"{checkout}[browse]"]
    assert note == f"make run in {checkout} installs it too)"
    (checkout / "pyproject.toml").unlink()  # an installed package: not a checkout
    assert shlex.split(browse.install_hint()) == [pip, "install", "tickcast[browse]"]
    (checkout / "pyproject.toml").write_text("")
    (checkout / "service" / "browse.py").unlink()  # some other project's folder
    assert shlex.split(browse.install_hint()) == [pip, "install", "tickcast[browse]"]


def test_an_older_database_is_upgraded_waiting_for_a_writer_only_as_long_as_configured(tmp_path):
    from tickcast.service import db

    url = f"sqlite:///{tmp_path / 'older.db'}"
    engine = db.make_engine(url)
    db.upgrade(engine, "0006")
    engine.dispose()
    configured = settings_from_dict({"service": {"busy_timeout_minutes": 0.01}}, env={"TICKCAST_DB_URL": url})
    holder = sqlite3.connect(tmp_path / "older.db", isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another process's write transaction
    release = threading.Timer(20, holder.rollback)  # a launch that waits too long fails, never hangs
    release.start()
    try:
        started = time.monotonic()
        with pytest.raises(DatabaseError, match="locked"):
            browse.datasette_launch(configured, "127.0.0.1", 8001)
        assert time.monotonic() - started < 15
    finally:
        release.cancel()
        holder.rollback()
        holder.close()
