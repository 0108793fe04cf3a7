"""Fit speed against an older commit, side by side in one process (per series) or one run (group).

Per series: daily closes of 2,500 points (slices of the bundled S&P 500 and Nasdaq series ending
on different days) and M3's monthly series (every ``--every``-th). Rounds interleave the old code
(``fit`` per series, 8951378), today's ``fit`` per series, and ``fit_each`` over all of them (each
model equal to its own ``fit``), in float64 and float32. Accuracy beside it: daily, the MAE of
one-step forecasts over the 20 days after each series' end against the naive forecast's; monthly,
M3's sMAPE on the test parts.

Group: synthetic weekly series (2,600 points, a yearly season of 52 weeks): the old ``fit_many`` in
one process against ``fit_many(members=...)`` in two processes at once and ``combine``, each fit in a
fresh process so that its peak memory (ru_maxrss) is its own; memory also for 100, 200 and 400
series with no training (``epochs=0``: what materialising windows costs) and with one epoch.

    git worktree add /tmp/old8951378 8951378
    OPENBLAS_NUM_THREADS=1 python bench/fits.py --old /tmp/old8951378     # results/fits.md, .json
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from competition import DEFAULT_DATA, load, smape  # noqa: E402
from oldcode import load_old  # noqa: E402
from tickcast.models import RNNForecaster  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
HOLDOUT = 20


def daily_series(n_points: int = 2500, per_file: int = 8) -> list[np.ndarray]:
    """Slices of n_points + HOLDOUT daily closes ending on different days, oldest first."""
    out = []
    for name in ("sp500", "nasdaq"):
        df = pd.read_csv(SHARED / f"{name}.csv.gz", na_values=["."])
        df["Date"] = pd.to_datetime(df["Date"], format="%m/%d/%Y")
        y = df.sort_values("Date")["Close"].dropna().to_numpy(np.float64)
        ends = np.linspace(n_points + HOLDOUT, y.size, per_file).astype(int)
        out += [y[e - n_points - HOLDOUT : e] for e in ends]
    return out


def one_step_mae(model, y: np.ndarray) -> tuple[float, float]:
    """MAE of one-step forecasts over the held-out tail (weights fixed) and the naive forecast's."""
    n = y.size - HOLDOUT
    f = np.array([model.predict(1, y=y[:k])[0] for k in range(n, y.size)])
    return float(np.mean(np.abs(f - y[n:]))), float(np.mean(np.abs(y[n - 1 : -1] - y[n:])))


def fit_variant(kind: str, old, ys: list[np.ndarray], m: int, seeds: list[int]) -> list:
    """Fitted models of one variant ("old fit", "fit float64", "fit_each float32", ...)."""
    if kind == "old fit":
        return [old.RNNForecaster(season_length=m, seed=s).fit(y) for y, s in zip(ys, seeds)]
    how, precision = kind.split()
    if how == "fit":
        return [RNNForecaster(season_length=m, seed=s, precision=precision).fit(y) for y, s in zip(ys, seeds)]
    return RNNForecaster(season_length=m, precision=precision).fit_each(ys, seeds=seeds)


def per_series(args, old) -> dict:
    daily = daily_series()
    m3 = [s for s in load(DEFAULT_DATA) if s["category"] == "monthly"][:: args.every]
    sets = {
        "daily": ([y[:-HOLDOUT] for y in daily], 0, daily),
        "m3-monthly": ([s["train"] for s in m3], 12, m3),
    }
    report = {}
    for name, (ys, m, raw) in sets.items():
        seeds = list(range(len(ys)))
        variants = ["old fit", "fit float64", "fit_each float64", "fit float32", "fit_each float32"]
        seconds: dict[str, list[float]] = {k: [] for k in variants}
        models = {}
        for r in range(args.rounds):  # interleaved: load changes hit every variant alike
            for k in variants:
                start = time.perf_counter()
                models[k] = fit_variant(k, old, ys, m, seeds)
                seconds[k].append(time.perf_counter() - start)
            print(f"  {name} round {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f}s" for k, v in seconds.items()), flush=True)
        accuracy = {}
        for k, ms in models.items():
            if name == "daily":
                pairs = [one_step_mae(mod, y) for mod, y in zip(ms, raw)]
                accuracy[k] = float(np.mean([a / b for a, b in pairs]))  # MAE relative to naive's
            else:
                accuracy[k] = float(np.mean([smape(s["test"], mod.predict(s["h"])) for mod, s in zip(ms, raw)]))
        ref = models["old fit"]
        diff = {
            k: float(max(np.max(np.abs(a.predict(8) - b.predict(8)) / np.abs(b.predict(8))) for a, b in zip(ms, ref)))
            for k, ms in models.items()
        }
        best = {k: min(v) for k, v in seconds.items()}
        report[name] = {
            "series": len(ys),
            "seconds_per_series": {k: v / len(ys) for k, v in best.items()},
            "speedup_vs_old": {k: best["old fit"] / v for k, v in best.items()},
            "rounds_seconds": seconds,
            "accuracy": accuracy,
            "accuracy_measure": "one-step MAE / naive's, 20 days after the end" if name == "daily" else "M3 sMAPE",
            "max_rel_forecast_difference_vs_old": diff,
        }
    return report


GROUP_CHILD = """
import pickle, sys, time
sys.path.insert(0, {bench!r})
import numpy as np
from weekly import weekly_series
from oldcode import load_old
from tickcast.models import RNNForecaster
code, n_series, epochs, precision, members, out = {args!r}
ys = weekly_series(n_series)
cls = load_old({old!r}).RNNForecaster if code == "old" else RNNForecaster
kw = dict(season_length=52, epochs=epochs)
if code != "old":
    kw["precision"] = precision
start = time.perf_counter()
model = cls(**kw).fit_many(ys) if members is None else cls(**kw).fit_many(ys, members=members)
seconds = time.perf_counter() - start
# VmHWM: this process image's peak resident memory (ru_maxrss would carry the parent's peak across fork)
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:")) / 1024
with open(out, "wb") as f:
    pickle.dump((model, seconds, peak), f)
"""


def _children(jobs: list[tuple], old_tree: str) -> list[tuple]:
    """Run fit_many jobs (code, n_series, epochs, precision, members) in fresh processes, all at once:
    (model, seconds, peak MB) each, and the wall time."""
    bench = str(Path(__file__).resolve().parent)
    procs, outs = [], []
    for job in jobs:
        out = tempfile.mktemp(suffix=".pkl")
        code = GROUP_CHILD.format(bench=bench, args=(*job, out), old=old_tree)
        procs.append(subprocess.Popen([sys.executable, "-c", code]))
        outs.append(out)
    for p in procs:
        if p.wait() != 0:
            raise SystemExit(f"a group fit failed: {p.args}")
    results = []
    for out in outs:
        with open(out, "rb") as f:
            results.append(pickle.load(f))
        os.unlink(out)
    return results


def group(args) -> dict:
    report: dict = {"memory": {}, "speed": {}, "data_mb_per_100_series": 100 * 2600 * 8 / 2**20}
    if "group-speed" not in args.skip:
        group_speed(args, report)
    for n in args.memory_series:
        row = {}
        for code, ep in (("old", 0), ("new", 0), ("new", 1)):
            if code == "old" and n > args.old_memory_max:
                continue
            ((_, sec, mb),) = _children([(code, n, ep, "float32", None)], args.old)
            row[f"{code} epochs={ep}"] = {"peak_mb": mb, "seconds": sec}
        report["memory"][n] = row
        print(f"  memory {n} series: " + ", ".join(f"{k} {v['peak_mb']:.0f} MB" for k, v in row.items()), flush=True)
    return report


def group_speed(args, report: dict) -> None:
    S, epochs = args.group_series, args.group_epochs
    started = time.perf_counter()
    ((old_model, old_sec, old_mb),) = _children([("old", S, epochs, None, None)], args.old)
    old_wall = time.perf_counter() - started
    for precision in ("float64", "float32"):
        started = time.perf_counter()
        parts = _children([("new", S, epochs, precision, [0, 1]), ("new", S, epochs, precision, [2])], args.old)
        model = RNNForecaster.combine([p for p, _, _ in parts])
        wall = time.perf_counter() - started
        h = 52
        diff = max(
            float(np.max(np.abs(a - b) / np.abs(b))) for a, b in zip(model.predict_many(h), old_model.predict_many(h))
        )
        report["speed"][precision] = {
            "wall_seconds_2_processes": wall,
            "part_seconds": [s for _, s, _ in parts],
            "part_peak_mb": [mb for _, _, mb in parts],
            "speedup_vs_old": old_wall / wall,
            "max_rel_forecast_difference_vs_old": diff,
            "val_loss_best": [min(e["val_loss"] for e in hist) for hist in model.histories_],
        }
        print(f"  group {precision}: {wall:.0f}s on 2 processes, old {old_wall:.0f}s on 1", flush=True)
    report["speed"]["old"] = {
        "wall_seconds_1_process": old_wall,
        "peak_mb": old_mb,
        "val_loss_best": [min(e["val_loss"] for e in hist) for hist in old_model.histories_],
    }
    report["speed"]["series"], report["speed"]["epochs"] = S, epochs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", default="/tmp/old8951378", help="worktree of the older commit")
    parser.add_argument("--every", type=int, default=4, help="every k-th M3 monthly series")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--group-series", type=int, default=100)
    parser.add_argument("--group-epochs", type=int, default=5)
    parser.add_argument("--memory-series", type=int, nargs="*", default=[100, 200, 400])
    parser.add_argument("--old-memory-max", type=int, default=400)
    parser.add_argument("--skip", default="", help="comma-separated: per-series, group, group-speed")
    parser.add_argument("--out", default="fits")
    args = parser.parse_args(argv)
    old = load_old(args.old)
    report: dict = {"loadavg_before": os.getloadavg()}
    if "per-series" not in args.skip:
        report["per_series"] = per_series(args, old)
    if "group" not in args.skip:
        report["group"] = group(args)
    report["loadavg_after"] = os.getloadavg()
    report["self_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    write(report, args.out)
    return 0


def write(report: dict, stem: str) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    lines = [
        "# Fit speed against 8951378, side by side",
        "",
        f"Load average before {tuple(round(x, 2) for x in report['loadavg_before'])}, after "
        f"{tuple(round(x, 2) for x in report['loadavg_after'])} (2 cores, shared with other jobs). "
        "Best of the interleaved rounds; every round is in the .json.",
    ]
    for name, r in report.get("per_series", {}).items():
        lines += [
            "",
            f"## Per series: {name} ({r['series']} series)",
            "",
            f"| variant | ms per series | speed-up vs old | {r['accuracy_measure']} | max rel. forecast diff. vs old |",
            "|---|---|---|---|---|",
        ]
        for k, sec in r["seconds_per_series"].items():
            lines.append(
                f"| {k} | {sec * 1e3:.0f} | {r['speedup_vs_old'][k]:.2f}x | {r['accuracy'][k]:.4f} | "
                f"{r['max_rel_forecast_difference_vs_old'][k]:.1e} |"
            )
    g = report.get("group")
    if g and g["speed"]:
        sp = g["speed"]
        lines += [
            "",
            f"## Group fit: {sp['series']} weekly series x 2,600 points, epochs={sp['epochs']}",
            "",
            f"Old: `fit_many` in one process, {sp['old']['wall_seconds_1_process']:.0f} s, peak "
            f"{sp['old']['peak_mb']:.0f} MB. New: `fit_many(members=[0, 1])` and `fit_many(members=[2])` "
            "in two processes at once, then `combine`:",
            "",
            "| precision | wall s | speed-up vs old | parts' s | parts' peak MB | max rel. forecast diff. vs old |",
            "|---|---|---|---|---|---|",
        ]
        for prec in ("float64", "float32"):
            r = sp[prec]
            lines.append(
                f"| {prec} | {r['wall_seconds_2_processes']:.0f} | {r['speedup_vs_old']:.2f}x | "
                f"{', '.join(f'{s:.0f}' for s in r['part_seconds'])} | "
                f"{', '.join(f'{m:.0f}' for m in r['part_peak_mb'])} | {r['max_rel_forecast_difference_vs_old']:.1e} |"
            )
    if g and g["memory"]:
        lines += [
            "",
            "Peak memory (MB, one process, all members) by number of series (the series themselves: "
            f"{g['data_mb_per_100_series']:.0f} MB per 100):",
            "",
            "| series | " + " | ".join(next(iter(g["memory"].values())).keys()) + " |",
            "|---|" + "---|" * len(next(iter(g["memory"].values()))),
        ]
        for n, row in g["memory"].items():
            lines.append(
                f"| {n} | " + " | ".join(f"{v['peak_mb']:.0f} ({v['seconds']:.0f} s)" for v in row.values()) + " |"
            )
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
