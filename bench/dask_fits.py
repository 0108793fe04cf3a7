"""The same fits through the local pool and through Dask workers, side by side: is a fit slower on a
Dask worker, and do tickcast's worker settings (QUIET_WORKER_ENV) help?

``--fits`` cold fits of one 2,500-point series (seeds differ), 2 workers each way: two local worker
processes; a scheduler and two single-threaded `dask worker` processes with Dask's defaults; the
same with QUIET_WORKER_ENV. The three alternate ``--rounds`` times, so that a shared machine's
other load falls on all alike. Wall time of the batch and mean fit seconds.

    python bench/dask_fits.py [--fits 100] [--rounds 2]

Writes bench/results/dask_fits.json and bench/results/dask_fits.md (a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from scale import RESULTS, WORKER_ENV, dask_cluster, load, make_frames, settings_for  # noqa: E402

KINDS = ("local", "dask defaults", "dask quiet")


def batch(kind: str, tasks) -> dict:
    from contextlib import nullcontext

    from tickcast.service.executors import QUIET_WORKER_ENV, open_executor
    from tickcast.service.run.tasks import train_series

    WORKER_ENV.clear()
    WORKER_ENV.update(QUIET_WORKER_ENV if kind == "dask quiet" else {})
    with nullcontext("") if kind == "local" else dask_cluster(2) as address:
        settings = settings_for([], "sqlite://", "local" if kind == "local" else "dask", address)
        with open_executor(settings.execution, len(tasks)) as pool:
            pool.submit(train_series, tasks[0]).result()  # workers started and warm
            started = time.perf_counter()
            results = [f.result() for f in [pool.submit(train_series, t) for t in tasks]]
            wall = time.perf_counter() - started
    assert all(r.status == "ok" for r in results)
    return {
        "wall_seconds": round(wall, 2),
        "mean_fit_seconds": round(float(np.mean([r.seconds for r in results])), 4),
        "load_after": load(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    from tickcast.service.run.values import SeriesTask, forecaster_params

    values = make_frames(1, 2500, seed=7)["s0000"]["value"].to_numpy()
    params = forecaster_params(settings_for([], "sqlite://", "local").model, "csv:x", 1, 5)
    tasks = [SeriesTask(f"csv:s{i}", i, values, dict(params, seed=i), horizon=5, level=0.8) for i in range(args.fits)]
    rounds = []
    for _ in range(args.rounds):
        figures = {kind: batch(kind, tasks) for kind in KINDS}
        print(figures, file=sys.stderr, flush=True)
        rounds.append(figures)
    lines = [
        "# Fits through local workers and Dask workers, side by side",
        "",
        f"{args.fits} cold fits of a 2,500-point series (default settings) per batch, 2 workers each way on "
        f"{os.cpu_count()} CPUs shared with other work; the three kinds alternate, {args.rounds} round(s). "
        "`dask quiet`: workers started with tickcast's QUIET_WORKER_ENV (service/executors.py).",
        "",
        "| round | kind | wall s | / local | mean fit s | load after |",
        "|---|---|---:|---:|---:|---|",
    ]
    for i, figures in enumerate(rounds, 1):
        base = figures["local"]["wall_seconds"]
        for kind in KINDS:
            f = figures[kind]
            lines.append(
                f"| {i} | {kind} | {f['wall_seconds']} | {f['wall_seconds'] / base:.3f} | "
                f"{f['mean_fit_seconds']} | {f['load_after'][0]} |"
            )
    out = Path(args.output)
    (out / "dask_fits.json").write_text(json.dumps({"fits": args.fits, "rounds": rounds}, indent=2) + "\n")
    (out / "dask_fits.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
