"""What counts as data: the checks every fetched observation passes before it is stored.

First the stamps are brought to the series' grain (``at_grain``): the hour for an hourly series,
the date for every other. Dropped, with a note in ``series.last_note``: missing values, text that is
not a number, infinities, values beyond the accepted range, zero or negative prices and stamps in
the future; duplicate dates (or hours) are collapsed to their last bar. Kept, with a note:
outliers. ``every_new_row_rejected`` tells a fetch whose new rows were all bad data (a failed fetch)
from one that merely had nothing new.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from ..errors import quoted
from ..settings import SeriesSpec
from ..stamps import stamp_text

# The accepted range: |value| <= 1e15 (a thousand trillion). Above any price, rate or economic
# aggregate tickcast is meant for (world GDP in dollars is about 1e14), and far below where float64
# arithmetic in training overflows; beyond it a value is a unit or parsing error (or 1e308, a
# placeholder), refused with a note.
MAX_MAGNITUDE = 1e15
# The outlier rule: a value more than 1000 times the typical size (the median magnitude) of the 21
# observations around it is kept but noted, so that a unit slip or a fat-fingered value is seen.
OUTLIER_FACTOR = 1000.0
OUTLIER_WINDOW = 21


def _not_numbers(frame: pd.DataFrame) -> np.ndarray:
    mask = np.zeros(len(frame), dtype=bool)
    mask[list(frame.attrs.get("not_numbers", ()))] = True
    return mask


def bad_values(frame: pd.DataFrame, spec: SeriesSpec) -> dict[str, np.ndarray]:
    """The rows whose value is bad data (not merely missing), by reason: reason -> mask."""
    values = frame["value"].to_numpy(dtype="float64")
    finite = np.isfinite(values)
    bad = {
        "not_number": _not_numbers(frame),
        "non_finite": np.isinf(values),
        "out_of_range": finite & (np.abs(values) > MAX_MAGNITUDE),
    }
    if spec.price:
        bad["non_positive"] = finite & (values <= 0)
    return bad


def at_grain(frame: pd.DataFrame, hourly: bool) -> pd.DataFrame:
    """The fetched rows with their stamps at the series' grain, in place (and returned): the hour
    (minutes and seconds dropped) for an hourly series, the date (the time of day dropped) for every
    other. The rows keep their time order, so the last row of an hour or a day is its last bar."""
    stamps = frame["ts"].to_numpy()
    frame["ts"] = stamps.astype("datetime64[h]" if hourly else "datetime64[D]").astype(stamps.dtype)
    return frame


def validate_observations(
    frame: pd.DataFrame, spec: SeriesSpec, today: date, hourly: bool = False
) -> tuple[pd.DataFrame, list[str]]:
    """Return the clean rows (sorted, one per stamp) and notes on what was dropped; ``frame`` is at
    the series' grain (``at_grain``, hourly or not)."""
    notes = []
    if frame.attrs.get("unparseable_dates"):
        notes.append(f"dropped {frame.attrs['unparseable_dates']} row(s) with unparseable dates")
    values = frame["value"].to_numpy(dtype="float64")
    bad = bad_values(frame, spec)
    if bad["not_number"].any():
        notes.append(
            f"dropped {int(bad['not_number'].sum())} value(s) that are not numbers "
            f"(e.g. {quoted(frame.attrs.get('not_number_example'))})"
        )
    unusable = ~np.isfinite(values) & ~bad["not_number"]
    if unusable.any():
        notes.append(f"dropped {int(unusable.sum())} missing or non-finite value(s)")
    if bad["out_of_range"].any():
        first = int(np.flatnonzero(bad["out_of_range"])[0])
        notes.append(
            f"refused {int(bad['out_of_range'].sum())} value(s) beyond the accepted range of "
            f"±{MAX_MAGNITUDE:g} (e.g. {values[first]:g} on {stamp_text(frame['ts'].iloc[first])})"
        )
    if spec.price and bad["non_positive"].any():
        notes.append(f"dropped {int(bad['non_positive'].sum())} zero or negative price(s)")
    keep = np.isfinite(values) & ~bad["out_of_range"]
    if spec.price:
        keep &= ~bad["non_positive"]
    # A bar stamped tomorrow (UTC) can be today somewhere east of UTC; later than that is bad data.
    future = (frame["ts"] >= pd.Timestamp(today + timedelta(days=2))).to_numpy()
    if future.any():
        notes.append(f"refused {int(future.sum())} {'stamp' if hourly else 'date'}(s) in the future")
    keep = keep & ~future
    clean = frame.loc[keep, ["ts", "value"]]
    duplicated = clean["ts"].duplicated(keep="last")
    if duplicated.any():
        what = "hour(s), keeping the last bar of each hour" if hourly else "date(s), keeping the last bar of each day"
        notes.append(f"collapsed {int(duplicated.sum())} duplicate {what}")
        clean = clean[~duplicated]
    return clean.sort_values("ts").reset_index(drop=True), notes


def every_new_row_rejected(frame: pd.DataFrame, clean: pd.DataFrame, spec: SeriesSpec, last: date | None) -> bool:
    """Whether the fetch brought rows dated after ``last`` and kept none of them, at least one
    refused as bad data (a CSV that switched to decimal commas): the fetch failed. New rows that are
    all merely missing (a holiday's "." on FRED) are not a failure."""
    after = pd.Timestamp(last) if last is not None else pd.Timestamp.min
    new = (frame["ts"] > after).to_numpy()
    if not new.any() or (clean["ts"] > after).any():
        return False
    return any((mask & new).any() for mask in bad_values(frame, spec).values())


def outlier_note(context: np.ndarray, clean: pd.DataFrame, last: date | None) -> str | None:
    """A note on new values (after ``last``) more than OUTLIER_FACTOR times the typical magnitude of
    the OUTLIER_WINDOW values around them; ``context``: the stored values just before ``clean``."""
    after = pd.Timestamp(last) if last is not None else pd.Timestamp.min
    values = np.concatenate([context, clean["value"].to_numpy(dtype="float64")])
    typical = pd.Series(np.abs(values)).rolling(OUTLIER_WINDOW, center=True, min_periods=1).median().to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.abs(values) / typical
    ratio = ratio[len(context) :]
    flagged = np.flatnonzero(
        (typical[len(context) :] > 0) & (ratio > OUTLIER_FACTOR) & (clean["ts"] > after).to_numpy()
    )
    if not len(flagged):
        return None
    first = int(flagged[0])
    return (
        f"kept {len(flagged)} outlier(s) more than {OUTLIER_FACTOR:g} times the size of the values around "
        f"them (e.g. {clean['value'].iloc[first]:g} on {stamp_text(clean['ts'].iloc[first])}, "
        f"{ratio[first]:.3g} times): check the source"
    )
