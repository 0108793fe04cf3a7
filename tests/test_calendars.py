"""Trading calendars: target dates skip exchange holidays and keep early closes; the calendar of a
series comes from the config, the exchange Yahoo reports, or its source; names are checked when the
config loads, without importing exchange_calendars."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import subprocess
import sys
from datetime import date

import exchange_calendars as xc
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from tickcast.service import schema
from tickcast.service.calendars import _dict_keys, _exchange_calendar_names, calendar_names, next_trading_days
from tickcast.service.cli import main
from tickcast.service.errors import ConfigError
from tickcast.service.frequencies import next_dates
from tickcast.service.run.cycle import run_cycle

from .support.fake_yahoo import bars_from_closes
from .support.small_model import FAST_MODEL
from .support.tables import ROWS_PER_STEP, table

# The tests build calendars themselves; exchange_calendars' deprecation noise under pandas 3 is not ours.
pytestmark = pytest.mark.filterwarnings("ignore:Series.values returning")


def days(*isos: str) -> list[date]:
    return [date.fromisoformat(d) for d in isos]


@pytest.mark.parametrize(
    "calendar,last,expected",
    [
        # New Year's Day
        ("XNYS", "2018-12-31", ["2019-01-02", "2019-01-03", "2019-01-04", "2019-01-07"]),
        # Good Friday (not a US federal holiday, an NYSE one)
        ("XNYS", "2024-03-28", ["2024-04-01", "2024-04-02", "2024-04-03", "2024-04-04"]),
        # Thanksgiving; the Friday after is an early close (13:00), still a trading day
        ("XNYS", "2024-11-27", ["2024-11-29", "2024-12-02", "2024-12-03", "2024-12-04"]),
        # Christmas Eve is an early close, Christmas a holiday
        ("XNYS", "2024-12-20", ["2024-12-23", "2024-12-24", "2024-12-26", "2024-12-27"]),
        # a one-off closure: the national day of mourning for President Carter
        ("XNYS", "2025-01-07", ["2025-01-08", "2025-01-10", "2025-01-13", "2025-01-14"]),
        # London: Christmas and Boxing Day closed; Christmas Eve and New Year's Eve early closes
        ("XLON", "2024-12-20", ["2024-12-23", "2024-12-24", "2024-12-27", "2024-12-30", "2024-12-31", "2025-01-02"]),
        # London's Easter Monday, which New York trades
        ("XLON", "2024-03-28", ["2024-04-02", "2024-04-03"]),
        # Tokyo: closed from 31 December to 3 January
        ("XTKS", "2024-12-27", ["2024-12-30", "2025-01-06", "2025-01-07"]),
        # US federal business days (FRED): New Year, Columbus Day; Good Friday is a business day
        ("us-federal", "2018-12-31", ["2019-01-02", "2019-01-03"]),
        ("us-federal", "2024-10-11", ["2024-10-15", "2024-10-16"]),
        ("us-federal", "2024-03-28", ["2024-03-29", "2024-04-01"]),
        # markets that never close
        ("24/7", "2024-12-27", ["2024-12-28", "2024-12-29", "2024-12-30"]),
    ],
)
def test_trading_days_skip_holidays_and_keep_early_closes(calendar, last, expected):
    assert next_trading_days(date.fromisoformat(last), calendar, len(expected)) == days(*expected)


def test_early_closes_are_target_dates():
    nyse = xc.get_calendar("XNYS", start="2024-01-01", end="2024-12-31")
    early = [d.date() for d in nyse.early_closes]
    assert early == days("2024-07-03", "2024-11-29", "2024-12-24")
    for close in early:
        (day_before,) = [d.date() for d in nyse.sessions if d.date() < close][-1:]
        assert next_trading_days(day_before, "XNYS", 1) == [close]


def test_a_long_horizon_and_dates_the_calendar_does_not_cover():
    year = next_trading_days(date(2023, 12, 29), "XNYS", 252)
    sessions = xc.get_calendar("XNYS", start="2024-01-01", end="2024-12-31").sessions
    assert year == [d.date() for d in sessions][:252]
    # Shanghai's calendar is computed only to the end of next year: beyond it, weekdays
    far = next_trading_days(date(2031, 6, 27), "XSHG", 3)
    assert far == days("2031-06-30", "2031-07-01", "2031-07-02")


def test_next_dates_uses_the_calendar_for_trading_day_series_only():
    last = date(2018, 12, 31)
    assert next_dates(last, "B", 2, "XNYS") == days("2019-01-02", "2019-01-03")
    assert next_dates(last, "B", 2, None) == days("2019-01-01", "2019-01-02")  # weekdays
    assert next_dates(last, "D", 2, "XNYS") == days("2019-01-01", "2019-01-02")  # every day
    assert next_dates(date(2018, 11, 1), "M", 2, "XNYS") == days("2018-12-01", "2019-01-01")


def test_the_names_read_without_importing_are_the_packages():
    calendar_names.cache_clear()  # computed afresh, not by an earlier test
    assert calendar_names() == set(xc.get_calendar_names(include_aliases=True)) | {"us-federal"}


def found_as(monkeypatch, spec) -> None:
    """importlib finds exchange_calendars as ``spec`` (without importing it)."""
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: spec if name == "exchange_calendars" else find_spec(name, *a)
    )


def test_the_names_come_from_the_package_s_source_without_importing_it(monkeypatch):
    expected = set(xc.get_calendar_names(include_aliases=True))
    found_as(monkeypatch, importlib.util.find_spec("exchange_calendars"))
    monkeypatch.setitem(sys.modules, "exchange_calendars", None)  # "import exchange_calendars" now fails
    assert _exchange_calendar_names() == expected


@pytest.mark.parametrize(
    "source",
    [None, "def broken(:\n", "_default_calendar_factories = make()\n"],
    ids=["no calendar_utils.py", "not Python", "no dict literal"],
)
def test_a_layout_not_recognised_asks_the_package_itself(monkeypatch, tmp_path, source):
    if source is not None:
        (tmp_path / "calendar_utils.py").write_text(source)
    spec = importlib.machinery.ModuleSpec("exchange_calendars", None, is_package=True)
    spec.submodule_search_locations = [str(tmp_path)]
    found_as(monkeypatch, spec)
    assert _exchange_calendar_names() == set(xc.get_calendar_names(include_aliases=True))


def test_a_package_installed_as_one_module_asks_the_package_itself(monkeypatch):
    found_as(monkeypatch, importlib.machinery.ModuleSpec("exchange_calendars", None))  # no folder to read
    assert _exchange_calendar_names() == set(xc.get_calendar_names(include_aliases=True))


def test_the_names_are_the_string_keys_of_the_two_dicts_assigned_once():
    text = (
        "_default_calendar_factories = {'XNYS': a, 'XLON': b, 3: c}\n"
        "_default_calendar_aliases: dict[str, str] = {'NYSE': 'XNYS', **more}\n"
        "other = {'NOPE': 1}\n"
        "_default_calendar_factories = _default_calendar_aliases = {'TWICE': 1}\n"
        "_default_calendar_aliases = ['LIST']\n"
        "def f():\n    _default_calendar_factories = {'INSIDE': 1}\n"
    )
    assert _dict_keys(text, ("_default_calendar_factories", "_default_calendar_aliases")) == {"XNYS", "XLON", "NYSE"}
    assert _dict_keys(text, ("other",)) == {"NOPE"}
    assert _dict_keys("", ("other",)) == set()


@pytest.mark.parametrize("value,hint", [("XNYZ", ""), ("xlon", "did you mean 'XLON'?"), ("", "")])
def test_an_unknown_calendar_stops_the_config_naming_the_key(make_settings, value, hint):
    with pytest.raises(ConfigError) as info:
        make_settings(f'[[series]]\nkey = "yahoo:VOD.L"\ncalendar = "{value}"\n')
    message = str(info.value)
    assert message.startswith("setting 'series[0].calendar' must be an exchange calendar code") and "\n" not in message
    assert hint in message


def test_a_bad_calendar_is_one_line_and_exit_1_for_every_command(tmp_path, capsys):
    config = tmp_path / "t.toml"
    config.write_text('[[series]]\nkey = "yahoo:SPY"\ncalendar = "NYSE2"\n')
    for command in (["health"], ["forecasts"], ["ingest"]):
        assert main(["--config", str(config), "--db", f"sqlite:///{tmp_path / 'x.db'}", *command]) == 1
        err = capsys.readouterr().err
        assert err.startswith("tickcast: setting 'series[0].calendar' must be") and err.count("\n") == 1


def test_help_and_health_do_not_import_exchange_calendars(tmp_path):
    """Calendar names are checked when any command loads the config, but only computing target dates
    imports the package (a second of start-up)."""
    config = tmp_path / "t.toml"
    config.write_text('[watchlist]\nsample = ["sp500"]\n[[series]]\nkey = "yahoo:VOD.L"\ncalendar = "XLON"\n')
    db = f"sqlite:///{tmp_path / 'x.db'}"
    assert main(["--config", str(config), "--db", db, "init"]) == 0
    for argv in (["--help"], ["--config", str(config), "--db", db, "health"]):
        code = (
            "import sys; from tickcast.service.cli import main\n"
            f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('exchange_calendars', 'pandas')))"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert done.stdout.strip().splitlines()[-1] == "[]", (argv, done.stdout, done.stderr)


# --- end to end: a run over the bundled and Yahoo-stand-in series ------------------------------


def sessions(calendar: str, start: str, end: str) -> pd.DatetimeIndex:
    return xc.get_calendar(calendar, start=start, end=end).sessions


def walk(index: pd.DatetimeIndex, seed: int, base: float = 100.0) -> pd.Series:
    rng = np.random.default_rng(seed)
    return pd.Series(base * np.exp(np.cumsum(rng.normal(0, 0.01, len(index)))), index=index)


def test_a_run_gives_holiday_free_target_dates_on_every_calendar(fresh_db, make_settings, fake_yahoo, db_url):
    fake_yahoo.add("SPY", bars_from_closes(walk(sessions("XNYS", "2024-01-02", "2024-11-27"), 1)))
    fake_yahoo.add(
        "VOD.L",
        bars_from_closes(walk(sessions("XLON", "2024-01-02", "2024-12-20"), 2)),
        timezone="Europe/London",
        exchange="LSE",
    )
    fake_yahoo.add(
        "7203.T",
        bars_from_closes(walk(sessions("XTKS", "2024-01-04", "2024-12-27"), 3)),
        timezone="Asia/Tokyo",
        exchange="JPX",
    )
    # Yahoo says NYSE Arca; the config says London (a made-up listing): the config wins
    fake_yahoo.add("ODD", bars_from_closes(walk(sessions("XNYS", "2024-01-02", "2024-12-20"), 4)))
    settings = make_settings(
        '[watchlist]\nsample = ["sp500", "wti", "core-cpi"]\nyahoo = ["SPY", "VOD.L", "7203.T"]\n'
        '[[series]]\nkey = "yahoo:ODD"\ncalendar = "XLON"\n' + FAST_MODEL,
        db_url=db_url,
        yahoo_base_url=fake_yahoo.base_url,
    )
    engine = fresh_db()
    summary = run_cycle(engine, settings)
    assert summary.status == "ok", [(o.key, o.error) for o in summary.outcomes]
    with engine.connect() as conn:
        calendars = dict(conn.execute(sa.select(schema.series.c.key, schema.series.c.calendar)).all())
        rows = conn.execute(
            sa.select(
                schema.series.c.key, schema.forecasts.c.target_ts, schema.forecasts.c.model, schema.forecasts.c.level
            )
            .join(schema.forecasts, schema.forecasts.c.series_id == schema.series.c.id)
            .order_by(schema.series.c.key, schema.forecasts.c.model, schema.forecasts.c.level, schema.forecasts.c.step)
        ).all()
    assert calendars == {
        "sample:sp500": "XNYS",
        "sample:wti": "XNYS",
        "sample:core-cpi": None,
        "yahoo:SPY": "XNYS",
        "yahoo:VOD.L": "XLON",
        "yahoo:7203.T": "XTKS",
        "yahoo:ODD": "XLON",
    }
    by_model: dict[tuple, list[date]] = {}
    for key, target, model, level in rows:
        by_model.setdefault((key, model, level), []).append(target)
    targets = {key: dates for (key, model, level), dates in by_model.items() if (model, level) == ("published", 0.8)}
    # every model's forecasts at every level have the published forecast's target dates
    assert {(key, dates == targets[key]) for (key, _, _), dates in by_model.items()} == {(k, True) for k in targets}
    assert targets == {
        "sample:sp500": days("2019-01-02", "2019-01-03", "2019-01-04", "2019-01-07", "2019-01-08"),
        "sample:wti": days("2019-01-04", "2019-01-07", "2019-01-08", "2019-01-09", "2019-01-10"),
        # monthly: the M competitions' 18 months, month starts kept
        "sample:core-cpi": [date(2018 + (10 + k) // 12, (10 + k) % 12 + 1, 1) for k in range(1, 19)],
        "yahoo:SPY": days("2024-11-29", "2024-12-02", "2024-12-03", "2024-12-04", "2024-12-05"),
        "yahoo:VOD.L": days("2024-12-23", "2024-12-24", "2024-12-27", "2024-12-30", "2024-12-31"),
        "yahoo:7203.T": days("2024-12-30", "2025-01-06", "2025-01-07", "2025-01-08", "2025-01-09"),
        "yahoo:ODD": days("2024-12-23", "2024-12-24", "2024-12-27", "2024-12-30", "2024-12-31"),
    }
    assert len(table(engine, "forecasts")) == (6 * 5 + 18) * ROWS_PER_STEP  # a trading week for prices
