"""AutoForecaster's fits at the service's shapes, side by side in one run: per series (one
``fit`` after another against one ``fit_each``), cold and warm, and one group fit (``fit_many``
in one process against ``fit_many_part`` over two processes and ``combine``), cold and warm.

Data: synthetic daily series (``--series`` x ``--points``, a log random walk with a 5-day cycle,
as bench/daily_run.py; the warm day drops the oldest point and adds one) and M3's 1,428 monthly
series (``--m3``; the warm day adds the last training point). The per-series paths run block by
block, each way in turn on the same block, so a change in the machine's speed (it is shared, and
varies 2x from hour to hour) hits both alike. The RNN's own warm fit of the same series is timed
beside the warm AutoForecaster (the target: not much more than it), and the forecasts the service
asks for after a fit (point, intervals, every member's intervals) are timed apart.

    OPENBLAS_NUM_THREADS=1 python bench/auto_fits.py [--series 500] [--points 2500] [--m3] [--skip group]

Writes bench/results/auto_fits.json and .md (``--out``).
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

from competition import DEFAULT_DATA, load  # noqa: E402
from tickcast.models import AutoForecaster, RNNForecaster  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
LEVELS = [0.8, 0.95]


def limit_blas() -> None:
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, "blas")


def daily(n_series: int, n_points: int, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(yesterday's series, today's): n_points each, today's one point further on."""
    rng = np.random.default_rng(seed)
    full = []
    for _ in range(n_series):
        steps = rng.normal(0.0002, 0.01, n_points + 1) + 0.002 * np.sin(np.arange(n_points + 1) * 2 * np.pi / 5)
        full.append(100 * np.exp(np.cumsum(steps)))
    return [y[:-1] for y in full], [y[1:] for y in full]


def m3_monthly(every: int = 1) -> tuple[list[np.ndarray], list[np.ndarray]]:
    series = [s["train"] for s in load(DEFAULT_DATA) if s["category"].lower() == "monthly"][::every]
    return [y[:-1] for y in series], series


def max_relative_difference(a: list, b: list, h: int) -> float:
    worst = 0.0
    for x, y in zip(a, b):
        for fx, fy in ((x.predict_many(h), y.predict_many(h)),):
            for u, v in zip(fx, fy):
                worst = max(worst, float(np.max(np.abs(u - v) / np.maximum(np.abs(v), 1e-12))))
    return worst


def service_forecasts(model: AutoForecaster, h: int) -> None:
    """What the service asks for after a fit."""
    model.predict_many(h)
    model.predict_interval_many(h, LEVELS)
    model.predict_members_interval_many(h, LEVELS)


def per_series(old: list, new: list, m: int, h: int, block: int) -> dict:
    """Cold and warm per-series fits, one by one against fit_each, block by block."""
    auto = AutoForecaster(season_length=m)
    t = dict.fromkeys(["cold_one", "cold_each", "warm_one", "warm_each", "rnn_warm", "forecasts"], 0.0)
    diff = {"cold": 0.0, "warm": 0.0}
    for lo in range(0, len(old), block):
        idx = list(range(lo, min(lo + block, len(old))))
        start = time.perf_counter()
        ones = [AutoForecaster(season_length=m, seed=i).fit(old[i]) for i in idx]
        t["cold_one"] += time.perf_counter() - start
        start = time.perf_counter()
        each = auto.fit_each([old[i] for i in idx], seeds=idx)
        t["cold_each"] += time.perf_counter() - start
        diff["cold"] = max(diff["cold"], max_relative_difference(each, ones, h))
        start = time.perf_counter()
        warm_ones = [AutoForecaster(season_length=m, seed=i).fit(new[i], warm_start=a) for i, a in zip(idx, ones)]
        t["warm_one"] += time.perf_counter() - start
        start = time.perf_counter()
        warm_each = auto.fit_each([new[i] for i in idx], seeds=idx, warm_starts=ones)
        t["warm_each"] += time.perf_counter() - start
        diff["warm"] = max(diff["warm"], max_relative_difference(warm_each, warm_ones, h))
        start = time.perf_counter()
        for i, a in zip(idx, ones):
            if "rnn" in a.members_:
                previous = a.members_["rnn"]
                RNNForecaster(**previous.get_params()).fit(new[i], warm_start=previous)
        t["rnn_warm"] += time.perf_counter() - start
        start = time.perf_counter()
        for a in warm_each:
            service_forecasts(a, h)
        t["forecasts"] += time.perf_counter() - start
        print(f"    per series: {idx[-1] + 1}/{len(old)}, {json.dumps({k: round(v, 1) for k, v in t.items()})}")
    n = len(old)
    return {
        "seconds": {k: round(v, 2) for k, v in t.items()},
        "ms_per_series": {k: round(1000 * v / n, 1) for k, v in t.items()},
        "speedup_fit_each": {
            "cold": round(t["cold_one"] / t["cold_each"], 2),
            "warm": round(t["warm_one"] / t["warm_each"], 2),
        },
        "warm_auto_over_warm_rnn": round(t["warm_each"] / t["rnn_warm"], 2),
        "max_relative_difference_fit_each_vs_fit": diff,
    }


def _fit_many(ys, m, warm):
    return AutoForecaster(season_length=m).fit_many(ys, warm_start=warm)


def _part(ys, m, k, n, warm):
    return AutoForecaster(season_length=m).fit_many_part(ys, part=k, parts=n, warm_start=warm)


def group(old: list, new: list, m: int, h: int, pool: ProcessPoolExecutor, parts: int) -> dict:
    """One group fit in one worker process against the same fit in parts over the pool."""
    out = {}
    warm_from = None
    for label, ys in (("cold", old), ("warm", new)):
        start = time.perf_counter()
        whole = pool.submit(_fit_many, ys, m, warm_from).result()
        one = time.perf_counter() - start
        start = time.perf_counter()
        futures = [pool.submit(_part, ys, m, k, parts, warm_from) for k in range(parts)]
        combined = AutoForecaster.combine([f.result() for f in futures])
        spread = time.perf_counter() - start
        out[label] = {
            "one_process_s": round(one, 1),
            f"{parts}_processes_s": round(spread, 1),
            "speedup": round(one / spread, 2),
            "max_relative_difference": max_relative_difference([combined], [whole], h),
        }
        print(f"    group {label}: {out[label]}")
        warm_from = whole
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=500)
    parser.add_argument("--points", type=int, default=2500)
    parser.add_argument("--m3", action="store_true", help="also M3's monthly series")
    parser.add_argument("--m3-every", type=int, default=1, help="every k-th monthly series (quick looks)")
    parser.add_argument("--block", type=int, default=25, help="series per block of the per-series comparison")
    parser.add_argument("--parts", type=int, default=2)
    parser.add_argument("--skip", default="", help="comma-separated: per-series, group")
    parser.add_argument("--out", default="auto_fits")
    args = parser.parse_args(argv)
    limit_blas()
    skip = set(filter(None, args.skip.split(",")))
    sets = {f"daily {args.series} x {args.points}": (*daily(args.series, args.points), 5, 5)}
    if args.m3:
        sets[f"M3 monthly ({1428 // args.m3_every})"] = (*m3_monthly(args.m3_every), 12, 18)
    figures: dict = {"sets": {}}
    with ProcessPoolExecutor(args.parts, initializer=limit_blas) as pool:
        list(pool.map(abs, range(args.parts)))  # the workers are up before anything is timed
        for name, (old, new, m, h) in sets.items():
            print(name, flush=True)
            result: dict = {}
            if "per-series" not in skip:
                result["per_series"] = per_series(old, new, m, h, args.block)
            if "group" not in skip:
                result["group"] = group(old, new, m, h, pool, args.parts)
            figures["sets"][name] = result
    figures.update(
        cpus=os.cpu_count(),
        python=platform.python_version(),
        numpy=np.__version__,
        load_average_at_end=[round(v, 2) for v in os.getloadavg()],
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(figures, indent=2) + "\n")
    (RESULTS / f"{args.out}.md").write_text(markdown(figures, args.parts))
    print(json.dumps(figures, indent=2))
    return 0


def markdown(figures: dict, parts: int) -> str:
    lines = [
        "# AutoForecaster fits: per series and per group\n",
        "`bench/auto_fits.py`, default AutoForecaster (the RNN, AutoETS and DOTM, mean combination). Per "
        "series: milliseconds per series, one `fit` after another against one `fit_each`, interleaved block by "
        "block; the RNN's own warm fit of the same series beside the warm AutoForecaster; 'forecasts' is what "
        "the service asks for after a fit (point, intervals at 80 and 95 %, every member's intervals). Group: "
        f"`fit_many` in one worker process against `fit_many_part` over {parts} processes plus `combine` "
        "(wall seconds, including sending the parts back).\n",
    ]
    for name, r in figures["sets"].items():
        lines.append(f"## {name}\n")
        if "per_series" in r:
            p = r["per_series"]
            ms = p["ms_per_series"]
            lines += [
                "| per series (ms each) | one by one | fit_each | speed-up |",
                "|---|---:|---:|---:|",
                f"| cold | {ms['cold_one']} | {ms['cold_each']} | {p['speedup_fit_each']['cold']} |",
                f"| warm | {ms['warm_one']} | {ms['warm_each']} | {p['speedup_fit_each']['warm']} |",
                "",
                f"The RNN's own warm fit: {ms['rnn_warm']} ms a series; the warm AutoForecaster (fit_each) is "
                f"{p['warm_auto_over_warm_rnn']}x that. The forecasts after a fit: {ms['forecasts']} ms a series. "
                f"fit_each against fit, largest relative difference of a forecast: "
                f"{p['max_relative_difference_fit_each_vs_fit']}.\n",
            ]
        if "group" in r:
            g = r["group"]
            lines += [
                f"| group fit (s) | one process | {parts} processes | speed-up | largest relative difference |",
                "|---|---:|---:|---:|---:|",
            ]
            for label, row in g.items():
                lines.append(
                    f"| {label} | {row['one_process_s']} | {row[f'{parts}_processes_s']} | {row['speedup']} | "
                    f"{row['max_relative_difference']:.1e} |"
                )
            lines.append("")
    lines.append(
        f"{figures['cpus']} CPUs, Python {figures['python']}, NumPy {figures['numpy']}; load average at the end "
        f"{figures['load_average_at_end']} (the machine is shared).\n"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
