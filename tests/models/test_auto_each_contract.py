"""models/auto_each.py beyond "fit_each equals fit" on short series (test_auto_many): the rule that
leaves a member of a per-series final fit untrained (its boundaries), when a final fit continues
its validation fit, how the RNN jobs are batched, a diverged or failed RNN inside fit_each, and
the final-epoch caps on long series, each against fit series by series."""

from __future__ import annotations

import numpy as np
import pytest

from tickcast.models import AutoForecaster, ForecasterConfig, RNNForecaster, TrainingDiverged, auto, auto_each
from tickcast.models.auto_each import (
    MIN_EVIDENCE_BLOCKS,
    RnnJob,
    final_continues,
    final_epochs,
    fit_rnn_jobs,
    fit_rnn_on,
)
from tickcast.models.windows import split_point

TINY = {"hidden_size": 4, "ensemble": 2, "epochs": 5}


def walk(n, seed=0):
    return 100 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.01, n)))


def seasonal(n, seed=0):
    t = np.arange(n)
    return 100.0 + 0.3 * t + 6 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(seed).normal(0, 1.0, n)


def history(*losses):
    return [{"epoch": e, "val_loss": v} for e, v in enumerate(losses)]


def assert_same_rnn(got: RNNForecaster, want: RNNForecaster, h: int = 6) -> None:
    np.testing.assert_array_equal(got.predict(h), want.predict(h))
    assert got.histories_ == want.histories_ and got.get_params() == want.get_params()


# ------------------------------------------------------------------ final_epochs and its evidence
def validation_model(n: int) -> RNNForecaster:
    """A validation fit of one series of n points (untrained: its histories are set by the tests)."""
    return RNNForecaster(season_length=1, hidden_size=2, ensemble=3).fit(walk(n), epochs=0)


def blocks(val: RNNForecaster) -> float:
    n = val._preps[0].n
    return (n - split_point(n, val.config.val_fraction)) / val.horizon_


def test_a_member_is_left_untrained_from_exactly_the_evidence_of_thirty_stretches():
    at, below = validation_model(1201), validation_model(1196)
    assert blocks(at) == MIN_EVIDENCE_BLOCKS == 30 and 29 < blocks(below) < 30
    for val in (at, below):
        val.histories_ = [history(1.0, 1.2, 1.0), history(1.0, 0.9), history(1.0, 1.0)]
    assert final_epochs(at, None) == (0, ForecasterConfig().epochs, 0)  # ties count as "never helped"
    assert final_epochs(at, 7) == (0, 7, 0) and final_epochs(at, np.int64(2)) == (0, 2, 0)
    assert final_epochs(at, 0) == (0, 0, 0)
    assert final_epochs(below, None) is None and final_epochs(below, 7) == 7  # too little evidence


def test_a_history_says_training_never_helped_only_when_every_epoch_was_validated_and_none_gained():
    val = validation_model(1500)
    cases = [
        ([history(1.0)], False),  # untrained: no evidence either way
        ([[]], False),
        ([history(1.0, None)], False),  # no held-out loss: nothing to judge by
        ([history(None, 1.0)], False),
        ([history(1.0, 1.0)], True),
        ([history(1.0, 0.999999)], False),
        ([history(1.0, 2.0, 0.5)], False),
        ([history(1.0, 1.5, 1.2, 1.0)], True),
    ]
    for histories, never in cases:
        val.histories_ = histories + [history(1.0, 0.5)]  # a member that learnt, beside it
        assert final_epochs(val, 4) == ((0, 4) if never else 4), histories


def test_no_caps_without_a_validation_model_or_across_series():
    assert final_epochs(None, 3) == 3 and final_epochs(None, None) is None
    two = RNNForecaster(season_length=1, hidden_size=2, ensemble=1).fit_many([walk(1500), walk(1500, 1)], epochs=0)
    two.histories_ = [history(1.0, 1.0)]
    assert final_epochs(two, 5) == 5


# ------------------------------------------------------------------ final_continues
def test_only_a_per_series_final_fit_of_one_series_continues_its_validation_fit():
    auto_model = AutoForecaster(season_length=1)
    long, short = walk(2000), walk(400)
    val = RNNForecaster()  # any validation model: the rule asks only whether there is one
    one = auto_model._plan([long], False)
    assert one.splits[0] == 1850 and final_continues(one, val)
    assert not final_continues(one, None)  # no validation fit: nothing to continue
    assert not final_continues(auto_model._plan([long], True), val)  # across series, even of one series
    assert not final_continues(auto_model._plan([long, long], False), val)
    assert not final_continues(auto_model._plan([short], False), val)  # saw four fifths: fitted again


# ------------------------------------------------------------------ fit_rnn_on and fit_rnn_jobs
def test_fit_rnn_on_passes_the_warm_start_and_the_epochs():
    ys = [seasonal(80, s) for s in range(2)]
    warm = RNNForecaster(season_length=12, seed=3, **TINY).fit_many(ys)
    for across in (True, False):
        got = fit_rnn_on(RNNForecaster(season_length=12, **TINY), ys, across, 1, warm if across else None)
        want = (
            RNNForecaster(season_length=12, **TINY).fit_many(ys, warm_start=warm, epochs=1)
            if across
            else RNNForecaster(season_length=12, **TINY).fit(ys[0], epochs=1)
        )
        np.testing.assert_array_equal(
            got.predict_many(4) if across else got.predict(4), want.predict_many(4) if across else want.predict(4)
        )
        assert got.histories_ == want.histories_ and all(len(h) == 2 for h in got.histories_)
        assert got.warm_started_ == across
    single = RNNForecaster(season_length=12, seed=3, **TINY).fit(ys[0])
    got = fit_rnn_on(RNNForecaster(season_length=12, **TINY), ys[:1], False, 2, single)
    assert got.warm_started_ and all(len(h) <= 3 for h in got.histories_)
    assert_same_rnn(got, RNNForecaster(season_length=12, **TINY).fit(ys[0], warm_start=single, epochs=2))


def test_rnn_jobs_of_equal_settings_train_as_one_batch_each_with_its_own_seed_and_epochs(monkeypatch):
    calls = []
    real = RNNForecaster.fit_each

    def counted(self, ys, **kwargs):
        calls.append((self.get_params()["hidden_size"], len(ys), kwargs["epochs"]))
        return real(self, ys, **kwargs)

    monkeypatch.setattr(RNNForecaster, "fit_each", counted)
    small = {**TINY, "season_length": 12, "seed": 0}
    wide = {**small, "hidden_size": 6}
    ys = [seasonal(70 + 5 * i, i) for i in range(5)]
    warm = RNNForecaster(**{**small, "seed": 9}).fit(ys[3][:-4])
    jobs = [
        RnnJob((0, "final"), small, ys[0]),
        RnnJob((1, "final"), {**small, "seed": 4}, ys[1]),  # only the seed differs: the same batch
        RnnJob((2, "final"), wide, ys[2]),  # other settings: a batch of its own
        RnnJob((3, "warm"), {**small, "seed": 5}, ys[3], warm),
        RnnJob((4, "final"), {**small, "seed": 1}, ys[4], epochs=(1, 0)),  # its own epochs: its own batch
    ]
    out = fit_rnn_jobs(jobs, 2)
    assert sorted(calls) == sorted([(4, 3, 2), (6, 1, 2), (4, 1, (1, 0))])
    for job in jobs:
        want = RNNForecaster(**job.params).fit(
            job.y, warm_start=job.warm, epochs=2 if job.epochs is None else job.epochs
        )
        assert_same_rnn(out[job.key], want)
    assert [len(h) - 1 for h in out[(4, "final")].histories_] == [1, 0]


def test_a_job_that_cannot_train_fails_alone_and_settings_nothing_can_train_with_fail_their_batch():
    good = {**TINY, "season_length": 12, "seed": 0}
    jobs = [
        RnnJob((0, "final"), good, seasonal(80)),
        RnnJob((1, "final"), {**good, "seed": 1}, np.array([1.0, 2.0, np.inf, 3.0] * 10)),
        RnnJob((2, "final"), {**good, "hidden_size": 0}, seasonal(80, 2)),
        RnnJob((3, "final"), {**good, "hidden_size": 0, "seed": 3}, seasonal(90, 3)),
    ]
    out = fit_rnn_jobs(jobs, 1)
    assert_same_rnn(out[(0, "final")], RNNForecaster(**good).fit(seasonal(80), epochs=1))
    failed = out[(1, "final")]  # named by its place in its batch (AutoForecaster checks series first)
    assert type(failed) is ValueError
    assert str(failed) == "series 1 contains 10 NaN or infinite value(s); drop or fill them first"
    with pytest.raises(ValueError) as bad:
        RNNForecaster(**jobs[2].params)
    assert out[(2, "final")] is out[(3, "final")] and str(out[(2, "final")]) == str(bad.value)


# ------------------------------------------------------------------ fit_each against fit
def test_fit_each_leaves_the_same_members_untrained_as_fit_on_long_series():
    """A 1,450-point walk (its validation fit's held-out part holds 36 stretches of 8 steps, and
    training never helped some members: test_auto) beside a short one, with and without epochs."""
    ys = [walk(1450, 1), walk(1450, 4), walk(300, 2)]
    for epochs in (None, 2):
        each = AutoForecaster(season_length=1).fit_each(ys, seeds=[0, 0, 0], epochs=epochs)
        trained = []
        for y, got in zip(ys, each):
            want = AutoForecaster(season_length=1).fit(y, epochs=epochs)
            assert_same_rnn(got.members_["rnn"], want.members_["rnn"])
            np.testing.assert_array_equal(got.predict(5), want.predict(5))
            trained.append([len(h) - 1 for h in got.members_["rnn"].histories_])
        assert 0 in trained[0] + trained[1] and max(trained[0] + trained[1]) > 0, (epochs, trained)
        assert min(trained[2]) > 0  # too short for the evidence: every member trains
        if epochs is not None:
            assert max(max(t) for t in trained) <= epochs


@pytest.mark.parametrize("epochs", [None, 1])
def test_fit_each_keeps_the_validation_record_where_the_final_fit_continued_it(epochs):
    t = np.arange(2000)
    pattern = 100 + 10 * np.sin(2 * np.pi * t / 5) + np.random.default_rng(5).normal(0, 1, t.size)
    small = {"hidden_size": 8, "ensemble": 2, "epochs": 3, "warm_epochs": 2}
    (each,) = AutoForecaster(season_length=1, rnn=small).fit_each([pattern], epochs=epochs)
    want = AutoForecaster(season_length=1, rnn=small).fit(pattern, epochs=epochs)
    assert each.members_["rnn"].warm_started_
    assert_same_rnn(each.members_["rnn"], want.members_["rnn"])
    assert max(len(h) - 1 for h in each.members_["rnn"].histories_) == (epochs or 2)  # the fine-tune's epochs
    assert each.history_ == want.history_ != each.members_["rnn"].history_
    assert (each.n_epochs_, each.best_epoch_) == (want.n_epochs_, want.best_epoch_)
    np.testing.assert_array_equal(each.predict(5), want.predict(5))


def test_cold_models_of_fit_each_are_per_series_models_that_fit_continues():
    y = seasonal(70)
    (each,) = AutoForecaster(season_length=12, rnn=TINY).fit_each([y])
    assert each.across_ is False
    warm = AutoForecaster(season_length=12, rnn=TINY).fit(np.r_[y, y[-1]], warm_start=each, epochs=1)
    assert warm.warm_started_
    with pytest.raises(ValueError, match="fitted with fit: use that"):
        AutoForecaster(season_length=12, rnn=TINY).fit_many([y], warm_start=each)


def rnn_fails(monkeypatch, error: Exception, series: set[int], kind: str):
    """Make the RNN fits of ``series`` (their ``kind`` job: "validation" or "final") end in
    ``error``, in fit_each and in fit alike; the other fits run as they are."""
    real_jobs, real_on = auto_each.fit_rnn_jobs, auto.fit_rnn_on

    def jobs(todo, epochs):
        out = real_jobs(todo, epochs)
        return {k: error if k[0] in series and k[1] == kind else v for k, v in out.items()}

    calls = []

    def on(model, ys, across, epochs, warm=None):
        calls.append(1)
        if (kind == "validation") == (len(calls) == 1):
            raise error
        return real_on(model, ys, across, epochs, warm)

    monkeypatch.setattr(auto_each, "fit_rnn_jobs", jobs)
    monkeypatch.setattr(auto, "fit_rnn_on", on)
    return calls


@pytest.mark.parametrize("kind", ["validation", "final"])
def test_a_diverged_rnn_in_fit_each_leaves_that_series_to_the_challengers_as_fit_does(monkeypatch, kind):
    ys = [seasonal(70, 0), seasonal(80, 1)]
    calls = rnn_fails(monkeypatch, TrainingDiverged("the loss stayed non-finite after 6 back-offs"), {1}, kind)
    each = AutoForecaster(season_length=12, rnn=TINY).fit_each(ys, errors="raise")
    assert "rnn" in each[0].members_ and "rnn" not in each[1].members_
    alone = AutoForecaster(season_length=12, rnn=TINY).fit(ys[1])
    assert calls and "rnn" not in alone.members_
    np.testing.assert_array_equal(each[1].predict(6), alone.predict(6))
    assert each[1].chosen_ == alone.chosen_ and each[1].history_ == alone.history_ == []


@pytest.mark.parametrize("kind", ["validation", "final"])
def test_any_other_rnn_error_in_fit_each_is_that_series_error(monkeypatch, kind):
    ys = [seasonal(70, 0), seasonal(80, 1)]
    failure = ValueError("the RNN cannot fit this series")
    rnn_fails(monkeypatch, failure, {1}, kind)
    with pytest.raises(ValueError, match="the RNN cannot fit this series"):
        AutoForecaster(season_length=12, rnn=TINY).fit_each(ys)
    out = AutoForecaster(season_length=12, rnn=TINY).fit_each(ys, errors="return")
    assert isinstance(out[0], AutoForecaster) and out[1] is failure
