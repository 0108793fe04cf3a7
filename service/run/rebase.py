"""Re-based histories: when a source rewrites the past (a split or a dividend makes Yahoo adjust
every earlier price; a CSV file is re-exported on another basis), replace the stored history.

Ingest re-fetches from ``overlap_days`` before the last stored date. If the oldest overlapping
values (at least two) all moved by one factor (beyond ``CHANGED``, agreeing within ``AGREE``), the
history was probably re-based: the full history is fetched, and when most of the stored values up to
that point moved by the same factor (``CONFIRMED``) it replaces the stored one, in one transaction
with the rest:

- ``observations``: the series' rows are replaced by the full history (no fake return at the seam);
- ``forecasts`` made from origins on the old basis are rescaled by the factor (value, lower, upper;
  ``rescaled_by`` records it), so the accuracy ledger compares them with actuals on one basis;
- ``fits``: every earlier fit of the series (and the shared fit of every group it was trained in)
  gets ``history_replaced_at``: it was trained on the old basis, so it is never warm-started from
  and the next run trains cold;
- ``series.last_note`` says what happened.

An automatic re-base never deletes history: stored dates the source no longer sends (a source that
serves only a rolling window, say its last 100 days) are kept, rescaled by the factor when they are
on the old basis, and the note says how many. Only ``tickcast ingest --full KEY``, an explicit
request, replaces a series' history whatever changed, deleting rows removed at the source (and
picking up revisions older than the overlap); its forecasts are rescaled only when the same
re-basing test finds a factor. Otherwise ingest never deletes rows nor looks before the overlap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .. import schema
from ..stamps import canonical, stamp_text
from .observations import upsert_observations

CHANGED = 1e-6  # relative: a ratio this close to 1 is the same value (float noise, rounding)
AGREE = 1e-4  # relative: ratios this close to each other are one factor
CONFIRMED = 0.9  # the share of the stored values up to the event that must show the factor (within 10 x AGREE)
MIN_MOVED = 2  # one moved value is a revision; two or more moved alike are a re-basing


@dataclass(frozen=True)
class Rebase:
    factor: float  # new value / stored value, on the dates up to ``through``
    # the newest stored stamp (a date, or a time within a day) on the old basis: forecasts from
    # origins up to it are rescaled
    through: date


@dataclass(frozen=True)
class Replacement:
    """A series' full history, to store in place of what is stored."""

    frame: pd.DataFrame  # ts, value: clean, sorted
    rebase: Rebase | None  # the re-basing found, if any
    new: int  # dates not stored before
    revised: int  # stored dates whose value changed
    removed: int  # stored dates the source no longer has, deleted (only with --full)
    notes: list[str]  # validation notes on the full history
    kept: int = 0  # stored dates the source no longer has, kept (an automatic re-base)

    @property
    def changed(self) -> bool:
        return bool(self.new or self.revised or self.removed)


def as_series(frame: pd.DataFrame) -> pd.Series:
    """A clean frame (``ts``, ``value``) as a float Series indexed by its stamps (as ``stored_values``)."""
    return pd.Series(frame["value"].to_numpy(dtype="float64"), index=pd.DatetimeIndex(frame["ts"]), dtype="float64")


def _ratios(stored: pd.Series, fetched: pd.Series) -> pd.Series:
    """fetched / stored on the dates both have (oldest first), where both are positive and finite or
    both negative: a factor maps one onto the other."""
    common = stored.index.intersection(fetched.index).sort_values()
    old, new = stored.loc[common].to_numpy(), fetched.loc[common].to_numpy()
    usable = np.isfinite(old) & np.isfinite(new) & (old != 0) & (np.sign(old) == np.sign(new))
    return pd.Series(new[usable] / old[usable], index=common[usable])


def detect_rebase(stored: pd.Series, fetched: pd.Series) -> Rebase | None:
    """A re-basing shown by the overlap: the oldest overlapping values, at least ``MIN_MOVED``, all
    moved by one factor (the newest ones may differ: an adjustment applies to the prices before its
    event, and the last bar is often revised anyway)."""
    ratios = _ratios(stored, fetched)
    if len(ratios) < MIN_MOVED or abs(ratios.iloc[0] - 1) <= CHANGED:
        return None
    first = ratios.iloc[0]
    alike = np.abs(ratios.to_numpy() / first - 1) <= AGREE
    run = len(alike) if alike.all() else int(np.argmin(alike))  # the leading run of alike ratios
    if run < MIN_MOVED:
        return None
    leading = ratios.iloc[:run]
    return Rebase(factor=float(np.median(leading.to_numpy())), through=canonical(leading.index[-1]))


def confirm_rebase(stored: pd.Series, fetched: pd.Series, suspect: Rebase) -> Rebase | None:
    """``suspect`` if the full history shows it: most stored values up to ``suspect.through`` moved by
    its factor (old prices are rounded, so within 10 x AGREE); None for a revision of a few values."""
    ratios = _ratios(stored.loc[stored.index <= pd.Timestamp(suspect.through)], fetched)
    if not len(ratios):
        return None
    alike = np.abs(ratios.to_numpy() / suspect.factor - 1) <= 10 * AGREE
    return suspect if alike.mean() >= CONFIRMED else None


def compare_histories(stored: pd.Series, fetched: pd.Series) -> tuple[int, int, int]:
    """(new, revised, removed) dates of ``fetched`` against ``stored``."""
    common = stored.index.intersection(fetched.index)
    old, new = stored.loc[common].to_numpy(), fetched.loc[common].to_numpy()
    revised = int(sum(not math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0) for a, b in zip(old, new)))
    return len(fetched.index.difference(stored.index)), revised, len(stored.index.difference(fetched.index))


def keep_unsent(frame: pd.DataFrame, stored: pd.Series, rebase: Rebase) -> tuple[pd.DataFrame, int]:
    """``frame`` (the fetched history) with the stored dates it lacks added back: those up to
    ``rebase.through`` rescaled by its factor (they are on the old basis), later ones as stored.
    Returns the frame (sorted by date) and how many dates were added back."""
    unsent = stored.loc[~stored.index.isin(frame["ts"])]
    if not len(unsent):
        return frame, 0
    old_basis = np.asarray(unsent.index <= pd.Timestamp(rebase.through))
    values = np.where(old_basis, unsent.to_numpy() * rebase.factor, unsent.to_numpy())
    kept = pd.DataFrame({"ts": unsent.index, "value": values})
    merged = pd.concat([frame[["ts", "value"]], kept], ignore_index=True)
    return merged.sort_values("ts").reset_index(drop=True), len(unsent)


def replace_history(conn: Connection, series_id: int, replacement: Replacement, now: datetime) -> int:
    """Inside the caller's transaction: the series' observations become ``replacement.frame``; its
    forecasts on the old basis are rescaled; its fits are marked. Returns the forecasts rescaled."""
    conn.execute(sa.delete(schema.observations).where(schema.observations.c.series_id == series_id))
    upsert_observations(conn, series_id, replacement.frame)
    rescaled = 0
    rebase = replacement.rebase
    if rebase is not None:
        f = schema.forecasts.c
        rescaled = conn.execute(
            sa.update(schema.forecasts)
            .where(f.series_id == series_id, f.origin_ts <= rebase.through)
            .values(
                value=f.value * rebase.factor,
                lower=f.lower * rebase.factor,
                upper=f.upper * rebase.factor,
                rescaled_by=sa.func.coalesce(f.rescaled_by, 1.0) * rebase.factor,
            )
        ).rowcount
    fits = schema.fits.c
    # The series' own fits, and the shared fits of the groups it was trained in: their models saw
    # its old history too.
    shared = sa.select(fits.group_fit_id).where(fits.series_id == series_id, fits.group_fit_id.is_not(None))
    conn.execute(
        sa.update(schema.fits)
        .where(sa.or_(fits.series_id == series_id, fits.id.in_(shared)), fits.history_replaced_at.is_(None))
        .values(history_replaced_at=now)
    )
    return rescaled


def describe_replacement(replacement: Replacement, rescaled: int, full: bool) -> str:
    """The note stored in ``series.last_note``."""
    rebase = replacement.rebase
    if rebase is not None:
        head = (
            f"history re-based by the source (a split or a dividend): values up to {stamp_text(rebase.through)} moved "
            f"by a factor of {rebase.factor:.6g}; replaced with the full history"
        )
    else:
        head = "history re-fetched in full and replaced" if full else "history replaced"
    counts = (
        f" ({len(replacement.frame):,} rows: {replacement.new} new, {replacement.revised} revised, "
        f"{replacement.removed} removed)"
    )
    if replacement.kept:
        counts += (
            f"; kept {replacement.kept} stored value(s) the source no longer sends, those up to "
            f"{stamp_text(rebase.through) if rebase else '?'} rescaled by the factor (only ingest --full deletes "
            "history)"
        )
    forecasts = f"; {rescaled} stored forecast(s) rescaled by the factor" if rescaled else ""
    return f"{head}{counts}{forecasts}; earlier fits are not continued (the next fit is cold)"
