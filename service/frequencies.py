"""The frequencies a series may have, in one table: for each, the season length the model is given,
how target dates step, the spacing of observations that says it (inferring a series' frequency),
and the forecast horizon the M competitions use for it.

A frequency is a one-letter code, stored in ``series.frequency``: ``H`` hours, ``B`` trading days,
``D`` every day, ``W`` weeks, ``M`` months, ``Q`` quarters, ``A`` years. An unknown frequency (None)
gets season length 0 (the model looks for a season itself) and calendar-day steps. Hourly series
keep one value per hour, every other series one per date (``service/stamps.py``).

pandas is imported only where dates are computed: the config reads this table at every start-up.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from .calendars import next_trading_days
from .stamps import canonical


@dataclass(frozen=True)
class Frequency:
    code: str
    name: str
    season_length: int | tuple[int, ...]  # the model's seasonal period(s) (1: none)
    max_gap_days: float  # the median spacing of observations up to which data is of this frequency
    default_horizon: int  # the M competitions' horizon for it (M3/M4: 6 yearly, 8 quarterly, 18 monthly ...)
    months: int = 0  # steps of whole months (M, Q, A); 0: day steps


# In order of spacing. Trading days have no season: daily prices show no weekly cycle; their horizon
# is a trading week (what people ask of prices), the others' the M competitions' (M3, M4). Hours
# have two seasons, a day and a week (the model uses the week where a series holds enough of them),
# and M4's hourly horizon, two days.
FREQUENCY_TABLE = (
    Frequency("H", "hours", (24, 168), 1 / 24, 48),
    Frequency("B", "trading days", 1, 1.5, 5),
    Frequency("D", "days", 7, 1.5, 14),
    Frequency("W", "weeks", 52, 10, 13),
    Frequency("M", "months", 12, 45, 18, months=1),
    Frequency("Q", "quarters", 4, 120, 8, months=3),
    Frequency("A", "years", 1, float("inf"), 6, months=12),
)
FREQUENCIES = {f.code: f for f in FREQUENCY_TABLE}
CODES = tuple(FREQUENCIES)


def season_length(frequency: str | None, configured: int | None = None) -> int | tuple[int, ...]:
    """The season length a series is trained with: ``configured``, else its frequency's (0 for an
    unknown frequency: the model detects one)."""
    if configured is not None:
        return configured
    known = FREQUENCIES.get(frequency or "")
    return known.season_length if known else 0


DEFAULT_HORIZON = 8  # a series of unknown frequency (M3's "other" category: 8 steps)


def horizon(frequency: str | None, series: int | None = None, everywhere: int | None = None) -> int:
    """The steps forecast for a series: its own ``horizon`` ([[series]]), else ``forecast.horizon``
    (``everywhere``), else its frequency's default."""
    if series is not None:
        return series
    if everywhere is not None:
        return everywhere
    known = FREQUENCIES.get(frequency or "")
    return known.default_horizon if known else DEFAULT_HORIZON


def next_dates(last: date, frequency: str | None, steps: int, calendar: str | None = None) -> list[date]:
    """The ``steps`` stamps after ``last``: trading days are the sessions of ``calendar`` (weekends and
    that exchange's holidays skipped; weekdays when None), months keep the month-start or month-end
    convention of the data, hours are every hour (canonical stamps: midnight is a date)."""
    import pandas as pd

    if frequency == "B" and calendar is not None:
        return next_trading_days(last, calendar, steps)
    last_ts = pd.Timestamp(last)
    ks = range(1, steps + 1)
    known = FREQUENCIES.get(frequency or "")
    if frequency == "H":  # every hour of every day: the clock of the data (service/stamps.py)
        return [canonical(last_ts.floor("h") + pd.Timedelta(hours=k)) for k in ks]
    if frequency == "B":
        offsets = [pd.offsets.BDay(k) for k in ks]
    elif frequency == "W":
        offsets = [pd.DateOffset(weeks=k) for k in ks]
    elif known is not None and known.months:
        if last_ts.is_month_end and last_ts.day != 1:
            offsets = [pd.offsets.MonthEnd(known.months * k) for k in ks]
        else:
            offsets = [pd.DateOffset(months=known.months * k) for k in ks]
    else:  # "D" or unknown: calendar days
        offsets = [pd.DateOffset(days=k) for k in ks]
    return [(last_ts + off).date() for off in offsets]


RECENT = 120  # the most recent stamps that say a series' frequency


def hourly_spacing(gaps) -> bool:
    """Whether gaps between stamps (a timedelta64 array, three stamps' worth or more) are an hour
    apart or less in the median: hourly data (``infer_frequency``'s ``H``). An hour in days is
    1/24 exactly as a float64 division gives it."""
    import numpy as np

    return len(gaps) >= 2 and np.median(gaps) / np.timedelta64(1, "D") <= FREQUENCIES["H"].max_gap_days


def infer_frequency(dates: Sequence[date]) -> str | None:
    """The frequency whose spacing matches the median spacing of the most recent stamps (any order;
    dates, datetimes or ISO text as SQLite stores them; None when fewer than three): an hour or less
    is ``H`` (data every 15 minutes is kept hour by hour); a few bars a day count as daily, and
    daily data with weekend dates is ``D``, without ``B``."""
    import numpy as np
    import pandas as pd

    recent = pd.DatetimeIndex(pd.to_datetime(list(dates)[-RECENT:], format="ISO8601")).sort_values()
    if len(recent) < 3:
        return None
    gaps = np.diff(recent.values)
    if hourly_spacing(gaps):
        return "H"
    gap = float(np.median(gaps.astype("timedelta64[D]").astype(float)))  # whole days: a few bars a day are daily
    for f in FREQUENCY_TABLE[1:]:
        if gap <= f.max_gap_days:
            if f.code == "B":  # daily spacing (D's is the same, and comes after)
                return "D" if (recent.day_of_week >= 5).any() else "B"
            return f.code
    return None  # unreachable: the last row takes any spacing
