"""``csv:<name>`` series: a local file or an http(s) URL, with the date and value columns named in
the config (optionally a strptime date format)."""

from __future__ import annotations

import io

import pandas as pd

from ..config import SeriesSpec, SourceSettings
from ..errors import SourceError
from .frames import check_complete, to_observations
from .http import http_get


class CsvSource:
    def __init__(self, settings: SourceSettings):
        self.settings = settings

    def fetch(self, spec: SeriesSpec, since: pd.Timestamp | None) -> pd.DataFrame:
        what = spec.key
        if spec.url:
            text = http_get(spec.url, self.settings, what).text
        else:
            try:
                with open(spec.path, encoding="utf-8-sig") as fh:
                    text = fh.read()
            except FileNotFoundError:
                raise SourceError(f"{what}: file not found: {spec.path}") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise SourceError(f"{what}: cannot read {spec.path}: {exc}") from None
        return parse_csv(text, spec, since)


def parse_csv(text: str, spec: SeriesSpec, since: pd.Timestamp | None) -> pd.DataFrame:
    what = spec.key
    try:
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise SourceError(f"{what}: malformed CSV ({str(exc).splitlines()[0]})") from None
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in (spec.date_column, spec.value_column) if c not in table.columns]
    if missing:
        raise SourceError(f"{what}: column {missing[0]!r} not found (columns: {', '.join(table.columns) or 'none'})")
    twice = [c for c in (spec.date_column, spec.value_column) if list(table.columns).count(c) > 1]
    if twice:  # e.g. "date" and " date": the same name once stripped
        raise SourceError(f"{what}: column {twice[0]!r} appears more than once")
    check_complete(text, table, spec.date_column, spec.value_column, what)
    return to_observations(table[spec.date_column], table[spec.value_column], since, what, spec.date_format)
