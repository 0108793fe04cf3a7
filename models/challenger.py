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


def size_chunks(sizes, width: int, most: int, budget: int) -> list[list[int]]:
    """Indices of series of lengths ``sizes`` in chunks fitted together, shortest first: each chunk
    at most ``most`` series and, beyond its first, at most ``budget`` elements for its (T, S,
    width) arrays (T: its longest series; ``width``: candidates per series)."""
    out: list[list[int]] = []
    for i in np.argsort(sizes, kind="stable"):
        chunk = out[-1] if out else None
        if chunk is None or len(chunk) >= most or (len(chunk) + 1) * width * sizes[i] > budget:
            out.append([int(i)])
        else:
            chunk.append(int(i))
    return out


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


# A warm start whose series' values were revised since still continues it if the first half of
# the points they share, up to this many, match.
HEAD_MATCH = 16


def continuation(old: np.ndarray, new: np.ndarray) -> int | None:
    """How many points the series ``new`` dropped at the start of ``old`` (a rolling window drops
    some; 0 when it starts where old started): the smallest k where new continues old[k:] (all
    their common points equal); failing that (values revised since), the smallest k where the
    first half of their common points (at most HEAD_MATCH) are equal. None when new matches
    nowhere in old."""
    if new.size == 0 or old.size == 0:
        return None
    candidates = np.flatnonzero(old == new[0])
    for revised in (False, True):
        for k in candidates:
            r = min(new.size, old.size - int(k))
            r = min(HEAD_MATCH, max(r // 2, 1)) if revised else r
            if np.array_equal(new[:r], old[k : k + r]):
                return int(k)
    return None


def _residual_rows(ys: list[np.ndarray], validation: list, H: int) -> list[np.ndarray]:
    rows = []
    for y, (s, F) in zip(ys, validation):
        log = on_log_scale(y)
        rows.append(residuals(y, F, s, log) if F is not None else random_walk_residuals(y, H, log))
    return rows


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

    def _final_states(self, ys: list[np.ndarray], ms: list[int], val_states: dict[int, tuple[int, dict]]) -> list[dict]:
        """Every series' final fit, on all of it; ``val_states``: (split, state) of the series that
        have a validation fit (on ``y[:split]``), by series index. By default a fit from scratch
        (:meth:`_fit_states`)."""
        return self._fit_states(ys, ms)

    def _forecasts(self, y: np.ndarray, state: dict, m: int, origins: np.ndarray, h: int) -> np.ndarray:
        """(O, h) forecasts from the histories y[:t], t in origins, parameters fixed."""
        raise NotImplementedError

    def _advance(self, y: np.ndarray, state: dict, m: int, k: int) -> dict:
        """The state of the series y without its first k points (a warm start whose series lost
        points at its start): the parameters, with the recursion run over those k points."""
        return state

    # ---------------------------------------------------------------- fitting
    def fit(self, y, warm_start: Challenger | None = None):
        """Fit on one series (1-D, oldest first, finite); returns self. ``warm_start``: a model
        fitted before on this series (fewer points at its end, possibly more at its start): its
        parameters are kept and its states run over the new points (no parameter search, no
        validation: its backtest and interval residuals are kept too)."""
        return self.fit_many([as_series(y)], warm_start=warm_start)

    def fit_many(self, ys, season_lengths=None, warm_start: Challenger | None = None, splits=None):
        """Fit every series (each its own parameters; interval residuals pooled); returns self.
        ``season_lengths``: one period per series instead of ``season_length``; ``warm_start``:
        as in :meth:`fit`, a model fitted on these series before (same order); ``splits``: each
        series' first validation origin instead of ``models.validation.split_point``'s (another
        model's validation part, to be combined with it; its length for none)."""
        ys = [as_series(y, what=f"series {i}") for i, y in enumerate(ys)]
        if not ys:
            raise ValueError("fit_many needs at least one series")
        periods = None
        if season_lengths is not None:
            periods = [int(m) for m in season_lengths]
            if len(periods) != len(ys) or any(m < 1 for m in periods):
                raise ValueError("season_lengths must give a period >= 1 for every series")
        if warm_start is not None:
            return self._warm(warm_start, ys, periods)
        if splits is not None:
            splits = [int(v) for v in splits]
            if len(splits) != len(ys) or any(not (2 <= v <= y.size or v == y.size) for v, y in zip(splits, ys)):
                raise ValueError("splits must give each series a first validation origin in 2..its length")
        return self._fit(ys, periods, splits)

    def _periods(self, ys: list[np.ndarray]) -> list[int]:
        if self.season_length:
            return [self.season_length] * len(ys)
        return [detect_period(y) if y.size > 8 else 1 for y in ys]

    def _fit(self, ys: list[np.ndarray], periods: list[int] | None = None, splits: list[int] | None = None):
        ms = periods or self._periods(ys)
        H = self.horizon or default_horizon(max(ms))
        if splits is None:
            splits = [split_point(y.size, m, H) for y, m in zip(ys, ms)]
        held = [i for i, (y, s) in enumerate(zip(ys, splits)) if s < y.size]
        val_states = self._fit_states([ys[i][: splits[i]] for i in held], [ms[i] for i in held])
        validation: list[tuple[int, np.ndarray | None]] = [(y.size, None) for y in ys]
        for i, st in zip(held, val_states):
            origins = np.arange(splits[i], ys[i].size)
            F = finite_or_naive(self._forecasts(ys[i], st, ms[i], origins, H), ys[i], origins)
            validation[i] = (splits[i], F)
        states = self._final_states(ys, ms, {i: (splits[i], st) for i, st in zip(held, val_states)})
        backtests = [backtest(y, s, F) for y, (s, F) in zip(ys, validation)]
        rows = _residual_rows(ys, validation, H)
        return self._adopt(ys, ms, H, states, validation, backtests, Conformal.from_residuals(rows, H), False)

    def _adopt(self, ys, ms, H, states, validation, backtests, conformal: Conformal, warm: bool):
        self._ys, self._ms, self.horizon_, self._states = ys, list(ms), int(H), states
        self.validation_, self.backtests_, self._conformal = validation, backtests, conformal
        self.backtest_ = self.backtests_[0]
        self.season_lengths_, self.season_length_ = self._ms, self._ms[0]
        self.n_series_, self.warm_started_ = len(ys), warm
        self._cache: dict = {}
        return self

    def _warm(self, prev: Challenger, ys: list[np.ndarray], periods: list[int] | None):
        if type(prev) is not type(self) or not prev._ys:
            raise ValueError(f"warm_start must be a fitted {type(self).__name__}")
        ours, theirs = self.get_params(), prev.get_params()
        diff = {k: (theirs[k], ours[k]) for k in ours if k != "seed" and ours[k] != theirs.get(k)}
        if diff:
            raise ValueError(f"warm_start model differs in {diff} (theirs, ours)")
        if len(ys) != len(prev._ys):
            raise ValueError(f"warm_start model was fitted on {len(prev._ys)} series, not {len(ys)}")
        if periods is not None and periods != prev._ms:
            raise ValueError(f"warm_start model uses periods {prev._ms}, not {periods}")
        states = []
        for i, (y, old, st, m) in enumerate(zip(ys, prev._ys, prev._states, prev._ms)):
            k = continuation(old, y)
            if k is None:
                raise ValueError(
                    f"series {i} does not continue the one the warm start was fitted on "
                    "(no stretch of its start matches that series): fit it cold"
                )
            states.append(self._advance(old, st, m, k) if k else st)
        return self._adopt(
            ys, prev._ms, prev.horizon_, states, prev.validation_, prev.backtests_, prev._conformal, True
        )

    def split(self) -> list[Challenger]:
        """One model per series, each the one ``fit`` of that series alone gives (its own
        interval residuals) when the horizon is set (``horizon=``) and the periods are the same."""
        self._check_fitted()
        if self.warm_started_:
            raise ValueError("split: a warm-started model's residuals are its previous model's; split cold fits")
        rows = _residual_rows(self._ys, self.validation_, self.horizon_)
        return [
            type(self)(**self.get_params())._adopt(
                [y], [m], self.horizon_, [st], [v], [b], Conformal.from_residuals([r], self.horizon_), False
            )
            for y, m, st, v, b, r in zip(self._ys, self._ms, self._states, self.validation_, self.backtests_, rows)
        ]

    def subset(self, lo: int, hi: int) -> Challenger:
        """The model of series lo..hi-1 alone, its interval residuals still those of all series
        (a warm start for a slice of the series, see :meth:`concat`)."""
        self._check_fitted()
        sl = slice(lo, hi)
        return type(self)(**self.get_params())._adopt(
            self._ys[sl],
            self._ms[sl],
            self.horizon_,
            self._states[sl],
            self.validation_[sl],
            self.backtests_[sl],
            self._conformal,
            self.warm_started_,
        )

    @classmethod
    def concat(cls, parts: list[Challenger]) -> Challenger:
        """The models of consecutive slices of a list of series as one model of all of them: what
        ``fit_many`` of the whole list gives (interval residuals pooled over all series), given
        the same horizon and periods. Warm parts keep their (shared) previous residuals."""
        parts = list(parts)
        if not parts or any(type(p) is not cls or not p._ys for p in parts):
            raise ValueError(f"concat needs fitted {cls.__name__} models")
        first = parts[0]
        for p in parts[1:]:
            if p.get_params() != first.get_params() or p.horizon_ != first.horizon_:
                raise ValueError("concat: the parts were fitted with different settings")
            if p.warm_started_ != first.warm_started_:
                raise ValueError("concat: some parts are warm-started and some are not")
        ys = [y for p in parts for y in p._ys]
        validation = [v for p in parts for v in p.validation_]
        H = first.horizon_
        conformal = first._conformal
        if not first.warm_started_:
            conformal = Conformal.from_residuals(_residual_rows(ys, validation, H), H)
        return cls(**first.get_params())._adopt(
            ys,
            [m for p in parts for m in p._ms],
            H,
            [st for p in parts for st in p._states],
            validation,
            [b for p in parts for b in p.backtests_],
            conformal,
            first.warm_started_,
        )

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
        if (i, h) not in self._cache:  # a forecast runs the recursion over the whole series
            y = self._ys[i]
            F = self._forecasts(y, self._states[i], self._ms[i], np.array([y.size]), h)
            self._cache[i, h] = finite_or_naive(F, y, np.array([y.size]))[0]
        return self._cache[i, h].copy()

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
            "warm_started": self.warm_started_,
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
        try:
            meta, arrays = persist.unpack(blob[len(MAGIC) :])
        except ValueError as exc:
            raise ValueError(f"corrupt challenger blob: {exc}") from None
        try:
            if meta["class"] != cls.__name__:
                raise ValueError(f"the blob holds a {meta['class']}, not a {cls.__name__}")
            m = cls(**meta["params"])
            lengths = arrays["lengths"]
            if int(lengths.sum()) != arrays["series"].size or len(meta["states"]) != lengths.size:
                raise ValueError("corrupt challenger blob: its arrays disagree with its header")
            return m._adopt(
                list(np.split(arrays["series"], np.cumsum(lengths)[:-1])),
                [int(v) for v in meta["periods"]],
                int(meta["horizon"]),
                meta["states"],
                [(int(s), arrays.get(f"validation_{i}")) for i, s in enumerate(meta["splits"])],
                meta["backtests"],
                Conformal(arrays["residual_quantiles"], arrays["residual_counts"]),
                bool(meta.get("warm_started", False)),
            )
        except (KeyError, TypeError, IndexError, json.JSONDecodeError) as exc:
            raise ValueError(f"corrupt challenger blob: {type(exc).__name__}: {exc}") from None


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


__all__ = ["Challenger", "Naive", "SeasonalNaive", "as_series", "backtest", "scores", "check_steps", "continuation"]
