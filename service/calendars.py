"""Trading calendars: which days a daily series is observed on, so that forecast target dates skip
weekends *and* holidays (the S&P 500 forecast made on 2018-12-31 targets 2019-01-02, not New Year's
Day).

A calendar is named by its ``exchange_calendars`` code (``XNYS``, ``XLON``, ``XTKS`` ..., aliases
such as ``NYSE`` included) or by ``us-federal``: US business days, i.e. weekdays except the US
federal holidays, on which FRED's daily series are published. Early-close days are trading days:
they are target dates like any other session.

A calendar applies to daily trading-day series (frequency ``B``); every-day series (``D``), weekly,
monthly, quarterly and annual series step as their frequency says. A series with no calendar, or
dates outside what its calendar can compute, falls back to weekdays.

``exchange_calendars`` (with pandas) takes about a second to import, and every command checks the
config's calendar names: the names are therefore read from the installed package's source without
importing it (as ``db.head_revision`` reads the migrations); only computing target dates imports it.
"""

from __future__ import annotations

import ast
import difflib
import functools
import importlib.util
import warnings
from datetime import date, timedelta
from pathlib import Path

US_FEDERAL = "us-federal"  # tickcast's own: weekdays except US federal holidays (pandas' calendar)


@functools.cache
def calendar_names() -> frozenset[str]:
    """Every name a series' ``calendar`` may take: exchange_calendars' codes and aliases, and ours."""
    return frozenset(_exchange_calendar_names()) | {US_FEDERAL}


def _exchange_calendar_names() -> set[str]:
    spec = importlib.util.find_spec("exchange_calendars")  # finds the package without importing it
    if spec is not None and spec.submodule_search_locations:
        source = Path(next(iter(spec.submodule_search_locations))) / "calendar_utils.py"
        try:
            names = _dict_keys(
                source.read_text(encoding="utf-8"), ("_default_calendar_factories", "_default_calendar_aliases")
            )
        except (OSError, SyntaxError, ValueError):
            names = set()
        if names:
            return names
    import exchange_calendars  # a layout we do not recognise: ask the package itself

    return set(exchange_calendars.get_calendar_names(include_aliases=True))


def _dict_keys(text: str, variables: tuple[str, ...]) -> set[str]:
    """The string keys of the module-level dict literals assigned to ``variables`` in ``text``."""
    keys: set[str] = set()
    for node in ast.parse(text).body:
        target = (
            node.targets[0]
            if isinstance(node, ast.Assign) and len(node.targets) == 1
            else getattr(node, "target", None)
        )
        value = getattr(node, "value", None)
        if isinstance(target, ast.Name) and target.id in variables and isinstance(value, ast.Dict):
            keys.update(k.value for k in value.keys if isinstance(k, ast.Constant) and isinstance(k.value, str))
    return keys


def check_calendar_name(dotted: str, value: str) -> str:
    """``value`` if it names a calendar, else a ConfigError naming the setting ``dotted``."""
    from .errors import ConfigError

    if value in calendar_names():
        return value
    close = difflib.get_close_matches(value.upper(), sorted(calendar_names()), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(
        f"setting {dotted!r} must be an exchange calendar code such as XNYS, XLON or XTKS, or "
        f"{US_FEDERAL!r}, got {value!r}{hint}"
    )


def next_trading_days(last: date, calendar: str, steps: int) -> list[date]:
    """The ``steps`` trading days of ``calendar`` after ``last`` (which need not be one itself)."""
    days: list[date] = []
    start = last + timedelta(days=1)
    while len(days) < steps:
        # Two weeks plus twice the steps covers the longest closures (Lunar New Year, Golden Week).
        end = start + timedelta(days=14 + 2 * (steps - len(days)))
        days += _sessions(calendar, start, end)[: steps - len(days)]
        start = end + timedelta(days=1)
    return days


def _sessions(calendar: str, start: date, end: date) -> list[date]:
    """Days from ``start`` to ``end`` inclusive: the calendar's sessions where it can compute them,
    weekdays outside that span."""
    import pandas as pd

    if calendar == US_FEDERAL:
        return [d.date() for d in pd.date_range(start, end, freq=_us_federal_days())]
    exchange, first, last = _exchange_calendar(calendar, start.year)
    days = [d.date() for d in pd.bdate_range(start, end) if not first <= d.date() <= last]
    if first <= end and start <= last:
        sessions = exchange.sessions
        inside = sessions[(sessions >= pd.Timestamp(max(start, first))) & (sessions <= pd.Timestamp(min(end, last)))]
        days += [d.date() for d in inside]
    return sorted(days)


@functools.cache
def _us_federal_days():
    import pandas as pd
    from pandas.tseries.holiday import USFederalHolidayCalendar

    return pd.offsets.CustomBusinessDay(calendar=USFederalHolidayCalendar())


@functools.lru_cache(maxsize=32)
def _exchange_calendar(name: str, year: int):
    """(calendar, first day, last day it covers) for ``year`` and the three after it: building one
    costs ~0.4 s, so the series of one exchange whose data end in the same year share it. Some
    calendars are computed for a limited span only (XSHG's ends a year ahead): then the package's
    default span; (None, ...) covering nothing when even that fails."""
    with warnings.catch_warnings():  # the package's deprecation noise under newer pandas is not the user's
        warnings.simplefilter("ignore")
        import exchange_calendars

        start, end = date(year, 1, 1), date(year + 3, 12, 31)
        try:
            return exchange_calendars.get_calendar(name, start=start, end=end), start, end
        except ValueError:  # exchange_calendars' out-of-bounds errors subclass it
            try:
                exchange = exchange_calendars.get_calendar(name)
            except ValueError:
                return None, end, start
    return exchange, exchange.first_session.date(), exchange.last_session.date()
