"""A kind of source the tests register beside the real ones (``monkeypatch.setitem(SOURCES, "ecb",
ecb_kind(...))``): three-letter currency codes, on trading days, with the endpoint setting of FRED."""

from __future__ import annotations

import re
from collections.abc import Callable

from tickcast.service.sources import SourceKind


def ecb_kind(series_settings: tuple[str, ...] = (), build: Callable = lambda sources, data_dir: None) -> SourceKind:
    return SourceKind(
        name="ecb",
        symbol=re.compile(r"[A-Z]{3}"),
        expected="a three-letter currency code",
        normalise=str.upper,
        defaults=lambda symbol: dict(name=f"EUR/{symbol}", frequency="B"),
        series_settings=series_settings,
        base_url_setting="fred_base_url",
        build=build,
    )
