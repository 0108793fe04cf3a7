"""One ``AutoForecaster.fit_many`` spread over processes: ``fit_many_part(ys, part=k, parts=n)``
does the k-th share of the work and returns an :class:`AutoPart` (it pickles);
``AutoForecaster.combine(parts)`` assembles the n parts into the model ``fit_many`` gives.

The work: the RNN's fits (cold: the validation model on the part of each series before its
split, with its forecasts from every validation origin, and the final model on all of it; warm:
the fine-tuning), and the challengers of every series. The RNN's fits go to the parts largest
first, each to the least loaded (their cost taken as the points they train on); every part fits
the challengers of one contiguous slice of the series, the slices balanced by their points.
Every part computes the same assignment from the same inputs, so they need not talk.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .auto_each import fit_rnn_on
from .challenger import Challenger
from .errors import TrainingDiverged
from .members import CHALLENGERS


@dataclass
class AutoPart:
    """A share of one fit_many: the settings and series it belongs to (``digest``), the RNN fits
    it did (by kind: "validation", "final" or "warm"), the validation forecasts of its
    validation fit (series -> (v, H)), and the challengers of series ``lo..hi-1``. A warm part
    also carries the previous model's core (weights, residuals, ...)."""

    params: dict
    part: int
    parts: int
    digest: str
    ys: list[np.ndarray]
    warm: bool
    lo: int
    hi: int
    challengers: dict[str, Challenger] = field(default_factory=dict)
    rnn: dict[str, Any] = field(default_factory=dict)
    rnn_validation: dict[int, np.ndarray] = field(default_factory=dict)
    rnn_failed: bool = False
    core: dict | None = None


def digest(ys: list[np.ndarray]) -> str:
    """A fingerprint of the series (their lengths and values), to check that parts belong together."""
    h = hashlib.blake2b(digest_size=16)
    h.update(np.array([y.size for y in ys], dtype=np.int64).tobytes())
    for y in ys:
        h.update(np.ascontiguousarray(y, dtype=np.float64).tobytes())
    return h.hexdigest()


def assign(costs: list[float], parts: int) -> list[int]:
    """Jobs to parts, largest first, each to the least loaded part (ties: the lowest index)."""
    load = [0.0] * parts
    owner = [0] * len(costs)
    for j in sorted(range(len(costs)), key=lambda j: (-costs[j], j)):
        k = int(np.argmin(load))
        owner[j] = k
        load[k] += costs[j]
    return owner


def slices(lengths: list[int], parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous slices (lo, hi) of the series, balanced by their points."""
    edges = np.concatenate([[0], np.cumsum(lengths)]).astype(np.float64)  # points before series i
    inner = [int(np.searchsorted(edges, edges[-1] * k / parts)) for k in range(1, parts)]
    cuts = np.minimum(np.maximum.accumulate([0, *inner, len(lengths)]), len(lengths))
    return [(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:])]


def _jobs(plan, warm) -> list[tuple[str, float]]:
    """The RNN fits of the whole fit_many and their costs (the points each trains on)."""
    if warm is not None:
        return [("warm", 1.0)] if "rnn" in warm.members_ else []
    if not plan.use:
        return []
    jobs = [("final", float(sum(y.size for y in plan.rnn_series())))]
    if plan.held:
        jobs.append(("validation", float(sum(y.size for y in plan.validation_series()))))
    return jobs


def fit_part(proto, ys: list[np.ndarray], part: int, parts: int, warm, epochs) -> AutoPart:
    """See ``AutoForecaster.fit_many_part``."""
    for name, v in (("parts", parts), ("part", part)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer):
            raise ValueError(f"{name} must be an integer, got {v!r}")
    if parts < 1 or not 0 <= part < parts:
        raise ValueError(f"part must be in 0..parts-1 and parts >= 1, got part={part!r}, parts={parts!r}")
    plan = proto._plan(ys, True)  # (a warm fit takes the previous model's instead)
    if warm is not None:
        proto._check_warm(warm, ys, True)
    lo, hi = slices([y.size for y in ys], parts)[part]
    out = AutoPart(proto.get_params(), int(part), int(parts), digest(ys), ys, warm is not None, lo, hi)
    jobs = _jobs(plan, warm)
    for (kind, _), owner in zip(jobs, assign([c for _, c in jobs], parts)):
        if owner != part:
            continue
        if kind == "warm":
            out.rnn[kind] = proto._warm_rnn(warm, ys, epochs)
            continue
        try:
            series = plan.validation_series() if kind == "validation" else plan.rnn_series()
            out.rnn[kind] = fit_rnn_on(proto._rnn_model(plan.rnn_period), series, True, epochs)
        except TrainingDiverged:
            out.rnn_failed = True  # as fit_many: the challengers carry the forecast
            continue
        if kind == "validation":
            forecasts = proto._rnn_validation(plan, out.rnn[kind])
            out.rnn_validation = {i: forecasts[i] for i in plan.held}
    if lo < hi:
        if warm is not None:
            out.challengers = proto._warm_challengers(warm, ys[lo:hi], lo, hi)
        else:
            out.challengers = {
                name: CHALLENGERS[name](horizon=plan.H).fit_many(ys[lo:hi], season_lengths=plan.ms[lo:hi])
                for name in proto.members
                if name != "rnn"
            }
    if warm is not None:
        out.core = warm._core()
    return out


def combine(cls, parts: list) -> Any:
    """See ``AutoForecaster.combine``."""
    if not parts or not all(isinstance(p, AutoPart) for p in parts):
        raise ValueError("combine needs the parts of one fit: AutoForecaster.fit_many_part(...) results")
    first = parts[0]
    for p in parts[1:]:
        if p.params != first.params or p.parts != first.parts or p.warm != first.warm:
            raise ValueError("combine: the parts were fitted with different settings")
        if p.digest != first.digest:
            raise ValueError("combine: the parts were fitted on different series")
    if sorted(p.part for p in parts) != list(range(first.parts)):
        got = sorted(p.part for p in parts)
        raise ValueError(f"combine: got parts {got}, the fit needs each of 0..{first.parts - 1} once")
    parts = sorted(parts, key=lambda p: p.part)
    proto = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in first.params.items()})
    ys = first.ys
    challengers = {}
    for name in proto.members:
        pieces = [p.challengers[name] for p in parts if name in p.challengers]
        if pieces:
            challengers[name] = type(pieces[0]).concat(pieces)
    rnn = {kind: model for p in parts for kind, model in p.rnn.items()}
    if first.warm:
        assert first.core is not None
        return proto._adopt_warm(first.core, ys, rnn.get("warm"), challengers)
    plan = proto._plan(ys, True)
    final = None if any(p.rnn_failed for p in parts) else rnn.get("final")
    validation = None
    if final is not None:
        validation = [None] * len(ys)
        for p in parts:
            for i, F in p.rnn_validation.items():
                validation[i] = F
    return proto._assemble(plan, final, validation, challengers)


__all__ = ["AutoPart", "fit_part", "combine", "assign", "slices", "digest"]
