"""``sample:<name>``: real series bundled with the package (see ``service/data/PROVENANCE.md``), so
tickcast works with no network at all. Dates in these files are US-style M/D/YYYY."""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

from ..errors import SourceError
from ..settings import SeriesSpec
from .kind import SourceKind

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Sample:
    file: str  # in service/data/
    name: str
    field: str  # the column forecast
    frequency: str
    price: bool
    calendar: str | None  # the trading days of a daily sample (see service/calendars.py)


# The bundled samples: the one list of their names.
SAMPLES = {
    "sp500": Sample("sp500.csv.gz", "S&P 500 index (sample)", "Adj Close", "B", True, "XNYS"),
    "nasdaq": Sample("nasdaq.csv.gz", "NASDAQ Composite (sample)", "Adj Close", "B", True, "XNAS"),
    # FRED's DCOILWTICO has prices on Columbus and Veterans Day and none on Good Friday: NYMEX's days
    "wti": Sample("wti.csv.gz", "WTI crude oil, USD/barrel (sample)", "DCOILWTICO", "B", True, "XNYS"),
    "core-cpi": Sample("core-cpi.csv.gz", "US core CPI index (sample)", "CPILFESL", "M", False, None),
}


def load_sample(name: str) -> pd.DataFrame:
    """The whole bundled file as read (all columns)."""
    import pandas as pd

    data = resources.files("tickcast.service").joinpath("data", SAMPLES[name].file)
    with data.open("rb") as raw, gzip.open(raw, "rt") as fh:
        return pd.read_csv(fh, dtype=str, keep_default_na=False)


class SampleSource:
    def fetch(self, spec: SeriesSpec, since: pd.Timestamp | None) -> pd.DataFrame:
        from .frames import to_observations

        table = load_sample(spec.symbol)
        if spec.field not in table.columns:
            raise SourceError(f"{spec.key}: no column {spec.field!r} (columns: {', '.join(table.columns[1:])})")
        return to_observations(table["Date"], table[spec.field], since, spec.key, date_format="%m/%d/%Y")


def _defaults(symbol: str) -> dict:
    sample = SAMPLES[symbol]
    return dict(name=sample.name, field=sample.field, frequency=sample.frequency, price=sample.price)


SOURCE = SourceKind(
    name="sample",
    symbol=re.compile("|".join(re.escape(name) for name in SAMPLES)),
    expected="one of " + ", ".join(SAMPLES),
    defaults=_defaults,
    build=lambda sources, data_dir: SampleSource(),
    calendar=lambda symbol: SAMPLES[symbol].calendar,
)
