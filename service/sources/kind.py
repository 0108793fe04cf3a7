"""What every source module declares: one :class:`SourceKind` (see ``sources/__init__.py``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ..settings import SeriesSpec, SourceSettings

if TYPE_CHECKING:
    import pandas as pd


class Source(Protocol):
    def fetch(self, spec: SeriesSpec, since: pd.Timestamp | None) -> pd.DataFrame:
        """Observations on or after ``since`` (all history when None), oldest first."""


def as_given(symbol: str) -> str:
    return symbol


def named_after_symbol(symbol: str) -> dict[str, Any]:
    return {"name": symbol}


def no_calendar(symbol: str) -> str | None:
    return None


@dataclass(frozen=True)
class SourceKind:
    """One kind of source, as the rest of tickcast sees it."""

    name: str  # the key's prefix: "yahoo" in yahoo:SPY
    symbol: re.Pattern[str]  # what a symbol may be (after ``normalise``): checked before a URL or path sees it
    expected: str  # the symbol described for an error message: "... expected <this>"
    # ([sources] settings, the data directory) -> the source; imports what it needs (yfinance takes a second)
    build: Callable[[SourceSettings, str], Source]
    normalise: Callable[[str], str] = as_given  # str.upper where the service ignores case: one series, one key
    # symbol -> what a series of this kind is unless configured otherwise: name, field, frequency, price
    defaults: Callable[[str], dict[str, Any]] = named_after_symbol
    series_settings: tuple[str, ...] = ()  # [[series]] keys only this kind takes (csv: path, url, ...)
    # Checks and completes one [[series]] table of this kind (values by setting name, changed in
    # place), raising ConfigError that names ``where``; ``base_dir`` is the config file's directory.
    complete: Callable[[dict[str, Any], str, Path | None], None] | None = None
    in_watchlist: bool = True  # may be listed by symbol alone in [watchlist]
    base_url_setting: str | None = None  # its endpoint's [sources] setting; TICKCAST_<NAME>_URL overrides it
    # symbol -> the trading calendar (see service/calendars.py) of its daily series unless the config
    # names one, or a fetch reports one (Yahoo: the ticker's exchange); None: weekdays
    calendar: Callable[[str], str | None] = no_calendar
