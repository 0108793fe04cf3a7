"""How a CSV becomes observations, in process: ``csv:`` files and text (``sources/csvfile.py``), the
columns shared by every source (``sources/frames.py``), FRED's CSV (``sources/fred.py``) and the
bundled samples (``sources/sample.py``). Each case is the text a file or server holds and the dates,
values or one-line reason it must give; ``tests/reliability`` runs the same kinds of input through
the CLI."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from tickcast.service.config import settings_from_dict
from tickcast.service.errors import ConfigError, SourceError
from tickcast.service.settings import SeriesSpec
from tickcast.service.sources.csvfile import CsvSource, parse_csv, parser_failure
from tickcast.service.sources.frames import to_observations
from tickcast.service.sources.fred import FredSource, parse_fred_csv
from tickcast.service.sources.sample import SAMPLES, SampleSource, load_sample
from tickcast.service.watchlist import with_source_defaults

from .support.httpserver import Reply

HINT = 'set date_format for the series (e.g. "%d/%m/%Y" or "%m/%d/%Y")'


def spec(**kw) -> SeriesSpec:
    return SeriesSpec(key="csv:x", source="csv", symbol="x", path="/nowhere.csv", **kw)


def days(frame: pd.DataFrame) -> list[str]:
    return list(frame["ts"].dt.strftime("%Y-%m-%d"))


def values(frame: pd.DataFrame) -> list:
    return [None if v != v else v for v in frame["value"]]


def refused(text: str, **kw) -> str:
    with pytest.raises(SourceError) as failure:
        parse_csv(text, spec(**kw), None)
    return str(failure.value)


# --- csv: columns -------------------------------------------------------------------------------


def test_columns_are_date_and_value_unless_named():
    frame = parse_csv("value,date\n1.5,2024-01-02\n2.5,2024-01-03\n", spec(), None)
    assert days(frame) == ["2024-01-02", "2024-01-03"] and values(frame) == [1.5, 2.5]
    frame = parse_csv("when,close,open\n2024-01-02,1.5,9\n", spec(date_column="when", value_column="close"), None)
    assert days(frame) == ["2024-01-02"] and values(frame) == [1.5]


def test_cells_are_read_as_text_so_compact_dates_are_dates():
    frame = parse_csv("date,value\n20240102,1\n20240103,2\n", spec(), None)
    assert days(frame) == ["2024-01-02", "2024-01-03"]


def test_spaces_after_commas_and_around_names_are_ignored():
    frame = parse_csv(" date , value\n2024-01-02, 1.5\n2024-01-03,   2\n", spec(), None)
    assert days(frame) == ["2024-01-02", "2024-01-03"] and values(frame) == [1.5, 2.0]


def test_a_quoted_cell_after_a_space_is_one_cell():
    frame = parse_csv('value, date\n1.5, "Jan 2, 2024"\n2.5, "Jan 3, 2024"\n', spec(), None)
    assert days(frame) == ["2024-01-02", "2024-01-03"] and values(frame) == [1.5, 2.5]


def test_rows_before_since_are_left_out(tmp_path, make_settings):
    text = "date,value\n2024-01-02,1\n2024-01-03,2\n2024-01-04,3\n"
    frame = parse_csv(text, spec(), pd.Timestamp("2024-01-03"))
    assert days(frame) == ["2024-01-03", "2024-01-04"] and values(frame) == [2.0, 3.0]
    path = tmp_path / "x.csv"
    path.write_text(text)
    frame = CsvSource(make_settings().sources).fetch(replace(spec(), path=str(path)), pd.Timestamp("2024-01-04"))
    assert days(frame) == ["2024-01-04"]


def test_a_csv_url_that_fails_names_the_series(http_server, make_settings):
    url = http_server.base_url + "/gone.csv"
    with pytest.raises(SourceError) as failure:
        CsvSource(make_settings().sources).fetch(replace(spec(), path=None, url=url), None)
    assert str(failure.value) == f"csv:x: HTTP 404 from {url}"


def test_only_the_service_s_own_markers_are_missing_values():
    """pandas' own list ("#NA", "1.#IND", "-nan", ...) is not used: only the markers tickcast names
    are missing; other text is a value that is not a number, which validation reports."""
    frame = parse_csv("date,value\n2024-01-02,#NA\n2024-01-03,1.#IND\n2024-01-04,.\n2024-01-05,n/a\n", spec(), None)
    assert values(frame) == [None, None, None, None]
    assert frame.attrs["not_numbers"] == (0, 1) and frame.attrs["not_number_example"] == "#NA"


def test_a_missing_column_names_the_columns_the_file_has():
    assert refused("a,b\n2024-01-02,1\n") == "csv:x: column 'date' not found (columns: a, b)"
    assert refused("date,b\n2024-01-02,1\n") == "csv:x: column 'value' not found (columns: date, b)"
    long = "c" * 30
    assert refused(f"{long},{long}d\n1,2\n") == f"csv:x: column 'date' not found (columns: {long}, <31 characters>)"
    many = ",".join(f"column{i:02d}" for i in range(12))
    assert refused(many + "\n" + ",".join("1" * 12) + "\n") == (
        "csv:x: column 'date' not found (columns: column00, column01, column02, column03, column04, column05, "
        "column06, column07,…)"
    )


def test_a_column_named_twice_once_its_spaces_are_stripped_is_refused():
    assert refused("date ,value,date\n2024-01-02,1,2024-01-03\n") == "csv:x: column 'date' appears more than once"
    assert refused("date,value ,value\n2024-01-02,1,2\n") == "csv:x: column 'value' appears more than once"


def test_a_malformed_file_gives_the_parser_s_first_line():
    assert refused('date,value\n"2024-01-02,1\n') == (
        "csv:x: malformed CSV (Error tokenizing data. C error: EOF inside string starting …)"
    )
    assert refused("") == "csv:x: malformed CSV (No columns to parse from file)"


def test_running_out_of_memory_is_not_called_a_malformed_file():
    tokenizer = pd.errors.ParserError("Error tokenizing data. C error: out of memory\nmore detail")
    assert parser_failure(tokenizer) == (
        "out of memory while parsing the CSV (a file too large for the memory available); nothing stored"
    )
    assert parser_failure(pd.errors.ParserError("Expected 2 fields in line 3, saw 4\nmore")) == (
        "malformed CSV (Expected 2 fields in line 3, saw 4)"
    )
    assert parser_failure(pd.errors.ParserError("")) == "malformed CSV ()"


def test_date_format_is_the_series_own():
    frame = parse_csv("date,value\n01.02.2024 10,1\n", spec(date_format="%d.%m.%Y %H"), None)
    assert days(frame) == ["2024-02-01"]
    frame = parse_csv("date,value\n01.02.2024 10,1\n", spec(date_format="%m.%d.%Y %H"), None)
    assert days(frame) == ["2024-01-02"]


# --- csv: a file cut short ----------------------------------------------------------------------


def test_a_last_line_without_its_value_or_date_is_a_truncated_file():
    assert refused("date,value\n2024-01-02,1\n2024-01-03,") == (
        "csv:x: truncated CSV: the last line is incomplete ('2024-01-03,')"
    )
    assert refused("date,value\n2024-01-02,1\n2024-01-0") == (
        "csv:x: truncated CSV: the last line is incomplete ('2024-01-0')"
    )


def test_the_incomplete_line_quoted_is_the_last_whatever_ends_lines():
    assert refused("date,value\r2024-01-02,1\r2024-01-03,") == (
        "csv:x: truncated CSV: the last line is incomplete ('2024-01-03,')"
    )
    assert refused("date,value\r\n2024-01-02 09:00,1\r\n2024-01-03 10:00,") == (
        "csv:x: truncated CSV: the last line is incomplete ('2024-01-03 10:00,')"
    )


def test_a_complete_last_line_needs_no_newline_and_only_the_last_line_is_judged():
    frame = parse_csv("date,value\n2024-01-02,1\nnot a date,\n2024-01-04,3", spec(), None)
    assert days(frame) == ["2024-01-02", "2024-01-04"] and values(frame) == [1.0, 3.0]
    assert frame.attrs["unparseable_dates"] == 1


def test_a_file_ending_in_a_carriage_return_is_complete():
    frame = parse_csv("date,value\r2024-01-02,1\r2024-01-03,\r", spec(), None)
    assert days(frame) == ["2024-01-02", "2024-01-03"] and values(frame) == [1.0, None]


# --- csv: files and the config ------------------------------------------------------------------


def test_a_file_with_a_byte_order_mark_finds_its_first_column(tmp_path, make_settings):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfdate,value\n2024-01-02,1.5\n")
    frame = CsvSource(make_settings().sources).fetch(replace(spec(), path=str(path)), None)
    assert days(frame) == ["2024-01-02"] and values(frame) == [1.5]


def test_a_file_that_is_not_text_is_a_failure(tmp_path, make_settings):
    path = tmp_path / "x.csv"
    path.write_bytes(b"date,value\n\xff\xfe\x00\x01")
    with pytest.raises(SourceError) as failure:
        CsvSource(make_settings().sources).fetch(replace(spec(), path=str(path)), None)
    assert str(failure.value).startswith(f"csv:x: cannot read {path}: 'utf-8' codec can't decode byte 0xff")


@pytest.mark.parametrize("url", ["http://example.org/x.csv", "https://example.org/x.csv", "HTTPS://EXAMPLE.ORG/X"])
def test_a_csv_url_is_http_or_https(url):
    if url.startswith("HTTPS"):
        with pytest.raises(ConfigError, match=r"setting 'series\[0\].url' must be an http\(s\) URL, got 'HTTPS"):
            settings_from_dict({"series": [{"key": "csv:x", "url": url}]}, env={})
        return
    (series,) = settings_from_dict({"series": [{"key": "csv:x", "url": url}]}, env={}).series
    assert series.url == url and series.path is None


def test_a_csv_entry_names_one_file_or_url_and_neither_may_hold_a_nul(tmp_path):
    def error(entry):
        with pytest.raises(ConfigError) as failure:
            settings_from_dict({"series": [entry]}, env={}, base_dir=tmp_path)
        return str(failure.value)

    both = {"key": "csv:x", "path": "x.csv", "url": "http://h/x.csv"}
    assert error(both) == "setting 'series[0]' (csv:x) needs exactly one of 'path' or 'url'"
    assert error({"key": "csv:y"}) == "setting 'series[0]' (csv:y) needs exactly one of 'path' or 'url'"
    assert error({"key": "csv:x", "url": "http://h/x\x00.csv"}) == (
        "setting 'series[0].url' must not contain a NUL character, got 'http://h/x\\x00.csv'"
    )
    assert error({"key": "csv:x", "path": "x\x00.csv"}) == (
        "setting 'series[0].path' must not contain a NUL character, got 'x\\x00.csv'"
    )
    settings = settings_from_dict({"series": [{"key": "csv:x", "path": "data/x.csv"}]}, env={}, base_dir=tmp_path)
    (series,) = settings.series
    assert series.path == str(tmp_path / "data" / "x.csv")


# --- every source: dates read one way ----------------------------------------------------------


def order_error(*cells: str) -> str:
    text = "date,value\n" + "".join(f"{cell},1\n" for cell in cells)
    return refused(text)


def test_day_first_dates_in_the_file_s_order_either_way_are_read():
    for cells, expected in [
        (["13/01/2024", "13/01/2024", "14/01/2024"], ["2024-01-13", "2024-01-13", "2024-01-14"]),
        (["14/01/2024", "14/01/2024", "13/01/2024"], ["2024-01-13", "2024-01-14", "2024-01-14"]),
        (["13/01/2024"], ["2024-01-13"]),
    ]:
        frame = parse_csv("date,value\n" + "".join(f"{c},1\n" for c in cells), spec(), None)
        assert days(frame) == expected


@pytest.mark.parametrize(
    "cells, before, after, row",
    [
        # mostly rising: the first step back
        (["13/01/2024", "14/01/2024", "02/01/2024", "15/01/2024"], "2024-01-14", "2024-01-02", 4),
        # mostly falling (newest first): the first step forward
        (["15/01/2024", "14/01/2024", "20/01/2024", "13/01/2024"], "2024-01-14", "2024-01-20", 4),
        # as many steps each way: read as rising
        (["13/01/2024", "14/01/2024", "12/01/2024"], "2024-01-14", "2024-01-12", 4),
        # equal dates are neither way: they count for neither side, and are no step back
        (["13/01/2024", "14/01/2024", "14/01/2024", "12/01/2024"], "2024-01-14", "2024-01-12", 5),
        (["15/01/2024", "14/01/2024", "13/01/2024", "13/01/2024", "20/01/2024"], "2024-01-13", "2024-01-20", 6),
        (["13/01/2024", "13/01/2024", "14/01/2024", "02/01/2024"], "2024-01-14", "2024-01-02", 5),
        (["15/01/2024", "15/01/2024", "14/01/2024", "13/01/2024", "20/01/2024"], "2024-01-13", "2024-01-20", 6),
        # a cell that is no date is skipped; the row named is the file's own
        (["13/01/2024", "14/01/2024", "not a date", "02/01/2024", "15/01/2024"], "2024-01-14", "2024-01-02", 5),
    ],
)
def test_dates_out_of_the_file_s_order_name_where(cells, before, after, row):
    assert order_error(*cells) == (
        f"csv:x: the dates, read day-first, are out of the file's order ({before} then {after} at row {row}): {HINT}"
    )


def test_month_first_dates_out_of_order_say_so():
    assert order_error("01/13/2024", "01/14/2024", "01/02/2024", "01/15/2024") == (
        f"csv:x: the dates, read month-first, are out of the file's order (2024-01-14 then 2024-01-02 at row 4): {HINT}"
    )


def test_rows_with_different_utc_offsets_keep_their_own_local_dates():
    cells = ["2024-03-09T23:30:00-05:00", "2024-03-11T23:30:00-04:00", "not a date", "2024-03-12T01:00:00+09:00"]
    frame = to_observations(cells, [1, 2, 3, 4], None, "csv:x")
    assert days(frame) == ["2024-03-09", "2024-03-11", "2024-03-12"] and values(frame) == [1.0, 2.0, 4.0]
    assert frame.attrs["unparseable_dates"] == 1


# --- FRED ---------------------------------------------------------------------------------------


def test_fred_reads_the_column_named_after_the_series_else_the_second():
    text = "observation_date,OTHER,DGS10\n2024-01-02,9,3.95\n2024-01-03,9,3.99\n"
    assert values(parse_fred_csv(text, "DGS10", None, "fred:DGS10")) == [3.95, 3.99]
    assert values(parse_fred_csv(text, "NOPE", None, "fred:NOPE")) == [9.0, 9.0]


def test_fred_keeps_rows_from_since_even_when_the_server_sends_more():
    text = "DATE,X\n2024-01-02,1\n2024-01-03,2\n2024-01-04,3\n"
    frame = parse_fred_csv(text, "X", pd.Timestamp("2024-01-03"), "fred:X")
    assert days(frame) == ["2024-01-03", "2024-01-04"] and values(frame) == [2.0, 3.0]


def test_fred_treats_excel_errors_as_values_that_are_not_numbers():
    frame = parse_fred_csv("DATE,X\n2024-01-02,1.#QNAN\n2024-01-03,.\n2024-01-04,\n", "X", None, "fred:X")
    assert values(frame) == [None, None, None] and frame.attrs["not_numbers"] == (0,)


@pytest.mark.parametrize(
    "text, reason",
    [
        ("  \n<!DOCTYPE html><html>not found</html>", "FRED answered with a web page, not CSV (unknown series id?)"),
        ("DATE\n2024-01-02\n", "FRED CSV has 1 column(s); expected a date and a value"),
        ("", "malformed CSV (No columns to parse from file) from FRED"),
        ("DATE,X\n2024-01-02,1\n2024-01-03,", "truncated CSV: the last line is incomplete ('2024-01-03,')"),
        ("DATE,X\nsoon,1\nlater,2\n", "no parseable dates (malformed or truncated data)"),
    ],
)
def test_fred_failures_give_one_reason(text, reason):
    with pytest.raises(SourceError) as failure:
        parse_fred_csv(text, "X", None, "fred:X")
    assert str(failure.value) == f"fred:X: {reason}"


def test_fred_text_complete_without_a_final_newline_is_read():
    assert values(parse_fred_csv("DATE,X\n2024-01-02,1\n2024-01-03,4.1", "X", None, "fred:X")) == [1.0, 4.1]


def test_fred_fetch_reads_its_series_column_from_what_the_server_sends(http_server, make_settings):
    http_server.route("/f", Reply(200, "DATE,OTHER,DGS10\n2024-01-02,9,3.95\n2024-01-03,9,3.99\n"))
    sources = make_settings(fred_base_url=http_server.base_url + "/f").sources
    key = with_source_defaults(SeriesSpec(key="fred:DGS10", source="fred", symbol="DGS10"))
    frame = FredSource(sources).fetch(key, pd.Timestamp("2024-01-03"))
    assert days(frame) == ["2024-01-03"] and values(frame) == [3.99]
    http_server.route("/f", Reply(200, "DATE,X\nsoon,1\n"))
    with pytest.raises(SourceError, match=r"^fred:DGS10: no parseable dates"):
        FredSource(sources).fetch(key, None)


# --- the bundled samples ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_a_sample_s_defaults_are_its_own(name):
    sample = SAMPLES[name]
    series = with_source_defaults(SeriesSpec(key=f"sample:{name}", source="sample", symbol=name))
    assert (series.name, series.field, series.frequency, series.price) == (
        sample.name,
        sample.field,
        sample.frequency,
        sample.price,
    )
    table = load_sample(name)
    assert list(table.columns[:1]) == ["Date"] and sample.field in table.columns
    frame = SampleSource().fetch(series, None)
    assert len(frame) == len(table) and not frame["ts"].isna().any()


def test_sample_defaults_name_each_sample():
    cpi = with_source_defaults(SeriesSpec(key="sample:core-cpi", source="sample", symbol="core-cpi"))
    assert (cpi.name, cpi.field, cpi.frequency, cpi.price) == ("US core CPI index (sample)", "CPILFESL", "M", False)
    sp = with_source_defaults(SeriesSpec(key="sample:sp500", source="sample", symbol="sp500"))
    assert (sp.frequency, sp.price) == ("B", True)


def test_a_sample_field_it_does_not_have_names_the_fields_it_has():
    series = SeriesSpec(key="sample:sp500", source="sample", symbol="sp500", field="Dividends")
    with pytest.raises(SourceError) as failure:
        SampleSource().fetch(series, None)
    columns = ", ".join(load_sample("sp500").columns[1:])
    assert str(failure.value) == f"sample:sp500: no column 'Dividends' (columns: {columns})"
    assert "Date" not in columns.split(", ")


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_the_bundled_files_hold_dates_decimals_and_fred_s_missing_marks_only(name):
    """What the samples are read with rests on it: their text is read as is (no pandas markers of
    missing values, no type guessing), and any other cell would be a value that is not a number."""
    table = load_sample(name)
    assert table["Date"].str.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}").all()
    for column in table.columns[1:]:
        assert table[column].str.fullmatch(r"(-?\d+(\.\d+)?|\.)?").all(), column  # "." is FRED's (wti)
