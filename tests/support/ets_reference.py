"""An ETS recursion written out one scalar step at a time (no vectorisation, no responses), the
independent computation AutoETS's fits are checked against, and the seasonal series they use."""

from __future__ import annotations

import numpy as np

from tickcast.models.ets import EtsParams


def seasonal_series(n=72, m=12, seed=0, level=100.0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return level + 0.4 * t + 8 * np.sin(2 * np.pi * t / m) + rng.normal(0, 1.5, n)


def one_step_errors(y, p: EtsParams):
    """Hand-written ETS recursion, one scalar step at a time (no vectorisation, no responses)."""
    x = np.asarray(y, float) / p.c
    m = max(len(p.s0), 1)
    s = list(p.s0) if p.season == "A" else [0.0] * m
    fixed = np.asarray(p.s0) if p.season == "F" else None
    level, trend = p.l0, p.b0
    errors, mus = [], []
    for t, v in enumerate(x):
        seas = s[t % m] if p.season == "A" else 0.0
        base = level + p.phi * trend
        mu = base + seas
        if fixed is not None:
            f = fixed[t % m]
            mu_y = mu * f if p.multiplicative else mu + f
            z = v / f if p.multiplicative else v - f
            e_z = z - mu
            e = e_z * f if p.multiplicative else e_z
        else:
            mu_y, e_z, e = mu, v - mu, v - mu
        errors.append(e)
        mus.append(mu_y)
        level = base + p.alpha * e_z
        trend = p.phi * trend + p.beta * e_z
        if p.season == "A":
            s[t % m] = seas + p.gamma * e_z
    return np.array(errors), np.array(mus)
