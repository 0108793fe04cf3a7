"""Sources: each turns a configured series into a DataFrame of ``ts`` (dates) and ``value``.

Every source module declares one ``SOURCE`` (a :class:`SourceKind`): what its keys look like, what
its series default to, which ``[[series]]`` settings it takes and how to build it. ``SOURCES`` is
the registry that the keys, the watchlist, the config and the ingest stage read: a new kind of
source is one module and one line below.

A source is one method, ``fetch(spec, since) -> DataFrame``; it raises ``SourceError`` with a reason
a person can act on when it cannot deliver. Source modules import pandas, requests and yfinance
inside their functions: every command reads the config, and `tickcast health` must start fast.
"""

from __future__ import annotations

from ..settings import SourceSettings
from . import csvfile, fred, sample, yahoo
from .kind import Source, SourceKind

SOURCES: dict[str, SourceKind] = {
    kind.name: kind
    for kind in (
        yahoo.SOURCE,
        fred.SOURCE,
        csvfile.SOURCE,
        sample.SOURCE,
    )
}


def make_source(kind: str, sources: SourceSettings, data_dir: str) -> Source:
    """Build the source for one kind of series."""
    try:
        return SOURCES[kind].build(sources, data_dir)
    except KeyError:
        raise ValueError(f"unknown source {kind!r}") from None


__all__ = ["SOURCES", "Source", "SourceKind", "make_source"]
