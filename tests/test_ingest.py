"""Ingestion on both backends: idempotent, incremental, validating, and never losing stored data."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from tickcast.service.errors import MESSAGE_LIMIT, ConfigError, UnknownSeries
from tickcast.service.frequencies import infer_frequency
from tickcast.service.run.ingest import ingest

from .support.fake_yahoo import bars_from_closes
from .support.httpserver import Reply
from .support.tables import observations, series_row


def by_key(results):
    return {r.key: r for r in results}


@pytest.fixture
def csv_settings(make_settings, db_url):
    def make(*names, extra=""):
        tables = "".join(f'[[series]]\nkey = "csv:{n}"\npath = "{n}.csv"\n' for n in names)
        return make_settings(tables + extra, db_url=db_url)

    return make


def test_ingest_twice_changes_nothing_the_second_time(fresh_db, csv_settings, make_series):
    make_series("a", [1.0, 2.0, 3.0, 4.0])
    settings = csv_settings("a")
    engine = fresh_db()
    first = by_key(ingest(engine, settings))["csv:a"]
    assert (first.status, first.new_rows, first.total_rows, first.last_ts) == ("ok", 4, 4, date(2020, 1, 4))
    stored = observations(engine, "csv:a")
    second = by_key(ingest(engine, settings))["csv:a"]
    assert (second.new_rows, second.revised_rows, second.total_rows) == (0, 0, 4)
    assert observations(engine, "csv:a") == stored


def test_appended_rows_arrive_exactly_once(fresh_db, csv_settings, make_series):
    make_series("a", [1.0, 2.0, 3.0])
    settings = csv_settings("a")
    engine = fresh_db()
    ingest(engine, settings)
    make_series("a", [1.0, 2.0, 3.0, 4.0, 5.0])
    result = by_key(ingest(engine, settings))["csv:a"]
    assert (result.new_rows, result.revised_rows, result.total_rows) == (2, 0, 5)
    assert [v for _, v in observations(engine, "csv:a")] == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_revisions_inside_the_overlap_are_updated(fresh_db, csv_settings, make_series):
    make_series("a", [1.0, 2.0, 3.0])
    settings = csv_settings("a")
    engine = fresh_db()
    ingest(engine, settings)
    make_series("a", [1.0, 2.5, 3.0])
    result = by_key(ingest(engine, settings))["csv:a"]
    assert (result.new_rows, result.revised_rows) == (0, 1)
    assert observations(engine, "csv:a")[1] == (date(2020, 1, 2), 2.5)


def test_validation_drops_bad_rows_and_says_so(fresh_db, make_settings, make_series, db_url):
    dates = [
        "2020-01-01",
        "2020-01-02",
        "2020-01-03",
        "2020-01-03",
        "2020-01-05",
        "2020-01-04",
        "2099-01-01",
        "2020-01-06",
        "2020-01-07",
    ]
    make_series("p", [10.0, float("nan"), 11.0, 12.0, -1.0, 13.0, 14.0, float("inf"), 0.0], dates=dates)
    settings = make_settings('[[series]]\nkey = "csv:p"\npath = "p.csv"\nprice = true\n', db_url=db_url)
    engine = fresh_db()
    result = by_key(ingest(engine, settings))["csv:p"]
    assert result.status == "ok"
    assert observations(engine, "csv:p") == [
        (date(2020, 1, 1), 10.0),
        (date(2020, 1, 3), 12.0),
        (date(2020, 1, 4), 13.0),
    ]
    note = series_row(engine, "csv:p").last_note
    for part in ("2 missing or non-finite", "2 zero or negative price", "1 date(s) in the future", "1 duplicate date"):
        assert part in note


def test_non_price_series_keep_negative_values(fresh_db, csv_settings, make_series):
    make_series("t", [-3.5, 0.0, 2.0])
    engine = fresh_db()
    assert by_key(ingest(engine, csv_settings("t")))["csv:t"].total_rows == 3


def _two_series_ingested(fresh_db, csv_settings, make_series):
    """csv:a (3 rows) and csv:b (2 rows) ingested once: (engine, settings, csv:a's stored rows)."""
    make_series("a", [1.0, 2.0, 3.0])
    make_series("b", [5.0, 6.0])
    settings = csv_settings("a", "b")
    engine = fresh_db()
    ingest(engine, settings)
    return engine, settings, observations(engine, "csv:a")


def test_one_failing_series_does_not_stop_the_others_and_loses_nothing(fresh_db, csv_settings, make_series, tmp_path):
    engine, settings, stored = _two_series_ingested(fresh_db, csv_settings, make_series)
    (tmp_path / "a.csv").write_text("this is not,the csv\nyou,expected\n")
    make_series("b", [5.0, 6.0, 7.0])
    results = by_key(ingest(engine, settings))
    assert results["csv:a"].status == "failed" and "column 'date' not found" in results["csv:a"].error
    assert results["csv:b"].status == "ok" and results["csv:b"].new_rows == 1
    assert observations(engine, "csv:a") == stored  # nothing stored was lost
    row = series_row(engine, "csv:a")
    assert "column 'date' not found" in row.last_error and row.last_fetch_at is not None
    assert row.last_success_at < row.last_fetch_at
    make_series("a", [1.0, 2.0, 3.0, 4.0])  # the source recovers: the error is cleared
    assert by_key(ingest(engine, settings))["csv:a"].new_rows == 1
    assert series_row(engine, "csv:a").last_error is None


class _Raising:
    """A source that fails before it has anything: its cache cannot be made, or memory runs out."""

    def __init__(self, exc: BaseException):
        self.exc = exc

    def fetch(self, spec, since):
        raise self.exc


@pytest.mark.parametrize(
    "exc, expected",
    [
        (ConfigError("cannot create the cache directory /nope: " + "x" * 2000), None),
        (
            MemoryError(),
            "csv:a: out of memory while fetching, checking or storing it (a source too large for the "
            "memory available); nothing stored",
        ),
    ],
    ids=["config-error", "memory-error"],
)
def test_a_source_that_fails_before_fetching_fails_only_its_series_with_one_line(
    fresh_db, csv_settings, make_series, exc, expected
):
    engine, settings, stored = _two_series_ingested(fresh_db, csv_settings, make_series)
    results = by_key(ingest(engine, settings, keys=["csv:a"], sources={"csv": _Raising(exc)}))
    if expected is None:  # what the source said, cut to the stored limit
        expected = str(exc)[: MESSAGE_LIMIT - 1] + "…"
    assert list(results) == ["csv:a"]
    assert (results["csv:a"].key, results["csv:a"].status, results["csv:a"].error) == ("csv:a", "failed", expected)
    row = series_row(engine, "csv:a")
    assert row.last_error == expected and row.last_fetch_at is not None and row.last_success_at < row.last_fetch_at
    assert observations(engine, "csv:a") == stored  # nothing lost
    assert series_row(engine, "csv:b").last_error is None


def test_unknown_key_is_refused_before_anything_happens(fresh_db, csv_settings, make_series):
    make_series("a", [1.0])
    engine = fresh_db()
    with pytest.raises(UnknownSeries, match="unknown series 'csv:zzz': not in the watchlist"):
        ingest(engine, csv_settings("a"), ["csv:zzz"])
    assert observations(engine, "csv:a") == []


def test_series_removed_from_the_config_become_inactive_but_keep_their_data(fresh_db, csv_settings, make_series):
    make_series("a", [1.0, 2.0])
    make_series("b", [1.0, 2.0])
    engine = fresh_db()
    ingest(engine, csv_settings("a", "b"))
    ingest(engine, csv_settings("a"))
    assert series_row(engine, "csv:b").active is False or series_row(engine, "csv:b").active == 0
    assert len(observations(engine, "csv:b")) == 2


def test_fred_ingest_is_incremental_with_overlap(fresh_db, make_settings, http_server, db_url):
    days = pd.bdate_range("2024-01-01", periods=40)
    table = pd.DataFrame({"observation_date": days.strftime("%Y-%m-%d"), "DGS10": [4.0 + i / 100 for i in range(40)]})

    def fred(path, query):
        since = pd.Timestamp(query.get("cosd", "1900-01-01"))
        return Reply(200, table[pd.to_datetime(table["observation_date"]) >= since].to_csv(index=False))

    http_server.route("/fred", fred)
    settings = make_settings(
        '[watchlist]\nfred = ["DGS10"]\n', db_url=db_url, fred_base_url=http_server.base_url + "/fred"
    )
    engine = fresh_db()
    assert by_key(ingest(engine, settings))["fred:DGS10"].new_rows == 40
    assert series_row(engine, "fred:DGS10").frequency == "B"  # inferred from the dates
    table.loc[len(table)] = ["2024-02-26", 9.99]
    result = by_key(ingest(engine, settings))["fred:DGS10"]
    assert (result.new_rows, result.total_rows) == (1, 41)
    assert http_server.requests[-1][1]["cosd"] == "2024-02-13"  # last stored date minus 10 days


def test_yahoo_ingest_end_to_end(fresh_db, make_settings, fake_yahoo, db_url):
    fake_yahoo.add(
        "SPY", bars_from_closes(pd.Series(range(100, 130), index=pd.bdate_range("2024-10-01", periods=30), dtype=float))
    )
    settings = make_settings(
        '[watchlist]\nyahoo = ["SPY", "NOPE1"]\n', db_url=db_url, yahoo_base_url=fake_yahoo.base_url
    )
    engine = fresh_db()
    results = by_key(ingest(engine, settings))
    assert results["yahoo:SPY"].new_rows == 30
    assert results["yahoo:NOPE1"].status == "failed"
    assert "does not know this ticker" in series_row(engine, "yahoo:NOPE1").last_error
    again = by_key(ingest(engine, settings, ["yahoo:SPY"]))
    assert (again["yahoo:SPY"].new_rows, again["yahoo:SPY"].total_rows) == (0, 30)


def test_bundled_samples_ingest_offline(fresh_db, make_settings, db_url):
    settings = make_settings('[watchlist]\nsample = ["core-cpi"]\n', db_url=db_url)
    engine = fresh_db()
    result = by_key(ingest(engine, settings))["sample:core-cpi"]
    assert result.status == "ok" and result.last_ts == date(2018, 11, 1)
    assert series_row(engine, "sample:core-cpi").frequency == "M"


def test_infer_frequency():
    assert infer_frequency(pd.bdate_range("2024-01-01", periods=30)) == "B"
    assert infer_frequency(pd.date_range("2024-01-01", periods=30)) == "D"
    assert infer_frequency(pd.date_range("2024-01-01", periods=30, freq="W")) == "W"
    assert infer_frequency(pd.date_range("2000-01-01", periods=30, freq="MS")) == "M"
    assert infer_frequency(pd.date_range("2000-01-01", periods=30, freq="QS")) == "Q"
    assert infer_frequency(pd.date_range("1950-01-01", periods=30, freq="YS")) == "A"
    assert infer_frequency(pd.date_range("2024-01-01", periods=2)) is None
