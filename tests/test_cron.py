"""`schedule.cron` means what it means in crontab (weekday numbers included), with an optional
leading second; the config check and `tickcast serve` read it with the same parser."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tickcast.service import schema
from tickcast.service.config import load_settings
from tickcast.service.cron import cron_trigger, crontab_weekdays
from tickcast.service.db import open_database, write_transaction
from tickcast.service.errors import ConfigError
from tickcast.service.scheduler import ScheduleError, last_fire_time, needs_catch_up


@pytest.mark.parametrize(
    "field,days",
    [
        ("*", "*"),
        ("mon-fri", "mon-fri"),  # names: the same to crontab and APScheduler, passed through
        ("1-5", "mon,tue,wed,thu,fri"),
        ("0", "sun"),
        ("7", "sun"),
        ("0,6", "sun,sat"),
        ("5-7", "sun,fri,sat"),
        ("fri-0", "sun,fri,sat"),
        ("*/2", "sun,tue,thu,sat"),
        ("1-5/2", "mon,wed,fri"),
        ("1/3", "mon,thu"),
        ("mon-3", "mon,tue,wed"),
    ],
)
def test_weekday_numbers_name_crontabs_days(field, days):
    assert crontab_weekdays(field) == days


@pytest.mark.parametrize("field", ["8", "3-1", "1-5/0", "1-5/x", "-1"])
def test_a_malformed_weekday_field_is_refused(field):
    with pytest.raises(ValueError):
        crontab_weekdays(field)


def next_fires(cron: str, start: datetime, n: int, zone: str = "UTC") -> list[datetime]:
    trigger = cron_trigger(cron, zone)
    fires, previous, now = [], None, start
    for _ in range(n):
        fire = trigger.get_next_fire_time(previous, now)
        fires.append(fire.astimezone(UTC))
        previous, now = fire, fire
    return fires


def test_weekdays_one_to_five_are_monday_to_friday():
    # 2026-12-06 is a Sunday: the next five runs are Monday 7th to Friday 11th, then Monday 14th
    fires = next_fires("30 17 * * 1-5", datetime(2026, 12, 6, tzinfo=UTC), 6)
    assert [f.strftime("%a %d %H:%M:%S") for f in fires] == [
        "Mon 07 17:30:00",
        "Tue 08 17:30:00",
        "Wed 09 17:30:00",
        "Thu 10 17:30:00",
        "Fri 11 17:30:00",
        "Mon 14 17:30:00",
    ]
    assert next_fires("0 9 * * 0", datetime(2026, 12, 1, tzinfo=UTC), 1)[0].strftime("%a") == "Sun"


def test_a_leading_second_fires_at_that_second_of_each_minute():
    fires = next_fires("15 */2 * * * *", datetime(2026, 12, 4, 10, 0, 20, tzinfo=UTC), 3)
    assert [f.strftime("%H:%M:%S") for f in fires] == ["10:02:15", "10:04:15", "10:06:15"]
    found = last_fire_time(cron_trigger("15 */2 * * * *", "UTC"), datetime(2026, 12, 4, 10, 3, tzinfo=UTC))
    assert found == datetime(2026, 12, 4, 10, 2, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    "cron,message",
    [
        ("*/5 30 17 * * *", "the second field must be one number from 0 to 59, got '*/5'"),
        ("60 30 17 * * *", "the second field must be one number from 0 to 59, got '60'"),
        ("30 17 * * 8", "a weekday is a number from 0 to 7 (0 and 7: Sunday) or a name such as mon, got '8'"),
        ("0 30 17 * * * *", "must have five fields (minute hour day month weekday), or six with the second first"),
    ],
)
def test_the_config_refuses_a_malformed_schedule_in_one_line(tmp_path, cron, message):
    cfg = tmp_path / "tickcast.toml"
    cfg.write_text(f'[schedule]\ncron = "{cron}"\n')
    with pytest.raises(ConfigError, match="^setting 'schedule.cron' ") as raised:
        load_settings(str(cfg), env={})
    assert message in str(raised.value) and "\n" not in str(raised.value)


# --- the last fire time, and the catch-up it decides ------------------------------------------------


def test_a_fire_time_exactly_now_is_the_last_one():
    trigger = cron_trigger("30 17 * * *", "America/New_York")
    at = datetime(2026, 12, 4, 22, 30, tzinfo=UTC)  # 17:30 in New York
    assert last_fire_time(trigger, at) == at
    assert last_fire_time(trigger, at - timedelta(microseconds=1)) == at - timedelta(days=1)


def test_a_cron_of_every_minute_is_found_within_its_hour():
    now = datetime(2026, 12, 4, 10, 0, 30, tzinfo=UTC)
    assert last_fire_time(cron_trigger("* * * * *", "UTC"), now) == datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
    # a monthly cron is searched for over the windows up to the lookback
    monthly = cron_trigger("0 6 1 * *", "UTC")
    assert last_fire_time(monthly, now) == datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
    assert last_fire_time(monthly, datetime(2026, 12, 1, 5, 0, tzinfo=UTC)) == datetime(2026, 11, 1, 6, tzinfo=UTC)
    assert last_fire_time(monthly, now, lookback=timedelta(days=2)) is None


def test_a_trigger_that_fires_more_often_than_once_a_minute_stops_the_search():
    from apscheduler.triggers.cron import CronTrigger

    now = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
    with pytest.raises(ScheduleError) as raised:
        last_fire_time(CronTrigger(second="*/10", timezone="UTC"), now)
    assert str(raised.value) == (
        f"the schedule {CronTrigger(second='*/10', timezone='UTC')} fired more than 62 times between "
        "2026-12-04T09:00:00+00:00 and 2026-12-04T10:00:00+00:00"
    )


class Stuck:
    """A trigger with a bug: its next fire time never moves."""

    def __init__(self, at: datetime):
        self.at = at

    def get_next_fire_time(self, previous, now):
        return self.at

    def __str__(self) -> str:
        return "stuck"


def test_a_trigger_that_does_not_advance_stops_the_search():
    at = datetime(2026, 12, 4, 9, 30, tzinfo=UTC)
    with pytest.raises(ScheduleError) as raised:
        last_fire_time(Stuck(at), datetime(2026, 12, 4, 10, 0, tzinfo=UTC))
    assert str(raised.value) == "the schedule stuck did not advance past 2026-12-04T09:30:00+00:00"


def test_the_catch_up_counts_runs_up_to_the_moment_it_is_asked_for(make_settings, sqlite_url):
    settings = make_settings(
        '[watchlist]\nsample = []\n[schedule]\ncron = "30 17 * * *"\ntimezone = "UTC"\n', db_url=sqlite_url
    )
    engine = open_database(sqlite_url)
    try:
        now = datetime(2026, 11, 21, 18, 0, tzinfo=UTC)
        missed = datetime(2026, 11, 21, 17, 30, tzinfo=UTC)
        later = now + timedelta(minutes=5)  # a run stored as started after now: a clock that was wrong
        with write_transaction(engine) as conn:
            conn.execute(
                sa.insert(schema.runs).values(
                    trigger="schedule", status="ok", started_at=later, finished_at=later + timedelta(minutes=1)
                )
            )
        assert needs_catch_up(engine, settings, now) == missed
        assert needs_catch_up(engine, settings, later) is None
    finally:
        engine.dispose()
