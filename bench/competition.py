"""The M3 competition benchmark: every series forecast over its official horizon from its
training part, scored on its test part, per category and overall, for the statistical benchmarks
and tickcast's RNN, per series and across series, side by side in one run.

    OPENBLAS_NUM_THREADS=1 python bench/competition.py                 # all 3,003 series
    python bench/competition.py --data other.csv.gz --paths local      # any file of that shape

Data: a long CSV (optionally gzipped) with columns series, category, horizon, part (train or
test), t (1-based within the part), value: ../shared/data/m3.csv.gz by default. The seasonal
period comes from the category (yearly 1, quarterly 4, monthly 12, weekly 52, daily 7,
hourly 24, anything else 1); the RNN is told only that period, never the horizon.

Methods: Naive2 (naive on the seasonally adjusted series), seasonal naive, Theta (classic: SES
with drift of half the trend slope, seasonally adjusted), ``rnn-local`` (``RNNForecaster(
season_length=m).fit(y).predict(h)`` for every series on its own) and ``rnn-global`` (one
``RNNForecaster(season_length=m).fit_many(...)`` per category, then ``predict_many(h)``).
Scores: sMAPE (percent, the M3 formula 200|y - f| / (|y| + |f|), mean over the horizon, then
over series) and MASE (scaled by the in-sample seasonal naive MAE). Writes
bench/results/competition.md and .csv. Work is spread over ``--workers`` processes (series in
chunks for the local path, categories for the global one); seconds are wall time.
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

from tickcast.models import RNNForecaster, naive2, seasonal_naive, theta

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
DEFAULT_DATA = REPO.parent / "shared" / "data" / "m3.csv.gz"
PERIODS = {"yearly": 1, "quarterly": 4, "monthly": 12, "weekly": 52, "daily": 7, "hourly": 24}
BASELINES = {"naive2": naive2, "seasonal_naive": seasonal_naive, "theta": theta}


def period(category: str) -> int:
    return PERIODS.get(str(category).lower(), 1)


def load(path: Path) -> list[dict]:
    """One dict per series: id, category, m, h, train, test (oldest first)."""
    df = pd.read_csv(path)
    missing = {"series", "category", "part", "t", "value"} - set(df.columns)
    if missing:
        raise SystemExit(f"{path}: missing columns {sorted(missing)}")
    df = df.sort_values(["series", "part", "t"])
    out = []
    for sid, g in df.groupby("series", sort=True):
        train = g.loc[g["part"] == "train", "value"].to_numpy(np.float64)
        test = g.loc[g["part"] == "test", "value"].to_numpy(np.float64)
        category = str(g["category"].iloc[0])
        out.append(
            {"id": sid, "category": category, "m": period(category), "h": test.size, "train": train, "test": test}
        )
    return out


def smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    return float(np.mean(200.0 * np.abs(actual - forecast) / (np.abs(actual) + np.abs(forecast))))


def mase(actual: np.ndarray, forecast: np.ndarray, train: np.ndarray, m: int) -> float:
    m = m if train.size > m else 1
    scale = np.mean(np.abs(train[m:] - train[:-m])) if train.size > m else 0.0
    return float(np.mean(np.abs(actual - forecast)) / scale) if scale > 0 else float("nan")


LEVEL = 0.8


def run_local(series: list[dict], seasonal: bool, knobs: dict) -> list[tuple]:
    """Per-series fits: (id, forecast, (lower, upper), seconds) for each series."""
    out = []
    for s in series:
        start = time.perf_counter()
        model = RNNForecaster(season_length=s["m"] if seasonal else 0, **knobs).fit(s["train"])
        out.append((s["id"], model.predict(s["h"]), model.predict_interval(s["h"], LEVEL), time.perf_counter() - start))
    return out


def run_global(series: list[dict], seasonal: bool, knobs: dict) -> list[tuple]:
    """One fit across the series of a category: (id, forecast, (lower, upper), seconds / series)."""
    start = time.perf_counter()
    model = RNNForecaster(season_length=series[0]["m"] if seasonal else 0, **knobs).fit_many(
        [s["train"] for s in series]
    )
    h = max(s["h"] for s in series)
    forecasts, intervals = model.predict_many(h), model.predict_interval_many(h, LEVEL)
    per_series = (time.perf_counter() - start) / len(series)
    return [
        (s["id"], f[: s["h"]], (lo[: s["h"]], up[: s["h"]]), per_series)
        for s, f, (lo, up) in zip(series, forecasts, intervals)
    ]


def _limit_blas() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, "blas")


def forecasts_for(path: str, series: list[dict], workers: int, seasonal: bool, knobs: dict) -> tuple[dict, float]:
    """{id: (forecast, seconds)} for the path, and the wall time it took."""
    start = time.perf_counter()
    if path == "rnn-local":
        chunks = [series[i :: workers * 8] for i in range(workers * 8)]
        jobs = [(run_local, chunk) for chunk in chunks if chunk]
    else:
        by_cat: dict[str, list[dict]] = {}
        for s in series:
            by_cat.setdefault(s["category"], []).append(s)
        jobs = [(run_global, group) for group in sorted(by_cat.values(), key=len, reverse=True)]
    results = {}
    with ProcessPoolExecutor(workers, initializer=_limit_blas) as pool:
        futures = [pool.submit(fn, chunk, seasonal, knobs) for fn, chunk in jobs]
        done = 0
        for future in futures:
            for sid, forecast, interval, seconds in future.result():
                results[sid] = (forecast, seconds, interval)
            done += 1
            print(f"  {path}: {done}/{len(futures)} task(s), {time.perf_counter() - start:.0f} s", flush=True)
    return results, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="long CSV of series (default: M3)")
    parser.add_argument(
        "--paths",
        default="rnn-local,rnn-global",
        help="RNN paths to run: rnn-local, rnn-global (the baselines always run)",
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--every", type=int, default=1, help="use every k-th series (quick looks)")
    parser.add_argument(
        "--no-period", action="store_true", help="do not tell the RNN the seasonal period (it detects one)"
    )
    parser.add_argument(
        "--ensemble",
        type=int,
        default=None,
        help="members per model instead of the default (to measure what the ensemble costs)",
    )
    parser.add_argument(
        "--precision", default=None, help="the RNN's arithmetic, float64 or float32 (default: the model's)"
    )
    parser.add_argument("--out", default="competition", help="result file stem in bench/results/")
    args = parser.parse_args(argv)
    if not args.data.exists():
        raise SystemExit(f"data file not found: {args.data}")
    series = load(args.data)[:: args.every]
    print(f"{len(series)} series from {args.data}", flush=True)
    paths = [p for p in args.paths.split(",") if p]
    forecasts: dict[str, dict] = {}
    seconds: dict[str, float] = {}
    for name, fn in BASELINES.items():
        start = time.perf_counter()
        forecasts[name] = {
            s["id"]: (
                fn(s["train"], s["h"], s["m"])
                if name != "seasonal_naive"
                else fn(s["train"], s["h"], min(s["m"], s["train"].size)),
                0.0,
                None,
            )
            for s in series
        }
        seconds[name] = time.perf_counter() - start
    for path in paths:
        knobs = {} if args.ensemble is None else {"ensemble": args.ensemble}
        if args.precision is not None:
            knobs["precision"] = args.precision
        forecasts[path], seconds[path] = forecasts_for(path, series, args.workers, not args.no_period, knobs)
    rows = score(series, forecasts, seconds)
    write(rows, args, len(series))
    for r in rows:
        if r["category"] == "all":
            print(f"{r['method']:>15}: sMAPE {r['smape']:.2f}  MASE {r['mase']:.3f}  ({r['seconds']:.0f} s)")
    return 0


def score(series: list[dict], forecasts: dict, seconds: dict) -> list[dict]:
    categories = sorted({s["category"] for s in series}, key=lambda c: list(PERIODS).index(c) if c in PERIODS else 99)
    rows = []
    for method, by_id in forecasts.items():
        per_cat: dict[str, list] = {}
        for s in series:
            f, sec, interval = by_id[s["id"]]
            inside = (
                np.nan if interval is None else float(np.mean((interval[0] <= s["test"]) & (s["test"] <= interval[1])))
            )
            per_cat.setdefault(s["category"], []).append(
                (smape(s["test"], f), mase(s["test"], f, s["train"], s["m"]), sec, inside)
            )
        everything = [v for c in categories for v in per_cat[c]]
        for cat in categories + ["all"]:
            vals = np.array(per_cat[cat] if cat != "all" else everything)
            rows.append(
                {
                    "method": method,
                    "category": cat,
                    "series": len(vals),
                    "smape": float(np.mean(vals[:, 0])),
                    "mase": float(np.nanmean(vals[:, 1])),
                    "coverage": None if np.isnan(vals[0, 3]) else float(np.mean(vals[:, 3])),
                    "seconds": seconds[method] if cat == "all" else float(np.sum(vals[:, 2])),
                }
            )
    return rows


def write(rows: list[dict], args, n: int) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / f"{args.out}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    cats = list(dict.fromkeys(r["category"] for r in rows))
    get = {(r["method"], r["category"]): r for r in rows}
    lines = [
        "# M3 competition benchmark: sMAPE (MASE) per category",
        "",
        f"{n} series from `{args.data.name}`, each forecast over its official horizon from its training "
        f"part and scored on its test part (lower is better). The RNN is told the seasonal period of the "
        f"category{' (here: not even that; it detects one)' if args.no_period else ''}, nothing else: default "
        f"settings otherwise{'' if args.ensemble is None else f' except ensemble={args.ensemble}'}"
        f"{'' if args.precision is None else f', precision={args.precision}'}. "
        "`rnn-local`: one model per series; `rnn-global`: one model per category "
        "trained across its series. Seconds: wall time of the whole path on "
        f"{args.workers} worker process(es) (the `all` column; per category the sum of per-series fit "
        f"times). Machine: {platform.machine()}, {os.cpu_count()} CPUs, NumPy {np.__version__}, Python "
        f"{platform.python_version()}, load average {tuple(round(x, 2) for x in os.getloadavg())} at the end.",
        "",
        "| method | " + " | ".join(cats) + " | seconds |",
        "|---|" + "---|" * (len(cats) + 1),
    ]
    for m in methods:
        cells = [f"{get[(m, c)]['smape']:.2f} ({get[(m, c)]['mase']:.3f})" for c in cats]
        lines.append(f"| {m} | " + " | ".join(cells) + f" | {get[(m, 'all')]['seconds']:.0f} |")
    lines += [
        "",
        f"Coverage of the RNN's {LEVEL:.0%} prediction intervals over the test parts (share of "
        "actual values inside; nominal 0.80):",
        "",
        "| method | " + " | ".join(cats) + " |",
        "|---|" + "---|" * len(cats),
    ]
    for m in methods:
        if get[(m, "all")]["coverage"] is not None:
            lines.append(f"| {m} | " + " | ".join(f"{get[(m, c)]['coverage']:.3f}" for c in cats) + " |")
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
