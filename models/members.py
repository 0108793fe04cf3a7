"""The AutoForecaster's members by name: the RNN and the statistical challengers."""

from __future__ import annotations

from .challenger import Challenger, Naive, SeasonalNaive
from .ets import AutoETS
from .theta_models import Theta

CHALLENGERS: dict[str, type[Challenger]] = {
    "ets": AutoETS,
    "theta": Theta,
    "naive": Naive,
    "seasonal_naive": SeasonalNaive,
}
MEMBERS = ("rnn", *CHALLENGERS)
DEFAULT_MEMBERS = ("rnn", "ets", "theta")

__all__ = ["CHALLENGERS", "MEMBERS", "DEFAULT_MEMBERS"]
