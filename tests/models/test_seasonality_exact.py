"""models/seasonality.py against plain re-statements of its rules, on a corpus of series built to
sit on every edge the rules have: lengths at three seasons, periods 2 to 168 with and without the
detrended test (52), strong, weak and no seasons, trends, values that are positive, in (0, 1),
zero or negative, constant series and integer input."""

import numpy as np
import pytest

from tickcast.models.seasonality import (
    DETRENDED_TEST_PERIODS,
    Seasonality,
    acf,
    centred_moving_average,
    detect_period,
    is_seasonal,
    seasonal_indices,
)


def ref_acf(y, k):
    d = np.array(y, dtype=float) - np.sum(y) / len(y)
    denom = np.sum(d * d)
    if denom == 0 or k >= len(y):
        return 0.0
    return float(np.sum(d[k:] * d[: len(y) - k]) / denom)


def ref_passes(y, m, z):
    """The M3/M4 test: |r_m| > z sqrt((1 + 2 sum_{k<m} r_k^2) / n)."""
    r = [ref_acf(y, k) for k in range(1, m + 1)]
    limit = z * np.sqrt((1.0 + 2.0 * sum(v * v for v in r[:-1])) / len(y))
    return abs(r[-1]) > limit, r[-1]


def ref_cma(y, m):
    n = len(y)
    out = np.full(n, np.nan)
    for t in range(n):
        if m % 2:
            lo, hi = t - m // 2, t + m // 2
            if lo >= 0 and hi < n:
                out[t] = np.mean(y[lo : hi + 1])
        else:
            lo, hi = t - m // 2, t + m // 2
            if lo >= 0 and hi < n:
                window = np.concatenate([[0.5 * y[lo]], y[lo + 1 : hi], [0.5 * y[hi]]])
                out[t] = window.sum() / m
    return out


def ref_is_seasonal(y, m, m4_test=False):
    y = np.asarray(y, dtype=float)
    if m <= 1 or len(y) < 3 * m or y.max() == y.min():
        return False
    if not ref_passes(y, m, 1.645)[0]:
        return False
    if m4_test or m != 52:
        return True
    cma = ref_cma(y, m)
    keep = ~np.isnan(cma)
    if (y > 0).all():
        detrended = np.log(y[keep]) - np.log(cma[keep])
    else:
        detrended = y[keep] - cma[keep]
    return detrended.max() > detrended.min() and ref_passes(detrended, m, 1.645)[0]


def ref_indices(y, m, multiplicative=True, m4_test=False):
    y = np.asarray(y, dtype=float)
    if not ref_is_seasonal(y, m, m4_test):
        return np.ones(max(m, 1)) if multiplicative else np.zeros(max(m, 1))
    cma = ref_cma(y, m)
    per = [[(y[t] / cma[t] if multiplicative else y[t] - cma[t]) for t in range(i, len(y), m) if not np.isnan(cma[t])]
           for i in range(m)]  # fmt: skip
    si = np.array([np.mean(p) for p in per])
    return si / si.mean() if multiplicative else si - si.mean()


def ref_detect(y):
    y = np.asarray(y, dtype=float)
    d = np.diff(np.log(y)) if (y > 0).all() else np.diff(y)
    best, best_r = 1, 0.0
    for m in (4, 5, 7, 12, 24, 52):
        if len(d) < 3 * m or d.max() == d.min():
            continue
        ok, r = ref_passes(d, m, 2.326)
        if ok and r > best_r:
            best, best_r = m, r
    return best


def _series(rng, m, n, kind):
    t = np.arange(n)
    cycle = np.sin(2 * np.pi * t / m + rng.uniform(0, 2 * np.pi))
    amp = rng.choice([0.0, 0.02, 0.05, 0.1, 0.3])
    walk = np.cumsum(rng.normal(rng.choice([0.0, 0.003]), 0.02, n))
    if kind == "positive":
        return 100.0 * np.exp(walk + amp * cycle)
    if kind == "unit":  # values in (0, 1): shares, rates
        return 1.0 / (1.0 + np.exp(-(walk * 3 + amp * 5 * cycle)))
    if kind == "zeros":  # counts with zero weeks
        return np.maximum(np.round(3 + 20 * walk + 10 * amp * cycle + rng.normal(0, 1, n)), 0.0)
    return 5 * np.cumsum(rng.normal(0.2, 4, n)) - 60 + 50 * amp * cycle  # crosses zero: additive


def _corpus():
    rng = np.random.default_rng(20261205)
    out = []
    for m in (2, 3, 4, 7, 12, 24, 25, 52, 168):
        for n in (3 * m - 1, 3 * m, 3 * m + 1, 4 * m - 1, 4 * m, 6 * m + 5, 12 * m):
            for kind in ("positive", "unit", "zeros", "signed"):
                out.append((m, _series(rng, m, n, kind)))
    for i in range(400):  # growth, volatility and cycles of every size, half of them scaled into (0, 1)
        m = (25, 52, 52, 168)[i % 4]
        n = int(rng.integers(3 * m, 12 * m))
        t = np.arange(n)
        level = rng.choice([0, 0.005, 0.01, 0.02]) * t + np.cumsum(rng.normal(0, rng.choice([0.01, 0.05, 0.1]), n))
        y = np.exp(level + rng.choice([0, 0.05, 0.2]) * np.sin(2 * np.pi * t / m))
        out.append((m, y / (1.01 * y.max()) if i % 8 < 4 else y))
    for m in (3, 12, 52):
        for n in (3 * m - 1, 3 * m, 3 * m + 1):  # spikes: little autocorrelation below lag m
            out.append((m, 10.0 + (np.arange(n) % m == 0)))
        out.append((m, np.full(5 * m, 7.0)))  # constant
        out.append((m, (np.arange(5 * m) % m == 0).astype(float)))  # 0/1 spikes: range exactly 1
        out.append((m, list(np.tile(np.arange(m), 5) + 1)))  # integer input
    return out


CORPUS = _corpus()


def _detrended_verdicts(y, m):
    """(the test on log ratios to the moving average, the test on differences from it)."""
    y = np.asarray(y, dtype=float)
    cma = ref_cma(y, m)
    keep = ~np.isnan(cma)
    ratio, diff = np.log(y[keep] / cma[keep]), y[keep] - cma[keep]
    return ref_passes(ratio, m, 1.645)[0], ref_passes(diff, m, 1.645)[0]


def test_the_corpus_reaches_both_answers_on_each_side_of_the_rules():
    answers = {(m in DETRENDED_TEST_PERIODS, ref_is_seasonal(y, m)) for m, y in CORPUS}
    assert answers == {(False, False), (False, True), (True, False), (True, True)}
    # and series the M4 test alone calls seasonal while the detrended test does not
    assert any(ref_is_seasonal(y, m, True) and not ref_is_seasonal(y, m) for m, y in CORPUS)
    # positive series, above 1 and within (0, 1), whose log ratios and differences disagree
    split = {
        bool(np.max(y) < 1)
        for m, y in CORPUS
        if m in DETRENDED_TEST_PERIODS and ref_is_seasonal(y, m, True) and np.min(y) > 0
        and len(set(_detrended_verdicts(y, m))) == 2
    }  # fmt: skip
    assert split == {False, True}
    # series shorter than three seasons that the test itself would pass
    assert any(len(y) < 3 * m and ref_passes(np.asarray(y, float), m, 1.645)[0] for m, y in CORPUS)


def test_autocorrelation_as_defined():
    rng = np.random.default_rng(0)
    for y in (rng.normal(10, 1, 50), rng.normal(0, 0.01, 40), np.arange(30) ** 2, [3, 1, 4, 1, 5, 9, 2, 6]):
        for k in (1, 2, 5, len(y) - 1, len(y), len(y) + 3):
            assert acf(y, k) == pytest.approx(ref_acf(y, k), abs=1e-12)
    assert acf(np.full(20, 4.0), 3) == 0.0


@pytest.mark.parametrize("m4_test", [False, True])
def test_is_seasonal_as_defined_on_every_edge(m4_test):
    for m, y in CORPUS:
        assert is_seasonal(y, m, m4_test) == ref_is_seasonal(y, m, m4_test), (m, len(y))
    assert not is_seasonal(np.arange(40.0), 1) and not is_seasonal(np.arange(40.0), 0)


def test_seasonal_indices_and_the_moving_average_as_defined():
    for m, y in CORPUS:
        y = np.asarray(y, dtype=float)
        if len(y) > m:
            np.testing.assert_allclose(centred_moving_average(y, m), ref_cma(y, m), rtol=1e-9, atol=1e-9)
        for multiplicative in (True, False) if (y > 0).all() else (False,):
            np.testing.assert_allclose(
                seasonal_indices(y, m, multiplicative), ref_indices(y, m, multiplicative), rtol=1e-9, atol=1e-9
            )
    assert seasonal_indices(np.arange(1.0, 30.0), 0).tolist() == [1.0]
    assert seasonal_indices(np.arange(1.0, 30.0), 1, multiplicative=False).tolist() == [0.0]


def test_detect_period_as_defined():
    rng = np.random.default_rng(5)
    cases = [y for _, y in CORPUS]
    for m in (4, 5, 7, 12, 24, 52):
        t = np.arange(8 * m)
        cases.append(50 + 10 * np.sin(2 * np.pi * t / m) + rng.normal(0, 1, t.size))  # positive
        cases.append(10 * np.sin(2 * np.pi * t / m) + rng.normal(0, 1, t.size))  # crosses zero
        for n in (2 * m + 2, 3 * m + 1, 3 * m + 5):  # differences just short of, at and past three seasons
            cases.append(10.0 + (np.arange(n) % m == 0))
        cases.append(np.cumsum(np.arange(6 * m) % m == m - 1).astype(float))  # from 0: differences of range 1
        cases.append(0.2 + 0.5 * (np.arange(6 * m) % m == 0) + rng.uniform(0, 0.05, 6 * m))  # within (0, 1)
    found = [detect_period(y) for y in cases]
    assert found == [ref_detect(y) for y in cases]
    assert {4, 5, 7, 12, 24, 52} <= set(found)


def test_seasonality_removes_restores_and_round_trips():
    for m, y in CORPUS:
        y = np.asarray(y, dtype=float)
        season = Seasonality.fit(y, m)
        assert season.multiplicative == bool((y > 0).all())
        np.testing.assert_allclose(season.indices, ref_indices(y, m, season.multiplicative), rtol=1e-9, atol=1e-9)
        assert season.active == bool(np.any(season.indices != (1.0 if season.multiplicative else 0.0)))
        adjusted = season.remove(y)
        f = season.indices[np.arange(len(y)) % season.m]
        np.testing.assert_allclose(adjusted, y / f if season.multiplicative else y - f, rtol=1e-12)
        np.testing.assert_allclose(season.restore(adjusted, start=0), y, rtol=1e-9, atol=1e-9)
        # after the series, and from any position (negative: before it)
        ahead = season.indices[np.arange(len(y), len(y) + 5) % season.m]
        expected = 2.0 * ahead if season.multiplicative else 2.0 + ahead
        np.testing.assert_allclose(season.restore(np.full(5, 2.0)), expected, rtol=1e-12)
        np.testing.assert_allclose(season.remove(y[3:], start=3), adjusted[3:], rtol=1e-12)
        np.testing.assert_allclose(season.factors(-2, 4), season.indices[np.arange(-2, 2) % season.m])
        back = Seasonality.from_dict(season.to_dict())
        assert (back.indices.tolist(), back.n, back.multiplicative) == (
            season.indices.tolist(),
            len(y),
            season.multiplicative,
        )


def test_float32_input_is_computed_in_float64():
    rng = np.random.default_rng(3)
    t = np.arange(260)
    y = 100.0 * np.exp(np.cumsum(rng.normal(0.002, 0.01, t.size)) + 0.3 * np.sin(2 * np.pi * t / 52))
    y32 = y.astype(np.float32)
    y64 = y32.astype(np.float64)
    assert acf(y32, 52) == acf(y64, 52)
    np.testing.assert_array_equal(seasonal_indices(y32, 52), seasonal_indices(y64, 52))
    season = Seasonality.fit(y32, 52)
    assert season.active and season.indices.dtype == np.float64
    np.testing.assert_array_equal(season.indices, Seasonality.fit(y64, 52).indices)
    assert season.remove(y32).dtype == np.float64
    np.testing.assert_array_equal(season.remove(y32), season.remove(y64))
    assert Seasonality(season.indices.astype(np.float32), t.size).indices.dtype == np.float64


def test_indices_given_without_a_kind_are_multiplicative():
    neutral = Seasonality(np.ones(4), 10)  # what a model keeps for a series it does not adjust
    assert neutral.multiplicative and not neutral.active
    y32 = np.arange(1.0, 11.0, dtype=np.float32)
    assert neutral.remove(y32).dtype == np.float64
    np.testing.assert_array_equal(neutral.remove(y32), np.arange(1.0, 11.0))
    np.testing.assert_array_equal(neutral.restore(np.full(3, 2.0)), np.full(3, 2.0))
