"""A stand-in for Yahoo's chart API on 127.0.0.1, answering in the recorded shape of
``tests/fixtures/yahoo_chart_SPY.json``, so the real yfinance code parses it.

``TICKCAST_YAHOO_URL`` (or ``sources.yahoo_base_url``) points tickcast's Yahoo source here.
Per symbol: daily bars (a DataFrame), the exchange Yahoo names (``exchangeName``: the recorded
answer's PCX, NYSE Arca, unless given), and a queue of misbehaviours served before the data:
"429" (rate limit), "500", "empty" (a well-formed answer without bars), or ("slow", seconds).
"""

from __future__ import annotations

import copy
import json
from datetime import datetime
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd

from .httpserver import FixtureServer, Reply

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def bars_from_closes(closes: pd.Series) -> pd.DataFrame:
    """Daily OHLCV bars around a close series (indexed by date), with a slightly lower adjusted close."""
    c = closes.astype(float)
    return pd.DataFrame(
        {"open": c * 0.999, "high": c * 1.004, "low": c * 0.995, "close": c, "adjclose": c * 0.99, "volume": 1_000_000},
        index=pd.DatetimeIndex(closes.index),
    )


class FakeYahoo:
    def __init__(self) -> None:
        self.template = json.loads((FIXTURES / "yahoo_chart_SPY.json").read_text())
        self.bars: dict[str, pd.DataFrame] = {}
        self.timezones: dict[str, str] = {}
        self.exchanges: dict[str, str] = {}
        self.misbehave: dict[str, list] = {}
        self.chart_requests: list[tuple[str, dict]] = []
        self.server = FixtureServer()
        self.server.route("/", Reply(200, "<html>ok</html>", "text/html"))
        self.server.route("/v1/test/getcrumb", Reply(200, "Fk3Crumb9xy", "text/plain"))
        self.server.fallback = self._dispatch

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def start(self) -> FakeYahoo:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def add(
        self, symbol: str, bars: pd.DataFrame, timezone: str = "America/New_York", exchange: str | None = None
    ) -> None:
        self.bars[symbol] = bars.sort_index()
        self.timezones[symbol] = timezone
        if exchange is not None:
            self.exchanges[symbol] = exchange

    def _dispatch(self, path: str, query: dict) -> Reply:
        if path.startswith("/v8/finance/chart/"):
            return self._chart(path.rsplit("/", 1)[1], query)
        if path.startswith("/v10/finance/quoteSummary/") or path.startswith("/v7/finance/quote"):
            return Reply(404, (FIXTURES / "yahoo_quote_not_found.json").read_text(), "application/json")
        return Reply(404, "Not Found", "text/plain")

    def _chart(self, symbol: str, query: dict) -> Reply:
        self.chart_requests.append((symbol, query))
        queue = self.misbehave.get(symbol)
        if queue:
            trouble = queue.pop(0)
            if trouble == "429":
                return Reply(429, "Edge: Too Many Requests", "text/plain")
            if trouble == "500":
                return Reply(500, "Internal Server Error", "text/plain")
            if trouble == "empty" and symbol in self.bars:
                tz = ZoneInfo(self.timezones[symbol])
                empty = self.bars[symbol].iloc[:0]
                return Reply(
                    200, json.dumps(self._payload(symbol, empty, pd.Series([], dtype=int), tz)), "application/json"
                )
            if isinstance(trouble, tuple) and trouble[0] == "slow":
                return Reply(200, "{}", "application/json", delay=trouble[1])
        if symbol not in self.bars:
            return Reply(404, (FIXTURES / "yahoo_chart_not_found.json").read_text(), "application/json")
        tz = ZoneInfo(self.timezones[symbol])
        bars = self.bars[symbol]
        opening = dtime(9, 30) if self.timezones[symbol] != "UTC" else dtime(0, 0)
        stamps = [int(datetime.combine(d.date(), opening, tz).timestamp()) for d in bars.index]
        stamps = pd.Series(stamps, index=bars.index)
        if "range" in query:  # yfinance's time-zone probe asks for the last day only
            keep = stamps.index[-1:]
        else:
            lo = int(query.get("period1", 0))
            hi = int(query.get("period2", 2**40))
            keep = stamps.index[(stamps >= lo) & (stamps < hi)]  # period2 is exclusive
        return Reply(200, json.dumps(self._payload(symbol, bars.loc[keep], stamps.loc[keep], tz)), "application/json")

    def _payload(self, symbol: str, bars: pd.DataFrame, stamps: pd.Series, tz: ZoneInfo) -> dict:
        doc = copy.deepcopy(self.template)
        result = doc["chart"]["result"][0]
        meta = result["meta"]
        meta["symbol"] = symbol
        meta["exchangeTimezoneName"] = str(tz)
        meta["exchangeName"] = self.exchanges.get(symbol, meta["exchangeName"])
        if str(tz) == "UTC":
            meta.update(timezone="UTC", gmtoffset=0, instrumentType="CRYPTOCURRENCY", exchangeName="CCC")
        if bars.empty:
            result.pop("timestamp", None)
            result["indicators"] = {"quote": [{}], "adjclose": [{}]}
            return doc
        meta["regularMarketPrice"] = float(bars["close"].iloc[-1])
        meta["regularMarketTime"] = int(stamps.iloc[-1])
        result["timestamp"] = [int(s) for s in stamps]
        result["indicators"] = {
            "quote": [
                {
                    k: [None if pd.isna(v) else (int(v) if k == "volume" else float(v)) for v in bars[k]]
                    for k in ("open", "high", "low", "close", "volume")
                }
            ],
            "adjclose": [{"adjclose": [None if pd.isna(v) else float(v) for v in bars["adjclose"]]}],
        }
        return doc
