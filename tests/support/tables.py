"""Read what tickcast stored, straight from the tables (the public interface), for assertions."""

from __future__ import annotations

import sqlalchemy as sa

from tickcast.models.config import DEFAULT_MEMBERS
from tickcast.service import schema
from tickcast.service.schema import PUBLISHED


def table(engine, name):
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(schema.metadata.tables[name]))]


def fits_by_key(engine):
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(schema.series.c.key, schema.fits)
            .join(schema.fits, schema.fits.c.series_id == schema.series.c.id)
            .order_by(schema.fits.c.id)
        ).all()
    out = {}
    for row in rows:
        out.setdefault(row.key, []).append(row)
    return out


def observations(engine, key):
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(schema.observations.c.ts, schema.observations.c.value)
            .join(schema.series, schema.series.c.id == schema.observations.c.series_id)
            .where(schema.series.c.key == key)
            .order_by(schema.observations.c.ts)
        ).all()
    return [(r.ts, r.value) for r in rows]


def series_row(engine, key):
    with engine.connect() as conn:
        return conn.execute(sa.select(schema.series).where(schema.series.c.key == key)).one()


# --- forecasts: every model at every level ---------------------------------------------------------
# A run stores, per series and step, the published forecast and each combined model's own, each at
# every interval level (forecast.levels): the default rows per step below.
MEMBERS = DEFAULT_MEMBERS  # model.members, the default
LEVELS = (0.8, 0.95)  # forecast.levels, the default
ROWS_PER_STEP = (1 + len(MEMBERS)) * len(LEVELS)


def published(rows: list[dict], level: float = LEVELS[0]) -> list[dict]:
    """The rows of the published forecast at one level (one per series, origin and step), from
    ``table(engine, "forecasts")`` or the view's rows."""
    return [r for r in rows if r.get("model", PUBLISHED) == PUBLISHED and r["level"] == level]


def add_series(conn, key: str, created_at) -> tuple[int, int]:
    """A CSV series and one ok fit of it, written by hand for a ledger built by construction;
    returns (series id, fit id)."""
    sid = conn.execute(
        sa.insert(schema.series)
        .values(key=key, source="csv", symbol=key[4:], created_at=created_at)
        .returning(schema.series.c.id)
    ).scalar_one()
    fit = conn.execute(
        sa.insert(schema.fits).values(series_id=sid, created_at=created_at, status="ok").returning(schema.fits.c.id)
    ).scalar_one()
    return sid, fit


DEAD_PID = 2**22 + 12345  # above Linux's pid_max: no process has it


def add_dead_holders_lease(conn, now) -> None:
    """The run lease as a crashed process on this host left it: unexpired, its pid gone."""
    import os
    from datetime import timedelta

    conn.execute(
        sa.insert(schema.run_lease).values(
            name="run",
            holder="dead",
            host=os.uname().nodename,
            pid=DEAD_PID,
            run_id=None,
            acquired_at=now,
            expires_at=now + timedelta(hours=1),
        )
    )
