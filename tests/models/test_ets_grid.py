"""AutoETS's search grids (models/ets.py): every candidate is an admissible model (0 < alpha < 1,
0 <= beta <= alpha * MAX_BETA_RATIO, 0 <= gamma < 1 - alpha, phi within its range or 1), the coarse
grid is every combination of the documented values, and the fine grid around a fitted model holds
that model itself with neighbours on both sides of each parameter, within the same bounds."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tickcast.models.ets import (
    ALPHAS,
    BETA_RATIOS,
    GAMMA_RATIOS,
    MAX_BETA_RATIO,
    PHI_RANGE,
    PHIS,
    EtsParams,
    _grid,
    _refine,
)


def admissible(rows: np.ndarray) -> None:
    alpha, beta, phi, gamma = rows.T
    assert np.all((alpha > 0) & (alpha < 1))
    assert np.all((beta >= 0) & (beta <= MAX_BETA_RATIO * alpha + 1e-15))
    assert np.all((gamma >= 0) & (gamma < 1 - alpha))
    assert np.all(((phi >= PHI_RANGE[0]) & (phi <= PHI_RANGE[1])) | (phi == 1.0))


@pytest.mark.parametrize("trend,seasonal", list(itertools.product(("N", "A", "Ad"), (False, True))))
def test_the_coarse_grid_is_every_combination_of_the_documented_values(trend, seasonal):
    rows = _grid(trend, seasonal)
    betas = BETA_RATIOS if trend != "N" else [0.0]
    phis = PHIS if trend == "Ad" else [1.0]
    gammas = GAMMA_RATIOS if seasonal else [0.0]
    expected = [(a, r * a, p, g * (1 - a)) for a, r, p, g in itertools.product(ALPHAS, betas, phis, gammas)]
    assert rows.shape == (len(expected), 4)
    np.testing.assert_allclose(rows, expected, rtol=0, atol=1e-15)
    admissible(rows)


def test_the_coarse_grid_of_a_damped_seasonal_model_by_hand():
    rows = _grid("Ad", True)
    assert rows.shape == (11 * 4 * 4 * 3, 4)
    # alpha 0.97: gamma at most a quarter of what alpha leaves (0.03), never past it
    np.testing.assert_allclose(rows[-1], [0.97, 0.25 * 0.97, 0.98, 0.25 * 0.03])
    np.testing.assert_allclose(rows[0], [0.02, 0.005 * 0.02, 0.8, 0.005 * 0.98])


def params(alpha, beta=0.0, phi=1.0, gamma=0.0, trend="N", season="N") -> EtsParams:
    return EtsParams("A", trend, season, alpha, beta, phi, gamma, 0.0, 0.0, (), False, 1.0, 0.0)


def test_the_fine_grid_around_a_damped_seasonal_model_by_hand():
    rows = _refine(params(0.4, beta=0.04, phi=0.95, gamma=0.06, trend="Ad", season="A"))
    alphas = [0.3, 0.348, 0.4, 0.46, 0.52]  # x 0.75, 0.87, 1, 1.15, 1.3
    ratios = [0.05, 0.1, 0.18]  # beta / alpha x 0.5, 1, 1.8
    phis = [0.92, 0.95, 0.965]  # - 0.03, + 0, + 0.015
    gammas = [0.05, 0.1, 0.18]  # gamma / (1 - alpha) x 0.5, 1, 1.8
    expected = [(a, r * a, p, g * (1 - a)) for a, r, p, g in itertools.product(alphas, ratios, phis, gammas)]
    np.testing.assert_allclose(rows, expected, rtol=1e-12)
    assert any(np.allclose(row, [0.4, 0.04, 0.95, 0.06]) for row in rows)  # the fitted model itself
    admissible(rows)


def test_the_fine_grid_stays_within_the_bounds_at_their_edges():
    rows = _refine(params(0.95, beta=0.95 * 0.29, phi=0.97, gamma=0.04, trend="Ad", season="A"))
    admissible(rows)
    alpha, beta, phi, gamma = rows.T
    assert alpha.max() == 0.9999 and sorted(set(phi)) == pytest.approx([0.94, 0.97, 0.98])  # clipped
    assert sorted(set(np.round(beta / alpha, 12))) == [0.145, 0.29, MAX_BETA_RATIO]  # 0.29 x 1.8 capped at 0.3
    low = _refine(params(5e-5))
    assert low[:, 0].min() == 1e-4 and low.shape == (5, 4)
    damped_low = _refine(params(0.5, beta=0.05, phi=0.8, trend="Ad"))
    assert sorted(set(damped_low[:, 2])) == pytest.approx([0.8, 0.815])
    seasonal = _refine(params(0.1, gamma=0.89, season="A"))
    assert np.all(seasonal[:, 3] < 1 - seasonal[:, 0])  # gamma's ratio capped below 1


@pytest.mark.parametrize(
    "trend,season,size,columns_fixed",
    [("N", "N", 5, {1: 0.0, 2: 1.0, 3: 0.0}), ("A", "N", 15, {2: 1.0, 3: 0.0}), ("N", "A", 15, {1: 0.0, 2: 1.0})],
)
def test_the_fine_grid_varies_only_the_models_own_parameters(trend, season, size, columns_fixed):
    rows = _refine(
        params(0.3, beta=0.03 if trend != "N" else 0.0, gamma=0.1 if season == "A" else 0.0, trend=trend, season=season)
    )
    assert rows.shape == (size, 4)
    for column, value in columns_fixed.items():
        assert np.all(rows[:, column] == value)
    admissible(rows)
