"""Sources against real servers on 127.0.0.1: FRED's CSV endpoint, CSV by URL and by path, the
bundled samples, and the real yfinance library talking to a Yahoo stand-in."""

from __future__ import annotations

import pandas as pd
import pytest

from tickcast.service.errors import SourceError
from tickcast.service.settings import SeriesSpec
from tickcast.service.sources.csvfile import CsvSource
from tickcast.service.sources.fred import FredSource
from tickcast.service.sources.sample import SampleSource
from tickcast.service.sources.yahoo import YahooSource
from tickcast.service.watchlist import with_source_defaults

from .support.fake_yahoo import bars_from_closes
from .support.httpserver import Reply


def spec(key: str, **kw) -> SeriesSpec:
    source, symbol = key.split(":", 1)
    return with_source_defaults(SeriesSpec(key=key, source=source, symbol=symbol, **kw))


# --- FRED ---------------------------------------------------------------------------------------

FRED_NEW_HEADER = "observation_date,DGS10\n2024-01-02,3.95\n2024-01-03,.\n2024-01-04,3.99\n2024-01-05,\n"
FRED_OLD_HEADER = "DATE,DGS10\n2024-01-02,3.95\n2024-01-03,.\n2024-01-04,3.99\n"


@pytest.mark.parametrize("body", [FRED_NEW_HEADER, FRED_OLD_HEADER], ids=["observation_date", "DATE"])
def test_fred_parses_whatever_the_date_header_and_marks_dots_missing(http_server, make_settings, body):
    http_server.route("/fredgraph.csv", Reply(200, body))
    settings = make_settings(fred_base_url=http_server.base_url + "/fredgraph.csv")
    frame = FredSource(settings.sources).fetch(spec("fred:DGS10"), pd.Timestamp("2024-01-01"))
    assert list(frame["ts"].dt.strftime("%Y-%m-%d"))[:3] == ["2024-01-02", "2024-01-03", "2024-01-04"]
    assert frame["value"].iloc[0] == 3.95 and frame["value"].iloc[2] == 3.99
    assert frame["value"].iloc[1] != frame["value"].iloc[1]  # "." is NaN, for validation to drop
    path, query = http_server.requests[-1]
    assert query == {"id": "DGS10", "cosd": "2024-01-01"}


def test_fred_retries_a_500_then_succeeds(http_server, make_settings):
    http_server.route("/f", Reply(500, "oops", "text/plain"), Reply(200, FRED_NEW_HEADER))
    settings = make_settings(fred_base_url=http_server.base_url + "/f")
    frame = FredSource(settings.sources).fetch(spec("fred:DGS10"), None)
    assert len(frame) == 4
    assert len(http_server.requests) == 2


def test_fred_persistent_500_is_a_failure_with_a_reason(http_server, make_settings):
    http_server.route("/f", Reply(500, "oops", "text/plain"))
    settings = make_settings(fred_base_url=http_server.base_url + "/f")
    with pytest.raises(SourceError, match=r"fred:DGS10: HTTP 500 .*\(3 attempts\)"):
        FredSource(settings.sources).fetch(spec("fred:DGS10"), None)
    assert len(http_server.requests) == 3  # one try plus two retries


def test_fred_timeout_is_retried_then_reported(http_server, make_settings):
    http_server.route("/f", Reply(200, FRED_NEW_HEADER, delay=1.0))
    settings = make_settings(fred_base_url=http_server.base_url + "/f", http_timeout=0.2, retries=1)
    with pytest.raises(SourceError, match="timed out after 0.2 s"):
        FredSource(settings.sources).fetch(spec("fred:DGS10"), None)
    assert len(http_server.requests) == 2


def test_fred_unknown_series_html_page_is_a_clear_failure(http_server, make_settings):
    http_server.route("/f", Reply(200, "<!DOCTYPE html><html>Series not found</html>", "text/html"))
    settings = make_settings(fred_base_url=http_server.base_url + "/f")
    with pytest.raises(SourceError, match="web page, not CSV"):
        FredSource(settings.sources).fetch(spec("fred:NOPE"), None)


def test_fred_404_is_not_retried(http_server, make_settings):
    http_server.route("/other", Reply(200, ""))
    settings = make_settings(fred_base_url=http_server.base_url + "/f")
    with pytest.raises(SourceError, match="HTTP 404"):
        FredSource(settings.sources).fetch(spec("fred:DGS10"), None)
    assert len(http_server.requests) == 1


def test_unreachable_host_fails_fast_with_the_reason(make_settings):
    from .support.pg import free_port

    settings = make_settings(fred_base_url=f"http://127.0.0.1:{free_port()}/f")
    with pytest.raises(SourceError, match="cannot connect .*connection refused"):
        FredSource(settings.sources).fetch(spec("fred:DGS10"), None)


# --- CSV ----------------------------------------------------------------------------------------


def test_csv_by_url_with_named_columns_and_date_format(http_server, make_settings):
    http_server.route("/rain.csv", Reply(200, "day,mm,station\n31/12/2023,1.5,A\n01/01/2024,0,A\n"))
    settings = make_settings(f"""
        [[series]]
        key = "csv:rain"
        url = "{http_server.base_url}/rain.csv"
        date_column = "day"
        value_column = "mm"
        date_format = "%d/%m/%Y"
    """)
    frame = CsvSource(settings.sources).fetch(settings.series_by_key()["csv:rain"], None)
    assert list(frame["ts"].dt.strftime("%Y-%m-%d")) == ["2023-12-31", "2024-01-01"]
    assert list(frame["value"]) == [1.5, 0.0]


def test_csv_missing_column_names_the_columns(make_series, make_settings):
    make_series("x", [1, 2, 3])
    settings = make_settings("""
        [[series]]
        key = "csv:x"
        path = "x.csv"
        value_column = "close"
    """)
    with pytest.raises(SourceError, match=r"column 'close' not found \(columns: date, value\)"):
        CsvSource(settings.sources).fetch(settings.series_by_key()["csv:x"], None)


def test_csv_missing_file_and_truncated_file(tmp_path, make_settings):
    settings = make_settings("""
        [[series]]
        key = "csv:gone"
        path = "gone.csv"
    """)
    with pytest.raises(SourceError, match="file not found"):
        CsvSource(settings.sources).fetch(settings.series_by_key()["csv:gone"], None)
    (tmp_path / "gone.csv").write_text('date,value\n2024-01-01,1\n"2024-01-0')
    with pytest.raises(SourceError, match="malformed CSV"):
        CsvSource(settings.sources).fetch(settings.series_by_key()["csv:gone"], None)


def test_csv_truncated_in_transfer_is_retried_then_reported(http_server, make_settings):
    body = "date,value\n" + "".join(f"2024-01-{d:02d},{d}\n" for d in range(1, 29))
    http_server.route(
        "/cut.csv", Reply(200, body, cut=len(body) // 2), Reply(200, body, cut=len(body) // 2), Reply(200, body)
    )
    settings = make_settings(f'[[series]]\nkey = "csv:cut"\nurl = "{http_server.base_url}/cut.csv"\n')
    assert len(CsvSource(settings.sources).fetch(settings.series_by_key()["csv:cut"], None)) == 28
    http_server.route("/cut.csv", Reply(200, body, cut=len(body) // 2))
    with pytest.raises(SourceError, match=r"cut off \(truncated transfer\)"):
        CsvSource(settings.sources).fetch(settings.series_by_key()["csv:cut"], None)


def test_csv_file_ending_in_a_partial_line_is_refused(tmp_path, make_settings):
    (tmp_path / "part.csv").write_text("date,value\n2024-01-01,1\n2024-01-02,2\n2024-01-0")
    settings = make_settings('[[series]]\nkey = "csv:part"\npath = "part.csv"\n')
    with pytest.raises(SourceError, match=r"truncated CSV: the last line is incomplete \('2024-01-0'\)"):
        CsvSource(settings.sources).fetch(settings.series_by_key()["csv:part"], None)
    (tmp_path / "part.csv").write_text("date,value\n2024-01-01,1\n2024-01-02,2")  # no newline, but complete
    assert len(CsvSource(settings.sources).fetch(settings.series_by_key()["csv:part"], None)) == 2


def test_csv_with_no_parseable_dates_is_a_failure(tmp_path, make_settings):
    (tmp_path / "junk.csv").write_text("date,value\nhello,1\nworld,2\n")
    settings = make_settings('[[series]]\nkey = "csv:junk"\npath = "junk.csv"\n')
    with pytest.raises(SourceError, match="no parseable dates"):
        CsvSource(settings.sources).fetch(settings.series_by_key()["csv:junk"], None)


# --- samples ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,first,rows",
    [
        ("sp500", "1999-01-04", 5031),
        ("nasdaq", "1999-01-04", 5031),
        ("wti", "1986-01-02", 8611),
        ("core-cpi", "1957-01-01", 743),
    ],
)
def test_bundled_samples_are_real_series(name, first, rows):
    frame = SampleSource().fetch(spec(f"sample:{name}"), None)
    assert len(frame) == rows
    assert frame["ts"].iloc[0] == pd.Timestamp(first)
    assert frame["ts"].is_monotonic_increasing
    assert frame["value"].dropna().gt(0).all()


def test_sample_since_filters():
    frame = SampleSource().fetch(spec("sample:sp500"), pd.Timestamp("2018-12-24"))
    assert list(frame["ts"].dt.strftime("%m-%d")) == ["12-24", "12-26", "12-27", "12-28", "12-31"]
    assert frame["value"].iloc[-1] == pytest.approx(2506.850098)


# --- Yahoo (the real yfinance library, served by a Yahoo stand-in) ---------------------------------


@pytest.fixture
def yahoo(fake_yahoo, make_settings):
    settings = make_settings(yahoo_base_url=fake_yahoo.base_url)
    return YahooSource(settings.sources, settings.data_dir)


def closes(n=30, start="2024-10-01", freq="B", base=100.0):
    return pd.Series([base + i for i in range(n)], index=pd.date_range(start, periods=n, freq=freq), dtype=float)


def test_yahoo_adjusted_close_by_default_on_exchange_dates(fake_yahoo, yahoo, tmp_path):
    fake_yahoo.add("SPY", bars_from_closes(closes()))
    frame = yahoo.fetch(spec("yahoo:SPY"), pd.Timestamp("2024-01-01"))
    assert len(frame) == 30
    assert frame["ts"].iloc[0] == pd.Timestamp("2024-10-01")  # 09:30 New York is still that date
    assert frame["value"].iloc[0] == pytest.approx(99.0)  # adjclose = 0.99 * close
    assert (tmp_path / "yfinance-cache").is_dir()  # yfinance's cache lives in the data dir


@pytest.mark.parametrize(
    "exchange,timezone,calendar",
    [
        (None, "America/New_York", "XNYS"),  # the recorded answer: PCX, NYSE Arca
        ("NMS", "America/New_York", "XNAS"),
        ("LSE", "Europe/London", "XLON"),
        ("JPX", "Asia/Tokyo", "XTKS"),
        ("XYZ", "America/New_York", None),  # an exchange tickcast does not know: the source's default applies
    ],
)
def test_yahoo_reports_the_calendar_of_the_exchange_it_names(fake_yahoo, yahoo, exchange, timezone, calendar):
    fake_yahoo.add("TKR", bars_from_closes(closes()), timezone=timezone, exchange=exchange)
    frame = yahoo.fetch(spec("yahoo:TKR"), pd.Timestamp("2024-01-01"))
    assert frame.attrs["calendar"] == calendar
    history = [query for _, query in fake_yahoo.chart_requests if "period1" in query]
    assert len(history) == 1  # read from the answer: no second request for the metadata


def test_yahoo_field_is_configurable(fake_yahoo, yahoo):
    fake_yahoo.add("SPY", bars_from_closes(closes()))
    frame = yahoo.fetch(spec("yahoo:SPY", field="Close"), pd.Timestamp("2024-01-01"))
    assert frame["value"].iloc[0] == pytest.approx(100.0)
    with pytest.raises(SourceError, match="no column 'Adjusted'"):
        yahoo.fetch(spec("yahoo:SPY", field="Adjusted"), pd.Timestamp("2024-01-01"))


def test_yahoo_since_is_passed_as_period1(fake_yahoo, yahoo):
    fake_yahoo.add("SPY", bars_from_closes(closes()))
    frame = yahoo.fetch(spec("yahoo:SPY"), pd.Timestamp("2024-11-01"))
    assert frame["ts"].min() == pd.Timestamp("2024-11-01")
    symbol, query = fake_yahoo.chart_requests[-1]
    assert int(query["period1"]) == int(pd.Timestamp("2024-11-01", tz="America/New_York").timestamp())


def test_yahoo_crypto_trades_every_day_in_utc(fake_yahoo, yahoo):
    fake_yahoo.add("BTC-USD", bars_from_closes(closes(10, "2024-11-01", "D")), timezone="UTC")
    frame = yahoo.fetch(spec("yahoo:BTC-USD"), pd.Timestamp("2024-01-01"))
    assert len(frame) == 10 and frame["ts"].dt.day_of_week.max() == 6


def test_yahoo_unknown_ticker_is_a_failure_with_a_reason(yahoo):
    with pytest.raises(SourceError, match="yahoo:NOSUCHTKR: Yahoo does not know this ticker"):
        yahoo.fetch(spec("yahoo:NOSUCHTKR"), None)


def test_yahoo_empty_result_is_a_failure_with_a_reason(fake_yahoo, yahoo):
    fake_yahoo.add("OLDCO", bars_from_closes(closes(5, "2020-01-01")))
    with pytest.raises(SourceError, match="Yahoo has no data for OLDCO .*no price data found"):
        yahoo.fetch(spec("yahoo:OLDCO"), pd.Timestamp("2024-01-01"))


def test_yahoo_rate_limit_is_retried_with_backoff(fake_yahoo, yahoo):
    fake_yahoo.add("AAPL", bars_from_closes(closes()))
    fake_yahoo.misbehave["AAPL"] = ["429", "429"]  # the time-zone probe and the first history call
    frame = yahoo.fetch(spec("yahoo:AAPL"), pd.Timestamp("2024-01-01"))
    assert len(frame) == 30


def test_yahoo_persistent_rate_limit_becomes_a_failure(fake_yahoo, yahoo):
    fake_yahoo.add("MSFT", bars_from_closes(closes()))
    fake_yahoo.misbehave["MSFT"] = ["429"] * 20
    with pytest.raises(SourceError, match=r"rate limited by Yahoo \(HTTP 429\); gave up after 3 attempts"):
        yahoo.fetch(spec("yahoo:MSFT"), None)


def test_yahoo_unreachable_fails_fast(make_settings):
    from .support.pg import free_port

    settings = make_settings(yahoo_base_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(SourceError, match="cannot reach Yahoo"):
        YahooSource(settings.sources, settings.data_dir).fetch(spec("yahoo:ZZZ"), None)


def test_a_new_kind_of_source_gets_the_registry_s_defaults(monkeypatch):
    """Adding a kind is one module and one line in the registry: what it leaves out defaults to its
    symbol as given (case kept), a series named after the symbol, and weekdays (no calendar)."""
    import re

    from tickcast.service.keys import parse_key
    from tickcast.service.run.ingest import series_calendar
    from tickcast.service.sources import SOURCES, SourceKind

    kind = SourceKind(
        name="ecb", symbol=re.compile(r"[A-Za-z]{3}"), expected="a currency code", build=lambda s, d: None
    )
    monkeypatch.setitem(SOURCES, "ecb", kind)
    assert parse_key("ecb: usd ") == ("ecb", "usd")
    series = with_source_defaults(SeriesSpec(key="ecb:usd", source="ecb", symbol="usd"))
    assert (series.name, series.field, series.frequency, series.price) == ("usd", None, None, False)
    assert series_calendar(series) is None
    assert series_calendar(series, reported="XLON") == "XLON"
    assert kind.series_settings == () and kind.complete is None and kind.in_watchlist and kind.base_url_setting is None
