"""The combination rules against a plain, loop-by-loop reading of their documentation
(models/combine.py): validation errors, weights per rule with and without the pooled prior,
shrinkage, members missing on a series, and series without a validation part."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from tickcast.models.combine import (
    MIN_POOLED_SERIES,
    combine_forecasts,
    member_errors,
    member_weights,
    pooled_prior,
    screened_weights,
)


def ref_errors(y, split, forecasts):
    out = []
    for F in forecasts:
        if F is None or split >= len(y):
            out.append(math.nan)
            continue
        diffs = [
            abs(y[split + i + k] - F[i][k]) for i in range(len(F)) for k in range(len(F[i])) if split + i + k < len(y)
        ]
        out.append(sum(diffs) / len(diffs))
    return out


def ref_normalise(row, avail):
    w = [0.0 if not a or not math.isfinite(v) else v for v, a in zip(row, avail)]
    total = sum(w)
    if total > 0:
        return [v / total for v in w]
    count = sum(avail)
    return [(1.0 / count if a else 0.0) for a in avail] if count else [0.0] * len(avail)


def ref_prior(errors, avail):
    M = len(errors[0])
    rows = []
    for e, a in zip(errors, avail):
        if all(a) and all(math.isfinite(v) for v in e):
            mean = sum(e) / M
            if mean > 0:
                rows.append([v / mean for v in e])
    if len(rows) < MIN_POOLED_SERIES:
        return [1.0 / M] * M
    R = [sum(r[j] for r in rows) / len(rows) for j in range(M)]
    w = [1.0 / max(r, 1e-12) for r in R]
    return [v / sum(w) for v in w]


def ref_weights(errors, avail, rule, shrinkage, pooled):
    S, M = len(errors), len(errors[0])
    W, chosen = [], []
    prior_row = ref_prior(errors, avail) if pooled and S >= MIN_POOLED_SERIES else [1.0 / M] * M
    for e, a in zip(errors, avail):
        if rule in ("mean", "median"):
            W.append(ref_normalise([1.0] * M, a))
            chosen.append(rule)
            continue
        usable = [a[j] and math.isfinite(e[j]) for j in range(M)]
        known = all(math.isfinite(e[j]) or not a[j] for j in range(M)) and any(usable)
        prior = ref_normalise(prior_row, a)
        chosen.append(rule if known else f"{'pooled' if pooled else 'equal'} weights (no validation part)")
        if not known:
            W.append(prior)
        elif rule == "select":
            best = min((j for j in range(M) if usable[j]), key=lambda j: (e[j], j))
            W.append([1.0 if j == best else 0.0 for j in range(M)])
        else:
            own = ref_normalise([1.0 / max(v, 1e-300) if math.isfinite(v) else 0.0 for v in e], a)
            W.append(ref_normalise([(1 - shrinkage) * o + shrinkage * p for o, p in zip(own, prior)], a))
    return W, chosen


def random_case(rng, S, M):
    errors = rng.gamma(2.0, 1.0, (S, M)) * rng.uniform(0.1, 10.0, (S, 1))
    avail = rng.random((S, M)) < 0.85
    errors[rng.random((S, M)) < 0.1] = np.nan  # a member without validation forecasts there
    errors[rng.random((S, M)) < 0.03] = 0.0  # a perfect validation
    errors[rng.random(S) < 0.1] = np.nan  # a series without a validation part
    return errors, avail


@pytest.mark.parametrize("rule", ["mean", "median", "inverse", "select"])
@pytest.mark.parametrize("pooled", [False, True])
def test_weights_follow_the_documented_rules(rule, pooled):
    rng = np.random.default_rng(11)
    for case in range(60):
        S = int(rng.choice([1, 3, MIN_POOLED_SERIES - 1, MIN_POOLED_SERIES, 40]))
        M = int(rng.integers(1, 6))
        errors, avail = random_case(rng, S, M)
        shrinkage = float(rng.choice([0.0, 0.3, 0.5, 1.0]))
        W, chosen = member_weights(errors, avail, rule, shrinkage, pooled)
        want, want_chosen = ref_weights(errors.tolist(), avail.tolist(), rule, shrinkage, pooled)
        np.testing.assert_allclose(W, np.array(want).reshape(S, M), rtol=1e-12, atol=1e-15, err_msg=f"case {case}")
        assert chosen == want_chosen
        has = avail.any(axis=1)
        np.testing.assert_allclose(W.sum(axis=1)[has], 1.0)  # weights of a series sum to one
        assert np.all(W[~avail] == 0)  # and a member that does not forecast it gets none


def test_pooled_prior_learns_from_every_series_each_member_forecast():
    rng = np.random.default_rng(3)
    for S in (MIN_POOLED_SERIES - 1, MIN_POOLED_SERIES, 25):
        errors = rng.gamma(2.0, 1.0, (S, 3)) * np.array([1.0, 2.0, 4.0])
        avail = np.ones((S, 3), dtype=bool)
        avail[0, 2] = False  # a series one member skipped is left out
        errors[1, 1] = np.nan
        errors[2] = 0.0  # and so is one where every member was perfect (no relative errors)
        np.testing.assert_allclose(pooled_prior(errors, avail), ref_prior(errors.tolist(), avail.tolist()))
    rel = np.tile([1.0, 2.0, 4.0], (MIN_POOLED_SERIES, 1))
    np.testing.assert_allclose(pooled_prior(rel, np.ones_like(rel, dtype=bool)), np.array([4, 2, 1]) / 7)


def test_inverse_weights_prefer_the_better_member_and_shrink_towards_the_prior():
    errors = np.tile([1.0, 3.0], (MIN_POOLED_SERIES, 1))
    avail = np.ones_like(errors, dtype=bool)
    own = member_weights(errors, avail, "inverse", 0.0, pooled=False)[0][0]
    half = member_weights(errors, avail, "inverse", 0.5, pooled=False)[0][0]
    flat = member_weights(errors, avail, "inverse", 1.0, pooled=False)[0][0]
    np.testing.assert_allclose(own, [0.75, 0.25])
    np.testing.assert_allclose(half, [0.625, 0.375])
    np.testing.assert_allclose(flat, [0.5, 0.5])
    pooled = member_weights(errors, avail, "inverse", 1.0, pooled=True)[0][0]
    np.testing.assert_allclose(pooled, [0.75, 0.25])  # all the series agree: the prior is theirs


def test_member_errors_average_every_known_target():
    rng = np.random.default_rng(4)
    for _ in range(30):
        n = int(rng.integers(3, 30))
        split = int(rng.integers(1, n + 2))
        H = int(rng.integers(1, 6))
        y = rng.normal(0, 1, n)
        v = max(n - split, 0)
        forecasts = [rng.normal(0, 1, (v, H)), None, rng.normal(0, 1, (v, H + 1))]
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a series without a validation part: NaN, and no warning
            got = member_errors(y, split, forecasts)
        np.testing.assert_allclose(got, ref_errors(y.tolist(), split, forecasts), rtol=1e-12)


def test_combine_forecasts():
    F = np.array([[1.0, 2.0, 9.0], [3.0, 4.0, 0.0], [10.0, 10.0, 3.0]])
    np.testing.assert_allclose(combine_forecasts(F, np.array([5.0, 5.0, 5.0]), "median"), [3.0, 4.0, 3.0])
    np.testing.assert_allclose(combine_forecasts(F, np.array([2.0, 1.0, 1.0]), "mean"), [3.75, 4.5, 5.25])
    np.testing.assert_allclose(combine_forecasts(F, np.array([0.0, 0.0, 4.0]), "inverse"), F[2])


# ------------------------------------------------------------ the benchmarks, screened


def _const(v, origins=3):
    return np.full((origins, 1), float(v))  # one-step forecasts from every validation origin


Y = np.array([0.0, 0.0, 0.0, 10.0, 10.0, 10.0])  # validation part: origins 3, 4, 5 (targets 10)


def _screen(Fs, names, rule, shrinkage=0.5):
    """screened_weights on copies of Y (one per row of Fs), every member available, unpooled."""
    errors = np.array([member_errors(Y, 3, F) for F in Fs])
    avail = np.ones(errors.shape, dtype=bool)
    return screened_weights([Y] * len(Fs), [3] * len(Fs), Fs, errors, avail, names, rule, shrinkage, False)


def test_screening_passes_the_rule_shrinkage_and_pooling_through():
    """Without benchmarks, and for the others' weights with them, the rule's own weights: the
    inverse rule with its shrinkage, and with the pooled prior over enough series."""
    rng = np.random.default_rng(4)
    S = MIN_POOLED_SERIES + 2
    errors = rng.uniform(0.5, 2.0, (S, 2))
    avail = np.ones((S, 2), dtype=bool)
    Fs = [[_const(10 + e) for e in row] for row in errors]
    for shrinkage, pooled in ((0.3, True), (0.3, False), (0.8, True)):
        want, _ = member_weights(errors, avail, "inverse", shrinkage, pooled)
        got, _ = screened_weights([Y] * S, [3] * S, Fs, errors, avail, ["ets", "theta"], "inverse", shrinkage, pooled)
        np.testing.assert_allclose(got, want)
        # a seasonal naive member far behind on every series: the others' weights are the same
        with_bench = np.c_[errors, np.full(S, 50.0)]
        Fb = [row + [_const(60.0)] for row in Fs]
        names = ["ets", "theta", "seasonal_naive"]
        got, chosen = screened_weights(
            [Y] * S, [3] * S, Fb, with_bench, np.ones((S, 3), dtype=bool), names, "inverse", shrinkage, pooled
        )
        np.testing.assert_allclose(got[:, :2], want)
        assert np.all(got[:, 2] == 0) and chosen == ["inverse"] * S


def test_screening_where_a_benchmark_joins_under_the_inverse_rule_and_two_join():
    names = ["ets", "theta", "naive", "seasonal_naive"]
    # ets forecasts 8 (errs 2), theta 7 (errs 3): inverse weights shrunk half way to equal, 0.55 and
    # 0.45, make a combination of 7.55, erring 2.45; naive errs 1, seasonal naive 2.4: both join
    W, chosen = _screen([[_const(8), _const(7), _const(9), _const(12.4)]], names, "inverse")
    own = np.array([1 / 2, 1 / 3, 1 / 1, 1 / 2.4])
    np.testing.assert_allclose(W[0], 0.5 * own / own.sum() + 0.5 / 4)
    assert chosen == ["inverse with naive, seasonal_naive"]


def test_screening_a_base_member_without_validation_forecasts_and_series_without_any():
    names = ["rnn", "theta", "seasonal_naive"]
    Fs = [
        [None, _const(12), _const(10.5)],  # the RNN has none here: theta's 2.0 against seasonal naive's 0.5
        [None, None, _const(10)],  # no base member has any: nothing to screen against
        [_const(12), _const(12), _const(10)],  # after those, still screened: seasonal naive joins
    ]
    W, chosen = _screen(Fs, names, "mean")
    assert chosen[0] == "mean with seasonal_naive" and W[0, 2] > 0
    np.testing.assert_allclose(W[1], [0.5, 0.5, 0.0])  # the prior over the base, the benchmark out
    np.testing.assert_allclose(W[2], [1 / 3, 1 / 3, 1 / 3])
    assert chosen[2] == "mean with seasonal_naive"


def test_screening_measures_the_combination_by_its_own_rule():
    """Under the median rule the combination the benchmark must beat is the median of the others."""
    names = ["rnn", "ets", "theta", "seasonal_naive"]
    # others forecast 9, 10.2 and 30: their median errs 0.2, their mean 6.4; seasonal naive errs 1.0
    Fs = [[_const(9), _const(10.2), _const(30), _const(11)]]
    W, chosen = _screen(Fs, names, "median")
    assert chosen == ["median"] and W[0, 3] == 0
    W, chosen = _screen(Fs, names, "mean")
    assert chosen == ["mean with seasonal_naive"] and W[0, 3] == pytest.approx(0.25)
