"""The theta models written out from their definition (Fiorucci et al. 2016), for the tests:
least-squares lines by np.polyfit, forecasts fed back one step at a time."""

from __future__ import annotations

import numpy as np

DYNAMIC = {"dotm": True, "dstm": True, "otm": False, "stm": False}


def line(x):
    """Intercept and slope of the least-squares line through x at abscissas 1..n."""
    if x.size == 1:
        return float(x[0]), 0.0
    slope, at_zero = np.polyfit(np.arange(1, x.size + 1, dtype=np.float64), x, 1)
    return float(at_zero), float(slope)


def reference_forecasts(x, p, origin, h):
    """Forecasts of x from x[:origin]: each forecast joins the history as its next value (the
    dynamic lines are refitted on it; the static models keep the line they were fitted with)."""
    model, alpha, kappa = p["model"], p["alpha"], 1 - 1 / p["theta"]
    hist = list(x[:origin])
    level = p["l0"]
    for v in hist:
        level = alpha * v + (1 - alpha) * level
    out = []
    for _ in range(h):
        t = len(hist)
        A, B = line(np.array(hist)) if DYNAMIC[model] else (p["intercept"], p["slope"])
        mu = level + kappa * (A * (1 - alpha) ** t + B * (1 - (1 - alpha) ** (t + 1)) / alpha)
        out.append(mu)
        hist.append(mu)
        level = alpha * mu + (1 - alpha) * level
    return np.array(out)
