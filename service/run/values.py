"""The values the run's stages hand each other, and the fingerprints of a fit's settings.

- ``FitRecord``: one row of ``fits`` as the plan stage decides it (immutable: a variant is made with
  ``dataclasses.replace``; the store stage writes it as given).
- ``SeriesTask`` / ``GroupTask``: the train stage's units of work; ``SeriesResult`` /
  ``GroupResult`` (with a ``Forecast`` per series): what comes back. Plain data only (arrays,
  bytes, dicts), so any executor can carry them.
- ``forecaster_params`` and the fingerprints ``series_hash`` / ``group_hash``: everything that
  shapes a fit, computed once per series by the plan stage (a change trains cold).

It imports nothing of the run's stages: every stage may depend on it.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from tickcast.models.persist import FORMAT_VERSION

from ..settings import ForecastSettings, ModelSettings
from ..status import FitMode, FitScope, FitStatus

# --- fingerprints -------------------------------------------------------------------------------


def forecaster_params(model: ModelSettings, seed_key: str, season_length: int | tuple[int, ...], horizon: int) -> dict:
    """Keyword arguments for ``RNNForecaster``: the configured ForecasterConfig, the season and
    horizon the service sets, and a seed derived from ``seed_key`` (a series' or a group's key), so
    each fit is reproducible on its own. The model's read-out covers ``horizon`` steps, or more when
    the model's own default for the season is longer (a season and a half, at least 8: a monthly
    model learns from windows longer than a year even when five months are asked for). Several
    seasons (24 and 168 for hourly data, from the DataFrame API): the longest sets that default."""
    params = model.forecaster.to_dict()
    longest = max(season_length) if isinstance(season_length, tuple) else season_length
    own = model.forecaster.head(max(longest, 1))
    params.update(
        seed=(model.forecaster.seed + zlib.crc32(seed_key.encode())) % (2**31),
        season_length=season_length,
        horizon=horizon if horizon > own else 0,
    )
    return params


def _fingerprint(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _basis(model: ModelSettings, forecast: ForecastSettings, horizon: int) -> dict:
    # horizon: the forecasts stored with a fit have that many steps, even where the model's
    # read-out, and so its training, is the same.
    return {
        "max_points": model.max_points,
        "levels": list(forecast.levels),
        "models": list(model.members),  # not "members": a group's payload names its series with that
        "horizon": horizon,
        "min_length": forecast.min_length,
        "format": FORMAT_VERSION,
    }


def series_hash(
    params: dict, model: ModelSettings, forecast: ForecastSettings, horizon: int, group_hash: str | None = None
) -> str:
    """Fingerprint of everything that shapes one series' own fit (``params``: its
    ``forecaster_params``; ``horizon``: the steps it stores); a change means: retrain from scratch.
    ``group_hash``: the group whose training ``auto`` decided for this series (so that a change of
    the group, such as a member joining, decides again)."""
    basis = _basis(model, forecast, horizon)
    return _fingerprint({"scope": "series", "model": params, "group": group_hash, **basis})


def group_hash(
    params: dict, model: ModelSettings, forecast: ForecastSettings, horizon: int, member_keys: list[str]
) -> str:
    """Fingerprint of a group's shared fit: its settings, the steps it forecasts and its members'
    keys, in order (a membership change trains the group from scratch)."""
    basis = _basis(model, forecast, horizon)
    return _fingerprint({"scope": "group", "model": params, "members": list(member_keys), **basis})


# --- the row a fit writes -----------------------------------------------------------------------


@dataclass(frozen=True)
class FitRecord:
    """One ``fits`` row besides the model's own result, as the plan stage decides it."""

    run_id: int
    series_id: int | None  # None: a group's shared fit
    status: FitStatus
    settings_hash: str
    mode: FitMode | None = None
    warm_started_from: int | None = None
    cell: str | None = None
    train_start: date | None = None
    train_end: date | None = None
    n_obs: int | None = None
    error: str | None = None
    frequency: str | None = None
    calendar: str | None = None  # series.calendar: the trading days of a daily series' target dates
    levels: tuple[float, ...] = (0.8,)  # the coverages of the intervals stored
    interval_adapt_rate: float = 0.0  # forecast.interval_adapt_rate (0: the model's intervals as they are)
    scope: FitScope = FitScope.SERIES
    group_key: str | None = None
    group_fit_id: int | None = None  # a member's row: the shared fit (set by the store stage, which knows its id)
    n_series: int | None = None  # a shared fit: its number of series
    note: str | None = None
    horizon: int | None = None  # the steps stored (a group's members may ask for fewer than its model forecasts)
    backfill: bool = False  # made by tickcast backfill at a past origin


# --- tasks and results --------------------------------------------------------------------------


@dataclass
class SeriesTask:
    key: str
    series_id: int
    values: np.ndarray  # (N,) oldest first, units of the series
    params: dict
    horizon: int
    levels: tuple[float, ...]
    members: tuple[str, ...]  # the models the published forecast combines
    warm_blob: bytes | None = None  # the fit to continue from (warm start), else None


@dataclass
class SeriesBatch:
    """Per-series tasks whose settings differ in the seed alone, trained as one computation
    (``AutoForecaster.fit_each``: the same models as one task each, faster)."""

    tasks: list[SeriesTask]


Intervals = dict[float, tuple[list[float], list[float]]]  # level -> (lower, upper), each (h,)


@dataclass
class ModelForecast:
    """One model's forecast of a series: the point forecast (h,) and its intervals by level."""

    point: list[float] = field(default_factory=list)
    intervals: Intervals = field(default_factory=dict)


@dataclass
class Forecast:
    """One series' part of a result: its backtest (values may be None), the published forecast
    (h,) with its intervals, and each combined model's own forecast (``members``, by name)."""

    backtest: dict = field(default_factory=dict)
    point: list[float] = field(default_factory=list)
    intervals: Intervals = field(default_factory=dict)
    transform: str | None = None  # the series' scale in the RNN ("log" or "linear")
    members: dict[str, ModelForecast] = field(default_factory=dict)
    combination: dict | None = None  # how the models were combined: {"weights": {name: w}, "rule": ...}


@dataclass
class SeriesResult:
    key: str
    series_id: int
    status: str  # FitStatus: ok, failed
    error: str | None = None
    seconds: float = 0.0
    blob: bytes | None = None
    history: list[dict] = field(default_factory=list)
    transform: str | None = None
    epochs: int | None = None
    best_epoch: int | None = None
    params: dict = field(default_factory=dict)
    warm: bool = False  # the fit continued the given model (False: cold, also after a failed warm start)
    note: str | None = None  # why a warm start was abandoned for a cold fit
    forecast: Forecast = field(default_factory=Forecast)


@dataclass
class GroupTask:
    group_key: str
    keys: list[str]  # the members, in order
    series_ids: list[int]
    values: list[np.ndarray]  # each (N_i,), oldest first
    params: dict
    horizon: int
    levels: tuple[float, ...]
    members: tuple[str, ...]
    warm_blob: bytes | None = None  # the group's shared fit to continue from


@dataclass
class GroupPart:
    """Part ``part`` of ``parts`` of a group's fit (``AutoForecaster.fit_many_part``): the parts run on
    different workers at once, and the driver combines them into the model ``fit_many`` gives."""

    task: GroupTask
    part: int
    parts: int


@dataclass
class PartResult:
    """A part's share of a group's fit (``models.auto_parts.AutoPart``), whether it continued the
    group's previous model, and why not (the same for every part: each decides alike)."""

    part: object
    warm: bool
    note: str | None
    seconds: float


@dataclass
class GroupResult:
    group_key: str
    status: str  # FitStatus: ok, failed
    error: str | None = None
    seconds: float = 0.0
    blob: bytes | None = None
    history: list[dict] = field(default_factory=list)
    transform: str | None = None
    epochs: int | None = None
    best_epoch: int | None = None
    params: dict = field(default_factory=dict)
    warm: bool = False
    note: str | None = None
    forecasts: list[Forecast] = field(default_factory=list)  # one per member, in the task's order


@dataclass
class GroupTrained:
    """A group's results: its shared model's, and (``auto``'s comparison) each member's own."""

    group: GroupResult
    alone: list[SeriesResult] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return self.group.seconds + sum(r.seconds for r in self.alone)


Trained = SeriesResult | GroupTrained


def relative_mae(backtest: dict) -> float | None:
    """The backtest's MAE over the naive forecast's (one step, the validation part); None where
    it is undefined (no validation part, a perfect naive forecast)."""
    mae, naive = backtest.get("mae"), backtest.get("naive_mae")
    if mae is None or not naive:
        return None
    return float(mae / naive)
