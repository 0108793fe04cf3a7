"""``yahoo:<TICKER>`` through yfinance: daily bars, the adjusted close by default.

What yfinance does that matters here:
- ``Ticker.history`` returns an empty frame (it logs instead of raising) unless
  ``yf.config.debug.hide_exceptions`` is False; we switch that off so an unknown or delisted ticker
  raises ``YFTzMissingError``/``YFPricesMissingError`` with Yahoo's reason.
- HTTP 429 raises ``YFRateLimitError``: retried with exponential backoff, then a failure.
- ``end`` is exclusive and the index is timezone-aware (the exchange's zone): we ask from ``since``
  up to now and keep the exchange-local calendar date of each bar.
- Its caches (time zones, cookies) go into ``<data_dir>/yfinance-cache`` rather than the home dir.
- Every chart answer names the ticker's exchange (``exchangeName``: NYQ, NMS, LSE, JPX ...); it is
  read from the answer already fetched (``get_history_metadata`` asks again only when there is none)
  and mapped to the trading calendar of the series' target dates (``EXCHANGE_CALENDARS``).

The seam: ``sources.yahoo_base_url`` (``TICKCAST_YAHOO_URL``) sends every Yahoo request to another
base URL through a plain ``requests`` session, which yfinance supports. Tests serve recorded-shape
chart JSON there on 127.0.0.1; the code path above it is yfinance's own.
"""

from __future__ import annotations

import functools
import os
import re
import warnings
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from .. import stopping
from ..errors import SourceError, cut
from ..settings import SeriesSpec, SourceSettings
from .kind import SourceKind

if TYPE_CHECKING:
    import pandas as pd
    import requests


_configured_cache: str | None = None

# One call to yfinance's history makes up to this many requests (the ticker's time zone, a cookie
# and crumb with Yahoo itself, the chart): it is given this many times sources.http_timeout of
# wall-clock time, whatever the server does (curl and requests bound each socket read, not a call).
REQUESTS_PER_FETCH = 3


class _Deadline(Exception):
    """A call to Yahoo that ran past its wall-clock deadline."""


# Yahoo's exchange codes -> exchange_calendars codes. An exchange not listed here trades on XNYS's
# days as far as tickcast knows (the source's default calendar).
EXCHANGE_CALENDARS = {
    # United States: the NYSE's holidays are every US exchange's
    "NYQ": "XNYS",
    "NMS": "XNAS",
    "NGM": "XNAS",
    "NCM": "XNAS",
    "NAS": "XNAS",
    "NIM": "XNAS",
    "PCX": "XNYS",
    "ASE": "XASE",
    "BTS": "BATS",
    "PNK": "XNYS",
    "SNP": "XNYS",
    "DJI": "XNYS",
    "CXI": "XNYS",
    "WCB": "XNYS",
    "NYM": "CMES",
    "CMX": "CMES",
    "CME": "CMES",
    "CBT": "CMES",
    "NYB": "IEPA",
    # Americas
    "TOR": "XTSE",
    "VAN": "XTSE",
    "CNQ": "XTSE",
    "SAO": "BVMF",
    "MEX": "XMEX",
    "BUE": "XBUE",
    "SGO": "XSGO",
    # Europe
    "LSE": "XLON",
    "IOB": "XLON",
    "GER": "XETR",
    "FRA": "XFRA",
    "STU": "XSTU",
    "DUS": "XDUS",
    "HAM": "XHAM",
    "PAR": "XPAR",
    "AMS": "XAMS",
    "BRU": "XBRU",
    "LIS": "XLIS",
    "MCE": "XMAD",
    "MIL": "XMIL",
    "EBS": "XSWX",
    "VIE": "XWBO",
    "STO": "XSTO",
    "HEL": "XHEL",
    "CPH": "XCSE",
    "OSL": "XOSL",
    "ICE": "XICE",
    "ISE": "XDUB",
    "ATH": "ASEX",
    "WSE": "XWAR",
    "PRA": "XPRA",
    "BUD": "XBUD",
    "IST": "XIST",
    "TLV": "XTAE",
    # Asia, Pacific, Africa
    "JPX": "XTKS",
    "OSA": "XTKS",
    "HKG": "XHKG",
    "SHH": "XSHG",
    "SHZ": "XSHG",
    "TAI": "XTAI",
    "TWO": "XTAI",
    "KSC": "XKRX",
    "KOE": "XKRX",
    "SES": "XSES",
    "SET": "XBKK",
    "KLS": "XKLS",
    "JKT": "XIDX",
    "NSI": "XBOM",
    "BSE": "XBOM",
    "ASX": "XASX",
    "NZE": "XNZE",
    "JNB": "XJSE",
    "SAU": "XSAU",
    # Markets that do not close: crypto every day, currencies every weekday
    "CCC": "24/7",
    "CCY": "24/5",
}


def _yfinance(cache_dir: str):
    import yfinance as yf

    global _configured_cache
    yf.config.debug.hide_exceptions = False
    if _configured_cache != cache_dir:
        try:
            os.makedirs(cache_dir, exist_ok=True)
        except OSError as exc:
            raise SourceError(f"cannot create yfinance's cache directory {cache_dir}: {exc.strerror}") from None
        yf.set_tz_cache_location(cache_dir)
        _configured_cache = cache_dir
    return yf


def redirect_session(base_url: str) -> requests.Session:
    """A requests session that sends ``*.yahoo.com`` requests to ``base_url`` (path and query kept)."""
    import requests

    base = base_url.rstrip("/")

    class RedirectSession(requests.Session):
        def request(self, method, url, *args, **kwargs):
            parts = urlsplit(url)
            if (parts.hostname or "").endswith("yahoo.com"):
                url = base + (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            return super().request(method, url, *args, **kwargs)

    return RedirectSession()


def _network_failure(exc: BaseException) -> tuple[bool, str] | None:
    """(retry?, reason) for the network exceptions of requests and curl_cffi; None for others."""
    from .http import root_cause

    names = {cls.__name__ for cls in type(exc).__mro__}
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status == 429:
        return True, "rate limited by Yahoo (HTTP 429)"
    if status is not None and status >= 500:
        return True, f"Yahoo answered HTTP {status}"
    if status == 404:
        return False, "Yahoo does not know this ticker (HTTP 404)"
    text = str(exc)
    curl = re.search(r"curl: \(\d+\) (.+?)(?:\. See |$)", text)
    detail = curl.group(1) if curl else root_cause(exc)
    if names & {"Timeout", "ReadTimeout", "ConnectTimeout", "TimeoutError"}:
        return True, f"Yahoo timed out ({detail})"
    if names & {"DNSError", "ConnectionError", "ProxyError", "SSLError", "CurlError", "RequestException"}:
        return False, f"cannot reach Yahoo ({detail})"
    return None


class YahooSource:
    def __init__(self, settings: SourceSettings, data_dir: str, session: requests.Session | None = None):
        self.settings = settings
        self.cache_dir = os.path.join(data_dir, "yfinance-cache")
        if session is None and settings.yahoo_base_url:
            session = redirect_session(settings.yahoo_base_url)
        self.session = session  # None: yfinance's own curl_cffi session, i.e. Yahoo itself

    def fetch(self, spec: SeriesSpec, since: pd.Timestamp | None) -> pd.DataFrame:
        import pandas as pd

        from .frames import to_observations

        yf = _yfinance(self.cache_dir)
        from yfinance.exceptions import YFException, YFRateLimitError, YFTickerMissingError, YFTzMissingError

        # Without a start date: everything Yahoo has (period "max").
        window = {"start": since.strftime("%Y-%m-%d")} if since is not None else {"period": "max"}
        what = spec.key
        last = ""
        deadline = REQUESTS_PER_FETCH * self.settings.http_timeout
        for attempt in range(self.settings.retries + 1):
            if attempt:
                stopping.pause(self.settings.backoff_seconds * 2 ** (attempt - 1), f"waiting to fetch {what} again")
            try:
                ticker = yf.Ticker(spec.symbol, session=self.session)
                bars = stopping.bounded_call(
                    functools.partial(_history, ticker, self.settings.http_timeout, window),
                    deadline,
                    _Deadline,
                    f"fetching {what}",
                )
                break
            except _Deadline:
                last = f"Yahoo did not answer within {deadline:g} s ({REQUESTS_PER_FETCH} x sources.http_timeout)"
            except YFRateLimitError:
                last = "rate limited by Yahoo (HTTP 429)"
            except YFTzMissingError:  # Yahoo knows no exchange time zone: not a listed ticker
                raise SourceError(
                    f"{what}: Yahoo does not know this ticker (possibly delisted; no time zone)"
                ) from None
            except YFTickerMissingError as exc:
                raise SourceError(f"{what}: Yahoo has no data for {spec.symbol} ({exc.rationale})") from None
            except YFException as exc:
                raise SourceError(f"{what}: Yahoo error: {cut(str(exc), 200)}") from None
            except Exception as exc:  # noqa: BLE001 - yfinance surfaces network trouble as its backend's exceptions
                network = _network_failure(exc)
                if network is None:
                    raise SourceError(
                        f"{what}: unexpected Yahoo response ({type(exc).__name__}: "
                        f"{cut(str(exc).splitlines()[0], 200) if str(exc) else ''})"
                    ) from None
                retry, last = network
                if not retry:
                    raise SourceError(f"{what}: {last}") from None
        else:
            tries = self.settings.retries + 1
            raise SourceError(f"{what}: {last}; gave up after {tries} attempt{'s' if tries > 1 else ''}")
        if bars is None or bars.empty:
            raise SourceError(
                f"{what}: Yahoo returned no rows" + (f" since {since.date()}" if since is not None else "")
            )
        if spec.field not in bars.columns:
            raise SourceError(
                f"{what}: Yahoo result has no column {spec.field!r} (columns: {cut(', '.join(map(str, bars.columns)))})"
            )
        index = bars.index
        if getattr(index, "tz", None) is not None:
            index = index.tz_localize(None)  # keep the exchange-local calendar date
        frame = to_observations(pd.Series(index), bars[spec.field].to_numpy(), since, what)
        # ingest stores it unless the config names one
        frame.attrs["calendar"] = exchange_calendar(ticker, self.settings.http_timeout, what)
        return frame


def _history(ticker, timeout: float, window: dict):
    with warnings.catch_warnings():  # yfinance's own deprecation noise is not the user's
        warnings.simplefilter("ignore")
        return ticker.history(interval="1d", auto_adjust=False, actions=False, timeout=timeout, **window)


def exchange_calendar(ticker, timeout: float = 30.0, what: str = "a ticker") -> str | None:
    """The calendar of the exchange Yahoo reported for ``ticker``'s bars (None: none we know)."""
    try:
        metadata = stopping.bounded_call(ticker.get_history_metadata, timeout, _Deadline, f"asking Yahoo about {what}")
        exchange = metadata.get("exchangeName")
    except Exception:  # noqa: BLE001 - the metadata is a convenience: never fail a fetch that delivered prices
        return None
    return EXCHANGE_CALENDARS.get(str(exchange).upper()) if exchange else None


SOURCE = SourceKind(
    name="yahoo",
    # Yahoo tickers: letters, digits and . - ^ = (BRK-B, ^GSPC, EURUSD=X, BTC-USD).
    symbol=re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-^=]{0,19}|\^[A-Za-z0-9.\-=]{1,19}"),
    expected="a Yahoo ticker of letters, digits and . - ^ = (at most 20 characters)",
    normalise=str.upper,  # Yahoo ignores case
    defaults=lambda symbol: dict(name=symbol, field="Adj Close", frequency="B", price=True),
    base_url_setting="yahoo_base_url",
    build=YahooSource,
    calendar=lambda symbol: "XNYS",  # when Yahoo names no exchange we know
)
