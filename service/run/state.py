"""What the tables say before the plan stage decides: the state of every series' fits (and of the
groups' shared fits), read once in two grouped queries; each series as a ``Candidate`` (its stored
values, its fit state and the row it would write); the weights a warm start continues from."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .. import schema
from ..settings import SeriesSpec
from ..stamps import canonical
from ..status import FitMode, FitStatus
from .values import FitRecord


@dataclass(frozen=True)
class FitState:
    """What the fits table says about one series (or, under the key None, the groups' shared fits)."""

    latest_id: int | None = None  # its newest fit, whatever its settings
    latest_status: str | None = None
    latest_train_end: date | None = None
    latest_hash: str | None = None
    latest_replaced: bool = False  # its history was replaced after the newest fit
    latest_group_fit: int | None = None  # the newest fit's shared fit, for a group member's row
    base_id: dict[str, int] = field(default_factory=dict)  # settings hash -> its newest successful fit
    last_cold: dict[str, date] = field(default_factory=dict)  # settings hash -> newest successful cold fit's train_end


def fit_states(conn: Connection) -> dict[int | None, FitState]:
    """The fits of every series, summarised by two grouped queries (not three queries per series).
    The groups' shared fits (series_id NULL) are summarised under the key None."""
    fits = schema.fits.c
    # A backfilled fit (made at a past origin) is never a series' newest fit, nor one to continue.
    newest = (
        sa.select(sa.func.max(fits.id)).where(fits.series_id.is_not(None), fits.backfill == 0).group_by(fits.series_id)
    )
    latest = {
        row.series_id: row
        for row in conn.execute(
            sa.select(
                fits.id,
                fits.series_id,
                fits.status,
                fits.train_end,
                fits.settings_hash,
                fits.history_replaced_at,
                fits.group_fit_id,
            ).where(fits.id.in_(newest.scalar_subquery()))
        )
    }
    base: dict[int | None, dict[str, int]] = {}
    cold: dict[int | None, dict[str, date]] = {}
    for row in conn.execute(
        sa.select(
            fits.series_id,
            fits.settings_hash,
            sa.func.max(fits.id).label("base_id"),
            sa.func.max(sa.case((fits.mode == FitMode.COLD, fits.train_end))).label("last_cold"),
        )
        .where(fits.status == FitStatus.OK, fits.history_replaced_at.is_(None), fits.backfill == 0)
        .group_by(fits.series_id, fits.settings_hash)
    ):
        base.setdefault(row.series_id, {})[row.settings_hash] = row.base_id
        if row.last_cold is not None:
            cold.setdefault(row.series_id, {})[row.settings_hash] = canonical(row.last_cold)
    states = {}
    for series_id in set(latest) | set(base):
        newest_fit = latest.get(series_id)
        states[series_id] = FitState(
            latest_id=newest_fit.id if newest_fit else None,
            latest_status=newest_fit.status if newest_fit else None,
            latest_train_end=newest_fit.train_end if newest_fit else None,
            latest_hash=newest_fit.settings_hash if newest_fit else None,
            latest_replaced=newest_fit is not None and newest_fit.history_replaced_at is not None,
            latest_group_fit=newest_fit.group_fit_id if newest_fit else None,
            base_id=base.get(series_id, {}),
            last_cold=cold.get(series_id, {}),
        )
    return states


def read_weights(engine: Engine, fit_id: int) -> bytes | None:
    with engine.connect() as conn:
        return conn.execute(sa.select(schema.fits.c.weights).where(schema.fits.c.id == fit_id)).scalar()


@dataclass(frozen=True)
class Candidate:
    """One series as the plan sees it: its stored values, its fit state and the row it would write."""

    spec: SeriesSpec
    series_id: int
    frequency: str | None
    season_length: int | tuple[int, ...]
    values: np.ndarray
    state: FitState
    record: FitRecord
    in_run: bool  # one of the run's series (else only a member of one of their groups)
    params: dict  # its forecaster_params (seeded from its key), computed once
    horizon: int  # the steps forecast for it (its own, forecast.horizon, or its frequency's)
    skip: str | None = None  # why it cannot be trained (nothing stored, too short)

    def up_to_date(self, fingerprint: str, group_fit: int | None = None) -> bool:
        """Its newest fit has these settings, this newest observation and went through (ok, or a
        skip of a too-short series), its history was not replaced since, and (a member's row) it
        came from ``group_fit``."""
        s = self.state
        return (
            s.latest_hash == fingerprint
            and s.latest_train_end == self.record.train_end
            and s.latest_status in (FitStatus.OK, FitStatus.SKIPPED)
            and not s.latest_replaced
            and (group_fit is None or s.latest_group_fit == group_fit)
        )
