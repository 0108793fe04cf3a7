"""The statistical challengers' common contract, the RNN's: ``fit(y)`` / ``fit_many(ys)``,
``predict(h)`` / ``predict_many(h)``, ``predict_interval[_many](h, level)``, ``backtest_`` /
``backtests_``, ``to_bytes()`` / ``from_bytes()``; and the two simplest challengers, the naive and
the seasonal naive forecasts.

Every fit follows ``models.validation``: parameters fitted on the series' first part forecast
its validation part from every origin (``validation_``: the split and the (v, horizon) forecasts,
per series), which gives the one-step backtest against the naive forecast and the conformal
interval residuals (pooled over the series of a ``fit_many``); then the model is fitted again on
all of each series. A subclass says how to fit parameters (``_fit_states``) and how to forecast
from given origins with them fixed (``_forecasts``).
"""

from __future__ import annotations

import json

import numpy as np

from . import metrics, persist
from .conformal import Conformal, levels_of, on_log_scale, random_walk_residuals, residuals
from .errors import SeriesTooShort
from .seasonality import detect_period
from .validation import default_horizon, split_point

MAGIC = b"tickcast-challenger\n"


def as_series(y, what: str = "y", min_length: int = 1) -> np.ndarray:
    """y as a 1-D float64 array; ValueError for a bad shape or non-finite values."""
    arr = np.asarray(y, dtype=np.float64)
    if arr.ndim != 1:
        arr = np.squeeze(arr)
        if arr.ndim != 1:
            raise ValueError(f"{what} must be one-dimensional, got shape {np.shape(y)}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} contains NaN or infinite values; drop or fill them first")
    if arr.size < min_length:
        raise SeriesTooShort(f"{what} has {arr.size} point(s); at least {min_length} needed")
    return arr


def check_steps(h) -> int:
    if isinstance(h, bool) or not isinstance(h, int | np.integer) or h < 1:
        raise ValueError(f"h must be a positive integer, got {h!r}")
    return int(h)


def scores(actual, pred, naive, scale: float) -> dict:
    """Backtest dict (the RNN's keys): the model's and the naive forecast's MAE, RMSE, sMAPE and
    MASE, the relative MAE and the MASE scale; values None without a validation part."""
    keys = ("mae", "rmse", "smape", "mase", "naive_mae", "naive_rmse", "naive_smape", "naive_mase", "relative_mae")
    if actual is None or len(actual) == 0:
        return {"n": 0, **{k: None for k in keys}, "mase_scale": scale}
    out: dict = {"n": int(len(actual))}
    for prefix, p in (("", pred), ("naive_", naive)):
        out[prefix + "mae"] = metrics.mae(actual, p)
        out[prefix + "rmse"] = metrics.rmse(actual, p)
        out[prefix + "smape"] = metrics.smape(actual, p)
        out[prefix + "mase"] = out[prefix + "mae"] / scale if scale > 0 else None
    out["relative_mae"] = out["mae"] / out["naive_mae"] if out["naive_mae"] > 0 else None
    out["mase_scale"] = scale
    return out


def backtest(y: np.ndarray, split: int, forecasts: np.ndarray | None) -> dict:
    """One-step scores of the validation forecasts (v, H) of y against the naive forecast."""
    if forecasts is None or split >= y.size:
        return scores(None, None, None, metrics.naive_scale(y) if y.size > 1 else 0.0)
    t = np.arange(split, y.size)
    scale = metrics.naive_scale(y[:split]) if split > 1 else 0.0
    return scores(y[t], forecasts[:, 0], y[t - 1], scale)


def finite_or_naive(F: np.ndarray, y: np.ndarray, origins: np.ndarray) -> np.ndarray:
    """Forecast rows (O, h) with any non-finite row replaced by the naive forecast from its origin."""
    bad = ~np.all(np.isfinite(F), axis=1)
    if bad.any():
        F = F.copy()
        F[bad] = y[np.asarray(origins)[bad] - 1][:, None]
    return F


class Challenger:
    """Base class. ``season_length``: the period (0: detect per series, 1: none); ``horizon``:
    how far validation forecasts reach (0: a season and a half, 8 to 48); ``seed`` for the common
    signature (these models draw no random numbers)."""

    kind = "challenger"

    def __init__(self, season_length: int = 0, horizon: int = 0, seed: int = 0, **settings):
        for name, v in (("season_length", season_length), ("horizon", horizon), ("seed", seed)):
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {v!r}")
        self.season_length, self.horizon, self.seed = int(season_length), int(horizon), int(seed)
        self.settings = self._check_settings(settings)
        self._ys: list[np.ndarray] = []

    def _check_settings(self, settings: dict) -> dict:
        if settings:
            raise ValueError(f"{type(self).__name__} has no setting(s) {sorted(settings)}")
        return {}

    def get_params(self) -> dict:
        return {"season_length": self.season_length, "horizon": self.horizon, "seed": self.seed, **self.settings}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"

    # ------------------------------------------------------------------ hooks
    def _fit_states(self, ys: list[np.ndarray], ms: list[int]) -> list[dict]:
        """JSON-able fitted parameters of each series (period ms[i])."""
        return [{} for _ in ys]

    def _forecasts(self, y: np.ndarray, state: dict, m: int, origins: np.ndarray, h: int) -> np.ndarray:
        """(O, h) forecasts from the histories y[:t], t in origins, parameters fixed."""
        raise NotImplementedError

    # ---------------------------------------------------------------- fitting
    def fit(self, y):
        """Fit on one series (1-D, oldest first, finite); returns self."""
        return self._fit([as_series(y)])

    def fit_many(self, ys, season_lengths=None):
        """Fit every series (each its own parameters; interval residuals pooled); returns self.
        ``season_lengths``: one period per series instead of ``season_length``."""
        ys = [as_series(y, what=f"series {i}") for i, y in enumerate(ys)]
        if not ys:
            raise ValueError("fit_many needs at least one series")
        if season_lengths is not None:
            periods = [int(m) for m in season_lengths]
            if len(periods) != len(ys) or any(m < 1 for m in periods):
                raise ValueError("season_lengths must give a period >= 1 for every series")
            return self._fit(ys, periods)
        return self._fit(ys)

    def _periods(self, ys: list[np.ndarray]) -> list[int]:
        if self.season_length:
            return [self.season_length] * len(ys)
        return [detect_period(y) if y.size > 8 else 1 for y in ys]

    def _fit(self, ys: list[np.ndarray], periods: list[int] | None = None):
        ms = periods or self._periods(ys)
        H = self.horizon or default_horizon(max(ms))
        splits = [split_point(y.size, m, H) for y, m in zip(ys, ms)]
        held = [i for i, (y, s) in enumerate(zip(ys, splits)) if s < y.size]
        val_states = self._fit_states([ys[i][: splits[i]] for i in held], [ms[i] for i in held])
        self.validation_: list[tuple[int, np.ndarray | None]] = [(y.size, None) for y in ys]
        for i, st in zip(held, val_states):
            origins = np.arange(splits[i], ys[i].size)
            F = finite_or_naive(self._forecasts(ys[i], st, ms[i], origins, H), ys[i], origins)
            self.validation_[i] = (splits[i], F)
        self._states = self._fit_states(ys, ms)
        self._ys, self._ms, self.horizon_ = ys, ms, H
        self.backtests_ = [backtest(y, s, F) for y, (s, F) in zip(ys, self.validation_)]
        self.backtest_ = self.backtests_[0]
        self.season_lengths_ = ms
        self.season_length_ = ms[0]
        self.n_series_ = len(ys)
        self._conformal = Conformal.from_residuals(self._residual_rows(), H)
        return self

    def _residual_rows(self) -> list[np.ndarray]:
        rows = []
        for y, (s, F) in zip(self._ys, self.validation_):
            log = on_log_scale(y)
            rows.append(residuals(y, F, s, log) if F is not None else random_walk_residuals(y, self.horizon_, log))
        return rows

    # ------------------------------------------------------------- forecasting
    def _check_fitted(self) -> None:
        if not self._ys:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit(y) or fit_many(ys) first")

    def _one(self) -> int:
        self._check_fitted()
        if len(self._ys) != 1:
            raise ValueError(f"the model was fitted on {len(self._ys)} series: use predict_many(h)")
        return 0

    def _point(self, i: int, h: int) -> np.ndarray:
        y = self._ys[i]
        F = self._forecasts(y, self._states[i], self._ms[i], np.array([y.size]), h)
        return finite_or_naive(F, y, np.array([y.size]))[0]

    def predict(self, h: int) -> np.ndarray:
        """Point forecasts (h,) for the next h steps, units of y, always finite."""
        return self._point(self._one(), check_steps(h))

    def predict_many(self, h: int) -> list[np.ndarray]:
        self._check_fitted()
        h = check_steps(h)
        return [self._point(i, h) for i in range(len(self._ys))]

    def predict_interval(self, h: int, level=0.8):
        """``(lower, upper)`` each (h,) for one level; a list of them for a list of levels."""
        return self._interval(self._one(), check_steps(h), level)

    def predict_interval_many(self, h: int, level=0.8) -> list:
        self._check_fitted()
        h = check_steps(h)
        return [self._interval(i, h, level) for i in range(len(self._ys))]

    def _interval(self, i: int, h: int, level):
        levels, single = levels_of(level)
        point = self._point(i, h)
        out = [self._conformal.interval(self._ys[i], point, lv) for lv in levels]
        return out[0] if single else out

    # ------------------------------------------------------------- persistence
    def to_bytes(self) -> bytes:
        """The fitted model (its series, parameters, backtests and residual quantiles) as bytes;
        :meth:`from_bytes` restores identical forecasts and intervals."""
        self._check_fitted()
        meta = {
            "class": type(self).__name__,
            "params": self.get_params(),
            "states": self._states,
            "periods": self._ms,
            "horizon": self.horizon_,
            "splits": [s for s, _ in self.validation_],
            "backtests": self.backtests_,
        }
        arrays = {
            "series": np.concatenate(self._ys),
            "lengths": np.array([y.size for y in self._ys], dtype=np.int64),
            "residual_quantiles": self._conformal.Q,
            "residual_counts": self._conformal.counts,
        }
        for i, (_, F) in enumerate(self.validation_):
            if F is not None:
                arrays[f"validation_{i}"] = F
        return MAGIC + persist.pack(meta, arrays)

    @classmethod
    def from_bytes(cls, blob: bytes):
        blob = bytes(blob)
        if not blob.startswith(MAGIC):
            raise ValueError("not a tickcast challenger blob (bad magic bytes)")
        meta, arrays = persist.unpack(blob[len(MAGIC) :])
        try:
            if meta["class"] != cls.__name__:
                raise ValueError(f"the blob holds a {meta['class']}, not a {cls.__name__}")
            m = cls(**meta["params"])
            lengths = arrays["lengths"]
            if int(lengths.sum()) != arrays["series"].size or len(meta["states"]) != lengths.size:
                raise ValueError("corrupt challenger blob: its arrays disagree with its header")
            m._ys = list(np.split(arrays["series"], np.cumsum(lengths)[:-1]))
            m._states, m._ms, m.horizon_ = meta["states"], [int(v) for v in meta["periods"]], int(meta["horizon"])
            m.validation_ = [(int(s), arrays.get(f"validation_{i}")) for i, s in enumerate(meta["splits"])]
            m.backtests_ = meta["backtests"]
        except (KeyError, TypeError, IndexError, json.JSONDecodeError) as exc:
            raise ValueError(f"corrupt challenger blob: {type(exc).__name__}: {exc}") from None
        m.backtest_ = m.backtests_[0]
        m.season_lengths_, m.season_length_, m.n_series_ = m._ms, m._ms[0], len(m._ys)
        m._conformal = Conformal(arrays["residual_quantiles"], arrays["residual_counts"])
        return m


class Naive(Challenger):
    """The last value, repeated (the random walk)."""

    kind = "naive"

    def _forecasts(self, y, state, m, origins, h):
        return np.repeat(y[np.asarray(origins) - 1][:, None], h, axis=1)


class SeasonalNaive(Challenger):
    """The last full season, repeated: step k from origin t is y[t - m + (k - 1) % m] (naive while
    there is less than a season of history)."""

    kind = "seasonal_naive"

    def _forecasts(self, y, state, m, origins, h):
        o = np.asarray(origins)[:, None]
        k = np.arange(h)[None, :]
        if m <= 1:
            return np.repeat(y[o[:, 0] - 1][:, None], h, axis=1)
        idx = np.where(o >= m, o - m + k % m, o - 1 + 0 * k)
        return y[idx]


__all__ = ["Challenger", "Naive", "SeasonalNaive", "as_series", "backtest", "scores", "check_steps"]
