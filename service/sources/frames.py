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
    frame = frame.dropna(subset=["ts"])
    if since is not None:
        frame = frame[frame["ts"] >= since]
    return frame.reset_index(drop=True)
