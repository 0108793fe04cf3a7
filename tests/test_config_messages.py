"""What a config mistake says, word for word: the likeliest key meant, a malformed key, a series
table's settings (a table, lengths, season, horizon, calendar, another source's setting), and a
crontab step. tests/test_config.py checks that each mistake names its key; these pin the rest of
the line, which is what a user reads."""

from __future__ import annotations

import re

import pytest

from tickcast.service.config import settings_from_dict
from tickcast.service.cron import crontab_weekdays
from tickcast.service.errors import ConfigError
from tickcast.service.keys import parse_key
from tickcast.service.sources import SOURCES

from .support.source_kinds import ecb_kind


def refused(raw: dict) -> str:
    with pytest.raises(ConfigError) as info:
        settings_from_dict(raw, env={})
    return str(info.value)


def csv_series(**settings) -> dict:
    return {"series": [{"key": "csv:x", "path": "x.csv", **settings}]}


def test_an_unknown_series_setting_lists_the_known_ones_and_the_likeliest_one_meant():
    message = refused(csv_series(horizn=3))
    known = re.fullmatch(r"unknown setting 'series\[0\]\.horizn' \(known: (.+)\); did you mean 'horizon'\?", message)
    assert known, message
    assert {"horizon", "path", "url", "frequency", "season_length", "calendar"} <= set(known[1].split(", "))
    assert "did you mean" not in refused(csv_series(zzzz=3))  # nothing close: no guess


def test_a_quoted_key_with_dots_is_compared_whole():
    message = refused({"model": {"hidden.size": 8}})
    assert message.startswith("unknown setting 'model.hidden.size' (known: ")
    assert message.endswith("; see models/README.md); did you mean 'hidden_size'?")


def test_an_unknown_source_names_the_known_ones():
    names = ", ".join(SOURCES)
    with pytest.raises(ConfigError) as info:
        parse_key("nasdaq:AAPL")
    assert str(info.value) == f"malformed series key 'nasdaq:AAPL': unknown source 'nasdaq' (expected one of {names})"
    with pytest.raises(ConfigError) as info:
        parse_key("AAPL")
    assert str(info.value) == f"malformed series key 'AAPL': expected <source>:<symbol> with source one of {names}"


def test_a_symbol_is_everything_after_the_first_colon():
    with pytest.raises(ConfigError) as info:  # "A:B" is not a Yahoo symbol: the source is still yahoo
        parse_key("yahoo:A:B")
    assert str(info.value).startswith("malformed series key 'yahoo:A:B': expected ")
    assert "unknown source" not in str(info.value)


def test_a_series_entry_must_be_a_table():
    assert refused({"series": ["yahoo:SPY"]}) == (
        "setting 'series[0]' must be a table ([[series]] with key = \"source:symbol\")"
    )


def test_a_name_may_take_the_whole_column():
    (spec,) = settings_from_dict(csv_series(name="n" * 200), env={}).series
    assert spec.name == "n" * 200


def test_a_season_length_of_zero_means_detect_it_and_a_horizon_must_be_positive_and_bounded():
    (spec,) = settings_from_dict(csv_series(season_length=0, horizon=400), env={}).series
    assert (spec.season_length, spec.horizon) == (0, 400)
    assert refused(csv_series(season_length=-1)) == "setting 'series[0].season_length' must be >= 0, got -1"
    assert refused(csv_series(horizon=0)) == "setting 'series[0].horizon' must be > 0, got 0"
    assert refused(csv_series(horizon=401)) == "setting 'series[0].horizon' must be at most 400, got 401"
    assert refused(csv_series(horizon="5")) == "setting 'series[0].horizon' must be an integer, got '5'"


def test_a_series_calendar_must_name_one():
    (spec,) = settings_from_dict(csv_series(calendar="XLON"), env={}).series
    assert spec.calendar == "XLON"
    message = refused(csv_series(calendar="xlon"))
    assert message.startswith("setting 'series[0].calendar' must be an exchange calendar code")
    assert message.endswith("got 'xlon' (did you mean 'XLON'?)")


def test_a_setting_two_kinds_take_names_both(monkeypatch):
    monkeypatch.setitem(SOURCES, "ecb", ecb_kind(("path",)))
    assert refused({"series": [{"key": "yahoo:SPY", "path": "x.csv"}]}) == (
        "setting 'series[0].path' only applies to csv: or ecb: series, not yahoo:SPY"
    )


@pytest.mark.parametrize("field,days", [("*/1", "sun,mon,tue,wed,thu,fri,sat"), ("*/7", "sun"), ("1-5/4", "mon,fri")])
def test_a_weekday_step_takes_one_to_seven(field, days):
    assert crontab_weekdays(field) == days


@pytest.mark.parametrize("step", ["0", "8", "x", ""])
def test_a_weekday_step_outside_one_to_seven_says_so(step):
    with pytest.raises(ValueError) as info:
        crontab_weekdays(f"1-5/{step}")
    assert str(info.value) == f"a step must be a number from 1 to 7, got {step!r}"
