"""The adaptive interval factor (service/run/adaptive.py) on forecasts and observations written row by
row: each (model, level) learns from its own scored forecasts of its own series, those with a
target in (previous origin, origin], starting from the factor its previous forecasts used."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import sqlalchemy as sa

from tickcast.service import schema
from tickcast.service.db import open_database, write_transaction
from tickcast.service.run.adaptive import adaptive_interval_factor, adaptive_interval_factors, scale_interval

D = [date(2026, 1, 1) + timedelta(days=i) for i in range(7)]
NOW = datetime(2026, 1, 10, tzinfo=UTC)


def _world(engine) -> tuple[int, int]:
    """Series a and b observed at 100 every day; forecasts (model, level, origin, factor, steps as
    (target day, lower, upper))."""
    ids = []
    with write_transaction(engine) as conn:
        for key in ("csv:a", "csv:b"):
            sid = conn.execute(
                sa.insert(schema.series)
                .values(key=key, source="csv", symbol=key[4:], created_at=NOW)
                .returning(schema.series.c.id)
            ).scalar_one()
            conn.execute(sa.insert(schema.observations), [{"series_id": sid, "ts": d, "value": 100.0} for d in D])
            ids.append(sid)
        a, b = ids
        inside, miss = (0.0, 1000.0), (101.0, 110.0)
        stored = [
            (a, "published", 0.8, D[0], 4.0, [(1, *inside)]),
            (a, "published", 0.8, D[1], 2.0, [(2, *miss), (3, *miss)]),  # day 3 is after the origin
            (a, "rnn", 0.8, D[1], 1.0, [(2, *inside)]),
            (a, "theta", 0.8, D[0], 1.5, [(5, *miss)]),  # nothing scored by day 2
            (b, "published", 0.8, D[1], 3.0, [(2, *miss)]),  # another series: none of a's business
        ]
        for sid, model, level, origin, factor, steps in stored:
            fit = conn.execute(
                sa.insert(schema.fits).values(series_id=sid, status="ok", created_at=NOW).returning(schema.fits.c.id)
            ).scalar_one()
            for day, lower, upper in steps:
                conn.execute(
                    sa.insert(schema.forecasts).values(
                        series_id=sid,
                        origin_ts=origin,
                        model=model,
                        step=(D[day] - origin).days,
                        level=level,
                        fit_id=fit,
                        target_ts=D[day],
                        value=100.0,
                        lower=lower,
                        upper=upper,
                        created_at=NOW,
                        interval_factor=factor,
                    )  # fmt: skip
                )
    return a, b


def test_each_model_and_level_learns_from_its_own_misses(db_url):
    engine = open_database(db_url)
    try:
        a, b = _world(engine)
        keys = [("published", 0.8), ("rnn", 0.8), ("theta", 0.8), ("ets", 0.8)]
        with engine.connect() as conn:
            got = adaptive_interval_factors(conn, a, D[2], 0.5, keys)
            assert got == {
                ("published", 0.8): 2.0 * math.exp(0.5 * 0.8),  # its day-2 miss; not day 1 (an older origin's)
                ("rnn", 0.8): 1.0 * math.exp(0.5 * (0.8 - 1.0)),  # a hit narrows a little
                ("theta", 0.8): 1.5,  # nothing scored since: the factor it had
                ("ets", 0.8): 1.0,  # never stored before
            }
            assert adaptive_interval_factor(conn, a, D[2], 0.5, "published", 0.8) == got[("published", 0.8)]
            assert adaptive_interval_factors(conn, b, D[2], 0.5, [("published", 0.8)]) == {
                ("published", 0.8): min(3.0 * math.exp(0.5 * 0.8), 4.0)
            }
            assert adaptive_interval_factors(conn, a, D[2], 0.0, keys) == dict.fromkeys(keys, 1.0)
            assert adaptive_interval_factors(conn, a, D[2], 10.0, [("published", 0.8), ("rnn", 0.8)]) == {
                ("published", 0.8): 4.0,  # bounded: a bad spell does not make intervals useless
                ("rnn", 0.8): 0.25,
            }
    finally:
        engine.dispose()


def test_an_interval_is_scaled_around_its_point_in_float64():
    point = np.array([10.0, 20.0], dtype=np.float32)
    lower, upper = np.array([9.0, 17.0], dtype=np.float32), np.array([12.0, 20.5], dtype=np.float32)
    lo, hi = scale_interval(point, lower, upper, 1.1)
    assert lo.dtype == hi.dtype == np.float64
    assert lo.tolist() == [10.0 - 1.1 * 1.0, 20.0 - 1.1 * 3.0] and hi.tolist() == [10.0 + 1.1 * 2.0, 20.0 + 1.1 * 0.5]
