"""Turning raw columns into the one shape every source returns: ``ts`` (midnight dates), ``value``."""

from __future__ import annotations

import pandas as pd

from ..errors import SourceError


def to_observations(dates, values, since: pd.Timestamp | None, what: str, date_format: str | None = None) -> pd.DataFrame:
    """Parse dates and numbers leniently: unparseable cells become NaT/NaN for validation to drop.

    Raises SourceError when nothing at all parses (a wrong column, an HTML error page, a truncated file)."""
    ts = _parse_dates(pd.Series(dates, dtype="object"), what, date_format)
    value = pd.to_numeric(pd.Series(values, dtype="object").replace({".": None, "": None}), errors="coerce")
    frame = pd.DataFrame({"ts": ts.dt.normalize().to_numpy(), "value": value.to_numpy(dtype="float64")})
    if len(frame) and frame["ts"].isna().all():
        raise SourceError(f"{what}: no parseable dates (malformed or truncated data)")
    unparseable = int(frame["ts"].isna().sum())
    frame = frame.dropna(subset=["ts"])
    if since is not None:
        frame = frame[frame["ts"] >= since]
    frame = frame.reset_index(drop=True)
    frame.attrs["unparseable_dates"] = unparseable  # validation reports them in series.last_note
    return frame


def check_complete(text: str, table: pd.DataFrame, date_column: str, value_column: str, what: str) -> None:
    """A CSV cut off in transfer or on disk ends in a partial line with no newline: refuse it rather
    than silently storing a shorter series."""
    if not len(table) or text.endswith(("\n", "\r")):
        return
    last_date, last_value = str(table[date_column].iloc[-1]), str(table[value_column].iloc[-1])
    if pd.isna(pd.to_datetime(last_date, errors="coerce", format="mixed")) or not last_value.strip():
        tail = text.rsplit("\n", 1)[-1][:60]
        raise SourceError(f"{what}: truncated CSV: the last line is incomplete ({tail!r})")


# Python's date cannot hold a year before 1; pandas parses e.g. "-1" as the year -1.
_EARLIEST = pd.Timestamp("0001-01-01")


def _parse_dates(raw: pd.Series, what: str, date_format: str | None) -> pd.Series:
    """Naive timestamps in each row's own local time; unparseable cells and years before 1 -> NaT."""
    how = {"format": date_format or "mixed", "errors": "coerce"}
    try:
        ts = pd.to_datetime(raw, **how)
    except ValueError as exc:
        if "Mixed timezones" not in str(exc):  # a malformed date_format ("%Q", a stray "%")
            raise SourceError(f"{what}: cannot parse dates with date_format {date_format!r} ({exc})") from None
        # Rows with different UTC offsets (e.g. either side of a DST change): each keeps its local date.
        ts = pd.to_datetime(raw.map(lambda cell: _wall_clock(pd.to_datetime(cell, **how))), errors="coerce")
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_localize(None)
    return ts.where(ts >= _EARLIEST)


def _wall_clock(stamp):
    return stamp.tz_localize(None) if isinstance(stamp, pd.Timestamp) and stamp.tzinfo is not None else stamp
