"""AutoForecaster: the forecast tickcast publishes. The RNN and the statistical challengers, each
fitted under one validation protocol (``models.validation``), combined per series; intervals from
the combination's own validation errors.

>>> a = AutoForecaster(season_length=12).fit_many([y1, y2, ...])       # doctest: +SKIP
>>> a.predict_many(18), a.predict_interval_many(18, level=[0.8, 0.95])   # doctest: +SKIP
>>> a.weights_[0], a.chosen_[0], a.predict_members_many(18)[0]["rnn"]   # doctest: +SKIP

``fit(y)`` fits the RNN on the series alone; ``fit_many(ys)`` trains one RNN across the series
(the challengers are always per series). Every member forecasts the validation part of each
series from every origin with parameters fitted on the part before it; the combination rule
(``models.combine``) turns those errors into weights per series; the combined validation
forecasts give the split-conformal residuals (pooled over the series of a ``fit_many``). Then
every member is fitted again on all of each series.
"""

from __future__ import annotations

import struct

import numpy as np

from . import persist
from .challenger import Challenger, Naive, SeasonalNaive, as_series, backtest, check_steps, finite_or_naive
from .combine import COMBINATIONS, combine_forecasts, member_errors, member_weights
from .config import DEFAULT_MEMBERS, MEMBERS
from .conformal import Conformal, levels_of, on_log_scale, random_walk_residuals, residuals
from .errors import TrainingDiverged
from .ets import AutoETS
from .forecaster import RNNForecaster
from .seasonality import detect_period
from .theta_models import Theta
from .validation import default_horizon, split_point

MAGIC = b"tickcast-auto\n"
CHALLENGERS: dict[str, type[Challenger]] = {
    "ets": AutoETS,
    "theta": Theta,
    "naive": Naive,
    "seasonal_naive": SeasonalNaive,
}
assert MEMBERS == ("rnn", *CHALLENGERS)  # models/config.py names them for whoever must not import NumPy
RNN_MIN_LENGTH = 3  # the RNN's MIN_LENGTH


def choose_period(y: np.ndarray, periods: tuple[int, ...]) -> int:
    """The longest of the candidate periods (e.g. hourly data: 24 and 168) that the series has
    three full seasons of; 1 when it has not even that of the shortest. A week of hourly
    indices holds the daily cycle too (each weekday its own), so the longest period that can be
    estimated is the one seasonal adjustment uses."""
    fits = [m for m in periods if y.size >= 3 * m]
    return max(fits) if fits else 1


class AutoForecaster:
    """``season_length``: the period (0: detect per series, 1: none), or several (e.g. (24, 168)
    for hourly data: each series uses the longest it has three seasons of); ``seed``: the RNN's;
    ``horizon``: how far validation forecasts reach (0: a season and a half, 8 to 48);
    ``members``: model names from MEMBERS; ``combination``: a rule from ``models.combine``;
    ``shrinkage``: how far learnt weights are pulled to the prior (equal weights, or after
    ``fit_many`` the weights that the pooled errors of all series give); ``rnn``: settings for
    the RNN member (``RNNForecaster(**rnn)``).

    Fitted: ``members_`` (the fitted member models by name), ``weights_`` (per series
    {member: weight}), ``chosen_`` (per series, what was done: the rule, or why not),
    ``backtest_``/``backtests_`` (one-step scores of the combination on the validation part
    against the naive forecast), ``season_length_``/``season_lengths_``, ``horizon_``,
    ``n_series_``, ``across_`` (True after fit_many).
    """

    def __init__(
        self,
        season_length: int | tuple[int, ...] = 0,
        seed: int = 0,
        horizon: int = 0,
        members=DEFAULT_MEMBERS,
        combination: str = "mean",
        shrinkage: float = 0.5,
        rnn: dict | None = None,
    ):
        periods = tuple(season_length) if isinstance(season_length, list | tuple) else (season_length,)
        for name, v in [("season_length", p) for p in periods] + [("seed", seed), ("horizon", horizon)]:
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {v!r}")
        if not periods or (len(periods) > 1 and min(periods) < 1):
            raise ValueError(f"season_length must be one integer >= 0 or several >= 1, got {season_length!r}")
        members = tuple(members)
        if not members or any(m not in MEMBERS for m in members) or len(set(members)) != len(members):
            raise ValueError(f"members must be distinct names from {MEMBERS}, got {members!r}")
        if combination not in COMBINATIONS:
            raise ValueError(f"combination must be one of {COMBINATIONS}, got {combination!r}")
        if isinstance(shrinkage, bool) or not 0.0 <= float(shrinkage) <= 1.0:
            raise ValueError(f"shrinkage must be in [0, 1], got {shrinkage!r}")
        self._periods = tuple(int(p) for p in periods)
        self.season_length = self._periods[0] if len(self._periods) == 1 else self._periods
        self.seed, self.horizon = int(seed), int(horizon)
        self.members, self.combination, self.shrinkage = members, combination, float(shrinkage)
        self.rnn = dict(rnn or {})
        RNNForecaster(season_length=max(self._periods), seed=self.seed, **self.rnn)  # checks the settings
        self._ys: list[np.ndarray] = []

    def get_params(self) -> dict:
        return {
            "season_length": self.season_length if len(self._periods) == 1 else list(self._periods),
            "seed": self.seed,
            "horizon": self.horizon,
            "members": list(self.members),
            "combination": self.combination,
            "shrinkage": self.shrinkage,
            "rnn": self.rnn,
        }

    def __repr__(self) -> str:
        return f"AutoForecaster({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"

    # ---------------------------------------------------------------- fitting
    def fit(self, y, warm_start: AutoForecaster | None = None):
        """Fit every member on one series (the RNN on it alone); returns self. ``warm_start``: a
        fitted AutoForecaster whose RNN the final RNN continues (see ``_fit_rnn``)."""
        return self._fit([as_series(y)], across=False, warm=warm_start)

    def fit_many(self, ys, warm_start: AutoForecaster | None = None):
        """Fit every member on every series, the RNN as one model across them; returns self."""
        ys = [as_series(y, what=f"series {i}") for i, y in enumerate(ys)]
        if not ys:
            raise ValueError("fit_many needs at least one series")
        return self._fit(ys, across=True, warm=warm_start)

    def _fit(self, ys: list[np.ndarray], across: bool, warm: AutoForecaster | None = None):
        previous = self._warm_rnn(warm) if warm is not None else None
        if len(self._periods) > 1:
            ms = [choose_period(y, self._periods) for y in ys]
        elif self.season_length:
            ms = [int(self._periods[0])] * len(ys)
        else:
            ms = [detect_period(y) if y.size > 8 else 1 for y in ys]
        H = self.horizon or default_horizon(max(ms))
        splits = [split_point(y.size, m, H) for y, m in zip(ys, ms)]
        self._ys, self._ms, self.horizon_, self.across_ = ys, ms, H, across
        self.members_: dict = {}
        validation: dict[str, list] = {}
        for name in self.members:
            if name == "rnn":
                validation[name] = self._fit_rnn(ys, splits, H, across, previous)
                continue
            model = CHALLENGERS[name](horizon=H).fit_many(ys, season_lengths=ms)
            self.members_[name] = model
            validation[name] = [F for _, F in model.validation_]
        self._names = [n for n in self.members if n in self.members_]
        self._splits = splits
        self._learn_weights(ys, splits, validation)
        return self

    def _rnn_model(self) -> RNNForecaster:
        # One network, one period: the one most of the series use (each series keeps its own
        # seasonal indices inside the RNN).
        values, counts = np.unique(self._ms, return_counts=True)
        period = int(values[np.argmax(counts)]) if self.season_length else 0
        return RNNForecaster(season_length=period, seed=self.seed, **self.rnn)

    def _warm_rnn(self, warm: AutoForecaster) -> RNNForecaster | None:
        """The RNN of ``warm`` to continue (None without an RNN member here); ValueError when it
        cannot be: not a fitted AutoForecaster, or one without an RNN."""
        if not isinstance(warm, AutoForecaster) or not warm._ys:
            raise ValueError("warm_start must be a fitted AutoForecaster")
        if "rnn" not in self.members:
            return None
        previous = getattr(warm, "members_", {}).get("rnn")
        if previous is None:
            raise ValueError("the warm_start model has no fitted RNN to continue")
        return previous

    def _fit_rnn(self, ys, splits, H: int, across: bool, previous: RNNForecaster | None = None) -> list:
        """Validation forecasts of the RNN per series (None where it has none) and the final
        model in members_["rnn"], fitted on the series long enough for it (``_rnn_index``).
        ``previous``: an RNN the final model continues (a warm start; its architecture and series
        must match, else ValueError). The validation model is always trained cold: the previous
        one saw the data after the validation split."""
        use = [i for i, y in enumerate(ys) if y.size >= RNN_MIN_LENGTH]
        self._rnn_index = use
        out: list = [None] * len(ys)
        if not use:
            return out
        held = [i for i in use if splits[i] < ys[i].size and splits[i] >= RNN_MIN_LENGTH]
        try:
            if held:
                parts = [ys[i][: splits[i]] for i in held]
                val = self._rnn_model().fit_many(parts) if across else self._rnn_model().fit(parts[0])
                for i in held:
                    origins = np.arange(splits[i], ys[i].size)
                    F = np.array([val.predict(H, y=ys[i][:t]) for t in origins])
                    out[i] = finite_or_naive(F, ys[i], origins)
            final = self._rnn_model()
            if across:
                final = final.fit_many([ys[i] for i in use], warm_start=previous)
            else:
                final = final.fit(ys[use[0]], warm_start=previous)
        except TrainingDiverged:
            # The RNN kept producing non-finite values: the challengers carry the forecast.
            self._rnn_index = []
            return [None] * len(ys)
        self.members_["rnn"] = final
        return out

    def _learn_weights(self, ys, splits, validation: dict[str, list]) -> None:
        S, names = len(ys), self._names
        avail = np.ones((S, len(names)), dtype=bool)
        if "rnn" in names:
            avail[:, names.index("rnn")] = np.isin(np.arange(S), self._rnn_index)
        Fs = [[validation[nm][i] for nm in names] for i in range(S)]
        errors = np.array([member_errors(y, s, F) for y, s, F in zip(ys, splits, Fs)])  # (S, M)
        errors[~avail] = np.nan
        W, chosen = member_weights(errors, avail, self.combination, self.shrinkage, pooled=self.across_)
        self._W, self._avail = W, avail
        self.chosen_ = chosen
        self.weights_ = [{nm: float(w) for nm, w, ok in zip(names, row, av) if ok} for row, av in zip(W, avail)]
        rows, self.backtests_ = [], []
        for i, (y, s) in enumerate(zip(ys, splits)):
            log = on_log_scale(y)
            live = [j for j in range(len(names)) if avail[i, j] and Fs[i][j] is not None]
            if s < y.size and live:
                C = combine_forecasts(np.array([Fs[i][j] for j in live]), W[i, live], self.combination)
                rows.append(residuals(y, C, s, log))
                self.backtests_.append(backtest(y, s, C))
            else:
                rows.append(random_walk_residuals(y, self.horizon_, log))
                self.backtests_.append(backtest(y, y.size, None))
        self.backtest_ = self.backtests_[0]
        self._conformal = Conformal.from_residuals(rows, self.horizon_)
        self.season_lengths_ = self._ms
        self.season_length_ = self._ms[0]
        self.n_series_ = S

    # ------------------------------------------------------------- forecasting
    def _check_fitted(self) -> None:
        if not self._ys:
            raise RuntimeError("AutoForecaster is not fitted; call fit(y) or fit_many(ys) first")

    def _one(self) -> int:
        self._check_fitted()
        if len(self._ys) != 1:
            raise ValueError(f"the model was fitted on {len(self._ys)} series: use predict_many(h)")
        return 0

    def _members_points(self, h: int) -> np.ndarray:
        """(S, M, h) every member's forecast (NaN where a member has none)."""
        S = len(self._ys)
        P = np.full((S, len(self._names), h), np.nan)
        for j, name in enumerate(self._names):
            model = self.members_[name]
            if name == "rnn":
                if not self._rnn_index:
                    continue
                fs = model.predict_many(h) if len(self._rnn_index) > 1 else [model.predict(h)]
                for i, f in zip(self._rnn_index, fs):
                    P[i, j] = f
            else:
                P[:, j] = np.array(model.predict_many(h))
        return P

    def _combined(self, h: int) -> tuple[np.ndarray, np.ndarray]:
        P = self._members_points(h)
        out = np.empty((len(self._ys), h))
        for i, y in enumerate(self._ys):
            live = [j for j in range(len(self._names)) if self._avail[i, j] and np.all(np.isfinite(P[i, j]))]
            f = combine_forecasts(P[i, live], self._W[i, live], self.combination) if live else np.full(h, y[-1])
            out[i] = np.where(np.isfinite(f), f, y[-1])
        return out, P

    def predict(self, h: int) -> np.ndarray:
        """The published point forecast (h,), units of y, always finite."""
        i = self._one()
        return self._combined(check_steps(h))[0][i]

    def predict_many(self, h: int) -> list[np.ndarray]:
        self._check_fitted()
        return list(self._combined(check_steps(h))[0])

    def predict_members(self, h: int) -> dict[str, np.ndarray]:
        """Every member's own forecast (h,) by name (the ones the combination used)."""
        return self.predict_members_many(h)[self._one()]

    def predict_members_many(self, h: int) -> list[dict[str, np.ndarray]]:
        self._check_fitted()
        P = self._members_points(check_steps(h))
        return [
            {nm: P[i, j] for j, nm in enumerate(self._names) if self._avail[i, j] and np.all(np.isfinite(P[i, j]))}
            for i in range(len(self._ys))
        ]

    def predict_interval(self, h: int, level=0.8):
        """``(lower, upper)`` each (h,) around ``predict(h)`` for one level; a list of them for a
        list of levels (e.g. [0.8, 0.95])."""
        i = self._one()
        return self._intervals(check_steps(h), level)[i]

    def predict_interval_many(self, h: int, level=0.8) -> list:
        self._check_fitted()
        return self._intervals(check_steps(h), level)

    def _intervals(self, h: int, level) -> list:
        levels, single = levels_of(level)
        points = self._combined(h)[0]
        out = []
        for y, f in zip(self._ys, points):
            ivs = [self._conformal.interval(y, f, lv) for lv in levels]
            out.append(ivs[0] if single else ivs)
        return out

    # ------------------------------------------------------------- persistence
    def to_bytes(self) -> bytes:
        """MAGIC, the length of the core as a little-endian uint64, the core (``models.persist``:
        settings, weights, backtests, residual quantiles, the series), then every member's own
        blob back to back. ``from_bytes`` restores identical forecasts."""
        self._check_fitted()
        blobs = [self.members_[nm].to_bytes() for nm in self._names]
        meta = {
            "params": self.get_params(),
            "names": self._names,
            "blob_lengths": [len(b) for b in blobs],
            "chosen": self.chosen_,
            "backtests": self.backtests_,
            "periods": self._ms,
            "horizon": self.horizon_,
            "across": self.across_,
            "splits": self._splits,
            "rnn_index": getattr(self, "_rnn_index", []),
        }
        arrays = {
            "series": np.concatenate(self._ys),
            "lengths": np.array([y.size for y in self._ys], dtype=np.int64),
            "weights": self._W,
            "available": self._avail.astype(np.int64),
            "residual_quantiles": self._conformal.Q,
            "residual_counts": self._conformal.counts,
        }
        core = persist.pack(meta, arrays)
        return b"".join([MAGIC, struct.pack("<Q", len(core)), core, *blobs])

    @classmethod
    def from_bytes(cls, blob: bytes) -> AutoForecaster:
        blob = bytes(blob)
        if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 8:
            raise ValueError("not a tickcast AutoForecaster blob (bad magic bytes)")
        start = len(MAGIC) + 8
        (size,) = struct.unpack("<Q", blob[len(MAGIC) : start])
        if start + size > len(blob):
            raise ValueError("truncated tickcast AutoForecaster blob")
        meta, arrays = persist.unpack(blob[start : start + size])
        try:
            params: dict = {k: (tuple(v) if isinstance(v, list) else v) for k, v in meta["params"].items()}
            a = cls(**params)
            pos = start + size
            for name, length in zip(meta["names"], meta["blob_lengths"]):
                part = blob[pos : pos + length]
                if len(part) != length:
                    raise ValueError("truncated tickcast AutoForecaster blob")
                kind = RNNForecaster if name == "rnn" else CHALLENGERS[name]
                a.members_ = {**getattr(a, "members_", {}), name: kind.from_bytes(part)}
                pos += length
            lengths = arrays["lengths"]
            a._ys = list(np.split(arrays["series"], np.cumsum(lengths)[:-1]))
            a._names = list(meta["names"])
            a._W, a._avail = arrays["weights"], arrays["available"].astype(bool)
            if a._W.shape != (len(a._ys), len(a._names)) or a._avail.shape != a._W.shape:
                raise ValueError("corrupt tickcast AutoForecaster blob: its arrays disagree with its header")
            a._ms, a.horizon_, a.across_ = [int(v) for v in meta["periods"]], int(meta["horizon"]), meta["across"]
            a._splits, a._rnn_index = meta["splits"], [int(i) for i in meta["rnn_index"]]
            a.chosen_, a.backtests_ = meta["chosen"], meta["backtests"]
        except (KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"corrupt tickcast AutoForecaster blob: {type(exc).__name__}: {exc}") from None
        a.members_ = getattr(a, "members_", {})
        a.weights_ = [{nm: float(w) for nm, w, ok in zip(a._names, row, av) if ok} for row, av in zip(a._W, a._avail)]
        a.backtest_ = a.backtests_[0]
        a._conformal = Conformal(arrays["residual_quantiles"], arrays["residual_counts"])
        a.season_lengths_, a.season_length_, a.n_series_ = a._ms, a._ms[0], len(a._ys)
        return a


__all__ = ["AutoForecaster", "MEMBERS", "DEFAULT_MEMBERS", "CHALLENGERS"]
