"""RNNForecaster: a recurrent network that forecasts one series (``fit``), many series of one
frequency with one set of weights (``fit_many``), or many series with one network each, trained
as one computation (``fit_each``).

Pipeline (see ``models.windows``): each series is seasonally adjusted, put on a log (positive
series) or linear scale and cut into windows normalised to their last value; an ensemble of
recurrent networks with different window lengths and seeds maps a window to the next K values
at once (a direct multi-step read-out); the forecast is the members' median, mapped back to the
units of y. Longer forecasts continue from their own predictions, K values at a time.

Training (per member, all members of all models being fitted as one stack: ``models.ensemble``):
early stopping on the newest ``val_fraction`` of every series, whose forecasts also give the
backtest against the naive forecast and the split-conformal interval residuals; then (``refit``)
the member is trained again on all the data for the number of epochs validation chose, so the
newest points shape the weights too.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from . import persist
from .config import ForecasterConfig
from .ensemble import OUT_MAX_FACTOR, Unit, fit_units, score
from .errors import SeriesTooShort
from .intervals import floored_half_widths
from .network import Member
from .passes import chunk_size
from .seasonality import Seasonality
from .stack import make_stack, stacked_forward
from .windows import Prepared, as_series, last_window, prepare, spread_path

# Intervals are at least this wide relative to the level (times sqrt(step)): a series that never
# moved still gets an interval, not a point.
MIN_RELATIVE_HALF_WIDTH = 1e-4


class RNNForecaster:
    """Settings as keyword arguments (see :class:`ForecasterConfig`), or ``config=``.

    Fitted attributes (trailing underscore): ``history_`` (the first member's loss per epoch,
    0 = before the first update), ``histories_`` (every member's), ``backtest_`` (one-step
    scores on the validation part against the naive forecast; ``backtests_`` per series after
    ``fit_many``), ``transform_`` (``transforms_`` per series), ``season_length_``, ``horizon_`` (K), ``window_`` (the
    first member's L), ``n_epochs_``, ``best_epoch_``, ``n_obs_``, ``n_series_``,
    ``warm_started_``, ``members_`` (the ensemble members it holds: all, or a part's).
    """

    def __init__(self, *, config: ForecasterConfig | None = None, **settings):
        base = config.to_dict() if config is not None else {}
        self.config = ForecasterConfig.from_dict({**base, **settings})
        self._members: list[Member] = []
        self._part: Unit | None = None  # a part of a fit (fit_many(..., members=)): what combine needs
        self._carried: RNNForecaster | None = None  # a warm part: the model it continues
        self._stack = None

    def get_params(self) -> dict:
        """The settings as a JSON-able dict (``RNNForecaster(**m.get_params())`` clones them)."""
        return self.config.to_dict()

    def __repr__(self) -> str:
        default = ForecasterConfig().to_dict()
        changed = {k: v for k, v in self.get_params().items() if v != default[k]}
        return f"RNNForecaster({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_stack": None}  # buffers are not worth sending to another process

    # ------------------------------------------------------------------ fitting
    def fit(self, y, warm_start: RNNForecaster | None = None, epochs: int | Sequence[int] | None = None):
        """Fit on one series y (1-D, oldest first, finite, at least MIN_LENGTH points); returns self.

        ``warm_start``: a fitted model with the same architecture; its members' weights are
        fine-tuned on the newest ``warm_windows`` windows of y for ``epochs`` (default
        ``warm_epochs``) at ``lr * warm_lr_scale``, except that by default a member whose read-out
        was never trained (its cold fit found no training better than the untrained network, which
        forecasts its read-out bias) is carried over as it is. Its scale is kept (the weights were
        learnt in those units) and its intervals and backtest are carried over; refit from scratch
        now and then to refresh them. ``epochs`` overrides the configured number for either kind;
        a list gives each ensemble member its own (a cold fit's early stopping may end sooner).
        """
        return self._fit_one([as_series(y)], warm_start, epochs, None)

    def fit_many(
        self, ys, warm_start: RNNForecaster | None = None, epochs: int | Sequence[int] | None = None, members=None
    ):
        """Fit one network (ensemble) across many series of one frequency; returns self.
        ``ys``: a sequence of 1-D series, any lengths. Forecast them with :meth:`predict_many`.

        ``members``: train only these ensemble members (indices in ``range(ensemble)``): a part of
        the fit, to run beside the other parts in other processes and assemble with
        :meth:`combine` into the model ``fit_many`` alone would give. A part cannot forecast."""
        ys = [as_series(y, what=f"series {i}") for i, y in enumerate(ys)]
        if not ys:
            raise ValueError("fit_many needs at least one series")
        return self._fit_one(ys, warm_start, epochs, members)

    def fit_each(
        self, ys, seeds=None, warm_starts=None, epochs: int | Sequence[int] | None = None, errors: str = "raise"
    ) -> list:
        """One model per series, all trained as one computation; returns a list of fitted
        RNNForecaster, element i equal (up to floating-point reassociation) to
        ``RNNForecaster(**self.get_params(), seed=seeds[i]).fit(ys[i], warm_start=warm_starts[i],
        epochs=epochs)``. ``seeds``: one per series (default: this model's seed for all);
        ``warm_starts``: one per series, a fitted model or None (cold and warm may be mixed).
        ``errors="return"``: a series that cannot be fitted (too short, not finite, a mismatched
        warm start, diverged) gets its exception in its place instead of raising."""
        ys = list(ys)
        n = len(ys)
        seeds = [self.config.seed] * n if seeds is None else list(seeds)
        warm_starts = [None] * n if warm_starts is None else list(warm_starts)
        if len(seeds) != n or len(warm_starts) != n:
            raise ValueError(f"fit_each: {n} series but {len(seeds)} seeds and {len(warm_starts)} warm starts")
        if errors not in ("raise", "return"):
            raise ValueError(f"errors must be 'raise' or 'return', got {errors!r}")
        out: list = [None] * n
        todo: list[tuple[int, RNNForecaster, Unit]] = []
        for i, (y, seed, warm) in enumerate(zip(ys, seeds, warm_starts)):
            try:
                model = type(self)(config=replace(self.config, seed=operator.index(seed)))
                todo.append((i, model, model._unit([as_series(y, what=f"series {i}")], warm, epochs, None)))
            except ValueError as exc:
                if errors == "raise":
                    raise
                out[i] = exc
        fit_units(self.config, [unit for _, _, unit in todo])
        for i, model, unit in todo:
            if unit.error is not None and errors == "raise":
                raise unit.error
            out[i] = unit.error if unit.error is not None else model._adopt(unit, warm_starts[i])
        return out

    @classmethod
    def combine(cls, parts) -> RNNForecaster:
        """The model ``fit_many`` would have fitted, from parts fitted with ``members=`` (every
        member exactly once, same settings, same series, same warm start): the validation scores
        and interval residuals come from the median over all members, as they would have."""
        parts = list(parts)
        if not parts or not all(isinstance(p, RNNForecaster) and p._part is not None for p in parts):
            raise ValueError("combine needs parts: models fitted with fit_many(..., members=[...])")
        first, cfg = parts[0]._part, parts[0].config
        assert first is not None
        for p in parts[1:]:
            u = p._part
            assert u is not None
            if p.config != cfg or u.K != first.K or len(u.ys) != len(first.ys):
                raise ValueError("combine: the parts were fitted with different settings or series")
            if not _same_arrays(u.ys, first.ys) or not _same_arrays(
                [m.flat for m in u.warm or []], [m.flat for m in first.warm or []]
            ):
                raise ValueError("combine: the parts were fitted on different series or warm starts")
        members = sorted(j for p in parts for j in p.members_)
        if members != list(range(cfg.ensemble)):
            raise ValueError(
                f"combine: the parts hold members {members}, the model needs each of 0..{cfg.ensemble - 1} once"
            )
        unit = replace(first, members=members, fitted={}, preds={})
        for p in parts:
            assert p._part is not None
            unit.fitted.update(p._part.fitted)
            unit.preds.update(p._part.preds)
            unit.largest = max(unit.largest, p._part.largest)
        model = cls(config=cfg)
        if unit.warm is None:
            score(cfg, unit)
            return model._adopt(unit, None)
        return model._adopt(unit, parts[0]._carried)

    def _fit_one(self, ys, warm, epochs, members) -> RNNForecaster:
        unit = self._unit(ys, warm, epochs, members)
        fit_units(self.config, [unit])
        if unit.error is not None:
            raise unit.error
        return self._adopt(unit, warm)

    def _unit(self, ys: list[np.ndarray], warm: RNNForecaster | None, epochs, members) -> Unit:
        cfg = self.config
        epochs = member_epochs(epochs, cfg.ensemble)
        if members is None:
            members = list(range(cfg.ensemble))
        members = sorted(int(j) for j in members)
        if not members or len(set(members)) != len(members) or not set(members) <= set(range(cfg.ensemble)):
            raise ValueError(f"members must be distinct indices in 0..{cfg.ensemble - 1}, got {members}")
        if warm is not None:
            preps = self._check_warm_start(warm, ys)
            return Unit(ys, preps, warm.horizon_, cfg.seed, members, cfg.ensemble, warm._members, epochs)
        preps = [prepare(y, cfg.season_length, cfg.transform) for y in ys]
        if len(preps) > 1:
            preps = _share_log_scale(preps)
        return Unit(ys, preps, cfg.head(max(p.season.m for p in preps)), cfg.seed, members, cfg.ensemble, None, epochs)

    def _adopt(self, unit: Unit, warm) -> RNNForecaster:
        """Take the fitted unit's members, scores and series as this model's."""
        cfg, preps = self.config, unit.preps
        self._preps, self.horizon_ = preps, unit.K
        self._steps_per_pass = (
            warm._steps_per_pass if warm is not None else _trained_steps(preps, unit.K, cfg.max_windows)
        )
        self._spreads = np.array([spread_path(p.x)[-1] for p in preps])  # (S,) local size of changes now
        self.members_ = sorted(unit.fitted)
        self._members = [unit.fitted[j] for j in self.members_]
        self._part = unit if unit.partial else None
        if warm is not None:
            self._Q, self._counts, self._out_max = warm._Q, warm._counts, warm._out_max
            self.backtests_ = warm.backtests_
            self._carried = warm if self._part is not None else None  # combine carries it over
        elif self._part is None:
            assert unit.Q is not None and unit.counts is not None
            self._Q, self._counts = unit.Q, unit.counts
            self._out_max = OUT_MAX_FACTOR * max(unit.largest, 1e-12)
            self.backtests_ = unit.backtests
        else:
            self.backtests_ = []
        first = self._members[0]
        self.history_, self.best_epoch_, self.n_epochs_ = first.history, first.best_epoch, first.n_epochs
        self.histories_ = [m.history for m in self._members]
        self.window_ = first.L
        self.backtest_ = self.backtests_[0] if self.backtests_ else None
        self.transforms_ = ["log" if p.log else "linear" for p in preps]
        self.transform_ = self.transforms_[0]
        self.season_length_ = preps[0].season.m if preps[0].season.active else 1
        self.n_obs_, self.n_series_ = int(unit.ys[0].size), len(unit.ys)
        self.warm_started_ = warm is not None
        return self

    def _check_warm_start(self, prev: RNNForecaster, ys: list[np.ndarray]) -> list[Prepared]:
        if not isinstance(prev, RNNForecaster) or not prev._members:
            raise ValueError("warm_start must be a fitted RNNForecaster")
        ours, theirs = self.config.architecture(), prev.config.architecture()
        if ours != theirs:
            diff = {k: (theirs[k], ours[k]) for k in ours if ours[k] != theirs[k]}
            raise ValueError(f"warm_start model differs in {diff} (theirs, ours)")
        if len(ys) != len(prev._preps):
            raise ValueError(f"warm_start model was fitted on {len(prev._preps)} series, not {len(ys)}")
        if self.config.transform not in ("auto", prev.transform_):
            raise ValueError(
                f"warm_start model uses transform {prev.transform_!r}, this one asks for {self.config.transform!r}"
            )
        preps = []
        for y, p in zip(ys, prev._preps):
            if p.log and np.any(y <= 0):
                raise ValueError("warm start: the model uses a log scale but y has values <= 0")
            # Seasonal indices are refreshed (the series may have been cut at its start); the
            # scale stays: the weights were learnt in its units.
            season = Seasonality.fit(y, p.season.m)
            if p.log and np.any(season.remove(y) <= 0):
                season = Seasonality(np.ones(1), y.size)
            sa = season.remove(y)
            preps.append(Prepared(np.log(sa) if p.log else sa, season, p.log, p.scale))
        return preps

    # -------------------------------------------------------------- forecasting
    def predict(self, h: int, y=None) -> np.ndarray:
        """Point forecasts for the next ``h`` steps (h,), units of y, always finite.

        ``y``: forecast after this history instead of the one seen in fit. For a model fitted on
        one series, y is that series with more or fewer points at its end (same first point:
        seasonal positions count from it); after ``fit_many`` it may be any series.
        """
        prep = self._prep_for(y)
        return self._forecast([prep], self._steps(h))[0]

    def predict_histories(self, h: int, ys) -> np.ndarray:
        """``predict(h, y)`` for every history ``y`` in ys (each as ``predict`` takes it), as one
        computation: (len(ys), h). E.g. the forecasts from every origin of a validation part."""
        preps = [self._prep_for(y) for y in ys]
        steps = self._steps(h)
        return self._forecast(preps, steps) if preps else np.empty((0, steps))

    def predict_interval(self, h: int, level: float = 0.8, y=None) -> tuple[np.ndarray, np.ndarray]:
        """``(lower, upper)``, each (h,), around ``predict(h, y)``: split-conformal intervals from
        the k-step validation residuals (relative for log-scale series), units of y."""
        prep = self._prep_for(y)
        spread = self._spreads[0] if y is None else spread_path(prep.x)[-1]
        return self._intervals([prep], np.array([spread]), self._steps(h), level)[0]

    def predict_many(self, h: int) -> list[np.ndarray]:
        """Point forecasts (h,) for every series given to fit/fit_many, in their order."""
        self._check_fitted()
        return list(self._forecast(self._preps, self._steps(h)))

    def predict_interval_many(self, h: int, level: float = 0.8) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(lower, upper)`` for every series given to fit/fit_many, in their order."""
        self._check_fitted()
        return self._intervals(self._preps, self._spreads, self._steps(h), level)

    def _check_fitted(self) -> None:
        if not self._members:
            raise RuntimeError("RNNForecaster is not fitted; call fit(y) or fit_many(ys) first")
        if self._part is not None:
            raise RuntimeError(
                f"this is a part of a fit (members {self.members_}): assemble the parts with RNNForecaster.combine"
            )

    def _steps(self, h) -> int:
        if isinstance(h, bool) or int(h) != h or h < 1:
            raise ValueError(f"h must be a positive integer, got {h!r}")
        return int(h)

    def _prep_for(self, y) -> Prepared:
        self._check_fitted()
        if y is None:
            if len(self._preps) != 1:
                raise ValueError(f"the model was fitted on {len(self._preps)} series: use predict_many(h), or pass y")
            return self._preps[0]
        y = as_series(y, min_length=1)
        if len(self._preps) > 1:  # a global model forecasts any series: prepare it like its own
            p = prepare(y, self.config.season_length, self.config.transform)
            shared = [q.scale for q in self._preps if q.log]  # log-scale series share one unit
            return Prepared(p.x, p.season, p.log, shared[0] if (p.log and shared) else p.scale)
        p = self._preps[0]
        if p.log and np.any(y <= 0):
            raise ValueError("the model uses a log scale but y has values <= 0")
        x = p.to_x(y)
        season = Seasonality(p.season.indices, y.size, p.season.multiplicative)
        return Prepared(x, season, p.log, p.scale)

    def _clip(self, out: np.ndarray) -> np.ndarray:
        return np.clip(np.nan_to_num(out, nan=0.0), -self._out_max, self._out_max)

    def _forecast_x(self, preps: list[Prepared], h: int) -> np.ndarray:
        """Median ensemble forecasts on the model's scale (S, h), K steps per pass (fewer when
        the training data had too few targets that far ahead)."""
        K = self._steps_per_pass
        xs = [p.x for p in preps]
        scale = np.array([p.scale for p in preps])
        out = np.empty((len(preps), h))
        done = 0
        while done < h:
            block = self._clip(np.median(self._member_outputs(xs, scale), axis=0))  # (S, K)
            step = min(K, h - done)
            last = np.array([x[-1] for x in xs])
            out[:, done : done + step] = last[:, None] + block[:, :step] * scale[:, None]
            xs = [np.concatenate([x, row]) for x, row in zip(xs, out[:, done : done + step])]
            done += step
        return out

    def _member_outputs(self, xs: list[np.ndarray], scale: np.ndarray) -> np.ndarray:
        """Every member's output (M, S, K) for the window after the end of each series x (S of
        them), all members as one stack, a chunk of series at a time."""
        members = self._members
        if self._stack is None:
            self._stack = make_stack(self.config.cell, 1, self.config.hidden_size, self.horizon_)
        order = np.argsort([-m.L for m in members], kind="stable")  # longest window first
        dtype = np.dtype(self.config.precision)
        W = np.stack([members[j].flat for j in order]).astype(dtype)  # (M, P)
        lengths = np.array([members[j].L for j in order])
        T, S = int(lengths[0]), len(xs)
        C = chunk_size(len(members), T, self.config.hidden_size, 3, 512)
        out = np.empty((len(members), S, self.horizon_))
        # A member whose read-out weights are all zero forecasts its bias (see passes.forward_chunks).
        constant = [not np.any(members[j].params["Why"]) for j in order]
        if all(constant):
            out[order] = np.stack([members[j].params["by"] for j in order])[:, None, :]
            return out
        for s0 in range(0, S, C):
            part = range(s0, min(S, s0 + C))
            X = np.zeros((len(members), len(part), T, 1), dtype=dtype)  # right-aligned windows
            for i, L in enumerate(lengths):
                X[i, :, T - L :] = np.stack([last_window(xs[k], int(L), scale[k]) for k in part])  # (c, L, 1)
            out[order, s0 : s0 + len(part)] = stacked_forward(self._stack, W, X, lengths)  # (M, c, K)
        return out

    def _forecast(self, preps: list[Prepared], h: int) -> np.ndarray:
        x_hat = self._forecast_x(preps, h)
        with np.errstate(over="ignore"):
            out = np.array([p.to_y(row) for p, row in zip(preps, x_hat)])
        last = np.array([p.to_y(p.x[-1:], start=p.n - 1)[0] for p in preps])
        # Cannot happen with clipped outputs and finite weights; keeps the promise anyway.
        return np.where(np.isfinite(out), out, last[:, None])

    def _intervals(self, preps, spreads, h: int, level: float) -> list[tuple[np.ndarray, np.ndarray]]:
        # (h,) own units; where too few residuals support the level, at least the Gaussian width
        q = floored_half_widths(self._Q, self._counts, h, float(level))
        x_hat = self._forecast_x(preps, h)
        growth = np.sqrt(np.arange(1, h + 1))
        result = []
        with np.errstate(over="ignore"):
            for p, spread, row in zip(preps, spreads, x_hat):
                level_x = 1.0 if p.log else max(abs(float(p.x[-1])), float(np.mean(np.abs(p.x))), 1e-12)
                half = np.maximum(q * spread, MIN_RELATIVE_HALF_WIDTH * level_x * growth)
                point, lo, hi = p.to_y(row), p.to_y(row - half), p.to_y(row + half)
                last = p.to_y(p.x[-1:], start=p.n - 1)[0]
                point = np.where(np.isfinite(point), point, last)
                lo = np.where(np.isfinite(lo), lo, point)
                hi = np.where(np.isfinite(hi), hi, np.finfo(np.float64).max)
                result.append((np.minimum(lo, point), np.maximum(hi, point)))
        return result

    # -------------------------------------------------------------- persistence
    def to_bytes(self) -> bytes:
        """The fitted model (config, members' weights, each series' seasonal indices, scale and
        tail, interval residual quantiles, history, backtests) as bytes; see models.persist."""
        self._check_fitted()
        return persist.dump(self)

    @classmethod
    def from_bytes(cls, blob: bytes) -> RNNForecaster:
        """Inverse of :meth:`to_bytes` (forecasts are bitwise identical); ValueError for a blob
        that is not one, or whose arrays disagree with its header."""
        meta, arrays = persist.unpack(blob)
        try:
            return persist.restore(cls(**{"precision": "float64", **meta["config"]}), meta, arrays)
        except (KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"corrupt tickcast model blob: {type(exc).__name__}: {exc}") from None


def _same_arrays(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def _trained_steps(preps: list[Prepared], K: int, cap: int) -> int:
    """How many of the K outputs are used per pass: the steps that at least half as many
    windows (and at least two) had a target for as step 1. A short series has few targets far
    ahead; outputs trained on one or two of them are noise, so forecasts continue from their own
    predictions instead."""
    counts = np.array([sum(max(0, min(p.n - k, cap)) for p in preps) for k in range(1, K + 1)])
    ok = counts >= max(2.0, counts[0] / 2.0)
    return int(np.argmin(ok)) if not ok.all() else K


def _share_log_scale(preps: list[Prepared]) -> list[Prepared]:
    """Across series, log-scale windows share one unit (the median of their scales), so that a
    1 % move looks the same in every series; linear-scale series keep their own."""
    logs = [p.scale for p in preps if p.log]
    if not logs:
        return preps
    shared = float(np.median(logs))
    return [Prepared(p.x, p.season, p.log, shared) if p.log else p for p in preps]


__all__ = ["RNNForecaster", "SeriesTooShort"]


def member_epochs(epochs, ensemble: int) -> int | tuple[int, ...] | None:
    """``epochs`` as a fit takes it: None (the configured number), a non-negative integer, or a
    list of them, one per ensemble member; anything else is a ValueError."""
    if epochs is None:
        return None
    many = isinstance(epochs, list | tuple | np.ndarray)
    values = list(epochs) if many else [epochs]
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating) or int(v) != v or v < 0:
            raise ValueError(f"epochs must be a non-negative integer or a list of them, got {epochs!r}")
    if not many:
        return int(values[0])
    if len(values) != ensemble:
        raise ValueError(f"epochs: one per ensemble member ({ensemble}), got {len(values)}")
    return tuple(int(v) for v in values)
