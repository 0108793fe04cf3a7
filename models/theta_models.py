"""Theta models as state-space recursions (Fiorucci et al. 2016, "Models for optimising the theta
method and their relationship to state space models"), fitted for many series and many smoothing
parameters at once.

On the seasonally adjusted series x (the M3 practice: classical decomposition when the 90 %
autocorrelation test finds a season), with A_t, B_t the intercept and slope of the least-squares
line through x_0..x_t (updated recursively in the dynamic models, fixed from the whole series in
the static ones) and kappa = 1 - 1/theta:

    mu_t = l_{t-1} + kappa * (A_{t-1} (1-alpha)^t + B_{t-1} (1 - (1-alpha)^(t+1)) / alpha)
    l_t  = alpha x_t + (1 - alpha) l_{t-1},      l_{-1} = l0

Forecasts feed mu back in as the observation. Models: ``dotm`` (dynamic, theta optimised: the
"Dynamic Optimised Theta" statsforecast reports at 12.90 on M3), ``otm`` (static, optimised),
``dstm`` and ``stm`` (theta = 2, the classic method). Fitted by least squares on the one-step
errors from the fourth point on, as statsforecast does: the errors are affine in (l0, kappa) for a
given alpha, so those two are solved exactly and alpha is searched on a coarse then a fine grid.

Shape legend: S series, A alphas, T time steps, O origins, h steps ahead.
"""

from __future__ import annotations

import numpy as np

from .challenger import Challenger, size_chunks
from .seasonality import Seasonality

MODELS = ("dotm", "otm", "dstm", "stm")
ALPHA_RANGE = (0.1, 0.99)  # statsforecast's bounds
KAPPA_MAX = 1.0 - 1e-6  # theta >= 1 and finite
SKIP = 3  # the first one-step errors are not scored (the line is still unsettled)
# SHORT: a series of at most SKIP points has no scored error, so nothing to fit l0 and theta on
# (they came out 0 and 2, and the forecast of 100, 101 fell to 60, 35, 20): it gets theta = 1 (no
# line), the largest alpha and l0 = its first value, i.e. simple exponential smoothing that
# follows the last value, almost the naive forecast.
_COARSE = np.linspace(*ALPHA_RANGE, 30)
CHUNK, CHUNK_ELEMENTS = 256, 2**20  # series fitted at once: at most CHUNK, and (T, S, alphas) within this


def _lines(x: np.ndarray, dynamic: bool, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Intercept A_t and slope B_t of x (S, T), (S, T) each; static models use the least-squares
    line of each series' first n points (its length) at every t."""
    S, T = x.shape
    A, B = np.empty((S, T)), np.empty((S, T))
    t = np.arange(1, T + 1, dtype=np.float64)
    if dynamic:
        # The recursive updates (``_run``, one point at a time) give the least-squares line of
        # x_0..x_i at every i: here from running sums, on x less its first value (the same line,
        # shifted: the sums stay small, and so their rounding).
        x0 = x[:, :1]
        d = x - x0
        mean_d = np.cumsum(d, axis=1) / t
        wavg = np.cumsum(d * t, axis=1) / t
        B[:, 0] = 0.0
        B[:, 1:] = 6.0 * (2.0 * wavg[:, 1:] - (t[1:] + 1.0) * mean_d[:, 1:]) / (t[1:] * t[1:] - 1.0)
        A[:] = mean_d + x0 - B * (t + 1.0) / 2.0
        return A, B
    mask = t[None, :] <= n[:, None]
    mean = np.sum(np.where(mask, x, 0.0), axis=1) / n
    wavg = np.sum(np.where(mask, x * t, 0.0), axis=1) / n
    slope = np.where(n > 1, 6.0 * (2.0 * wavg - (n + 1.0) * mean) / np.maximum(n * n - 1.0, 1.0), 0.0)
    intercept = mean - (n + 1.0) * slope / 2.0
    A[:] = intercept[:, None]
    B[:] = slope[:, None]
    return A, B


def _sse(x, n, alphas, dynamic: bool, optimise_theta: bool):
    """For alphas (S, A): SSE (S, A) of the one-step errors with the best (l0, kappa), and them.

    Only the level path (with l0 = 0) is a recursion; the weights of l0 and kappa in each one-step
    forecast have closed forms, so the sums over time are one pass each over (T, S, A) arrays."""
    S, T = x.shape
    A_, B_ = _lines(x, dynamic, n)
    decay = 1.0 - alphas  # (S, A)
    xt = np.ascontiguousarray(x.T)  # (T, S)
    P = np.empty((T, *alphas.shape))  # P[t]: the level path with l0 = 0 before point t
    P[0] = 0.0
    for t in range(1, T):
        np.multiply(decay, P[t - 1], out=P[t])
        P[t] += alphas * xt[t - 1, :, None]
    # c (T-1, S, A): decay^t, the weight of l0 in l_{t-1} (a running product: powers cost 2x more)
    c = np.cumprod(np.broadcast_to(decay, (T - 1, *decay.shape)), axis=0)
    d = A_.T[:-1, :, None] * c + B_.T[:-1, :, None] * (1.0 - c * decay) / alphas
    r = xt[1:, :, None] - P[1:]
    i = np.arange(1, T, dtype=np.float64)
    w = ((i[:, None] >= SKIP) & (i[:, None] < n[None, :])).astype(np.float64)[:, :, None]  # (T-1, S, 1) scored
    wr, wc, wd = w * r, w * c, w * d
    s_rr, s_rc, s_rd = (np.einsum("tsa,tsa->sa", wr, v) for v in (r, c, d))
    s_cc, s_cd, s_dd = np.einsum("tsa,tsa->sa", wc, c), np.einsum("tsa,tsa->sa", wc, d), np.einsum("tsa,tsa->sa", wd, d)
    s_cc = s_cc + 1e-12
    if optimise_theta:
        det = s_cc * s_dd - s_cd**2
        ok = det > 1e-12 * (s_cc * s_dd + 1e-300)
        kappa = np.where(ok, (s_cc * s_rd - s_cd * s_rc) / np.where(ok, det, 1.0), 0.5)
        kappa = np.clip(kappa, 0.0, KAPPA_MAX)
    else:
        kappa = np.full_like(alphas, 0.5)
    l0 = (s_rc - kappa * s_cd) / s_cc
    sse = s_rr - 2 * l0 * s_rc - 2 * kappa * s_rd + l0**2 * s_cc + 2 * l0 * kappa * s_cd + kappa**2 * s_dd
    return np.maximum(sse, 0.0), l0, kappa


def fit_theta(xs: list[np.ndarray], model: str = "dotm") -> list[dict]:
    """Fit one theta model to each (seasonally adjusted) series: dicts with alpha, theta, l0
    (and, for static models, the line's intercept and slope)."""
    if model not in MODELS:
        raise ValueError(f"theta model must be one of {MODELS}, got {model!r}")
    dynamic, optimise = model in ("dotm", "dstm"), model in ("dotm", "otm")
    out: list[dict] = [{} for _ in xs]
    for idx in size_chunks([x.size for x in xs], _COARSE.size, CHUNK, CHUNK_ELEMENTS):
        n = np.array([xs[i].size for i in idx], dtype=np.float64)
        T = int(n.max())
        x = np.array([np.pad(xs[i], (0, T - xs[i].size), mode="edge") for i in idx])
        alphas = np.broadcast_to(_COARSE, (len(idx), _COARSE.size)).copy()
        sse, _, _ = _sse(x, n, alphas, dynamic, optimise)
        best = alphas[np.arange(len(idx)), np.argmin(sse, axis=1)]
        fine = np.clip(best[:, None] + np.linspace(-0.03, 0.03, 13)[None, :], *ALPHA_RANGE)
        sse, l0, kappa = _sse(x, n, fine, dynamic, optimise)
        j = np.argmin(sse, axis=1)
        A_, B_ = _lines(x, False, n)
        for r, i in enumerate(idx):
            k = float(kappa[r, j[r]])
            out[i] = {
                "model": model,
                "alpha": float(fine[r, j[r]]),
                "theta": float(1.0 / (1.0 - k)),
                "l0": float(l0[r, j[r]]),
                "intercept": float(A_[r, 0]),
                "slope": float(B_[r, 0]),
            }
            if n[r] <= SKIP:  # no one-step error to fit on: see SHORT
                out[i].update(alpha=ALPHA_RANGE[1], theta=1.0, l0=float(xs[i][0]))
    return out


def _run(x: np.ndarray, p: dict, anchor: dict | None) -> tuple[int, np.ndarray]:
    """The states after each point of x (n, 4: level, running mean, intercept, slope), one scalar
    step at a time (the same arithmetic as ``_lines``, in the same order), from the state
    ``anchor`` gives x[0] (None: the fitted l0 at position 0). Returns the start position too."""
    dynamic = p["model"] in ("dotm", "dstm")
    alpha = p["alpha"]
    decay = 1.0 - alpha
    if anchor is None:
        a, lv, my, A, B = 0, float(p["l0"]), 0.0, float(p["intercept"]), float(p["slope"])
    else:
        a, lv, my = int(anchor["position"]), float(anchor["level"]), float(anchor["mean"])
        A, B = float(anchor["intercept"]), float(anchor["slope"])
    out = []  # Python floats and a list: NumPy's arithmetic, several times faster per step
    for i, v in enumerate(x.tolist()):
        j = a + i  # position of this point
        if j == 0:
            my = v
            if dynamic:
                A, B = v, 0.0
        else:
            new_mean = (j * my + v) / (j + 1)
            if dynamic:
                B = ((j - 1) * B + 6.0 * (v - my) / (j + 1)) / (j + 2)
                A = new_mean - B * (j + 2) / 2.0
            my = new_mean
        lv = alpha * v + decay * lv
        out.append((lv, my, A, B))
    return a, np.array(out, dtype=np.float64).reshape(len(out), 4)


def advance(x: np.ndarray, p: dict, anchor: dict | None, k: int) -> dict:
    """The start state (an anchor for :func:`filter_forecasts`) of the adjusted series x without
    its first k points: the recursion run over those k points, parameters fixed."""
    if k == 0:
        return dict(anchor) if anchor is not None else _anchor_of(p)
    a, states = _run(np.asarray(x, dtype=np.float64)[:k], p, anchor)
    lv, my, A, B = (float(v) for v in states[k - 1])
    return {"position": a + k, "level": lv, "mean": my, "intercept": A, "slope": B}


def _anchor_of(p: dict) -> dict:
    return {"position": 0, "level": p["l0"], "mean": 0.0, "intercept": p["intercept"], "slope": p["slope"]}


def filter_forecasts(x: np.ndarray, p: dict, origins: np.ndarray, h: int, anchor: dict | None = None) -> np.ndarray:
    """Forecasts (O, h) of the adjusted series x from the histories x[:t], t in origins (>= 1),
    with p's parameters fixed (static models keep the line they were fitted with); with
    ``anchor``, x[0] starts from the state and position it gives (see :func:`advance`)."""
    x = np.asarray(x, dtype=np.float64)
    dynamic = p["model"] in ("dotm", "dstm")
    alpha, kappa = p["alpha"], 1.0 - 1.0 / p["theta"]
    decay = 1.0 - alpha
    pos, states = _run(x, p, anchor)
    o = np.asarray(origins, dtype=np.int64)
    lv, my, a, b = (states[o - 1, c].copy() for c in range(4))
    F = np.empty((o.size, h))
    for j in range(h):
        k = (pos + o + j).astype(np.float64)  # position of the forecast point
        mu = lv + kappa * (a * decay**k + b * (1.0 - decay ** (k + 1)) / alpha)
        F[:, j] = mu
        lv = alpha * mu + decay * lv
        new_mean = (k * my + mu) / (k + 1)
        if dynamic:
            b = ((k - 1) * b + 6.0 * (mu - my) / (k + 1)) / (k + 2)
            a = new_mean - b * (k + 2) / 2.0
        my = new_mean
    return F


class Theta(Challenger):
    """A theta model on the seasonally adjusted series (classical decomposition when the 90 %
    autocorrelation test at the period passes; multiplicative for positive series), forecasts
    reseasonalised. ``model``: "dotm" (default), "otm", "dstm" or "stm" (the classic method).
    Fitted attributes beyond the contract: ``params_`` (alpha, theta, l0 per series)."""

    kind = "theta"

    def _check_settings(self, settings: dict) -> dict:
        model = settings.pop("model", "dotm")
        if settings:
            raise ValueError(f"Theta has no setting(s) {sorted(settings)}")
        if model not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {model!r}")
        return {"model": model}

    def _fit_states(self, ys, ms):
        seasons = [Seasonality.fit(y, m) for y, m in zip(ys, ms)]
        fits = fit_theta([s.remove(y) for s, y in zip(seasons, ys)], self.settings["model"])
        return [{**f, "season": s.to_dict()} for f, s in zip(fits, seasons)]

    def _forecasts(self, y, state, m, origins, h):
        season = Seasonality.from_dict(state["season"])
        anchor = state.get("anchor")
        start = int(anchor["position"]) if anchor is not None else 0
        x = season.remove(y, start)
        if start + x.size < 2:
            return np.repeat(y[np.asarray(origins) - 1][:, None], h, axis=1)
        F = filter_forecasts(x, state, origins, h, anchor)
        if not season.active:
            return F
        f = season.indices[(start + np.asarray(origins)[:, None] + np.arange(h)[None, :]) % season.m]
        return F * f if season.multiplicative else F + f

    def _advance(self, y, state, m, k):
        season = Seasonality.from_dict(state["season"])
        anchor = state.get("anchor")
        x = season.remove(y, int(anchor["position"]) if anchor is not None else 0)
        return {**state, "anchor": advance(x, state, anchor, k)}

    @property
    def params_(self) -> list[dict]:
        return [{k: v for k, v in s.items() if k not in ("season", "anchor")} for s in self._states]


__all__ = ["Theta", "fit_theta", "filter_forecasts", "advance", "MODELS"]
