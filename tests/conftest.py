"""Fixtures: real databases (a SQLite file and a PostgreSQL server started for the run), real HTTP
servers on 127.0.0.1, and factories (``fresh_db``, ``make_settings``, ``make_series``) instead of
shared global state."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd
import pytest

from tickcast.service.config import settings_from_dict
from tickcast.service.db import make_engine, open_database

from .support import report
from .support.fake_yahoo import FakeYahoo
from .support.httpserver import FixtureServer
from .support.pg import PostgresServer

BACKENDS = ["sqlite", "postgresql"]


def pytest_addoption(parser):
    parser.addoption(
        "--run-slow",
        action="store_true",
        help="run every slow reliability case (make test-reliability); default: a seeded subset",
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    keep = [item for item in items if "slow" not in item.keywords]
    dropped = [item for item in items if "slow" in item.keywords]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def pytest_sessionfinish(session):
    worker = getattr(session.config, "workeroutput", None)
    if worker is not None:  # a pytest-xdist worker: hand the figures and the ledger to the controller
        worker["tickcast_report"] = report.worker_output()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    output = getattr(node, "workeroutput", {}).get("tickcast_report")
    if output:
        report.merge_worker_output(output)


def pytest_terminal_summary(terminalreporter):
    report.summary(terminalreporter.write_line, terminalreporter.section)


@pytest.fixture(scope="session")
def pg_server():
    server = PostgresServer().start()  # raises (the tests fail) if PostgreSQL cannot start
    yield server
    server.stop()


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def db_url(backend, tmp_path, request):
    """An empty database on the parametrised backend: a SQLite file, or a fresh PostgreSQL database."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'tickcast.db'}"
    else:
        with request.getfixturevalue("pg_server").database() as url:
            yield url


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'tickcast.db'}"


@pytest.fixture
def fresh_db(db_url):
    """Factory: an engine on the test's database, upgraded to head (disposed at teardown)."""
    engines = []

    def make(upgraded: bool = True):
        engine = open_database(db_url) if upgraded else make_engine(db_url)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.dispose()


@pytest.fixture
def make_settings(tmp_path):
    """Factory: Settings from a TOML snippet; the data dir is the test's tmp dir and no env leaks in."""

    def make(toml: str = "", db_url: str | None = None, **sources):
        import tomllib

        raw = tomllib.loads(textwrap.dedent(toml))
        raw.setdefault("sources", {}).update({"retries": 2, "backoff_seconds": 0.01, "http_timeout": 2.0})
        raw["sources"].update(sources)
        raw.setdefault("service", {}).setdefault("data_dir", str(tmp_path))
        raw["service"].setdefault("workers", 1)  # in-process training unless a test asks for a pool
        return settings_from_dict(
            raw, origin="test.toml", base_dir=tmp_path, db_url=db_url or f"sqlite:///{tmp_path / 'tickcast.db'}", env={}
        )

    return make


@pytest.fixture
def make_series(tmp_path):
    """Factory: write a CSV series file (date,value) and return its path."""

    def make(name: str, values, start: str = "2020-01-01", freq: str = "D", dates=None) -> Path:
        dates = dates if dates is not None else pd.date_range(start, periods=len(values), freq=freq)
        path = tmp_path / f"{name}.csv"
        pd.DataFrame({"date": [pd.Timestamp(d).strftime("%Y-%m-%d") for d in dates], "value": list(values)}).to_csv(
            path, index=False
        )
        return path

    return make


@pytest.fixture
def http_server():
    server = FixtureServer().start()
    yield server
    server.stop()


@pytest.fixture
def fake_yahoo():
    server = FakeYahoo().start()
    yield server
    server.stop()
