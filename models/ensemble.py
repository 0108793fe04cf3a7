"""Fitting ensembles, one or many at once: every member of every model being fitted is one network
in one stack (:mod:`models.engine`), windows cut on the fly from one bank (:mod:`models.bank`).

A :class:`Unit` is one model being fitted: one series (``fit``, each series of ``fit_each``) or
the series of one ``fit_many``. For each unit and member the steps are those of a member trained
alone: early stopping on the newest ``val_fraction`` of every series, forecasts of that part for
the backtest and the interval residuals (the members' median), then (``refit``) training again on
all the data for the epochs validation chose. A unit may train only some of its members (a part
of a ``fit_many`` spread over processes): it then keeps its members' validation forecasts, and
:func:`score` runs when the parts are combined.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import engine, metrics, passes
from .bank import Bank, Windows
from .config import ForecasterConfig
from .intervals import residual_quantiles
from .network import Member, initial_weights, largest_target, shrunk_mean_targets
from .stack import make_stack
from .train import TrainSettings, auto_batch_size
from .windows import Prepared, split_point, spread_path

# Residuals for in-sample intervals (no validation part): the newest this many cut points per series.
IN_SAMPLE_ORIGINS = 50
# Network outputs are clipped to this multiple of the largest training target: a badly trained
# member then still forecasts changes of a size the data has shown.
OUT_MAX_FACTOR = 1.5
# Bytes of a stack's training buffers (about): units beyond it train in another stack. Per network
# a stack costs about the same at any size, until its buffers no longer fit the caches.
STACK_BYTES = 24 << 20


@dataclass
class Unit:
    """One model to fit. ``members``: the ensemble members to train (all, unless a part); ``warm``:
    the previous model's members for a warm start. Results: ``fitted`` (member index -> Member),
    ``largest`` (max |target| seen), and either the scores (``backtests``, ``Q``, ``counts``) or,
    for a part, ``preds`` (member index -> its forecasts (N, K) of the scoring windows)."""

    ys: list[np.ndarray]
    preps: list[Prepared]
    K: int
    seed: int
    members: list[int]
    ensemble: int
    warm: list[Member] | None = None
    epochs: int | tuple[int, ...] | None = None  # None: the configured number; a tuple: per member
    fitted: dict[int, Member] = field(default_factory=dict)
    preds: dict[int, np.ndarray] = field(default_factory=dict)
    largest: float = 0.0
    backtests: list[dict] = field(default_factory=list)
    Q: np.ndarray | None = None
    counts: np.ndarray | None = None
    error: BaseException | None = None

    def epochs_of(self, j: int, default: int) -> int:
        """Member j's number of epochs (an upper bound where early stopping runs)."""
        if self.epochs is None:
            return int(default)
        return int(self.epochs[j]) if isinstance(self.epochs, tuple) else int(self.epochs)

    @property
    def partial(self) -> bool:
        return len(self.members) < self.ensemble

    def lengths(self, cfg: ForecasterConfig) -> list[int]:
        """Every member's window length L."""
        if self.warm is not None:
            return [m.L for m in self.warm]
        longest = max(p.n for p in self.preps)
        return [window_length(cfg, j, self.K, longest) for j in range(self.ensemble)]


def window_length(cfg: ForecasterConfig, j: int, K: int, longest: int) -> int:
    return int(min(max(2, round(cfg.lookbacks[j % len(cfg.lookbacks)] * K)), cfg.max_window, max(2, longest - 1)))


def settings(cfg, epochs: int, n_windows: int, lr: float, patience: int, n_series: int, strict=True) -> TrainSettings:
    # A gain seen on one series may be one period's luck; seen on many at once it rarely is:
    # the bars for "better" fall with the square root of the number of series.
    evidence = np.sqrt(n_series) if strict else np.inf
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


class _Plan:
    """Every unit's series in one bank, and the window sets of each unit."""

    def __init__(self, cfg: ForecasterConfig, units: list[Unit]):
        self.cfg, self.units = cfg, units
        longest = max(max(u.lengths(cfg)) for u in units)
        self.bank = Bank([p for u in units for p in u.preps], longest, max(u.K for u in units))
        self.first = np.concatenate([[0], np.cumsum([len(u.preps) for u in units])])

    def windows(self, k: int, ranges, L: int) -> Windows:
        u = self.units[k]
        lo, hi, end = np.array(ranges, dtype=np.int64).reshape(-1, 3).T
        return Windows(self.bank, np.arange(self.first[k], self.first[k + 1]), lo, hi, end, L, u.K)

    def ranges(self, k: int, kind: str) -> list[tuple[int, int, int]]:
        cfg, preps = self.cfg, self.units[k].preps
        cap = cfg.max_windows
        if kind == "warm":
            return [(max(1, p.n - cfg.warm_windows), p.n, p.n) for p in preps]
        if kind == "in-sample":
            return [(max(1, p.n - IN_SAMPLE_ORIGINS), p.n, p.n) for p in preps]
        if kind == "all":
            return [(max(1, p.n - cap), p.n, p.n) for p in preps]
        splits = [split_point(p.n, cfg.val_fraction) for p in preps]
        if kind == "train":
            return [(max(1, s - cap), s, s) for s in splits]
        return [(s, p.n, p.n) for s, p in zip(splits, preps)]  # "val"

    def has_val(self, k: int) -> bool:
        return any(split_point(p.n, self.cfg.val_fraction) < p.n for p in self.units[k].preps)


def fit_units(cfg: ForecasterConfig, units: list[Unit]) -> None:
    """Fit every unit (in place): units with one horizon K train as one stack, as many units at a
    time as fit in STACK_BYTES."""
    dtype = np.dtype(cfg.precision)
    gates = 3 if cfg.cell == "gru" else 1
    for K in sorted({u.K for u in units}):
        stack = make_stack(cfg.cell, 1, cfg.hidden_size, K)
        batch: list[Unit] = []
        size = 0
        # Similar series side by side: similar steps per epoch and window lengths (a unit's results
        # do not depend on its neighbours, so any order will do).
        for u in sorted((u for u in units if u.K == K), key=lambda u: sum(p.n for p in u.preps)):
            windows = sum(max(p.n - 1, 1) for p in u.preps)
            cost = len(u.members) * (max(u.lengths(cfg)) + 1) * (cfg.batch_size or auto_batch_size(windows))
            cost *= cfg.hidden_size * (gates + 2) * dtype.itemsize
            if batch and size + cost > STACK_BYTES:
                _fit_group(cfg, batch, stack, dtype)
                batch, size = [], 0
            batch.append(u)
            size += cost
        _fit_group(cfg, batch, stack, dtype)
        stack.release()


def _fit_group(cfg: ForecasterConfig, units: list[Unit], stack, dtype) -> None:
    plan = _Plan(cfg, units)
    first: list[tuple[int, int, engine.Job]] = []  # (unit, member, job) of the first phase
    for k, u in enumerate(units):
        S, longest = len(u.preps), max(p.n for p in u.preps)
        if u.warm is not None:
            windows = plan.windows(k, plan.ranges(k, "warm"), 1)
            for j in u.members:
                prev = u.warm[j]
                # No validation: the previous weights saw all of yesterday's data, so a held-out
                # part would not be held out. A few gentle epochs on the newest windows, except for
                # a member whose read-out was never trained (its cold fit's validation found no
                # epoch better than the untrained network: a random walk, say): fine-tuned without
                # validation it would learn the newest windows' noise, so it is carried over as is
                # (epoch 0 only) unless ``epochs`` asks for training.
                untrained = u.epochs is None and not np.any(prev.params["Why"])
                epochs_j = 0 if untrained else u.epochs_of(j, cfg.warm_epochs)
                st = settings(cfg, epochs_j, len(windows), cfg.lr * cfg.warm_lr_scale, 0, S, strict=False)
                rng = np.random.default_rng([u.seed, prev.seed, 2])
                first.append((k, j, engine.Job(prev.flat.copy(), windows.with_length(prev.L), None, st, rng)))
            continue
        train = plan.windows(k, plan.ranges(k, "train"), 1)
        val = plan.windows(k, plan.ranges(k, "val"), 1) if plan.has_val(k) else None
        by = shrunk_mean_targets(train)
        u.largest = largest_target(train)
        for j in u.members:
            L = window_length(cfg, j, u.K, longest)
            flat = initial_weights(stack, u.seed + j, None, cfg.out_scale, by)
            st = settings(cfg, u.epochs_of(j, cfg.epochs), len(train), cfg.lr, cfg.patience, S)
            val_j = val.with_length(L) if val is not None else None
            job = engine.Job(flat, train.with_length(L), val_j, st, np.random.default_rng([u.seed, j]))
            first.append((k, j, job))
    engine.run(stack, [job for _, _, job in first], dtype)
    for k, j, job in first:
        u = units[k]
        if job.error is not None:
            u.error = u.error or job.error
            continue
        L = job.train.L
        u.fitted[j] = Member(cfg.cell, cfg.hidden_size, u.K, L, u.warm[j].seed if u.warm else u.seed + j, job.flat)
        u.fitted[j].history, u.fitted[j].best_epoch, u.fitted[j].n_epochs = job.history, job.best_epoch, job.n_epochs
    cold = [k for k, u in enumerate(units) if u.warm is None and u.error is None]
    _forecast_scoring_windows(plan, stack, cold, dtype)
    _refit(plan, stack, [k for k in cold if plan.has_val(k) and cfg.refit], dtype)


def _scoring_windows(plan: _Plan, k: int) -> Windows:
    return plan.windows(k, plan.ranges(k, "val" if plan.has_val(k) else "in-sample"), 1)


def _forecast_scoring_windows(plan: _Plan, stack, cold: list[int], dtype) -> None:
    """Each cold unit's members forecast its validation windows (the in-sample newest ones when it
    has none), in one pass over all of them; a whole unit is scored on the fly, a part keeps the
    forecasts."""
    rows: list[tuple[int, int]] = []
    sources, weights = [], []
    for k in cold:
        u, windows = plan.units[k], _scoring_windows(plan, k)
        for j in u.members:
            rows.append((k, j))
            sources.append(windows.with_length(u.fitted[j].L))
            weights.append(u.fitted[j].flat)
    if not rows:
        return
    whole = {k: _Scorer(plan, k) for k in cold if not plan.units[k].partial}
    for k in cold:
        u = plan.units[k]
        if u.partial:
            u.preds = {j: np.zeros((len(_scoring_windows(plan, k)), u.K)) for j in u.members}
    by_unit: dict[int, list[int]] = {}
    for r, (k, _) in enumerate(rows):
        by_unit.setdefault(k, []).append(r)
    for chunk_rows, start, counts, out, Y, M in passes.forward_chunks(stack, np.stack(weights), sources, dtype):
        at = {int(r): i for i, r in enumerate(chunk_rows)}
        for k, members_rows in by_unit.items():
            here = [at[r] for r in members_rows if r in at]
            if not here:
                continue
            b = int(counts[here[0]])
            if k in whole:
                pred = np.median(out[here, :b], axis=0)  # (b, K) the members' median
                whole[k].add(start, pred, Y[here[0], :b], M[here[0], :b])
            else:
                for i in here:
                    plan.units[k].preds[rows[chunk_rows[i]][1]][start : start + b] = out[i, :b]
    for scorer in whole.values():
        scorer.finish()


def _refit(plan: _Plan, stack, ks: list[int], dtype) -> None:
    """Each member again from the same initialisation on all the data, for the best number of epochs."""
    cfg, jobs = plan.cfg, []
    for k in ks:
        u = plan.units[k]
        everything = plan.windows(k, plan.ranges(k, "all"), 1)
        by = shrunk_mean_targets(everything)
        u.largest = max(u.largest, largest_target(everything))
        for j in u.members:
            member = u.fitted[j]
            flat = initial_weights(stack, u.seed + j, None, cfg.out_scale, by)
            st = settings(cfg, member.best_epoch, len(everything), cfg.lr, 0, len(u.preps))
            rng = np.random.default_rng([u.seed, j, 1])
            jobs.append((u, j, engine.Job(flat, everything.with_length(member.L), None, st, rng, record=False)))
    engine.run(stack, [job for _, _, job in jobs], dtype)
    for u, j, job in jobs:
        if job.error is not None:
            u.error = u.error or job.error
        else:
            u.fitted[j].flat[:] = job.flat


class _Scorer:
    """Backtests and interval residuals of a unit from its members' median forecasts (network
    units) of its scoring windows, fed chunk by chunk in window order."""

    def __init__(self, plan: _Plan, k: int):
        self.unit, self.in_sample = plan.units[k], not plan.has_val(k)
        self.windows = _scoring_windows(plan, k)
        series, self.cut = self.windows.owners()
        self.owner = series - plan.first[k]  # (N,) series index within the unit
        self.paths = [spread_path(p.x) for p in self.unit.preps]
        self.out_max = OUT_MAX_FACTOR * max(self.unit.largest, 1e-12)
        # |error| in local units, one per validation window and step: float32, the one record of a
        # group fit that grows with its windows (K of them per window)
        self.resid = np.full((len(self.windows), self.unit.K), np.nan, dtype=np.float32)
        self.one_step = np.zeros(len(self.windows))  # (N,) first-step forecasts, network units

    def add(self, start: int, pred: np.ndarray, Y: np.ndarray, M: np.ndarray) -> None:
        pred = np.clip(np.nan_to_num(pred, nan=0.0), -self.out_max, self.out_max)
        rows = slice(start, start + pred.shape[0])
        owner, cut = self.owner[rows], self.cut[rows]
        scale = np.array([p.scale for p in self.unit.preps])[owner]  # (b,)
        local = np.array([self.paths[i][t] for i, t in zip(owner, cut)])  # (b,)
        self.resid[rows] = np.where(M > 0, np.abs((Y - pred) * (scale / local)[:, None]), np.nan)
        self.one_step[rows] = pred[:, 0]

    def finish(self) -> None:
        u = self.unit
        u.Q, u.counts = residual_quantiles(self.resid)
        if self.in_sample:
            u.backtests = [_scores(None, None, None, 0.0) for _ in u.preps]
            return
        u.backtests = []
        for i, (y, p) in enumerate(zip(u.ys, u.preps)):
            # Every series has a validation part here, after at least 2 points (split_point leaves
            # one to any series of MIN_LENGTH points or more when the unit has one).
            rows = self.owner == i
            t = self.cut[rows]  # forecast y[t] from y[:t]
            x_hat = p.x[t - 1] + self.one_step[rows] * p.scale
            y_hat = p.values_at(x_hat, t)
            u.backtests.append(_scores(y[t], y_hat, y[t - 1], metrics.naive_scale(y[: int(t.min())])))


def score(cfg: ForecasterConfig, u: Unit) -> None:
    """Score a unit whose members were trained in parts: the median of the kept forecasts."""
    plan = _Plan(cfg, [u])
    scorer = _Scorer(plan, 0)
    preds = np.stack([u.preds[j] for j in sorted(u.preds)])  # (M, N, K)
    for start, (Y, M) in zip(range(0, len(scorer.windows), 4096), _chunks(scorer.windows, 4096)):
        scorer.add(start, np.median(preds[:, start : start + Y.shape[0]], axis=0), Y, M)
    scorer.finish()


def _chunks(windows: Windows, size: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    return windows.chunks(size)


def _scores(actual, pred, naive, scale: float) -> dict:
    """Backtest dict: the model's and the naive forecast's MAE, RMSE, sMAPE and MASE."""
    if actual is None or len(actual) == 0:
        keys = ("mae", "rmse", "smape", "mase", "naive_mae", "naive_rmse", "naive_smape", "naive_mase", "relative_mae")
        return {"n": 0, **{k: None for k in keys}, "mase_scale": scale}
    out: dict[str, Any] = {"n": int(len(actual))}
    for prefix, p in (("", pred), ("naive_", naive)):
        out[prefix + "mae"] = metrics.mae(actual, p)
        out[prefix + "rmse"] = metrics.rmse(actual, p)
        out[prefix + "smape"] = metrics.smape(actual, p)
        out[prefix + "mase"] = out[prefix + "mae"] / scale if scale > 0 else None
    out["relative_mae"] = out["mae"] / out["naive_mae"] if out["naive_mae"] > 0 else None
    out["mase_scale"] = scale
    return out
