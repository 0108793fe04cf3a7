"""Sources: each turns a configured series into a DataFrame of ``ts`` (dates) and ``value``.

The interface is one method, ``fetch(spec, since) -> DataFrame``; a source raises
``SourceError`` with a reason a person can act on when it cannot deliver.
"""

from __future__ import annotations

from typing import Protocol

import pandas as pd

from ..config import SeriesSpec, Settings


class Source(Protocol):
    def fetch(self, spec: SeriesSpec, since: "pd.Timestamp | None") -> pd.DataFrame:
        """Observations on or after ``since`` (all history when None), oldest first."""


def make_source(kind: str, settings: Settings) -> Source:
    """Build the source for one kind; Yahoo's is imported lazily (yfinance is slow to import)."""
    if kind == "yahoo":
        from .yahoo import YahooSource
        return YahooSource(settings.sources, settings.data_dir)
    if kind == "fred":
        from .fred import FredSource
        return FredSource(settings.sources)
    if kind == "csv":
        from .csvfile import CsvSource
        return CsvSource(settings.sources)
    if kind == "sample":
        from .sample import SampleSource
        return SampleSource()
    raise ValueError(f"unknown source {kind!r}")
