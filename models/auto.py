"""AutoForecaster: the forecast tickcast publishes. The RNN and the statistical challengers, each
fitted under one validation protocol (``models.validation``), combined per series; intervals from
the combination's own validation errors.

>>> a = AutoForecaster(season_length=12).fit_many([y1, y2, ...])       # doctest: +SKIP
>>> a.predict_many(18), a.predict_interval_many(18, level=[0.8, 0.95])   # doctest: +SKIP
>>> a.weights_[0], a.chosen_[0], a.predict_members_many(18)[0]["rnn"]   # doctest: +SKIP
>>> b = AutoForecaster(season_length=12).fit_many(ys_today, warm_start=a)  # doctest: +SKIP

``fit(y)`` fits the RNN on the series alone; ``fit_many(ys)`` trains one RNN across the series
(the challengers are always per series). Every member forecasts the validation part of each
series from every origin with parameters fitted on the part before it; the combination rule
(``models.combine``) turns those errors into weights per series; the combined validation
forecasts give each series' split-conformal residuals (its own, after ``fit_many`` too). Then
every member is fitted again on all of each series (a long series' final fit continues its
validation fit: ``models.validation.continues_validation``).

A warm start (``warm_start=`` the previous model) fine-tunes the RNN from its weights and runs the
challengers' state recursions over the new points with their parameters kept; the weights,
backtests and interval residuals are the previous model's. ``fit_each`` fits many series' models
as one computation; ``fit_many_part`` and ``combine`` (``models.auto_parts``) spread one
``fit_many`` over processes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import auto_each, auto_parts, auto_persist
from .auto_each import final_continues, final_epochs, fit_rnn_on
from .auto_forecasts import CombinedForecasts
from .challenger import as_series, backtest, finite_or_naive
from .combine import COMBINATIONS, combine_forecasts, member_errors, screened_weights
from .conformal import Conformal, on_log_scale, random_walk_residuals, residuals
from .errors import TrainingDiverged
from .forecaster import RNNForecaster
from .members import CHALLENGERS, DEFAULT_MEMBERS, MEMBERS
from .seasonality import detect_period
from .validation import default_horizon, split_point

RNN_MIN_LENGTH = 3  # the RNN's MIN_LENGTH
# What a fitted model holds beyond its series and members: carried over by a warm start.
CORE: tuple[str, ...] = ("_ms", "horizon_", "across_", "_splits", "_rnn_index", "_names", "_W", "_avail")
CORE += ("chosen_", "backtests_", "_conformal")


def _settings_differences(theirs: dict, ours: dict) -> dict:
    """{setting: (theirs, ours)} of the settings that differ (the seed aside); the RNN's compared
    setting by setting, as the RNN takes them (defaults filled in)."""
    diff = {}
    for key, value in ours.items():
        if key == "rnn":
            a, b = (RNNForecaster(**(v or {})).get_params() for v in (theirs.get(key), value))
            diff.update({f"rnn.{k}": (a.get(k), b[k]) for k in b if a.get(k) != b[k]})
        elif key != "seed" and theirs.get(key) != value:
            diff[key] = (theirs.get(key), value)
    return diff


LONGER_PERIOD_GAIN = 0.8


def choose_period(y: np.ndarray, periods: tuple[int, ...]) -> int:
    """One of the candidate periods (e.g. hourly data: 24 and 168) that the series has three
    full seasons of (1 when it has not even that of the shortest): the shortest, unless a longer
    one repeats the series clearly better. A longer period is taken when the series' changes over
    it are smaller by a fifth (``LONGER_PERIOD_GAIN``) than over the period chosen so far (mean
    absolute ``y[t] - y[t - m]`` on the same points; near a tie, the longer period's indices, each
    estimated from a few seasons, cost more than they explain). A week of hourly indices holds
    the daily cycle too, each weekday its own, and is worth estimating where weekdays differ, as
    in electricity demand or traffic; where they do not, as in the weather, a week ago is further
    off than yesterday and the daily period is kept (a week's indices there made an hourly
    temperature forecast 40 % worse: models/README.md)."""
    fits = sorted(m for m in periods if y.size >= 3 * m)
    if not fits:
        return 1
    chosen = fits[0]
    for m in fits[1:]:
        if np.mean(np.abs(y[m:] - y[:-m])) < LONGER_PERIOD_GAIN * np.mean(np.abs(y[m:] - y[m - chosen : -chosen])):
            chosen = m
    return chosen


@dataclass
class Plan:
    """What a cold fit does, decided from the series and the settings before any model is fitted:
    each series' period, the validation horizon and splits, the RNN's period, the series the RNN
    is fitted on (``use``: long enough) and, of those, the ones its validation model is fitted
    before the split of (``held``)."""

    ys: list[np.ndarray]
    ms: list[int]
    H: int
    splits: list[int]
    across: bool
    rnn_period: int
    use: list[int]
    held: list[int]

    def validation_series(self) -> list[np.ndarray]:
        return [self.ys[i][: self.splits[i]] for i in self.held]

    def rnn_series(self) -> list[np.ndarray]:
        return [self.ys[i] for i in self.use]


class AutoForecaster(CombinedForecasts):
    """``season_length``: the period (0: detect per series, 1: none), or several (e.g. (24, 168)
    for hourly data: each series uses the shortest it has three seasons of, or a longer one that
    repeats it clearly better: ``choose_period``); ``seed``: the RNN's;
    ``horizon``: how far validation forecasts reach (0: a season and a half, 8 to 48);
    ``members``: model names from MEMBERS (the benchmarks among them, naive and seasonal naive,
    take part in a series' combination only where they beat the others on its validation part);
    ``combination``: a rule from ``models.combine``;
    ``shrinkage``: how far learnt weights are pulled to the prior (equal weights, or after
    ``fit_many`` the weights that the pooled errors of all series give); ``rnn``: settings for
    the RNN member (``RNNForecaster(**rnn)``).

    Fitted: ``members_`` (the fitted member models by name), ``weights_`` (per series
    {member: weight}), ``chosen_`` (per series, what was done: the rule, or why not),
    ``backtest_``/``backtests_`` (one-step scores of the combination on the validation part
    against the naive forecast), ``season_length_``/``season_lengths_``, ``horizon_``,
    ``n_series_``, ``across_`` (True after fit_many), ``warm_started_``; and the RNN member's
    ``history_``, ``best_epoch_``, ``n_epochs_``, ``transform_``/``transforms_`` (empty or None
    without an RNN member, per series None where the RNN does not forecast it).
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
        own = sorted({"season_length", "seed"} & set(self.rnn))
        if own:
            raise ValueError(f"rnn settings may not include {', '.join(own)}: the AutoForecaster's own apply")
        RNNForecaster(season_length=max(self._periods), seed=self.seed, **self.rnn)  # checks the settings
        self._ys: list[np.ndarray] = []
        # A cold per-series fit whose final RNN continued its validation model: that model's
        # training record (history, epochs run, best epoch), what ``history_`` and the epochs report.
        self._rnn_record: dict | None = None

    def get_params(self) -> dict:
        """The settings as a JSON-able dict (``AutoForecaster(**a.get_params())`` clones them)."""
        return {
            "season_length": self.season_length if len(self._periods) == 1 else list(self._periods),
            "seed": self.seed,
            "horizon": self.horizon,
            "members": list(self.members),
            "combination": self.combination,
            "shrinkage": self.shrinkage,
            "rnn": dict(self.rnn),
        }

    def __repr__(self) -> str:
        return f"AutoForecaster({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"

    def _clone(self, seed) -> AutoForecaster:
        """The same settings with another seed (an integer >= 0, else ValueError)."""
        return type(self)(**{**self.get_params(), "seed": _seed(seed)})

    # ---------------------------------------------------------------- fitting
    def fit(self, y, warm_start: AutoForecaster | None = None, epochs: int | None = None):
        """Fit every member on one series (the RNN on it alone); returns self.

        ``warm_start``: the model fitted on this series before (same settings; the series may
        have gained points at its end and lost some at its start): the RNN is fine-tuned from it
        (``RNNForecaster.fit(warm_start=)``, ``epochs`` of them), the challengers keep their
        parameters and run their state recursions over the new points, and the combination
        weights, backtests and interval residuals are carried over. A mismatched warm start is a
        ValueError saying why. ``epochs``: the RNN's, for a cold or a warm fit. A cold fit's final
        RNN does not train a member whose training never helped its validation model on a long
        series (``auto_each.final_epochs``); on a series so long that its validation fit saw at
        least nine tenths of it, the final RNN is that validation model fine-tuned on the whole
        series, as a warm start is (``auto_each.final_continues``)."""
        return self._fit_all([as_series(y)], False, warm_start, epochs)

    def fit_many(self, ys, warm_start: AutoForecaster | None = None, epochs: int | None = None):
        """Fit every member on every series, the RNN as one model across them; returns self.
        ``warm_start``: the model ``fit_many`` gave on these series before (as in :meth:`fit`)."""
        return self._fit_all(_as_list(ys), True, warm_start, epochs)

    def _fit_all(self, ys: list[np.ndarray], across: bool, warm, epochs):
        _check_epochs(epochs)
        if warm is not None:
            self._check_warm(warm, ys, across)
            rnn, challengers = self._warm_rnn(warm, ys, epochs), self._warm_challengers(warm, ys)
            return self._adopt_warm(warm._core(), ys, rnn, challengers)
        plan = self._plan(ys, across)
        val, final = self._fit_rnn(plan, epochs)
        challengers = {
            name: CHALLENGERS[name](horizon=plan.H).fit_many(ys, season_lengths=plan.ms)
            for name in self.members
            if name != "rnn"
        }
        self._assemble(plan, final, self._rnn_validation(plan, val) if final is not None else None, challengers)
        return self._keep_record(plan, val, final)

    def _keep_record(self, plan: Plan, val: RNNForecaster | None, final: RNNForecaster | None):
        """Keep the validation model's training record when the final RNN continued it (the
        fine-tune alone would say little of how the cold fit trained); returns self."""
        if final is not None and final_continues(plan, val):
            assert val is not None
            self._rnn_record = {"history": list(val.history_), "n_epochs": val.n_epochs_, "best_epoch": val.best_epoch_}
        return self

    def _plan(self, ys: list[np.ndarray], across: bool) -> Plan:
        if len(self._periods) > 1:
            ms = [choose_period(y, self._periods) for y in ys]
        elif self.season_length:
            ms = [int(self._periods[0])] * len(ys)
        else:
            ms = [detect_period(y) if y.size > 8 else 1 for y in ys]
        H = self.horizon or default_horizon(max(ms))
        splits = [split_point(y.size, m, H) for y, m in zip(ys, ms)]
        # One network, one period: the one most of the series use (each series keeps its own
        # seasonal indices inside the RNN).
        values, counts = np.unique(ms, return_counts=True)
        period = int(values[np.argmax(counts)]) if self.season_length else 0
        use = [i for i, y in enumerate(ys) if y.size >= RNN_MIN_LENGTH] if "rnn" in self.members else []
        held = [i for i in use if RNN_MIN_LENGTH <= splits[i] < ys[i].size]
        return Plan(ys, ms, H, splits, across, period, use, held)

    def _rnn_model(self, period: int) -> RNNForecaster:
        return RNNForecaster(season_length=period, seed=self.seed, **self.rnn)

    def _fit_rnn(self, plan: Plan, epochs) -> tuple[RNNForecaster | None, RNNForecaster | None]:
        """The RNN's validation model (fitted on the held series before their splits; None
        without any) and its final model; (None, None) when either diverged (the challengers
        then carry the forecast)."""
        if not plan.use:
            return None, None
        try:
            val = None
            if plan.held:
                val = fit_rnn_on(self._rnn_model(plan.rnn_period), plan.validation_series(), plan.across, epochs)
            if final_continues(plan, val):  # a long series: the final fit fine-tunes its validation model
                final = fit_rnn_on(self._rnn_model(plan.rnn_period), plan.rnn_series(), False, epochs, val)
            else:
                last = epochs if plan.across else final_epochs(val, epochs)  # per series: see final_epochs
                final = fit_rnn_on(self._rnn_model(plan.rnn_period), plan.rnn_series(), plan.across, last)
        except TrainingDiverged:
            return None, None
        return val, final

    @staticmethod
    def _rnn_validation(plan: Plan, val: RNNForecaster | None) -> list:
        """The RNN validation model's forecasts (v, H) of each held series from every origin of its
        validation part (None for the other series)."""
        out: list = [None] * len(plan.ys)
        for i in plan.held:
            assert val is not None
            y = plan.ys[i]
            origins = np.arange(plan.splits[i], y.size)
            F = val.predict_histories(plan.H, [y[:t] for t in origins])
            out[i] = finite_or_naive(F, y, origins)
        return out

    def _assemble(self, plan: Plan, rnn: RNNForecaster | None, rnn_validation: list | None, challengers: dict):
        """Take the fitted members and learn the combination from their validation forecasts."""
        self._ys, self._ms, self.horizon_, self.across_, self._splits = (
            plan.ys,
            plan.ms,
            plan.H,
            plan.across,
            plan.splits,
        )
        self.members_: dict = {}
        validation: dict[str, list] = {}
        for name in self.members:
            if name == "rnn":
                if rnn is not None:
                    assert rnn_validation is not None  # every caller passes one with a fitted RNN
                    self.members_[name] = rnn
                    validation[name] = rnn_validation
                continue
            self.members_[name] = challengers[name]
            validation[name] = [F for _, F in challengers[name].validation_]
        self._rnn_index = list(plan.use) if rnn is not None else []
        self._names = [n for n in self.members if n in self.members_]
        self._learn_weights(plan.ys, plan.splits, validation)
        self.warm_started_ = False
        self._rnn_record = None
        self._cache: dict = {}
        return self

    def _learn_weights(self, ys, splits, validation: dict[str, list]) -> None:
        S, names = len(ys), self._names
        avail = np.ones((S, len(names)), dtype=bool)
        if "rnn" in names:
            avail[:, names.index("rnn")] = np.isin(np.arange(S), self._rnn_index)
        Fs = [[validation[nm][i] for nm in names] for i in range(S)]
        errors = np.array([member_errors(y, s, F) for y, s, F in zip(ys, splits, Fs)])  # (S, M)
        errors[~avail] = np.nan
        W, chosen = screened_weights(
            ys, splits, Fs, errors, avail, names, self.combination, self.shrinkage, pooled=self.across_
        )
        self._W, self._avail = W, avail
        self.chosen_ = chosen
        rows, self.backtests_ = [], []
        for i, (y, s) in enumerate(zip(ys, splits)):
            log = on_log_scale(y)
            live = [j for j in range(len(names)) if avail[i, j] and W[i, j] > 0 and Fs[i][j] is not None]
            if s < y.size and live:
                C = combine_forecasts(np.array([Fs[i][j] for j in live]), W[i, live], self.combination)
                rows.append(residuals(y, C, s, log))
                self.backtests_.append(backtest(y, s, C))
            else:
                rows.append(random_walk_residuals(y, self.horizon_, log))
                self.backtests_.append(backtest(y, y.size, None))
        # Each series' intervals from its own residuals, across series too: with the smoothed
        # conformal quantile and the small-sample rule (intervals.conformal_half_widths) they are
        # calibrated in every M3 category, where one distribution pooled over the series was not
        # (its tail is the hardest series': yearly 80 % covered 0.87; models/README.md).
        self._conformal = [Conformal.from_residuals([r], self.horizon_) for r in rows]

    # ---------------------------------------------------------------- warm starts
    def _check_warm(self, prev, ys: list[np.ndarray], across: bool) -> None:
        if not isinstance(prev, AutoForecaster) or not prev._ys:
            raise ValueError("warm_start must be a fitted AutoForecaster")
        diff = _settings_differences(prev.get_params(), self.get_params())
        if diff:
            raise ValueError(f"warm_start model differs in {diff} (theirs, ours)")
        if prev.across_ != across:
            raise ValueError(f"warm_start model was fitted with {'fit_many' if prev.across_ else 'fit'}: use that")
        if len(ys) != len(prev._ys):
            raise ValueError(f"warm_start model was fitted on {len(prev._ys)} series, not {len(ys)}")

    def _warm_rnn(self, prev: AutoForecaster, ys: list[np.ndarray], epochs, members=None) -> RNNForecaster | None:
        if "rnn" not in prev.members_:
            return None
        old = prev.members_["rnn"]
        model = RNNForecaster(**{**old.get_params(), "seed": self.seed})
        return fit_rnn_on(model, [ys[i] for i in prev._rnn_index], prev.across_, epochs, old)

    def _warm_challengers(self, prev: AutoForecaster, ys: list[np.ndarray], lo: int = 0, hi: int | None = None):
        """The challengers warm-started on ys (of series lo..hi-1 of the previous model)."""
        hi = len(prev._ys) if hi is None else hi
        out = {}
        for name in prev._names:
            if name != "rnn":
                old = prev.members_[name]
                old = old if (lo, hi) == (0, len(prev._ys)) else old.subset(lo, hi)
                out[name] = type(old)(**old.get_params()).fit_many(ys, warm_start=old)  # its periods with it
        return out

    def _core(self) -> dict:
        """What a warm start carries over from this fitted model besides its series and members."""
        return {name: getattr(self, name) for name in CORE}

    def _adopt_warm(self, core: dict, ys: list[np.ndarray], rnn: RNNForecaster | None, challengers: dict):
        """Take the warm-started members, and the rest from the previous model's core."""
        for name in CORE:
            setattr(self, name, core[name])
        self._ys = ys
        self.members_ = {name: rnn if name == "rnn" else challengers[name] for name in self._names}
        self.warm_started_ = True
        self._cache = {}
        return self

    # ---------------------------------------------------------------- many models at once
    def fit_each(self, ys, seeds=None, warm_starts=None, epochs: int | None = None, errors: str = "raise") -> list:
        """One fitted AutoForecaster per series; element i equals (see ``models/README.md`` for the
        tolerance) ``AutoForecaster(**self.get_params(), seed=seeds[i]).fit(ys[i],
        warm_start=warm_starts[i], epochs=epochs)``. The RNN fits of all series (validation and
        final, cold and warm) run as one computation, the challengers' cold fits vectorised
        over the series. ``errors="return"``: a series that cannot be fitted gets its exception
        in its place instead of raising."""
        ys, seeds, warm_starts = list(ys), seeds, warm_starts
        n = len(ys)
        seeds = [self.seed] * n if seeds is None else list(seeds)
        warm_starts = [None] * n if warm_starts is None else list(warm_starts)
        if len(seeds) != n or len(warm_starts) != n:
            raise ValueError(f"fit_each: {n} series but {len(seeds)} seeds and {len(warm_starts)} warm starts")
        if errors not in ("raise", "return"):
            raise ValueError(f"errors must be 'raise' or 'return', got {errors!r}")
        _check_epochs(epochs)
        return auto_each.fit_each(self, ys, seeds, warm_starts, epochs, errors)

    def fit_many_part(
        self, ys, part: int, parts: int, warm_start: AutoForecaster | None = None, epochs: int | None = None
    ) -> auto_parts.AutoPart:
        """Part ``part`` of ``parts`` of ``fit_many(ys, warm_start, epochs)``, to run in its own
        process (the result pickles): some of the RNN's fits and the challengers of a slice of
        the series. :meth:`combine` assembles the parts into the model ``fit_many`` gives."""
        _check_epochs(epochs)
        return auto_parts.fit_part(self, _as_list(ys), part, parts, warm_start, epochs)

    @classmethod
    def combine(cls, parts) -> AutoForecaster:
        """The model ``fit_many`` would have fitted, from all the parts of one
        :meth:`fit_many_part` (each once, any order)."""
        return auto_parts.combine(cls, list(parts))

    # ------------------------------------------------------------- persistence
    def to_bytes(self) -> bytes:
        """The core (settings, weights, backtests, residual quantiles, the series) and every
        member's own blob (``models.auto_persist``); ``from_bytes`` restores identical forecasts."""
        self._check_fitted()
        return auto_persist.dump(self)

    @classmethod
    def from_bytes(cls, blob: bytes) -> AutoForecaster:
        """Inverse of :meth:`to_bytes`; also reads the blobs of the first AutoForecaster (before
        warm starts). ValueError for a blob that is not one or is corrupt."""
        return auto_persist.load(cls, blob, {"rnn": RNNForecaster, **CHALLENGERS})


def _as_list(ys) -> list[np.ndarray]:
    ys = [as_series(y, what=f"series {i}") for i, y in enumerate(ys)]
    if not ys:
        raise ValueError("fit_many needs at least one series")
    return ys


def _check_epochs(epochs) -> None:
    if epochs is not None and (isinstance(epochs, bool) or int(epochs) != epochs or epochs < 0):
        raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")


def _seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seeds must be integers >= 0, got {seed!r}")
    return int(seed)


__all__ = ["AutoForecaster", "MEMBERS", "DEFAULT_MEMBERS", "CHALLENGERS", "Plan", "choose_period"]
