"""The watchlist: which series tickcast follows, from ``[watchlist]`` lists and ``[[series]]`` tables,
each completed with what its source implies (Yahoo prices are adjusted closes on trading days...)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from tickcast.models.config import LIMITS

from .calendars import check_calendar_name
from .checks import check_type, positive, unknown_setting
from .errors import ConfigError
from .frequencies import CODES
from .keys import parse_key
from .settings import SeriesSpec
from .sources import SOURCES

_SERIES_FIELDS = {f.name for f in fields(SeriesSpec)} - {"source", "symbol"}
_SERIES_TYPES = {"price": bool, "active": bool, "season_length": int, "horizon": int}
_STORED_LENGTHS = {"name": 200, "field": 100}  # series.name and series.field (see service/schema.py)


def series_entry(entry: Any, index: int, base_dir: Path | None) -> SeriesSpec:
    where = f"series[{index}]"
    if not isinstance(entry, dict):
        raise ConfigError(f'setting {where!r} must be a table ([[series]] with key = "source:symbol")')
    if "key" not in entry:
        raise ConfigError(f"setting '{where}.key' is required (e.g. key = \"yahoo:AAPL\")")
    values: dict[str, Any] = {}
    for key, value in entry.items():
        dotted = f"{where}.{key}"
        if key not in _SERIES_FIELDS:
            raise unknown_setting(dotted, _SERIES_FIELDS)
        values[key] = check_type(dotted, value, _SERIES_TYPES.get(key, str))
        limit = _STORED_LENGTHS.get(key)
        if limit is not None and len(values[key]) > limit:  # the column's size (PostgreSQL enforces it)
            raise ConfigError(f"setting {dotted!r} must be at most {limit} characters, got {len(values[key])}")
    source, symbol = parse_key(values["key"])
    kind = SOURCES[source]
    values["key"] = f"{source}:{symbol}"
    freq = values.get("frequency")
    if freq is not None and freq not in CODES:
        raise ConfigError(f"setting '{where}.frequency' must be one of {', '.join(CODES)}, got {freq!r}")
    if values.get("season_length") is not None:
        positive(f"{where}.season_length", values["season_length"], allow_zero=True, most=LIMITS["season_length"])
    if values.get("horizon") is not None:
        positive(f"{where}.horizon", values["horizon"], most=LIMITS["horizon"])
    if values.get("calendar") is not None:
        check_calendar_name(f"{where}.calendar", values["calendar"])
    for key in values:  # a setting of another kind (csv's path on a Yahoo series) is a mistake
        owners = [k.name for k in SOURCES.values() if key in k.series_settings]
        if owners and key not in kind.series_settings:
            owned = " or ".join(f"{name}:" for name in owners)
            raise ConfigError(f"setting '{where}.{key}' only applies to {owned} series, not {values['key']}")
    if kind.complete is not None:
        kind.complete(values, where, base_dir)
    return with_source_defaults(SeriesSpec(source=source, symbol=symbol, **values))


def with_source_defaults(spec: SeriesSpec) -> SeriesSpec:
    """Fill in what its source implies (Yahoo prices are adjusted closes on trading days...); what
    the config says wins."""
    explicit = {k: v for k, v in spec.__dict__.items() if v is not None}
    return SeriesSpec(**{"price": False, **SOURCES[spec.source].defaults(spec.symbol), **explicit})


def watchlist_series(table: Any) -> list[SeriesSpec]:
    if not isinstance(table, dict):
        example = ", ".join(f"{k.name} = [...]" for k in SOURCES.values() if k.in_watchlist)
        raise ConfigError(f"setting 'watchlist' must be a table ([watchlist] with {example})")
    specs = []
    for source, symbols in table.items():
        dotted = f"watchlist.{source}"
        kind = SOURCES.get(source)
        if kind is None or not kind.in_watchlist:
            listed = sorted(k.name for k in SOURCES.values() if k.in_watchlist)
            tables = " and ".join(k.name for k in SOURCES.values() if not k.in_watchlist)
            raise ConfigError(
                f"unknown setting {dotted!r} (known: {', '.join(listed)}; {tables} series go in [[series]] tables)"
            )
        if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
            raise ConfigError(f"setting {dotted!r} must be a list of strings, got {symbols!r}")
        for symbol in symbols:
            src, sym = parse_key(f"{source}:{symbol}")
            specs.append(with_source_defaults(SeriesSpec(key=f"{src}:{sym}", source=src, symbol=sym)))
    return specs


def merge_series(watch: list[SeriesSpec], detailed: list[tuple[SeriesSpec, dict]]) -> tuple[SeriesSpec, ...]:
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


def parse_series(watchlist: Any, tables: Any, base_dir: Path | None) -> tuple[SeriesSpec, ...]:
    """Every configured series, in config order: the watchlist, refined or extended by the tables."""
    if not isinstance(tables, list):
        raise ConfigError("setting 'series' must be an array of tables ([[series]])")
    detailed = [(series_entry(entry, i, base_dir), entry) for i, entry in enumerate(tables)]
    return merge_series(watchlist_series(watchlist), detailed)
