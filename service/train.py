"""Training stage: turn one series' stored observations into a fitted model, a backtest and a
forecast. ``train_series`` runs in a worker process and touches nothing but its arguments, so the
result for a series is the same whatever the number of workers.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import zlib
from dataclasses import dataclass, field

import numpy as np

from .config import ModelSettings, Settings

# Settings that are the pipeline's, not the model's.
_PIPELINE_KEYS = ("warm_epochs", "full_retrain_days", "max_points")


def model_params(model: ModelSettings, key: str) -> dict:
    """Keyword arguments for ``RNNForecaster``: the configured knobs (None: the model's default)
    and a per-series seed, so that each series' fit is reproducible on its own."""
    params = {k: v for k, v in model.__dict__.items() if k not in _PIPELINE_KEYS and v is not None}
    params["seed"] = (model.seed + zlib.crc32(key.encode())) % (2 ** 31)
    return params


def settings_hash(settings: Settings, key: str) -> str:
    """Fingerprint of everything that shapes a fit; a change means: retrain from scratch."""
    from tickcast.models.persist import FORMAT_VERSION

    payload = {"model": model_params(settings.model, key), "max_points": settings.model.max_points,
               "horizon": settings.forecast.horizon, "level": settings.forecast.level,
               "min_length": settings.forecast.min_length, "format": FORMAT_VERSION}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class TrainTask:
    key: str
    series_id: int
    values: np.ndarray  # (N,) oldest first, units of the series
    params: dict
    horizon: int
    level: float
    warm_blob: bytes | None = None  # the fit to continue from (warm start), else None
    warm_epochs: int = 5


@dataclass
class TrainResult:
    key: str
    series_id: int
    status: str  # ok, failed
    error: str | None = None
    seconds: float = 0.0
    blob: bytes | None = None
    history: list[dict] = field(default_factory=list)
    backtest: dict = field(default_factory=dict)
    transform: str | None = None
    epochs: int | None = None
    best_epoch: int | None = None
    point: list[float] = field(default_factory=list)
    lower: list[float] = field(default_factory=list)
    upper: list[float] = field(default_factory=list)
    params: dict = field(default_factory=dict)


_blas_limited = False


def limit_blas_threads() -> None:
    """One BLAS thread per process. The matrices are small (B x H), so threads only add hand-offs,
    and OpenBLAS's spinning threads slow training several-fold when the cores are busy (measured:
    a default fit took 3.3 s instead of 0.67 s beside one other busy process on 2 cores)."""
    global _blas_limited
    if not _blas_limited:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="blas")
        _blas_limited = True


def _all_finite(*arrays) -> bool:
    return all(np.all(np.isfinite(np.asarray(a, dtype=float))) for a in arrays)


def train_series(task: TrainTask) -> TrainResult:
    """Fit (cold, or warm from ``task.warm_blob``), forecast ``horizon`` steps with intervals.

    Never raises for a bad series: a diverged or degenerate fit comes back as status "failed" with
    the reason, and nothing non-finite comes back at all."""
    from tickcast.models import RNNForecaster, SeriesTooShort, TrainingDiverged

    limit_blas_threads()
    started = time.perf_counter()
    try:
        model = RNNForecaster(**task.params)
        if task.warm_blob is not None:
            model.fit(task.values, warm_start=RNNForecaster.from_bytes(task.warm_blob), epochs=task.warm_epochs)
        else:
            model.fit(task.values)
        point = model.predict(task.horizon)
        lower, upper = model.predict_interval(task.horizon, level=task.level)
        history = [{k: (None if v is None else float(v)) for k, v in row.items()} for row in model.history_]
        losses = [row[k] for row in history for k in ("train_loss", "val_loss", "grad_norm", "clip_fraction")
                  if row.get(k) is not None]
        if not _all_finite(point, lower, upper, losses):
            raise TrainingDiverged("the fit produced non-finite losses or forecasts")
        backtest = {k: float(v) for k, v in model.backtest_.items()}
        if not _all_finite(list(backtest.values())):
            backtest = {k: v for k, v in backtest.items() if math.isfinite(v)}
        return TrainResult(
            task.key, task.series_id, "ok", seconds=time.perf_counter() - started, blob=model.to_bytes(),
            history=history, backtest=backtest, transform=model.transform_, epochs=model.n_epochs_,
            best_epoch=model.best_epoch_, point=[float(v) for v in point], lower=[float(v) for v in lower],
            upper=[float(v) for v in upper], params=model.get_params())
    except (TrainingDiverged, SeriesTooShort, ValueError, FloatingPointError) as exc:
        return TrainResult(task.key, task.series_id, "failed", error=f"{type(exc).__name__}: {exc}",
                           seconds=time.perf_counter() - started, params=task.params)
