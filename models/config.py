"""The forecaster's settings: one frozen dataclass, JSON-able, checked on construction."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from .cells import CELLS
from .optim import CLIP_MODES
from .transforms import TRANSFORMS


@dataclass(frozen=True)
class ForecasterConfig:
    """Every knob of :class:`models.RNNForecaster`, with defaults sized for ~2,500 daily points
    in about a second (see the README of ``models``/the report for the measurements)."""

    cell: str = "rnn"             # "rnn" (Elman) or "gru" (about 3x the cost per fit)
    hidden_size: int = 32         # H
    window: int = 30              # T, shortened for short series (models.data.effective_window)
    epochs: int = 20              # upper bound; early stopping usually ends sooner
    batch_size: int = 64          # B
    lr: float = 3e-3
    optimizer: str = "adam"       # "adam" or "sgd" (with momentum 0.9)
    clip: float | None = 1.0      # threshold; None or 0 disables clipping
    clip_mode: str = "norm"       # "norm" (global norm) or "value" (element-wise)
    val_fraction: float = 0.2     # chronological tail used for early stopping and intervals
    patience: int = 3             # epochs without validation improvement before stopping
    transform: str = "auto"       # "auto", "log_return", "diff" or "level"
    seed: int = 0
    min_delta: float = 1e-3       # relative validation-loss improvement that counts
    max_backoffs: int = 6         # learning-rate halvings after non-finite steps before giving up
    warm_epochs: int = 3          # default epochs of a warm start
    warm_lr_scale: float = 0.3    # warm starts use lr * warm_lr_scale: fresh Adam moments take
    #                               full-size first steps that would shake a trained model
    warm_windows: int = 512       # warm starts fine-tune on the newest this many training windows
    horizon: int = 10             # steps with their own interval residuals; beyond, sqrt growth
    out_scale: float = 0.1        # std of Why at init is out_scale / sqrt(H)

    def __post_init__(self):
        checks = [
            (self.cell in CELLS, f"cell must be one of {sorted(CELLS)}"),
            (self.optimizer in ("adam", "sgd"), "optimizer must be 'adam' or 'sgd'"),
            (self.clip_mode in CLIP_MODES, f"clip_mode must be one of {CLIP_MODES}"),
            (self.transform == "auto" or self.transform in TRANSFORMS,
             f"transform must be 'auto' or one of {TRANSFORMS}"),
            (self.clip is None or (math.isfinite(self.clip) and self.clip >= 0),
             "clip must be None or >= 0"),
            (0.0 <= self.val_fraction < 0.5, "val_fraction must be in [0, 0.5)"),
            (math.isfinite(self.lr) and self.lr > 0, "lr must be > 0"),
            (math.isfinite(self.warm_lr_scale) and self.warm_lr_scale > 0, "warm_lr_scale must be > 0"),
            (self.min_delta >= 0, "min_delta must be >= 0"),
            (self.out_scale >= 0, "out_scale must be >= 0"),
        ]
        for name in ("hidden_size", "window", "batch_size", "horizon", "warm_windows"):
            checks.append((int(getattr(self, name)) >= 1, f"{name} must be >= 1"))
        for name in ("epochs", "patience", "max_backoffs", "warm_epochs"):
            checks.append((int(getattr(self, name)) >= 0, f"{name} must be >= 0"))
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def to_dict(self) -> dict:
        """JSON-able dict of every setting."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ForecasterConfig":
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown forecaster settings: {sorted(unknown)}")
        return cls(**d)

    def architecture(self) -> dict:
        """The settings a warm start must share with the model it continues."""
        return {"cell": self.cell, "hidden_size": self.hidden_size, "window": self.window}
