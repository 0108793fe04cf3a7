"""The M3 competition benchmark: every series forecast over its official horizon from its
training part, scored on its test part, per category and overall, for the statistical benchmarks,
the challengers, tickcast's RNN and the published AutoForecaster, side by side in one run.

    OPENBLAS_NUM_THREADS=1 python bench/competition.py --statsforecast   # all 3,003 series
    python bench/competition.py --paths auto-stat --every 10              # a quick look
    python bench/competition.py --data other.csv.gz --paths auto-global   # any file of that shape
    python bench/competition.py --carry bench/results/competition.csv    # keep the last run's sf-* rows

Data: a long CSV (optionally gzipped) with columns series, category, horizon, part (train or
test), t (1-based within the part), value: ../shared/data/m3.csv.gz by default. The seasonal
period comes from the category (yearly 1, quarterly 4, monthly 12, weekly 52, daily 7,
hourly 24, anything else 1); the models are told only that period, never the horizon.

Methods: Naive2 (naive on the seasonally adjusted series), seasonal naive and Theta (classic: SES
with drift of half the trend slope, seasonally adjusted), always; then the paths asked for:
``auto-global`` (the published forecast: ``AutoForecaster(season_length=m).fit_many(...)`` per
category, with its members' own forecasts from the same fit as ``rnn-global``, ``ets`` and
``dotm``), ``auto-local`` (``AutoForecaster(season_length=m).fit(y)`` per series, its RNN as
``rnn-local``), ``auto-stat`` (the combination without the RNN), ``rnn-local``/``rnn-global``
(the RNN alone); with ``--statsforecast`` (when it is installed) statsforecast's AutoETS, AutoCES,
DynamicOptimizedTheta and AutoARIMA and the median of their forecasts (statsforecast pins pandas
below tickcast's: installed beside tickcast it changes the environment being measured, so
``--carry`` keeps an earlier run's rows of the methods not run now, and says so in the report).
Scores: sMAPE (percent, the M3 formula 200|y - f| / (|y| + |f|)) averaged over all series x
horizon points (the M3 paper's "official" average, where monthly series carry 69 % of the weight)
and over series (mean over the horizon, then over series); MASE (scaled by the in-sample seasonal
naive MAE); the share of test values inside the 80 % and 95 % intervals. Writes
bench/results/competition.md and .csv (``--out``). Work is spread over ``--workers`` processes
(series in chunks for the per-series paths, categories for the others); seconds are wall time,
CPU seconds those of the work in the workers.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from tickcast.models import AutoForecaster, RNNForecaster, naive2, seasonal_naive, theta
from tickcast.models.auto import DEFAULT_MEMBERS

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


LEVELS = (0.8, 0.95)


def _cpu() -> float:
    return time.process_time()


def run_local(series: list[dict], seasonal: bool, knobs: dict) -> tuple[list[tuple], float]:
    """Per-series RNN fits: ([(method, id, forecast, intervals)], CPU seconds)."""
    start, out = _cpu(), []
    for s in series:
        model = RNNForecaster(season_length=s["m"] if seasonal else 0, **knobs).fit(s["train"])
        out.append(("rnn-local", s["id"], model.predict(s["h"]), _levels_one(model, s["h"])))
    return out, _cpu() - start


def run_global(series: list[dict], seasonal: bool, knobs: dict) -> tuple[list[tuple], float]:
    """One RNN across the series of a category."""
    start = _cpu()
    model = RNNForecaster(season_length=series[0]["m"] if seasonal else 0, **knobs).fit_many(
        [s["train"] for s in series]
    )
    h = max(s["h"] for s in series)
    out = _rows("rnn-global", series, model.predict_many(h), _levels_many(model, h))
    return out, _cpu() - start


def _levels_many(model, h: int) -> list:
    """Intervals at every level, per series (the RNN takes one level per call)."""
    per_level = [model.predict_interval_many(h, level) for level in LEVELS]
    return [list(ivs) for ivs in zip(*per_level)]


def _levels_one(model, h: int) -> list:
    return [model.predict_interval(h, level) for level in LEVELS]


def _rows(method: str, series: list[dict], forecasts, intervals) -> list[tuple]:
    return [
        (method, s["id"], f[: s["h"]], [(lo[: s["h"]], up[: s["h"]]) for lo, up in iv])
        for s, f, iv in zip(series, forecasts, intervals)
    ]


def _auto(series: list[dict], seasonal: bool, knobs: dict, members: tuple) -> AutoForecaster:
    rnn = {k: knobs[k] for k in ("ensemble", "precision") if knobs.get(k) is not None}
    return AutoForecaster(
        season_length=series[0]["m"] if seasonal else 0, members=members, rnn=rnn, **knobs.get("auto", {})
    )


def run_auto_part(series: list[dict], seasonal: bool, knobs: dict, part: int, parts: int):
    """One of ``parts`` shares of the published forecast's fit of a category (its RNN fits and a
    slice of its challengers): (the AutoPart, CPU seconds)."""
    start = _cpu()
    model = _auto(series, seasonal, knobs, DEFAULT_MEMBERS)
    return model.fit_many_part([s["train"] for s in series], part=part, parts=parts), _cpu() - start


def auto_global_rows(series: list[dict], model: AutoForecaster) -> list[tuple]:
    """The published forecast of a category and its members' forecasts (the RNN across series,
    AutoETS, Theta), all from the same fit."""
    h = max(s["h"] for s in series)
    out = _rows("auto-global", series, model.predict_many(h), model.predict_interval_many(h, list(LEVELS)))
    members = model.predict_members_many(h)
    for name, member in model.members_.items():
        method = MEMBER_ROWS[name] + ("-global" if name == "rnn" else "")
        out += _rows(method, series, [m[name] for m in members], _levels_many(member, h))
    return out


def run_auto_global(series: list[dict], seasonal: bool, knobs: dict) -> tuple[list[tuple], float]:
    """The published forecast: AutoForecaster.fit_many over a category, in one process."""
    start = _cpu()
    model = _auto(series, seasonal, knobs, DEFAULT_MEMBERS).fit_many([s["train"] for s in series])
    return auto_global_rows(series, model), _cpu() - start


def run_auto_stat(series: list[dict], seasonal: bool, knobs: dict) -> tuple[list[tuple], float]:
    """The combination without the RNN (AutoETS and Theta only): what the RNN adds, and costs."""
    start = _cpu()
    model = _auto(series, seasonal, knobs, ("ets", "theta")).fit_many([s["train"] for s in series])
    h = max(s["h"] for s in series)
    out = _rows("auto-stat", series, model.predict_many(h), model.predict_interval_many(h, list(LEVELS)))
    return out, _cpu() - start


def run_auto_local(series: list[dict], seasonal: bool, knobs: dict) -> tuple[list[tuple], float]:
    """AutoForecaster.fit(y) per series (no across-series training); its RNN is rnn-local."""
    start, out = _cpu(), []
    for s in series:
        model = _auto([s], seasonal, knobs, DEFAULT_MEMBERS).fit(s["train"])
        out.append(("auto-local", s["id"], model.predict(s["h"]), model.predict_interval(s["h"], list(LEVELS))))
        if "rnn" in model.members_:
            rnn = model.members_["rnn"]
            out.append(("rnn-local", s["id"], rnn.predict(s["h"]), _levels_one(rnn, s["h"])))
    return out, _cpu() - start


MEMBER_ROWS = {"rnn": "rnn", "ets": "ets", "theta": "dotm", "naive": "naive", "seasonal_naive": "snaive"}
PATHS = {
    "auto-global": (run_auto_global, "category"),
    "auto-local": (run_auto_local, "chunks"),
    "auto-stat": (run_auto_stat, "category"),
    "rnn-local": (run_local, "chunks"),
    "rnn-global": (run_global, "category"),
}


def _limit_blas() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, "blas")


def forecasts_for(path: str, series: list[dict], workers: int, seasonal: bool, knobs: dict):
    """{method: {id: (forecast, intervals)}} for the path, its wall time and CPU seconds."""
    start = time.perf_counter()
    fn, split = PATHS[path]
    if path == "auto-global" and workers > 1 and not knobs.get("one_process"):
        return auto_global_in_parts(series, workers, seasonal, knobs, start)
    if split == "chunks":
        chunks = [series[i :: workers * 8] for i in range(workers * 8)]
        jobs = [chunk for chunk in chunks if chunk]
    else:
        by_cat: dict[str, list[dict]] = {}
        for s in series:
            by_cat.setdefault(s["category"], []).append(s)
        jobs = sorted(by_cat.values(), key=len, reverse=True)
    results: dict[str, dict] = {}
    cpu = 0.0
    with ProcessPoolExecutor(workers, initializer=_limit_blas) as pool:
        futures = [pool.submit(fn, chunk, seasonal, knobs) for chunk in jobs]
        for done, future in enumerate(futures, 1):
            rows, seconds = future.result()
            cpu += seconds
            for method, sid, forecast, intervals in rows:
                results.setdefault(method, {})[sid] = (forecast, intervals)
            print(f"  {path}: {done}/{len(futures)} task(s), {time.perf_counter() - start:.0f} s", flush=True)
    return results, time.perf_counter() - start, cpu


def auto_global_in_parts(series: list[dict], workers: int, seasonal: bool, knobs: dict, start: float):
    """auto-global with every category's fit spread over the workers (``fit_many_part``, one part
    per worker), combined here (``AutoForecaster.combine``: the model fit_many gives)."""
    by_cat: dict[str, list[dict]] = {}
    for s in series:
        by_cat.setdefault(s["category"], []).append(s)
    results: dict[str, dict] = {}
    cpu = 0.0
    with ProcessPoolExecutor(workers, initializer=_limit_blas) as pool:
        futures = {
            cat: [pool.submit(run_auto_part, group, seasonal, knobs, k, workers) for k in range(workers)]
            for cat, group in sorted(by_cat.items(), key=lambda kv: -len(kv[1]))
        }
        for cat, parts in futures.items():
            done = [f.result() for f in parts]
            cpu += sum(seconds for _, seconds in done)
            before = _cpu()
            model = AutoForecaster.combine([part for part, _ in done])
            rows = auto_global_rows(by_cat[cat], model)
            cpu += _cpu() - before
            for method, sid, forecast, intervals in rows:
                results.setdefault(method, {})[sid] = (forecast, intervals)
            print(f"  auto-global: {cat} in {workers} parts, {time.perf_counter() - start:.0f} s", flush=True)
    return results, time.perf_counter() - start, cpu


def _cpu_with_children() -> float:
    """CPU seconds of this process and of its finished child processes (statsforecast's workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run_statsforecast(series: list[dict], names: list[str], workers: int) -> tuple[dict, dict]:
    """statsforecast's models on the same series (optional: only when it is installed), each
    timed alone, plus the median of their forecasts (statsforecast's M3 ensemble)."""
    try:
        import statsforecast  # noqa: F401  (optional: the comparison only)
        from statsforecast import StatsForecast
        from statsforecast import models as sfm
    except ImportError:
        print("statsforecast is not installed: its models are skipped", flush=True)
        return {}, {}
    out: dict[str, dict] = {}
    timing: dict[str, tuple[float, float]] = {}
    by_cat: dict[str, list[dict]] = {}
    for s in series:
        by_cat.setdefault(s["category"], []).append(s)
    for name in names:
        wall, cpu = time.perf_counter(), _cpu_with_children()
        out[f"sf-{name}"] = {}
        for group in by_cat.values():
            rows = [(s["id"], i, v) for s in group for i, v in enumerate(s["train"])]
            df = pd.DataFrame(rows, columns=["unique_id", "ds", "y"])
            model = getattr(sfm, name)(season_length=group[0]["m"])
            h = max(s["h"] for s in group)
            fc = StatsForecast(models=[model], freq=1, n_jobs=workers).forecast(
                df=df, h=h, level=[int(100 * lv) for lv in LEVELS]
            )
            col = [c for c in fc.columns if c not in ("unique_id", "ds") and "-lo-" not in c and "-hi-" not in c][0]
            for sid, g in fc.groupby("unique_id", sort=False):
                k = next(s["h"] for s in group if s["id"] == sid)
                ivs = [
                    (
                        g[f"{col}-lo-{int(100 * lv)}"].to_numpy()[:k],
                        g[f"{col}-hi-{int(100 * lv)}"].to_numpy()[:k],
                    )
                    for lv in LEVELS
                ]
                out[f"sf-{name}"][sid] = (g[col].to_numpy()[:k], ivs)
        timing[f"sf-{name}"] = (time.perf_counter() - wall, _cpu_with_children() - cpu)
        print(f"  sf-{name}: {timing[f'sf-{name}'][0]:.0f} s", flush=True)
    if len(names) > 1:
        out["sf-median"] = {
            s["id"]: (np.median([out[f"sf-{n}"][s["id"]][0] for n in names], axis=0), None) for s in series
        }
        timing["sf-median"] = (sum(t[0] for t in timing.values()), sum(t[1] for t in timing.values()))
    return out, timing


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="long CSV of series (default: M3)")
    parser.add_argument(
        "--paths",
        default="auto-global,auto-stat,auto-local",
        help=f"paths to run, of {', '.join(PATHS)} (the baselines always run; auto-global also gives "
        "rnn-global, ets and dotm, auto-local also rnn-local)",
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--every", type=int, default=1, help="use every k-th series (quick looks)")
    parser.add_argument(
        "--no-period", action="store_true", help="do not tell the models the seasonal period (they detect one)"
    )
    parser.add_argument(
        "--ensemble",
        type=int,
        default=None,
        help="RNN members per model instead of the default (to measure what the ensemble costs)",
    )
    parser.add_argument(
        "--statsforecast",
        nargs="?",
        const="AutoETS,AutoCES,DynamicOptimizedTheta,AutoARIMA",
        default="",
        help="also run these statsforecast models (default: its M3 ensemble's four) when it is installed",
    )
    parser.add_argument(
        "--precision", default=None, help="the RNN's arithmetic, float64 or float32 (default: the model's)"
    )
    parser.add_argument(
        "--auto", default="{}", help="AutoForecaster settings for the auto paths, JSON (e.g. '{\"shrinkage\": 1}')"
    )
    parser.add_argument(
        "--one-process",
        action="store_true",
        help="fit each category of auto-global in one process (default: spread over the workers in parts)",
    )
    parser.add_argument("--out", default="competition", help="result file stem in bench/results/")
    parser.add_argument(
        "--carry",
        type=Path,
        default=None,
        help="an earlier result CSV: the rows of methods not run now (e.g. statsforecast's, whose pins "
        "conflict with tickcast's environment) are carried over from it, and the report says so",
    )
    args = parser.parse_args(argv)
    if not args.data.exists():
        raise SystemExit(f"data file not found: {args.data}")
    paths = [p for p in args.paths.split(",") if p]
    unknown = sorted(set(paths) - set(PATHS))
    if unknown:
        raise SystemExit(f"unknown path(s) {unknown}; choose from {', '.join(PATHS)}")
    series = load(args.data)[:: args.every]
    print(f"{len(series)} series from {args.data}", flush=True)
    forecasts: dict[str, dict] = {}
    timing: dict[str, tuple[float, float]] = {}
    for name, fn in BASELINES.items():
        wall, cpu = time.perf_counter(), time.process_time()
        forecasts[name] = {
            s["id"]: (
                fn(s["train"], s["h"], s["m"])
                if name != "seasonal_naive"
                else fn(s["train"], s["h"], min(s["m"], s["train"].size)),
                None,
            )
            for s in series
        }
        timing[name] = (time.perf_counter() - wall, time.process_time() - cpu)
    for path in paths:
        knobs: dict = {} if args.ensemble is None else {"ensemble": args.ensemble}
        if args.precision is not None:
            knobs["precision"] = args.precision
        if path.startswith("auto"):
            knobs["auto"] = json.loads(args.auto)
            knobs["one_process"] = args.one_process
        results, wall, cpu = forecasts_for(path, series, args.workers, not args.no_period, knobs)
        for method, by_id in results.items():
            forecasts[method] = by_id
            timing[method] = (wall, cpu) if method in (path, "rnn-local", "rnn-global") else (float("nan"),) * 2
        timing[path] = (wall, cpu)
    if args.statsforecast:
        sf, sf_timing = run_statsforecast(series, args.statsforecast.split(","), args.workers)
        forecasts.update(sf)
        timing.update(sf_timing)
    rows = score(series, forecasts, timing)
    carried = carry(rows, args.carry) if args.carry is not None else []
    write(rows + carried, args, len(series), paths, sorted({r["method"] for r in carried}))
    for r in rows:
        if r["category"] == "all":
            print(
                f"{r['method']:>22}: sMAPE {r['smape_points']:.2f} over points, {r['smape']:.2f} over series  "
                f"({r['seconds']:.0f} s, {r['cpu_seconds']:.0f} CPU s)"
            )
    return 0


def score(series: list[dict], forecasts: dict, timing: dict) -> list[dict]:
    """Per method and category: sMAPE averaged over series and over all points (the M3 paper's
    "official" average), MASE, interval coverage at each level, seconds."""
    categories = sorted({s["category"] for s in series}, key=lambda c: list(PERIODS).index(c) if c in PERIODS else 99)
    rows = []
    for method, by_id in forecasts.items():
        per_cat: dict[str, dict[str, list]] = {}
        for s in series:
            f, intervals = by_id[s["id"]]
            d = per_cat.setdefault(s["category"], {"smape": [], "points": [], "mase": [], "inside": []})
            e = 200.0 * np.abs(s["test"] - f) / (np.abs(s["test"]) + np.abs(f))
            d["smape"].append(float(np.mean(e)))
            d["points"].extend(e.tolist())
            d["mase"].append(mase(s["test"], f, s["train"], s["m"]))
            if intervals is not None:
                d["inside"].append([(lo <= s["test"]) & (s["test"] <= up) for lo, up in intervals])
        for cat in categories + ["all"]:
            parts = [per_cat[c] for c in categories] if cat == "all" else [per_cat[cat]]
            inside = [v for p in parts for v in p["inside"]]
            row = {
                "method": method,
                "category": cat,
                "series": sum(len(p["smape"]) for p in parts),
                "smape": float(np.mean([v for p in parts for v in p["smape"]])),
                "smape_points": float(np.mean([v for p in parts for v in p["points"]])),
                "mase": float(np.nanmean([v for p in parts for v in p["mase"]])),
                "seconds": timing.get(method, (float("nan"),) * 2)[0],
                "cpu_seconds": timing.get(method, (float("nan"),) * 2)[1],
            }
            for k, level in enumerate(LEVELS):
                row[f"coverage_{round(100 * level)}"] = (
                    float(np.mean(np.concatenate([v[k] for v in inside]))) if inside else None
                )
            rows.append(row)
    return rows


def carry(rows: list[dict], path: Path) -> list[dict]:
    """The rows of ``path`` (a result CSV) for methods not in ``rows``, typed as score() types them."""
    if not path.exists():
        raise SystemExit(f"--carry: file not found: {path}")
    have = {r["method"] for r in rows}
    out = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if r["method"] in have:
                continue
            typed: dict = {}
            for k, v in r.items():
                if k in ("method", "category"):
                    typed[k] = v
                elif k == "series":
                    typed[k] = int(v)
                else:
                    typed[k] = float(v) if v != "" else None
            out.append(typed)
    return out


def _fmt_seconds(v: float) -> str:
    return "" if not np.isfinite(v) else f"{v:.0f}"


def write(rows: list[dict], args, n: int, paths: list[str], carried: list[str] | None = None) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / f"{args.out}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    cats = list(dict.fromkeys(r["category"] for r in rows))
    get = {(r["method"], r["category"]): r for r in rows}
    lines = [
        "# M3 competition benchmark: sMAPE per category, averaged over points and over series",
        "",
        f"{n} series from `{args.data.name}`, each forecast over its official horizon from its training "
        f"part and scored on its test part (lower is better). The models are told the seasonal period of "
        f"the category{' (here: not even that; they detect one)' if args.no_period else ''}, nothing else: "
        f"default settings otherwise{'' if args.ensemble is None else f' except ensemble={args.ensemble}'}"
        f"{'' if args.precision is None else f', RNN precision={args.precision}'}. "
        "`auto-global`: the published forecast, `AutoForecaster(season_length=m).fit_many(...)` per category "
        "(the mean of its members: the RNN trained across the category's series, AutoETS and the Dynamic "
        "Optimised Theta, joined by the seasonal naive forecast on the series where it beat their mean on "
        "the validation part); `rnn-global`, `ets`, `dotm`, `snaive`: those members' own forecasts from "
        "the same fit; "
        "`auto-local`: `AutoForecaster(season_length=m).fit(y)` per series, whose RNN is `rnn-local`; "
        "`auto-stat`: the same combination without the RNN; `sf-*`: statsforecast's models, `sf-median` "
        "the median of their forecasts (its M3 ensemble). Seconds: wall time of the path on "
        f"{args.workers} worker process(es), and the CPU seconds of its work (members share their "
        f"path's); auto-global spreads each category's fit over the workers (`fit_many_part`, `combine`)"
        f"{' (here: one process per category)' if args.one_process else ''}. AutoForecaster settings: "
        f"{args.auto}. Machine: {platform.machine()}, {os.cpu_count()} CPUs, NumPy {np.__version__}, Python "
        f"{platform.python_version()}, load average {tuple(round(x, 2) for x in os.getloadavg())} at the end."
        + (f" Carried over from `{args.carry.name}` as it was, not run now: {', '.join(carried)}." if carried else ""),
        "",
        "## sMAPE over all series x horizon points (the M3 paper's official average)",
        "",
        "| method | " + " | ".join(cats) + " | seconds | CPU seconds |",
        "|---|" + "---|" * (len(cats) + 2),
    ]
    for m in methods:
        cells = [f"{get[(m, c)]['smape_points']:.2f}" for c in cats]
        a = get[(m, "all")]
        secs = f" | {_fmt_seconds(a['seconds'])} | {_fmt_seconds(a['cpu_seconds'])} |"
        lines.append(f"| {m} | " + " | ".join(cells) + secs)
    lines += [
        "",
        "## sMAPE averaged over series (MASE in brackets)",
        "",
        "| method | " + " | ".join(cats) + " |",
        "|---|" + "---|" * len(cats),
    ]
    for m in methods:
        cells = [f"{get[(m, c)]['smape']:.2f} ({get[(m, c)]['mase']:.3f})" for c in cats]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Interval coverage",
        "",
        "Share of the test values inside the 80 % / 95 % prediction intervals (nominal 0.80 / 0.95):",
        "",
        "| method | " + " | ".join(cats) + " |",
        "|---|" + "---|" * len(cats),
    ]
    for m in methods:
        if get[(m, "all")]["coverage_80"] is not None:
            cells = [f"{get[(m, c)]['coverage_80']:.3f} / {get[(m, c)]['coverage_95']:.3f}" for c in cats]
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
