"""Flaky and broken sources during a real `tickcast run`: each failure gives a clear reason in the
`series` row and the run, the other series are forecast, and nothing already stored changes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..support.fake_yahoo import FakeYahoo, bars_from_closes
from ..support.httpserver import FixtureServer, Reply
from .scenario import query, run_tickcast

DATES = pd.bdate_range("2022-01-03", periods=260)


def csv_text(values, dates=DATES) -> str:
    return pd.DataFrame({"date": [d.strftime("%Y-%m-%d") for d in dates], "value": values}).to_csv(index=False)


def fred_text(series_id, values, dates=DATES) -> str:
    return pd.DataFrame({"observation_date": [d.strftime("%Y-%m-%d") for d in dates], series_id: values}).to_csv(
        index=False
    )


def test_source_faults_are_recorded_and_contained(tmp_path, ledger):
    rng = np.random.default_rng(5)
    walk = list(50 * np.exp(np.cumsum(rng.normal(0, 0.01, 270))))
    http, yahoo = FixtureServer().start(), FakeYahoo().start()
    mode = {"phase": "healthy"}
    trouble = {
        "SLOW": Reply(200, fred_text("SLOW", walk[:260]), delay=3.0),
        "LIMIT": Reply(429, "Too Many Requests", "text/plain"),
        "BROKEN": Reply(500, "oops", "text/plain"),
    }

    def fred(path, query_args):
        series_id = query_args["id"]
        if mode["phase"] == "faulty":
            return trouble[series_id]
        return Reply(200, fred_text(series_id, walk[:260]))

    def web_csv(name):
        def handler(path, query_args):
            if mode["phase"] == "healthy":
                return Reply(200, csv_text(walk[:260]))
            good = csv_text(walk[:265], pd.bdate_range("2022-01-03", periods=265))
            if name == "truncated":  # the transfer is cut off half-way, every time
                return Reply(200, good, cut=len(good) // 2)
            return Reply(200, "<html><body>Service unavailable</body></html>", "text/html")

        return handler

    http.route("/fred", fred)
    http.route("/truncated.csv", web_csv("truncated"))
    http.route("/malformed.csv", web_csv("malformed"))
    for symbol in ("EMPTYCO", "GOODCO"):
        yahoo.add(symbol, bars_from_closes(pd.Series(walk[:260], index=DATES)))
    dirty_dates = list(DATES[:200]) + [DATES[5], DATES[3]]  # duplicates, out of order
    dirty = walk[:200] + [walk[5] * 1.01, walk[3]]
    dirty[10], dirty[20], dirty[30], dirty[40] = float("nan"), float("inf"), 0.0, -3.0
    (tmp_path / "dirty.csv").write_text(csv_text(dirty, dirty_dates))
    (tmp_path / "short.csv").write_text(csv_text(walk[:2], DATES[:2]))
    (tmp_path / "good.csv").write_text(csv_text(walk[:260]))
    (tmp_path / "tickcast.toml").write_text(f"""
[service]
workers = 1
[watchlist]
fred = ["SLOW", "LIMIT", "BROKEN"]
yahoo = ["EMPTYCO", "NOSUCHCO", "GOODCO"]
[[series]]
key = "csv:good"
path = "good.csv"
[[series]]
key = "csv:truncated"
url = "{http.base_url}/truncated.csv"
[[series]]
key = "csv:malformed"
url = "{http.base_url}/malformed.csv"
[[series]]
key = "csv:dirty"
path = "dirty.csv"
price = true
[[series]]
key = "csv:short"
path = "short.csv"
[sources]
http_timeout = 1.0
retries = 2
backoff_seconds = 0.05
[model]
hidden_size = 8
epochs = 3
ensemble = 1
""")
    env = {
        "TICKCAST_CONFIG": str(tmp_path / "tickcast.toml"),
        "TICKCAST_DATA_DIR": str(tmp_path / "data"),
        "TICKCAST_FRED_URL": f"{http.base_url}/fred",
        "TICKCAST_YAHOO_URL": yahoo.base_url,
    }
    try:
        first = run_tickcast(env, "run", "-q")
        # only the unknown ticker fails while every source is healthy
        assert first.returncode == 3, first.stderr
        assert first.stderr.strip().splitlines() == [
            "tickcast: yahoo:NOSUCHCO: Yahoo does not know this ticker (HTTP 404)"
        ]
        stored = {
            key: query(
                env,
                "SELECT o.ts, o.value FROM observations o JOIN series s ON s.id = o.series_id "
                "WHERE s.key = ? ORDER BY o.ts",
                (key,),
            )
            for (key,) in query(env, "SELECT key FROM series")
        }
        fits_before = query(env, "SELECT id, series_id, status, error FROM fits ORDER BY id")
        (note,) = query(env, "SELECT last_note FROM series WHERE key = 'csv:dirty'")[0]
        for part in ("2 missing or non-finite", "2 zero or negative price", "2 duplicate date"):
            assert part in note
        assert query(
            env, "SELECT count(*) FROM observations o JOIN series s ON s.id = o.series_id WHERE s.key = 'csv:dirty'"
        ) == [(196,)]
        (short,) = query(
            env, "SELECT f.status, f.error FROM fits f JOIN series s ON s.id = f.series_id WHERE s.key = 'csv:short'"
        )
        assert short == ("skipped", "too short to train: 2 observation(s), the minimum is 3")

        mode["phase"] = "faulty"
        yahoo.misbehave["EMPTYCO"] = ["empty"] * 10
        (tmp_path / "good.csv").write_text(csv_text(walk[:262], pd.bdate_range("2022-01-03", periods=262)))
        yahoo.add("GOODCO", bars_from_closes(pd.Series(walk[:262], index=pd.bdate_range("2022-01-03", periods=262))))
        second = run_tickcast(env, "run", "-q")
        assert second.returncode == 3
        reasons = dict(query(env, "SELECT key, last_error FROM series WHERE last_error IS NOT NULL"))
        expected = {
            "fred:SLOW": "timed out after 1 s",
            "fred:LIMIT": "HTTP 429 (rate limited)",
            "fred:BROKEN": "HTTP 500",
            "csv:truncated": "the response was cut off (truncated transfer)",
            "csv:malformed": "column 'date' not found",
            "yahoo:EMPTYCO": "Yahoo has no data for EMPTYCO",
            "yahoo:NOSUCHCO": "Yahoo does not know this ticker",
        }
        assert set(reasons) == set(expected)
        for key, part in expected.items():
            assert part in reasons[key], (key, reasons[key])
            assert f"tickcast: {reasons[key]}" in second.stderr.splitlines()
        run = query(env, "SELECT status, series_failed, error FROM runs ORDER BY id DESC LIMIT 1")[0]
        assert run[:2] == ("partial", 7)
        # nothing stored changed for the failing series; the healthy ones moved on
        lost = 0
        for key, rows in stored.items():
            now = query(
                env,
                "SELECT o.ts, o.value FROM observations o JOIN series s ON s.id = o.series_id "
                "WHERE s.key = ? ORDER BY o.ts",
                (key,),
            )
            lost += len(set(rows) - set(now))
            if key in ("csv:good", "yahoo:GOODCO"):
                assert len(now) == len(rows) + 2
            else:
                assert now == rows, key
        assert lost == 0
        assert (
            query(env, "SELECT id, series_id, status, error FROM fits ORDER BY id")[: len(fits_before)] == fits_before
        )
        new_fits = query(
            env,
            "SELECT s.key, f.mode, f.status FROM fits f JOIN series s ON s.id = f.series_id "
            f"WHERE f.id > {fits_before[-1][0]} ORDER BY s.key",
        )
        assert new_fits == [("csv:good", "warm", "ok"), ("yahoo:GOODCO", "warm", "ok")]
        ledger.record(
            "sources: timeout, 429, 500, truncated/malformed CSV, empty/unknown Yahoo",
            injected=7,
            survived=7,
            rows_lost=lost,
        )
        ledger.record("sources: NaN/inf/zero/negative, duplicate and out-of-order dates", injected=6, survived=6)
        ledger.record("sources: series too short to train", survived=True)
    finally:
        http.stop()
        yahoo.stop()
