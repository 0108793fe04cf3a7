"""Series keys: ``<source>:<symbol>``, e.g. ``yahoo:AAPL``, ``fred:DGS10``, ``csv:rain``, ``sample:sp500``.

Symbols are checked against their source's character set (see ``sources/``) before they reach a
URL, a file name or a log line, so a key can never smuggle in a path, a query string or SQL.
"""

from __future__ import annotations

from .errors import ConfigError
from .sources import SOURCES


def parse_key(key: str) -> tuple[str, str]:
    """Split and validate a series key; returns ``(source, symbol)``, the symbol normalised by its
    source (Yahoo and FRED ignore case, so their symbols are upper-cased: one series, one key)."""
    names = ", ".join(SOURCES)
    if not isinstance(key, str) or ":" not in key:
        raise ConfigError(f"malformed series key {key!r}: expected <source>:<symbol> with source one of {names}")
    source, symbol = key.split(":", 1)
    source = source.strip().lower()
    kind = SOURCES.get(source)
    if kind is None:
        raise ConfigError(f"malformed series key {key!r}: unknown source {source!r} (expected one of {names})")
    symbol = kind.normalise(symbol.strip())
    if not kind.symbol.fullmatch(symbol):
        raise ConfigError(f"malformed series key {key!r}: expected {kind.expected}")
    return source, symbol
