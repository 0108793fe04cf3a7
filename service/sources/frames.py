"""Turning raw columns into the one shape every source returns: ``ts`` (midnight dates), ``value``."""

from __future__ import annotations

import pandas as pd

from ..errors import SourceError


def to_observations(dates, values, since: pd.Timestamp | None, what: str, date_format: str | None = None) -> pd.DataFrame:
    """Parse dates and numbers leniently: unparseable cells become NaT/NaN for validation to drop.

    Raises SourceError when nothing at all parses (a wrong column, an HTML error page, a truncated file)."""
    if date_format:
        ts = pd.to_datetime(pd.Series(dates, dtype="object"), format=date_format, errors="coerce")
    else:
        ts = pd.to_datetime(pd.Series(dates, dtype="object"), errors="coerce", format="mixed")
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_localize(None)
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
