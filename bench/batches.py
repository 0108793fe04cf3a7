"""The train stage's two ways of using every core, each against the way before it, side by side in
one process: per-series tasks in batches (``SeriesBatch``: ``AutoForecaster.fit_each``) against
one task per series, and a group's fit in parts on every worker (``GroupPart``) against one task.

Synthetic daily series (``bench/daily_run.py``'s), a cold run then a warm daily run (one new point
per series) through ``run_cycle`` with the default model settings and one worker per core; the
two variants alternate (A B B A) so that a change in the machine's speed hits both alike.

    python bench/batches.py [--series 64] [--points 1000] [--group-series 24]

Writes bench/results/batches.md and bench/results/batches.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from daily_run import make_frames, timed_run  # noqa: E402
from tickcast.service.config import settings_from_dict  # noqa: E402
from tickcast.service.db import open_database  # noqa: E402
from tickcast.service.run import train  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def cold_then_warm(full: dict, model: dict, label: str) -> tuple[float, float]:
    day1 = {k: f.iloc[:-1] for k, f in full.items()}
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        settings = settings_from_dict(
            {
                "series": [{"key": f"csv:{name}", "path": "unused.csv", "price": True} for name in full],
                "service": {"workers": 0},
                "model": model,
            },
            db_url=url,
            env={},
        )
        engine = open_database(url)
        cold = timed_run(engine, settings, day1, f"{label} cold")["seconds"]
        warm = timed_run(engine, settings, full, f"{label} warm")["seconds"]
        engine.dispose()
    return cold, warm


def side_by_side(full: dict, model: dict, variants: dict) -> dict:
    """{variant: [(cold, warm), (cold, warm)]}, run A B B A."""
    out: dict = {name: [] for name in variants}
    order = list(variants) + list(reversed(variants))
    for name in order:
        variants[name]()
        out[name].append(cold_then_warm(full, model, name))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=64)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--group-series", type=int, default=24)
    args = parser.parse_args()
    batch_max, parts_of = train.BATCH_MAX, train.group_parts

    def one_task_each():
        train.BATCH_MAX = 1

    def batches():
        train.BATCH_MAX = batch_max

    def whole_group():
        train.group_parts = lambda execution: 1

    def group_in_parts():
        train.group_parts = parts_of

    series = side_by_side(
        make_frames(args.series, args.points),
        {"training": "series"},
        {"one task per series": one_task_each, "batches": batches},
    )
    train.BATCH_MAX = batch_max
    group = side_by_side(
        make_frames(args.group_series, args.points, seed=1),
        {"training": "group", "group_min_series": 2},
        {"one task per group": whole_group, "group in parts": group_in_parts},
    )
    train.group_parts = parts_of
    best = {name: tuple(min(r[i] for r in runs) for i in (0, 1)) for name, runs in {**series, **group}.items()}
    figures = {
        "series": args.series,
        "group_series": args.group_series,
        "points": args.points,
        "cpus": os.cpu_count(),
        "runs": {k: v for k, v in {**series, **group}.items()},
        "best": best,
        "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "batches.json").write_text(json.dumps(figures, indent=2) + "\n")

    def ratio(a: str, b: str, i: int) -> str:
        return f"{best[a][i] / best[b][i]:.2f}x"

    lines = [
        "# The train stage on every core: batches of series, a group's fit in parts",
        "",
        f"`bench/batches.py`: {args.series} synthetic daily series of {args.points} points per series "
        f'(`training = "series"`), and {args.group_series} of them as one group (`training = "group"`), '
        f"one worker per core ({os.cpu_count()} CPUs), default model settings; a cold run, then a warm run "
        "with one new point per series. Variants alternate A B B A in one process; best of two, seconds "
        f"of the whole run. Python {platform.python_version()}, NumPy {np.__version__}, load average "
        f"{tuple(round(v, 2) for v in os.getloadavg())} at the end.",
        "",
        "| variant | cold s | warm s |",
        "|---|---|---|",
        *(f"| {name} | {c:.1f} | {w:.1f} |" for name, (c, w) in best.items()),
        "",
        f"Batches against one task per series: {ratio('one task per series', 'batches', 0)} cold, "
        f"{ratio('one task per series', 'batches', 1)} warm. A group in parts against one task: "
        f"{ratio('one task per group', 'group in parts', 0)} cold, "
        f"{ratio('one task per group', 'group in parts', 1)} warm.",
    ]
    (RESULTS / "batches.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
