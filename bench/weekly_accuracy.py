"""The published forecast on weekly series, against Naive2, Theta and the seasonal naive forecast.

No weekly competition data is bundled, so the series are ``bench/weekly.py``'s (log random walks
with drift, momentum in the weekly changes and a yearly cycle of 2-15 %: close to what weekly
prices and many weekly business series look like, where nothing beats the naive forecasts by
much), cut at random lengths of 80 points up, and forecast 13 weeks ahead (M4's weekly horizon)
by ``AutoForecaster(season_length=52).fit_many(...)``. Three seeds give three sets of 60. It
shows what a weekly user gets, and it is where a benchmark that joins a combination by luck
shows (validation forecasts reach 48 weeks ahead, where a year ago is not a bad guess, while 13
weeks ahead the seasonal naive forecast is far behind: models/README.md).

    OPENBLAS_NUM_THREADS=1 python bench/weekly_accuracy.py   # results/weekly-accuracy.md, .json
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hourly import smape, write_sets  # noqa: E402
from tickcast.models import AutoForecaster  # noqa: E402
from tickcast.models.baselines import naive2, seasonal_naive, theta  # noqa: E402
from weekly import weekly_series  # noqa: E402

H, M = 13, 52
SETS = {"set 1": (3, 700), "set 2": (4, 700), "set 3": (5, 1200)}  # seed, longest series + H


def weekly_set(seed: int, points: int, n: int = 60) -> list[tuple[np.ndarray, np.ndarray]]:
    """n (series to fit, the H weeks after it): each series of bench/weekly.py cut at a random length."""
    rng = np.random.default_rng(seed)
    out = []
    for y in weekly_series(n, points, seed=seed):
        cut = int(rng.integers(80, points - H))
        out.append((y[:cut], y[cut : cut + H]))
    return out


def score(pairs, forecasts) -> float:
    return float(np.mean([smape(t, f[: t.size]) for (_, t), f in zip(pairs, forecasts)]))


def run_set(pairs) -> dict:
    ys = [y for y, _ in pairs]
    row = {
        "series": len(ys),
        "naive2": score(pairs, [naive2(y, H, M) for y in ys]),
        "theta": score(pairs, [theta(y, H, M) for y in ys]),
        "seasonal naive": score(pairs, [seasonal_naive(y, H, min(M, y.size)) for y in ys]),
    }
    start = time.process_time()
    model = AutoForecaster(season_length=M).fit_many(ys)
    row["published"] = score(pairs, model.predict_many(H))
    row["CPU s"] = time.process_time() - start
    members = model.predict_members_many(H)
    for name in members[0]:
        row[f"its {name}"] = score(pairs, [m[name] for m in members])
    row["seasonal naive joined"] = int(sum(w.get("seasonal_naive", 0) > 0 for w in model.weights_))
    row["members ruled out"] = int(sum(" without " in c for c in model.chosen_))
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="weekly-accuracy", help="result file stem in bench/results/")
    args = parser.parse_args(argv)
    rows = {}
    for name, (seed, points) in SETS.items():
        rows[name] = run_set(weekly_set(seed, points))
        print(name, {k: round(v, 2) for k, v in rows[name].items()}, flush=True)
    about = (
        "Three sets of 60 synthetic weekly series (`bench/weekly_accuracy.py` says what they are), "
        "`AutoForecaster(season_length=52).fit_many` on each; the baselines with period 52; `its ...`: "
        "the members' own forecasts; `seasonal naive joined`: series whose combination it takes part in; "
        "`members ruled out`: series where validation ruled one out."
    )
    write_sets(
        rows, args.out, "The published forecast on weekly series (sMAPE, 13 weeks ahead, lower is better)", about
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
