"""M3, all 3,003 series, both RNN paths as the service would run them, timed on 2 workers:

- per series: ``RNNForecaster(season_length=m).fit_each(batch)`` (each model equal to its own
  ``fit``), series in batches of ``--batch``;
- across series: one ``fit_many`` per category; a category of ``--split`` series or more is
  spread over the workers by members (``fit_many(ys, members=[0, 1])`` beside
  ``members=[2]``) and assembled with ``RNNForecaster.combine``.

Both paths share one pool (``--workers`` processes, one BLAS thread each), so the wall time is
what the two together cost. Scored like ``bench/competition.py`` (its loader and formulas): sMAPE
per category as the mean over series, and the M3 paper's average over all series x horizon
points; MASE; 80 % interval coverage.

``--old TREE`` also runs the same paths with the models of an older commit (``git worktree add
/tmp/old8951378 8951378``; per series with ``fit`` one at a time, across series ``fit_many`` per
category, as that code can) in the same pool right after, and compares the forecasts series by
series, per category. ``--precision float32`` trains in float32.

    OPENBLAS_NUM_THREADS=1 python bench/m3.py --old /tmp/old8951378      # writes results/m3.md, .json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from competition import DEFAULT_DATA, LEVELS, load, mase, smape  # noqa: E402
from oldcode import load_old  # noqa: E402
from tickcast.models import RNNForecaster  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
LEVEL = LEVELS[0]  # the 80 % interval, whose coverage is reported


def _init(old_tree: str | None) -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, "blas")
    if old_tree:
        load_old(old_tree)


def _forecaster(code: str):
    return load_old().RNNForecaster if code == "old" else RNNForecaster


def task_each(code: str, series: list[dict], knobs: dict) -> tuple[list, float]:
    """Per-series fits of a batch: (id, forecast, (lower, upper)) each, and the seconds."""
    start = time.perf_counter()
    m = series[0]["m"]
    if code == "old":
        models = [_forecaster(code)(season_length=m, **knobs).fit(s["train"]) for s in series]
    else:
        models = RNNForecaster(season_length=m, **knobs).fit_each([s["train"] for s in series])
    out = [(s["id"], f.predict(s["h"]), f.predict_interval(s["h"], LEVEL)) for s, f in zip(series, models)]
    return out, time.perf_counter() - start


def task_many(code: str, series: list[dict], knobs: dict, members: list[int] | None):
    """One fit across a category's series (or a part of it): the model (or part), the seconds."""
    start = time.perf_counter()
    model = _forecaster(code)(season_length=series[0]["m"], **knobs)
    ys = [s["train"] for s in series]
    model = model.fit_many(ys) if members is None else model.fit_many(ys, members=members)
    return model, time.perf_counter() - start


def forecast_many(model, series: list[dict]) -> list:
    h = max(s["h"] for s in series)
    points, intervals = model.predict_many(h), model.predict_interval_many(h, LEVEL)
    return [(s["id"], p[: s["h"]], (lo[: s["h"]], up[: s["h"]])) for s, p, (lo, up) in zip(series, points, intervals)]


def run_code(pool, code: str, series: list[dict], args, knobs: dict) -> dict:
    """Both paths of one code base in the pool: forecasts per path and the wall and CPU seconds."""
    by_cat: dict[str, list[dict]] = {}
    for s in series:
        by_cat.setdefault(s["category"], []).append(s)
    started = time.perf_counter()
    many, each = [], []
    for cat, group in sorted(by_cat.items(), key=lambda kv: -len(kv[1])):
        ensemble = knobs.get("ensemble", 3)
        if code == "new" and len(group) >= args.split and ensemble > 1:
            parts = [list(range(ensemble - 1)), [ensemble - 1]]
            many.append((cat, [pool.submit(task_many, code, group, knobs, p) for p in parts]))
        else:
            many.append((cat, [pool.submit(task_many, code, group, knobs, None)]))
    for group in by_cat.values():
        for i in range(0, len(group), args.batch):
            each.append(pool.submit(task_each, code, group[i : i + args.batch], knobs))
    result: dict = {"rnn-local": {}, "rnn-global": {}, "cpu": {"rnn-local": 0.0, "rnn-global": 0.0}}
    for cat, futures in many:
        parts = [f.result() for f in futures]
        result["cpu"]["rnn-global"] += sum(sec for _, sec in parts)
        start = time.perf_counter()
        model = parts[0][0] if len(parts) == 1 else RNNForecaster.combine([p for p, _ in parts])
        for sid, f, interval in forecast_many(model, by_cat[cat]):
            result["rnn-global"][sid] = (f, interval)
        result["cpu"]["rnn-global"] += time.perf_counter() - start
    for future in each:
        out, sec = future.result()
        result["cpu"]["rnn-local"] += sec
        for sid, f, interval in out:
            result["rnn-local"][sid] = (f, interval)
    result["wall"] = time.perf_counter() - started
    print(f"  {code}: both paths in {result['wall']:.0f} s on {args.workers} workers", flush=True)
    return result


def scores(series: list[dict], forecasts: dict) -> dict:
    """Per category and 'all': sMAPE (mean over series), sMAPE over all points, MASE, coverage."""
    rows: dict[str, list] = {}
    for s in series:
        f, (lo, up) = forecasts[s["id"]]
        per_point = 200.0 * np.abs(s["test"] - f) / (np.abs(s["test"]) + np.abs(f))
        inside = (lo <= s["test"]) & (s["test"] <= up)
        row = (smape(s["test"], f), per_point, mase(s["test"], f, s["train"], s["m"]), inside)
        rows.setdefault(s["category"], []).append(row)
        rows.setdefault("all", []).append(row)
    out = {}
    for cat, vals in rows.items():
        out[cat] = {
            "series": len(vals),
            "smape": float(np.mean([v[0] for v in vals])),
            "smape_points": float(np.mean(np.concatenate([v[1] for v in vals]))),
            "mase": float(np.nanmean([v[2] for v in vals])),
            "coverage": float(np.mean(np.concatenate([v[3] for v in vals]))),
        }
    return out


def differences(series: list[dict], new: dict, old: dict) -> dict:
    """Per category: how far the new forecasts are from the old ones (relative), series by series."""
    rows: dict[str, list] = {}
    for s in series:
        rel = float(np.max(np.abs(new[s["id"]][0] - old[s["id"]][0]) / np.abs(old[s["id"]][0])))
        rows.setdefault(s["category"], []).append(rel)
        rows.setdefault("all", []).append(rel)
    return {
        cat: {
            "series": len(v),
            "identical_1e-9": int(np.sum(np.array(v) < 1e-9)),
            "median_rel": float(np.median(v)),
            "max_rel": float(np.max(v)),
        }
        for cat, v in rows.items()
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--every", type=int, default=1, help="every k-th series (quick looks)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64, help="series per fit_each call")
    parser.add_argument("--split", type=int, default=200, help="split fit_many by members from this many series")
    parser.add_argument("--precision", default=None, help="float64 or float32 (default: the model's)")
    parser.add_argument("--old", default=None, help="worktree of the older commit to run side by side")
    parser.add_argument("--out", default="m3")
    args = parser.parse_args(argv)
    series = load(args.data)[:: args.every]
    print(f"{len(series)} series", flush=True)
    knobs = {} if args.precision is None else {"precision": args.precision}
    if args.old:
        load_old(args.old)  # the old code's models come back to this process, pickled
    report: dict = {"series": len(series), "workers": args.workers, "batch": args.batch, "knobs": knobs}
    with ProcessPoolExecutor(args.workers, initializer=_init, initargs=(args.old,)) as pool:
        load_before = os.getloadavg()
        runs = {"new": run_code(pool, "new", series, args, knobs)}
        if args.old:
            runs["old"] = run_code(pool, "old", series, args, {})
        report["loadavg_before_after"] = [round(x, 2) for x in load_before + os.getloadavg()]
    for code, run in runs.items():
        report[code] = {
            "wall_seconds": run["wall"],
            "cpu_seconds": run["cpu"],
            **{path: scores(series, run[path]) for path in ("rnn-local", "rnn-global")},
        }
    if args.old:
        report["differences"] = {
            path: differences(series, runs["new"][path], runs["old"][path]) for path in ("rnn-local", "rnn-global")
        }
    report["machine"] = {"cpu_count": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__}
    write(report, args.out)
    return 0


def write(report: dict, stem: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    codes = [c for c in ("new", "old") if c in report]
    cats = list(report["new"]["rnn-local"])
    lines = [
        "# M3: both RNN paths, timed together on 2 workers",
        "",
        f"{report['series']} series; `new` is this tree ({report['knobs'] or 'defaults'}), per series with "
        f"`fit_each` in batches of {report['batch']}, across series one `fit_many` per category (big "
        "categories split by members over the workers, then `combine`); `old` is 8951378 (per series "
        "`fit` one at a time, `fit_many` per category) in the same pool right after. sMAPE as the mean over "
        "series (and, in brackets, the M3 paper's mean over all series x horizon points), MASE, coverage "
        f"of 80 % intervals. Load average before and after: {report['loadavg_before_after']}.",
        "",
        "| code | path | " + " | ".join(cats) + " | wall s (both paths) | CPU s (this path) |",
        "|---|---|" + "---|" * (len(cats) + 2),
    ]
    for code in codes:
        r = report[code]
        for path in ("rnn-local", "rnn-global"):
            cells = [
                f"{r[path][c]['smape']:.3f} ({r[path][c]['smape_points']:.3f}) MASE {r[path][c]['mase']:.3f} "
                f"cov {r[path][c]['coverage']:.3f}"
                for c in cats
            ]
            lines.append(
                f"| {code} | {path} | "
                + " | ".join(cells)
                + f" | {r['wall_seconds']:.0f} | {r['cpu_seconds'][path]:.0f} |"
            )
    if "differences" in report:
        lines += [
            "",
            "New against old forecasts, series by series (largest relative difference over the horizon): "
            "series within 1e-9, median and largest difference.",
            "",
            "| path | " + " | ".join(cats) + " |",
            "|---|" + "---|" * len(cats),
        ]
        for path, d in report["differences"].items():
            cells = [
                f"{d[c]['identical_1e-9']}/{d[c]['series']}, {d[c]['median_rel']:.1e}, {d[c]['max_rel']:.1e}"
                for c in cats
            ]
            lines.append(f"| {path} | " + " | ".join(cells) + " |")
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
