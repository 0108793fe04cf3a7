"""What the fits table says before the plan stage decides (service/run/state.py), on fits rows written
by hand on both backends: each series' newest fit (backfilled fits never are), the newest successful
fit per settings fingerprint to continue from (not one whose history was replaced since, nor a
backfilled one), the newest cold fit's end per fingerprint, the groups' shared fits under None; and
``Candidate.up_to_date``. tests/test_plan.py checks the plans made from them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import numpy as np
import pytest
import sqlalchemy as sa

from tickcast.service import schema
from tickcast.service.db import write_transaction
from tickcast.service.run.state import Candidate, FitState, fit_states, read_weights
from tickcast.service.run.values import FitRecord
from tickcast.service.settings import SeriesSpec

NOW = datetime(2026, 5, 1, tzinfo=UTC)


def add_series(conn, key: str) -> int:
    return conn.execute(
        sa.insert(schema.series).values(key=key, source="csv", symbol=key, created_at=NOW).returning(schema.series.c.id)
    ).scalar_one()


def add_fit(conn, series_id, status="ok", hash_="h1", mode="cold", end=date(2026, 1, 1), **kw) -> int:
    values = dict(
        series_id=series_id,
        created_at=NOW,
        status=status,
        settings_hash=hash_,
        mode=mode,
        train_end=end,
        **kw,
    )
    return conn.execute(sa.insert(schema.fits).values(**values).returning(schema.fits.c.id)).scalar_one()


def states_of(engine) -> dict:
    with engine.connect() as conn:
        return fit_states(conn)


def test_no_fits_no_states(fresh_db):
    engine = fresh_db()
    with write_transaction(engine) as conn:
        add_series(conn, "a")
    assert states_of(engine) == {}


def test_the_newest_fit_is_the_newest_row_whatever_it_was_and_backfills_never_are(fresh_db):
    engine = fresh_db()
    with write_transaction(engine) as conn:
        a, b = add_series(conn, "a"), add_series(conn, "b")
        add_fit(conn, a, end=date(2026, 1, 1))
        shared = add_fit(conn, None, hash_="g", scope="group", end=date(2026, 2, 1))
        newest_a = add_fit(conn, a, status="failed", hash_="h2", mode="warm", end=date(2026, 2, 1), group_fit_id=shared)
        add_fit(conn, a, end=date(2025, 6, 1), backfill=1)  # made later, at a past origin
        newest_b = add_fit(conn, b, status="skipped", hash_="h3", mode=None, end=date(2026, 3, 1))
    states = states_of(engine)
    assert set(states) == {a, b, None}
    sa_ = states[a]
    assert (sa_.latest_id, sa_.latest_status, sa_.latest_train_end, sa_.latest_hash) == (
        newest_a,
        "failed",
        date(2026, 2, 1),
        "h2",
    )
    assert (sa_.latest_replaced, sa_.latest_group_fit) == (False, shared)
    sb = states[b]
    assert (sb.latest_id, sb.latest_status, sb.latest_train_end, sb.latest_hash) == (
        newest_b,
        "skipped",
        date(2026, 3, 1),
        "h3",
    )
    assert sb.latest_group_fit is None and sb.base_id == {} and sb.last_cold == {}
    # the groups' shared fits: no newest fit (that is per series), only what to continue from
    assert states[None].latest_id is None and states[None].latest_status is None
    assert states[None].base_id == {"g": shared} and states[None].last_cold == {"g": date(2026, 2, 1)}


def test_what_to_continue_from_is_the_newest_successful_fit_of_each_fingerprint(fresh_db):
    engine = fresh_db()
    with write_transaction(engine) as conn:
        a = add_series(conn, "a")
        cold1 = add_fit(conn, a, hash_="h1", mode="cold", end=date(2026, 1, 1))
        warm1 = add_fit(conn, a, hash_="h1", mode="warm", end=date(2026, 1, 2))
        add_fit(conn, a, status="failed", hash_="h1", mode="warm", end=date(2026, 1, 3))  # not to continue from
        add_fit(conn, a, status="skipped", hash_="h1", mode=None, end=date(2026, 1, 3))
        cold2 = add_fit(conn, a, hash_="h2", mode="cold", end=date(2025, 12, 1))
        add_fit(conn, a, hash_="h2", mode="cold", end=date(2025, 11, 1), backfill=1)  # a past origin: never
        add_fit(conn, a, hash_="h3", mode="warm", end=date(2026, 1, 5), history_replaced_at=NOW)  # old basis
    s = states_of(engine)[a]
    assert s.base_id == {"h1": warm1, "h2": cold2}
    assert s.last_cold == {"h1": date(2026, 1, 1), "h2": date(2025, 12, 1)}  # warm fits do not count
    assert cold1 < warm1
    assert s.latest_hash == "h3" and s.latest_replaced is True  # the newest, though replaced


def test_the_newest_cold_fit_is_the_latest_end_and_a_fingerprint_with_only_warm_fits_has_none(fresh_db):
    engine = fresh_db()
    with write_transaction(engine) as conn:
        a = add_series(conn, "a")
        add_fit(conn, a, hash_="h1", mode="cold", end=date(2026, 3, 1))
        add_fit(conn, a, hash_="h1", mode="cold", end=date(2026, 1, 1))  # a later row, an older end
        add_fit(conn, a, hash_="h1", mode="cold", end=date(2026, 4, 1), status="failed")
        only_warm = add_fit(conn, a, hash_="w", mode="warm", end=date(2026, 2, 1))
    s = states_of(engine)[a]
    assert s.last_cold == {"h1": date(2026, 3, 1)}
    assert isinstance(s.last_cold["h1"], date) and s.base_id["w"] == only_warm


def test_a_series_whose_only_fits_are_backfilled_has_no_state(fresh_db):
    engine = fresh_db()
    with write_transaction(engine) as conn:
        a = add_series(conn, "a")
        add_fit(conn, a, backfill=1)
    assert states_of(engine) == {}


def test_a_series_with_only_a_replaced_fit_has_a_newest_fit_and_nothing_to_continue_from(fresh_db):
    engine = fresh_db()
    with write_transaction(engine) as conn:
        a = add_series(conn, "a")
        only = add_fit(conn, a, history_replaced_at=NOW)
    s = states_of(engine)[a]
    assert (s.latest_id, s.latest_replaced, s.base_id, s.last_cold) == (only, True, {}, {})


def test_weights_are_read_by_fit_id(fresh_db):
    engine = fresh_db()
    with write_transaction(engine) as conn:
        a = add_series(conn, "a")
        one = add_fit(conn, a, weights=b"\x00one")
        two = add_fit(conn, a, weights=b"\x00two")
        none = add_fit(conn, a)
    assert (read_weights(engine, one), read_weights(engine, two)) == (b"\x00one", b"\x00two")
    assert read_weights(engine, none) is None and read_weights(engine, 999) is None


END = date(2026, 4, 1)
UP = FitState(latest_id=9, latest_status="ok", latest_train_end=END, latest_hash="fp", latest_group_fit=5)


def candidate(state: FitState) -> Candidate:
    record = FitRecord(run_id=1, series_id=3, status="ok", settings_hash="fp", train_end=END)
    return Candidate(SeriesSpec("csv:a", "csv", "a"), 3, "M", 12, np.ones(5), state, record, True, {}, 18)


@pytest.mark.parametrize(
    ("change", "up"),
    [
        ({}, True),
        ({"latest_status": "skipped"}, True),  # a too-short series' skip is up to date too
        ({"latest_status": "failed"}, False),
        ({"latest_status": None}, False),
        ({"latest_hash": "other"}, False),
        ({"latest_train_end": date(2026, 3, 1)}, False),
        ({"latest_replaced": True}, False),
    ],
)
def test_up_to_date_needs_the_fingerprint_the_newest_observation_a_good_fit_and_the_same_basis(change, up):
    assert candidate(replace(UP, **change)).up_to_date("fp") is up


def test_a_members_row_is_up_to_date_only_from_the_same_shared_fit():
    c = candidate(UP)
    assert c.up_to_date("fp", group_fit=5) is True
    assert c.up_to_date("fp", group_fit=6) is False
    assert candidate(replace(UP, latest_group_fit=None)).up_to_date("fp", group_fit=5) is False
    assert candidate(replace(UP, latest_group_fit=None)).up_to_date("fp") is True
