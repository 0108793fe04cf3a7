"""Configuration: ``tickcast.toml`` plus ``TICKCAST_*`` environment variables, read here and only here.

Config is data: every section becomes a frozen dataclass. An unknown key, a wrong type or an
out-of-range value fails at start-up with the key's dotted name and what was expected.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConfigError
from .keys import SAMPLE_NAMES, parse_key

ENV_CONFIG = "TICKCAST_CONFIG"
ENV_DB_URL = "TICKCAST_DB_URL"
ENV_DATA_DIR = "TICKCAST_DATA_DIR"
ENV_YAHOO_URL = "TICKCAST_YAHOO_URL"  # test/mirror seam: send yfinance's HTTP to this base URL
ENV_FRED_URL = "TICKCAST_FRED_URL"
ENV_WORKERS = "TICKCAST_WORKERS"
ENV_DEBUG = "TICKCAST_DEBUG"  # show tracebacks for internal errors


ENV_KILL_AT = "TICKCAST_KILL_AT"  # fault injection for the reliability tests: "<point>:<n>"


def debug_enabled(env: Mapping[str, str] | None = None) -> bool:
    return (os.environ if env is None else env).get(ENV_DEBUG, "") not in ("", "0", "false", "no")


def kill_point(env: Mapping[str, str] | None = None) -> tuple[str, int] | None:
    """``TICKCAST_KILL_AT=store:3`` -> ("store", 3): the process kills itself (SIGKILL) the 3rd time
    it reaches the named point. Unset in normal use."""
    raw = (os.environ if env is None else env).get(ENV_KILL_AT, "")
    if not raw:
        return None
    name, _, count = raw.partition(":")
    try:
        return name, int(count or 1)
    except ValueError:
        raise ConfigError(f"{ENV_KILL_AT} must look like <point>:<n>, got {raw!r}") from None

FREQUENCIES = ("B", "D", "W", "M", "Q", "A")


@dataclass(frozen=True)
class SeriesSpec:
    """One configured series. ``frequency`` None means: inferred from the data."""

    key: str
    source: str
    symbol: str
    name: str | None = None
    field: str | None = None
    frequency: str | None = None
    price: bool | None = None  # non-positive values are rejected as bad data (None: source default)
    active: bool = True
    path: str | None = None  # csv: local file
    url: str | None = None  # csv: http(s) URL
    date_column: str | None = None
    value_column: str | None = None
    date_format: str | None = None


@dataclass(frozen=True)
class SourceSettings:
    history_start: str = ""  # first date fetched for a series with no stored rows; "" = all history
    overlap_days: int = 10  # re-fetch this many days before the last stored date to catch revisions
    http_timeout: float = 30.0
    retries: int = 3  # extra attempts after a rate limit, a 5xx or a timeout
    backoff_seconds: float = 2.0  # first retry delay; doubles per attempt
    yahoo_base_url: str = ""  # empty: Yahoo itself
    fred_base_url: str = "https://fred.stlouisfed.org/graph/fredgraph.csv"


@dataclass(frozen=True)
class ScheduleSettings:
    cron: str = "30 17 * * mon-fri"  # after the US close
    timezone: str = "America/New_York"
    misfire_grace_hours: float = 6.0
    max_age_hours: float = 96.0  # `tickcast health` fails when the last good run is older


@dataclass(frozen=True)
class ModelSettings:
    """Knobs passed to ``models.RNNForecaster`` (None: the model's default) and retraining policy."""

    cell: str | None = None  # "rnn" or "gru"; None: the model's default
    hidden_size: int | None = None
    window: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    optimizer: str | None = None
    clip: float | None = None
    clip_mode: str | None = None
    val_fraction: float | None = None
    patience: int | None = None
    transform: str | None = None  # auto, log_return, diff or level
    seed: int = 0
    warm_epochs: int = 3  # fine-tuning epochs when warm-starting from the previous fit
    full_retrain_days: int = 7  # retrain from scratch when the last cold fit is this old
    max_points: int = 2500  # train on the most recent points only


@dataclass(frozen=True)
class ForecastSettings:
    horizon: int = 5
    level: float = 0.8
    min_length: int = 24  # shorter series are skipped with a recorded reason (the model needs 16)


@dataclass(frozen=True)
class Settings:
    config_path: str  # where the settings came from ("<packaged default>" or a path)
    db_url: str
    data_dir: str
    workers: int
    series: tuple[SeriesSpec, ...]
    sources: SourceSettings = field(default_factory=SourceSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    forecast: ForecastSettings = field(default_factory=ForecastSettings)

    def series_by_key(self) -> dict[str, SeriesSpec]:
        return {s.key: s for s in self.series}


# --- parsing ------------------------------------------------------------------------------------

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _check_type(dotted: str, value: Any, kind: type) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise ConfigError(f"setting {dotted!r} must be {_TYPE_NAMES[kind]}, got {value!r}")
    return value


def _field_kind(cls: type, name: str) -> type:
    annotation = str({f.name: f.type for f in fields(cls)}[name])
    return {"bool": bool, "int": int, "float": float, "str": str}[annotation.split(" | ")[0]]


def _section(cls: type, table: Any, section: str) -> Any:
    """Build a frozen settings dataclass from one TOML table, rejecting unknown keys."""
    if not isinstance(table, dict):
        raise ConfigError(f"setting {section!r} must be a table ([{section}])")
    known = {f.name for f in fields(cls)}
    values = {}
    for key, value in table.items():
        dotted = f"{section}.{key}"
        if key not in known:
            raise ConfigError(f"unknown setting {dotted!r} (known: {', '.join(sorted(known))})")
        values[key] = _check_type(dotted, value, _field_kind(cls, key))
    return cls(**values)


def _file_name(dotted: str, value: str | None) -> str | None:
    """A path or URL: TOML can spell a NUL (\\u0000), which no file name or URL may hold."""
    if value is not None and "\x00" in value:
        raise ConfigError(f"setting {dotted!r} must not contain a NUL character, got {value!r}")
    return value


def _positive(dotted: str, value: float | int | None, allow_zero: bool = False, most: float | None = None) -> None:
    # TOML has nan and inf: neither is a timeout, an age or a count (nan even passed "< 0" checks)
    if value is not None and not (math.isfinite(value) and (value > 0 or (allow_zero and value == 0))):
        finite = "" if math.isfinite(value) else "a finite number "
        raise ConfigError(f"setting {dotted!r} must be {finite}{'>= 0' if allow_zero else '> 0'}, got {value!r}")
    # Upper bounds: a value past them is a typo (an hour-long timeout, a million retries), and it
    # would otherwise load fine and hang or exhaust memory much later.
    if value is not None and most is not None and value > most:
        raise ConfigError(f"setting {dotted!r} must be at most {most:g}, got {value!r}")


def _validate(sources: SourceSettings, schedule: ScheduleSettings, model: ModelSettings,
              forecast: ForecastSettings) -> None:
    from datetime import date

    try:
        if sources.history_start:
            date.fromisoformat(sources.history_start)
    except ValueError:
        raise ConfigError(f"setting 'sources.history_start' must be an ISO date YYYY-MM-DD, got {sources.history_start!r}") from None
    for name in ("http_timeout", "backoff_seconds"):
        _positive(f"sources.{name}", getattr(sources, name), most=600)
    _positive("sources.overlap_days", sources.overlap_days, allow_zero=True, most=3660)
    _positive("sources.retries", sources.retries, allow_zero=True, most=10)
    for name in ("yahoo_base_url", "fred_base_url"):
        url = getattr(sources, name)
        if url and not url.startswith(("http://", "https://")):
            raise ConfigError(f"setting 'sources.{name}' must be an http(s) URL, got {url!r}")
    try:
        ZoneInfo(schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"setting 'schedule.timezone' must be an IANA time zone such as America/New_York, got {schedule.timezone!r}") from None
    if len(schedule.cron.split()) != 5:
        raise ConfigError(f"setting 'schedule.cron' must have five fields (minute hour day month weekday), got {schedule.cron!r}")
    _positive("schedule.misfire_grace_hours", schedule.misfire_grace_hours, most=24 * 31)
    _positive("schedule.max_age_hours", schedule.max_age_hours, most=24 * 366)
    if model.cell not in (None, "rnn", "gru"):
        raise ConfigError(f"setting 'model.cell' must be \"rnn\" or \"gru\", got {model.cell!r}")
    for name, most in (("hidden_size", 1024), ("window", 1000), ("epochs", 10_000), ("batch_size", 65_536),
                       ("lr", None), ("patience", 10_000), ("warm_epochs", 1000), ("full_retrain_days", 3660),
                       ("max_points", 1_000_000)):
        _positive(f"model.{name}", getattr(model, name), most=most)
    _positive("model.clip", model.clip, allow_zero=True)  # 0 switches clipping off
    if model.val_fraction is not None and not 0 < model.val_fraction < 0.5:
        raise ConfigError(f"setting 'model.val_fraction' must be between 0 and 0.5, got {model.val_fraction!r}")
    from models import ForecasterConfig  # the model checks its own knobs; one source of truth

    knobs = {k: v for k, v in model.__dict__.items()
             if k not in ("warm_epochs", "full_retrain_days", "max_points") and v is not None}
    try:
        ForecasterConfig(**knobs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"invalid [model] setting: {exc}") from None
    _positive("forecast.horizon", forecast.horizon, most=366)
    _positive("forecast.min_length", forecast.min_length, most=1_000_000)
    if not 0 < forecast.level < 1:
        raise ConfigError(f"setting 'forecast.level' must be between 0 and 1 (e.g. 0.8), got {forecast.level!r}")


_SERIES_FIELDS = {f.name for f in fields(SeriesSpec)} - {"source", "symbol"}
_STORED_LENGTHS = {"name": 200, "field": 100}  # series.name and series.field (see service/schema.py)


def _series_entry(entry: Any, index: int, base_dir: Path | None) -> SeriesSpec:
    where = f"series[{index}]"
    if not isinstance(entry, dict):
        raise ConfigError(f"setting {where!r} must be a table ([[series]] with key = \"source:symbol\")")
    if "key" not in entry:
        raise ConfigError(f"setting '{where}.key' is required (e.g. key = \"yahoo:AAPL\")")
    values: dict[str, Any] = {}
    for key, value in entry.items():
        dotted = f"{where}.{key}"
        if key not in _SERIES_FIELDS:
            raise ConfigError(f"unknown setting {dotted!r} (known: {', '.join(sorted(_SERIES_FIELDS))})")
        values[key] = _check_type(dotted, value, bool if key in ("price", "active") else str)
        limit = _STORED_LENGTHS.get(key)
        if limit is not None and len(values[key]) > limit:  # the column's size (PostgreSQL enforces it)
            raise ConfigError(f"setting {dotted!r} must be at most {limit} characters, got {len(values[key])}")
    source, symbol = parse_key(values["key"])
    values["key"] = f"{source}:{symbol}"
    freq = values.get("frequency")
    if freq is not None and freq not in FREQUENCIES:
        raise ConfigError(f"setting '{where}.frequency' must be one of {', '.join(FREQUENCIES)}, got {freq!r}")
    if source == "csv":
        if bool(values.get("path")) == bool(values.get("url")):
            raise ConfigError(f"setting '{where}' ({values['key']}) needs exactly one of 'path' or 'url'")
        url = values.get("url")
        if url and not url.startswith(("http://", "https://")):
            raise ConfigError(f"setting '{where}.url' must be an http(s) URL, got {url!r}")
        for key in ("path", "url"):
            _file_name(f"{where}.{key}", values.get(key))
        if values.get("path") and base_dir is not None and not os.path.isabs(values["path"]):
            values["path"] = str(base_dir / values["path"])
        values.setdefault("date_column", "date")
        values.setdefault("value_column", "value")
    else:
        for key in ("path", "url", "date_column", "value_column", "date_format"):
            if key in values:
                raise ConfigError(f"setting '{where}.{key}' only applies to csv: series, not {values['key']}")
    return _with_source_defaults(SeriesSpec(source=source, symbol=symbol, **values))


_SAMPLE_DEFAULTS = {
    "sp500": dict(name="S&P 500 index (sample)", field="Adj Close", frequency="B", price=True),
    "nasdaq": dict(name="NASDAQ Composite (sample)", field="Adj Close", frequency="B", price=True),
    "wti": dict(name="WTI crude oil, USD/barrel (sample)", field="DCOILWTICO", frequency="B", price=True),
    "core-cpi": dict(name="US core CPI index (sample)", field="CPILFESL", frequency="M", price=False),
}


def _with_source_defaults(spec: SeriesSpec) -> SeriesSpec:
    """Fill what a source implies: Yahoo prices are adjusted closes on trading days, and so on."""
    explicit = {k: v for k, v in spec.__dict__.items() if v is not None}
    if spec.source == "yahoo":
        defaults = dict(field="Adj Close", frequency="B", price=True, name=spec.symbol)
    elif spec.source == "sample":
        defaults = dict(_SAMPLE_DEFAULTS[spec.symbol])
    elif spec.source == "fred":
        defaults = dict(field=spec.symbol, name=spec.symbol)
    else:
        defaults = dict(name=spec.symbol)
    merged = {"price": False, **defaults, **explicit}
    return SeriesSpec(**merged)


def _watchlist(table: Any) -> list[SeriesSpec]:
    if not isinstance(table, dict):
        raise ConfigError("setting 'watchlist' must be a table ([watchlist] with yahoo = [...], fred = [...], sample = [...])")
    specs = []
    for source, symbols in table.items():
        dotted = f"watchlist.{source}"
        if source not in ("yahoo", "fred", "sample"):
            raise ConfigError(f"unknown setting {dotted!r} (known: fred, sample, yahoo; csv series go in [[series]] tables)")
        if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
            raise ConfigError(f"setting {dotted!r} must be a list of strings, got {symbols!r}")
        for symbol in symbols:
            src, sym = parse_key(f"{source}:{symbol}")
            specs.append(_with_source_defaults(SeriesSpec(key=f"{src}:{sym}", source=src, symbol=sym)))
    return specs


def _merge_series(watch: list[SeriesSpec], detailed: list[tuple[SeriesSpec, dict]]) -> tuple[SeriesSpec, ...]:
    """A [[series]] table refines a watchlist entry with the same key; duplicates are an error."""
    merged: dict[str, SeriesSpec] = {}
    for spec in watch:
        if spec.key in merged:
            raise ConfigError(f"series {spec.key!r} is listed twice in [watchlist]")
        merged[spec.key] = spec
    seen = set()
    for spec, raw in detailed:
        if spec.key in seen:
            raise ConfigError(f"series {spec.key!r} has two [[series]] tables")
        seen.add(spec.key)
        if spec.key in merged:
            base = merged[spec.key].__dict__
            spec = SeriesSpec(**{**base, **{k: getattr(spec, k) for k in raw if k != "key"}})
        merged[spec.key] = spec
    return tuple(merged.values())


def default_config_text() -> str:
    return resources.files("service").joinpath("tickcast.toml").read_text(encoding="utf-8")


def load_settings(config_path: str | None = None, db_url: str | None = None,
                  env: Mapping[str, str] | None = None) -> Settings:
    """Read the config file (``config_path``, else ``$TICKCAST_CONFIG``, else the packaged default)
    and apply environment overrides. Raises ConfigError naming the offending key."""
    env = os.environ if env is None else env
    config_path = config_path or env.get(ENV_CONFIG) or None
    if config_path:
        path = Path(config_path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {config_path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read config file {config_path}: {exc}") from None
        base_dir: Path | None = path.resolve().parent
        origin = str(path)
    else:
        text, base_dir, origin = default_config_text(), None, "<packaged default>"
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"malformed config {origin}: {exc}") from None
    return settings_from_dict(raw, origin=origin, base_dir=base_dir, db_url=db_url, env=env)


def settings_from_dict(raw: dict, origin: str = "<dict>", base_dir: Path | None = None,
                       db_url: str | None = None, env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    known = {"service", "sources", "schedule", "model", "forecast", "watchlist", "series"}
    for key in raw:
        if key not in known:
            raise ConfigError(f"unknown setting {key!r} in {origin} (known sections: {', '.join(sorted(known))})")

    service = raw.get("service", {})
    if not isinstance(service, dict):
        raise ConfigError("setting 'service' must be a table ([service])")
    for key in service:
        if key not in ("data_dir", "db_url", "workers"):
            raise ConfigError(f"unknown setting {'service.' + key!r} (known: data_dir, db_url, workers)")
    # The file's values are checked even where the environment or --db overrides them.
    configured_dir = _file_name("service.data_dir", _check_type("service.data_dir", service.get("data_dir", "."), str))
    configured_url = _file_name("service.db_url", _check_type("service.db_url", service.get("db_url", ""), str))
    configured_workers = _check_type("service.workers", service.get("workers", 0), int)
    if configured_workers < 0:
        raise ConfigError(f"setting 'service.workers' must be >= 0 (0: one per core), got {configured_workers}")
    data_dir = env.get(ENV_DATA_DIR) or configured_dir
    if base_dir is not None and not os.path.isabs(data_dir) and ENV_DATA_DIR not in env and "data_dir" in service:
        data_dir = str(base_dir / data_dir)
    data_dir = os.path.abspath(data_dir)
    url = db_url or env.get(ENV_DB_URL) or configured_url
    if not url:
        url = "sqlite:///" + os.path.join(data_dir, "tickcast.db")
    workers_raw = env.get(ENV_WORKERS)
    if workers_raw is not None:
        try:
            workers = int(workers_raw)
        except ValueError:
            raise ConfigError(f"{ENV_WORKERS} must be an integer, got {workers_raw!r}") from None
    else:
        workers = configured_workers
    if workers < 0:
        raise ConfigError(f"setting 'service.workers' must be >= 0 (0: one per core), got {workers}")
    workers = workers or (os.cpu_count() or 1)

    sources = _section(SourceSettings, raw.get("sources", {}), "sources")
    overrides = {}
    if env.get(ENV_YAHOO_URL):
        overrides["yahoo_base_url"] = env[ENV_YAHOO_URL]
    if env.get(ENV_FRED_URL):
        overrides["fred_base_url"] = env[ENV_FRED_URL]
    if overrides:
        sources = SourceSettings(**{**sources.__dict__, **overrides})
    schedule = _section(ScheduleSettings, raw.get("schedule", {}), "schedule")
    model = _section(ModelSettings, raw.get("model", {}), "model")
    forecast = _section(ForecastSettings, raw.get("forecast", {}), "forecast")
    _validate(sources, schedule, model, forecast)

    watch = _watchlist(raw.get("watchlist", {}))
    detailed_raw = raw.get("series", [])
    if not isinstance(detailed_raw, list):
        raise ConfigError("setting 'series' must be an array of tables ([[series]])")
    detailed = [(_series_entry(e, i, base_dir), e) for i, e in enumerate(detailed_raw)]
    series = _merge_series(watch, detailed)
    return Settings(config_path=origin, db_url=url, data_dir=data_dir, workers=workers, series=series,
                    sources=sources, schedule=schedule, model=model, forecast=forecast)


__all__ = ["Settings", "SeriesSpec", "SourceSettings", "ScheduleSettings", "ModelSettings",
           "ForecastSettings", "load_settings", "settings_from_dict", "default_config_text",
           "FREQUENCIES", "SAMPLE_NAMES"]
