"""AutoForecaster.fit_many_part and combine, beyond "the parts give fit_many's model": the exact
errors, a part whose RNN diverged, warm parts of a model without an RNN, and how the work is split."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tickcast.models import AutoForecaster, TrainingDiverged, auto_parts
from tickcast.models.auto_parts import assign, slices

FAST_RNN = {"ensemble": 2, "epochs": 3, "hidden_size": 8}
STATS = ("ets", "theta")


def series(n, m=12, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 100.0 + 0.3 * t + 6 * np.sin(2 * np.pi * t / m) + rng.normal(0, 1.0, n)


def exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


def test_part_and_parts_must_be_whole_numbers():
    ys = [series(60, seed=s) for s in range(2)]
    auto = AutoForecaster(season_length=12, members=STATS)
    for kwargs, message in [
        ({"part": 0, "parts": True}, "parts must be an integer, got True"),
        ({"part": 0, "parts": 2.0}, "parts must be an integer, got 2.0"),
        ({"part": False, "parts": 2}, "part must be an integer, got False"),
        ({"part": "1", "parts": 2}, "part must be an integer, got '1'"),
    ]:
        with pytest.raises(ValueError, match=exactly(message)):
            auto.fit_many_part(ys, **kwargs)
    piece = auto.fit_many_part(ys, part=np.int64(1), parts=np.int64(2))  # NumPy integers are whole numbers
    assert (piece.part, piece.parts) == (1, 2)


def test_combine_names_what_is_wrong():
    ys = [series(60, seed=s) for s in range(3)]
    auto = AutoForecaster(season_length=12, members=STATS)
    a0, a1 = (auto.fit_many_part(ys, part=k, parts=2) for k in range(2))
    warm1 = auto.fit_many_part(ys, part=1, parts=2, warm_start=auto.fit_many(ys))
    other1 = AutoForecaster(season_length=12, members=STATS, combination="median").fit_many_part(ys, part=1, parts=2)
    moved1 = auto.fit_many_part([y + 1 for y in ys], part=1, parts=2)
    assert warm1.params == a0.params and warm1.digest == a0.digest and warm1.parts == a0.parts
    for bad, message in [
        ([], "combine needs the parts of one fit: AutoForecaster.fit_many_part(...) results"),
        ([a0, "a1"], "combine needs the parts of one fit: AutoForecaster.fit_many_part(...) results"),
        ([a0, warm1], "combine: the parts were fitted with different settings"),  # only warm differs
        ([a0, other1], "combine: the parts were fitted with different settings"),
        ([a0, moved1], "combine: the parts were fitted on different series"),
        ([a0], "combine: got parts [0], the fit needs each of 0..1 once"),
        ([a1, a1], "combine: got parts [1, 1], the fit needs each of 0..1 once"),
    ]:
        with pytest.raises(ValueError, match=exactly(message)):
            AutoForecaster.combine(bad)


def test_a_part_whose_rnn_diverged_leaves_the_forecast_to_the_challengers(monkeypatch):
    ys = [series(90, seed=s) for s in range(3)]
    auto = AutoForecaster(season_length=12, rnn=FAST_RNN)
    # the final fit trains more points than the validation fit: part 0 gets it, part 1 the validation fit
    first = auto.fit_many_part(ys, part=0, parts=2)
    assert set(first.rnn) == {"final"} and not first.rnn_failed

    def diverges(*args, **kwargs):
        raise TrainingDiverged("the loss stayed non-finite after 6 back-offs")

    monkeypatch.setattr(auto_parts, "fit_rnn_on", diverges)
    second = auto.fit_many_part(ys, part=1, parts=2)
    assert second.rnn_failed and second.rnn == {} and second.rnn_validation == {}
    combined = AutoForecaster.combine([second, first])
    alone = AutoForecaster(season_length=12, members=("ets", "theta", "seasonal_naive")).fit_many(ys)
    assert "rnn" not in combined.members_
    for x, z in zip(combined.predict_many(8), alone.predict_many(8)):
        np.testing.assert_array_equal(x, z)


def test_warm_parts_of_a_model_without_an_rnn_fit_no_rnn():
    ys = [series(60, seed=s) for s in range(3)]
    # a combined model is a fit_many model: a warm fit_many (not fit) continues it
    cold = AutoForecaster.combine(
        [AutoForecaster(season_length=12, members=STATS).fit_many_part(ys, k, 2) for k in range(2)]
    )
    with pytest.raises(ValueError, match="warm_start model was fitted with fit_many: use that"):
        AutoForecaster(season_length=12, members=STATS).fit(ys[0], warm_start=cold)
    new = [np.r_[y, y[-1] * 1.01] for y in ys]
    warm = AutoForecaster(season_length=12, members=STATS).fit_many(new, warm_start=cold)
    pieces = [
        AutoForecaster(season_length=12, members=STATS).fit_many_part(new, part=k, parts=2, warm_start=cold)
        for k in range(2)
    ]
    assert [p.rnn for p in pieces] == [{}, {}]
    for x, z in zip(AutoForecaster.combine(pieces).predict_many(8), warm.predict_many(8)):
        np.testing.assert_allclose(x, z, rtol=1e-12)


def test_the_largest_job_goes_first_and_slices_follow_the_points():
    # largest first, each to the least loaded part: 5 | 3, then 3 to the second, 1 to the first
    assert assign([1.0, 5.0, 3.0, 3.0], 2) == [0, 0, 1, 1]
    # two series of two points in four parts: the cut points fall at 1, 2 and 3 points
    assert slices([2, 2], 4) == [(0, 1), (1, 1), (1, 2), (2, 2)]


def test_cold_parts_train_the_epochs_asked_for_and_parts_may_hold_no_series():
    ys = [series(90, seed=s) for s in range(2)]
    auto = AutoForecaster(season_length=12, rnn=FAST_RNN)
    pieces = [auto.fit_many_part(ys, part=k, parts=4, epochs=1) for k in range(4)]
    # the challengers' slices, balanced by points: two series, four parts, two of them empty
    assert [(p.lo, p.hi) for p in pieces] == slices([90, 90], 4) == [(0, 1), (1, 1), (1, 2), (2, 2)]
    combined = AutoForecaster.combine(pieces)
    once = auto.fit_many(ys, epochs=1)
    assert combined.history_ == once.history_ and len(once.history_) == 2  # epoch 0 and the one asked for
    for x, z in zip(combined.predict_many(8), once.predict_many(8)):
        np.testing.assert_allclose(x, z, rtol=1e-12)
