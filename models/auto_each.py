"""Many AutoForecasters at once: ``AutoForecaster.fit_each`` (one model per series), and the RNN
fits the AutoForecaster paths share.

``fit_each`` plans every series as ``fit`` would, then runs the RNN fits of all of them in two
lists of jobs (the validation fits of the cold ones and the fine-tuning of the warm ones, then
the final fits, each following its validation fit: ``final_epochs``), and the challengers' cold
fits vectorised over the series of one validation horizon (``Challenger.split`` hands each
series its own model, with its own interval residuals), then assembles each series' model as
``fit`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .challenger import Challenger, as_series
from .errors import TrainingDiverged
from .forecaster import RNNForecaster
from .members import CHALLENGERS
from .validation import continues_validation
from .windows import split_point

# What a series' failed fit can raise (with errors="return" it is returned in its place).
FIT_ERRORS = (ValueError, ArithmeticError, RuntimeError)


def fit_rnn_on(model: RNNForecaster, ys: list[np.ndarray], across: bool, epochs, warm=None) -> RNNForecaster:
    """``model.fit_many(ys)`` across series, else ``model.fit(ys[0])``."""
    if across:
        return model.fit_many(ys, warm_start=warm, epochs=epochs)
    return model.fit(ys[0], warm_start=warm, epochs=epochs)


# Independent stretches of K steps the validation fit's held-out part must hold before "training
# never helped" counts as evidence that there is nothing to learn (the usual large-sample rule).
MIN_EVIDENCE_BLOCKS = 30


def final_epochs(val: RNNForecaster | None, epochs: int | None):
    """The epochs of a per-series final RNN fit after its validation fit ``val``: as asked, except
    for a member whose training never lowered the validation fit's held-out loss at all, on at
    least MIN_EVIDENCE_BLOCKS independent stretches of K steps (its untrained network, which
    forecasts the average change, did better after every epoch: on long price series, usually).
    It is not trained on the whole series either: the final fit's own early stopping would judge it
    on one newer stretch of the same series, where a gain is more likely that stretch's luck than
    a pattern (warm starts carry such a member over unchanged too). On short series (M3's) the
    held-out part is too small for such evidence, and every member trains as asked."""
    if val is None or len(val._preps) != 1:
        return epochs
    n = val._preps[0].n
    if (n - split_point(n, val.config.val_fraction)) / val.horizon_ < MIN_EVIDENCE_BLOCKS:
        return epochs
    useless = [_never_helped(h) for h in val.histories_]
    if not any(useless):
        return epochs
    asked = val.config.epochs if epochs is None else int(epochs)
    return tuple(0 if u else asked for u in useless)


def final_continues(plan, val: RNNForecaster | None) -> bool:
    """Whether a per-series final RNN fit is its validation model ``val`` fine-tuned on the whole
    series (``RNNForecaster.fit(warm_start=val)``: ``warm_epochs`` on the newest windows, members
    whose training never helped carried over as they are) instead of a training from scratch:
    when the validation fit saw at least REFIT_SHARE of the series (``continues_validation``).
    Its early stopping has already judged every member on nearly the same data; a second
    training from scratch would mostly repeat it. This is how the service's daily warm starts
    follow a fit too, and the RNN's intervals and backtest are the validation model's."""
    if val is None or plan.across or len(plan.ys) != 1:
        return False
    return continues_validation(plan.splits[0], plan.ys[0].size)


def _never_helped(history: list[dict]) -> bool:
    """Whether no epoch of a validated fit reached the untrained network's validation loss."""
    losses = [row["val_loss"] for row in history]
    if len(losses) < 2 or any(v is None for v in losses):
        return False
    return min(losses[1:]) >= losses[0]


@dataclass
class RnnJob:
    """One per-series RNN fit: ``key`` (series, kind: "validation", "final" or "warm"), the
    RNN's settings (seed included), the series and the model it continues (or None)."""

    key: tuple[int, str]
    params: dict
    y: np.ndarray
    warm: RNNForecaster | None = None
    epochs: Any = None  # None: the epochs every job was given; else this job's (final_epochs);
    #                     jobs of equal settings and epochs train as one batch


def fit_rnn_jobs(jobs: list[RnnJob], epochs) -> dict[tuple[int, str], Any]:
    """Every job's fitted RNNForecaster, or the exception its fit raised, by key."""
    out: dict[tuple[int, str], Any] = {}
    batches: dict[str, list[RnnJob]] = {}  # jobs whose settings differ only in the seed train as one
    for job in jobs:
        shared = {k: v for k, v in job.params.items() if k != "seed"}
        batches.setdefault(repr((sorted(shared.items()), job.epochs)), []).append(job)
    for batch in batches.values():
        try:  # each job's seed is passed as its own: the first job's settings stand for all
            fitted = RNNForecaster(**batch[0].params).fit_each(
                [job.y for job in batch],
                seeds=[job.params["seed"] for job in batch],
                warm_starts=[job.warm for job in batch],
                epochs=epochs if batch[0].epochs is None else batch[0].epochs,
                errors="return",
            )
        except FIT_ERRORS as exc:  # settings no series can train with: every job of the batch fails
            fitted = [exc] * len(batch)
        for job, model in zip(batch, fitted):
            out[job.key] = model
    return out


def fit_each(proto, ys: list, seeds: list, warm_starts: list, epochs, errors: str) -> list:
    """See ``AutoForecaster.fit_each``; ``proto`` is the AutoForecaster whose settings they share."""
    out: list = [None] * len(ys)
    todo: dict[int, tuple[Any, np.ndarray]] = {}  # series -> (its AutoForecaster, y)
    plans: dict[int, Any] = {}
    jobs: list[RnnJob] = []  # the validation fits and the warm starts, then the final fits
    finals: list[RnnJob] = []
    for i, (y, seed, prev) in enumerate(zip(ys, seeds, warm_starts)):
        try:
            y = as_series(y, what=f"series {i}")
            model = proto._clone(seed)
            if prev is None:
                plan = plans[i] = model._plan([y], False)
                if plan.use:
                    params = model._rnn_model(plan.rnn_period).get_params()
                    if plan.held:
                        jobs.append(RnnJob((i, "validation"), params, plan.validation_series()[0]))
                    finals.append(RnnJob((i, "final"), params, y))
            else:
                model._check_warm(prev, [y], False)
                if "rnn" in prev.members_:
                    old = prev.members_["rnn"]
                    jobs.append(RnnJob((i, "warm"), {**old.get_params(), "seed": model.seed}, y, old))
            todo[i] = model, y
        except FIT_ERRORS as exc:
            if errors == "raise":
                raise
            out[i] = exc
    rnns = fit_rnn_jobs(jobs, epochs)
    for job in finals:  # each after its validation fit: continuing it, or following its members
        val = rnns.get((job.key[0], "validation"))
        if isinstance(val, RNNForecaster) and final_continues(plans[job.key[0]], val):
            job.warm = val
            continue
        job.epochs = final_epochs(val, epochs) if isinstance(val, RNNForecaster) else epochs
    rnns.update(fit_rnn_jobs(finals, epochs))
    challengers = _cold_challengers(proto, {i: plans[i] for i in todo if i in plans})
    for i, (model, y) in todo.items():
        try:
            prev = warm_starts[i]
            if prev is not None:
                rnn = rnns.get((i, "warm"))
                if isinstance(rnn, BaseException):
                    raise rnn
                out[i] = model._adopt_warm(prev._core(), [y], rnn, model._warm_challengers(prev, [y]))
                continue
            plan = plans[i]
            val, final = rnns.get((i, "validation")), rnns.get((i, "final"))
            failed = [r for r in (val, final) if isinstance(r, BaseException)]
            for error in failed:
                if not isinstance(error, TrainingDiverged):
                    raise error
            if failed:  # as fit: a diverged RNN leaves the forecast to the challengers
                val = final = None
            validation = model._rnn_validation(plan, val) if final is not None else None
            out[i] = model._assemble(plan, final, validation, challengers[i])._keep_record(plan, val, final)
        except FIT_ERRORS as exc:
            if errors == "raise":
                raise
            out[i] = exc
    return out


def _cold_challengers(proto, plans: dict[int, Any]) -> dict[int, dict[str, Challenger]]:
    """Each cold series' challengers, fitted for all series of one validation horizon at once
    and split into one model per series."""
    out: dict[int, dict[str, Challenger]] = {i: {} for i in plans}
    by_horizon: dict[int, list[int]] = {}
    for i, plan in plans.items():
        by_horizon.setdefault(plan.H, []).append(i)
    for H, idx in sorted(by_horizon.items()):
        ys = [plans[i].ys[0] for i in idx]
        ms = [plans[i].ms[0] for i in idx]
        for name in proto.members:
            if name == "rnn":
                continue
            for i, model in zip(idx, CHALLENGERS[name](horizon=H).fit_many(ys, season_lengths=ms).split()):
                out[i][name] = model
    return out


__all__ = ["fit_each", "fit_rnn_on", "final_epochs", "final_continues", "fit_rnn_jobs", "RnnJob", "FIT_ERRORS"]
