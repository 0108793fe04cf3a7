"""The schedule across clock changes: the last fire time before now (what `serve` catches up) on
both sides of both DST changes, in two time zones, hourly and daily; `tickcast serve` as a real
process in a zone whose clocks changed two days ago; SIGTERM during start-up.

A regression of the search that stepped in local time hangs instead of failing: the searches
here run under an alarm, and the daemons under a deadline, so it fails."""

from __future__ import annotations

import signal
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest

from tickcast.service.cron import cron_trigger
from tickcast.service.scheduler import last_fire_time

from ..support.daemon import Daemon
from ..support.tzfile import STANDARD, SUMMER, write_zone
from .conftest import seeded_subset

UTC = UTC


@contextmanager
def deadline(seconds: float):
    """Fail, instead of hanging, when the body takes longer (the search is pure Python, so SIGALRM
    interrupts even an endless loop)."""

    def expired(*_):
        raise TimeoutError(f"still searching after {seconds} s: the search does not end")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


# (zone, cron, now, the last fire time at or before now, in UTC). New York: EST (UTC-5) / EDT
# (UTC-4), spring forward 2026-03-08 07:00 UTC, fall back 2026-11-01 06:00 UTC (01:00-02:00 local
# happens twice). Berlin: CET (UTC+1) / CEST (UTC+2), spring forward 2026-03-29 01:00 UTC, fall
# back 2026-10-25 01:00 UTC (02:00-03:00 local happens twice).
CASES = [
    # autumn, daily, in the repeated hour: the second 01:30 is the later one
    ("America/New_York", "30 1 * * *", utc(2026, 11, 1, 12), utc(2026, 11, 1, 6, 30)),
    ("America/New_York", "30 1 * * *", utc(2026, 11, 1, 6, 0), utc(2026, 11, 1, 5, 30)),  # between the two
    ("America/New_York", "30 1 * * *", utc(2026, 11, 20, 12), utc(2026, 11, 20, 6, 30)),  # weeks after
    ("America/New_York", "30 17 * * mon-fri", utc(2026, 11, 2, 12), utc(2026, 10, 30, 21, 30)),  # a Monday
    # autumn, hourly: every hour in UTC, the repeated one included
    ("America/New_York", "0 * * * *", utc(2026, 11, 1, 5, 59), utc(2026, 11, 1, 5)),
    ("America/New_York", "0 * * * *", utc(2026, 11, 1, 6, 10), utc(2026, 11, 1, 6)),
    ("America/New_York", "0 * * * *", utc(2026, 11, 20, 12, 10), utc(2026, 11, 20, 12)),
    ("America/New_York", "30 * * * *", utc(2026, 11, 1, 7, 0), utc(2026, 11, 1, 6, 30)),
    # spring, daily and hourly: 02:xx does not exist that night
    ("America/New_York", "30 3 * * *", utc(2026, 3, 8, 12), utc(2026, 3, 8, 7, 30)),
    ("America/New_York", "30 1 * * *", utc(2026, 3, 8, 12), utc(2026, 3, 8, 6, 30)),
    ("America/New_York", "0 * * * *", utc(2026, 3, 8, 7, 10), utc(2026, 3, 8, 7)),
    ("America/New_York", "0 * * * *", utc(2026, 3, 8, 6, 59), utc(2026, 3, 8, 6)),
    ("America/New_York", "30 1 * * *", utc(2026, 3, 20, 12), utc(2026, 3, 20, 5, 30)),  # weeks after
    # Berlin, the same changes on other dates and at other hours
    ("Europe/Berlin", "30 2 * * *", utc(2026, 10, 25, 12), utc(2026, 10, 25, 1, 30)),
    ("Europe/Berlin", "30 2 * * *", utc(2026, 10, 25, 1, 0), utc(2026, 10, 25, 0, 30)),
    ("Europe/Berlin", "30 2 * * *", utc(2026, 11, 15, 12), utc(2026, 11, 15, 1, 30)),
    ("Europe/Berlin", "0 * * * *", utc(2026, 10, 25, 1, 5), utc(2026, 10, 25, 1)),
    ("Europe/Berlin", "15 * * * *", utc(2026, 10, 25, 0, 50), utc(2026, 10, 25, 0, 15)),
    ("Europe/Berlin", "0 * * * *", utc(2026, 11, 15, 12, 10), utc(2026, 11, 15, 12)),
    ("Europe/Berlin", "30 3 * * *", utc(2026, 3, 29, 12), utc(2026, 3, 29, 1, 30)),
    ("Europe/Berlin", "0 * * * *", utc(2026, 3, 29, 1, 10), utc(2026, 3, 29, 1)),
    ("Europe/Berlin", "30 2 * * *", utc(2026, 4, 10, 12), utc(2026, 4, 10, 0, 30)),
]


@pytest.mark.parametrize("zone,cron,now,expected", CASES)
def test_last_fire_time_across_both_clock_changes(zone, cron, now, expected, ledger):
    trigger = cron_trigger(cron, zone)
    with deadline(5):
        found = last_fire_time(trigger, now)
    assert found is not None and found.astimezone(UTC) == expected
    assert found.astimezone(UTC) <= now
    ledger.record("clock: DST change in the schedule")


@pytest.mark.parametrize(
    "cron,now,expected",
    [
        ("* * * * *", utc(2026, 11, 1, 6, 0, 30), utc(2026, 11, 1, 6, 0)),  # every minute: the smallest window
        ("0 0 29 2 *", utc(2026, 11, 1), None),  # nothing within the 40 days looked back
        ("0 0 1 * *", utc(2026, 11, 20), utc(2026, 11, 1, 4)),  # monthly: the widest window
    ],
)
def test_the_search_is_bounded_for_any_schedule(cron, now, expected):
    with deadline(5):
        found = last_fire_time(cron_trigger(cron, "America/New_York"), now)
    assert (found.astimezone(UTC) if found else None) == expected


# --- `tickcast serve` in a zone whose clocks changed two days ago -----------------------------------


def _zone_dir(tmp_path, autumn: bool):
    """Test/Changed: UTC-4 then UTC-5 (autumn: 02:00 becomes 01:00, two days ago at 06:00 UTC) or
    UTC-5 then UTC-4 (spring: 02:00 becomes 03:00, two days ago at 07:00 UTC)."""
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if autumn:
        changes = [(midnight - timedelta(days=200), SUMMER), (midnight - timedelta(days=2, hours=-6), STANDARD)]
        footer = "TST5"
    else:
        changes = [(midnight - timedelta(days=2, hours=-7), SUMMER)]
        footer = "TDT4"
    root = tmp_path / "zoneinfo"
    write_zone(root, "Test/Changed", [(int(when.timestamp()), kind) for when, kind in changes], footer)
    return root


def _expected_catch_up(cron: str, offset_hours: int) -> datetime:
    """The last fire time by plain arithmetic: the zone has kept a fixed offset since the change."""
    now = datetime.now(UTC)
    if cron.startswith("0 *"):
        return now.replace(minute=0, second=0, microsecond=0)
    minute, hour = (int(x) for x in cron.split()[:2])
    fire = now.replace(hour=(hour - offset_hours) % 24, minute=minute, second=0, microsecond=0)
    return fire if fire <= now else fire - timedelta(days=1)


SERVE_CASES = seeded_subset(
    [
        ("autumn", "0 * * * *", -5),
        ("autumn", "30 1 * * *", -5),  # 01:30 happened twice two days ago
        ("spring", "0 * * * *", -4),
        ("spring", "30 2 * * *", -4),  # 02:30 did not happen two days ago
    ],
    k=2,
)


@pytest.mark.parametrize("case", SERVE_CASES, ids=lambda c: f"{c[0]}-{c[1].replace(' ', '_')}")
def test_serve_starts_and_stops_after_a_clock_change(case, tmp_path, ledger):
    season, cron, offset = case
    zones = _zone_dir(tmp_path, autumn=season == "autumn")
    config = tmp_path / "tickcast.toml"
    config.write_text(f'[watchlist]\n[schedule]\ncron = "{cron}"\ntimezone = "Test/Changed"\n')
    env = {"TICKCAST_CONFIG": str(config), "TICKCAST_DATA_DIR": str(tmp_path / "data"), "PYTHONTZPATH": str(zones)}
    before = _expected_catch_up(cron, offset)
    daemon = Daemon(["serve"], env)
    try:
        line = daemon.wait_for("catching up the run scheduled for", timeout=60)
        daemon.wait_for("next scheduled run", timeout=60)
    finally:
        code = daemon.terminate(timeout=30) if daemon.proc.poll() is None else daemon.proc.returncode
        if daemon.proc.poll() is None:
            daemon.proc.kill()
    assert code == 0, daemon.lines
    caught_up = datetime.fromisoformat(line.rsplit(" ", 1)[1]).astimezone(UTC)
    assert caught_up in (before, _expected_catch_up(cron, offset))  # the hour may turn meanwhile
    assert any(line.endswith("stopped") for line in daemon.lines)
    ledger.record("clock: serve started just after a DST change")
