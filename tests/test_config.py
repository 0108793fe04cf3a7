"""Config is data: the packaged default loads, and every mistake names its key."""

from __future__ import annotations

import pytest

from tickcast.service.config import load_settings, settings_from_dict
from tickcast.service.errors import ConfigError
from tickcast.service.keys import parse_key


def test_packaged_default_config_loads_with_the_documented_watchlist(tmp_path):
    settings = load_settings(env={"TICKCAST_DATA_DIR": str(tmp_path)})
    keys = [s.key for s in settings.series]
    for key in (
        "yahoo:SPY",
        "yahoo:AAPL",
        "yahoo:MSFT",
        "yahoo:BTC-USD",
        "fred:DGS10",
        "fred:UNRATE",
        "sample:sp500",
        "sample:nasdaq",
        "sample:wti",
        "sample:core-cpi",
    ):
        assert key in keys
    assert settings.db_url == f"sqlite:///{tmp_path}/tickcast.db"
    btc = settings.series_by_key()["yahoo:BTC-USD"]
    assert (btc.frequency, btc.price, btc.field) == ("D", True, "Adj Close")
    assert settings.schedule.timezone == "America/New_York"


def test_environment_overrides(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[watchlist]\nsample = ["wti"]\n')
    settings = load_settings(
        env={
            "TICKCAST_CONFIG": str(cfg),
            "TICKCAST_DB_URL": "sqlite:///x.db",
            "TICKCAST_WORKERS": "3",
            "TICKCAST_YAHOO_URL": "http://127.0.0.1:1",
        }
    )
    assert [s.key for s in settings.series] == ["sample:wti"]
    assert (settings.db_url, settings.workers, settings.sources.yahoo_base_url) == (
        "sqlite:///x.db",
        3,
        "http://127.0.0.1:1",
    )
    assert load_settings(str(cfg), db_url="sqlite:///y.db", env={}).db_url == "sqlite:///y.db"  # --db wins


@pytest.mark.parametrize(
    "raw,message",
    [
        ({"model": {"hiden_size": 3}}, "unknown setting 'model.hiden_size'"),
        ({"model": {"hidden_size": "big"}}, "setting 'model.hidden_size' must be an integer, got 'big'"),
        ({"model": {"hidden_size": True}}, "setting 'model.hidden_size' must be an integer"),
        ({"model": {"cell": "lstm"}}, "setting 'model.cell' must be one of ['gru', 'rnn'], got 'lstm'"),
        ({"forecast": {"level": 80}}, "setting 'forecast.level' must be between 0 and 1"),
        ({"schedule": {"timezone": "Mars/Olympus"}}, "setting 'schedule.timezone' must be an IANA time zone"),
        ({"schedule": {"cron": "every day"}}, "setting 'schedule.cron' must have five fields"),
        (
            {"schedule": {"cron": "30 17 * * mon-fro"}},
            "setting 'schedule.cron' is not a valid cron expression (Invalid weekday name \"fro\")",
        ),
        (
            {"schedule": {"cron": "99 17 * * *"}},
            "setting 'schedule.cron' is not a valid cron expression (Error "
            "validating expression '99': the last value (99) is higher than the "
            "maximum value (59))",
        ),
        ({"schedule": {"cron": "0 0 31 2 *"}}, "setting 'schedule.cron' never fires, got '0 0 31 2 *'"),
        ({"sources": {"history_start": "yesterday"}}, "setting 'sources.history_start' must be an ISO date"),
        ({"sources": {"retries": -1}}, "setting 'sources.retries' must be >= 0"),
        ({"watchlist": {"yahoo": "SPY"}}, "setting 'watchlist.yahoo' must be a list of strings"),
        ({"watchlist": {"bloomberg": ["X"]}}, "unknown setting 'watchlist.bloomberg'"),
        ({"watchlist": {"yahoo": ["SPY; DROP TABLE series"]}}, "malformed series key 'yahoo:SPY; DROP TABLE series'"),
        ({"watchlist": {"sample": ["gold"]}}, "expected one of sp500, nasdaq, wti, core-cpi"),
        ({"series": [{"key": "csv:x"}]}, "needs exactly one of 'path' or 'url'"),
        ({"series": [{"key": "csv:x", "url": "ftp://x"}]}, "setting 'series[0].url' must be an http(s) URL"),
        ({"series": [{"key": "yahoo:SPY", "path": "x.csv"}]}, "'series[0].path' only applies to csv"),
        ({"series": [{"name": "x"}]}, "setting 'series[0].key' is required"),
        (
            {"series": [{"key": "fred:X", "frequency": "hourly"}]},
            "'series[0].frequency' must be one of H, B, D, W, M, Q, A, got 'hourly'",
        ),
        ({"watchlist": {"fred": ["X", "x"]}}, "series 'fred:X' is listed twice"),
        ({"schedul": {}}, "unknown setting 'schedul'"),
        ({"schedule": {"max_failed_fraction": 1.5}}, "setting 'schedule.max_failed_fraction' must be between 0 and 1"),
        ({"schedule": {"max_failed_fraction": -0.1}}, "setting 'schedule.max_failed_fraction' must be between 0 and 1"),
        ({"schedule": {"max_failed_fraction": float("nan")}}, "'schedule.max_failed_fraction' must be between 0 and 1"),
        ({"schedule": {"max_failed_fraction": "half"}}, "setting 'schedule.max_failed_fraction' must be a number"),
        ({"service": {"workers": -2}}, "setting 'service.workers' must be >= 0"),
        ({"sources": {"retries": 1000}}, "setting 'sources.retries' must be at most 10, got 1000"),
        ({"sources": {"http_timeout": 1e300}}, "setting 'sources.http_timeout' must be at most 600"),
        ({"model": {"hidden_size": 100000}}, "setting 'model.hidden_size' must be at most 1024"),
        (
            {"model": {"season_length": 12}},
            "setting 'model.season_length' is set by tickcast: the season comes from "
            "each series' frequency (H 24 and 168, M 12, Q 4, W 52, D 7, B and A none",
        ),
        (
            {"model": {"horizon": 5}},
            "setting 'model.horizon' is set by tickcast: the model's read-out covers each series' horizon",
        ),
        ({"model": {"window": 30}}, "unknown setting 'model.window' (known: batch_size, cell,"),
        (
            {"model": {"transform": "log_return"}},
            "setting 'model.transform' must be one of ('auto', 'log', 'linear'), got 'log_return'",
        ),
        ({"model": {"lookbacks": [0.0]}}, "setting 'model.lookbacks' must be a non-empty list of multiples"),
        ({"model": {"lookbacks": 2}}, "setting 'model.lookbacks' must be a list, got 2"),
        ({"model": {"warm_epochs": -1}}, "setting 'model.warm_epochs' must be an integer >= 0, got -1"),
        ({"model": {"val_fraction": 0.5}}, "setting 'model.val_fraction' must be in [0, 0.5), got 0.5"),
        ({"model": {"refit": 1}}, "setting 'model.refit' must be true or false, got 1"),
        (
            {"model": {"training": "global"}},
            "setting 'model.training' must be one of 'auto', 'series', 'group', got 'global'",
        ),
        ({"model": {"group_min_series": 0}}, "setting 'model.group_min_series' must be > 0, got 0"),
        ({"forecast": {"horizon": 401}}, "setting 'forecast.horizon' must be at most 400, got 401"),
        (
            {"series": [{"key": "csv:x", "path": "x.csv", "season_length": "12"}]},
            "setting 'series[0].season_length' must be an integer, got '12'",
        ),
        (
            {"series": [{"key": "csv:x", "path": "x.csv", "season_length": 401}]},
            "setting 'series[0].season_length' must be at most 400, got 401",
        ),
        (
            {"series": [{"key": "csv:x", "path": "x.csv", "name": "n" * 201}]},
            "setting 'series[0].name' must be at most 200 characters, got 201",
        ),
    ],
)
def test_bad_settings_fail_with_the_key_and_what_was_expected(raw, message):
    with pytest.raises(ConfigError) as info:
        settings_from_dict(raw, env={})
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("value", [0, 0.25, 1])
def test_max_failed_fraction_takes_the_whole_range(value):
    settings = settings_from_dict({"schedule": {"max_failed_fraction": value}}, env={})
    assert settings.schedule.max_failed_fraction == value
    assert settings_from_dict({}, env={}).schedule.max_failed_fraction == 0.5  # the documented default


def test_malformed_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\ncell = 'gru'\n")
    with pytest.raises(ConfigError, match=r"malformed config .*bad.toml"):
        load_settings(str(bad), env={})
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(str(tmp_path / "nope.toml"), env={})


def test_series_table_refines_a_watchlist_entry(tmp_path):
    settings = settings_from_dict(
        {"watchlist": {"yahoo": ["spy"]}, "series": [{"key": "yahoo:SPY", "field": "Close", "name": "S&P ETF"}]}, env={}
    )
    (spy,) = settings.series
    assert (spy.key, spy.field, spy.name, spy.frequency, spy.price) == ("yahoo:SPY", "Close", "S&P ETF", "B", True)


def test_csv_paths_are_relative_to_the_config_file(tmp_path):
    cfg = tmp_path / "sub" / "c.toml"
    cfg.parent.mkdir()
    cfg.write_text('[[series]]\nkey = "csv:rain"\npath = "rain.csv"\nprice = false\n')
    (rain,) = load_settings(str(cfg), env={}).series
    assert rain.path == str(tmp_path / "sub" / "rain.csv")


@pytest.mark.parametrize(
    "key,expected",
    [
        ("yahoo:brk-b", ("yahoo", "BRK-B")),
        ("yahoo:^GSPC", ("yahoo", "^GSPC")),
        ("yahoo:EURUSD=X", ("yahoo", "EURUSD=X")),
        ("fred:dgs10", ("fred", "DGS10")),
        ("SAMPLE:wti", ("sample", "wti")),
    ],
)
def test_valid_keys(key, expected):
    assert parse_key(key) == expected


@pytest.mark.parametrize(
    "key",
    [
        "SPY",
        "yahoo:",
        "yahoo:../etc/passwd",
        "yahoo:A B",
        "fred:X-Y",
        "csv:/abs",
        "yahoo:" + "A" * 21,
        "nasdaq:AAPL",
        "yahoo:'; --",
    ],
)
def test_malformed_keys(key):
    with pytest.raises(ConfigError, match="malformed series key"):
        parse_key(key)


def test_a_bad_cron_stops_every_command_naming_the_key(tmp_path, capsys):
    """Not only `serve`: every command loads the config first, and the schedule is part of it."""
    from tickcast.service.cli import build_parser, main

    cfg = tmp_path / "bad-cron.toml"
    cfg.write_text('[watchlist]\nsample = ["wti"]\n[schedule]\ncron = "30 17 * * mon-fro"\n')
    db = tmp_path / "data" / "tickcast.db"
    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    arguments = {
        "history": ["sample:wti"],
        "plot": ["sample:wti", "-o", str(tmp_path / "p.png")],
        "backup": [str(tmp_path / "copy.db")],
        "backfill": ["--origins", "1"],
    }
    for command in commands:
        code = main(["--config", str(cfg), "--db", f"sqlite:///{db}", command, *arguments.get(command, [])])
        err = capsys.readouterr().err
        assert code == 1, (command, err)
        assert err == (
            "tickcast: setting 'schedule.cron' is not a valid cron expression (Invalid weekday name "
            "\"fro\"), got '30 17 * * mon-fro'\n"
        ), command
    assert not db.parent.exists()  # nothing was created on the way


def test_a_new_kind_of_source_is_one_registry_entry(monkeypatch, tmp_path):
    """What a source module declares is all the keys, the watchlist, the [[series]] tables, the
    environment overrides and the ingest stage need: register a kind and it works everywhere."""
    from tickcast.service.sources import SOURCES, make_source

    from .support.source_kinds import ecb_kind

    built = []
    kind = ecb_kind(("date_format",), lambda sources, data_dir: built.append((sources, data_dir)) or "the source")
    monkeypatch.setitem(SOURCES, "ecb", kind)
    assert parse_key("ECB:usd") == ("ecb", "USD")
    with pytest.raises(ConfigError, match=r"malformed series key 'ecb:dollars': expected a three-letter currency code"):
        parse_key("ecb:dollars")
    settings = settings_from_dict(
        {"watchlist": {"ecb": ["usd"]}, "series": [{"key": "ecb:JPY", "date_format": "%Y", "price": True}]},
        env={"TICKCAST_ECB_URL": "http://127.0.0.1:9/ecb"},
    )
    usd, jpy = settings.series
    assert (usd.key, usd.name, usd.frequency, usd.price) == ("ecb:USD", "EUR/USD", "B", False)
    assert (jpy.key, jpy.date_format, jpy.price) == ("ecb:JPY", "%Y", True)
    assert settings.sources.fred_base_url == "http://127.0.0.1:9/ecb"  # its endpoint setting, from its env
    with pytest.raises(ConfigError, match=r"'series\[0\].path' only applies to csv: series, not ecb:USD"):
        settings_from_dict({"series": [{"key": "ecb:USD", "path": "x.csv"}]}, env={})
    assert make_source("ecb", settings.sources, settings.data_dir) == "the source"
    assert built == [(settings.sources, settings.data_dir)]
    monkeypatch.delitem(SOURCES, "ecb")
    with pytest.raises(ConfigError, match="unknown source 'ecb'"):
        parse_key("ecb:USD")


def test_the_sample_names_come_from_the_sample_module():
    from importlib import resources

    from tickcast.service.sources.sample import SAMPLES

    for name, sample in SAMPLES.items():
        assert resources.files("tickcast.service").joinpath("data", sample.file).is_file(), name
        assert parse_key(f"sample:{name}") == ("sample", name)
    (spec,) = settings_from_dict({"watchlist": {"sample": ["core-cpi"]}}, env={}).series
    assert (spec.name, spec.field, spec.frequency, spec.price) == ("US core CPI index (sample)", "CPILFESL", "M", False)
    with pytest.raises(ConfigError, match="expected one of " + ", ".join(SAMPLES)):
        parse_key("sample:gold")


def test_model_takes_every_forecaster_setting_and_its_own_policy():
    """ForecasterConfig owns the model's settings: [model] hands them on as they are (a list for a
    tuple); the service keeps only its policy (warm epochs are the model's, not the service's)."""
    from tickcast.models import ForecasterConfig

    model = settings_from_dict(
        {
            "model": {
                "ensemble": 2,
                "lookbacks": [1, 2.5],
                "loss": "mse",
                "warm_epochs": 5,
                "clip": 0,
                "transform": "log",
                "training": "group",
                "group_min_series": 4,
                "max_points": 900,
            }
        },
        env={},
    ).model
    assert model.forecaster == ForecasterConfig(
        ensemble=2, lookbacks=(1.0, 2.5), loss="mse", warm_epochs=5, clip=0.0, transform="log"
    )
    assert (model.training, model.group_min_series, model.max_points) == ("group", 4, 900)
    assert not hasattr(model, "warm_epochs")
    default = settings_from_dict({}, env={}).model
    assert default.forecaster == ForecasterConfig() and default.training == "auto"
    (spec,) = settings_from_dict({"series": [{"key": "csv:x", "path": "x.csv", "season_length": 24}]}, env={}).series
    assert spec.season_length == 24


def test_the_packaged_config_names_the_services_model_policy_and_leaves_the_knobs_to_the_model():
    """Every key of the service's [model] policy is documented in the packaged config; the model's
    own knobs are not re-declared there (models/README.md documents them), only pointed to."""
    import re
    from dataclasses import fields

    from tickcast.models import ForecasterConfig
    from tickcast.service.config import default_config_text
    from tickcast.service.settings import ModelSettings

    text = default_config_text()
    section = text[text.index("[model]") : text.index("[forecast]")]
    assigned = set(re.findall(r"^#?\s*(\w+)\s*=", section, flags=re.MULTILINE))
    policy = {f.name for f in fields(ModelSettings)} - {"forecaster"}
    assert policy <= assigned, policy - assigned
    assert assigned - policy == {"seed"}, assigned - policy
    assert "models/README.md" in section
    assert set(ForecasterConfig().to_dict()) >= assigned - policy


def test_the_executor_is_local_unless_a_cluster_is_chosen_with_its_address():
    settings = settings_from_dict({}, env={})
    assert (settings.execution.name, settings.execution.dask_address) == ("local", "")
    settings = settings_from_dict({"service": {"executor": "dask", "dask_address": "tcp://scheduler:8786"}}, env={})
    assert (settings.execution.name, settings.execution.dask_address) == ("dask", "tcp://scheduler:8786")
    # the environment chooses too (the compose file's dask profile sets both)
    settings = settings_from_dict({}, env={"TICKCAST_EXECUTOR": "dask", "TICKCAST_DASK_ADDRESS": "tls://[::1]:8786"})
    assert (settings.execution.name, settings.execution.dask_address) == ("dask", "tls://[::1]:8786")
    # an address alone does not switch training to a cluster
    assert settings_from_dict({"service": {"dask_address": "tcp://x:1"}}, env={}).execution.name == "local"


@pytest.mark.parametrize(
    "service,env,message",
    [
        ({"executor": "ray"}, {}, 'setting \'service.executor\' must be "local" (worker processes here) or "dask"'),
        ({"executor": 1}, {}, "setting 'service.executor' must be a string, got 1"),
        ({}, {"TICKCAST_EXECUTOR": "spark"}, 'TICKCAST_EXECUTOR must be "local"'),
        (
            {"executor": "dask"},
            {},
            'service.executor = "dask" needs the scheduler\'s address: set '
            'service.dask_address (or TICKCAST_DASK_ADDRESS), e.g. "tcp://scheduler:8786"',
        ),
        (
            {"executor": "dask", "dask_address": "scheduler:8786"},
            {},
            "setting 'service.dask_address' must be a Dask scheduler address such as tcp://scheduler:8786, got "
            "'scheduler:8786'",
        ),
        (
            {"executor": "dask", "dask_address": "tcp://scheduler:99999"},
            {},
            "setting 'service.dask_address' has no valid port (1-65535)",
        ),
        (
            {"executor": "dask", "dask_address": "tcp://a:1"},
            {"TICKCAST_DASK_ADDRESS": "http://a:1"},
            "TICKCAST_DASK_ADDRESS must be a Dask scheduler address",
        ),
        (
            {"executors": "dask"},
            {},
            "unknown setting 'service.executors' (known: busy_timeout_minutes, dask_address, "
            "data_dir, db_url, executor, workers)",
        ),
    ],
)
def test_bad_executor_settings_fail_in_one_line_naming_the_key(service, env, message):
    with pytest.raises(ConfigError) as info:
        settings_from_dict({"service": service}, env=env)
    assert message in str(info.value) and "\n" not in str(info.value)
