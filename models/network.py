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

from dataclasses import dataclass, field

import numpy as np

from .cells import make_cell
from .params import allocate, flatten
from .train import Data, TrainSettings, predict_scaled, train


def shrunk_mean_targets(data: Data) -> np.ndarray:
    """Mean target per step (K,), shrunk by its standard error. Windows that overlap share
    targets, so step k has about count / k independent ones."""
    weight = data.M.sum(axis=0)  # (K,)
    safe = np.maximum(weight, 1.0)
    mean = (data.Y * data.M).sum(axis=0) / safe
    var = ((data.Y - mean) ** 2 * data.M).sum(axis=0) / safe
    n_eff = np.maximum(safe / np.arange(1, mean.size + 1), 1.0)
    se2 = var / n_eff
    keep = np.clip(1.0 - np.divide(se2, mean**2, out=np.full_like(mean, np.inf), where=mean != 0), 0.0, 1.0)
    return np.where(weight > 0, mean * keep, 0.0)


@dataclass
class Member:
    cell_name: str
    hidden_size: int
    K: int  # outputs: the next K values
    L: int  # window length
    seed: int
    flat: np.ndarray = field(default=None, repr=False)
    history: list = field(default_factory=list)
    best_epoch: int = 0
    n_epochs: int = 0

    def __post_init__(self):
        self.cell = make_cell(self.cell_name, 1, self.hidden_size, self.K)
        if self.flat is None:
            self.flat, self.params = allocate(self.cell.shapes)
        else:
            flat, self.params = allocate(self.cell.shapes)
            if np.shape(self.flat) != flat.shape:
                raise ValueError(
                    f"member weights have shape {np.shape(self.flat)}, the configuration needs {flat.shape}"
                )
            flat[:] = self.flat
            self.flat = flat

    @property
    def n_params(self) -> int:
        return self.flat.size

    def initialise(self, targets: Data, out_scale: float) -> None:
        """Fresh weights from this member's seed; the read-out bias at the mean target per step."""
        rng = np.random.default_rng(self.seed)
        self.flat[:] = flatten(self.cell.init_params(rng, out_scale), self.cell.shapes)
        self.params["by"][:] = shrunk_mean_targets(targets)

    def fit(self, data: Data, val: Data | None, settings: TrainSettings, rng: np.random.Generator) -> None:
        self.history, self.best_epoch, self.n_epochs = train(
            self.cell, self.flat, self.params, data, val, settings, rng
        )
        self.cell.release()

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Windows X (N, L, 1) -> (N, K) in network units."""
        out = predict_scaled(self.cell, self.params, X)
        self.cell.release()
        return out

    def meta(self) -> dict:
        return {"L": self.L, "seed": self.seed, "best_epoch": self.best_epoch, "n_epochs": self.n_epochs}
