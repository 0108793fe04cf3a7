"""One ensemble member: a recurrent cell over windows of length L with a direct read-out of the
next K values, its weights in one flat vector, and how it was trained.

The read-out's bias starts at the mean training target of each step (so the loss before the
first update is already that of the best constant forecast, not a random "hockey stick") and
its weights start small (zero by default), so an untrained member forecasts the average change
seen in training. That mean is shrunk towards zero by its own uncertainty (positive-part
James-Stein: ``mean * max(0, 1 - se^2 / mean^2)``): a drift that is not clearly there, as in
daily prices, is not extrapolated, while a clear one is kept almost whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from .cells import make_cell
from .params import allocate, flatten
from .stack import stack_of, stacked_forward


def _target_chunks(targets) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """(Y, M) chunks of a window source: ``chunks()`` when it reads them piecewise, else whole."""
    return targets.chunks() if hasattr(targets, "chunks") else [(targets.Y, targets.M)]


def shrunk_mean_targets(targets) -> np.ndarray:
    """Mean target per step (K,), shrunk by its standard error, over the windows of ``targets``
    (anything with ``Y``, ``M`` (N, K) or ``chunks()`` of them). Windows that overlap share
    targets, so step k has about count / k independent ones."""
    weight = total = None
    for Y, M in _target_chunks(targets):
        w, s = M.sum(axis=0), (Y * M).sum(axis=0)  # (K,)
        weight, total = (w, s) if weight is None else (weight + w, total + s)
    assert weight is not None and total is not None
    safe = np.maximum(weight, 1.0)
    mean = total / safe
    var = sum(((Y - mean) ** 2 * M).sum(axis=0) for Y, M in _target_chunks(targets)) / safe
    n_eff = np.maximum(safe / np.arange(1, mean.size + 1), 1.0)
    se2 = var / n_eff
    keep = np.clip(1.0 - np.divide(se2, mean**2, out=np.full_like(mean, np.inf), where=mean != 0), 0.0, 1.0)
    return np.where(weight > 0, mean * keep, 0.0)


def largest_target(targets) -> float:
    """max |target| over the unmasked targets (0.0 without any)."""
    return max((float(np.max(np.abs(Y[M > 0]), initial=0.0)) for Y, M in _target_chunks(targets)), default=0.0)


@dataclass
class Member:
    cell_name: str
    hidden_size: int
    K: int  # outputs: the next K values
    L: int  # window length
    seed: int
    flat: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    history: list = field(default_factory=list)
    best_epoch: int = 0
    n_epochs: int = 0

    def __post_init__(self):
        self.cell = make_cell(self.cell_name, 1, self.hidden_size, self.K)
        flat, self.params = allocate(self.cell.shapes)
        if self.flat.size:
            if np.shape(self.flat) != flat.shape:
                raise ValueError(
                    f"member weights have shape {np.shape(self.flat)}, the configuration needs {flat.shape}"
                )
            flat[:] = self.flat
        self.flat = flat

    @property
    def n_params(self) -> int:
        return self.flat.size

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Windows X (N, L, 1) -> (N, K) in network units."""
        out = stacked_forward(stack_of(self.cell), self.flat[None], X[None], np.array([self.L]))
        return out[0]

    def meta(self) -> dict:
        return {"L": self.L, "seed": self.seed, "best_epoch": self.best_epoch, "n_epochs": self.n_epochs}


def initial_weights(cell, seed: int, targets, out_scale: float, by: np.ndarray | None = None) -> np.ndarray:
    """A member's fresh flat weights (P,) from its seed, the read-out bias at the (shrunk) mean
    target per step of ``targets`` (or ``by`` when it is already known)."""
    flat, params = allocate(cell.shapes)
    flat[:] = flatten(cell.init_params(np.random.default_rng(seed), out_scale), cell.shapes)
    params["by"][:] = shrunk_mean_targets(targets) if by is None else by
    return flat
