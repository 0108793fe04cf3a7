"""Rolling-origin backtest on the bundled real series: the RNN, or the published forecast, against
the naive forecast (the random walk, which nobody beats by much on prices), drift and seasonal
naive, and the coverage of its 80 % and 95 % intervals.

For every series, ORIGINS fit origins spread evenly over its last four years (daily: 1,008 trading
days; monthly: 48 months); at each the model is fitted afresh on at most HISTORY points before the
origin, as the service's cold fits are, and then forecasts ``h`` steps from that origin and from
every later point up to the next fit origin (``predict(h, y=history so far)``: the fitted model on
newer data, as between the service's cold fits). So every point of the span is a forecast origin
(about 1,000 per daily series): 40 origins alone give coverage figures with a standard error of
about 6 points. ``--model published``: the published forecast (``AutoForecaster``, the RNN with
AutoETS and DOTM, built as the service builds it), fitted cold at each fit origin and then, as the
service's daily runs do, warm-started with each new point up to the next fit origin (the service
also retrains cold every ``full_retrain_days`` and adapts interval widths to realised coverage,
which this leaves out). Scores per step (1 and h): MAE ratio against naive (< 1: better than naive), the
share of actual values inside the 80 % interval, and their standard errors over fits (the
forecasts of one fit are correlated, so the fits are the independent units: a cluster bootstrap).

    OPENBLAS_NUM_THREADS=1 python bench/accuracy.py      # writes bench/results/accuracy.md and .csv
    OPENBLAS_NUM_THREADS=1 python bench/accuracy.py --model published   # accuracy-published.md, .csv
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

from tickcast.models import AutoForecaster, RNNForecaster, drift, naive, seasonal_naive

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
HISTORY = 2500
ORIGINS = 40
LEVELS = (0.8, 0.95)
BOOTSTRAP = 1000
# the model scored: (its name in the report, how it is fitted, how it forecasts between fits)
WHAT = {
    "rnn": (
        "RNN",
        "`RNNForecaster(season_length=m, horizon=h)`, otherwise defaults",
        "the fitted model on newer data",
    ),
    "published": (
        "the published forecast",
        "`AutoForecaster(season_length=m)`, the RNN with AutoETS and DOTM, defaults: what the service runs",
        "each day the model warm-started with the new point, as the service's daily runs do",
    ),
}
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
    """Fit at one fit origin (on ``y[:first]``); forecasts and 80 % and 95 % intervals of every
    method for steps 1..h from each origin ``first .. first + count - 1``."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, "blas")
    y, first, count, h, m, knobs, kind = args
    start = time.perf_counter()
    if kind == "published":
        model = AutoForecaster(season_length=m, seed=0, rnn=dict(knobs)).fit(y[max(0, first - HISTORY) : first])
    else:
        model = RNNForecaster(season_length=m, horizon=h, **knobs).fit(y[:first])
    seconds = time.perf_counter() - start
    out = []
    for t in range(first, first + count):
        history = y[:t]
        if kind == "published":
            if t > first:  # the next day's run: the model continued with the new point
                window = y[max(0, t - HISTORY) : t]
                model = AutoForecaster(season_length=m, seed=0, rnn=dict(knobs)).fit(window, warm_start=model)
            point, intervals = model.predict(h), model.predict_interval(h, list(LEVELS))
            members = model.predict_members(h)
        else:
            point = model.predict(h, y=history)
            intervals = [model.predict_interval(h, level, y=history) for level in LEVELS]
        row = {
            "actual": y[t : t + h],
            "model": point,
            "intervals": intervals,
            "seconds": seconds,
            "naive": naive(history, h),
            "drift": drift(history, h),
        }
        if m > 1:
            row["seasonal_naive"] = seasonal_naive(history, h, m)
        if kind == "published":  # each combined model's own forecast, scored beside (MAE only)
            row.update({f"{name} (member)": f for name, f in members.items()})
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
    pool, y: np.ndarray, dates, name: str, h: int, m: int, end: int, span: int, origins: int, rng, knobs=None,
    kind: str = "rnn",
) -> list[dict]:  # fmt: skip
    """Scores of every method over the span ``y[end - span:end]`` (see the module's docstring);
    ``kind``: the model scored, "rnn" or "published"."""
    fits = np.unique(np.linspace(end - span, end - h, origins).round().astype(int))
    ends = np.append(fits[1:], end - h + 1)
    jobs = [
        (y[max(0, o - HISTORY) : e + h - 1], o - max(0, o - HISTORY), e - o, h, m, knobs or {}, kind)
        for o, e in zip(fits, ends)
    ]
    per_fit = list(pool.map(one_fit, jobs))
    results = [r for block in per_fit for r in block]
    groups = np.split(np.arange(len(results)), np.cumsum([len(b) for b in per_fit])[:-1])
    firsts = np.array([g[0] for g in groups])  # the fit origins themselves
    for r in results:
        r[kind] = r.pop("model")
    own = sorted({k for r in results for k in r if k.endswith("(member)")})
    own = [k for k in own if all(k in r for r in results)]  # members that forecast at every origin
    methods = [k for k in (kind, *own, "drift", "seasonal_naive") if k in results[0]]
    actual = np.array([r["actual"] for r in results])
    err = {k: np.abs(np.array([r[k] for r in results]) - actual) for k in methods + ["naive"]}
    inside = {
        level: np.array(
            [(r["intervals"][i][0] <= r["actual"]) & (r["actual"] <= r["intervals"][i][1]) for r in results]
        )
        for i, level in enumerate(LEVELS)
    }
    width = np.array([(r["intervals"][0][1] - r["intervals"][0][0]) / r["naive"] for r in results])
    rows = []
    for step in (1, h):
        j = step - 1
        for k in methods:
            ratio = lambda idx, k=k, j=j: err[k][idx, j].mean() / err["naive"][idx, j].mean()  # noqa: E731
            is_rnn = k == kind
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
                    **{
                        f"coverage{tag}": float(inside[level][:, j].mean()) if is_rnn else None
                        for level, tag in zip(LEVELS, ("", "95"))
                    },
                    **{
                        f"coverage{tag}_se": (
                            cluster_se(lambda idx, j=j, c=inside[level]: c[idx, j].mean(), groups, rng)
                            if is_rnn
                            else None
                        )
                        for level, tag in zip(LEVELS, ("", "95"))
                    },
                    "relative_width": float(width[:, j].mean()) if is_rnn else None,
                    "fit_origins_mae_ratio": float(ratio(firsts)),
                    "fit_origins_coverage": float(inside[LEVELS[0]][firsts, j].mean()) if is_rnn else None,
                    "fit_seconds": float(np.mean([b[0]["seconds"] for b in per_fit])) if is_rnn else 0.0,
                }
            )
    print(
        f"{name} {rows[0]['span']}: "
        + ", ".join(
            f"step {r['step']} {r['method']} {r['mae_ratio']:.3f}"
            + (f" coverage {r['coverage']:.2f} / {r['coverage95']:.2f}" if r["coverage"] is not None else "")
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
    parser.add_argument(
        "--model", choices=("rnn", "published"), default="rnn", help="the RNN alone, or the published forecast"
    )
    parser.add_argument("--out", default=None, help="result file stem in bench/results/ (accuracy[-published])")
    args = parser.parse_args(argv)
    knobs = {} if args.precision is None else {"precision": args.precision}
    kind = args.model
    stem = args.out or ("accuracy" if kind == "rnn" else "accuracy-published")
    rows, earlier = [], []
    rng = np.random.default_rng(0)
    with ProcessPoolExecutor(args.workers) as pool:
        for name, column, h, m, span in SERIES:
            y, dates = load(name, column, dated=True)
            rows += evaluate(pool, y, dates, name, h, m, y.size, span, args.origins, rng, knobs, kind)
        for name, column, h, m, span in SERIES:
            if m > 1 or args.no_earlier:
                continue
            y, dates = load(name, column, dated=True)
            end = y.size - span
            while end - span >= MIN_HISTORY:
                earlier += [
                    r
                    for r in evaluate(pool, y, dates, name, h, m, end, span, args.origins, rng, knobs, kind)
                    if r["method"] == kind
                ]
                end -= span
    write(rows, earlier, args.origins, stem, kind)
    return 0


def write(rows: list[dict], earlier: list[dict], origins: int, stem: str = "accuracy", kind: str = "rnn") -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / f"{stem}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows + earlier)
    lines = [
        f"# Rolling-origin backtest on the bundled series: {WHAT[kind][0]} against naive, and its intervals",
        "",
        f"{origins} fit origins per series over its last four years, each a fresh fit on at most {HISTORY} "
        f"points before it ({WHAT[kind][1]}); each fit forecasts h steps from its origin and from every later "
        f"point up to the next fit origin ({WHAT[kind][2]}), so every point of the span is a forecast "
        "origin. MAE ratio: the method's mean absolute error at that step divided by the naive "
        "forecast's over the same origins (< 1 is better than naive; prices are close to a random walk, "
        "so about 1 is the best to expect). Coverage: share of actual values inside the 80 % and 95 % "
        "intervals; "
        "width: the interval's width relative to the level. +- : standard error, resampling whole fits "
        "(the forecasts of one fit are correlated). The last two columns: the same scores at the fit "
        "origins only (one forecast per fit, what a fresh fit at each origin gives; noisier). Machine: "
        f"{platform.machine()}, {os.cpu_count()} CPUs, NumPy {np.__version__}, Python "
        f"{platform.python_version()}, load average {tuple(round(x, 2) for x in os.getloadavg())} at the end.",
        "",
        "| series | span | step | method | origins (fits) | MAE / naive MAE | 80 % coverage | 95 % coverage "
        "| width (80 %) | fit s | fit origins: MAE / naive | fit origins: 80 % coverage |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cov = "" if r["coverage"] is None else f"{r['coverage']:.3f} +- {r['coverage_se']:.3f}"
        cov95 = "" if r["coverage95"] is None else f"{r['coverage95']:.3f} +- {r['coverage95_se']:.3f}"
        wid = "" if r["relative_width"] is None else f"{100 * r['relative_width']:.1f} %"
        fcov = "" if r["fit_origins_coverage"] is None else f"{r['fit_origins_coverage']:.2f}"
        lines.append(
            f"| {r['series']} | {r['span']} | {r['step']} | {r['method']} | {r['origins']} ({r['fits']}) | "
            f"{r['mae_ratio']:.4f} +- {r['mae_ratio_se']:.4f} | {cov} | {cov95} | {wid} | {r['fit_seconds']:.2f} | "
            f"{r['fit_origins_mae_ratio']:.3f} | {fcov} |"
        )
    if earlier:
        lines += [
            "",
            "## Earlier four-year spans of the daily series (other regimes: 2000-02, 2008, 2020 ...)",
            "",
            f"The same scores for the {WHAT[kind][0]} over each earlier four-year span with at least "
            f"{MIN_HISTORY} points of history before it.",
            "",
            "| series | span | step | origins (fits) | MAE / naive MAE | 80 % coverage | 95 % coverage |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in earlier:
            lines.append(
                f"| {r['series']} | {r['span']} | {r['step']} | {r['origins']} ({r['fits']}) | "
                f"{r['mae_ratio']:.4f} +- {r['mae_ratio_se']:.4f} | "
                f"{r['coverage']:.3f} +- {r['coverage_se']:.3f} | {r['coverage95']:.3f} +- {r['coverage95_se']:.3f} |"
            )
        daily = [r for r in rows + earlier if r["method"] == kind and r["h"] == 5]
        ratios = [r["mae_ratio"] for r in daily]
        cover, cover95 = [r["coverage"] for r in daily], [r["coverage95"] for r in daily]
        lines += [
            "",
            f"All daily spans (h = 5 series), steps 1 and 5: MAE / naive {min(ratios):.4f}..{max(ratios):.4f}, "
            f"80 % coverage {min(cover):.3f}..{max(cover):.3f}, 95 % coverage {min(cover95):.3f}..{max(cover95):.3f}.",
        ]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
