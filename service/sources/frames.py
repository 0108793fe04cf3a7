"""Turning raw columns into the one shape every source returns: ``ts`` (the stamps as read, times of
day kept; validation brings them to the series' grain, a date or an hour), ``value``.

Dates are read one way for the whole column, never cell by cell: ``08/05/2023`` is 8 May in a
column that also holds ``28/06/2024``, and 5 August in one that holds ``06/28/2024``. Numeric
day/month dates (``d/m/y``, ``m/d/y``, with ``/``, ``.`` or ``-``) are day-first when any cell needs
it (a first number above 12), month-first when any cell needs that; a column where neither reading
is ruled out (every number 12 or less, as in ``01/02/2024``), or that needs both, is refused with an
error naming ``date_format``. Dates so read must keep the file's order (oldest or newest first): a
column that jumps back and forth was misread, and is refused too. Never a silent guess.

Rows are put in time order by their full timestamp, so that the value of a day (or an hour) with
several bars is its last bar, whichever way the file is sorted. A timestamp with a UTC offset keeps
its wall-clock time (the offset is dropped): a day is the local day, and an hourly series keeps its
own clock, where its daily cycle lives.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pandas as pd

from ..errors import SourceError, cut, quoted

# Cells that say "no value here" (FRED writes "."); any other text that is not a number is bad data.
MISSING_MARKERS = frozenset({"", ".", "na", "n/a", "#n/a", "nan", "null", "none", "-", "--"})


def to_observations(
    dates, values, since: pd.Timestamp | None, what: str, date_format: str | None = None
) -> pd.DataFrame:
    """Parse dates and numbers leniently: unparseable cells become NaT/NaN for validation to drop.

    ``attrs`` tell validation what it cannot see in NaN: ``unparseable_dates`` (a count), and
    ``not_numbers`` (row positions of text that is not a number, such as a decimal comma's "1,5",
    as opposed to a missing value) with ``not_number_example`` (the first such text).

    Raises SourceError when nothing at all parses (a wrong column, an HTML error page, a truncated file)."""
    stamps = _parse_dates(pd.Series(dates, dtype="object"), what, date_format)
    # in time order by the full timestamp (stable: equal ones keep the file's order), so that the
    # last row of a day is its last bar, whichever way the file is sorted
    order = np.argsort(stamps.to_numpy(), kind="stable")
    ts = stamps.iloc[order].reset_index(drop=True)
    raw = pd.Series(values, dtype="object").iloc[order].reset_index(drop=True)
    value = pd.to_numeric(raw.replace({".": None, "": None}), errors="coerce")
    failed = value.isna().to_numpy()
    not_number = pd.Series(False, index=raw.index)
    if failed.any():
        not_number[failed] = [
            isinstance(cell, str) and cell.strip().lower() not in MISSING_MARKERS for cell in raw[failed]
        ]
    frame = pd.DataFrame(
        {
            "ts": ts.to_numpy(),
            "value": value.to_numpy(dtype="float64"),
            "text": raw.to_numpy(),
            "not_number": not_number.to_numpy(),
        }
    )
    if len(frame) and frame["ts"].isna().all():
        raise SourceError(f"{what}: no parseable dates (malformed or truncated data)")
    unparseable = int(frame["ts"].isna().sum())
    frame = frame.dropna(subset=["ts"])
    if since is not None:
        frame = frame[frame["ts"] >= since]
    frame = frame.reset_index(drop=True)
    positions = tuple(int(i) for i in frame.index[frame["not_number"].to_numpy()])
    example = str(frame["text"].iloc[positions[0]]) if positions else None
    frame = frame[["ts", "value"]]
    frame.attrs.update(unparseable_dates=unparseable, not_numbers=positions, not_number_example=example)
    return frame


def check_complete(text: str, table: pd.DataFrame, date_column: str, value_column: str, what: str) -> None:
    """A CSV cut off in transfer or on disk ends in a partial line with no newline: refuse it rather
    than silently storing a shorter series."""
    if not len(table) or text.endswith(("\n", "\r")):
        return
    last_date, last_value = str(table[date_column].iloc[-1]), str(table[value_column].iloc[-1])
    if pd.isna(pd.to_datetime(last_date, errors="coerce", format="mixed")) or not last_value.strip():
        tail = text.splitlines()[-1]  # "\n", "\r\n" or an old Mac's "\r"
        raise SourceError(f"{what}: truncated CSV: the last line is incomplete ({quoted(tail)})")


# Python's date cannot hold a year before 1; pandas parses e.g. "-1" as the year -1.
_EARLIEST = pd.Timestamp("0001-01-01")


def _parse_dates(raw: pd.Series, what: str, date_format: str | None) -> pd.Series:
    """Naive timestamps in each row's own local time; unparseable cells and years before 1 -> NaT."""
    if not date_format:
        iso = _day_month_as_iso(raw, what)
        if iso is not None:
            raw, read_as = iso
            ts = pd.to_datetime(raw, format="mixed", errors="coerce")
            ts = ts.where(ts >= _EARLIEST)
            _check_order(ts, what, read_as)
            return ts
    how = {"format": date_format or "mixed", "errors": "coerce"}
    try:
        ts = pd.to_datetime(raw, **how)
    except ValueError as exc:
        if "Mixed timezones" not in str(exc):  # a malformed date_format ("%Q", a stray "%")
            raise SourceError(
                f"{what}: cannot parse dates with date_format {quoted(date_format)} ({cut(str(exc))})"
            ) from None
        # Rows with different UTC offsets (e.g. either side of a DST change): each keeps its local date.
        ts = pd.to_datetime(raw.map(lambda cell: _wall_clock(pd.to_datetime(cell, **how))), errors="coerce")
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_localize(None)
    return ts.where(ts >= _EARLIEST)


def _wall_clock(stamp):
    return stamp.tz_localize(None) if isinstance(stamp, pd.Timestamp) and stamp.tzinfo is not None else stamp


# A date of two numbers up to 31 and a year, the numbers in an order to find out: 08/05/2023,
# 8.5.23, 08-05-2023 09:30 (a time after it is kept).
_DAY_MONTH = re.compile(r"\s*(\d{1,2})([/.\-])(\d{1,2})\2(\d{4}|\d{2})(?=$|[ T])(.*?)\s*$")
_FORMAT_HINT = 'set date_format for the series (e.g. "%d/%m/%Y" or "%m/%d/%Y")'


def _day_month_as_iso(raw: pd.Series, what: str) -> tuple[pd.Series, str] | None:
    """The column rewritten as ISO dates (year-month-day, times kept) and how it was read
    ("day-first" or "month-first"), when most cells are numeric day/month dates; None otherwise.
    Raises SourceError when the column cannot be read one way only."""
    cells = [c.strip() for c in raw if isinstance(c, str) and c.strip().lower() not in MISSING_MARKERS]
    found = [m for c in cells if (m := _DAY_MONTH.match(c))]
    if not found or len(found) * 2 < len(cells):
        return None
    separator = Counter(m.group(2) for m in found).most_common(1)[0][0]
    found = [m for m in found if m.group(2) == separator]
    day_first = [m.group(0).strip() for m in found if int(m.group(1)) > 12]
    month_first = [m.group(0).strip() for m in found if int(m.group(3)) > 12]
    if day_first and month_first:
        raise SourceError(
            f"{what}: the dates are day-first in some rows ({quoted(day_first[0], 20)}) and month-first in others "
            f"({quoted(month_first[0], 20)}): {_FORMAT_HINT}"
        )
    if not day_first and not month_first and any(m.group(1) != m.group(3) for m in found):
        example = next(m.group(0).strip() for m in found if m.group(1) != m.group(3))
        raise SourceError(
            f"{what}: the dates are ambiguous: {quoted(example, 20)} may be day-first or month-first, and no "
            f"date has a number above 12 to tell: {_FORMAT_HINT}"
        )
    read_as = "month-first" if month_first else "day-first"

    def iso(cell):
        match = _DAY_MONTH.match(cell) if isinstance(cell, str) else None
        if match is None or match.group(2) != separator:
            return None  # unparseable, like any other cell that is not a date
        first, second, year, rest = int(match.group(1)), int(match.group(3)), match.group(4), match.group(5)
        day, month = (second, first) if read_as == "month-first" else (first, second)
        full_year = int(year) if len(year) == 4 else (2000 + int(year) if int(year) < 69 else 1900 + int(year))
        return f"{full_year:04d}-{month:02d}-{day:02d}{rest}"

    return raw.map(iso), read_as


def _check_order(ts: pd.Series, what: str, read_as: str) -> None:
    """Dates read one way must keep the file's order, oldest or newest first: a column that goes back
    and forth was misread (or is not sorted by date, which is not a series to guess at)."""
    values = ts.to_numpy()  # in the column's own unit: years 1-1677 do not fit in nanoseconds
    rows = np.flatnonzero(~np.isnat(values))  # positions in the file of the cells that are dates
    steps = np.diff(values[rows].astype(np.int64))
    if not len(steps) or (steps >= 0).all() or (steps <= 0).all():
        return
    rising = (steps > 0).sum() >= (steps < 0).sum()
    bad = int(np.flatnonzero(steps < 0 if rising else steps > 0)[0])
    before, after = (pd.Timestamp(values[rows[i]]) for i in (bad, bad + 1))
    raise SourceError(
        f"{what}: the dates, read {read_as}, are out of the file's order ({_day(before)} then "
        f"{_day(after)} at row {rows[bad + 1] + 2}): {_FORMAT_HINT}"
    )


def _day(stamp: pd.Timestamp) -> str:
    return f"{stamp.year:04d}-{stamp.month:02d}-{stamp.day:02d}"  # strftime refuses some years
