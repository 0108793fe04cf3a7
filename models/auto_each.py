"""Many AutoForecasters at once: ``AutoForecaster.fit_each`` (one model per series), and the RNN
fits the AutoForecaster paths share.

``fit_each`` plans every series as ``fit`` would, then runs the RNN fits of all of them (the
validation and final fits of the cold ones, the fine-tuning of the warm ones) as one list of
jobs, and the challengers' cold fits vectorised over the series of one validation horizon
(``Challenger.split`` hands each series its own model, with its own interval residuals), then
assembles each series' model as ``fit`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .challenger import Challenger, as_series
from .errors import TrainingDiverged
from .forecaster import RNNForecaster
from .members import CHALLENGERS

# What a series' failed fit can raise (with errors="return" it is returned in its place).
FIT_ERRORS = (ValueError, ArithmeticError, RuntimeError)


def fit_rnn_on(model: RNNForecaster, ys: list[np.ndarray], across: bool, epochs, warm=None) -> RNNForecaster:
    """``model.fit_many(ys)`` across series, else ``model.fit(ys[0])``."""
    if across:
        return model.fit_many(ys, warm_start=warm, epochs=epochs)
    return model.fit(ys[0], warm_start=warm, epochs=epochs)


@dataclass
class RnnJob:
    """One per-series RNN fit: ``key`` (series, kind: "validation", "final" or "warm"), the
    RNN's settings (seed included), the series and the model it continues (or None)."""

    key: tuple[int, str]
    params: dict
    y: np.ndarray
    warm: RNNForecaster | None = None


def fit_rnn_jobs(jobs: list[RnnJob], epochs) -> dict[tuple[int, str], Any]:
    """Every job's fitted RNNForecaster, or the exception its fit raised, by key."""
    out: dict[tuple[int, str], Any] = {}
    batches: dict[str, list[RnnJob]] = {}  # jobs whose settings differ only in the seed train as one
    for job in jobs:
        shared = {k: v for k, v in job.params.items() if k != "seed"}
        batches.setdefault(repr(sorted(shared.items())), []).append(job)
    for batch in batches.values():
        shared = {k: v for k, v in batch[0].params.items() if k != "seed"}
        try:
            fitted = RNNForecaster(**shared).fit_each(
                [job.y for job in batch],
                seeds=[job.params["seed"] for job in batch],
                warm_starts=[job.warm for job in batch],
                epochs=epochs,
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
    jobs: list[RnnJob] = []
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
                    jobs.append(RnnJob((i, "final"), params, y))
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
            out[i] = model._assemble(plan, final, validation, challengers[i])
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


__all__ = ["fit_each", "fit_rnn_on", "fit_rnn_jobs", "RnnJob", "FIT_ERRORS"]
