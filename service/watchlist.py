"""The watchlist: which series tickcast follows, from ``[watchlist]`` lists and ``[[series]]`` tables,
each completed with what its source implies (Yahoo prices are adjusted closes on trading days...)."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .checks import check_type, file_name
from .errors import ConfigError
from .keys import parse_key

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


_SERIES_FIELDS = {f.name for f in fields(SeriesSpec)} - {"source", "symbol"}
_STORED_LENGTHS = {"name": 200, "field": 100}  # series.name and series.field (see service/schema.py)


def series_entry(entry: Any, index: int, base_dir: Path | None) -> SeriesSpec:
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
        values[key] = check_type(dotted, value, bool if key in ("price", "active") else str)
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
            file_name(f"{where}.{key}", values.get(key))
        if values.get("path") and base_dir is not None and not os.path.isabs(values["path"]):
            values["path"] = str(base_dir / values["path"])
        values.setdefault("date_column", "date")
        values.setdefault("value_column", "value")
    else:
        for key in ("path", "url", "date_column", "value_column", "date_format"):
            if key in values:
                raise ConfigError(f"setting '{where}.{key}' only applies to csv: series, not {values['key']}")
    return with_source_defaults(SeriesSpec(source=source, symbol=symbol, **values))


_SAMPLE_DEFAULTS = {
    "sp500": dict(name="S&P 500 index (sample)", field="Adj Close", frequency="B", price=True),
    "nasdaq": dict(name="NASDAQ Composite (sample)", field="Adj Close", frequency="B", price=True),
    "wti": dict(name="WTI crude oil, USD/barrel (sample)", field="DCOILWTICO", frequency="B", price=True),
    "core-cpi": dict(name="US core CPI index (sample)", field="CPILFESL", frequency="M", price=False),
}


def with_source_defaults(spec: SeriesSpec) -> SeriesSpec:
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


def watchlist_series(table: Any) -> list[SeriesSpec]:
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
