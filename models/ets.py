"""Exponential smoothing state-space models (ETS, Hyndman et al. 2002, 2008) chosen by AICc,
fitted for many series and many parameter candidates at once.

Shape legend: S series (a chunk), C parameter candidates, R = 3 channels (the data and the
responses to a unit initial level and a unit initial trend), T time steps, m season length.

The family: error A (additive) or M (multiplicative, positive series only) x trend N (none), A
(additive) or Ad (additive damped) x season N (none), A (additive seasonal states) or F (fixed
classical seasonal indices: multiplicative for positive series, else additive; an ETS(., ., M)
with gamma = 0, i.e. the M3 practice of deseasonalising, and what statsforecast does for m > 24).
Written in error-correction form, the state updates are the same for both error types:

    mu_t = l + phi b + s_{t-m}                       one-step forecast
    l_t  = l + phi b + alpha e_t,   e_t = y_t - mu_t
    b_t  = phi b + beta e_t
    s_t  = s_{t-m} + gamma e_t

so one recursion gives both likelihoods (sigma concentrated out, constants dropped):
    A: n log(sum e_t^2)        M: n log(sum (e_t / mu_t)^2) + 2 sum log mu_t
and AICc = lik + 2k + 2k(k+1)/(n-k-1), k counting the smoothing parameters, the initial states
(level, trend, m-1 seasonal) and sigma.

Estimation (maximum likelihood, concentrated): for fixed smoothing parameters the one-step
forecasts are affine in the initial level and trend (the responses to unit initial states run
through the same recursion with zero data), so their best values are a weighted least-squares
solution: exact for error A; for error M one reweighting step with weights 1/mu_t^2. The
smoothing parameters are searched on a grid (every candidate of every model for every series of
a chunk in one vectorised recursion), then refined around the winner on a finer grid. Initial
seasonal states come from the classical decomposition of the whole series.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from .challenger import Challenger, size_chunks
from .seasonality import centred_moving_average
from .validation import continues_validation

# Seasonal states are kept for m up to this; longer seasons use fixed indices only (statsforecast
# does the same above 24: a season of 52 or 168 states is too many to estimate).
MAX_STATE_SEASON = 24
# Series fitted together in one vectorised recursion: at most CHUNK, and fewer when their
# (T, S, C) arrays would pass CHUNK_ELEMENTS (C: the largest model's candidates).
CHUNK = 24
CHUNK_ELEMENTS = 2**22  # 32 MB per float64 array: within the training processes' malloc reuse (MMAP_THRESHOLD)

ALPHAS = np.array([0.02, 0.05, 0.1, 0.16, 0.23, 0.32, 0.42, 0.55, 0.7, 0.85, 0.97])
BETA_RATIOS = np.array([0.005, 0.03, 0.1, 0.25])  # beta = ratio * alpha (0 < beta < alpha)
# The trend's smoothing is kept at most this share of the level's: on short series the exact
# likelihood optimum is often beta ~ alpha ~ 1 (the trend follows the last change), which fits
# the past and extrapolates wildly (M3 yearly: sMAPE 17.6 against 15.3 for small beta).
MAX_BETA_RATIO = 0.3
PHIS = np.array([0.8, 0.88, 0.94, 0.98])
GAMMA_RATIOS = np.array([0.005, 0.05, 0.25])  # gamma = ratio * (1 - alpha)
PHI_RANGE = (0.8, 0.98)


@dataclass(frozen=True)
class EtsParams:
    """A fitted model of one series, in units of y divided by ``c`` (the series' mean |y|)."""

    error: str  # "A" or "M"
    trend: str  # "N", "A" or "Ad"
    season: str  # "N", "A" (states) or "F" (fixed indices)
    alpha: float
    beta: float
    phi: float
    gamma: float
    l0: float
    b0: float
    s0: tuple  # (m,) initial seasonal states (A) or fixed indices (F), position 0 = y[0]; () for N
    multiplicative: bool  # F: indices multiply (positive series) or add
    c: float
    aicc: float

    @property
    def name(self) -> str:
        trend = "Ad" if self.trend == "Ad" else self.trend
        season = {"N": "N", "A": "A", "F": "M" if self.multiplicative else "A"}[self.season]
        return f"ETS({self.error},{trend},{season}{'*' if self.season == 'F' else ''})"

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["s0"] = [float(v) for v in self.s0]
        d["aicc"] = self.aicc if np.isfinite(self.aicc) else None  # JSON has no infinity
        return d

    @classmethod
    def from_dict(cls, d: dict) -> EtsParams:
        aicc = np.inf if d["aicc"] is None else float(d["aicc"])
        return cls(**{**d, "s0": tuple(float(v) for v in d["s0"]), "aicc": aicc})


# ---------------------------------------------------------------------------- candidates
def _grid(trend: str, seasonal: bool) -> np.ndarray:
    """Candidates (C, 4): alpha, beta, phi, gamma."""
    betas = BETA_RATIOS if trend != "N" else np.array([0.0])
    phis = PHIS if trend == "Ad" else np.array([1.0])
    gammas = GAMMA_RATIOS if seasonal else np.array([0.0])
    rows = []
    for a, br, p, gr in itertools.product(ALPHAS, betas, phis, gammas):
        rows.append((a, br * a, p, gr * (1.0 - a)))
    return np.array(rows)


def _refine(p: EtsParams) -> np.ndarray:
    """A finer grid (C, 4) around a fitted model's smoothing parameters."""
    a = np.clip(p.alpha * np.array([0.75, 0.87, 1.0, 1.15, 1.3]), 1e-4, 0.9999)
    br = (p.beta / p.alpha) * np.array([0.5, 1.0, 1.8]) if p.trend != "N" else np.array([0.0])
    ph = np.clip(p.phi + np.array([-0.03, 0.0, 0.015]), *PHI_RANGE) if p.trend == "Ad" else np.array([1.0])
    gr = (p.gamma / (1 - p.alpha)) * np.array([0.5, 1.0, 1.8]) if p.season == "A" else np.array([0.0])
    grid = itertools.product(a, br, ph, gr)
    rows = [(x, min(r, MAX_BETA_RATIO) * x, f, min(g, 0.999) * (1 - x)) for x, r, f, g in grid]
    return np.array(rows)


# ---------------------------------------------------------------------------- recursions
# Arrays are time-major, (T, S, C): the recursion writes one contiguous (S, C) slice per step and
# every sum over time is one pass (``np.einsum``) over arrays that are never copied. A likelihood
# pass allocates two such arrays and reuses them; it never builds the dozen temporaries of the
# same size that the formulas suggest, and chunks are sized so that those two stay small
# (``CHUNK_ELEMENTS``): 3-5x faster fits (bench/results/challengers.md).
def _responses(z: np.ndarray, cand: np.ndarray, s0: np.ndarray | None, m: int, trend: bool):
    """One-step forecasts MU (T, S, C) of the data z (S, T) from zero initial level and trend
    (and seasonal states s0 (S, m) if given), and the responses RESP (2, T, S', C) of the same
    recursion to a unit initial level (RESP[0]) and a unit initial trend (RESP[1]) with no data;
    S' = 1 when the candidates (S or 1, C, 4) are shared by every series. ``trend``: False when
    every candidate has beta = 0 and phi = 1 (then the trend stays 0 and its updates are skipped,
    with the same results)."""
    S, T = z.shape
    zt = np.ascontiguousarray(z.T)[:, :, None]  # (T, S, 1)
    MU = _recursion(zt, cand, s0, m, trend, np.zeros((S, cand.shape[1])), np.zeros((S, cand.shape[1])))
    Sr = cand.shape[0]
    lv = np.zeros((2, Sr, cand.shape[1]))
    b = np.zeros((2, Sr, cand.shape[1]))
    lv[0], b[1] = 1.0, 1.0
    R = _recursion(None, cand[None], None if s0 is None else np.zeros((2, Sr, m)), m, trend, lv, b, T)
    return MU, np.ascontiguousarray(R.transpose(1, 0, 2, 3))  # (2, T, S', C)


def _recursion(zt, cand, s0, m, trend, lv, b, T=None):
    """The error-correction recursion for states of shape (..., C): one-step forecasts (T, ..., C)
    of the data zt (T, ..., 1), or of no data (zt None: T steps of zero input)."""
    T = zt.shape[0] if zt is not None else T
    alpha, beta, phi, gamma = (cand[..., i] for i in range(4))  # (..., C)
    MU = np.empty((T, *lv.shape))
    e = np.empty(lv.shape)
    tmp = np.empty(lv.shape)
    pb = np.zeros(lv.shape)
    if s0 is not None:
        H = np.zeros((T + m, *lv.shape))  # seasonal ring: read H[t], write H[t + m]
        H[:m] = np.moveaxis(s0, -1, 0)[..., None]
    for t in range(T):
        mu = MU[t]
        if trend:
            np.multiply(phi, b, out=pb)
        base = tmp if s0 is not None else mu  # the level and damped trend
        np.add(lv, pb, out=base)
        if s0 is not None:
            np.add(base, H[t], out=mu)
        if zt is None:
            np.negative(mu, out=e)
        else:
            np.subtract(zt[t], mu, out=e)
        np.multiply(alpha, e, out=lv)
        lv += base
        if trend:
            np.multiply(beta, e, out=b)
            b += pb
        if s0 is not None:
            np.multiply(gamma, e, out=H[t + m])
            H[t + m] += H[t]
    return MU


def _solve_initial(r, a, c, w, trend: bool):
    """Weighted least squares for (l0, b0): minimise sum_t w (r - l0 a - b0 c)^2. r (T, S, C),
    a and c (T, S or 1, C), w (T, S, C or 1); ``trend`` False for a model without a trend (b0 =
    0). Returns l0, b0 (S, C). The ridge keeps the 2x2 determinant positive (Cauchy-Schwarz
    makes it >= 0 without), so a series the recursion cannot tell from zero gets (0, 0)."""
    saa = np.einsum("tsc,tsc,tsc->sc", w, a, a)
    sra = np.einsum("tsc,tsc,tsc->sc", w, r, a)
    if not trend:
        return sra / (saa + 1e-10 * (saa + 1.0)), np.zeros_like(sra)
    sac = np.einsum("tsc,tsc,tsc->sc", w, a, c)
    scc = np.einsum("tsc,tsc,tsc->sc", w, c, c)
    src = np.einsum("tsc,tsc,tsc->sc", w, r, c)
    ridge = 1e-10 * (saa + scc + 1.0)
    det = (saa + ridge) * (scc + ridge) - sac**2
    return (sra * (scc + ridge) - src * sac) / det, (src * (saa + ridge) - sra * sac) / det


def _subtract_states(resid, l0, a, b0, c, tmp):
    """resid -= l0 a + b0 c, in place (tmp: scratch of resid's shape)."""
    np.multiply(a, l0, out=tmp)
    resid -= tmp
    if np.any(b0):
        np.multiply(c, b0, out=tmp)
        resid -= tmp


def _likelihoods(MU, RESP, z, mask, scale, positive, trend, n):
    """For one pass: A- and M-error likelihoods (S, C) and their initial states. MU (T, S, C) is
    used as scratch (its values are lost).

    z (S, T) data the recursion saw; the series in its own (normalised) units is
    ``y = z * scale + offset`` and so are forecasts (fixed multiplicative indices: scale; fixed
    additive: offset; otherwise scale 1, offset 0). The offset is not needed: the A error's
    likelihood does not depend on it, and the M error's is kept for positive series only, whose
    fixed indices multiply."""
    zt = np.ascontiguousarray(z.T)[:, :, None]  # (T, S, 1)
    plain = not np.any(scale != 1.0)
    full = bool(np.all(mask > 0))
    a, c = RESP[0], RESP[1]
    resid = np.subtract(zt, MU, out=MU)  # r: the data less the forecasts from zero initial states
    wA = np.ascontiguousarray((mask * scale**2).T)[:, :, None]  # (T, S, 1)
    l0, b0 = _solve_initial(resid, a, c, wA, trend)
    tmp = np.empty_like(resid)
    _subtract_states(resid, l0, a, b0, c, tmp)  # the residuals on the recursion's scale
    sse = np.einsum("tsc,tsc,tsc->sc", wA, resid, resid)
    likA = n[:, None] * np.log(np.maximum(sse, 1e-300))
    out = {"A": (likA, l0, b0)}
    if not positive.any():
        return out
    # M error: the initial states reweighted by 1 / mu^2 (the fitted forecasts, in the series'
    # units), then the likelihood; inf where a forecast is not positive. Only positive series
    # keep an M likelihood, and their fixed indices multiply (offset 0): mu_y = (z - resid) scale.
    maskt = None if full else np.ascontiguousarray(mask.T)[:, :, None]
    st = None if plain else np.ascontiguousarray(scale.T)[:, :, None]

    def forecasts_into(out):
        np.subtract(zt, resid, out=out)
        if not plain:
            out *= st
        return out

    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        w = forecasts_into(tmp)
        np.maximum(w, 1e-12, out=w)
        np.square(w, out=w)
        np.reciprocal(w, out=w)
        w *= wA  # zero outside the mask; scale^2 when the recursion ran on z
        dl, db = _solve_initial(resid, a, c, w, trend)  # resid = r - l0 a - b0 c, so these are
        l0m, b0m = l0 + dl, b0 + db  #                         the corrections to (l0, b0)
        _subtract_states(resid, dl, a, db, c, tmp)
        mu = forecasts_into(tmp)
        if not full:
            np.copyto(mu, 1.0, where=maskt == 0)
        ok = (mu.min(axis=0) > 0) & positive[:, None]
        np.maximum(mu, 1e-300, out=mu)  # safe
        if not plain:
            resid *= st
        resid /= mu  # eps, the relative errors
        sq = np.einsum("tsc,tsc->sc", resid, resid) if full else np.einsum("tsc,tsc,tsc->sc", maskt, resid, resid)
        np.log(mu, out=mu)
        logs = mu.sum(axis=0)  # zero outside the mask (mu set to 1 there)
        likM = n[:, None] * np.log(np.maximum(sq, 1e-300)) + 2.0 * logs
        likM = np.where(ok & np.isfinite(likM), likM, np.inf)
    return {**out, "M": (likM, l0m, b0m)}


# ---------------------------------------------------------------------------- fitting
def _seasonal_init(x: np.ndarray, m: int, multiplicative: bool) -> np.ndarray:
    """Classical decomposition of the whole series: (m,) indices for positions 0..m-1 (mean 1,
    or mean 0 for additive)."""
    cma = centred_moving_average(x, m)
    d = x / cma if multiplicative else x - cma
    si = np.array([np.nanmean(d[i::m]) if np.any(np.isfinite(d[i::m])) else np.nan for i in range(m)])
    if not np.all(np.isfinite(si)):
        return np.ones(m) if multiplicative else np.zeros(m)
    return si / si.mean() if multiplicative else si - si.mean()


def _n_params(trend: str, season: str, m: int) -> int:
    k = 1 + 1 + 1  # alpha, l0, sigma
    k += {"N": 0, "A": 2, "Ad": 3}[trend]  # beta, b0 (and phi)
    k += {"N": 0, "A": 1 + (m - 1), "F": m - 1}[season]  # gamma and m-1 initial states
    return k


def _aicc(lik, k, n):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(n - k - 1 > 0, lik + 2 * k + 2 * k * (k + 1) / (n - k - 1), np.inf)


class _Chunk:
    """Series of one chunk, padded to the longest: x (S, T) normalised, mask (S, T)."""

    def __init__(self, xs: list[np.ndarray], m: int, seasonal_ok: list[bool]):
        S, T = len(xs), max(x.size for x in xs)
        self.m, self.T = m, T
        self.n = np.array([x.size for x in xs], dtype=np.float64)
        self.x = np.array([np.pad(x, (0, T - x.size), mode="edge") for x in xs])  # (S, T)
        self.mask = (np.arange(T)[None, :] < self.n[:, None]).astype(np.float64)
        self.positive = np.array([bool(np.all(x > 0)) for x in xs])
        self.seasonal_ok = np.array(seasonal_ok)
        pos = np.arange(T) % max(m, 1)
        if m > 1:
            self.s_add = np.array([_seasonal_init(x, m, False) for x in xs])  # (S, m)
            s_fix = [_seasonal_init(x, m, bool(p)) for x, p in zip(xs, self.positive)]
            self.s_fix = np.array(s_fix)
            self.fix_scale = np.where(self.positive[:, None], self.s_fix[:, pos], 1.0)  # (S, T)
            self.fix_offset = np.where(self.positive[:, None], 0.0, self.s_fix[:, pos])
        self.ones = np.ones((S, T))


def _passes(ch: _Chunk, cand: dict) -> dict:
    """Likelihoods of every candidate of every model: {(trend, season): (cand (C, 4), lik dict)}."""
    return {ms: (grid, _pass(ch, ms, grid[None])) for ms, grid in cand.items()}


def _pass(ch: _Chunk, ms: tuple[str, str], grid: np.ndarray) -> dict:
    """Likelihoods of the candidates ``grid`` (1 or S, C, 4) of one model for every series."""
    trend, season = ms
    has_trend = trend != "N"
    if season == "F":
        z = (ch.x - ch.fix_offset) / ch.fix_scale
        MU, RESP = _responses(z, grid, None, ch.m, has_trend)
        return _likelihoods(MU, RESP, z, ch.mask, ch.fix_scale, ch.positive, has_trend, ch.n)
    MU, RESP = _responses(ch.x, grid, ch.s_add if season == "A" else None, ch.m, has_trend)
    return _likelihoods(MU, RESP, ch.x, ch.mask, ch.ones, ch.positive, has_trend, ch.n)


def _models(m: int) -> list[tuple[str, str]]:
    seasons = ["N"] + (["A"] if 1 < m <= MAX_STATE_SEASON else []) + (["F"] if m > 1 else [])
    return [(t, s) for t in ("N", "A", "Ad") for s in seasons]


def fit_ets(ys: list[np.ndarray], m: int, restrict: tuple[str, ...] | None = None) -> list[EtsParams]:
    """Fit every model of the family to every series and keep each series' AICc winner.

    ys: 1-D series (any lengths >= 1); m: season length (1: none). Seasonal models need three
    full seasons. ``restrict``: model names to consider, e.g. ("AAdN", "MNN"), default all; a
    series none of them fits (an M error on a series with a value <= 0) gets simple exponential
    smoothing, ETS(A,N,N)."""
    out: list[EtsParams | None] = [None] * len(ys)
    for idx in _chunks([y.size for y in ys], m):
        for i, p in zip(idx, _fit_chunk([ys[i] for i in idx], m, restrict)):
            out[i] = p
    return out  # type: ignore[return-value]


def refit_ets(ys: list[np.ndarray], m: int, starts: list[EtsParams]) -> list[EtsParams]:
    """Refit each series in the model of ``starts[i]`` (a fit of the same series' first part):
    the same error, trend and season, its smoothing parameters searched on the finer grid around
    the start's (``_refine``), its initial states solved on the whole series. A series for which
    that model has no finite likelihood (a multiplicative error on a series that is no longer
    positive) gets the whole search of :func:`fit_ets` instead."""
    out: list[EtsParams | None] = [None] * len(ys)
    for ms in sorted({(p.trend, p.season) for p in starts}):
        idx = [i for i, p in enumerate(starts) if (p.trend, p.season) == ms]
        for chunk in size_chunks([ys[i].size for i in idx], _refine(starts[idx[0]]).shape[0], CHUNK, CHUNK_ELEMENTS):
            for j, p in zip(chunk, _refit_chunk([ys[idx[j]] for j in chunk], m, [starts[idx[j]] for j in chunk])):
                out[idx[j]] = p
    lost = [i for i, p in enumerate(out) if p is None]
    for i, p in zip(lost, fit_ets([ys[i] for i in lost], m) if lost else []):
        out[i] = p
    return out  # type: ignore[return-value]


def _refit_chunk(ys: list[np.ndarray], m: int, starts: list[EtsParams]) -> list[EtsParams | None]:
    cs = [float(np.mean(np.abs(y))) or 1.0 for y in ys]
    ch = _Chunk([y / c for y, c in zip(ys, cs)], m, [True] * len(ys))
    ms = (starts[0].trend, starts[0].season)
    grid = np.array([_refine(p) for p in starts])  # (S, C, 4): one model, so one grid size
    res = _pass(ch, ms, grid)
    k = _n_params(ms[0], ms[1], m)
    out: list[EtsParams | None] = []
    for j, p in enumerate(starts):
        if p.error not in res:  # no positive series in the chunk: no M likelihoods at all
            out.append(None)
            continue
        lik, l0, b0 = res[p.error]
        c = int(np.argmin(lik[j]))
        if not np.isfinite(lik[j, c]):
            out.append(None)
            continue
        aicc = float(_aicc(lik[j, c], k, ch.n[j]))
        out.append(_params(ch, j, (aicc, p.error, ms, grid[j, c], l0[j, c], b0[j, c]), cs[j]))
    return out


def _chunks(sizes: list[int], m: int) -> list[list[int]]:
    """The series' indices in chunks fitted together (C: the largest model's candidates)."""
    C = max(_grid(t, s == "A").shape[0] for t, s in _models(m))
    return size_chunks(sizes, C, CHUNK, CHUNK_ELEMENTS)


def _fit_chunk(ys: list[np.ndarray], m: int, restrict) -> list[EtsParams]:
    cs = [float(np.mean(np.abs(y))) or 1.0 for y in ys]
    xs = [y / c for y, c in zip(ys, cs)]
    ch = _Chunk(xs, m, [y.size >= 3 * m for y in ys])
    # Models no error type of ``restrict`` allows are not fitted at all.
    models = [ms for ms in _models(m) if restrict is None or any(f"{e}{ms[0]}{ms[1]}" in restrict for e in "AM")]
    cand = {ms: _grid(ms[0], ms[1] == "A") for ms in models}
    best = _select(ch, _passes(ch, cand), restrict)
    # Refine each series' winner on a finer grid around it (models fitted one at a time, so the
    # chunk is regrouped by winning model).
    fits = [_params(ch, i, b, cs[i]) for i, b in enumerate(best)]
    for ms in models:
        members = [i for i, p in enumerate(fits) if (p.trend, p.season) == ms]
        if not members:
            continue
        sub = _Chunk([xs[i] for i in members], m, [True] * len(members))
        grid = np.array([_refine(fits[i]) for i in members])  # (S, C, 4): one model, so one grid size
        res = _pass(sub, ms, grid)
        for j, i in enumerate(members):
            err = fits[i].error
            lik, l0, b0 = res[err]
            c = int(np.argmin(lik[j]))
            k = _n_params(ms[0], ms[1], m)
            aicc = float(_aicc(lik[j, c], k, sub.n[j]))
            if aicc < fits[i].aicc:
                fits[i] = _make(fits[i].error, ms, grid[j, c], l0[j, c], b0[j, c], fits[i].s0, fits[i], aicc)
    return fits


def _select(ch: _Chunk, res: dict, restrict) -> list[tuple]:
    """Per series: (aicc, error, (trend, season), candidate row, l0, b0) of the AICc winner.
    A series too short for any model's AICc (fewer points than parameters plus two) keeps the
    fallback: simple exponential smoothing at alpha 0.99 from its first value (nearly the naive
    forecast; its level once started at 0, and a one-point series' forecast was 1 % low)."""
    S = ch.x.shape[0]
    fallback = np.array([0.99, 0.0, 1.0, 0.0])
    best: list[tuple] = [(np.inf, "A", ("N", "N"), fallback, float(ch.x[i, 0]), 0.0) for i in range(S)]
    for (trend, season), (grid, lik) in res.items():
        k = _n_params(trend, season, ch.m)
        for err, (L, l0, b0) in lik.items():
            if restrict is not None and f"{err}{trend}{season}" not in restrict:
                continue
            aicc = _aicc(L, k, ch.n[:, None])  # (S, C)
            if season != "N":
                aicc = np.where(ch.seasonal_ok[:, None], aicc, np.inf)
            j = np.argmin(aicc, axis=1)
            for i in range(S):
                a = float(aicc[i, j[i]])
                if a < best[i][0]:
                    best[i] = (a, err, (trend, season), grid[j[i]], float(l0[i, j[i]]), float(b0[i, j[i]]))
    return best


def _params(ch: _Chunk, i: int, b: tuple, c: float) -> EtsParams:
    aicc, err, (trend, season), row, l0, b0 = b
    if season == "A":
        s0 = tuple(ch.s_add[i])
    elif season == "F":
        s0 = tuple(ch.s_fix[i])
    else:
        s0 = ()
    mult = bool(season == "F" and ch.positive[i])
    alpha, beta, phi, gamma = (float(v) for v in row)
    return EtsParams(err, trend, season, alpha, beta, phi, gamma, float(l0), float(b0), s0, mult, c, float(aicc))


def _make(err, ms, row, l0, b0, s0, like: EtsParams, aicc) -> EtsParams:
    alpha, beta, phi, gamma = (float(v) for v in row)
    trend, season = ms
    return EtsParams(
        err, trend, season, alpha, beta, phi, gamma, float(l0), float(b0), s0, like.multiplicative, like.c, aicc
    )


# ---------------------------------------------------------------------------- filtering
def start_state(p: EtsParams, anchor: dict | None = None) -> tuple[int, float, float, np.ndarray]:
    """The state a series starts from: (position of its first point in the series the parameters
    were fitted on, level, trend, seasonal states of that position and the m - 1 after it).
    ``anchor`` (from :func:`advance`): the state of a series that lost its first points; None:
    the fitted initial states at position 0."""
    m = max(len(p.s0), 1)
    if anchor is None:
        ring = np.asarray(p.s0, dtype=np.float64) if p.season == "A" else np.zeros(m)
        return 0, p.l0, p.b0, ring
    return int(anchor["position"]), float(anchor["level"]), float(anchor["trend"]), np.asarray(anchor["ring"])


def _filter(y: np.ndarray, p: EtsParams, anchor: dict | None):
    """Run the recursion over y from its start state: levels L and trends B after t points
    (t = 0..n), the seasonal states H (n + m, H[t] that of point t) and the start position."""
    x = np.asarray(y, dtype=np.float64) / p.c
    n = x.size
    a, lv, b, ring = start_state(p, anchor)
    m = max(len(p.s0), 1)
    if p.season == "F":
        s = np.asarray(p.s0)[(a + np.arange(n)) % m]
        z = x / s if p.multiplicative else x - s
    else:
        z = x
    # Python floats and lists: the same IEEE arithmetic as NumPy scalars, several times faster.
    H = [0.0] * (n + m)
    if p.season == "A":
        H[:m] = [float(v) for v in ring]
    L, B = [float(lv)], [float(b)]  # state after t points (index 0: the start state)
    lv, b = float(lv), float(b)
    alpha, beta, phi, gamma = float(p.alpha), float(p.beta), float(p.phi), float(p.gamma)
    for t, zt in enumerate(z.tolist()):
        base = lv + phi * b
        e = zt - (base + H[t])
        lv = base + alpha * e
        b = phi * b + beta * e
        H[t + m] = H[t] + gamma * e
        L.append(lv)
        B.append(b)
    return np.array(L), np.array(B), np.array(H), a


def advance(y: np.ndarray, p: EtsParams, anchor: dict | None, k: int) -> dict:
    """The start state (an anchor for :func:`filter_forecasts`) of the series y without its first
    k points: the recursion run over those k points, parameters fixed."""
    m = max(len(p.s0), 1)
    L, B, H, a = _filter(np.asarray(y)[:k], p, anchor)
    ring = H[k : k + m] if p.season == "A" else np.zeros(m)
    return {"position": a + k, "level": float(L[k]), "trend": float(B[k]), "ring": [float(v) for v in ring]}


def filter_forecasts(
    y: np.ndarray, p: EtsParams, origins: np.ndarray, h: int, anchor: dict | None = None
) -> np.ndarray:
    """Forecasts (len(origins), h) of y from the histories y[:t], t in origins (1 <= t <= n), with
    the parameters and initial states of p fixed (positions count from y[0]; with ``anchor``,
    from the state and position it gives y[0], see :func:`advance`)."""
    L, B, H, a = _filter(y, p, anchor)
    m = max(len(p.s0), 1)
    origins = np.asarray(origins, dtype=np.int64)
    k = np.arange(1, h + 1)
    phik = np.cumsum(p.phi ** k.astype(np.float64))  # (h,) phi + ... + phi^k
    F = L[origins, None] + phik[None, :] * B[origins, None]  # (O, h)
    if p.season == "A":
        F = F + H[origins[:, None] + (k[None, :] - 1) % m]
    elif p.season == "F":
        si = np.asarray(p.s0)[(a + origins[:, None] + k[None, :] - 1) % m]
        F = F * si if p.multiplicative else F + si
    return F * p.c


TRENDS = ("N", "A", "Ad")
DEFAULT_TRENDS = ("N", "Ad")


class AutoETS(Challenger):
    """Exponential smoothing chosen per series by AICc (see the module docstring).

    ``trends``: the trend types considered; by default none and additive damped. The undamped
    additive trend is left out: chosen by AICc it extrapolates straight lines that M3's series
    rarely follow (on a tenth of M3 it cost 0.3 sMAPE; the damped trend is the robust default of
    Gardner & McKenzie, 1985). ``errors``: error types, "A" and "M" (M on positive series only).
    Fitted attributes beyond the contract: ``models_`` (each series' model name, e.g.
    "ETS(M,Ad,N)") and ``params_`` (its parameters).
    """

    kind = "ets"

    def _check_settings(self, settings: dict) -> dict:
        trends = tuple(settings.pop("trends", DEFAULT_TRENDS))
        errors = tuple(settings.pop("errors", ("A", "M")))
        if settings:
            raise ValueError(f"AutoETS has no setting(s) {sorted(settings)}")
        if not trends or any(t not in TRENDS for t in trends):
            raise ValueError(f"trends must be a non-empty subset of {TRENDS}, got {trends!r}")
        if not errors or any(e not in ("A", "M") for e in errors):
            raise ValueError(f"errors must be a non-empty subset of ('A', 'M'), got {errors!r}")
        return {"trends": list(trends), "errors": list(errors)}

    def _fit_states(self, ys, ms):
        restrict = tuple(e + t + s for e in self.settings["errors"] for t in self.settings["trends"] for s in "NAF")
        out: list[dict] = [{} for _ in ys]
        for m in sorted(set(ms)):
            idx = [i for i, mi in enumerate(ms) if mi == m]
            for i, p in zip(idx, fit_ets([ys[i] for i in idx], m, restrict)):
                out[i] = p.to_dict()
        return out

    def _final_states(self, ys, ms, val_states):
        # A series whose validation fit saw nearly all of it (``continues_validation``: long
        # series, whose validation part is capped) keeps the model that fit chose, its parameters
        # refined on all of y (refit_ets); the others get the whole search again. On M3
        # (validation parts of a fifth) keeping the validation fit's choice costs 0.1-0.2 sMAPE:
        # the model chosen on more points is the better one (models/README.md).
        out: list[dict] = [{} for _ in ys]
        val_states = {i: st for i, (split, st) in val_states.items() if continues_validation(split, ys[i].size)}
        rest = [i for i in range(len(ys)) if i not in val_states]
        for i, st in zip(rest, self._fit_states([ys[i] for i in rest], [ms[i] for i in rest]) if rest else []):
            out[i] = st
        for m in sorted({ms[i] for i in val_states}):
            idx = [i for i in sorted(val_states) if ms[i] == m]
            starts = [_state_params(val_states[i]) for i in idx]
            for i, p in zip(idx, refit_ets([ys[i] for i in idx], m, starts)):
                out[i] = p.to_dict()
        return out

    def _forecasts(self, y, state, m, origins, h):
        return filter_forecasts(y, _state_params(state), origins, h, state.get("anchor"))

    def _advance(self, y, state, m, k):
        return {**state, "anchor": advance(y, _state_params(state), state.get("anchor"), k)}

    @property
    def models_(self) -> list[str]:
        return [_state_params(s).name for s in self._states]

    @property
    def params_(self) -> list[dict]:
        return [{k: v for k, v in s.items() if k != "anchor"} for s in self._states]


def _state_params(state: dict) -> EtsParams:
    """A series' fitted parameters from its state (which may also hold an anchor)."""
    return EtsParams.from_dict({k: v for k, v in state.items() if k != "anchor"})


__all__ = ["AutoETS", "EtsParams", "fit_ets", "refit_ets", "filter_forecasts", "advance", "MAX_STATE_SEASON"]
