"""RNNForecaster: a recurrent network that forecasts one series (``fit``) or many series of one
frequency with one set of weights (``fit_many``).

Pipeline (see ``models.windows``): each series is seasonally adjusted, put on a log (positive
series) or linear scale and cut into windows normalised to their last value; an ensemble of
recurrent networks with different window lengths and seeds maps a window to the next K values
at once (a direct multi-step read-out); the forecast is the members' median, mapped back to the
units of y. Longer forecasts continue from their own predictions, K values at a time.

Training (per member): early stopping on the newest ``val_fraction`` of every series, whose
forecasts also give the backtest against the naive forecast and the split-conformal interval
residuals; then (``refit``) the member is trained again on all the data for the number of epochs
validation chose, so the newest points shape the weights too.
"""

from __future__ import annotations

import numpy as np

from . import metrics, persist
from .config import ForecasterConfig
from .errors import SeriesTooShort
from .intervals import half_widths, residual_quantiles
from .network import Member
from .seasonality import Seasonality
from .train import Data, TrainSettings, auto_batch_size
from .windows import Prepared, as_series, assemble, last_window, prepare, split_point, spread_path

# Residuals for in-sample intervals (no validation part): the newest this many cut points per series.
IN_SAMPLE_ORIGINS = 50
# Intervals are at least this wide relative to the level (times sqrt(step)): a series that never
# moved still gets an interval, not a point.
MIN_RELATIVE_HALF_WIDTH = 1e-4
# Network outputs are clipped to this multiple of the largest training target: a badly trained
# member then still forecasts changes of a size the data has shown.
OUT_MAX_FACTOR = 1.5


class RNNForecaster:
    """Settings as keyword arguments (see :class:`ForecasterConfig`), or ``config=``.

    Fitted attributes (trailing underscore): ``history_`` (the first member's loss per epoch,
    0 = before the first update), ``histories_`` (every member's), ``backtest_`` (one-step
    scores on the validation part against the naive forecast; ``backtests_`` per series after
    ``fit_many``), ``transform_`` (``transforms_`` per series), ``season_length_``, ``horizon_`` (K), ``window_`` (the
    first member's L), ``n_epochs_``, ``best_epoch_``, ``n_obs_``, ``n_series_``,
    ``warm_started_``.
    """

    def __init__(self, *, config: ForecasterConfig | None = None, **settings):
        base = config.to_dict() if config is not None else {}
        self.config = ForecasterConfig.from_dict({**base, **settings})
        self._members: list[Member] = []

    def get_params(self) -> dict:
        """The settings as a JSON-able dict (``RNNForecaster(**m.get_params())`` clones them)."""
        return self.config.to_dict()

    def __repr__(self) -> str:
        default = ForecasterConfig().to_dict()
        changed = {k: v for k, v in self.get_params().items() if v != default[k]}
        return f"RNNForecaster({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    # ------------------------------------------------------------------ fitting
    def fit(self, y, warm_start: RNNForecaster | None = None, epochs: int | None = None):
        """Fit on one series y (1-D, oldest first, finite, at least MIN_LENGTH points); returns self.

        ``warm_start``: a fitted model with the same architecture; its members' weights are
        fine-tuned on the newest ``warm_windows`` windows of y for ``epochs`` (default
        ``warm_epochs``) at ``lr * warm_lr_scale``. Its scale is kept (the weights were learnt
        in those units) and its intervals and backtest are carried over; refit from scratch now
        and then to refresh them. ``epochs`` overrides the configured number for either kind.
        """
        return self._fit([as_series(y)], warm_start, epochs)

    def fit_many(self, ys, warm_start: RNNForecaster | None = None, epochs: int | None = None):
        """Fit one network (ensemble) across many series of one frequency; returns self.
        ``ys``: a sequence of 1-D series, any lengths. Forecast them with :meth:`predict_many`."""
        ys = [as_series(y, what=f"series {i}") for i, y in enumerate(ys)]
        if not ys:
            raise ValueError("fit_many needs at least one series")
        return self._fit(ys, warm_start, epochs)

    def _fit(self, ys: list[np.ndarray], warm: RNNForecaster | None, epochs: int | None):
        cfg = self.config
        if epochs is not None and (int(epochs) != epochs or epochs < 0):
            raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}")
        if warm is not None:
            preps = self._check_warm_start(warm, ys)
            K = warm.horizon_
        else:
            preps = [prepare(y, cfg.season_length, cfg.transform) for y in ys]
            if len(preps) > 1:
                preps = _share_log_scale(preps)
            K = cfg.head(max(p.season.m for p in preps))
        longest = max(p.n for p in preps)
        self._preps, self.horizon_ = preps, K
        self._steps_per_pass = warm._steps_per_pass if warm is not None else _trained_steps(preps, K, cfg.max_windows)
        paths = [spread_path(p.x) for p in preps]
        self._spreads = np.array([path[-1] for path in paths])  # (S,) local size of changes now
        if warm is not None:
            self._members = [self._warm_member(prev, preps, K, epochs) for prev in warm._members]
            self._Q, self._counts, self._out_max = warm._Q, warm._counts, warm._out_max
            self.backtests_, hist_src = warm.backtests_, self._members
        else:
            self._fit_members(ys, preps, paths, K, longest, epochs)
            hist_src = self._members
        first = hist_src[0]
        self.history_, self.best_epoch_, self.n_epochs_ = first.history, first.best_epoch, first.n_epochs
        self.histories_ = [m.history for m in hist_src]
        self.window_ = first.L
        self.backtest_ = self.backtests_[0]
        self.transforms_ = ["log" if p.log else "linear" for p in preps]
        self.transform_ = self.transforms_[0]
        self.season_length_ = preps[0].season.m if preps[0].season.active else 1
        self.n_obs_, self.n_series_ = int(ys[0].size), len(ys)
        self.warm_started_ = warm is not None
        return self

    def _settings(self, epochs: int, n_windows: int, lr: float, patience: int, strict: bool = True) -> TrainSettings:
        cfg = self.config
        # A gain seen on one series may be one period's luck; seen on many at once it rarely is:
        # the bars for "better" fall with the square root of the number of series.
        evidence = np.sqrt(len(self._preps)) if strict else np.inf
        return TrainSettings(
            int(epochs),
            cfg.batch_size or auto_batch_size(n_windows),
            lr,
            cfg.optimizer,
            cfg.clip,
            cfg.clip_mode,
            patience,
            cfg.min_delta / evidence,
            cfg.max_backoffs,
            cfg.loss,
            cfg.significance / evidence,
        )

    def _fit_members(
        self, ys, preps: list[Prepared], paths: list[np.ndarray], K: int, longest: int, epochs: int | None
    ) -> None:
        cfg = self.config
        n_epochs = cfg.epochs if epochs is None else int(epochs)
        splits = [split_point(p.n, cfg.val_fraction) for p in preps]
        has_val = any(s < p.n for s, p in zip(splits, preps))
        cap = cfg.max_windows
        train_ranges = [(max(1, s - cap), s, s) for s in splits]
        val_ranges = [(s, p.n, p.n) for s, p in zip(splits, preps)]
        all_ranges = [(max(1, p.n - cap), p.n, p.n) for p in preps]
        self._members, val_preds, out_max = [], [], 0.0
        for j in range(cfg.ensemble):
            L = int(min(max(2, round(cfg.lookbacks[j % len(cfg.lookbacks)] * K)), cfg.max_window, max(2, longest - 1)))
            member = Member(cfg.cell, cfg.hidden_size, K, L, cfg.seed + j)
            rng = np.random.default_rng([cfg.seed, j])
            X, Y, M, _, _ = assemble(preps, L, K, train_ranges)
            data = Data(X, Y, M)
            out_max = max(out_max, float(np.max(np.abs(Y[M > 0]), initial=0.0)))
            val = None
            if has_val:
                Xv, Yv, Mv, owner, cut = assemble(preps, L, K, val_ranges)
                val = Data(Xv, Yv, Mv)
            member.initialise(data, cfg.out_scale)
            member.fit(data, val, self._settings(n_epochs, len(data), cfg.lr, cfg.patience), rng)
            if val is not None:
                val_preds.append(member.predict(val.X))
            if has_val and cfg.refit:
                final = Member(cfg.cell, cfg.hidden_size, K, L, cfg.seed + j)
                Xa, Ya, Ma, _, _ = assemble(preps, L, K, all_ranges)
                everything = Data(Xa, Ya, Ma)
                out_max = max(out_max, float(np.max(np.abs(Ya[Ma > 0]), initial=0.0)))
                final.initialise(everything, cfg.out_scale)
                final.fit(
                    everything,
                    None,
                    self._settings(member.best_epoch, len(everything), cfg.lr, 0),
                    np.random.default_rng([cfg.seed, j, 1]),
                )
                final.history, final.best_epoch, final.n_epochs = member.history, member.best_epoch, member.n_epochs
                member = final
            self._members.append(member)
        self._out_max = OUT_MAX_FACTOR * max(out_max, 1e-12)
        if has_val:
            self._score_validation(ys, preps, paths, val, np.median(np.array(val_preds), axis=0), owner, cut)
        else:
            self._score_in_sample(preps, paths, K)

    def _residual_quantiles(self, preps, paths, data: Data, pred: np.ndarray, owner, cut) -> None:
        """Interval residuals: errors of the forecasts ``pred`` (N, K, network units) in units of
        the local size of changes at their cut point, so one set of quantiles serves calm and
        wild stretches and series alike."""
        scale = np.array([p.scale for p in preps])[owner]  # (N,)
        local = np.array([paths[i][t] for i, t in zip(owner, cut)])  # (N,)
        resid = (data.Y - pred) * (scale / local)[:, None]  # (N, K)
        self._Q, self._counts = residual_quantiles(np.where(data.M > 0, np.abs(resid), np.nan))

    def _score_validation(self, ys, preps, paths, val: Data, pred: np.ndarray, owner, cut) -> None:
        """Backtests (one step ahead, units of y, per series) and the interval residuals from the
        validation forecasts ``pred`` (N_val, K), network units."""
        pred = self._clip(pred)
        self._residual_quantiles(preps, paths, val, pred, owner, cut)
        self.backtests_ = []
        for i, (y, p) in enumerate(zip(ys, preps)):
            rows = owner == i
            if not rows.any():
                self.backtests_.append(_scores(None, None, None, metrics.naive_scale(y) if y.size > 1 else 0.0))
                continue
            t = cut[rows]  # forecast y[t] from y[:t]
            x_hat = p.x[t - 1] + pred[rows, 0] * p.scale
            y_hat = p.values_at(x_hat, t)
            split = int(t.min())
            mase_scale = metrics.naive_scale(y[:split]) if split > 1 else 0.0
            self.backtests_.append(_scores(y[t], y_hat, y[t - 1], mase_scale))

    def _score_in_sample(self, preps, paths, K: int) -> None:
        """Too little data to hold any out: in-sample residuals of the newest windows (so the
        intervals are optimistic) and no backtest."""
        ranges = [(max(1, p.n - IN_SAMPLE_ORIGINS), p.n, p.n) for p in preps]
        per_member, data = [], None
        for member in self._members:
            X, Y, M, owner, cut = assemble(preps, member.L, K, ranges)
            data = Data(X, Y, M)
            per_member.append(member.predict(X))
        self._residual_quantiles(preps, paths, data, self._clip(np.median(np.array(per_member), axis=0)), owner, cut)
        self.backtests_ = [_scores(None, None, None, 0.0) for _ in preps]

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

    def _warm_member(self, prev: Member, preps: list[Prepared], K: int, epochs: int | None) -> Member:
        cfg = self.config
        member = Member(prev.cell_name, prev.hidden_size, prev.K, prev.L, prev.seed, flat=prev.flat.copy())
        ranges = [(max(1, p.n - cfg.warm_windows), p.n, p.n) for p in preps]
        X, Y, M, _, _ = assemble(preps, member.L, K, ranges)
        n_epochs = cfg.warm_epochs if epochs is None else int(epochs)
        data = Data(X, Y, M)
        # No validation: the previous weights saw all of yesterday's data, so a held-out part
        # would not be held out. A few gentle epochs on the newest windows.
        member.fit(
            data,
            None,
            self._settings(n_epochs, len(data), cfg.lr * cfg.warm_lr_scale, 0, strict=False),
            np.random.default_rng([cfg.seed, prev.seed, 2]),
        )
        return member

    # -------------------------------------------------------------- forecasting
    def predict(self, h: int, y=None) -> np.ndarray:
        """Point forecasts for the next ``h`` steps (h,), units of y, always finite.

        ``y``: forecast after this history instead of the one seen in fit. For a model fitted on
        one series, y is that series with more or fewer points at its end (same first point:
        seasonal positions count from it); after ``fit_many`` it may be any series.
        """
        prep = self._prep_for(y)
        return self._forecast([prep], self._steps(h))[0]

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
            own = self._preps[0]
            p = prepare(y, self.config.season_length, self.config.transform)
            return Prepared(p.x, p.season, p.log, own.scale if (p.log and own.log) else p.scale)
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
            blocks = []
            for member in self._members:
                X = np.stack([last_window(x, member.L, s) for x, s in zip(xs, scale)])
                blocks.append(member.predict(X))  # (S, L, 1) -> (S, K)
            block = self._clip(np.median(np.array(blocks), axis=0))  # (S, K)
            step = min(K, h - done)
            last = np.array([x[-1] for x in xs])
            out[:, done : done + step] = last[:, None] + block[:, :step] * scale[:, None]
            xs = [np.concatenate([x, row]) for x, row in zip(xs, out[:, done : done + step])]
            done += step
        return out

    def _forecast(self, preps: list[Prepared], h: int) -> np.ndarray:
        x_hat = self._forecast_x(preps, h)
        out = np.array([p.to_y(row) for p, row in zip(preps, x_hat)])
        last = np.array([p.to_y(p.x[-1:], start=p.n - 1)[0] for p in preps])
        # Cannot happen with clipped outputs and finite weights; keeps the promise anyway.
        return np.where(np.isfinite(out), out, last[:, None])

    def _intervals(self, preps, spreads, h: int, level: float) -> list[tuple[np.ndarray, np.ndarray]]:
        q = half_widths(self._Q, self._counts, h, float(level))  # (h,) own units
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
        tail = max(m.L for m in self._members)
        tails = [p.x[-tail:] for p in self._preps]
        meta = {
            "config": self.config.to_dict(),
            "horizon": self.horizon_,
            "out_max": self._out_max,
            "steps_per_pass": self._steps_per_pass,
            "members": [m.meta() for m in self._members],
            "histories": self.histories_,
            "series": [{**p.meta(), "n": p.n} for p in self._preps],
            "backtests": self.backtests_,
            "warm_started": self.warm_started_,
            "n_obs": self.n_obs_,
        }
        arrays = {
            "weights": np.stack([m.flat for m in self._members]),
            "tails": np.concatenate(tails),
            "tail_lengths": np.array([t.size for t in tails]),
            "spreads": self._spreads,
            "residual_quantiles": self._Q,
            "residual_counts": self._counts,
        }
        return persist.pack(meta, arrays)

    @classmethod
    def from_bytes(cls, blob: bytes) -> RNNForecaster:
        """Inverse of :meth:`to_bytes` (forecasts are bitwise identical); ValueError for a blob
        that is not one, or whose arrays disagree with its header."""
        meta, arrays = persist.unpack(blob)
        try:
            return cls._restore(meta, arrays)
        except (KeyError, TypeError, IndexError) as exc:
            raise ValueError(f"corrupt tickcast model blob: {type(exc).__name__}: {exc}") from None

    @classmethod
    def _restore(cls, meta: dict, arrays: dict) -> RNNForecaster:
        m = cls(**meta["config"])
        K = int(meta["horizon"])
        W, lengths, tails = arrays["weights"], arrays["tail_lengths"], arrays["tails"]
        series = meta["series"]
        if (
            W.ndim != 2
            or W.shape[0] != len(meta["members"])
            or len(series) != lengths.size
            or int(lengths.sum()) != tails.size
            or arrays["spreads"].shape != (len(series),)
            or arrays["residual_quantiles"].ndim != 2
            or arrays["residual_quantiles"].shape[0] != K
        ):
            raise ValueError("corrupt tickcast model blob: its arrays disagree with its header")
        if not all(np.all(np.isfinite(a)) for a in (W, tails, arrays["spreads"], arrays["residual_quantiles"])):
            raise ValueError("corrupt tickcast model blob: non-finite weights or statistics")
        m._members = [
            Member(
                m.config.cell,
                m.config.hidden_size,
                K,
                int(d["L"]),
                int(d["seed"]),
                flat=w,
                best_epoch=int(d["best_epoch"]),
                n_epochs=int(d["n_epochs"]),
            )
            for d, w in zip(meta["members"], W)
        ]
        for member, hist in zip(m._members, meta["histories"]):
            member.history = hist
        m._preps = []
        for s, x in zip(series, np.split(tails, np.cumsum(lengths)[:-1])):
            season = Seasonality.from_dict(s["season"])
            # Only the tail of x is kept; positions still count from the series' first point.
            season = Seasonality(season.indices, int(s["n"]), season.multiplicative)
            m._preps.append(_TailPrepared(x, season, bool(s["log"]), float(s["scale"]), int(s["n"])))
        m.horizon_, m._out_max = K, float(meta["out_max"])
        m._steps_per_pass = int(meta["steps_per_pass"])
        if not 1 <= m._steps_per_pass <= K:
            raise ValueError("corrupt tickcast model blob: steps_per_pass outside 1..horizon")
        m._spreads, m._Q, m._counts = arrays["spreads"], arrays["residual_quantiles"], arrays["residual_counts"]
        m.backtests_, m.histories_ = meta["backtests"], meta["histories"]
        first = m._members[0]
        m.history_, m.best_epoch_, m.n_epochs_, m.window_ = first.history, first.best_epoch, first.n_epochs, first.L
        m.backtest_ = m.backtests_[0]
        p0 = m._preps[0]
        m.transforms_ = ["log" if p.log else "linear" for p in m._preps]
        m.transform_ = m.transforms_[0]
        m.season_length_ = p0.season.m if p0.season.active else 1
        m.n_obs_, m.n_series_, m.warm_started_ = meta["n_obs"], len(m._preps), meta["warm_started"]
        return m


class _TailPrepared(Prepared):
    """A prepared series restored from bytes: only its tail is kept, ``n`` is its full length."""

    def __init__(self, x, season, log, scale, n):
        super().__init__(x, season, log, scale)
        object.__setattr__(self, "_n", n)

    @property
    def n(self) -> int:
        return self._n


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


def _scores(actual, pred, naive, scale: float) -> dict:
    """Backtest dict: the model's and the naive forecast's MAE, RMSE, sMAPE and MASE."""
    if actual is None or len(actual) == 0:
        keys = ("mae", "rmse", "smape", "mase", "naive_mae", "naive_rmse", "naive_smape", "naive_mase", "relative_mae")
        return {"n": 0, **{k: None for k in keys}, "mase_scale": scale}
    out = {"n": int(len(actual))}
    for prefix, p in (("", pred), ("naive_", naive)):
        out[prefix + "mae"] = metrics.mae(actual, p)
        out[prefix + "rmse"] = metrics.rmse(actual, p)
        out[prefix + "smape"] = metrics.smape(actual, p)
        out[prefix + "mase"] = out[prefix + "mae"] / scale if scale > 0 else None
    out["relative_mae"] = out["mae"] / out["naive_mae"] if out["naive_mae"] > 0 else None
    out["mase_scale"] = scale
    return out


__all__ = ["RNNForecaster", "SeriesTooShort"]
