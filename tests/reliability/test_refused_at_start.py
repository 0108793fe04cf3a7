"""Settings that cannot work are refused as tickcast starts, in one line with exit 1, before anything
is fetched or stored: a model setting that would make forecasting loop for ever, a database URL that
keeps nothing (in memory), one with options tickcast would silently ignore, and one that does not
parse (which used to be an "internal error", exit 70, quoting the password)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tickcast.models import ForecasterConfig, RNNForecaster

from .scenario import database, make_world, run_tickcast


def test_max_windows_1_is_refused_at_start_instead_of_forecasting_for_ever(tmp_path, ledger):
    env = make_world(tmp_path)
    config = tmp_path / "tickcast.toml"
    config.write_text(config.read_text().replace("max_points = 400", "max_points = 400\nmax_windows = 1"))
    done = run_tickcast(env, "run", timeout=120)  # it used to spin in the forecast step for ever
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == ["tickcast: setting 'model.max_windows' must be an integer >= 2, got 1"]
    assert not database(env).exists()  # refused before the database was touched
    ledger.record("settings: model.max_windows = 1")


def test_the_model_alone_refuses_max_windows_1_and_forecasts_with_2():
    with pytest.raises(ValueError, match="max_windows must be an integer >= 2"):
        RNNForecaster(max_windows=1)
    with pytest.raises(ValueError, match="max_windows must be an integer >= 2"):
        ForecasterConfig(max_windows=1)
    y = 50 + np.cumsum(np.random.default_rng(1).normal(0, 1, 60))
    model = RNNForecaster(max_windows=2, hidden_size=4, epochs=2, ensemble=1).fit(y)
    assert np.isfinite(model.predict(12)).all()  # the smallest window count still forecasts every step


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite:///:memory:"])
def test_an_in_memory_database_url_is_refused_in_one_line(tmp_path, url, ledger):
    env = make_world(tmp_path)
    for command in ("run", "ingest", "health"):
        done = run_tickcast(env, "--db", url, command, timeout=120)
        assert done.returncode == 1, (command, done.stdout, done.stderr)
        assert done.stdout == ""  # no forecasts printed from a database that is about to vanish
        assert done.stderr.splitlines() == [
            f"tickcast: the database URL {url!r} names no file: an in-memory SQLite database keeps nothing "
            "once tickcast exits (an empty variable in --db or TICKCAST_DB_URL gives one); name a file, e.g. "
            "sqlite:///data/tickcast.db"
        ]
    ledger.record("settings: in-memory database URL", injected=3, survived=3)


def test_a_sqlite_url_with_options_is_refused_instead_of_opened_writable(tmp_path, ledger):
    env = make_world(tmp_path)
    done = run_tickcast(env, "--db", f"sqlite:///{tmp_path}/x.db?mode=ro", "run", timeout=120)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        f"tickcast: the database URL 'sqlite:///{tmp_path}/x.db?***' has options (mode): tickcast opens SQLite "
        "files its own way (WAL, a busy timeout) and takes none; remove them"
    ]
    assert not os.path.exists(tmp_path / "x.db")
    ledger.record("settings: sqlite URL with ?mode=ro")


@pytest.mark.parametrize(
    "url,shown",
    [
        ("postgresql://alice:s3cret@db.example:notaport/tickcast", "postgresql://***@db.example:notaport/tickcast"),
        ("postgresql://alice:s3cret@[::1/tickcast", "postgresql://***@[::1/tickcast"),
        (
            "postgresql://alice:s3cret@[fe80::1:5432/tickcast?sslmode=require",
            "postgresql://***@[fe80::1:5432/tickcast?***",
        ),
    ],
)
def test_a_malformed_database_url_is_one_line_exit_1_without_its_password(tmp_path, url, shown, ledger):
    env = make_world(tmp_path)
    for command in ("run", "forecasts"):
        done = run_tickcast(env, "--db", url, command, timeout=120)
        assert done.returncode == 1, done.stderr
        assert done.stderr.splitlines() == [
            f"tickcast: malformed database URL {shown!r}: expected e.g. sqlite:///tickcast.db or "
            "postgresql://user@host:5432/dbname"
        ]
        assert "s3cret" not in done.stderr
    ledger.record("settings: malformed database URL", injected=2, survived=2)
