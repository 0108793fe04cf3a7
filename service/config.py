"""Configuration: ``tickcast.toml`` plus ``TICKCAST_*`` environment variables, read here and only here.

Config is data: every section becomes a frozen dataclass. An unknown key, a wrong type or an
out-of-range value fails at start-up with the key's dotted name and what was expected.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tickcast.models.config import LIMITS, MEMBERS, ForecasterConfig

from .checks import check_type, file_name, positive, unknown_setting
from .clock import utcnow
from .cron import cron_trigger
from .errors import ConfigError, first_line
from .executors import EXECUTORS
from .settings import (
    DEFAULT_BUSY_TIMEOUT_MINUTES,
    ExecutorSettings,
    ForecastSettings,
    ModelSettings,
    ScheduleSettings,
    Settings,
    SourceSettings,
)
from .sources import SOURCES
from .status import Training
from .watchlist import parse_series

ENV_CONFIG = "TICKCAST_CONFIG"
ENV_DB_URL = "TICKCAST_DB_URL"
ENV_DATA_DIR = "TICKCAST_DATA_DIR"
ENV_WORKERS = "TICKCAST_WORKERS"
ENV_EXECUTOR = "TICKCAST_EXECUTOR"
ENV_DASK_ADDRESS = "TICKCAST_DASK_ADDRESS"
ENV_DEBUG = "TICKCAST_DEBUG"  # show tracebacks for internal errors
ENV_KILL_AT = "TICKCAST_KILL_AT"  # fault injection for the reliability tests: "<point>:<n>"


def source_url_env(source: str) -> str:
    """``TICKCAST_YAHOO_URL``, ``TICKCAST_FRED_URL``: send a source's HTTP to a mirror or a test server."""
    return f"TICKCAST_{source.upper()}_URL"


def debug_enabled(env: Mapping[str, str] | None = None) -> bool:
    return (os.environ if env is None else env).get(ENV_DEBUG, "") not in ("", "0", "false", "no")


def kill_point(points: Sequence[str], env: Mapping[str, str] | None = None) -> tuple[str, int] | None:
    """``TICKCAST_KILL_AT=store-fit:3`` -> ("store-fit", 3): the process kills itself (SIGKILL) the
    3rd time it reaches that point, one of ``points``. Unset in normal use."""
    raw = (os.environ if env is None else env).get(ENV_KILL_AT, "")
    if not raw:
        return None
    name, _, count = raw.partition(":")
    if name not in points:
        raise ConfigError(f"{ENV_KILL_AT} names no crash point: {name!r} (known: {', '.join(points)})")
    try:
        return name, int(count or 1)
    except ValueError:
        raise ConfigError(f"{ENV_KILL_AT} must look like <point>:<n>, got {raw!r}") from None


TRAINING_CHOICES = tuple(t.value for t in Training)

# Set by the service, not in [model]: what each means, for the error message.
SERVICE_SET_KNOBS = {
    "season_length": "the season comes from each series' frequency (H 24 and 168, M 12, Q 4, W 52, D 7, B and A "
    "none, unknown: detected); set season_length in a [[series]] table to override it",
    "horizon": "the model's read-out covers each series' horizon (or more, for seasonal data): set "
    "forecast.horizon, or horizon in a [[series]] table",
}


# --- parsing ------------------------------------------------------------------------------------


_KINDS = {"bool": bool, "int": int, "float": float, "str": str}


def _field_kind(cls: type, name: str) -> type:
    annotation = str({f.name: f.type for f in fields(cls)}[name])
    return _KINDS[annotation.split(" | ")[0]]


def _checked(cls: type, dotted: str, value: Any) -> Any:
    """A TOML value of the type the settings class declares; a list for a tuple (``tuple[float, ...]``)."""
    name = dotted.rpartition(".")[2]
    annotation = str({f.name: f.type for f in fields(cls)}[name])
    if annotation.startswith("tuple["):
        kind = _KINDS[annotation[len("tuple[") :].split(",")[0]]
        if not isinstance(value, list) or not value:
            raise ConfigError(f"setting {dotted!r} must be a non-empty list, got {value!r}")
        return tuple(check_type(dotted, v, kind) for v in value)
    return check_type(dotted, value, _field_kind(cls, name))


def _section(cls: type, table: Any, section: str) -> Any:
    """Build a frozen settings dataclass from one TOML table, rejecting unknown keys."""
    if not isinstance(table, dict):
        raise ConfigError(f"setting {section!r} must be a table ([{section}])")
    known = {f.name for f in fields(cls)}
    values = {}
    for key, value in table.items():
        dotted = f"{section}.{key}"
        if key not in known:
            raise unknown_setting(dotted, known)
        values[key] = _checked(cls, dotted, value)
    return cls(**values)


def model_section(table: Any) -> ModelSettings:
    """``[model]``: the service's policy keys, and any ForecasterConfig field, type-checked against
    its default and then checked by ForecasterConfig itself (one set of rules: the model's)."""
    if not isinstance(table, dict):
        raise ConfigError("setting 'model' must be a table ([model])")
    defaults = ForecasterConfig().to_dict()
    policy_names = {f.name for f in fields(ModelSettings)} - {"forecaster"}
    knobs, policy = {}, {}
    for key, value in table.items():
        dotted = f"model.{key}"
        if key in SERVICE_SET_KNOBS:
            raise ConfigError(f"setting {dotted!r} is set by tickcast: {SERVICE_SET_KNOBS[key]}")
        if key in policy_names:
            policy[key] = _checked(ModelSettings, dotted, value)
        elif key in defaults:
            knobs[key] = _forecaster_value(dotted, value, defaults[key])
        else:
            known = sorted(policy_names | (set(defaults) - set(SERVICE_SET_KNOBS)))
            raise unknown_setting(dotted, known, "; see models/README.md")
    try:
        forecaster = ForecasterConfig(**knobs)
    except (ValueError, TypeError) as exc:
        message = first_line(exc, "invalid")
        key, _, rest = message.partition(" ")
        if key in knobs:
            raise ConfigError(f"setting 'model.{key}' {rest}, got {knobs[key]!r}") from None
        raise ConfigError(f"invalid [model] setting ({', '.join(f'model.{k}' for k in knobs)}): {message}") from None
    return ModelSettings(forecaster=forecaster, **policy)


def _forecaster_value(dotted: str, value: Any, default: Any) -> Any:
    """A TOML value of the type of the knob's default (a list for a tuple); ranges are the model's."""
    if isinstance(default, (list, tuple)):
        if not isinstance(value, list):
            raise ConfigError(f"setting {dotted!r} must be a list, got {value!r}")
        return [check_type(dotted, v, float) for v in value]
    if default is None:
        return value
    return check_type(dotted, value, type(default))


def _validate(
    sources: SourceSettings, schedule: ScheduleSettings, model: ModelSettings, forecast: ForecastSettings
) -> None:

    try:
        if sources.history_start:
            date.fromisoformat(sources.history_start)
    except ValueError:
        raise ConfigError(
            f"setting 'sources.history_start' must be an ISO date YYYY-MM-DD, got {sources.history_start!r}"
        ) from None
    for name in ("http_timeout", "backoff_seconds"):
        positive(f"sources.{name}", getattr(sources, name), most=600)
    positive("sources.overlap_days", sources.overlap_days, allow_zero=True, most=3660)
    positive("sources.retries", sources.retries, allow_zero=True, most=10)
    for name in (kind.base_url_setting for kind in SOURCES.values() if kind.base_url_setting):
        url = getattr(sources, name)
        if url and not url.startswith(("http://", "https://")):
            raise ConfigError(f"setting 'sources.{name}' must be an http(s) URL, got {url!r}")
    try:
        ZoneInfo(schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"setting 'schedule.timezone' must be an IANA time zone such as America/New_York, got {schedule.timezone!r}"
        ) from None
    if len(schedule.cron.split()) not in (5, 6):
        raise ConfigError(
            "setting 'schedule.cron' must have five fields (minute hour day month weekday), "
            f"or six with the second first, got {schedule.cron!r}"
        )
    _check_cron(schedule)
    positive("schedule.misfire_grace_hours", schedule.misfire_grace_hours, most=24 * 31)
    positive("schedule.max_age_hours", schedule.max_age_hours, most=24 * 366)
    if not 0 <= schedule.max_failed_fraction <= 1:  # also false for nan
        raise ConfigError(
            "setting 'schedule.max_failed_fraction' must be between 0 and 1 (e.g. 0.5), "
            f"got {schedule.max_failed_fraction!r}"
        )
    positive("schedule.start_retries", schedule.start_retries, allow_zero=True, most=100)
    positive("schedule.retry_minutes", schedule.retry_minutes, most=24 * 60)
    positive("model.full_retrain_days", model.full_retrain_days, most=3660)
    positive("model.max_points", model.max_points, most=1_000_000)
    if model.training not in TRAINING_CHOICES:
        raise ConfigError(
            f"setting 'model.training' must be one of {', '.join(map(repr, TRAINING_CHOICES))}, got {model.training!r}"
        )
    positive("model.group_min_series", model.group_min_series, most=100_000)
    positive("model.group_max_median_length", model.group_max_median_length, most=10_000_000)
    # The model's read-out covers forecast.horizon steps at least, so the model's bound is this one.
    positive("forecast.horizon", forecast.horizon, most=LIMITS["horizon"])  # None: each frequency's
    positive("forecast.min_length", forecast.min_length, most=1_000_000)
    positive("forecast.interval_adapt_rate", forecast.interval_adapt_rate, allow_zero=True, most=1)
    if not all(0 < lv < 1 for lv in forecast.levels) or len(set(forecast.levels)) != len(forecast.levels):
        raise ConfigError(
            f"setting 'forecast.levels' must be distinct coverages between 0 and 1 (e.g. [0.8, 0.95]), "
            f"got {list(forecast.levels)!r}"
        )
    unknown = [m for m in model.members if m not in MEMBERS]
    if unknown or len(set(model.members)) != len(model.members):
        raise ConfigError(
            f"setting 'model.members' must be distinct names from {', '.join(MEMBERS)}, got {list(model.members)!r}"
        )


def _one_level(table: Any) -> Any:
    """``forecast.level = 0.8`` (one interval, as before levels existed) is ``levels = [0.8]``."""
    if not isinstance(table, dict) or "level" not in table:
        return table
    if "levels" in table:
        raise ConfigError("set either 'forecast.levels' (a list) or 'forecast.level' (one level), not both")
    level = check_type("forecast.level", table["level"], float)
    if not 0 < level < 1:
        raise ConfigError(f"setting 'forecast.level' must be between 0 and 1, got {level!r}")
    return {**{k: v for k, v in table.items() if k != "level"}, "levels": [level]}


def _check_cron(schedule: ScheduleSettings) -> None:
    """The scheduler's own parser, so that what loads here is what `tickcast serve` runs."""
    try:
        trigger = cron_trigger(schedule.cron, schedule.timezone)
    except ValueError as exc:
        reason = first_line(exc, "invalid")
        raise ConfigError(
            f"setting 'schedule.cron' is not a valid cron expression ({reason}), got {schedule.cron!r}"
        ) from None
    if trigger.get_next_fire_time(None, utcnow()) is None:  # e.g. February 31st
        raise ConfigError(f"setting 'schedule.cron' never fires, got {schedule.cron!r}")


def default_config_text() -> str:
    return resources.files("tickcast.service").joinpath("tickcast.toml").read_text(encoding="utf-8")


def load_settings(
    config_path: str | None = None, db_url: str | None = None, env: Mapping[str, str] | None = None
) -> Settings:
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


def settings_from_dict(
    raw: dict,
    origin: str = "<dict>",
    base_dir: Path | None = None,
    db_url: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    env = os.environ if env is None else env
    known = {"service", "sources", "schedule", "model", "forecast", "watchlist", "series"}
    for key in raw:
        if key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown setting {key!r} in {origin} (known sections: {', '.join(sorted(known))}){hint}")

    service = raw.get("service", {})
    if not isinstance(service, dict):
        raise ConfigError("setting 'service' must be a table ([service])")
    for key in service:
        if key not in _SERVICE_KEYS:
            raise unknown_setting(f"service.{key}", _SERVICE_KEYS)
    # The file's values are checked even where the environment or --db overrides them.
    configured_dir = file_name("service.data_dir", check_type("service.data_dir", service.get("data_dir", "."), str))
    configured_url = file_name("service.db_url", check_type("service.db_url", service.get("db_url", ""), str))
    configured_workers = check_type("service.workers", service.get("workers", 0), int)
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
    executor, dask_address = _executor(service, env)

    sources = _section(SourceSettings, raw.get("sources", {}), "sources")
    overrides = {
        kind.base_url_setting: env[source_url_env(kind.name)]
        for kind in SOURCES.values()
        if kind.base_url_setting and env.get(source_url_env(kind.name))
    }
    if overrides:
        sources = SourceSettings(**{**sources.__dict__, **overrides})
    schedule = _section(ScheduleSettings, raw.get("schedule", {}), "schedule")
    model = model_section(raw.get("model", {}))
    forecast = _section(ForecastSettings, _one_level(raw.get("forecast", {})), "forecast")
    _validate(sources, schedule, model, forecast)

    series = parse_series(raw.get("watchlist", {}), raw.get("series", []), base_dir)
    return Settings(
        config_path=origin,
        db_url=url,
        data_dir=data_dir,
        series=series,
        sources=sources,
        schedule=schedule,
        model=model,
        forecast=forecast,
        execution=ExecutorSettings(executor, workers, dask_address),
        busy_timeout_minutes=_busy_timeout_minutes(service),
    )


_SERVICE_KEYS = ("busy_timeout_minutes", "dask_address", "data_dir", "db_url", "executor", "workers")


def _busy_timeout_minutes(service: dict) -> float:
    minutes = check_type(
        "service.busy_timeout_minutes", service.get("busy_timeout_minutes", DEFAULT_BUSY_TIMEOUT_MINUTES), float
    )
    positive("service.busy_timeout_minutes", minutes, most=24 * 60)
    return minutes


def _executor(service: dict, env: Mapping[str, str]) -> tuple[str, str]:
    """``service.executor`` and ``service.dask_address`` (TICKCAST_EXECUTOR, TICKCAST_DASK_ADDRESS
    override them). The address is checked only where it is used, by the executor named."""
    configured = check_type("service.executor", service.get("executor", "local"), str)
    address = file_name(
        "service.dask_address", check_type("service.dask_address", service.get("dask_address", ""), str)
    )
    executor = env.get(ENV_EXECUTOR) or configured
    name = ENV_EXECUTOR if env.get(ENV_EXECUTOR) else "setting 'service.executor'"
    kind = EXECUTORS.get(executor)
    if kind is None:
        choices = " or ".join(f'"{k.name}" ({k.description})' for k in EXECUTORS.values())
        raise ConfigError(f"{name} must be {choices}, got {executor!r}")
    address = env.get(ENV_DASK_ADDRESS) or address
    kind.check(address, ENV_DASK_ADDRESS if env.get(ENV_DASK_ADDRESS) else "setting 'service.dask_address'")
    return executor, address


__all__ = ["load_settings", "settings_from_dict", "default_config_text", "model_section"]
