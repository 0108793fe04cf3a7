"""Stamps: a date, or a time within a day (hourly series), in Python, in SQLite and in PostgreSQL.

The same instant is one value whichever way it arrives (a date, a datetime, a pandas Timestamp, ISO
text) and reads back the same from either backend; SQLite keeps every daily series' text as it was
(``YYYY-MM-DD``), so nothing stored before needed migrating there; the text sorts in time order.
"""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tickcast.service import schema
from tickcast.service.frequencies import FREQUENCIES, horizon, infer_frequency, next_dates, season_length
from tickcast.service.run.ingest import hourly_grain
from tickcast.service.run.observations import stamp_texts, stored_values, upsert_observations
from tickcast.service.run.validate import at_grain, validate_observations
from tickcast.service.settings import SeriesSpec
from tickcast.service.stamps import as_datetime, canonical, stamp_text
from tickcast.service.tables import render

MIDNIGHT = date(2024, 3, 1)
TEN = datetime(2024, 3, 1, 10)


@pytest.mark.parametrize(
    "value,expected",
    [
        (MIDNIGHT, MIDNIGHT),
        (datetime(2024, 3, 1), MIDNIGHT),  # midnight is a date
        (pd.Timestamp("2024-03-01"), MIDNIGHT),
        ("2024-03-01", MIDNIGHT),
        ("2024-03-01 00:00:00", MIDNIGHT),
        (TEN, TEN),
        (pd.Timestamp("2024-03-01 10:00"), TEN),
        ("2024-03-01 10:00:00", TEN),
        ("2024-03-01T10:00", TEN),
        (" 2024-03-01 10:00 ", TEN),
        (datetime(2024, 3, 1, 0, 0, 1), datetime(2024, 3, 1, 0, 0, 1)),  # a second past midnight is not midnight
    ],
)
def test_a_stamp_is_a_date_at_midnight_else_a_datetime(value, expected):
    got = canonical(value)
    assert got == expected and type(got) is type(expected)
    assert type(canonical(got)) is type(expected)  # and stays so


def test_stamps_with_a_time_zone_are_refused():
    with pytest.raises(ValueError, match="naive UTC, got 2024-03-01T10:00:00\\+01:00"):
        canonical("2024-03-01T10:00:00+01:00")


def test_stamp_text_and_as_datetime():
    assert stamp_text(MIDNIGHT) == stamp_text(datetime(2024, 3, 1)) == "2024-03-01"
    assert stamp_text(TEN) == "2024-03-01 10:00:00"
    assert stamp_text(pd.Timestamp("2024-03-01 10:30:15")) == "2024-03-01 10:30:15"
    assert as_datetime(MIDNIGHT) == datetime(2024, 3, 1) and type(as_datetime(MIDNIGHT)) is datetime
    assert as_datetime(TEN) is TEN
    assert sorted([TEN, MIDNIGHT, date(2024, 2, 29)], key=as_datetime) == [date(2024, 2, 29), MIDNIGHT, TEN]


def test_numpy_stamps_become_the_same_text():
    daily = pd.date_range("2024-02-28", periods=3).to_numpy()
    assert stamp_texts(daily) == ["2024-02-28", "2024-02-29", "2024-03-01"]
    hours = pd.date_range("2024-02-29 22:00", periods=4, freq="h").to_numpy()
    assert stamp_texts(hours) == [stamp_text(t) for t in pd.DatetimeIndex(hours)]
    assert stamp_texts(hours) == ["2024-02-29 22:00:00", "2024-02-29 23:00:00", "2024-03-01", "2024-03-01 01:00:00"]


def test_the_stamp_columns_store_and_read_back_the_same_values(fresh_db, backend):
    engine = fresh_db()
    obs = schema.observations
    sent = [date(2024, 2, 29), datetime(2024, 2, 29, 23), datetime(2024, 3, 1), pd.Timestamp("2024-03-01 01:00")]
    with engine.begin() as conn:
        conn.execute(sa.insert(schema.series), [dict(key="csv:x", source="csv", symbol="x", created_at=datetime.now())])
        conn.execute(sa.insert(obs), [dict(series_id=1, ts=t, value=float(i)) for i, t in enumerate(sent)])
    with engine.connect() as conn:
        back = conn.execute(sa.select(obs.c.ts).order_by(obs.c.ts)).scalars().all()
        raw = conn.execute(sa.text("SELECT ts FROM observations ORDER BY ts")).scalars().all()
        later = conn.execute(sa.select(obs.c.value).where(obs.c.ts > datetime(2024, 2, 29, 23))).scalars().all()
        at_midnight = conn.execute(sa.select(obs.c.value).where(obs.c.ts == datetime(2024, 3, 1))).scalars().all()
    assert back == [date(2024, 2, 29), datetime(2024, 2, 29, 23), date(2024, 3, 1), datetime(2024, 3, 1, 1)]
    assert [type(v) for v in back] == [date, datetime, date, datetime]
    if backend == "sqlite":  # ISO text, a date alone at midnight: daily series read as they always did
        assert raw == ["2024-02-29", "2024-02-29 23:00:00", "2024-03-01", "2024-03-01 01:00:00"]
    else:
        assert raw == [datetime(2024, 2, 29), datetime(2024, 2, 29, 23), datetime(2024, 3, 1), datetime(2024, 3, 1, 1)]
    assert (later, at_midnight) == ([2.0, 3.0], [2.0])
    with engine.connect() as conn:
        assert stored_values(conn, 1).index.tolist() == [pd.Timestamp(t) for t in back]


def test_upserting_hours_writes_each_once_and_revises_in_place(fresh_db):
    engine = fresh_db()
    with engine.begin() as conn:
        conn.execute(sa.insert(schema.series), [dict(key="csv:x", source="csv", symbol="x", created_at=datetime.now())])
    hours = pd.date_range("2024-02-29 22:00", periods=4, freq="h")
    frame = pd.DataFrame({"ts": hours, "value": [1.0, 2.0, 3.0, 4.0]})
    with engine.begin() as conn:
        assert upsert_observations(conn, 1, frame) == (4, 0)
    with engine.begin() as conn:
        assert upsert_observations(conn, 1, frame) == (0, 0)  # nothing changed: nothing written
        assert upsert_observations(conn, 1, frame.assign(value=[1.0, 2.0, 30.0, 4.0])) == (0, 1)
    with engine.connect() as conn:
        stored = stored_values(conn, 1)
    assert stored.index.equals(hours) and stored.tolist() == [1.0, 2.0, 30.0, 4.0]


def test_hours_are_a_frequency_with_a_day_and_a_week_as_seasons():
    hourly = FREQUENCIES["H"]
    assert (hourly.name, hourly.season_length, hourly.default_horizon) == ("hours", (24, 168), 48)
    assert season_length("H") == (24, 168) and season_length("H", 12) == 12 and horizon("H") == 48
    assert next_dates(datetime(2024, 2, 29, 22), "H", 4) == [
        datetime(2024, 2, 29, 23),
        date(2024, 3, 1),
        datetime(2024, 3, 1, 1),
        datetime(2024, 3, 1, 2),
    ]
    assert next_dates(date(2024, 3, 1), "H", 2) == [datetime(2024, 3, 1, 1), datetime(2024, 3, 1, 2)]
    # across a change of daylight saving time: every hour of the clock, none skipped or repeated
    assert len({stamp_text(t) for t in next_dates(datetime(2024, 3, 9, 12), "H", 48)}) == 48


@pytest.mark.parametrize(
    "freq,expected",
    [
        ("h", "H"),  # an hour exactly
        ("15min", "H"),
        ("30min", "H"),
        ("3601s", "B"),  # a second more than an hour: daily spacing (weekdays only, here)
        ("61min", "B"),
        ("90min", "B"),
        ("bars", "B"),  # a trading day's bars at 09:30, 11:00 and 16:00
        ("4h", "D"),
        ("B", "B"),
        ("D", "D"),
        ("MS", "M"),
    ],
)
def test_an_hour_apart_or_less_is_hourly_and_a_few_bars_a_day_are_daily(freq, expected):
    if freq == "bars":
        days = pd.bdate_range("2024-01-01", periods=20)
        stamps = pd.DatetimeIndex([d + pd.Timedelta(minutes=m) for d in days for m in (570, 660, 960)])
    else:
        stamps = pd.date_range("2024-01-01 09:00", periods=60, freq=freq)
    assert infer_frequency(list(stamps)) == expected
    mixed = [canonical(t) for t in stamps]  # as stored: an hourly series' midnights are dates
    assert infer_frequency(mixed) == expected


def frame_of(stamps, values, **attrs) -> pd.DataFrame:
    frame = pd.DataFrame({"ts": pd.DatetimeIndex(stamps), "value": np.asarray(values, dtype=float)})
    frame.attrs.update(attrs)
    return frame


def test_at_grain_keeps_the_last_bar_of_each_hour_or_day():
    stamps = ["2024-03-01 09:15", "2024-03-01 09:45", "2024-03-01 10:05", "2024-03-02 16:00"]
    raw = frame_of(stamps, [1, 2, 3, 4], unparseable_dates=1)
    spec = SeriesSpec(key="csv:x", source="csv", symbol="x")
    hours, notes = validate_observations(at_grain(raw.copy(), True), spec, date(2024, 3, 5), hourly=True)
    assert [stamp_text(t) for t in hours["ts"]] == ["2024-03-01 09:00:00", "2024-03-01 10:00:00", "2024-03-02 16:00:00"]
    assert hours["value"].tolist() == [2.0, 3.0, 4.0]
    assert "collapsed 1 duplicate hour(s), keeping the last bar of each hour" in notes
    assert at_grain(raw.copy(), True).attrs == {"unparseable_dates": 1}  # what validation reads from the fetch
    grained = at_grain(raw, True)
    assert grained is raw and raw["ts"].dt.minute.eq(0).all()  # in place: the fetch is not copied
    days, notes = validate_observations(at_grain(raw.copy(), False), spec, date(2024, 3, 5))
    assert [stamp_text(t) for t in days["ts"]] == ["2024-03-01", "2024-03-02"] and days["value"].tolist() == [3.0, 4.0]
    assert "collapsed 1 duplicate date(s), keeping the last bar of each day" not in notes
    assert "collapsed 2 duplicate date(s), keeping the last bar of each day" in notes


def test_stamps_after_tomorrow_are_refused_hours_and_dates_alike():
    today = date(2024, 3, 1)
    spec = SeriesSpec(key="csv:x", source="csv", symbol="x")
    hours = frame_of(["2024-03-02 23:00", "2024-03-03 00:00", "2024-03-03 05:00"], [1, 2, 3])
    clean, notes = validate_observations(at_grain(hours, True), spec, today, hourly=True)
    assert clean["value"].tolist() == [1.0] and "refused 2 stamp(s) in the future" in notes
    days = frame_of(["2024-03-02", "2024-03-03"], [1, 2])
    clean, notes = validate_observations(at_grain(days, False), spec, today)
    assert clean["value"].tolist() == [1.0] and "refused 1 date(s) in the future" in notes


def test_the_grain_is_the_frequency_when_known_else_what_the_stamps_say():
    hours = pd.date_range("2024-03-01", periods=10, freq="h")
    days = pd.date_range("2024-03-01", periods=10, freq="D")
    fetched_hours, fetched_days = frame_of(hours, range(10)), frame_of(days, range(10))
    stored_hours = [canonical(t) for t in hours[-3:][::-1]]  # the newest three, newest first, as read
    stored_days = [canonical(t) for t in days[-3:][::-1]]
    # nothing stored yet: the stamps fetched say
    assert hourly_grain(None, [], fetched_hours) and not hourly_grain(None, [], fetched_days)
    assert not hourly_grain(None, [], fetched_hours.iloc[:2])  # two stamps say nothing yet: a day
    assert hourly_grain(None, [], fetched_hours.iloc[:3])
    assert hourly_grain(None, stored_hours[:2], fetched_hours)  # fewer than three stored: the fetch
    # stored: what is stored says, whatever the fetch brings, unless the history is re-fetched in full
    assert hourly_grain(None, stored_hours, fetched_days) and not hourly_grain(None, stored_days, fetched_hours)
    assert hourly_grain(None, stored_days, fetched_hours, full=True)
    assert not hourly_grain(None, stored_hours, fetched_days, full=True)
    # a configured frequency: always
    assert hourly_grain("H", stored_days, fetched_days) and not hourly_grain("D", stored_hours, fetched_hours)
    assert not hourly_grain("B", [], fetched_hours)
    # the most recent fetched stamps decide: a history that turned hourly lately is hourly
    turned = frame_of(list(days) + list(pd.date_range("2024-03-11", periods=200, freq="h")), range(210))
    assert hourly_grain(None, [], turned)


def test_a_table_column_with_times_shows_its_midnights_with_the_time_too():
    rows = [{"k": "a", "ts": datetime(2024, 2, 29, 23)}, {"k": "a", "ts": date(2024, 3, 1)}]
    table = render(rows, ["k", "ts"]).splitlines()
    assert table[2:] == ["a  2024-02-29 23:00", "a  2024-03-01 00:00"]
    assert render(rows, ["k", "ts"], "csv").splitlines()[1:] == ["a,2024-02-29T23:00:00", "a,2024-03-01T00:00:00"]
    assert render([{"ts": date(2024, 3, 1)}], ["ts"]).splitlines()[2] == "2024-03-01"  # dates alone stay dates
