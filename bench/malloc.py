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

A fit across series (``training = "group"``) allocates larger arrays (256 windows a step, the
whole group's windows to score), so ``--group-series N`` also times one cold group fit of N such
series in a fresh process, ``glibc defaults`` against ``tuned``, alternating ``--group-rounds``
times (0: skipped).

    OPENBLAS_NUM_THREADS=1 python bench/malloc.py [--fits 10] [--rounds 5] [--group-series 200] [--group-rounds 4]

Writes bench/results/malloc.json and bench/results/malloc.md (about ten minutes on 2 cores).
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
    from threadpoolctl import threadpool_limits

    import tickcast.service.run.tasks as train
    from daily_run import make_frames
    from scale import settings_for
    from tickcast.service.run.tasks import keep_freed_memory, train_series
    from tickcast.service.run.values import SeriesTask, forecaster_params

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
    return {
        "wall_s": wall / n_fits,
        "user_s": (after.user - before.user) / n_fits,
        "sys_s": (after.system - before.system) / n_fits,
        "faults": (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / n_fits,
        "tuned": applied,
    }


def group_child(tuned: bool, n_series: int) -> dict:
    """One cold fit across ``n_series`` series of 2,500 points, with or without the settings."""
    sys.path.insert(0, str(HERE))
    from threadpoolctl import threadpool_limits

    import tickcast.service.run.tasks as train
    from daily_run import make_frames
    from scale import settings_for
    from tickcast.service.run.tasks import keep_freed_memory, train_group
    from tickcast.service.run.values import GroupTask, forecaster_params

    threadpool_limits(limits=1, user_api="blas")
    train._tuned = True
    applied = keep_freed_memory() if tuned else False
    frames = make_frames(n_series, 2500, seed=7)
    keys = sorted(frames)
    params = forecaster_params(settings_for([], "sqlite://", "local").model, "group:bench", 1, 5)
    task = GroupTask(
        "group:bench",
        [f"csv:{k}" for k in keys],
        list(range(n_series)),
        [frames[k]["value"].to_numpy() for k in keys],
        params,
        horizon=5,
        level=0.8,
    )
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    before, started = os.times(), time.perf_counter()
    result = train_group(task)
    wall, after = time.perf_counter() - started, os.times()
    assert result.status == "ok", result.error
    return {
        "wall_s": wall,
        "user_s": after.user - before.user,
        "sys_s": after.system - before.system,
        "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "tuned": applied,
    }


def run_groups(base: dict, n_series: int, rounds: int) -> tuple[list, dict]:
    runs = []
    for i in range(rounds):
        figures = {}
        for name in ("glibc defaults", "tuned") if i % 2 == 0 else ("tuned", "glibc defaults"):
            out = subprocess.run(
                [sys.executable, __file__, "--group-child", name, "--group-series", str(n_series)],
                env=base,
                capture_output=True,
                text=True,
                check=True,
            )
            figures[name] = json.loads(out.stdout.splitlines()[-1])
        print(
            f"group round {i + 1}: "
            + ", ".join(f"{k} {v['wall_s']:.1f} s {v['faults']:.0f} faults" for k, v in figures.items()),
            file=sys.stderr,
            flush=True,
        )
        runs.append(figures)
    keys = ("wall_s", "user_s", "sys_s", "faults", "max_rss_mb")
    return runs, {
        name: {key: sum(r[name][key] for r in runs) / len(runs) for key in keys} for name in ("glibc defaults", "tuned")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fits", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--output", default=str(RESULTS))
    parser.add_argument("--group-series", type=int, default=200, help="series in the group fit (0: none)")
    parser.add_argument("--group-rounds", type=int, default=4)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--group-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.fits)))
        return
    if args.group_child:
        print(json.dumps(group_child(args.group_child == "tuned", args.group_series)))
        return
    base = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    base.setdefault("OPENBLAS_NUM_THREADS", "1")
    rounds = []
    for i in range(args.rounds):
        figures = {}
        for name, (_, _, extra) in VARIANTS.items():
            out = subprocess.run(
                [sys.executable, __file__, "--child", name, "--fits", str(args.fits)],
                env=base | extra,
                capture_output=True,
                text=True,
                check=True,
            )
            figures[name] = json.loads(out.stdout.splitlines()[-1])
        print(
            f"round {i + 1}: "
            + ", ".join(f"{k} {v['wall_s']:.3f} s/fit {v['faults']:.0f} faults" for k, v in figures.items()),
            file=sys.stderr,
            flush=True,
        )
        rounds.append(figures)
    mean = {
        name: {key: sum(r[name][key] for r in rounds) / len(rounds) for key in ("wall_s", "user_s", "sys_s", "faults")}
        for name in VARIANTS
    }
    lines = [
        "# malloc thresholds and the fits",
        "",
        f"{args.fits} cold fits of a 2,500-point series (default settings) per process and variant, variants "
        f"alternating, {args.rounds} rounds; means per fit over the rounds. `tuned`: after "
        "`keep_freed_memory()` (service/run/tasks.py: mmap threshold 32 MiB, trim threshold 64 MiB). "
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs shared with other work, Python "
        f"{platform.python_version()}.",
        "",
        "| variant | wall s | / glibc defaults | user s | system s | page faults |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    ref = mean["glibc defaults"]["wall_s"]
    for name, m in mean.items():
        lines.append(
            f"| {name} | {m['wall_s']:.3f} | {m['wall_s'] / ref:.3f} | {m['user_s']:.3f} | "
            f"{m['sys_s']:.3f} | {m['faults']:.0f} |"
        )
    group_runs, group_mean = [], {}
    if args.group_series > 0 and args.group_rounds > 0:
        group_runs, group_mean = run_groups(base, args.group_series, args.group_rounds)
        gref = group_mean["glibc defaults"]["wall_s"]
        lines += [
            "",
            f"One cold fit across {args.group_series} series of 2,500 points (`train_group`, default "
            f"settings) per process and variant, alternating, {args.group_rounds} rounds; means over the rounds.",
            "",
            "| variant | wall s | / glibc defaults | user s | system s | page faults | max RSS MB |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for name, m in group_mean.items():
            lines.append(
                f"| {name} | {m['wall_s']:.1f} | {m['wall_s'] / gref:.3f} | {m['user_s']:.1f} | "
                f"{m['sys_s']:.2f} | {m['faults']:.0f} | {m['max_rss_mb']:.0f} |"
            )
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "malloc.json").write_text(
        json.dumps(
            {
                "fits": args.fits,
                "rounds": rounds,
                "mean": mean,
                "group_series": args.group_series,
                "group_rounds": group_runs,
                "group_mean": group_mean,
            },
            indent=2,
        )
        + "\n"
    )
    (out / "malloc.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
