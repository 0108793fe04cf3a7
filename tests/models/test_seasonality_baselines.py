"""Seasonal adjustment and the M3 benchmarks (Naive2, SES, Theta) on cases known by construction."""

import numpy as np
import pytest

from tickcast.models import RNNForecaster, Theta, naive2, ses, theta
from tickcast.models.seasonality import (
    Seasonality,
    _acf_test,
    centred_moving_average,
    detect_period,
    is_seasonal,
    seasonal_indices,
)

SEASON = np.array([0.8, 0.85, 0.95, 1.0, 1.1, 1.2, 1.25, 1.15, 1.05, 0.95, 0.9, 0.8])
SEASON = SEASON / SEASON.mean()


def _monthly(n=96, trend=0.0, noise=0.01, seed=0):
    t = np.arange(n)
    rng = np.random.default_rng(seed)
    return 100.0 * (1 + trend * t) * SEASON[t % 12] * np.exp(rng.normal(0, noise, n))


def test_multiplicative_indices_of_a_known_seasonal_series():
    y = _monthly(trend=0.01)
    assert is_seasonal(y, 12)
    np.testing.assert_allclose(seasonal_indices(y, 12), SEASON, rtol=0.02)
    season = Seasonality.fit(y, 12)
    adjusted = season.remove(y)
    assert np.std(np.diff(np.log(adjusted))) < 0.25 * np.std(np.diff(np.log(y)))
    np.testing.assert_allclose(season.restore(adjusted, start=0), y, rtol=1e-12)
    # positions continue after the series: the next value gets index len(y) % 12
    np.testing.assert_allclose(season.restore(np.ones(3)), season.indices[[0, 1, 2]])


def test_additive_indices_for_a_series_with_negative_values():
    t = np.arange(120)
    y = 5.0 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(1).normal(0, 0.3, 120) - 2.0
    season = Seasonality.fit(y, 12)
    assert not season.multiplicative and season.active
    assert abs(season.indices.sum()) < 1e-9
    np.testing.assert_allclose(season.indices, 5.0 * np.sin(2 * np.pi * np.arange(12) / 12), atol=0.4)


def test_no_season_is_found_where_there_is_none():
    rng = np.random.default_rng(2)
    walk = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 500)))
    assert detect_period(walk) == 1
    assert not Seasonality.fit(rng.normal(10, 1, 200), 1).active
    assert not is_seasonal(_monthly(n=30), 12)  # under three seasons: too little to tell
    assert not is_seasonal(np.full(60, 3.0), 12)


@pytest.mark.parametrize("period", [4, 12])
def test_detect_period_finds_the_season(period):
    t = np.arange(20 * period)
    y = 50 + 10 * np.sin(2 * np.pi * t / period) + np.random.default_rng(period).normal(0, 1, t.size)
    assert detect_period(y) == period


def test_naive2_repeats_the_adjusted_last_value_with_the_season():
    y = _monthly(noise=0.0)
    f = naive2(y, 18, 12)
    season = Seasonality.fit(y, 12)
    expected = season.remove(y)[-1] * season.indices[np.arange(96, 114) % 12]
    np.testing.assert_allclose(f, expected, rtol=1e-12)
    np.testing.assert_allclose(f[:12], y[-12:], rtol=0.01)  # a clean season comes back as itself
    np.testing.assert_array_equal(naive2(y, 5, 1), np.full(5, y[-1]))


def test_ses_tracks_a_level_and_theta_adds_half_the_trend():
    flat = np.r_[np.full(30, 10.0), np.full(30, 20.0)]
    level, alpha = ses(flat, 3)
    assert alpha > 0.9 and level == pytest.approx(np.full(3, 20.0), rel=1e-3)
    t = np.arange(40.0)
    line = 5.0 + 2.0 * t
    f = theta(line, 6)
    # SES on a straight line follows it (alpha -> 1, level = last value): Theta = last + b/2 * k
    np.testing.assert_allclose(f, line[-1] + 1.0 * np.arange(1, 7), rtol=2e-3)
    np.testing.assert_allclose(theta(np.full(20, 7.0), 4), 7.0)


def test_theta_on_a_seasonal_series_keeps_the_season():
    y = _monthly(trend=0.005, noise=0.0)
    f = theta(y, 12, 12)
    season = Seasonality.fit(y, 12)
    adjusted = f / season.indices[np.arange(96, 108) % 12]
    assert np.all(np.diff(adjusted) > 0)  # the trend continues on the adjusted scale
    assert np.corrcoef(f, y[-12:])[0, 1] > 0.95  # and the season is put back


WEEKS = np.arange(600)


def _weekly_walk(seed=0, season=0.0):
    """600 weeks of a log random walk with a drift of 0.2 % a week (a price, or a macro series),
    times a yearly cycle of amplitude ``season`` (log scale)."""
    rng = np.random.default_rng(seed)
    return 100.0 * np.exp(np.cumsum(0.002 + rng.normal(0, 0.02, WEEKS.size)) + season * np.sin(2 * np.pi * WEEKS / 52))


def test_a_long_period_must_show_beyond_the_trend():
    walk = _weekly_walk()
    # the levels' autocorrelation at lag 52 is the trend's: the M4 test alone finds a season ...
    assert is_seasonal(walk, 52, m4_test=True)
    # ... that the series detrended by its centred moving average does not have
    assert not is_seasonal(walk, 52)
    assert not Seasonality.fit(walk, 52).active
    assert np.all(seasonal_indices(walk, 52) == 1.0)
    # the M4 benchmarks keep their definition: Naive2 and Theta adjust the walk by the M4 test
    m4 = Seasonality.fit(walk, 52, m4_test=True)
    assert m4.active
    np.testing.assert_allclose(naive2(walk, 13, 52), m4.restore(np.full(13, m4.remove(walk)[-1])), rtol=1e-12)
    assert not np.allclose(theta(walk, 13, 52), theta(walk, 13, 1))


def test_a_real_long_season_passes_both_tests():
    y = _weekly_walk(season=0.15)
    assert is_seasonal(y, 52) and is_seasonal(y, 52, m4_test=True)
    season = Seasonality.fit(y, 52)
    assert season.multiplicative and season.active
    cycle = 0.15 * np.sin(2 * np.pi * np.arange(52) / 52)
    np.testing.assert_allclose(np.log(season.indices), cycle - cycle.mean(), atol=0.05)


def test_the_detrended_test_of_a_series_with_values_at_or_below_zero_is_on_differences():
    rng = np.random.default_rng(1)
    walk = np.cumsum(0.2 + rng.normal(0, 4, WEEKS.size)) - 60  # crosses zero: additive indices
    assert walk.min() < 0 < walk.max()
    assert is_seasonal(walk, 52, m4_test=True) and not is_seasonal(walk, 52)
    seasonal = walk + 15 * np.sin(2 * np.pi * WEEKS / 52)
    assert is_seasonal(seasonal, 52)
    season = Seasonality.fit(seasonal, 52)
    assert not season.multiplicative and season.active
    assert np.corrcoef(season.indices, np.sin(2 * np.pi * np.arange(52) / 52))[0, 1] > 0.9


def test_other_periods_keep_the_m4_test():
    # the same kind of walk passes at lags 24 and 26 on its levels and fails detrended; only the
    # yearly period of weekly data takes the second test (the hourly week's daily cycle would fail it)
    walk = _weekly_walk()[:300]
    assert is_seasonal(walk, 24) and is_seasonal(walk, 24, m4_test=True)
    assert Seasonality.fit(walk, 24).active
    assert is_seasonal(_weekly_walk(), 26)


def test_the_hourly_week_keeps_the_m4_test():
    rng = np.random.default_rng(4)
    hours = np.arange(700)
    day = np.sin(2 * np.pi * hours / 24)
    saturday_sunday = np.where((hours // 24) % 7 >= 5, -0.3, 0.0)
    y = 100.0 * np.exp(0.6 * day + saturday_sunday + np.cumsum(rng.normal(0, 0.005, hours.size)))
    # a strong daily cycle: on the detrended series the test's limit at lag 168 is out of reach
    cma = centred_moving_average(y, 168)
    inside = ~np.isnan(cma)
    assert _acf_test(np.log(y[inside] / cma[inside]), 168, 1.645) is None
    assert is_seasonal(y, 168)
    season = Seasonality.fit(y, 168)
    assert season.active
    weekend, weekdays = np.log(season.indices[120:]).mean(), np.log(season.indices[:120]).mean()
    assert weekend < weekdays - 0.2


def test_the_models_leave_a_walk_unadjusted_and_keep_a_real_season():
    walk, seasonal = _weekly_walk(), _weekly_walk(season=0.15)
    assert RNNForecaster(season_length=52, epochs=2, ensemble=1).fit(walk).season_length_ == 1
    assert RNNForecaster(season_length=52, epochs=2, ensemble=1).fit(seasonal).season_length_ == 52
    np.testing.assert_allclose(
        Theta(season_length=52).fit(walk).predict(13), Theta(season_length=1).fit(walk).predict(13), rtol=1e-12
    )
    assert not np.allclose(
        Theta(season_length=52).fit(seasonal).predict(13), Theta(season_length=1).fit(seasonal).predict(13)
    )
