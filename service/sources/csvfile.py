"""``csv:<name>`` series: a local file or an http(s) URL, with the date and value columns named in
the config (optionally a strptime date format)."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..checks import file_name
from ..errors import ConfigError, SourceError, cut, quoted
from ..settings import SeriesSpec, SourceSettings
from .kind import SourceKind

if TYPE_CHECKING:
    import pandas as pd


class CsvSource:
    def __init__(self, settings: SourceSettings):
        self.settings = settings

    def fetch(self, spec: SeriesSpec, since: pd.Timestamp | None) -> pd.DataFrame:
        from .http import http_get

        what = spec.key
        if spec.url:
            text = http_get(spec.url, self.settings, what)
        else:
            assert spec.path is not None  # the config requires a path or a url
            try:
                with open(spec.path, encoding="utf-8-sig") as fh:
                    text = fh.read()
            except FileNotFoundError:
                raise SourceError(f"{what}: file not found: {spec.path}") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise SourceError(f"{what}: cannot read {spec.path}: {exc}") from None
        return parse_csv(text, spec, since)


def parse_csv(text: str, spec: SeriesSpec, since: pd.Timestamp | None) -> pd.DataFrame:
    import pandas as pd

    from .frames import check_complete, to_observations

    what = spec.key
    date_column, value_column = spec.date_column or "date", spec.value_column or "value"
    try:
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise SourceError(f"{what}: {parser_failure(exc)}") from None
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in (date_column, value_column) if c not in table.columns]
    if missing:
        raise SourceError(f"{what}: column {missing[0]!r} not found (columns: {column_list(table.columns)})")
    twice = [c for c in (date_column, value_column) if list(table.columns).count(c) > 1]
    if twice:  # e.g. "date" and " date": the same name once stripped
        raise SourceError(f"{what}: column {quoted(twice[0])} appears more than once")
    check_complete(text, table, date_column, value_column, what)
    return to_observations(table[date_column], table[value_column], since, what, spec.date_format)


def column_list(columns) -> str:
    """The columns a file has, for an error. The first line of a file that is not the CSV expected
    (``path = "/etc/shadow"``) is whatever that file holds, secrets included: a name longer than any
    column's is not quoted, only its length, and the list is cut short. (pandas reads no file without
    a column: an empty one is a parser failure.)"""
    names = [str(c) if len(str(c)) <= 30 else f"<{len(str(c))} characters>" for c in columns]
    return cut(", ".join(names), 80)


def parser_failure(exc: Exception) -> str:
    """Why pandas could not read a CSV, in a few words: its C parser reports running out of memory as
    a tokenizing error, which is not a malformed file."""
    reason = (str(exc).splitlines() or [""])[0]
    if "out of memory" in reason.lower():
        return "out of memory while parsing the CSV (a file too large for the memory available); nothing stored"
    return f"malformed CSV ({cut(reason)})"


def complete_entry(values: dict[str, Any], where: str, base_dir: Path | None) -> None:
    """A csv: [[series]] table names exactly one file or http(s) URL; a relative path is relative to
    the config file."""
    if bool(values.get("path")) == bool(values.get("url")):
        raise ConfigError(f"setting '{where}' ({values['key']}) needs exactly one of 'path' or 'url'")
    url = values.get("url")
    if url and not url.startswith(("http://", "https://")):
        raise ConfigError(f"setting '{where}.url' must be an http(s) URL, got {url!r}")
    for key in ("path", "url"):
        file_name(f"{where}.{key}", values.get(key))
    if values.get("path") and base_dir is not None and not os.path.isabs(values["path"]):
        values["path"] = str(base_dir / values["path"])


SOURCE = SourceKind(
    name="csv",
    symbol=re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}"),
    expected="a name of letters, digits and _ . -",
    defaults=lambda symbol: dict(name=symbol, date_column="date", value_column="value"),
    series_settings=("path", "url", "date_column", "value_column", "date_format"),
    complete=complete_entry,
    in_watchlist=False,  # a file or URL to name: csv series go in [[series]] tables
    build=lambda sources, data_dir: CsvSource(sources),
)
