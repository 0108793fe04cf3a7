"""The config's every bound and reason, word for word (``service/config.py``): each number at its
limit loads and one past it is refused naming the key; each kind of wrong value gets its own line;
the config file, the environment and the crash points of the reliability tests are read as
documented. tests/test_config.py covers the shape of the config; this pins the edges."""

from __future__ import annotations

import pytest

from tickcast.models.config import LIMITS
from tickcast.service.config import (
    ENV_KILL_AT,
    debug_enabled,
    default_config_text,
    kill_point,
    load_settings,
    settings_from_dict,
)
from tickcast.service.errors import ConfigError
from tickcast.service.settings import DEFAULT_BUSY_TIMEOUT_MINUTES


def refused(raw: dict, env: dict | None = None) -> str:
    with pytest.raises(ConfigError) as failure:
        settings_from_dict(raw, env=env or {})
    return str(failure.value)


def nested(dotted: str, value) -> dict:
    section, key = dotted.split(".")
    return {section: {key: value}}


# (setting, its upper bound, whether 0 is allowed)
BOUNDS = [
    ("sources.http_timeout", 600, False),
    ("sources.backoff_seconds", 600, False),
    ("sources.overlap_days", 3660, True),
    ("sources.retries", 10, True),
    ("schedule.misfire_grace_hours", 24 * 31, False),
    ("schedule.max_age_hours", 24 * 366, False),
    ("schedule.start_retries", 100, True),
    ("schedule.retry_minutes", 24 * 60, False),
    ("model.full_retrain_days", 3660, False),
    ("model.max_points", 1_000_000, False),
    ("model.group_min_series", 100_000, False),
    ("model.group_max_median_length", 10_000_000, False),
    ("forecast.horizon", LIMITS["horizon"], False),
    ("forecast.min_length", 1_000_000, False),
    ("forecast.interval_adapt_rate", 1, True),
    ("service.busy_timeout_minutes", 24 * 60, False),
]


@pytest.mark.parametrize("dotted, most, zero_allowed", BOUNDS, ids=[b[0] for b in BOUNDS])
def test_each_number_loads_at_its_bound_and_is_refused_past_it(dotted, most, zero_allowed):
    settings_from_dict(nested(dotted, most), env={})  # at the bound: loads
    over = most + 1
    assert (
        refused(nested(dotted, over))
        == f"setting {dotted!r} must be at most {most:g}, got {refused_value(dotted, over)!r}"
    )
    if zero_allowed:
        settings_from_dict(nested(dotted, 0), env={})
        assert refused(nested(dotted, -1)) == f"setting {dotted!r} must be >= 0, got {refused_value(dotted, -1)!r}"
    else:
        assert refused(nested(dotted, 0)) == f"setting {dotted!r} must be > 0, got {refused_value(dotted, 0)!r}"


def refused_value(dotted: str, value):
    """The value as the settings hold it (an int given for a float setting becomes a float)."""
    from tickcast.service import settings as module

    section = dotted.split(".")[0]
    cls = {
        "sources": module.SourceSettings,
        "schedule": module.ScheduleSettings,
        "model": module.ModelSettings,
        "forecast": module.ForecastSettings,
    }.get(section)
    if cls is None:  # service.busy_timeout_minutes
        return float(value)
    annotation = str(cls.__dataclass_fields__[dotted.split(".")[1]].type)
    return float(value) if annotation.startswith("float") else value


def test_the_busy_timeout_has_a_default_and_must_be_a_number():
    assert settings_from_dict({}, env={}).busy_timeout_minutes == DEFAULT_BUSY_TIMEOUT_MINUTES
    assert settings_from_dict({"service": {"busy_timeout_minutes": 2.5}}, env={}).busy_timeout_minutes == 2.5
    assert refused({"service": {"busy_timeout_minutes": "x"}}) == (
        "setting 'service.busy_timeout_minutes' must be a number, got 'x'"
    )


# --- one reason for each kind of wrong value ----------------------------------------------------


@pytest.mark.parametrize(
    "raw, reason",
    [
        (
            {"sources": {"history_start": "2024-13-01"}},
            "setting 'sources.history_start' must be an ISO date YYYY-MM-DD, got '2024-13-01'",
        ),
        (
            {"sources": {"fred_base_url": "ftp://x"}},
            "setting 'sources.fred_base_url' must be an http(s) URL, got 'ftp://x'",
        ),
        ({"sources": {"yahoo_base_url": "x"}}, "setting 'sources.yahoo_base_url' must be an http(s) URL, got 'x'"),
        (
            {"schedule": {"timezone": "Mars/Olympus"}},
            "setting 'schedule.timezone' must be an IANA time zone such as America/New_York, got 'Mars/Olympus'",
        ),
        (
            {"schedule": {"cron": "0 0 * *"}},
            "setting 'schedule.cron' must have five fields (minute hour day month weekday), or six with the second "
            "first, got '0 0 * *'",
        ),
        (
            {"schedule": {"cron": "0 0 * * * * *"}},
            "setting 'schedule.cron' must have five fields (minute hour day month weekday), or six with the second "
            "first, got '0 0 * * * * *'",
        ),
        ({"schedule": {"cron": "0 0 31 2 *"}}, "setting 'schedule.cron' never fires, got '0 0 31 2 *'"),
        (
            {"schedule": {"max_failed_fraction": 2}},
            "setting 'schedule.max_failed_fraction' must be between 0 and 1 (e.g. 0.5), got 2.0",
        ),
        (
            {"schedule": {"max_failed_fraction": -0.5}},
            "setting 'schedule.max_failed_fraction' must be between 0 and 1 (e.g. 0.5), got -0.5",
        ),
        ({"model": {"training": "x"}}, "setting 'model.training' must be one of 'auto', 'series', 'group', got 'x'"),
        (
            {"model": {"members": ["rnn", "rnn"]}},
            "setting 'model.members' must be distinct names from rnn, ets, theta, naive, seasonal_naive, "
            "got ['rnn', 'rnn']",
        ),
        (
            {"model": {"members": ["rnn", "arima"]}},
            "setting 'model.members' must be distinct names from rnn, ets, theta, naive, seasonal_naive, "
            "got ['rnn', 'arima']",
        ),
        (
            {"forecast": {"levels": [0.8, 0.8]}},
            "setting 'forecast.levels' must be distinct coverages between 0 and 1 (e.g. [0.8, 0.95]), got [0.8, 0.8]",
        ),
        (
            {"forecast": {"levels": [0.8, 1.0]}},
            "setting 'forecast.levels' must be distinct coverages between 0 and 1 (e.g. [0.8, 0.95]), got [0.8, 1.0]",
        ),
        (
            {"forecast": {"levels": [0.0]}},
            "setting 'forecast.levels' must be distinct coverages between 0 and 1 (e.g. [0.8, 0.95]), got [0.0]",
        ),
        ({"forecast": {"levels": 0.8}}, "setting 'forecast.levels' must be a non-empty list, got 0.8"),
        ({"forecast": {"levels": []}}, "setting 'forecast.levels' must be a non-empty list, got []"),
        ({"forecast": {"levels": ["a"]}}, "setting 'forecast.levels' must be a number, got 'a'"),
        (
            {"service": {"executor": "spark"}},
            'setting \'service.executor\' must be "local" (worker processes here) or "dask" (a Dask cluster), '
            "got 'spark'",
        ),
        ({"service": {"executor": 3}}, "setting 'service.executor' must be a string, got 3"),
        (
            {"service": {"executor": "dask"}},
            'service.executor = "dask" needs the scheduler\'s address: set service.dask_address (or '
            'TICKCAST_DASK_ADDRESS), e.g. "tcp://scheduler:8786"',
        ),
        ({"service": {"dask_address": 8786}}, "setting 'service.dask_address' must be a string, got 8786"),
        (
            {"service": {"dask_address": "tcp://h\x00:1"}},
            "setting 'service.dask_address' must not contain a NUL character, got 'tcp://h\\x00:1'",
        ),
    ],
)
def test_each_wrong_value_has_its_own_line(raw, reason):
    assert refused(raw) == reason


@pytest.mark.parametrize(
    "raw, env, reason",
    [
        (
            {"service": {"executor": "dask"}},
            {"TICKCAST_DASK_ADDRESS": "nope"},
            "TICKCAST_DASK_ADDRESS must be a Dask scheduler address such as tcp://scheduler:8786, got 'nope'",
        ),
        (
            {"service": {"executor": "dask", "dask_address": "nope"}},
            {},
            "setting 'service.dask_address' must be a Dask scheduler address such as tcp://scheduler:8786, got 'nope'",
        ),
        ({"sources": 3}, {}, "setting 'sources' must be a table ([sources])"),
        (
            {"sources": {"retrys": 3}},
            {},
            "unknown setting 'sources.retrys' (known: backoff_seconds, fred_base_url, history_start, http_timeout, "
            "overlap_days, retries, yahoo_base_url); did you mean 'retries'?",
        ),
        ({"model": 3}, {}, "setting 'model' must be a table ([model])"),
        ({"model": {"lookbacks": ["a"]}}, {}, "setting 'model.lookbacks' must be a number, got 'a'"),
        ({"model": {"lookbacks": 2}}, {}, "setting 'model.lookbacks' must be a list, got 2"),
        (
            {"x": {}},
            {},
            "unknown setting 'x' in <dict> (known sections: forecast, model, schedule, series, service, sources, "
            "watchlist)",
        ),
        (
            {"schedul": {}},
            {},
            "unknown setting 'schedul' in <dict> (known sections: forecast, model, schedule, series, service, sources, "
            "watchlist); did you mean 'schedule'?",
        ),
        ({"service": 3}, {}, "setting 'service' must be a table ([service])"),
        ({"forecast": {"level": "x"}}, {}, "setting 'forecast.level' must be a number, got 'x'"),
        ({"forecast": {"level": 1}}, {}, "setting 'forecast.level' must be between 0 and 1, got 1.0"),
        ({"forecast": {"level": 0}}, {}, "setting 'forecast.level' must be between 0 and 1, got 0.0"),
        (
            {"forecast": {"level": 0.8, "levels": [0.8]}},
            {},
            "set either 'forecast.levels' (a list) or 'forecast.level' (one level), not both",
        ),
        ({"service": {"workers": "2"}}, {}, "setting 'service.workers' must be an integer, got '2'"),
        ({"service": {"data_dir": 3}}, {}, "setting 'service.data_dir' must be a string, got 3"),
        ({"service": {"db_url": 3}}, {}, "setting 'service.db_url' must be a string, got 3"),
        (
            {"service": {"db_url": "sqlite:///x\x00"}},
            {},
            "setting 'service.db_url' must not contain a NUL character, got 'sqlite:///x\\x00'",
        ),
        (
            {"service": {"data_dir": "x\x00"}},
            {},
            "setting 'service.data_dir' must not contain a NUL character, got 'x\\x00'",
        ),
        ({}, {"TICKCAST_WORKERS": "x"}, "TICKCAST_WORKERS must be an integer, got 'x'"),
        ({}, {"TICKCAST_WORKERS": "-1"}, "setting 'service.workers' must be >= 0 (0: one per core), got -1"),
        # the file's values are checked even where the environment overrides them
        (
            {"service": {"data_dir": 3}},
            {"TICKCAST_DATA_DIR": "/tmp"},
            "setting 'service.data_dir' must be a string, got 3",
        ),
        (
            {"service": {"workers": "2"}},
            {"TICKCAST_WORKERS": "1"},
            "setting 'service.workers' must be an integer, got '2'",
        ),
    ],
)
def test_each_wrong_service_or_section_value_has_its_own_line(raw, env, reason):
    assert refused(raw, env) == reason


def test_the_model_s_unknown_keys_point_to_its_readme():
    message = refused({"model": {"forecaster": 3}})
    assert message.startswith("unknown setting 'model.forecaster' (known: batch_size, cell, clip, ")
    assert message.endswith("warm_epochs, warm_lr_scale, warm_windows; see models/README.md)")


def test_one_level_is_a_list_of_one_and_keeps_the_section_s_other_keys():
    forecast = settings_from_dict({"forecast": {"level": 0.9, "horizon": 3}}, env={}).forecast
    assert forecast.levels == (0.9,) and forecast.horizon == 3
    assert settings_from_dict({"forecast": {"level": 0.001}}, env={}).forecast.levels == (0.001,)


def test_where_the_data_and_the_database_are(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = settings_from_dict({}, env={})
    assert settings.data_dir == str(tmp_path) and settings.db_url == f"sqlite:///{tmp_path / 'tickcast.db'}"
    # a relative data_dir is relative to the config file; an absolute one is itself
    base = tmp_path / "conf"
    settings = settings_from_dict({"service": {"data_dir": "data"}}, base_dir=base, env={})
    assert settings.data_dir == str(base / "data")
    assert settings_from_dict({"service": {"data_dir": "/srv/x"}}, base_dir=base, env={}).data_dir == "/srv/x"
    assert settings_from_dict({}, base_dir=base, env={}).data_dir == str(tmp_path)  # not set: the working dir
    # the environment's is taken as given (relative to the working dir)
    env = {"TICKCAST_DATA_DIR": "elsewhere"}
    settings = settings_from_dict({"service": {"data_dir": "data"}}, base_dir=base, env=env)
    assert settings.data_dir == str(tmp_path / "elsewhere")
    # the database: --db, else the environment, else the file, else tickcast.db in the data dir
    raw = {"service": {"db_url": "sqlite:////file.db"}}
    assert settings_from_dict(raw, env={}).db_url == "sqlite:////file.db"
    assert settings_from_dict(raw, env={"TICKCAST_DB_URL": "sqlite:////env.db"}).db_url == "sqlite:////env.db"
    assert settings_from_dict(raw, db_url="sqlite:////arg.db", env={"TICKCAST_DB_URL": "x"}).db_url == (
        "sqlite:////arg.db"
    )


def test_workers_come_from_the_environment_else_the_file_else_the_cores(monkeypatch):
    import os

    assert settings_from_dict({}, env={}).execution.workers == (os.cpu_count() or 1)
    assert settings_from_dict({"service": {"workers": 3}}, env={}).execution.workers == 3
    assert settings_from_dict({"service": {"workers": 3}}, env={"TICKCAST_WORKERS": "2"}).execution.workers == 2
    monkeypatch.setenv("TICKCAST_WORKERS", "5")  # without env=..., the process's environment
    assert settings_from_dict({}).execution.workers == 5
    monkeypatch.setenv("TICKCAST_CONFIG", "/nowhere.toml")
    with pytest.raises(ConfigError, match="config file not found: /nowhere.toml"):
        load_settings()


def test_the_levels_edges_load():
    assert settings_from_dict({"forecast": {"levels": [0.01, 0.99]}}, env={}).forecast.levels == (0.01, 0.99)


# --- the executor, from the file or the environment ---------------------------------------------


def test_the_executor_is_local_unless_the_file_or_the_environment_names_the_cluster_one():
    execution = settings_from_dict({}, env={}).execution
    assert (execution.name, execution.dask_address) == ("local", "")
    raw = {"service": {"executor": "dask", "dask_address": "tcp://file:8786"}}
    execution = settings_from_dict(raw, env={}).execution
    assert (execution.name, execution.dask_address) == ("dask", "tcp://file:8786")
    env = {"TICKCAST_EXECUTOR": "dask", "TICKCAST_DASK_ADDRESS": "tcp://env:8786"}
    execution = settings_from_dict(raw, env=env).execution
    assert (execution.name, execution.dask_address) == ("dask", "tcp://env:8786")
    execution = settings_from_dict({}, env=env).execution
    assert (execution.name, execution.dask_address) == ("dask", "tcp://env:8786")
    assert settings_from_dict(raw, env={"TICKCAST_EXECUTOR": "local"}).execution.name == "local"


def test_a_wrong_executor_from_the_environment_names_the_variable():
    assert refused({}, env={"TICKCAST_EXECUTOR": "spark"}) == (
        'TICKCAST_EXECUTOR must be "local" (worker processes here) or "dask" (a Dask cluster), got \'spark\''
    )


def test_the_file_s_executor_settings_are_checked_even_when_the_environment_overrides_them():
    env = {"TICKCAST_EXECUTOR": "local"}
    assert refused({"service": {"executor": 3}}, env=env) == "setting 'service.executor' must be a string, got 3"
    assert refused({"service": {"dask_address": 1}}, env=env) == (
        "setting 'service.dask_address' must be a string, got 1"
    )


# --- the config file ----------------------------------------------------------------------------


def test_without_a_file_the_packaged_default_is_read(monkeypatch):
    monkeypatch.delenv("TICKCAST_CONFIG", raising=False)
    settings = load_settings(env={})
    assert settings.config_path == "<packaged default>"
    assert "[watchlist]" in default_config_text()


def test_the_file_comes_from_the_argument_else_the_environment(tmp_path):
    one, two = tmp_path / "one.toml", tmp_path / "two.toml"
    one.write_text('[sources]\nretries = 1\n[[series]]\nkey = "csv:x"\npath = "x.csv"\n')
    two.write_text("[sources]\nretries = 2\n")
    assert load_settings(str(one), env={"TICKCAST_CONFIG": str(two)}).sources.retries == 1
    settings = load_settings(None, env={"TICKCAST_CONFIG": str(two)})
    assert settings.sources.retries == 2 and settings.config_path == str(two)
    (series,) = load_settings(str(one), env={}).series
    assert series.path == str(tmp_path / "x.csv")  # relative to the file


def test_a_config_file_that_cannot_be_read_is_one_line(tmp_path):
    def error(path):
        with pytest.raises(ConfigError) as failure:
            load_settings(str(path), env={})
        return str(failure.value)

    assert error(tmp_path / "none.toml") == f"config file not found: {tmp_path / 'none.toml'}"
    assert error(tmp_path).startswith(f"cannot read config file {tmp_path}: [Errno 21] Is a directory")
    (tmp_path / "bad.toml").write_text("[sources\n")
    assert (
        error(tmp_path / "bad.toml")
        == f"malformed config {tmp_path / 'bad.toml'}: Expected ']' at the end of a table declaration "
        "(at line 1, column 9)"
    )
    (tmp_path / "latin.toml").write_bytes(b"# caf\xe9\n")
    assert error(tmp_path / "latin.toml").startswith(
        f"cannot read config file {tmp_path / 'latin.toml'}: 'utf-8' codec"
    )


# --- the environment's switches -----------------------------------------------------------------


@pytest.mark.parametrize(
    "value, on", [("", False), ("0", False), ("false", False), ("no", False), ("1", True), ("yes", True)]
)
def test_debug_is_on_for_any_value_but_the_off_ones(value, on, monkeypatch):
    assert debug_enabled({"TICKCAST_DEBUG": value}) is on
    monkeypatch.setenv("TICKCAST_DEBUG", value)
    assert debug_enabled() is on
    assert debug_enabled({}) is False


def test_a_crash_point_is_a_name_and_a_count(monkeypatch):
    points = ("fetch", "store-fit")
    assert kill_point(points, {}) is None
    assert kill_point(points, {ENV_KILL_AT: ""}) is None
    assert kill_point(points, {ENV_KILL_AT: "store-fit:3"}) == ("store-fit", 3)
    assert kill_point(points, {ENV_KILL_AT: "fetch"}) == ("fetch", 1)
    assert kill_point(points, {ENV_KILL_AT: "fetch:"}) == ("fetch", 1)
    monkeypatch.setenv(ENV_KILL_AT, "fetch:2")
    assert kill_point(points) == ("fetch", 2)
    with pytest.raises(ConfigError) as failure:
        kill_point(points, {ENV_KILL_AT: "train:1"})
    assert str(failure.value) == "TICKCAST_KILL_AT names no crash point: 'train' (known: fetch, store-fit)"
    with pytest.raises(ConfigError) as failure:
        kill_point(points, {ENV_KILL_AT: "fetch:x"})
    assert str(failure.value) == "TICKCAST_KILL_AT must look like <point>:<n>, got 'fetch:x'"
