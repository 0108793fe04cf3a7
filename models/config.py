"""The forecaster's settings: one frozen dataclass, JSON-able, checked on construction. It is the
one place the model's knobs, their defaults and their valid ranges are declared; the service's
config reads its ``[model]`` section through it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

# Names only, no NumPy: the service validates its config with this class at every start-up
# (`tickcast health` too), and importing NumPy there would cost a tenth of a second each time.
BUILTIN_CELLS = ("gru", "rnn")
# The models AutoForecaster can combine (models/auto.py), and the ones it combines by default.
MEMBERS = ("rnn", "ets", "theta", "naive", "seasonal_naive")
DEFAULT_MEMBERS = ("rnn", "ets", "theta", "seasonal_naive")
CLIP_MODES = ("norm", "value")
LOSSES = ("mae", "mse")
PRECISIONS = ("float64", "float32")
TRANSFORMS = ("auto", "log", "linear")

# Upper bounds: past them a value is a typo (and would exhaust time or memory much later).
LIMITS = {
    "hidden_size": 1024,
    "horizon": 400,
    "season_length": 400,
    "ensemble": 32,
    "epochs": 10_000,
    "batch_size": 65_536,
    "patience": 10_000,
    "max_backoffs": 100,
    "warm_epochs": 1000,
    "warm_windows": 1_000_000,
    "max_windows": 1_000_000,
    "max_window": 4096,
}


@dataclass(frozen=True)
class ForecasterConfig:
    """Every knob of :class:`tickcast.models.RNNForecaster`, with the defaults we found best
    (measured on the M3 competition data and the bundled price series: see bench/results)."""

    cell: str = "rnn"  # "rnn" (Elman) or "gru" (about 3x the cost per step)
    hidden_size: int = 32  # H
    horizon: int = 0  # K, values the read-out predicts at once; 0: from the season
    #                               (a season and a half, at least 8, at most 48); longer
    #                               forecasts continue from their own predictions, K at a time
    season_length: int = 0  # seasonal period (12 monthly, 4 quarterly...); 0: detect, 1: none
    transform: str = "auto"  # "auto" (log where changes grow with the level), "log" or "linear"
    lookbacks: tuple = (1.5, 2.0, 3.0)  # window lengths of the members, in multiples of K
    ensemble: int = 3  # members (lookbacks taken in turn, seeds seed, seed+1, ...);
    #                               the forecast is their median
    epochs: int = 20  # upper bound; early stopping usually ends sooner
    batch_size: int = 0  # B; 0: about 32 steps per epoch, 32..256 windows each
    lr: float = 3e-3  # decays along a cosine to lr / 10 over the epochs
    optimizer: str = "adam"  # "adam" or "sgd" (with momentum 0.9)
    loss: str = "mae"  # "mae" (robust; matches sMAPE-like scores) or "mse"
    clip: float | None = 1.0  # gradient clipping threshold; None or 0 disables it
    clip_mode: str = "norm"  # "norm" (global norm) or "value" (element-wise)
    val_fraction: float = 0.2  # newest part of each series held out for early stopping,
    #                               the backtest and the interval residuals
    refit: bool = True  # after validation, train again on all data for the best
    #                               number of epochs (the newest points matter most)
    patience: int = 3  # epochs without validation improvement before stopping
    min_delta: float = 0.01  # relative validation-loss improvement that counts ...
    significance: float = 2.0  # ... if it is also this many standard errors (paired, over
    #                               validation windows) large. Both for one series; across S
    #                               series both are divided by sqrt(S): a gain seen on one series
    #                               may be one period's luck (on daily prices the gains found in
    #                               validation were below 1 % and did not carry over), one seen
    #                               on many series at once rarely is
    max_backoffs: int = 6  # learning-rate halvings after non-finite steps before giving up
    warm_epochs: int = 3  # default epochs of a warm start
    warm_lr_scale: float = 0.3  # warm starts use lr * warm_lr_scale: fresh Adam moments take
    #                               full-size first steps that would shake a trained model
    warm_windows: int = 512  # warm starts fine-tune on the newest this many windows per series
    max_windows: int = 4096  # training windows per series: the newest this many (at least 2:
    #                               a forecast step needs two windows with a target that far ahead)
    max_window: int = 512  # upper bound on a member's window length L
    out_scale: float = 0.0  # std of Why at init is out_scale / sqrt(H); 0: an untrained
    #                               network forecasts exactly its read-out bias, not noise
    precision: str = "float32"  # arithmetic of the networks' forward and backward passes,
    #                               "float32" (about twice as fast; the same M3 and price scores
    #                               as float64: bench/results/competition-float32.md) or "float64";
    #                               weights, optimizer, losses, early stopping and scores stay float64
    seed: int = 0

    def __post_init__(self):
        if isinstance(self.lookbacks, list):
            object.__setattr__(self, "lookbacks", tuple(self.lookbacks))
        checks = [
            (self.optimizer in ("adam", "sgd"), "optimizer must be 'adam' or 'sgd'"),
            (self.loss in LOSSES, f"loss must be one of {LOSSES}"),
            (self.clip_mode in CLIP_MODES, f"clip_mode must be one of {CLIP_MODES}"),
            (self.transform in TRANSFORMS, f"transform must be one of {TRANSFORMS}"),
            (self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}"),
            (self.clip is None or (_real(self.clip) and self.clip >= 0), "clip must be None or >= 0"),
            (_real(self.val_fraction) and 0.0 <= self.val_fraction < 0.5, "val_fraction must be in [0, 0.5)"),
            (_real(self.lr) and self.lr > 0, "lr must be > 0"),
            (_real(self.warm_lr_scale) and self.warm_lr_scale > 0, "warm_lr_scale must be > 0"),
            (_real(self.min_delta) and self.min_delta >= 0, "min_delta must be >= 0"),
            (_real(self.significance) and 0 <= self.significance <= 10, "significance must be in [0, 10]"),
            (_real(self.out_scale) and self.out_scale >= 0, "out_scale must be >= 0"),
            (isinstance(self.refit, bool), "refit must be true or false"),
            (
                isinstance(self.lookbacks, tuple)
                and len(self.lookbacks) >= 1
                and all(_real(v) and 0 < v <= 100 for v in self.lookbacks),
                "lookbacks must be a non-empty list of multiples of the horizon in (0, 100]",
            ),
        ]
        for name in ("hidden_size", "ensemble", "warm_windows", "max_window"):
            checks.append((_int(getattr(self, name)) and getattr(self, name) >= 1, f"{name} must be an integer >= 1"))
        # One window per series leaves no forecast step with the two targets that training a step
        # needs (forecaster._trained_steps would find none, and forecasting would never advance).
        checks.append((_int(self.max_windows) and self.max_windows >= 2, "max_windows must be an integer >= 2"))
        for name in (
            "horizon",
            "season_length",
            "epochs",
            "batch_size",
            "patience",
            "max_backoffs",
            "warm_epochs",
            "seed",
        ):
            checks.append((_int(getattr(self, name)) and getattr(self, name) >= 0, f"{name} must be an integer >= 0"))
        for name, most in LIMITS.items():
            value = getattr(self, name)
            checks.append((not _int(value) or value <= most, f"{name} must be at most {most}"))
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        if not _known_cell(self.cell):
            raise ValueError(f"cell must be one of {sorted(_cells())}")

    def to_dict(self) -> dict:
        """JSON-able dict of every setting."""
        d = asdict(self)
        d["lookbacks"] = list(self.lookbacks)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ForecasterConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown forecaster settings: {sorted(unknown)}")
        return cls(**d)

    def head(self, season_length: int) -> int:
        """K: the configured horizon, or the default for this season length."""
        return self.horizon or max(8, min(round(1.5 * max(season_length, 1)), 48))

    def architecture(self) -> dict:
        """The settings a warm start must share with the model it continues."""
        return {
            "cell": self.cell,
            "hidden_size": self.hidden_size,
            "horizon": self.horizon,
            "lookbacks": list(self.lookbacks),
            "ensemble": self.ensemble,
            "season_length": self.season_length,
            "max_window": self.max_window,
        }


def _cells() -> set[str]:
    from .cells import CELLS  # NumPy: only when a cell other than the built-in ones is asked for

    return set(CELLS)


def _known_cell(name) -> bool:
    return name in BUILTIN_CELLS or (isinstance(name, str) and name in _cells())


def _real(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
