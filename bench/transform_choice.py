"""transform="auto": which M3 series the level test moves from the log scale to the linear one,
and what that does to their forecasts.

Before, "auto" took the log scale for every strictly positive series; now only where changes grow
with the level (``models.windows.changes_grow_with_level``). Only the series whose choice changes
can forecast differently, so only they are fitted, once on each scale (the RNN per series, default
settings, the category's seasonal period), and scored on their test parts. Also counted: how many
series the test would move without its guards (``LEVEL_RANGE``, ``STEADY``).

    python bench/transform_choice.py [--data ../shared/data/m3.csv.gz] [--workers 2]

Writes ``bench/results/transform_choice.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from tickcast.models import RNNForecaster, windows

sys.path.insert(0, str(Path(__file__).resolve().parent))
from competition import DEFAULT_DATA, load, smape  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def _fit_both(s: dict) -> tuple[str, str, int, float, float]:
    out = []
    for transform in ("log", "linear"):
        model = RNNForecaster(season_length=s["m"], transform=transform).fit(s["train"])
        out.append(smape(s["test"], model.predict(s["h"])))
    return s["id"], s["category"], s["h"], out[0], out[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    series = load(args.data)
    positive = [s for s in series if np.all(s["train"] > 0)]
    moved = [s for s in positive if not windows.changes_grow_with_level(s["train"])]
    guard, steady = windows.LEVEL_RANGE, windows.STEADY
    windows.LEVEL_RANGE, windows.STEADY = 1.0, 0.0
    unguarded = sum(not windows.changes_grow_with_level(s["train"]) for s in positive)
    windows.LEVEL_RANGE, windows.STEADY = guard, steady
    print(f"{len(series)} series, {len(positive)} positive; {len(moved)} move to the linear scale", flush=True)
    start = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        rows = list(pool.map(_fit_both, moved, chunksize=4))
    seconds = time.perf_counter() - start
    by_cat: dict[str, list] = {}
    for r in rows:
        by_cat.setdefault(r[1], []).append(r)
    total_points = sum(s["h"] for s in series)
    lines = [
        '# transform="auto": the level test on M3',
        "",
        f"{len(series)} M3 series ({len(positive)} strictly positive). The level test (log|change| on log "
        f"level, slope above 1/2; only where the level varies by more than {guard}x and the mean change is at "
        f"least {steady} standard deviations of the changes) moves **{len(moved)}** of them from the log "
        f"scale to the linear one (without those guards it would move {unguarded}). "
        "Those series fitted on both scales (the RNN per series, default settings): sMAPE over their "
        "test points (and averaged over series).",
        "",
        "| category | series moved | log (before) | linear (now) | over series: log | linear |",
        "|---|---|---|---|---|---|",
    ]

    def row(name: str, rs: list) -> str:
        points = sum(r[2] for r in rs)
        log_pts = sum(r[3] * r[2] for r in rs) / points
        lin_pts = sum(r[4] * r[2] for r in rs) / points
        return (
            f"| {name} | {len(rs)} | {log_pts:.2f} | {lin_pts:.2f} | "
            f"{np.mean([r[3] for r in rs]):.2f} | {np.mean([r[4] for r in rs]):.2f} |"
        )

    for cat in sorted(by_cat):
        lines.append(row(cat, by_cat[cat]))
    if rows:
        lines.append(row("all moved", rows))
        delta = sum((r[4] - r[3]) * r[2] for r in rows) / total_points
        lines += [
            "",
            f"Effect on the M3 average over all {total_points} test points (the paper's sMAPE) of the RNN "
            f"per series: {delta:+.3f} (negative: better).",
        ]
    lines += [
        "",
        f"{seconds:.0f} s on {args.workers} worker(s); {platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {tuple(round(x, 2) for x in os.getloadavg())}.",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "transform_choice.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
