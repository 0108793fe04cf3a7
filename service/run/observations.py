"""The ``observations`` table as the stages use it: what is stored for a series (its last date, its
count, its values) and the one way rows are written (``upsert_observations``)."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .. import schema
from ..stamps import canonical, stamp_text
from .validate import OUTLIER_WINDOW


def last_stored_date(conn: Connection, series_id: int) -> date | None:
    return conn.execute(
        sa.select(sa.func.max(schema.observations.c.ts)).where(schema.observations.c.series_id == series_id)
    ).scalar()


def newest_stamps(conn: Connection, series_id: int, n: int) -> list[date]:
    """The ``n`` newest stored stamps of a series, newest first."""
    obs = schema.observations.c
    return list(
        conn.execute(sa.select(obs.ts).where(obs.series_id == series_id).order_by(obs.ts.desc()).limit(n)).scalars()
    )


def count_rows(conn: Connection, series_id: int) -> int:
    return conn.execute(
        sa.select(sa.func.count()).select_from(schema.observations).where(schema.observations.c.series_id == series_id)
    ).scalar_one()


def stored_before(conn: Connection, series_id: int, clean: pd.DataFrame) -> np.ndarray:
    """The stored values just before the first date of ``clean``, oldest first: the outlier rule's
    neighbours for the first new values."""
    if clean.empty:
        return np.empty(0)
    obs = schema.observations.c
    rows = (
        conn.execute(
            sa.select(obs.value)
            .where(obs.series_id == series_id, obs.ts < canonical(clean["ts"].iloc[0]))
            .order_by(obs.ts.desc())
            .limit(OUTLIER_WINDOW // 2)
        )
        .scalars()
        .all()
    )
    return np.array(rows[::-1], dtype=np.float64)


def upsert_observations(conn: Connection, series_id: int, frame: pd.DataFrame) -> tuple[int, int]:
    """Write the rows of ``frame`` (``ts``, ``value``) that are new or whose value changed;
    returns (new, revised).

    Existing values in the fetched span are read first, so an unchanged re-fetch writes nothing.
    Rows go straight to the driver's executemany as ISO text (no per-row ORM work): this is the
    hot path of a first ingest."""
    if frame.empty:
        return 0, 0
    iso = stamp_texts(frame["ts"].to_numpy())
    values = frame["value"].tolist()
    stored = {
        stamp_text(ts): v
        for ts, v in conn.execute(
            sa.select(schema.observations.c.ts, schema.observations.c.value).where(
                schema.observations.c.series_id == series_id,
                schema.observations.c.ts >= frame["ts"].min().to_pydatetime(),
            )
        )
    }
    if stored:
        changed = [
            (series_id, d, v)
            for d, v in zip(iso, values)
            if d not in stored or not math.isclose(stored[d], v, rel_tol=1e-12, abs_tol=0.0)
        ]
        revised = sum(1 for _, d, _ in changed if d in stored)
    else:
        changed, revised = list(zip([series_id] * len(iso), iso, values)), 0
    if changed:
        # SQLite stores the ISO text as is (a CAST there would turn it into a number).
        marks = "?, ?, ?" if conn.dialect.name == "sqlite" else "%s, CAST(%s AS TIMESTAMP), %s"
        conn.exec_driver_sql(
            f"INSERT INTO observations (series_id, ts, value) VALUES ({marks}) "
            "ON CONFLICT (series_id, ts) DO UPDATE SET value = excluded.value",
            changed,
        )
    return len(changed) - revised, revised


def stamp_texts(stamps: np.ndarray) -> list[str]:
    """datetime64 stamps as the ISO text ``stamp_text`` gives (a date at midnight, else date and
    time), in C: numpy formats datetime64 itself."""
    seconds = stamps.astype("datetime64[s]")
    days = seconds.astype("datetime64[D]")
    if (seconds == days).all():  # daily data: the common case
        return days.astype(str).tolist()
    times = np.char.replace(seconds.astype(str), "T", " ")
    return np.where(seconds == days, days.astype(str), times).tolist()


def stored_values(conn: Connection, series_id: int, since: date | None = None) -> pd.Series:
    """The stored observations (from ``since``) as a float Series indexed by their stamps (a
    DatetimeIndex: dates at midnight)."""
    obs = schema.observations.c
    query = sa.select(obs.ts, obs.value).where(obs.series_id == series_id)
    if since is not None:
        query = query.where(obs.ts >= since)
    rows = conn.execute(query.order_by(obs.ts)).all()
    index = pd.DatetimeIndex(pd.to_datetime([r.ts for r in rows])) if rows else pd.DatetimeIndex([])
    return pd.Series([r.value for r in rows], index=index, dtype="float64")


def recent_values(conn: Connection, series_id: int, max_points: int) -> tuple[date | None, date | None, np.ndarray]:
    """The newest ``max_points`` observations: (first date, last date, values (N,) oldest first).

    The dates come back as the driver gives them (no per-row conversion: a plan reads thousands of
    rows per series) and only the two ends are converted: SQLite hands over ISO text, PostgreSQL
    dates."""
    obs = schema.observations.c
    raw_ts = sa.type_coerce(obs.ts, sa.types.NullType())
    rows = conn.execute(
        sa.select(raw_ts, obs.value).where(obs.series_id == series_id).order_by(obs.ts.desc()).limit(max_points)
    ).all()
    values = np.fromiter((row[1] for row in reversed(rows)), dtype=np.float64, count=len(rows))
    if not rows:
        return None, None, values
    return canonical(rows[-1][0]), canonical(rows[0][0]), values
