"""The terminal's tables (service/tables.py) on their own: how each kind of cell is shown, the
units' formatters, csv and json keeping the stored numbers, alignment."""

from __future__ import annotations

import json
import math
from datetime import date, datetime

import pytest

from tickcast.service.tables import UNIT_FORMATS, fixed, render


@pytest.mark.parametrize(
    "value,shown",
    [
        (None, ""),
        (math.nan, ""),
        (math.inf, ""),
        (1234.5678, "1,234.57"),
        (1000.0, "1,000.00"),
        (999.994, "999.99"),
        (1.0, "1.00"),
        (1.5, "1.50"),
        (0.123456, "0.1235"),
        (-0.5, "-0.5"),
        (-1234.5, "-1,234.50"),
        (7, "7"),
        ("csv:a", "csv:a"),
        (date(2024, 3, 1), "2024-03-01"),
        (datetime(2024, 3, 1, 10, 30, 15), "2024-03-01 10:30"),
    ],
)
def test_each_kind_of_cell(value, shown):
    table = render([{"v": value}], ["v"]).split("\n")
    assert table[2].strip() == shown
    assert table[0].strip() == "v" and set(table[1]) == {"-"}


def test_unit_formatters_show_the_stored_number_in_its_unit():
    row = {"change_pct": 1.5, "mape_pct": 2.0, "skill": 0.05, "coverage": 0.8, "level": 0.95}
    shown = render([row], list(row), formatters=UNIT_FORMATS).splitlines()[2].split()
    assert shown == ["+1.50", "2.00", "+0.050", "0.800", "0.95"]
    assert fixed(2)(None) == "" and fixed(2)(math.nan) == "" and fixed(1, signed=True)(-2.0) == "-2.0"
    assert fixed(3)(1.0) == "1.000" and fixed(2, signed=True)(1.5) == "+1.50" and fixed(2)(1.5) == "1.50"


def test_numbers_align_right_and_text_left():
    rows = [{"k": "a", "n": 1.0}, {"k": "bbb", "n": 100.0}]
    lines = render(rows, ["k", "n"]).splitlines()
    assert lines == ["k         n", "---  ------", "a      1.00", "bbb  100.00"]
    assert render([], ["k", "n"]).splitlines() == ["k  n", "-  -"]


def test_csv_and_json_keep_the_stored_numbers():
    rows = [{"k": "a", "x": 1.23456789, "bad": math.inf, "d": date(2024, 3, 1), "none": None}]
    columns = ["k", "x", "bad", "d", "none"]
    assert render(rows, columns, "csv").splitlines() == ["k,x,bad,d,none", "a,1.23456789,,2024-03-01,"]
    assert json.loads(render(rows, columns, "json")) == [
        {"k": "a", "x": 1.23456789, "bad": None, "d": "2024-03-01", "none": None}
    ]
    assert render(rows, columns, "json").startswith('[\n  {\n    "k"')  # indented for people too


def test_the_default_format_is_the_aligned_table():
    rows = [{"k": "a", "n": 1.0}]
    assert render(rows, ["k", "n"]) == render(rows, ["k", "n"], "table") == "k     n\n-  ----\na  1.00"
    with pytest.raises(ValueError, match="unknown format 'jsno' \\(known: table, csv, json\\)"):
        render(rows, ["k", "n"], "jsno")


def test_a_table_keeps_the_alignment_at_the_start_of_a_line_and_no_trailing_spaces():
    rows = [{"n": 1.0, "k": "a"}, {"n": 100.0, "k": "bbbb"}]
    assert render(rows, ["n", "k"]).split("\n") == ["     n  k", "------  ----", "  1.00  a", "100.00  bbbb"]


@pytest.mark.parametrize("last", ["ends in a space ", "ends in X", "plain"])
def test_csv_is_unix_lines_ending_exactly_with_the_last_value(last):
    rows = [{"k": "a", "note": "first"}, {"k": "b", "note": last}]
    text = render(rows, ["k", "note"], "csv")
    assert text == f"k,note\na,first\nb,{last}"  # no \r, no newline after the last row, the value whole
