"""The AutoForecaster's members by name: the RNN and the statistical challengers."""

from __future__ import annotations

from .challenger import Challenger, Naive, SeasonalNaive
from .config import DEFAULT_MEMBERS, MEMBERS
from .ets import AutoETS
from .theta_models import Theta

CHALLENGERS: dict[str, type[Challenger]] = {
    "ets": AutoETS,
    "theta": Theta,
    "naive": Naive,
    "seasonal_naive": SeasonalNaive,
}
# models/config.py names them for whoever must not import NumPy (the service's settings)
assert MEMBERS == ("rnn", *CHALLENGERS)

__all__ = ["CHALLENGERS", "MEMBERS", "DEFAULT_MEMBERS"]
