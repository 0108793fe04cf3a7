"""glibc's malloc thresholds and the fits: page faults and time per fit, with and without
tickcast's settings (``service/train.py``: ``keep_freed_memory``), side by side.

Each variant runs ``--fits`` cold fits of one 2,500-point series (default settings, seeds differ)
in a fresh process, one BLAS thread; the variants alternate ``--rounds`` times so that a shared
machine's other load falls on all alike:

- ``glibc defaults``: the fits in the process's main thread (a local worker process before);
- ``tuned``: the same after ``keep_freed_memory()`` (a local worker process now);
- ``dask worker``: in a second thread, with ``MALLOC_TRIM_THRESHOLD_=65536`` (as Dask's nanny starts
  its workers, which run tasks in a thread beside their event loop);
- ``dask worker, tuned``: the same after ``keep_freed_memory()`` (a Dask worker now).

    OPENBLAS_NUM_THREADS=1 python bench/malloc.py [--fits 10] [--rounds 5]

Writes bench/results/malloc.json and bench/results/malloc.md (a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
VARIANTS = {  # name: (tuned, in a thread, extra environment)
    "glibc defaults": (False, False, {}),
    "tuned": (True, False, {}),
    "dask worker": (False, True, {"MALLOC_TRIM_THRESHOLD_": "65536"}),
    "dask worker, tuned": (True, True, {"MALLOC_TRIM_THRESHOLD_": "65536"}),
}


def child(variant: str, n_fits: int) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    sys.path.insert(0, str(HERE))
    from daily_run import make_frames
    from scale import settings_for

    from tickcast.service.train import SeriesTask, forecaster_params, keep_freed_memory, train_series

    import tickcast.service.train as train
    from threadpoolctl import threadpool_limits

    tuned, in_thread, _ = VARIANTS[variant]
    # What train.tune_process() does once per process, here with or without the malloc part.
    threadpool_limits(limits=1, user_api="blas")
    train._tuned = True
    applied = keep_freed_memory() if tuned else False
    values = make_frames(1, 2500, seed=7)["s0000"]["value"].to_numpy()
    params = forecaster_params(settings_for([], "sqlite://", "local").model, "csv:x", 1, 5)
    tasks = [SeriesTask(f"csv:s{i}", i, values, dict(params, seed=i), horizon=5, level=0.8) for i in range(n_fits + 1)]

    def fits(batch):
        return [train_series(t) for t in batch]

    pool = ThreadPoolExecutor(1)
    run = (lambda batch: pool.submit(fits, batch).result()) if in_thread else fits
    run(tasks[:1])  # imports and first allocations out of the way
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    before, started = os.times(), time.perf_counter()
    results = run(tasks[1:])
    wall, after = time.perf_counter() - started, os.times()
    assert all(r.status == "ok" for r in results)
    return {"wall_s": wall / n_fits, "user_s": (after.user - before.user) / n_fits,
            "sys_s": (after.system - before.system) / n_fits,
            "faults": (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / n_fits, "tuned": applied}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--output", default=str(RESULTS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.fits)))
        return
    base = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    base.setdefault("OPENBLAS_NUM_THREADS", "1")
    rounds = []
    for i in range(args.rounds):
        figures = {}
        for name, (_, _, extra) in VARIANTS.items():
            out = subprocess.run([sys.executable, __file__, "--child", name, "--fits", str(args.fits)],
                                 env=base | extra, capture_output=True, text=True, check=True)
            figures[name] = json.loads(out.stdout.splitlines()[-1])
        print(f"round {i + 1}: " + ", ".join(f"{k} {v['wall_s']:.3f} s/fit {v['faults']:.0f} faults"
                                            for k, v in figures.items()), file=sys.stderr, flush=True)
        rounds.append(figures)
    mean = {name: {key: sum(r[name][key] for r in rounds) / len(rounds) for key in ("wall_s", "user_s", "sys_s", "faults")}
            for name in VARIANTS}
    lines = ["# malloc thresholds and the fits", "",
             f"{args.fits} cold fits of a 2,500-point series (default settings) per process and variant, variants "
             f"alternating, {args.rounds} rounds; means per fit over the rounds. `tuned`: after "
             "`keep_freed_memory()` (service/train.py: mmap threshold 32 MiB, trim threshold 64 MiB). "
             f"Machine: {platform.machine()}, {os.cpu_count()} CPUs shared with other work, Python "
             f"{platform.python_version()}.", "",
             "| variant | wall s | / glibc defaults | user s | system s | page faults |",
             "|---|---:|---:|---:|---:|---:|"]
    ref = mean["glibc defaults"]["wall_s"]
    for name, m in mean.items():
        lines.append(f"| {name} | {m['wall_s']:.3f} | {m['wall_s'] / ref:.3f} | {m['user_s']:.3f} | "
                     f"{m['sys_s']:.3f} | {m['faults']:.0f} |")
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "malloc.json").write_text(json.dumps({"fits": args.fits, "rounds": rounds, "mean": mean}, indent=2) + "\n")
    (out / "malloc.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
