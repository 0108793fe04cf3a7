"""Turning raw columns into the one shape every source returns: ``ts`` (midnight dates), ``value``."""

from __future__ import annotations

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
    ts = _parse_dates(pd.Series(dates, dtype="object"), what, date_format)
    raw = pd.Series(values, dtype="object")
    value = pd.to_numeric(raw.replace({".": None, "": None}), errors="coerce")
    failed = value.isna().to_numpy()
    not_number = pd.Series(False, index=raw.index)
    if failed.any():
        not_number[failed] = [
            isinstance(cell, str) and cell.strip().lower() not in MISSING_MARKERS for cell in raw[failed]
        ]
    frame = pd.DataFrame(
        {
            "ts": ts.dt.normalize().to_numpy(),
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
        tail = text.rsplit("\n", 1)[-1]
        raise SourceError(f"{what}: truncated CSV: the last line is incomplete ({quoted(tail)})")


# Python's date cannot hold a year before 1; pandas parses e.g. "-1" as the year -1.
_EARLIEST = pd.Timestamp("0001-01-01")


def _parse_dates(raw: pd.Series, what: str, date_format: str | None) -> pd.Series:
    """Naive timestamps in each row's own local time; unparseable cells and years before 1 -> NaT."""
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
