"""The statistical challengers: each against an independent computation, their contract
(round trips, intervals, odd inputs) and the shared validation protocol."""

from __future__ import annotations

import math

import numpy as np
import pytest
from tests.support.ets_reference import one_step_errors, seasonal_series

from tickcast.models import AutoETS, Naive, SeasonalNaive, Theta, ets, theta_models
from tickcast.models.conformal import spread_path
from tickcast.models.ets import EtsParams, filter_forecasts, fit_ets, refit_ets
from tickcast.models.theta_models import fit_theta
from tickcast.models.validation import REFIT_SHARE, actuals, default_horizon, split_point

CHALLENGERS = [AutoETS, Theta, Naive, SeasonalNaive]


def aicc_by_hand(y, p: EtsParams, m: int) -> float:
    e, mu = one_step_errors(y, p)
    n = len(y)
    if p.error == "A":
        lik = n * math.log(np.sum(e**2))
    else:
        lik = n * math.log(np.sum((e / mu) ** 2)) + 2 * np.sum(np.log(mu))
    k = 3 + {"N": 0, "A": 2, "Ad": 3}[p.trend] + {"N": 0, "A": m, "F": m - 1}[p.season]
    return lik + 2 * k + 2 * k * (k + 1) / (n - k - 1)


@pytest.mark.parametrize("m", [1, 4, 12])
def test_ets_likelihood_matches_a_hand_written_recursion(m):
    ys = [seasonal_series(48, max(m, 2), seed) for seed in range(3)] + [np.linspace(5, 9, 30) + np.sin(np.arange(30))]
    for y, p in zip(ys, fit_ets(ys, m)):
        assert p.aicc == pytest.approx(aicc_by_hand(y, p, m), rel=1e-9, abs=1e-6)


ETS_FAMILY = [e + t + s for e in "AM" for t in ("N", "A", "Ad") for s in "NAF"]


def ets_test_series() -> list[np.ndarray]:
    """Positive series of different lengths (fitted as one padded chunk): additive and growing
    seasons, a random walk, an exponential trend with a multiplicative season."""
    rng = np.random.default_rng(5)
    return [
        seasonal_series(60, 12, 1),
        seasonal_series(45, 12, 2, level=30) * np.linspace(1, 1.6, 45),
        50 + rng.normal(0, 1, 50).cumsum(),
        np.exp(np.linspace(0, 1, 40)) * (1 + 0.2 * np.sin(np.arange(40) * np.pi / 6)),
    ]


def test_every_ets_model_alone_matches_the_hand_written_likelihood_and_the_best_is_chosen():
    """Each of the 18 models (errors A and M, trends N, A and Ad, seasons none, states and fixed
    indices) fitted alone reports the AICc the scalar recursion gives for its parameters; fitted
    together, each series gets the model with the lowest AICc, with that model's own fit."""
    ys = ets_test_series()
    chosen = fit_ets(ys, 12, tuple(ETS_FAMILY))
    alone = {name: fit_ets(ys, 12, (name,)) for name in ETS_FAMILY}
    for i, y in enumerate(ys):
        for name in ETS_FAMILY:
            p = alone[name][i]
            assert p.error + p.trend + p.season == name
            if np.isfinite(p.aicc):
                assert p.aicc == pytest.approx(aicc_by_hand(y, p, 12), rel=1e-9, abs=1e-6), (i, name)
        best = min(ETS_FAMILY, key=lambda name: alone[name][i].aicc)
        c = chosen[i]
        assert c.error + c.trend + c.season == best
        assert c == alone[best][i]


def test_an_ets_fit_does_not_depend_on_the_series_fitted_with_it():
    ys = ets_test_series()
    together = fit_ets(ys, 12)
    for y, p in zip(ys, together):
        (q,) = fit_ets([y], 12)
        assert (q.error, q.trend, q.season, q.alpha, q.beta, q.phi, q.gamma) == (
            p.error, p.trend, p.season, p.alpha, p.beta, p.phi, p.gamma
        )  # fmt: skip
        np.testing.assert_allclose([q.l0, q.b0, q.aicc], [p.l0, p.b0, p.aicc], rtol=1e-9, atol=1e-12)


def best_initial_states_by_hand(y, p: EtsParams):
    """(l0, b0) minimising the A-error SSE of p's smoothing parameters, from the hand-written
    recursion: the errors are affine in the initial states, so three runs and a least-squares solve."""
    base = one_step_errors(y, EtsParams(**{**p.__dict__, "l0": 0.0, "b0": 0.0}))[0]
    cols = [base - one_step_errors(y, EtsParams(**{**p.__dict__, "l0": 1.0, "b0": 0.0}))[0]]
    if p.trend != "N":
        cols.append(base - one_step_errors(y, EtsParams(**{**p.__dict__, "l0": 0.0, "b0": 1.0}))[0])
    coef = np.linalg.lstsq(np.array(cols).T, base, rcond=None)[0]
    return float(coef[0]), float(coef[1]) if p.trend != "N" else 0.0


@pytest.mark.parametrize("m", [1, 4])
def test_a_refit_keeps_the_start_model_and_takes_the_best_candidate_around_it(m):
    """refit_ets: each series keeps its start's error, trend and season; its smoothing parameters
    are the candidate of the finer grid around the start's whose AICc (initial states at their
    least-squares optimum, by hand) is lowest, and the AICc it reports is the hand-written one."""
    rng = np.random.default_rng(11)
    ys = [
        seasonal_series(80, 4, 7),
        40 + rng.normal(0, 1, 90).cumsum(),
        seasonal_series(70, 4, 8) * np.linspace(1, 2, 70),
    ]
    starts = fit_ets([y[:-12] for y in ys], m, ("ANN", "AAdN", "AAdA", "ANA", "AAdF", "ANF"))
    refits = refit_ets(ys, m, starts)
    for y, start, p in zip(ys, starts, refits):
        assert (p.error, p.trend, p.season) == (start.error, start.trend, start.season)
        rows = ets._refine(start)
        assert any(np.allclose([p.alpha, p.beta, p.phi, p.gamma], r, rtol=0, atol=1e-12) for r in rows)
        assert p.aicc == pytest.approx(aicc_by_hand(y, p, m), rel=1e-9, abs=1e-6)
        by_hand = []
        for a, b, phi, g in rows:
            q = EtsParams(**{**p.__dict__, "alpha": a, "beta": b, "phi": phi, "gamma": g})
            l0, b0 = best_initial_states_by_hand(y, q)
            by_hand.append(aicc_by_hand(y, EtsParams(**{**q.__dict__, "l0": l0, "b0": b0}), m))
        assert p.aicc == pytest.approx(min(by_hand), rel=1e-7, abs=1e-6)


def test_a_refit_whose_model_has_no_likelihood_any_more_gets_the_whole_search():
    y = 20 + np.sin(np.arange(60)) + np.linspace(0, 3, 60)
    (start,) = fit_ets([y[:50]], 1, ("MNN",))
    y[55] = -1.0  # no longer positive: no M-error likelihood
    (p,) = refit_ets([y], 1, [start])
    assert p == fit_ets([y], 1)[0] and p.error == "A"


def test_autoets_final_fit_keeps_the_validated_model_on_long_series_only():
    """A series whose validation fit saw at least REFIT_SHARE of it (a long one: the validation part
    is capped) is refitted in the model that fit chose (refit_ets); a shorter one is searched again
    from scratch. The long series is one where the two differ, so the test tells them apart."""
    family = tuple(e + t + s for e in "AM" for t in ets.DEFAULT_TRENDS for s in "NAF")
    rng = np.random.default_rng(8)
    long_y = 100 + np.cumsum(rng.normal(0, 0.3, 1600)) + rng.normal(0, 1, 1600)  # a local level in noise
    short_y = seasonal_series(60, 4, 9)
    for y, m in ((long_y, 1), (short_y, 4)):
        model = AutoETS(season_length=m).fit(y)
        split = model.validation_[0][0]
        (val,) = fit_ets([y[:split]], m, family)
        (whole,) = fit_ets([y], m, family)
        (refit,) = refit_ets([y], m, [val])
        assert whole != refit  # the two rules give different fits here
        expected = refit if split >= REFIT_SHARE * y.size else whole
        assert model.params_[0] == expected.to_dict()
        assert y is short_y or split >= REFIT_SHARE * y.size
        F = filter_forecasts(y, val, np.arange(split, y.size), model.horizon_)
        np.testing.assert_allclose(model.validation_[0][1], F, rtol=1e-12)  # the validation fit's forecasts


def test_ets_initial_states_are_the_least_squares_optimum():
    y = seasonal_series(40, 4, 3)
    (p,) = fit_ets([y], 4, restrict=("AAdN", "AAdA", "ANN"))
    sse = np.sum(one_step_errors(y, p)[0] ** 2)
    for dl, db in [(1e-3, 0), (-1e-3, 0), (0, 1e-3), (0, -1e-3)]:
        q = EtsParams(**{**p.__dict__, "l0": p.l0 + dl, "b0": p.b0 + db})
        assert np.sum(one_step_errors(y, q)[0] ** 2) > sse


def test_ets_ses_forecast_is_the_last_smoothed_level():
    y = np.array([3.0, 5.0, 4.0, 6.0, 5.5, 7.0, 6.5, 6.0, 7.5, 8.0])
    (p,) = fit_ets([y], 1, restrict=("ANN",))
    level = p.l0 * p.c
    for v in y:
        level = level + p.alpha * (v - level)
    f = filter_forecasts(y, p, np.array([y.size]), 4)[0]
    np.testing.assert_allclose(f, np.full(4, level), rtol=1e-12)


def test_ets_without_positive_values_never_uses_multiplicative_models():
    rng = np.random.default_rng(1)
    ys = [rng.normal(0, 1, 60).cumsum(), np.r_[np.zeros(10), rng.normal(5, 1, 40)]]
    model = AutoETS(season_length=12).fit_many(ys)
    assert all(not name.startswith("ETS(M") and "M*" not in name for name in model.models_)
    assert all(np.all(np.isfinite(f)) for f in model.predict_many(24))


def test_ets_long_seasons_use_fixed_indices():
    t = np.arange(52 * 4)
    y = 50 + 10 * np.sin(2 * np.pi * t / 52) + np.random.default_rng(2).normal(0, 1, t.size)
    model = AutoETS(season_length=52).fit(y)
    assert model.params_[0]["season"] in ("F", "N")
    f = model.predict(52)
    assert np.corrcoef(f, 50 + 10 * np.sin(2 * np.pi * np.arange(t.size, t.size + 52) / 52))[0, 1] > 0.9


def dotm_sse_by_hand(x, alpha, theta, l0):
    """statsforecast's DOTM recursion (one-step errors from the fourth point), written out."""
    level = alpha * x[0] + (1 - alpha) * l0
    meany, A, B = x[0], x[0], 0.0
    sse = 0.0
    for i in range(1, x.size):
        mu = level + (1 - 1 / theta) * (A * (1 - alpha) ** i + B * (1 - (1 - alpha) ** (i + 1)) / alpha)
        if i >= 3:
            sse += (x[i] - mu) ** 2
        level = alpha * x[i] + (1 - alpha) * level
        new_mean = (i * meany + x[i]) / (i + 1)
        B = ((i - 1) * B + 6 * (x[i] - meany) / (i + 1)) / (i + 2)
        meany = new_mean
        A = meany - B * (i + 2) / 2
    return sse


def test_dotm_fit_is_a_local_optimum_of_the_hand_written_objective():
    x = seasonal_series(40, 1, 5)
    (p,) = fit_theta([x], "dotm")
    best = dotm_sse_by_hand(x, p["alpha"], p["theta"], p["l0"])
    for da, dt, dl in [(0.004, 0, 0), (-0.004, 0, 0), (0, 0.05, 0), (0, -0.05, 0), (0, 0, 0.1), (0, 0, -0.1)]:
        a = min(max(p["alpha"] + da, 0.1), 0.99)
        t = max(p["theta"] + dt, 1.0)
        assert dotm_sse_by_hand(x, a, t, p["l0"] + dl) >= best - 1e-9


@pytest.mark.parametrize("model", ["dotm", "otm", "stm"])
def test_the_theta_objective_of_many_series_and_alphas_equals_the_hand_written_one(model):
    """_sse (vectorised over series and alphas) at the fitted l0 and theta equals the recursion
    written out, for series of different lengths in one padded batch."""
    rng = np.random.default_rng(8)
    xs = [seasonal_series(40, 1, 5), 5.0 + np.cumsum(rng.normal(0.1, 1.0, 23)), 3.0 + rng.normal(0, 1, 61)]
    T = max(x.size for x in xs)
    x = np.array([np.pad(v, (0, T - v.size), mode="edge") for v in xs])
    n = np.array([v.size for v in xs], dtype=np.float64)
    alphas = np.array([[0.1, 0.5, 0.6], [0.2, 0.3, 0.7], [0.15, 0.6, 0.45]])  # l0 well determined
    dynamic, optimise = model == "dotm", model != "stm"
    sse, l0, kappa = theta_models._sse(x, n, alphas, dynamic, optimise)
    for s, v in enumerate(xs):
        for a in range(3):
            theta = 1.0 / (1.0 - kappa[s, a])
            if dynamic:
                want = dotm_sse_by_hand(v, alphas[s, a], theta, l0[s, a])
            else:
                want = static_theta_sse_by_hand(v, alphas[s, a], theta, l0[s, a])
            assert sse[s, a] == pytest.approx(want, rel=1e-9), (s, a)
    if not optimise:
        assert np.all(kappa == 0.5)


@pytest.mark.parametrize("model", ["dotm", "otm"])
def test_a_theta_fit_does_not_depend_on_the_series_fitted_with_it(model, monkeypatch):
    """Series of different lengths fitted together (one padded chunk, or several when the chunk's
    arrays reach their budget) get the parameters each gets alone."""
    rng = np.random.default_rng(9)
    xs = [seasonal_series(40, 1, 5), 5.0 + np.cumsum(rng.normal(0.1, 1.0, 23)), 3.0 + rng.normal(0, 1, 61)]
    alone = [theta_models.fit_theta([x], model)[0] for x in xs]
    for budget in (theta_models.CHUNK_ELEMENTS, 61 * 30):  # one chunk; one series per chunk
        monkeypatch.setattr(theta_models, "CHUNK_ELEMENTS", budget)
        together = theta_models.fit_theta(xs, model)
        for p, q in zip(together, alone):
            assert p["alpha"] == q["alpha"] and p["model"] == q["model"]
            for key in ("theta", "l0", "intercept", "slope"):
                assert p[key] == pytest.approx(q[key], rel=1e-9, abs=1e-12), key


def static_theta_sse_by_hand(x, alpha, theta, l0):
    """The static models: the least-squares line of the whole series at every step."""
    t = np.arange(1, x.size + 1, dtype=np.float64)
    slope = np.polyfit(t, x, 1)[0]
    intercept = x.mean() - (x.size + 1) * slope / 2.0
    level, sse = alpha * x[0] + (1 - alpha) * l0, 0.0
    for i in range(1, x.size):
        mu = level + (1 - 1 / theta) * (intercept * (1 - alpha) ** i + slope * (1 - (1 - alpha) ** (i + 1)) / alpha)
        if i >= 3:
            sse += (x[i] - mu) ** 2
        level = alpha * x[i] + (1 - alpha) * level
    return sse


def test_theta_follows_a_clean_trend():
    y = 10.0 + 2.0 * np.arange(30)
    f = Theta(season_length=1).fit(y).predict(5)
    np.testing.assert_allclose(f, 10.0 + 2.0 * np.arange(30, 35), rtol=0.02)


def test_stm_keeps_theta_two():
    (p,) = fit_theta([seasonal_series(30, 1, 1)], "stm")
    assert p["theta"] == pytest.approx(2.0)


def test_seasonal_naive_repeats_the_last_season_exactly():
    y = np.arange(1.0, 31.0)
    model = SeasonalNaive(season_length=7).fit(y)
    np.testing.assert_array_equal(model.predict(10), y[-7:][np.arange(10) % 7])
    np.testing.assert_array_equal(Naive().fit(y).predict(3), [30.0, 30.0, 30.0])


@pytest.mark.parametrize("cls", CHALLENGERS)
def test_round_trip_gives_identical_forecasts_and_intervals(cls):
    ys = [seasonal_series(60, 12, s) for s in range(3)]
    model = cls(season_length=12).fit_many(ys)
    back = cls.from_bytes(model.to_bytes())
    for a, b in zip(model.predict_many(20), back.predict_many(20)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(model.predict_interval_many(20, [0.8, 0.95]), back.predict_interval_many(20, [0.8, 0.95])):
        for (lo1, up1), (lo2, up2) in zip(a, b):
            np.testing.assert_array_equal(lo1, lo2)
            np.testing.assert_array_equal(up1, up2)
    assert back.backtests_ == model.backtests_


@pytest.mark.parametrize("cls", CHALLENGERS)
def test_blobs_of_another_kind_are_refused(cls):
    with pytest.raises(ValueError):
        cls.from_bytes(b"tickcast-rnn\n" + b"\0" * 20)
    other = Naive if cls is not Naive else SeasonalNaive
    with pytest.raises(ValueError):
        cls.from_bytes(other().fit(np.arange(10.0)).to_bytes())


@pytest.mark.parametrize("cls", CHALLENGERS)
@pytest.mark.parametrize(
    "y",
    [
        np.full(30, 7.0),
        np.array([1.0, 2.0, 3.0]),
        np.array([5.0]),
        np.r_[np.zeros(12), np.arange(12.0), -np.arange(12.0)],
        1e12 * (1 + 0.01 * np.sin(np.arange(50))),
        np.r_[np.ones(20), 1e6 * np.ones(3)],
    ],
    ids=["constant", "three", "one", "zeros-negatives", "huge", "jump"],
)
def test_odd_inputs_give_finite_ordered_intervals(cls, y):
    model = cls(season_length=12).fit(y)
    f = model.predict(24)
    assert f.shape == (24,) and np.all(np.isfinite(f))
    (lo80, up80), (lo95, up95) = model.predict_interval(24, [0.8, 0.95])
    assert np.all(np.isfinite(lo95)) and np.all(np.isfinite(up95))
    assert np.all(lo95 <= lo80) and np.all(lo80 <= f) and np.all(f <= up80) and np.all(up80 <= up95)
    lo, up = model.predict_interval(24, 0.8)  # a float level still gives one pair
    np.testing.assert_array_equal(lo, lo80)


@pytest.mark.parametrize("bad", [[1.0, np.nan, 2.0], [[1.0, 2.0], [3.0, 4.0]], [np.inf, 1.0]])
def test_bad_input_is_one_value_error(bad):
    with pytest.raises(ValueError):
        AutoETS().fit(bad)


def test_bad_settings_and_calls_raise_value_errors():
    with pytest.raises(ValueError):
        AutoETS(trends=("X",))
    with pytest.raises(ValueError):
        Theta(model="nope")
    with pytest.raises(ValueError):
        Naive(season_length=-1)
    model = Naive().fit_many([np.arange(5.0), np.arange(6.0)])
    with pytest.raises(ValueError):
        model.predict(3)  # two series: predict_many
    with pytest.raises(ValueError):
        model.predict_many(0)
    with pytest.raises(ValueError):
        model.predict_interval_many(3, 1.5)
    with pytest.raises(RuntimeError):
        Naive().predict(3)


def test_backtest_scores_the_validation_part_against_naive():
    y = seasonal_series(60, 12, 4)
    model = Naive(season_length=12).fit(y)
    bt = model.backtest_
    split = split_point(y.size, 12, default_horizon(12))
    assert bt["n"] == y.size - split
    assert bt["relative_mae"] == pytest.approx(1.0)  # naive against naive
    assert AutoETS(season_length=12).fit(y).backtest_["relative_mae"] < 1.0


def test_validation_protocol():
    assert default_horizon(1) == 8 and default_horizon(12) == 18 and default_horizon(168) == 48
    assert split_point(14, 1, 8) == 6 and split_point(126, 12, 18) == 101
    assert split_point(3, 1, 8) == 3  # too short: nothing held out
    assert split_point(50, 12, 18) == 36  # three seasons to fit on, where the series has them
    assert split_point(30, 12, 18) == 26  # else all but four origins
    assert split_point(40, 4, 8) == 32 and split_point(400, 1, 8) == 320 and split_point(2000, 1, 8) == 1850
    A = actuals(np.arange(10.0), 8, 3)
    np.testing.assert_array_equal(A[0, :2], [8.0, 9.0])
    assert np.isnan(A[0, 2]) and np.isnan(A[1, 1:]).all()


def test_spread_path_is_positive_and_follows_the_changes():
    s = spread_path(np.r_[np.zeros(30), np.arange(30.0)])
    assert np.all(s > 0) and s[-1] > 0.5


def test_naive_intervals_are_calibrated_on_random_walks():
    rng = np.random.default_rng(7)
    ys = [rng.normal(0, 1, 80).cumsum() + 100 for _ in range(300)]
    model = Naive(season_length=1).fit_many([y[:-8] for y in ys])
    inside = [(lo <= y[-8:]) & (y[-8:] <= up) for y, (lo, up) in zip(ys, model.predict_interval_many(8, 0.8))]
    assert 0.74 <= np.mean(inside) <= 0.86


def test_a_refit_normalises_by_the_whole_series_and_keeps_going_past_a_lost_series():
    y_lost = 20 + np.sin(np.arange(60)) + np.linspace(0, 3, 60)
    y_kept = 30 + np.cos(np.arange(70)) + np.linspace(0, 2, 70)
    starts = fit_ets([y_lost[:50], y_kept[:60]], 1, ("MNN",))
    y_lost = y_lost.copy()
    y_lost[55] = -1.0  # the first series loses its M-error likelihood; the second must still be refitted
    got = refit_ets([y_lost, y_kept], 1, starts)
    assert got[0] == fit_ets([y_lost], 1)[0]
    assert got[1] == refit_ets([y_kept], 1, [starts[1]])[0] and got[1].error == "M"
    assert got[1].c == pytest.approx(np.mean(np.abs(y_kept)), rel=1e-15)  # units of the whole series
    zeros = np.zeros(30)
    (flat,) = refit_ets([zeros], 1, fit_ets([zeros[:25]], 1))
    assert flat.c == 1.0


def test_dynamic_and_static_theta_lines_by_hand():
    """_lines: the least-squares line of x_0..x_i at every i (dynamic: slope 0 at i = 0), and of
    each whole series (static; padded series count only their own points)."""
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3, 7)).cumsum(axis=1)
    n = np.array([1.0, 2.0, 7.0])
    A, B = theta_models._lines(x, True, np.full(3, 7.0))
    for s in range(3):
        assert B[s, 0] == 0.0 and A[s, 0] == pytest.approx(x[s, 0])
        for i in range(1, 7):
            slope, intercept = np.polyfit(np.arange(1.0, i + 2), x[s, : i + 1], 1)
            assert B[s, i] == pytest.approx(slope, abs=1e-12) and A[s, i] == pytest.approx(intercept, abs=1e-12)
    A, B = theta_models._lines(x, False, n)
    for s, k in enumerate(n.astype(int)):
        slope, intercept = np.polyfit(np.arange(1.0, k + 1), x[s, :k], 1) if k > 1 else (0.0, x[s, 0])
        np.testing.assert_allclose(B[s], slope, atol=1e-12)
        np.testing.assert_allclose(A[s], intercept, atol=1e-12)


def test_a_refit_chunk_without_positive_series_still_refits_its_additive_error_series():
    t = np.arange(60)
    y_m = 10 + np.sin(t[:50] / 3)  # positive at first: an M-error start
    (s_m,) = fit_ets([y_m[:45]], 1, ("MNN",))
    y_m = y_m.copy()
    y_m[47] = -2.0
    y_a = np.sin(t / 4) + 0.05 * t - 1.0  # crosses zero: additive errors only
    (s_a,) = fit_ets([y_a[:50]], 1, ("ANN",))
    got = refit_ets([y_m, y_a], 1, [s_m, s_a])  # one chunk, the M-error series first (shorter)
    assert got[0] == fit_ets([y_m], 1)[0]
    assert got[1] == refit_ets([y_a], 1, [s_a])[0] != fit_ets([y_a], 1)[0]
