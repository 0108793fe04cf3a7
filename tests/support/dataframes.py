"""What the DataFrame API's tests share: a small fast model, seasonal series, frames, and the
published forecaster fitted directly, as the service fits it (the reference each rule is checked
against)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from tickcast.models import RNNForecaster
from tickcast.service.run import published
from tickcast.service.run.values import forecaster_params
from tickcast.service.settings import ModelSettings

FAST = ModelSettings(forecaster=RNNForecaster(hidden_size=8, epochs=3, ensemble=1).config)


def seasonal(n: int, period: int, seed: int, level: float = 50.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return level + 5 * np.sin(2 * np.pi * t / period) + rng.normal(0, 0.5, n)


def direct(y, key: str, season, h: int, model: ModelSettings = FAST, seed: int = 0):
    """The published forecaster as the service fits it for a series of that key, season and horizon."""
    model = replace(model, forecaster=replace(model.forecaster, seed=seed))
    return published.forecaster(forecaster_params(model, key, season, h), model.members).fit(y)


def frame(uid, dates, y) -> pd.DataFrame:
    return pd.DataFrame({"unique_id": uid, "ds": dates, "y": y})


def family(n_series: int, n: int = 48) -> list[np.ndarray]:
    return [seasonal(n, 12, 20 + i, level=40.0 + 10 * i) for i in range(n_series)]


def monthly_frame(ys, start="2015-01-01") -> pd.DataFrame:
    dates = pd.date_range(start, periods=len(ys[0]), freq="MS")
    return pd.concat([frame(f"s{i}", dates, y) for i, y in enumerate(ys)], ignore_index=True)
