"""The statistical challengers' fit speed against an older commit, side by side in one process.

AutoETS and Theta (DOTM), the two challengers the published forecast combines with the RNN, fitted
with ``fit_many`` (validation fit, forecasts from every validation origin, refit on all: what the
service's train stage runs) on:

- ``daily``: 48 synthetic trading-day series of 2,500 points (``bench/daily_run.py``'s), no season;
- ``m3-monthly``: every ``--every``-th monthly M3 series (season 12);
- ``hourly``: 24 synthetic hourly series of 1,200 points (season 24: seasonal ETS states).

Rounds interleave the old code (``--old TREE``: a ``git worktree`` of the older commit) and
today's, in batches of ``--batch`` series (the service trains series in batches), and keep each
one's best round; the speed-up is old / new. Beside it, the largest relative difference between
the two codes' forecasts (h steps from the end), how many series' forecasts moved by more than
1e-6 (relative) and how many of those chose another ETS model (near-ties of the likelihood can
fall the other way when sums are reassociated).

    git worktree add /tmp/old0333 0333b55
    OPENBLAS_NUM_THREADS=1 python bench/challengers.py --old /tmp/old0333   # results/challengers.md, .json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tickcast.models as new_models  # noqa: E402
from competition import DEFAULT_DATA, load  # noqa: E402
from daily_run import make_frames  # noqa: E402
from oldcode import load_old  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def datasets(every: int) -> dict[str, tuple[list[np.ndarray], int, int]]:
    """name -> (series, season length, horizon)."""
    rng = np.random.default_rng(1)
    t = np.arange(1200)
    hourly = [
        50 + (5 + i / 4) * np.sin(2 * np.pi * t / 24) + rng.normal(0, 1, t.size).cumsum() * 0.3 for i in range(24)
    ]
    monthly = [d["train"] for d in load(DEFAULT_DATA) if d["category"].lower().startswith("month")][::every]
    daily = [f["value"].to_numpy()[-2500:] for f in make_frames(48, 2500).values()]
    return {"daily": (daily, 1, 5), "m3-monthly": (monthly, 12, 18), "hourly": (hourly, 24, 24)}


def fit_all(module, kind: str, ys: list[np.ndarray], m: int, h: int, batch: int):
    """(seconds, forecasts (S, h), model names or None) of ``kind`` fitted in batches."""
    cls = module.AutoETS if kind == "ets" else module.Theta
    started = time.perf_counter()
    models = [cls(season_length=m).fit_many(ys[i : i + batch]) for i in range(0, len(ys), batch)]
    seconds = time.perf_counter() - started
    forecasts = np.array([f for model in models for f in model.predict_many(h)])
    names = [n for model in models for n in model.models_] if kind == "ets" else None
    return seconds, forecasts, names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True, help="a git worktree of the older commit")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--every", type=int, default=4, help="every k-th monthly M3 series")
    parser.add_argument("--out", default=str(RESULTS / "challengers"))
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, "blas")
    old = load_old(args.old)
    commit = Path(args.old, ".git").read_text().strip() if Path(args.old, ".git").is_file() else args.old
    load_before = os.getloadavg()
    rows = []
    for name, (ys, m, h) in datasets(args.every).items():
        for kind in ("ets", "theta"):
            best = {"old": np.inf, "new": np.inf}
            outputs = {}
            for _ in range(args.rounds):
                for label, module in (("old", old), ("new", new_models)):
                    seconds, forecasts, names = fit_all(module, kind, ys, m, h, args.batch)
                    best[label] = min(best[label], seconds)
                    outputs[label] = (forecasts, names)
            (f_old, n_old), (f_new, n_new) = outputs["old"], outputs["new"]
            rel_each = np.max(np.abs(f_new - f_old) / np.maximum(np.abs(f_old), 1e-12), axis=1)
            rel = float(np.max(rel_each))
            rows.append(
                {
                    "data": name,
                    "model": kind,
                    "series": len(ys),
                    "old_ms": round(1000 * best["old"] / len(ys), 2),
                    "new_ms": round(1000 * best["new"] / len(ys), 2),
                    "speedup": round(best["old"] / best["new"], 2),
                    "max_rel_forecast_diff": rel,
                    "differ": int(np.sum(rel_each > 1e-6)),
                    "other_model": None if n_old is None else sum(a != b for a, b in zip(n_old, n_new)),
                }
            )
            print(rows[-1], file=sys.stderr, flush=True)
    figures = {
        "old": commit,
        "rounds": args.rounds,
        "batch": args.batch,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "rows": rows,
    }
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps(figures, indent=2) + "\n")
    lines = [
        "# Challengers' fit speed against an older commit, side by side",
        "",
        f"`fit_many` in batches of {args.batch} series (validation fit, forecasts from every validation origin, "
        f"refit), best of {args.rounds} interleaved rounds, one process, one BLAS thread. Old: `{commit}`. "
        f"Load average before {tuple(round(v, 2) for v in load_before)}, after "
        f"{tuple(round(v, 2) for v in figures['load_after'])} (2 cores).",
        "",
        "| data | model | series | old ms per series | new ms per series | speed-up | max rel. forecast diff. "
        "| series whose forecast moved > 1e-6 | ... to another ETS model |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        other = "" if r["other_model"] is None else str(r["other_model"])
        lines.append(
            f"| {r['data']} | {r['model']} | {r['series']} | {r['old_ms']} | {r['new_ms']} | {r['speedup']:.2f}x "
            f"| {r['max_rel_forecast_diff']:.1e} | {r['differ']} | {other} |"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
