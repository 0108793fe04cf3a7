"""The daily job at scale: 500 synthetic series x 2,500 daily points in SQLite.

A cold run (every model trained from scratch) and then a warm daily run (one new point per series,
each model fine-tuned from its previous fit), timed per stage, through ``service.pipeline.run_cycle``
with the default model settings and one worker per core. Targets on a 2-core machine: warm daily
run <= 60 s, cold run <= 10 minutes.

    python bench/daily_run.py [--series 500] [--points 2500] [--workers 0]

Writes bench/results/daily_run.md and bench/results/daily_run.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tickcast.service.config import settings_from_dict  # noqa: E402
from synthetic import SyntheticSource  # noqa: E402
from tickcast.service.db import open_database  # noqa: E402
from tickcast.service.pipeline import run_cycle  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def make_frames(n_series: int, n_points: int, seed: int = 0) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2015-01-01", periods=n_points + 1)
    frames = {}
    for i in range(n_series):
        steps = rng.normal(0.0002, 0.01, n_points + 1) + 0.002 * np.sin(np.arange(n_points + 1) * 2 * np.pi / 5)
        frames[f"s{i:04d}"] = pd.DataFrame({"ts": dates, "value": 100 * np.exp(np.cumsum(steps))})
    return frames


def timed_run(engine, settings, frames, label):
    lines = []
    started = time.perf_counter()
    summary = run_cycle(engine, settings, sources={"csv": SyntheticSource(frames)},
                        progress=lambda m: lines.append(m))
    total = time.perf_counter() - started
    modes = {}
    for o in summary.outcomes:
        modes[o.mode or o.fit] = modes.get(o.mode or o.fit, 0) + 1
    fit_seconds = [o.seconds for o in summary.outcomes if o.fit == "trained"]
    print(f"{label}: {summary.status} in {total:.1f} s {summary.timings} {modes}", file=sys.stderr)
    assert summary.status == "ok", [o.error for o in summary.outcomes if o.failed][:3]
    return {"seconds": round(total, 2), "stages": {k: round(v, 2) for k, v in summary.timings.items()},
            "modes": modes, "mean_fit_seconds": round(float(np.mean(fit_seconds)), 3) if fit_seconds else None,
            "max_fit_seconds": round(float(np.max(fit_seconds)), 3) if fit_seconds else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=500)
    parser.add_argument("--points", type=int, default=2500)
    parser.add_argument("--workers", type=int, default=0, help="0: one per core")
    args = parser.parse_args()
    full = make_frames(args.series, args.points)
    day1 = {k: f.iloc[:-1] for k, f in full.items()}  # the next day adds one point per series
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        settings = settings_from_dict(
            {"series": [{"key": f"csv:{name}", "path": "unused.csv", "price": True} for name in full],
             "service": {"workers": args.workers}},
            db_url=url, env={})
        engine = open_database(url)
        cold = timed_run(engine, settings, day1, "cold")
        warm = timed_run(engine, settings, full, "warm")
        db_mb = os.path.getsize(f"{tmp}/bench.db") / 2 ** 20
        engine.dispose()
    figures = {"series": args.series, "points": args.points, "workers": settings.workers, "cold": cold,
               "warm": warm, "targets": {"cold_seconds": 600, "warm_seconds": 60},
               "meets_targets": cold["seconds"] <= 600 and warm["seconds"] <= 60, "database_mb": round(db_mb, 1),
               "cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "daily_run.json").write_text(json.dumps(figures, indent=2) + "\n")

    def row(name, r, target):
        st = r["stages"]
        return (f"| {name} | {r['seconds']:.1f} | {target} | {st.get('ingest', 0):.1f} | {st.get('plan', 0):.1f} | "
                f"{st.get('train', 0):.1f} | {r['mean_fit_seconds']} | {r['modes']} |")

    (RESULTS / "daily_run.md").write_text(
        "# Daily run benchmark\n\n"
        f"{args.series} synthetic series x {args.points} daily points in SQLite, default model settings, "
        f"{settings.workers} worker process(es) on {os.cpu_count()} CPUs. Stage times in seconds; "
        "train includes writing each fit, its loss history and forecasts.\n\n"
        "| run | total s | target s | ingest | plan | train + store | mean fit s (per worker) | fits |\n"
        "|---|---:|---:|---:|---:|---:|---:|---|\n"
        f"{row('cold (from scratch)', cold, 600)}\n{row('warm (one new point)', warm, 60)}\n\n"
        f"Database after both runs: {db_mb:.0f} MB. Python {platform.python_version()}, NumPy {np.__version__}.\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
