"""models/windows.py (what the network sees) against plain re-statements: windows cut point by
point, the last window, the validation split, many series stacked, the scale and the choice of
the log scale at each of its thresholds, and the exact errors."""

from __future__ import annotations

import numpy as np
import pytest

from tickcast.models import SeriesTooShort
from tickcast.models.seasonality import Seasonality
from tickcast.models.windows import (
    LEVEL_RANGE,
    MIN_LENGTH,
    STEADY,
    Prepared,
    TailPrepared,
    as_series,
    assemble,
    changes_grow_with_level,
    cut_windows,
    last_window,
    prepare,
    resolve_transform,
    series_scale,
    split_point,
    spread_path,
)


def window_reference(x, L, K, scale, t, end):
    """The window at cut t, one point at a time: inputs x[t-L..t-1], targets x[t..t+K-1], both
    minus x[t-1] and over scale; before the first point x[0] repeats; a target at or past
    ``end`` (or past the series) is masked (0 with mask 0)."""
    base = x[t - 1]
    inputs = [(x[max(i, 0)] - base) / scale for i in range(t - L, t)]
    targets, mask = [], []
    for i in range(t, t + K):
        known = i < min(end, x.size)
        targets.append((x[i] - base) / scale if known else 0.0)
        mask.append(1.0 if known else 0.0)
    return np.array(inputs), np.array(targets), np.array(mask)


@pytest.mark.parametrize("L, K", [(1, 1), (3, 2), (8, 5), (12, 4)])
@pytest.mark.parametrize("end", [None, 7, 11])
def test_windows_are_cut_as_the_reference_says(L, K, end):
    x = np.array([3.0, 1.0, 4.0, 1.5, 5.0, 9.0, 2.0, 6.0, 5.5, 3.5, 5.0])
    cuts = np.arange(1, x.size + 1)
    X, Y, M = cut_windows(x, L, K, 2.0, cuts, end)
    assert X.shape == (cuts.size, L, 1) and Y.shape == M.shape == (cuts.size, K)
    for row, t in enumerate(cuts):
        inputs, targets, mask = window_reference(x, L, K, 2.0, t, x.size if end is None else end)
        np.testing.assert_allclose(X[row, :, 0], inputs, rtol=0, atol=1e-15)
        np.testing.assert_allclose(Y[row], targets, rtol=0, atol=1e-15)
        np.testing.assert_array_equal(M[row], mask)
    assert np.all(np.isfinite(Y))


def test_the_last_window_is_the_window_after_the_last_point():
    x = np.array([2.0, 7.0, 1.0, 8.0, 2.5])
    for L in (1, 3, 5, 8):
        expected = window_reference(x, L, 1, 0.5, x.size, x.size)[0]
        got = last_window(x, L, 0.5)
        assert got.shape == (L, 1)
        np.testing.assert_allclose(got[:, 0], expected, rtol=0, atol=1e-15)


def test_the_validation_part_is_the_newest_fraction_of_the_cut_points():
    for n, frac, min_train, expected in [
        (100, 0.2, 2, 80),  # round(0.2 * 99) = 20 held out
        (11, 0.2, 2, 9),  # round(2.0)
        (13, 0.2, 2, 11),  # round(2.4) = 2
        (14, 0.25, 2, 11),  # round(3.25) = 3
        (3, 0.01, 2, 2),  # at least one held out
        (3, 0.5, 2, 2),
        (3, 0.5, 3, 3),  # 2 would remain, fewer than min_train: nothing held out
        (4, 0.5, 2, 2),  # round(1.5) = 2 held out, 2 remain: enough
        (2, 0.9, 1, 1),
        (1, 0.5, 1, 1),
        (100, 0.0, 2, 100),
        (100, -0.1, 2, 100),
    ]:
        assert split_point(n, frac, min_train) == expected, (n, frac, min_train)
    assert split_point(5, 0.2) == 4 and split_point(3, 0.5) == 2  # min_train 2 by default


def test_many_series_are_stacked_in_order_with_their_owners_and_cuts():
    rng = np.random.default_rng(0)
    preps = [
        Prepared(rng.normal(size=n).cumsum(), Seasonality(np.ones(1), n), False, s)
        for n, s in ((9, 1.0), (4, 0.5), (12, 2.0))
    ]
    ranges = [(0, 9, 7), (2, 2, 4), (5, 13, 12), (3, 4, 4)]  # cut 0 becomes 1; (2, 2): none; (3, 4): one
    preps.append(preps[1])
    X, Y, M, owner, cut = assemble(preps, 3, 2, ranges)
    assert owner.tolist() == [0] * 8 + [2] * 8 + [3]
    assert cut.tolist() == list(range(1, 9)) + list(range(5, 13)) + [3]
    for row, (i, t) in enumerate(zip(owner, cut)):
        p = preps[i]
        inputs, targets, mask = window_reference(p.x, 3, 2, p.scale, t, ranges[i][2])
        np.testing.assert_allclose(X[row, :, 0], inputs, atol=1e-15)
        np.testing.assert_allclose(Y[row], targets, atol=1e-15)
        np.testing.assert_array_equal(M[row], mask)
    X, Y, M, owner, cut = assemble(preps[1:2], 3, 2, [(2, 2, 4)])
    assert X.shape == (0, 3, 1) and Y.shape == M.shape == (0, 2) and owner.size == cut.size == 0
    assert owner.dtype.kind == cut.dtype.kind == "i" and Y is not M


@pytest.mark.filterwarnings("error")  # no mean of nothing
def test_the_scale_is_the_mean_absolute_change_with_a_floor_for_a_constant_series():
    assert series_scale(np.array([1.0, 4.0, 2.0])) == 2.5
    assert series_scale(np.array([5.0])) == 1.0 and series_scale(np.array([5.0, 5.0, 5.0])) == 1.0
    big = np.array([1e9, 1e9 + 1e-4])  # a change below 1e-12 of the level is no change
    assert series_scale(big) == 1.0
    assert series_scale(np.array([1e9, 1e9 + 1e-2])) == pytest.approx(1e-2, rel=1e-6)
    assert series_scale(np.array([0.0, 1e-11])) == pytest.approx(1e-11)  # small values: the floor is 1e-12
    assert series_scale(np.array([0.0, 1e-13])) == 1.0
    assert series_scale(np.array([0.0, 1e-12])) == 1.0  # exactly at the floor: no change
    assert series_scale(np.array([0.0, 1.5e-12])) == 1.5e-12
    assert series_scale(np.array([3.0, 3.0 + 2**-20])) == 2**-20


def spread_reference(x: np.ndarray) -> np.ndarray:
    """Element t: the weighted mean of |x[i] - x[i-1]| for i < t, weight (1 - a)^(t - 1 - i) with
    a = 2 / 31; the scale before two points (and for every t below three points); at least a
    thousandth of the scale."""
    scale = series_scale(x)
    out = [scale] * (x.size + 1)
    if x.size >= 3:
        a = 2 / 31
        for t in range(2, x.size + 1):
            w = [(1 - a) ** (t - 1 - i) for i in range(1, t)]
            out[t] = sum(wi * abs(x[i] - x[i - 1]) for wi, i in zip(w, range(1, t))) / sum(w)
    return np.maximum(np.array(out), 1e-3 * scale)


def test_the_spread_path_is_the_weighted_mean_of_the_changes_so_far():
    rng = np.random.default_rng(2)
    calm_after_storm = np.r_[np.cumsum(rng.normal(0, 5, 40)), np.full(400, 7.0)]
    for x in (
        rng.normal(size=50).cumsum(),
        calm_after_storm,
        np.array([1.0, 3.0]),
        np.array([1.0, 3.0, 2.0]),
        np.ones(5),
    ):
        np.testing.assert_allclose(spread_path(x), spread_reference(x), rtol=1e-12)
    path = spread_path(calm_after_storm)
    assert path[-1] == 1e-3 * series_scale(calm_after_storm) < path[40] / 1e3  # the floor holds it up


def test_the_log_scale_is_chosen_at_each_threshold():
    t = np.arange(40.0)
    steps = 10.0 + 3.0 * t  # 10 to 127: steady steps of 3, a range of 12.7
    assert not changes_grow_with_level(steps)
    # the level varies by less than LEVEL_RANGE: the log scale, untested
    narrow = 10.0 + (LEVEL_RANGE * 10.0 - 10.0) * t / t[-1] * 0.999
    assert changes_grow_with_level(narrow)
    exactly = np.linspace(10.0, LEVEL_RANGE * 10.0, 40)  # exactly LEVEL_RANGE: tested, steady steps
    assert not changes_grow_with_level(exactly)
    # exactly STEADY: tested (steps alternating 3 and -1: mean 1, standard deviation 2)
    y = 10.0 + np.cumsum(np.r_[0.0, np.tile([3.0, -1.0], 100)])
    d = np.diff(y)
    assert np.mean(d) == STEADY * np.std(d) and not changes_grow_with_level(y)
    # a narrow spread of levels (a range of 2.5) whose changes grow: the slope is a covariance over
    # the variance of the log levels
    y = [10.0]
    while y[-1] < 25.0:
        y.append(y[-1] + 0.05 * y[-1] ** 0.7)
    assert changes_grow_with_level(np.array(y))
    # a wide range, but wandering: a mean change below STEADY standard deviations keeps the log scale
    for drift_, tested in ((0.4, False), (0.6, True)):  # changes +-1 around a mean of drift_ (std ~1)
        d = drift_ + np.tile([1.0, -1.0], 200)
        y = 5.0 + np.cumsum(np.r_[0.0, d]) * 1.0
        ratio = abs(np.mean(np.diff(y))) / np.std(np.diff(y))
        assert (ratio < STEADY) != tested and np.max(y) >= LEVEL_RANGE * np.min(y)
        if not tested:
            assert changes_grow_with_level(y)
        else:  # steady steps of the same size alternating: they do not grow with the level
            assert not changes_grow_with_level(y)
    # changes that grow with the level: slope of log|change| on log level above 1/2
    for power, grows in ((0.0, False), (0.4, False), (0.6, True), (1.0, True)):
        y = [1.0]
        for _ in range(60):
            y.append(y[-1] + 0.2 * y[-1] ** power)
        assert changes_grow_with_level(np.array(y)) == grows, power


def test_three_real_changes_are_enough_and_a_change_counts_above_a_billionth_of_the_top():
    assert not changes_grow_with_level(np.array([10.0, 20.0, 30.0, 40.0]))  # three equal steps
    assert changes_grow_with_level(np.array([10.0, 20.0, 40.0, 40.0 + 1e-8]))  # the last is no change
    top = np.array([2.5e8, 5e8, 1e9 - 1, 1e9])  # the last change is exactly 1e-9 of the top: none
    assert np.diff(top)[-1] == 1e-9 * top.max() and changes_grow_with_level(top)
    assert not changes_grow_with_level(np.r_[top[:-1], 1e9 + 1])  # 2e-9 of the top: it counts


def test_fewer_than_three_real_changes_keep_the_log_scale():
    y = np.r_[np.full(20, 10.0), np.full(20, 30.0), 60.0]  # two changes, the rest are flat
    assert changes_grow_with_level(y)
    y3 = np.r_[np.full(20, 10.0), np.full(20, 30.0), 60.0, 100.0, 101.0]
    assert np.count_nonzero(np.diff(y3)) == 4
    tiny = np.r_[np.full(20, 10.0), 10.0 + 1e-10, np.full(20, 30.0), 60.0]  # a change below 1e-9 of the top
    assert changes_grow_with_level(tiny)


def test_transform_errors_and_the_explicit_scales():
    with pytest.raises(ValueError) as e:
        resolve_transform(np.array([1.0, 2.0]), "sqrt")
    assert str(e.value) == "transform must be one of ('auto', 'log', 'linear'), got 'sqrt'"
    with pytest.raises(ValueError) as e:
        resolve_transform(np.array([1.0, 0.0, 2.0]), "log")
    assert str(e.value) == "transform='log' needs a strictly positive series"
    assert resolve_transform(np.array([1.0, 0.0, 2.0]), "linear") is False
    assert resolve_transform(np.array([1.0, 2.0]), "log") is True
    assert resolve_transform(np.array([0.0, 1.0, 2.0, 3.0]), "auto") is False


def test_as_series_takes_one_dimension_finite_values_and_enough_of_them():
    np.testing.assert_array_equal(as_series([[1], [2], [3]]), [1.0, 2.0, 3.0])  # a column is a series
    assert as_series(np.array([1, 2, 3], dtype=np.int8)).dtype == np.float64
    for y, message in [
        (np.ones((2, 3)), "y must be one-dimensional, got shape (2, 3)"),
        ([1.0, np.nan, np.inf, 2.0, 3.0], "y contains 2 NaN or infinite value(s); drop or fill them first"),
    ]:
        with pytest.raises(ValueError) as e:
            as_series(y)
        assert str(e.value) == message
    with pytest.raises(ValueError) as e:
        as_series(np.ones((2, 2)), what="series 4")
    assert str(e.value).startswith("series 4 must be one-dimensional")
    with pytest.raises(SeriesTooShort) as e:
        as_series([1.0, 2.0])
    assert str(e.value) == f"series has 2 point(s); the forecaster needs at least {MIN_LENGTH} (models.MIN_LENGTH)"
    assert as_series([1.0, 2.0], min_length=2).size == 2


def test_a_prepared_series_maps_values_both_ways_at_any_position():
    t = np.arange(72.0)
    y = (50 + 0.2 * t) * (1 + 0.3 * np.sin(2 * np.pi * t / 12))
    p = prepare(y, 12)
    assert p.season.active and p.season.m == 12 and p.log
    np.testing.assert_allclose(p.to_y(p.to_x(y), 0), y, rtol=1e-12)
    np.testing.assert_allclose(p.to_x(y[5:9], 5), p.x[5:9], rtol=1e-12)
    at = np.array([0, 13, 7, 7, 71])
    np.testing.assert_allclose(p.values_at(p.x[at], at), y[at], rtol=1e-12)
    after = p.to_y(np.log(np.full(3, 60.0)))  # right after the series: positions 72, 73, 74
    np.testing.assert_allclose(after, 60.0 * p.season.indices[[0, 1, 2]], rtol=1e-12)
    np.testing.assert_allclose(p.to_y(p.x[5:9], 5), y[5:9], rtol=1e-12)
    small = prepare(y / 100.0, 12)  # values below 1 are positive too: log scale and season
    assert small.log and small.season.active
    np.testing.assert_allclose(small.season.indices, p.season.indices, rtol=1e-12)
    lin = prepare(y - 200.0, 12)  # negative: additive indices, linear scale
    assert not lin.log and not lin.season.multiplicative
    np.testing.assert_allclose(lin.to_x(y - 200.0), lin.x, rtol=1e-12)
    assert not prepare(y, 1).season.active and prepare(y, 0).season.m == 12  # 1: none; 0: detected
    np.testing.assert_allclose(lin.values_at(lin.x[[3, 20]], np.array([3, 20])), (y - 200.0)[[3, 20]], rtol=1e-12)
    flat = prepare(np.arange(1.0, 30.0), 1)
    assert not flat.season.active and not flat.log  # steady steps: the linear scale
    np.testing.assert_array_equal(flat.values_at(flat.x[[4]], np.array([4])), [5.0])
    assert p.meta() == {"season": p.season.to_dict(), "log": True, "scale": p.scale}
    assert p.scale == series_scale(p.x)
    tail = TailPrepared(p.x[-5:], p.season, p.log, p.scale, 72)
    assert tail.n == 72 and p.n == 72 and tail.x.size == 5


def test_a_seasonal_adjustment_that_leaves_a_value_not_positive_on_the_log_scale_is_dropped(monkeypatch):
    """prepare's safeguard: positive indices keep a positive series positive, but a factor that
    overflows (or a value that underflows) would reach log(0); the series is then left unadjusted."""
    y = 100.0 + np.arange(30.0) * 10.0
    broken = Seasonality(np.array([1.0, np.inf]), y.size)  # every second value divided by infinity
    monkeypatch.setattr(Seasonality, "fit", classmethod(lambda cls, y, m, m4_test=False: broken))
    p = prepare(y, 2, "log")
    assert p.log and not p.season.active and p.season.m == 1 and p.season.n == y.size
    np.testing.assert_array_equal(p.x, np.log(y))
    assert p.season.to_dict() == {"indices": [1.0], "n": 30, "multiplicative": True}
