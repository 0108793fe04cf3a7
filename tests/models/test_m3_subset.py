"""Fast accuracy check on 160 real M3 series, 40 per category (tests/fixtures/m3_subset.csv.gz): the
RNN, per series and across series, must not fall behind the seasonally adjusted naive forecast
(Naive2).
The full benchmark over all 3,003 series is bench/competition.py, not a test."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tickcast.models import RNNForecaster, naive2, theta

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "m3_subset.csv.gz"
PERIOD = {"yearly": 1, "quarterly": 4, "monthly": 12, "other": 1}


def smape(a, f):
    return float(np.mean(200 * np.abs(a - f) / (np.abs(a) + np.abs(f))))


@pytest.fixture(scope="module")
def m3():
    df = pd.read_csv(FIXTURE).sort_values(["series", "part", "t"])
    out = []
    for sid, g in df.groupby("series"):
        cat = g["category"].iloc[0]
        out.append(
            (
                sid,
                cat,
                PERIOD[cat],
                g.loc[g.part == "train", "value"].to_numpy(float),
                g.loc[g.part == "test", "value"].to_numpy(float),
            )
        )
    assert len(out) == 160 and {c for _, c, *_ in out} == set(PERIOD)
    return out


def _scores(m3, forecasts):
    return np.array([smape(test, f) for (_, _, _, _, test), f in zip(m3, forecasts)])


def test_per_series_defaults_beat_naive2(m3):
    """`RNNForecaster(season_length=m).fit(y).predict(h)` on every series, shortest (14 points)
    included: no refusals, and a lower mean sMAPE than Naive2."""
    ours = _scores(m3, [RNNForecaster(season_length=m).fit(y).predict(test.size) for _, _, m, y, test in m3])
    benchmark = _scores(m3, [naive2(y, test.size, m) for _, _, m, y, test in m3])
    assert np.all(np.isfinite(ours))
    assert ours.mean() < benchmark.mean(), (ours.mean(), benchmark.mean())


def test_training_across_series_beats_naive2_and_rivals_theta(m3):
    """One model per category over its 40 series: below Naive2 and below Theta, the M3 winner
    (in every category on the whole of M3 too: bench/results/competition.md)."""
    forecasts = {}
    for cat, m in PERIOD.items():
        group = [s for s in m3 if s[1] == cat]
        model = RNNForecaster(season_length=m).fit_many([y for *_, y, _ in group])
        for (sid, *_), f in zip(group, model.predict_many(group[0][4].size)):
            forecasts[sid] = f
    ours = _scores(m3, [forecasts[sid] for sid, *_ in m3])
    benchmark = _scores(m3, [naive2(y, test.size, m) for _, _, m, y, test in m3])
    winner = _scores(m3, [theta(y, test.size, m) for _, _, m, y, test in m3])
    assert ours.mean() < benchmark.mean(), (ours.mean(), benchmark.mean())
    assert ours.mean() < winner.mean(), (ours.mean(), winner.mean())
