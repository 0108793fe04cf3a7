"""Rolling-origin backtest on the bundled real series: the RNN against the naive forecast (the
random walk, which nobody beats by much on prices), drift and seasonal naive, and the coverage
of its 80 % intervals.

For every series, ORIGINS fit origins spread evenly over its last four years (daily: 1,008 trading
days; monthly: 48 months); at each the model is fitted afresh on at most HISTORY points before the
origin, as the service's cold fits are, and then forecasts ``h`` steps from that origin and from
every later point up to the next fit origin (``predict(h, y=history so far)``: the fitted model on
newer data, as between the service's cold fits). So every point of the span is a forecast origin
(about 1,000 per daily series): 40 origins alone give coverage figures with a standard error of
about 6 points. Scores per step (1 and h): MAE ratio against naive (< 1: better than naive), the
share of actual values inside the 80 % interval, and their standard errors over fits (the
forecasts of one fit are correlated, so the fits are the independent units: a cluster bootstrap).

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
BOOTSTRAP = 1000
MIN_HISTORY = 1000  # earlier spans: at least this many points before the span starts
# name, value column, horizon h, seasonal period m, the last four years in points
SERIES = [
    ("sp500", "Close", 5, 1, 1008),
    ("nasdaq", "Close", 5, 1, 1008),
    ("wti", "DCOILWTICO", 5, 1, 1008),
    ("core-cpi", "CPILFESL", 6, 12, 48),
]


def data_path(name: str) -> Path:
    """<repo>/service/data/<name>.csv.gz, else <repo>/../shared/data/<name>.csv.gz."""
    for path in (REPO / "service" / "data" / f"{name}.csv.gz", REPO.parent / "shared" / "data" / f"{name}.csv.gz"):
        if path.exists():
            return path
    raise FileNotFoundError(f"{name}.csv.gz in neither service/data nor ../shared/data")


def load(name: str, column: str, dated: bool = False):
    """The series' values, oldest first, missing ('.') rows dropped (and their dates if ``dated``)."""
    df = pd.read_csv(data_path(name), na_values=["."])
    df["Date"] = pd.to_datetime(df["Date"], format="%m/%d/%Y")
    df = df.sort_values("Date").dropna(subset=[column])
    values = df[column].to_numpy(dtype=np.float64)
    return (values, list(df["Date"])) if dated else values


def one_fit(args) -> list[dict]:
    """Fit at one fit origin (on ``y[:first]``); forecasts and 80 % intervals of every method for
    steps 1..h from each origin ``first .. first + count - 1``."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, "blas")
    y, first, count, h, m, knobs = args
    start = time.perf_counter()
    model = RNNForecaster(season_length=m, horizon=h, **knobs).fit(y[:first])
    seconds = time.perf_counter() - start
    out = []
    for t in range(first, first + count):
        history = y[:t]
        lower, upper = model.predict_interval(h, LEVEL, y=history)
        row = {
            "actual": y[t : t + h],
            "rnn": model.predict(h, y=history),
            "lower": lower,
            "upper": upper,
            "seconds": seconds,
            "naive": naive(history, h),
            "drift": drift(history, h),
        }
        if m > 1:
            row["seasonal_naive"] = seasonal_naive(history, h, m)
        out.append(row)
    return out


def cluster_se(stat, groups: list[np.ndarray], rng) -> float:
    """Standard error of ``stat(rows)`` resampling whole fits (groups of row indices)."""
    draws = []
    for _ in range(BOOTSTRAP):
        pick = rng.integers(0, len(groups), len(groups))
        draws.append(stat(np.concatenate([groups[i] for i in pick])))
    return float(np.std(draws))


def evaluate(
    pool, y: np.ndarray, dates, name: str, h: int, m: int, end: int, span: int, origins: int, rng, knobs=None
) -> list[dict]:
    """Scores of every method over the span ``y[end - span:end]`` (see the module's docstring)."""
    fits = np.unique(np.linspace(end - span, end - h, origins).round().astype(int))
    ends = np.append(fits[1:], end - h + 1)
    jobs = [
        (y[max(0, o - HISTORY) : e + h - 1], o - max(0, o - HISTORY), e - o, h, m, knobs or {})
        for o, e in zip(fits, ends)
    ]
    per_fit = list(pool.map(one_fit, jobs))
    results = [r for block in per_fit for r in block]
    groups = np.split(np.arange(len(results)), np.cumsum([len(b) for b in per_fit])[:-1])
    firsts = np.array([g[0] for g in groups])  # the fit origins themselves
    methods = [k for k in ("rnn", "drift", "seasonal_naive") if k in results[0]]
    actual = np.array([r["actual"] for r in results])
    err = {k: np.abs(np.array([r[k] for r in results]) - actual) for k in methods + ["naive"]}
    inside = np.array([(r["lower"] <= r["actual"]) & (r["actual"] <= r["upper"]) for r in results])
    width = np.array([(r["upper"] - r["lower"]) / r["naive"] for r in results])
    rows = []
    for step in (1, h):
        j = step - 1
        for k in methods:
            ratio = lambda idx, k=k, j=j: err[k][idx, j].mean() / err["naive"][idx, j].mean()  # noqa: E731
            is_rnn = k == "rnn"
            rows.append(
                {
                    "series": name,
                    "span": f"{dates[end - span]:%Y-%m}..{dates[end - 1]:%Y-%m}",
                    "h": h,
                    "step": step,
                    "method": k,
                    "fits": len(per_fit),
                    "origins": len(results),
                    "mae_ratio": float(ratio(np.arange(len(results)))),
                    "mae_ratio_se": cluster_se(ratio, groups, rng),
                    "coverage": float(inside[:, j].mean()) if is_rnn else None,
                    "coverage_se": cluster_se(lambda idx, j=j: inside[idx, j].mean(), groups, rng) if is_rnn else None,
                    "relative_width": float(width[:, j].mean()) if is_rnn else None,
                    "fit_origins_mae_ratio": float(ratio(firsts)),
                    "fit_origins_coverage": float(inside[firsts, j].mean()) if is_rnn else None,
                    "fit_seconds": float(np.mean([b[0]["seconds"] for b in per_fit])) if is_rnn else 0.0,
                }
            )
    print(
        f"{name} {rows[0]['span']}: "
        + ", ".join(
            f"step {r['step']} {r['method']} {r['mae_ratio']:.3f}"
            + (f" coverage {r['coverage']:.2f}" if r["coverage"] is not None else "")
            for r in rows
        ),
        flush=True,
    )
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--origins", type=int, default=ORIGINS, help="fit origins per series")
    parser.add_argument(
        "--no-earlier",
        action="store_true",
        help="only the last four years (not the earlier four-year spans of the daily series)",
    )
    parser.add_argument("--precision", default=None, help="the RNN's arithmetic, float64 or float32")
    parser.add_argument("--out", default="accuracy", help="result file stem in bench/results/")
    args = parser.parse_args(argv)
    knobs = {} if args.precision is None else {"precision": args.precision}
    rows, earlier = [], []
    rng = np.random.default_rng(0)
    with ProcessPoolExecutor(args.workers) as pool:
        for name, column, h, m, span in SERIES:
            y, dates = load(name, column, dated=True)
            rows += evaluate(pool, y, dates, name, h, m, y.size, span, args.origins, rng, knobs)
        for name, column, h, m, span in SERIES:
            if m > 1 or args.no_earlier:
                continue
            y, dates = load(name, column, dated=True)
            end = y.size - span
            while end - span >= MIN_HISTORY:
                earlier += [
                    r
                    for r in evaluate(pool, y, dates, name, h, m, end, span, args.origins, rng, knobs)
                    if r["method"] == "rnn"
                ]
                end -= span
    write(rows, earlier, args.origins, args.out)
    return 0


def write(rows: list[dict], earlier: list[dict], origins: int, stem: str = "accuracy") -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / f"{stem}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows + earlier)
    lines = [
        "# Rolling-origin backtest on the bundled series: RNN against naive, and its 80 % intervals",
        "",
        f"{origins} fit origins per series over its last four years, each a fresh fit on at most {HISTORY} "
        "points before it (`RNNForecaster(season_length=m, horizon=h)`, otherwise defaults: what the "
        "service runs); each fit forecasts h steps from its origin and from every later point up to the "
        "next fit origin (the fitted model on newer data), so every point of the span is a forecast "
        "origin. MAE ratio: the method's mean absolute error at that step divided by the naive "
        "forecast's over the same origins (< 1 is better than naive; prices are close to a random walk, "
        "so about 1 is the best to expect). Coverage: share of actual values inside the 80 % interval; "
        "width: the interval's width relative to the level. +- : standard error, resampling whole fits "
        "(the forecasts of one fit are correlated). The last two columns: the same scores at the fit "
        "origins only (one forecast per fit, what a fresh fit at each origin gives; noisier). Machine: "
        f"{platform.machine()}, {os.cpu_count()} CPUs, NumPy {np.__version__}, Python "
        f"{platform.python_version()}, load average {tuple(round(x, 2) for x in os.getloadavg())} at the end.",
        "",
        "| series | span | step | method | origins (fits) | MAE / naive MAE | 80 % coverage | width | fit s "
        "| fit origins: MAE / naive | fit origins: coverage |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cov = "" if r["coverage"] is None else f"{r['coverage']:.3f} +- {r['coverage_se']:.3f}"
        wid = "" if r["relative_width"] is None else f"{100 * r['relative_width']:.1f} %"
        fcov = "" if r["fit_origins_coverage"] is None else f"{r['fit_origins_coverage']:.2f}"
        lines.append(
            f"| {r['series']} | {r['span']} | {r['step']} | {r['method']} | {r['origins']} ({r['fits']}) | "
            f"{r['mae_ratio']:.4f} +- {r['mae_ratio_se']:.4f} | {cov} | {wid} | {r['fit_seconds']:.2f} | "
            f"{r['fit_origins_mae_ratio']:.3f} | {fcov} |"
        )
    if earlier:
        lines += [
            "",
            "## Earlier four-year spans of the daily series (other regimes: 2000-02, 2008, 2020 ...)",
            "",
            "The same scores for the RNN over each earlier four-year span with at least "
            f"{MIN_HISTORY} points of history before it.",
            "",
            "| series | span | step | origins (fits) | MAE / naive MAE | 80 % coverage |",
            "|---|---|---|---|---|---|",
        ]
        for r in earlier:
            lines.append(
                f"| {r['series']} | {r['span']} | {r['step']} | {r['origins']} ({r['fits']}) | "
                f"{r['mae_ratio']:.4f} +- {r['mae_ratio_se']:.4f} | "
                f"{r['coverage']:.3f} +- {r['coverage_se']:.3f} |"
            )
        ratios = [r["mae_ratio"] for r in rows + earlier if r["method"] == "rnn" and r["h"] == 5]
        cover = [r["coverage"] for r in rows + earlier if r["method"] == "rnn" and r["h"] == 5]
        lines += [
            "",
            f"All daily spans (h = 5 series), steps 1 and 5: MAE / naive {min(ratios):.4f}..{max(ratios):.4f}, "
            f"80 % coverage {min(cover):.3f}..{max(cover):.3f}.",
        ]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
