"""``sample:<name>``: real series bundled with the package (see ``service/data/PROVENANCE.md``), so
tickcast works with no network at all. Dates in these files are US-style M/D/YYYY."""

from __future__ import annotations

import gzip
from importlib import resources

import pandas as pd

from ..config import SeriesSpec
from ..errors import SourceError
from .frames import to_observations

FILES = {"sp500": "sp500.csv.gz", "nasdaq": "nasdaq.csv.gz", "wti": "wti.csv.gz", "core-cpi": "core-cpi.csv.gz"}


def load_sample(name: str) -> pd.DataFrame:
    """The whole bundled file as read (all columns)."""
    with resources.files("tickcast.service").joinpath("data", FILES[name]).open("rb") as raw, gzip.open(raw, "rt") as fh:
        return pd.read_csv(fh, dtype=str, keep_default_na=False)


class SampleSource:
    def fetch(self, spec: SeriesSpec, since: pd.Timestamp | None) -> pd.DataFrame:
        table = load_sample(spec.symbol)
        if spec.field not in table.columns:
            raise SourceError(f"{spec.key}: no column {spec.field!r} (columns: {', '.join(table.columns[1:])})")
        return to_observations(table["Date"], table[spec.field], since, spec.key, date_format="%m/%d/%Y")
