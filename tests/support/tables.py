"""Read what tickcast stored, straight from the tables (the public interface), for assertions."""

from __future__ import annotations

import sqlalchemy as sa

from tickcast.service import schema


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
