"""Rolling-origin backtest on the bundled real series: the RNN against the naive forecast (the
random walk, which nobody beats by much on prices), drift and seasonal naive, and the coverage
of its 80 % intervals.

For every series, ORIGINS origins spread evenly over its last four years (daily: 1,008 trading
days; monthly: 48 months); at each the model is fitted on at most HISTORY points before the
origin, as the service does, and forecasts ``h`` steps. Scores per step (1 and h): MAE ratio
against naive (< 1: better than naive) and the share of actual values inside the 80 % interval.

    OPENBLAS_NUM_THREADS=1 python bench/accuracy.py      # writes bench/results/accuracy.md and .csv
"""
from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from tickcast.models import RNNForecaster, drift, naive, seasonal_naive

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
HISTORY = 2500
ORIGINS = 40
LEVEL = 0.8
# name, value column, horizon h, seasonal period m, the last four years in points
SERIES = [
    ("sp500", "Close", 5, 1, 1008),
    ("nasdaq", "Close", 5, 1, 1008),
    ("wti", "DCOILWTICO", 5, 1, 1008),
    ("core-cpi", "CPILFESL", 6, 12, 48),
]


def data_path(name: str) -> Path:
    """<repo>/service/data/<name>.csv.gz, else <repo>/../shared/data/<name>.csv.gz."""
    for path in (REPO / "service" / "data" / f"{name}.csv.gz",
                 REPO.parent / "shared" / "data" / f"{name}.csv.gz"):
        if path.exists():
            return path
    raise FileNotFoundError(f"{name}.csv.gz in neither service/data nor ../shared/data")


def load(name: str, column: str) -> np.ndarray:
    """The series' values, oldest first, missing ('.') rows dropped."""
    df = pd.read_csv(data_path(name), na_values=["."])
    df["Date"] = pd.to_datetime(df["Date"], format="%m/%d/%Y")
    return df.sort_values("Date")[column].dropna().to_numpy(dtype=np.float64)


def one_origin(args) -> dict:
    """Fit at one origin; forecasts and 80 % intervals of every method for steps 1..h."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, "blas")
    history, actual, h, m = args
    start = time.perf_counter()
    model = RNNForecaster(season_length=m, horizon=h).fit(history)
    lower, upper = model.predict_interval(h, LEVEL)
    out = {"actual": actual, "rnn": model.predict(h), "lower": lower, "upper": upper,
           "seconds": time.perf_counter() - start, "naive": naive(history, h), "drift": drift(history, h)}
    if m > 1:
        out["seasonal_naive"] = seasonal_naive(history, h, m)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--origins", type=int, default=ORIGINS)
    args = parser.parse_args(argv)
    rows = []
    with ProcessPoolExecutor(args.workers) as pool:
        for name, column, h, m, span in SERIES:
            y = load(name, column)
            origins = np.linspace(y.size - span, y.size - h, args.origins).round().astype(int)
            jobs = [(y[max(0, o - HISTORY):o], y[o:o + h], h, m) for o in origins]
            results = list(pool.map(one_origin, jobs))
            methods = [k for k in ("rnn", "drift", "seasonal_naive") if k in results[0]]
            err = {k: np.abs(np.array([r[k] for r in results]) - np.array([r["actual"] for r in results]))
                   for k in methods + ["naive"]}
            inside = np.array([(r["lower"] <= r["actual"]) & (r["actual"] <= r["upper"]) for r in results])
            width = np.array([(r["upper"] - r["lower"]) / r["naive"] for r in results])
            for step in (1, h):
                for k in methods:
                    rows.append({"series": name, "h": h, "step": step, "method": k, "origins": len(results),
                                 "mae_ratio": float(err[k][:, step - 1].mean() / err["naive"][:, step - 1].mean()),
                                 "coverage": float(inside[:, step - 1].mean()) if k == "rnn" else None,
                                 "relative_width": float(width[:, step - 1].mean()) if k == "rnn" else None,
                                 "fit_seconds": float(np.mean([r["seconds"] for r in results])) if k == "rnn" else 0.0})
            print(f"{name}: " + ", ".join(f"step {r['step']} {r['method']} {r['mae_ratio']:.3f}"
                                          for r in rows if r["series"] == name), flush=True)
    write(rows, args.origins)
    return 0


def write(rows: list[dict], origins: int) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / "accuracy.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        "# Rolling-origin backtest on the bundled series: RNN against naive, and its 80 % intervals",
        "",
        f"{origins} origins per series over its last four years, each a fresh fit on at most {HISTORY} "
        "points before the origin (`RNNForecaster(season_length=m, horizon=h)`, otherwise defaults: what "
        "the service runs), forecasting h steps. MAE ratio: the method's mean absolute error at that step "
        "divided by the naive forecast's over the same origins (< 1 is better than naive; prices are close "
        "to a random walk, so about 1 is the best to expect). Coverage: share of actual values inside the "
        "80 % interval; width: the interval's width relative to the level. Machine: "
        f"{platform.machine()}, {os.cpu_count()} CPUs, NumPy {np.__version__}, Python "
        f"{platform.python_version()}, load average {tuple(round(x, 2) for x in os.getloadavg())} at the end.",
        "",
        "| series | step | method | MAE / naive MAE | 80 % coverage | width | fit s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cov = "" if r["coverage"] is None else f"{r['coverage']:.2f}"
        wid = "" if r["relative_width"] is None else f"{100 * r['relative_width']:.1f} %"
        lines.append(f"| {r['series']} | {r['step']} | {r['method']} | {r['mae_ratio']:.3f} | {cov} | {wid} | "
                     f"{r['fit_seconds']:.2f} |")
    (RESULTS / "accuracy.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
