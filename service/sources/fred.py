"""FRED through its keyless CSV endpoint, ``fredgraph.csv?id=<ID>``.

The date column's header has changed over the years (``DATE``, ``observation_date``), so the first
column is the date whatever it is called; the value column is the one named after the series, else
the second. FRED writes missing values as ``.`` or leaves the cell empty.
"""

from __future__ import annotations

import io
import re
from typing import TYPE_CHECKING

from ..errors import SourceError
from ..settings import SeriesSpec, SourceSettings
from .kind import SourceKind

if TYPE_CHECKING:
    import pandas as pd


class FredSource:
    def __init__(self, settings: SourceSettings):
        self.settings = settings

    def fetch(self, spec: SeriesSpec, since: pd.Timestamp | None) -> pd.DataFrame:
        from .http import http_get

        params = {"id": spec.symbol}
        if since is not None:
            params["cosd"] = since.strftime("%Y-%m-%d")  # FRED's "chart observation start date"
        what = f"fred:{spec.symbol}"
        text = http_get(self.settings.fred_base_url, self.settings, what, params=params)
        return parse_fred_csv(text, spec.symbol, since, what)


def parse_fred_csv(text: str, series_id: str, since: pd.Timestamp | None, what: str) -> pd.DataFrame:
    import pandas as pd

    from .csvfile import parser_failure
    from .frames import check_complete, to_observations

    if text.lstrip().startswith("<"):
        raise SourceError(f"{what}: FRED answered with a web page, not CSV (unknown series id?)")
    try:
        table = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise SourceError(f"{what}: {parser_failure(exc)} from FRED") from None
    if table.shape[1] < 2:
        raise SourceError(f"{what}: FRED CSV has {table.shape[1]} column(s); expected a date and a value")
    columns = list(table.columns)
    value_column = series_id if series_id in columns else columns[1]
    check_complete(text, table, columns[0], value_column, what)
    return to_observations(table[columns[0]], table[value_column], since, what)


SOURCE = SourceKind(
    name="fred",
    symbol=re.compile(r"[A-Za-z0-9_]{1,40}"),  # FRED series ids
    expected="a FRED series id of letters, digits and _",
    normalise=str.upper,  # FRED ignores case
    defaults=lambda symbol: dict(name=symbol, field=symbol),
    base_url_setting="fred_base_url",
    build=lambda sources, data_dir: FredSource(sources),
    calendar=lambda symbol: "us-federal",  # daily FRED series are published on US business days
)
