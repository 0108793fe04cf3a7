"""The settings, as values: one frozen dataclass per section of ``tickcast.toml``, and the series of
the watchlist. ``config.py`` reads them from the file and the environment and checks them; every
other module only reads these values, and each run stage takes just the sections it needs.

This module imports nothing of tickcast's but the model's settings class, so that the sources, the
stages and the config can all depend on it without depending on each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tickcast.models.config import DEFAULT_MEMBERS, ForecasterConfig

# How long a writer waits for another process's lock on the database: a foreign writer (a backup, a
# bulk load, someone's sqlite3 shell) usually finishes well within it.
DEFAULT_BUSY_TIMEOUT_MINUTES = 10.0


@dataclass(frozen=True)
class SeriesSpec:
    """One configured series. ``frequency`` None means: inferred from the data."""

    key: str
    source: str
    symbol: str
    name: str | None = None
    field: str | None = None
    frequency: str | None = None
    price: bool | None = None  # non-positive values are rejected as bad data (None: source default)
    active: bool = True
    path: str | None = None  # csv: local file
    url: str | None = None  # csv: http(s) URL
    date_column: str | None = None
    value_column: str | None = None
    date_format: str | None = None
    # the trading calendar of its target dates, as configured (None: its source's, see sources/kind.py)
    calendar: str | None = None
    season_length: int | None = None  # the model's seasonal period; None: from the frequency
    horizon: int | None = None  # steps forecast; None: forecast.horizon, else its frequency's (frequencies.py)


@dataclass(frozen=True)
class SourceSettings:
    """``[sources]``: how the sources fetch."""

    history_start: str = ""  # first date fetched for a series with no stored rows; "" = all history
    overlap_days: int = 10  # re-fetch this many days before the last stored date to catch revisions
    http_timeout: float = 30.0
    retries: int = 3  # extra attempts after a rate limit, a 5xx or a timeout
    backoff_seconds: float = 2.0  # first retry delay; doubles per attempt
    yahoo_base_url: str = ""  # empty: Yahoo itself
    fred_base_url: str = "https://fred.stlouisfed.org/graph/fredgraph.csv"


@dataclass(frozen=True)
class ScheduleSettings:
    """``[schedule]``: when `tickcast serve` runs, and what `tickcast health` accepts."""

    cron: str = "30 17 * * mon-fri"  # after the US close
    timezone: str = "America/New_York"
    misfire_grace_hours: float = 6.0
    max_age_hours: float = 96.0  # `tickcast health` fails when the last good run is older
    max_failed_fraction: float = 0.5  # ... or when more of its series than this failed (all failing: always)
    start_retries: int = 3  # a run that could not start (the database stayed locked) is retried this often
    retry_minutes: float = 10.0  # after this long


@dataclass(frozen=True)
class ModelSettings:
    """``[model]``: the forecaster's settings (any field of ``tickcast.models.ForecasterConfig``,
    which declares, defaults and checks them; see models/README.md) and the service's own policy."""

    forecaster: ForecasterConfig = field(default_factory=ForecasterConfig)
    # The models the published forecast combines (tickcast.models.AutoForecaster): the RNN above and
    # statistical challengers; each one's forecast is stored and scored too. ("rnn",): the RNN alone.
    members: tuple[str, ...] = DEFAULT_MEMBERS
    full_retrain_days: int = 7  # retrain from scratch when the last cold fit is this old
    max_points: int = 2500  # train on the most recent points only
    # "series": one model per series; "group": one model per frequency group (fit_many); "auto":
    # on cold fits of a group that qualifies, train both and keep the better (service/run/plan.py).
    training: str = "auto"
    group_min_series: int = 10  # fewer active series of one frequency train per series
    # "auto" trains a group only while its median length is at most this many points: long
    # series learn enough alone, and one model over hundreds of long series costs one core minutes
    group_max_median_length: int = 1000


@dataclass(frozen=True)
class ForecastSettings:
    """``[forecast]``: what is forecast and stored."""

    # Steps forecast for every series; None (the default): each series' frequency says (the M
    # competitions' horizons: 5 trading days, 14 days, 13 weeks, 18 months, 8 quarters, 6 years).
    horizon: int | None = None
    levels: tuple[float, ...] = (0.8, 0.95)  # the prediction intervals stored, as coverages
    min_length: int = 3  # shorter series are skipped with a recorded reason (the model needs 3: MIN_LENGTH)
    # Adaptive intervals (service/run/adaptive.py): how fast realised coverage moves the interval
    # factor; 0 keeps the model's own intervals.
    interval_adapt_rate: float = 0.05


@dataclass(frozen=True)
class ExecutorSettings:
    """Where training runs (``[service]`` executor, workers, dask_address): see service/executors/."""

    name: str = "local"  # a key of executors.EXECUTORS: "local" (worker processes) or "dask" (a cluster)
    workers: int = 1  # local worker processes
    dask_address: str = ""  # the Dask scheduler, e.g. tcp://scheduler:8786 (executor "dask")


@dataclass(frozen=True)
class Settings:
    config_path: str  # where the settings came from ("<packaged default>" or a path)
    db_url: str
    data_dir: str
    series: tuple[SeriesSpec, ...]
    sources: SourceSettings = field(default_factory=SourceSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    forecast: ForecastSettings = field(default_factory=ForecastSettings)
    execution: ExecutorSettings = field(default_factory=ExecutorSettings)
    busy_timeout_minutes: float = DEFAULT_BUSY_TIMEOUT_MINUTES  # how long a writer waits for another's lock

    @property
    def busy_timeout(self) -> float:
        """``busy_timeout_minutes`` in seconds, as the database functions take it."""
        return self.busy_timeout_minutes * 60

    @property
    def workers(self) -> int:
        return self.execution.workers

    def series_by_key(self) -> dict[str, SeriesSpec]:
        return {s.key: s for s in self.series}
