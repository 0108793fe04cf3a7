"""`schedule.cron` means what it means in crontab (weekday numbers included), with an optional
leading second; the config check and `tickcast serve` read it with the same parser."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tickcast.service.config import load_settings
from tickcast.service.cron import cron_trigger, crontab_weekdays
from tickcast.service.errors import ConfigError
from tickcast.service.scheduler import last_fire_time


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
