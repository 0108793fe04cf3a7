"""Rolling-origin backtest of the NumPy RNN/GRU against naive, seasonal naive and drift.

For every bundled series and every origin, each method sees only the history before the
origin (at most HISTORY points), forecasts the next h points, and is scored by MASE (scaled by
the in-sample naive MAE of that history) and sMAPE. The table holds the mean over origins.

    OPENBLAS_NUM_THREADS=1 python bench/accuracy.py   # writes bench/results/accuracy.md and .csv
"""
from __future__ import annotations

import csv
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]

from tickcast.models import RNNForecaster, drift, naive, seasonal_naive  # noqa: E402
from tickcast.models.metrics import mase, naive_scale, smape  # noqa: E402

RESULTS = REPO / "bench" / "results"
HISTORY = 2500
N_ORIGINS = 8
# name, value column, horizon h, seasonal period m, spacing of origins (points)
SERIES = [
    ("sp500", "Close", 5, 5, 60),
    ("nasdaq", "Close", 5, 5, 60),
    ("wti", "DCOILWTICO", 5, 5, 60),
    ("core-cpi", "CPILFESL", 6, 12, 12),
]
METHODS = ["rnn", "gru", "naive", "seasonal_naive", "drift"]


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


def forecast(method: str, history: np.ndarray, h: int, m: int) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    if method in ("rnn", "gru"):
        pred = RNNForecaster(cell=method, seed=0).fit(history).predict(h)
    elif method == "naive":
        pred = naive(history, h)
    elif method == "seasonal_naive":
        pred = seasonal_naive(history, h, m)
    else:
        pred = drift(history, h)
    return pred, time.perf_counter() - start


def main() -> int:
    rows = []
    for name, column, h, m, spacing in SERIES:
        y = load(name, column)
        origins = [y.size - h - k * spacing for k in range(N_ORIGINS - 1, -1, -1)]
        scores = {meth: {"mase": [], "smape": [], "seconds": []} for meth in METHODS}
        for origin in origins:
            history, actual = y[max(0, origin - HISTORY):origin], y[origin:origin + h]
            scale = naive_scale(history)
            for meth in METHODS:
                pred, seconds = forecast(meth, history, h, m)
                scores[meth]["mase"].append(mase(actual, pred, scale=scale))
                scores[meth]["smape"].append(smape(actual, pred))
                scores[meth]["seconds"].append(seconds)
        for meth in METHODS:
            s = scores[meth]
            rows.append({"series": name, "method": meth, "points": int(min(HISTORY, y.size)),
                         "h": h, "origins": N_ORIGINS, "mase": float(np.mean(s["mase"])),
                         "smape": float(np.mean(s["smape"])),
                         "fit_seconds": float(np.mean(s["seconds"]))})
        print(f"{name}: " + ", ".join(f"{r['method']} {r['mase']:.3f}" for r in rows[-len(METHODS):]),
              flush=True)
    write(rows)
    return 0


def write(rows: list[dict]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / "accuracy.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        "# Rolling-origin backtest: RNN and GRU against naive, seasonal naive and drift",
        "",
        f"{N_ORIGINS} origins per series, each method refit on at most {HISTORY} points before the "
        "origin (default `RNNForecaster` settings, seed 0), forecasting h steps. MASE is scaled by "
        "the in-sample naive MAE of that history; both scores are means over origins "
        "(lower is better; naive MASE < 1 means the period was calmer than the history). With "
        f"{N_ORIGINS} origins, differences of a few percent on the daily series are within noise: "
        "prices are close to a random walk, and the networks mostly learn a small drift.",
        f"Seasonal period: 5 for the daily series, 12 for core CPI. Machine: {platform.machine()}, "
        f"{os.cpu_count()} CPUs, NumPy {np.__version__}, Python {platform.python_version()}, "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, load average "
        f"{tuple(round(x, 2) for x in os.getloadavg())} at the end (the machine is shared, so "
        "the fit seconds are upper-end figures).",
        "",
        "| series | h | method | MASE | sMAPE % | mean fit s |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['series']} | {r['h']} | {r['method']} | {r['mase']:.3f} | "
                     f"{r['smape']:.3f} | {r['fit_seconds']:.2f} |")
    (RESULTS / "accuracy.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
