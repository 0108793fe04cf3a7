"""The combination rules against a plain, loop-by-loop reading of their documentation
(models/combine.py): validation errors, weights per rule with and without the pooled prior,
shrinkage, members missing on a series, and series without a validation part."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from tickcast.models.combine import (
    MIN_BLOCKS,
    MIN_POOLED_SERIES,
    WORSE_RATIO,
    WORSE_SE,
    block_errors,
    combine_forecasts,
    member_errors,
    member_weights,
    pooled_prior,
    ruled_out,
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


# Validation part: origins 3, 4 and 5 (targets 10), one-step forecasts: MIN_BLOCKS of them, enough
# to judge a benchmark. The members taking part stay within a quarter of the best (or differ from
# it by luck: not significantly), so none is ruled out and the screening is seen alone.
Y = np.array([0.0, 0.0, 0.0, 10.0, 10.0, 10.0])
SPLIT = 3


def _screen(Fs, names, rule, shrinkage=0.5):
    """screened_weights on copies of Y (one per row of Fs), every member available, unpooled."""
    errors = np.array([member_errors(Y, SPLIT, F) for F in Fs])
    avail = np.ones(errors.shape, dtype=bool)
    return screened_weights([Y] * len(Fs), [SPLIT] * len(Fs), Fs, errors, avail, names, rule, shrinkage, False)


def test_screening_passes_the_rule_shrinkage_and_pooling_through():
    """Without benchmarks, and for the others' weights with them, the rule's own weights: the
    inverse rule with its shrinkage, and with the pooled prior over enough series."""
    rng = np.random.default_rng(4)
    S = MIN_POOLED_SERIES + 2
    errors = rng.uniform(1.0, 1.2, (S, 2))
    avail = np.ones((S, 2), dtype=bool)
    Fs = [[_const(10 + e) for e in row] for row in errors]
    for shrinkage, pooled in ((0.3, True), (0.3, False), (0.8, True)):
        want, _ = member_weights(errors, avail, "inverse", shrinkage, pooled)
        got, _ = screened_weights(
            [Y] * S, [SPLIT] * S, Fs, errors, avail, ["ets", "theta"], "inverse", shrinkage, pooled
        )
        np.testing.assert_allclose(got, want)
        # a seasonal naive member far behind on every series: the others' weights are the same
        with_bench = np.c_[errors, np.full(S, 50.0)]
        Fb = [row + [_const(60.0)] for row in Fs]
        names = ["ets", "theta", "seasonal_naive"]
        got, chosen = screened_weights(
            [Y] * S, [SPLIT] * S, Fb, with_bench, np.ones((S, 3), dtype=bool), names, "inverse", shrinkage, pooled
        )
        np.testing.assert_allclose(got[:, :2], want)
        assert np.all(got[:, 2] == 0) and chosen == ["inverse"] * S


def test_screening_where_a_benchmark_joins_under_the_inverse_rule_and_two_join():
    names = ["ets", "theta", "naive", "seasonal_naive"]
    # ets forecasts 8.8 (errs 1.2), theta 8.6 (errs 1.4): inverse weights shrunk half way to equal,
    # 0.519 and 0.481, make a combination of 8.704, erring 1.296; naive errs 1.15, seasonal naive 1.25:
    # both join
    W, chosen = _screen([[_const(8.8), _const(8.6), _const(8.85), _const(11.25)]], names, "inverse")
    own = np.array([1 / 1.2, 1 / 1.4, 1 / 1.15, 1 / 1.25])
    np.testing.assert_allclose(W[0], 0.5 * own / own.sum() + 0.5 / 4)
    assert chosen == ["inverse with naive, seasonal_naive"]


def test_screening_a_base_member_without_validation_forecasts_and_series_without_any():
    names = ["rnn", "theta", "seasonal_naive"]
    Fs = [
        [None, _const(12), _const(11.7)],  # the RNN has none here: theta's 2.0 against seasonal naive's 1.7
        [None, None, _const(10)],  # no base member has any: nothing to screen against
        [_const(12), _const(12), _const(11.7)],  # after those, still screened: seasonal naive joins
    ]
    W, chosen = _screen(Fs, names, "mean")
    assert chosen[0] == "mean with seasonal_naive" and W[0, 2] > 0
    np.testing.assert_allclose(W[1], [0.5, 0.5, 0.0])  # the prior over the base, the benchmark out
    np.testing.assert_allclose(W[2], [1 / 3, 1 / 3, 1 / 3])
    assert chosen[2] == "mean with seasonal_naive"


def test_screening_measures_the_combination_by_its_own_rule():
    """Under the median rule the combination the benchmark must beat is the median of the others."""
    names = ["rnn", "ets", "theta", "seasonal_naive"]

    # from the three origins the others forecast 9, 10.25, 10.25 / 10.2 each time / 30, 10.2, 10.2:
    # their median errs 0.2, their mean 2.28; seasonal naive 11, 10.25, 10.25 errs 0.5 (the members
    # far behind ets are so at one origin only: not significantly, so not ruled out)
    def col(*v):
        return np.array(v, dtype=float)[:, None]

    Fs = [[col(9, 10.25, 10.25), _const(10.2), col(30, 10.2, 10.2), col(11, 10.25, 10.25)]]
    W, chosen = _screen(Fs, names, "median")
    assert chosen == ["median"] and W[0, 3] == 0
    W, chosen = _screen(Fs, names, "mean")
    assert chosen == ["mean with seasonal_naive"] and W[0, 3] == pytest.approx(0.25)


# ------------------------------------------------------------ members ruled out by validation


def ref_block_errors(y, split, F):
    """MAE of the forecasts from origins split, split + H, ... over their known targets."""
    H, out = len(F[0]), []
    for i in range(0, len(y) - split, H):
        diffs = [abs(y[split + i + k] - F[i][k]) for k in range(H) if split + i + k < len(y)]
        out.append(sum(diffs) / len(diffs))
    return out


def ref_ruled_out(y, split, Fs, live):
    if len(live) < 2 or split >= len(y):
        return []
    blocks = {j: ref_block_errors(y, split, Fs[j]) for j in live}
    if len(blocks[live[0]]) < MIN_BLOCKS:
        return []
    total = {j: ref_errors(y, split, [Fs[j]])[0] for j in live}
    best = min(live, key=lambda j: (total[j], live.index(j)))
    out = []
    for j in live:
        d = [a - b for a, b in zip(blocks[j], blocks[best])]
        mean = sum(d) / len(d)
        se = math.sqrt(sum((v - mean) ** 2 for v in d) / (len(d) - 1) / len(d))
        if total[j] > WORSE_RATIO * total[best] and mean > WORSE_SE * se:
            out.append(j)
    return out


def test_block_errors_take_the_origins_whose_targets_do_not_overlap():
    rng = np.random.default_rng(8)
    for _ in range(40):
        n, H = int(rng.integers(4, 40)), int(rng.integers(1, 7))
        split = int(rng.integers(1, n))
        y, F = rng.normal(0, 1, n), rng.normal(0, 1, (n - split, H))
        np.testing.assert_allclose(block_errors(y, split, F), ref_block_errors(y.tolist(), split, F), rtol=1e-12)
    y = np.arange(10.0)
    F = np.zeros((4, 3))  # origins 6, 7, 8, 9: blocks from 6 (targets 6, 7, 8) and 9 (target 9 only)
    np.testing.assert_allclose(block_errors(y, 6, F), [7.0, 9.0])


def test_ruled_out_follows_its_documented_rule_on_random_members():
    rng = np.random.default_rng(9)
    hits = 0
    for case in range(300):
        H = int(rng.integers(1, 5))
        blocks = int(rng.integers(1, 7))
        split = int(rng.integers(2, 10))
        n = split + blocks * H - int(rng.integers(0, H))  # the last block may be cut short
        y = rng.normal(10, 1, n)
        M = int(rng.integers(1, 5))
        scale = rng.uniform(0.2, 3.0, M)  # some members much worse than others
        Fs = [
            y[np.minimum(np.arange(split, n)[:, None] + np.arange(H), n - 1)] + rng.normal(0, s, (n - split, H))
            for s in scale
        ]
        live = sorted(rng.choice(M, int(rng.integers(1, M + 1)), replace=False).tolist())
        got = ruled_out(y, split, Fs, live)
        assert got == ref_ruled_out(y.tolist(), split, [F.tolist() for F in Fs], live), f"case {case}"
        hits += bool(got)
    assert 20 < hits < 280  # the random cases reach both outcomes


def _member_erring(errs):
    """(y, split, F): one-step forecasts from len(errs) origins that err by errs (their blocks)."""
    y = np.r_[np.zeros(2), np.full(len(errs), 10.0)]
    return y, 2, (10.0 + np.asarray(errs, dtype=float))[:, None]


def test_a_member_is_ruled_out_only_when_it_is_a_quarter_worse_and_significantly_so():
    y, split, exact = _member_erring([0.0] * 4)
    best = np.ones(4)
    pattern = np.array([-1.0, -1.0, 1.0, 1.0])  # paired differences' standard error: k / sqrt(3) for k * pattern
    ratio = WORSE_RATIO
    for factor, out in ((ratio * (1 + 1e-9), True), (ratio, False), (ratio * (1 - 1e-9), False)):
        Fs = [_member_erring(best)[2], _member_erring(best * factor)[2]]
        assert ruled_out(y, split, Fs, [0, 1]) == ([1] if out else []), factor  # constant differences: significant
    k = 0.5
    for z, out in ((WORSE_SE * (1 + 1e-6), True), (WORSE_SE * (1 - 1e-6), False)):
        errs = z * k / np.sqrt(3) + k * pattern  # mean difference from the exact member: z standard errors
        Fs = [exact, _member_erring(errs)[2]]
        assert ruled_out(y, split, Fs, [0, 1]) == ([1] if out else []), z
    # exactly 2 standard errors is not more than 2: differences 1, 1, 1, 5 have mean 2, sd 2, se 1
    assert ruled_out(y, split, [exact, _member_erring([1.0, 1.0, 1.0, 5.0])[2]], [0, 1]) == []
    assert ruled_out(y, split, [exact, _member_erring([1.01, 1.01, 1.01, 5.0])[2]], [0, 1]) == [1]
    # the best member is the one measured against, wherever it is; too few blocks: nobody is judged
    Fs = [_member_erring(best * 3)[2], exact, _member_erring(best * 2)[2]]
    assert ruled_out(y, split, Fs, [0, 1, 2]) == [0, 2]
    assert ruled_out(y, split, Fs, [0, 2]) == [0]
    assert ruled_out(y, split, Fs, [0]) == []
    short = [F[: MIN_BLOCKS - 1] for F in Fs]
    assert ruled_out(y[: split + MIN_BLOCKS - 1], split, short, [0, 1, 2]) == []
    assert ruled_out(y, y.size, [np.zeros((0, 1))] * 3, [0, 1, 2]) == []


def test_screening_then_ruling_out_gives_the_weight_to_the_others_in_proportion():
    names = ["rnn", "ets", "theta", "seasonal_naive"]
    y, split, _ = _member_erring([0.0] * 5)
    # seasonal naive errs 0.1 at every origin, the rnn 0.12, ets 0.3 and theta 1.0: the mean of the
    # three errs 0.473, so seasonal naive joins; ets and theta are then more than a quarter worse
    # than it at every origin, and are ruled out
    errs = [0.12, 0.3, 1.0, 0.1]
    Fs = [[_member_erring([e] * 5)[2] for e in errs]]
    errors = np.array([member_errors(y, split, F) for F in Fs])
    avail = np.ones((1, 4), dtype=bool)
    W, chosen = screened_weights([y], [split], Fs, errors, avail, names, "mean", 0.5, False)
    np.testing.assert_allclose(W[0], [0.5, 0.0, 0.0, 0.5])
    assert chosen == ["mean with seasonal_naive without ets, theta"]
    W, chosen = screened_weights([y], [split], Fs, errors, avail, names, "inverse", 0.0, False)
    own = 1 / np.array([0.12, 0.1])
    np.testing.assert_allclose(W[0], [own[0] / own.sum(), 0.0, 0.0, own[1] / own.sum()])
    assert chosen == ["inverse with seasonal_naive without ets, theta"]
    # without benchmarks among the members, the same rule
    W, chosen = screened_weights(
        [y], [split], [Fs[0][:3]], errors[:, :3], avail[:, :3], names[:3], "median", 0.5, False
    )
    np.testing.assert_allclose(W[0], [1.0, 0.0, 0.0])
    assert chosen == ["median without ets, theta"]


def test_a_benchmark_is_judged_only_on_a_validation_part_of_min_blocks_origins():
    """Series by series: from MIN_BLOCKS - 1 non-overlapping origins a benchmark that beat the
    others stays out, from MIN_BLOCKS it joins (whatever the series before it had)."""
    names = ["ets", "theta", "seasonal_naive"]
    short = np.r_[np.zeros(3), np.full(MIN_BLOCKS - 1, 10.0)]
    ys, splits = [short, Y, short, Y], [3, SPLIT, 3, SPLIT]
    Fs = [[_const(v, y.size - s) for v in (8.9, 9.1, 10.9)] for y, s in zip(ys, splits)]
    errors = np.array([member_errors(y, s, F) for y, s, F in zip(ys, splits, Fs)])
    np.testing.assert_allclose(errors, [[1.1, 0.9, 0.9]] * 4)  # seasonal naive beats their mean (1.0)
    W, chosen = screened_weights(ys, splits, Fs, errors, np.ones((4, 3), dtype=bool), names, "mean", 0.5, False)
    assert chosen == ["mean", "mean with seasonal_naive"] * 2
    np.testing.assert_allclose(W, [[0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]] * 2)
    # with H steps ahead, origins one every H steps count: (MIN_BLOCKS - 1) H + 1 origins hold MIN_BLOCKS
    H = 4
    for v, joins in (((MIN_BLOCKS - 1) * H, False), ((MIN_BLOCKS - 1) * H + 1, True)):
        y = np.r_[np.zeros(3), np.full(v, 10.0)]
        F = [np.full((v, H), f) for f in (8.9, 9.1, 10.9)]
        e = member_errors(y, 3, F)[None, :]
        _, chosen = screened_weights([y], [3], [F], e, np.ones((1, 3), dtype=bool), names, "mean", 0.5, False)
        assert chosen == ["mean with seasonal_naive" if joins else "mean"]
