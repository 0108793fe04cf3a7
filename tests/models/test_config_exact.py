"""ForecasterConfig word for word: unknown settings, the default read-out length K for each season
length, and every architecture setting a warm start must share, named in its refusal."""

from __future__ import annotations

import numpy as np
import pytest

from tickcast.models import RNNForecaster
from tickcast.models.config import ForecasterConfig


def test_unknown_settings_are_named_sorted():
    with pytest.raises(ValueError) as info:
        RNNForecaster(hiden_size=8, windw=3)
    assert str(info.value) == "unknown forecaster settings: ['hiden_size', 'windw']"
    with pytest.raises(ValueError) as info:
        ForecasterConfig.from_dict({"epochs": 3, "bogus": 1})
    assert str(info.value) == "unknown forecaster settings: ['bogus']"
    assert ForecasterConfig.from_dict({"epochs": 3}).epochs == 3


@pytest.mark.parametrize(
    "season_length,k",
    [(0, 8), (1, 8), (4, 8), (5, 8), (7, 10), (12, 18), (24, 36), (31, 46), (32, 48), (33, 48), (52, 48), (168, 48)],
)
def test_k_is_a_season_and_a_half_from_8_to_48(season_length, k):
    assert ForecasterConfig().head(season_length) == k
    assert ForecasterConfig(horizon=5).head(season_length) == 5  # a configured horizon is kept


PREVIOUS = {"cell": "rnn", "hidden_size": 4, "lookbacks": (1.5, 2.0), "ensemble": 2, "max_window": 512}


@pytest.fixture(scope="module")
def previous():
    y = 50 + np.cumsum(np.random.default_rng(3).normal(0, 1, 120))
    return y, RNNForecaster(**PREVIOUS, epochs=1, season_length=1).fit(y)


@pytest.mark.parametrize(
    "change,named",
    [
        ({"cell": "gru"}, "{'cell': ('rnn', 'gru')}"),
        ({"hidden_size": 8}, "{'hidden_size': (4, 8)}"),
        ({"horizon": 9}, "{'horizon': (0, 9)}"),  # 0: the default K
        ({"lookbacks": (1.5, 3.0)}, "{'lookbacks': ([1.5, 2.0], [1.5, 3.0])}"),
        (
            {"ensemble": 3, "lookbacks": (1.5, 2.0, 3.0)},
            "{'lookbacks': ([1.5, 2.0], [1.5, 2.0, 3.0]), 'ensemble': (2, 3)}",
        ),
        ({"season_length": 12}, "{'season_length': (1, 12)}"),
        ({"max_window": 256}, "{'max_window': (512, 256)}"),
    ],
)
def test_a_warm_start_names_each_architecture_setting_that_differs(previous, change, named):
    y, prev = previous
    with pytest.raises(ValueError) as info:
        RNNForecaster(**{**PREVIOUS, "season_length": 1, **change}).fit(y, warm_start=prev)
    assert str(info.value) == f"warm_start model differs in {named} (theirs, ours)"
