"""Synthetic weekly series for the group-fit benchmarks (NumPy only, so that a process measuring its
own peak memory carries no other library)."""

from __future__ import annotations

import numpy as np


def weekly_series(n_series: int, n_points: int = 2600, seed: int = 0) -> list[np.ndarray]:
    """Log-scale series with drift, a yearly (52-week) season, spells of volatility and momentum
    (weekly changes AR(1), phi 0.3-0.6: something a network can learn beyond the random walk)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_points)
    out = []
    for _ in range(n_series):
        vol = 0.01 + 0.02 * np.abs(np.sin(2 * np.pi * t / rng.uniform(200, 800)))
        e, phi = rng.normal(0.0, vol), rng.uniform(0.3, 0.6)
        d = np.zeros(n_points)
        for i in range(1, n_points):
            d[i] = phi * d[i - 1] + e[i]
        season = rng.uniform(0.02, 0.15) * np.sin(2 * np.pi * t / 52 + rng.uniform(0, 2 * np.pi))
        out.append(rng.uniform(10, 1000) * np.exp(np.cumsum(d + 0.0005) + season))
    return out
