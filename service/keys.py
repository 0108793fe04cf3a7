"""Series keys: ``<source>:<symbol>``, e.g. ``yahoo:AAPL``, ``fred:DGS10``, ``csv:rain``, ``sample:sp500``.

Symbols are checked against a per-source character set before they reach a URL, a file name or a
log line, so a key can never smuggle in a path, a query string or SQL.
"""

from __future__ import annotations

import re

from .errors import ConfigError

SAMPLE_NAMES = ("sp500", "nasdaq", "wti", "core-cpi")

_SYMBOL_PATTERNS = {
    # Yahoo tickers: letters, digits and . - ^ = (BRK-B, ^GSPC, EURUSD=X, BTC-USD).
    "yahoo": re.compile(r"[A-Za-z0-9][A-Za-z0-9.\-^=]{0,19}|\^[A-Za-z0-9.\-=]{1,19}"),
    # FRED series ids: letters, digits, underscore.
    "fred": re.compile(r"[A-Za-z0-9_]{1,40}"),
    "csv": re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}"),
    "sample": re.compile("|".join(re.escape(n) for n in SAMPLE_NAMES)),
}

SOURCES = tuple(_SYMBOL_PATTERNS)

_EXPECTED = {
    "yahoo": "a Yahoo ticker of letters, digits and . - ^ = (at most 20 characters)",
    "fred": "a FRED series id of letters, digits and _",
    "csv": "a name of letters, digits and _ . -",
    "sample": "one of " + ", ".join(SAMPLE_NAMES),
}


def parse_key(key: str) -> tuple[str, str]:
    """Split and validate a series key; returns ``(source, symbol)``. Yahoo and FRED symbols are
    upper-cased (both services are case-insensitive, and one series must have one key)."""
    if not isinstance(key, str) or ":" not in key:
        raise ConfigError(f"malformed series key {key!r}: expected <source>:<symbol> with source one of {', '.join(SOURCES)}")
    source, symbol = key.split(":", 1)
    source = source.strip().lower()
    symbol = symbol.strip()
    if source not in _SYMBOL_PATTERNS:
        raise ConfigError(f"malformed series key {key!r}: unknown source {source!r} (expected one of {', '.join(SOURCES)})")
    if source in ("yahoo", "fred"):
        symbol = symbol.upper()
    if not _SYMBOL_PATTERNS[source].fullmatch(symbol):
        raise ConfigError(f"malformed series key {key!r}: expected {_EXPECTED[source]}")
    return source, symbol


def make_key(source: str, symbol: str) -> str:
    source, symbol = parse_key(f"{source}:{symbol}")
    return f"{source}:{symbol}"
