"""Past one machine: the daily run on the local executor and on a Dask cluster, the cost of a task
sent to a worker, and the driver's write throughput.

1. **Daily run**: ``--series`` synthetic series x ``--points`` business days (bench/synthetic.py's
   source, as bench/daily_run.py), default model settings. The history is ingested once into a
   template SQLite database; each executor gets a copy and does a cold run (every model from
   scratch) and then a warm run (one new point per series, each model continued), through
   ``run_cycle``: ``local`` = 2 worker processes; ``dask`` = a scheduler and 2 single-threaded
   workers started as `dask scheduler` / `dask worker` processes on this machine (as the compose
   profile runs them). Runs alternate (local cold, dask cold, local warm, dask warm) so that the
   other load on a shared machine falls on both alike. Target: dask within 15 % of local.
2. **Per-task overhead**: tasks that compute nothing but carry the real payload (a series of
   ``--points`` values and a model's bytes in; a result of a real fit's size out) through each
   executor, the way the train stage submits them: seconds per task.
3. **Driver write throughput**: ``store_fit`` (a fit, its loss history and forecasts, one
   transaction) of a real fit's result for ``--write-series`` series, on SQLite and on PostgreSQL
   (a server started as the test suite starts one): series stored per second.

    python bench/scale.py [--series 5000] [--points 2500] [--write-series 500] [--tasks 400] [--dask-defaults]
                          [--output DIR] [--name scale]

Writes bench/results/<name>.json and bench/results/<name>.md. The full size takes about an hour on
2 shared cores; develop with ``--series 100``.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))  # tests.support.pg: the PostgreSQL server the suite uses

from daily_run import make_frames  # noqa: E402
from synthetic import SyntheticSource  # noqa: E402
from tickcast.service.config import settings_from_dict  # noqa: E402
from tickcast.service.db import open_database  # noqa: E402

RESULTS = HERE / "results"
WORKERS = 2
WORKER_ENV: dict = {}  # the Dask workers' environment: QUIET_WORKER_ENV unless --dask-defaults


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {load()[0]}] {message}", file=sys.stderr, flush=True)


def settings_for(names, url: str, executor: str, address: str = ""):
    service = {"workers": WORKERS, "executor": executor}
    if address:
        service["dask_address"] = address
    return settings_from_dict(
        {"series": [{"key": f"csv:{n}", "path": "unused.csv", "price": True} for n in names], "service": service},
        db_url=url,
        env={},
    )


# --- a Dask cluster of processes, as the compose profile runs it ---------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def dask_cluster(workers: int):
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = os.environ | {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"} | WORKER_ENV
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-dashboard",
            ],
            **quiet,
        )
    ]
    procs.append(
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_worker",
                address,
                "--nworkers",
                str(workers),
                "--nthreads",
                "1",
                "--no-dashboard",
                "--memory-limit",
                "0",
            ],
            **quiet,
        )
    )
    try:
        from distributed import Client

        with Client(address, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=120)
        say(f"dask cluster at {address}: {workers} workers in {time.perf_counter() - started:.1f} s")
        yield address
    finally:
        for proc in reversed(procs):
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


# --- 1. the daily run ----------------------------------------------------------------------------


def template_database(tmp: Path, frames: dict) -> tuple[Path, float]:
    from tickcast.service.run.ingest import ingest

    path = tmp / "template.db"
    url = f"sqlite:///{path}"
    engine = open_database(url)
    started = time.perf_counter()
    results = ingest(engine, settings_for(frames, url, "local"), sources={"csv": SyntheticSource(frames)})
    seconds = time.perf_counter() - started
    assert all(r.status == "ok" for r in results)
    engine.dispose()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path, seconds


def _kind(cmdline: str) -> str | None:
    if "dask_scheduler" in cmdline:
        return "scheduler"
    if "dask_worker" in cmdline:
        return "nannies"  # `dask worker`: the nannies' process, which spawns the workers
    if "multiprocessing" in cmdline:
        return "workers"  # the local pool's processes, or Dask's worker processes
    return None


@contextmanager
def cpu_seconds():
    """CPU seconds (user + system) spent while the block runs, per kind of process on this
    machine: this driver, the Dask scheduler, the nannies, the worker processes (local or Dask).
    Processes are sampled every half second, so ones that start and end inside the block (a
    local pool) count too, up to their last half second."""
    import threading

    import psutil

    first: dict = {}
    last: dict = {}
    stop = threading.Event()

    def sample() -> None:
        for proc in psutil.process_iter(["cmdline"]):
            kind = _kind(" ".join(proc.info["cmdline"] or []))
            if kind is None or proc.pid == os.getpid():
                continue
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            key = (proc.pid, kind)
            first.setdefault(key, times.user + times.system if proc.create_time() < started_at else 0.0)
            last[key] = times.user + times.system

    def poll() -> None:
        while not stop.wait(0.5):
            sample()

    started_at = time.time()
    sample()
    driver = time.process_time()
    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    figures: dict = {}
    try:
        yield figures
    finally:
        stop.set()
        thread.join()
        sample()
        figures["driver"] = round(time.process_time() - driver, 1)
        for (pid, kind), value in last.items():
            figures[kind] = round(figures.get(kind, 0.0) + value - first[(pid, kind)], 1)


def timed_run(url: str, names, frames: dict, executor: str, address: str, label: str) -> dict:
    from tickcast.service.run.cycle import run_cycle

    settings = settings_for(names, url, executor, address)
    engine = open_database(url)
    before = load()
    started = time.perf_counter()
    with cpu_seconds() as cpu:
        summary = run_cycle(engine, settings, sources={"csv": SyntheticSource(frames)})
    total = time.perf_counter() - started
    engine.dispose()
    trained = [o for o in summary.outcomes if o.fit == "trained"]
    failed = [f"{o.key}: {o.error}" for o in summary.outcomes if o.failed]  # reported, not fatal after an hour
    fit_seconds = float(sum(o.seconds for o in trained))
    train = summary.timings["train"]
    figures = {
        "seconds": round(total, 1),
        "stages": {k: round(v, 1) for k, v in summary.timings.items()},
        "status": str(summary.status),
        "failed": len(failed),
        "first_failures": failed[:3],
        "fits": len(trained),
        "modes": sorted({str(o.mode) for o in trained}),
        "fit_seconds_total": round(fit_seconds, 1),
        "mean_fit_seconds": round(fit_seconds / len(trained), 3),
        # the train + store stage against the fits' own time spread over the workers
        "train_stage_over_ideal": round(train / (fit_seconds / WORKERS), 3),
        # CPU seconds per kind of process during the run, and the worker processes' CPU
        # against the fits' own wall time (1.0: a fit never waited for the CPU)
        "cpu_seconds": cpu,
        "worker_cpu_over_fit_time": round(cpu.get("workers", 0.0) / fit_seconds, 3),
        "load_before": before,
        "load_after": load(),
    }
    say(f"{label}: {figures}")
    return figures


def daily_runs(tmp: Path, n_series: int, n_points: int) -> dict:
    full = make_frames(n_series, n_points)
    day1 = {k: f.iloc[:-1] for k, f in full.items()}
    template, ingest_seconds = template_database(tmp, day1)
    say(
        f"template: {n_series} x {n_points} ingested in {ingest_seconds:.0f} s "
        f"({template.stat().st_size / 2**20:.0f} MB)"
    )
    urls = {}
    for executor in ("local", "dask"):
        shutil.copy(template, tmp / f"{executor}.db")
        urls[executor] = f"sqlite:///{tmp / f'{executor}.db'}"
    template.unlink()
    runs: dict = {"local": {}, "dask": {}}
    with dask_cluster(WORKERS) as address:
        for day, frames in (("cold", day1), ("warm", full)):
            for executor in ("local", "dask"):
                runs[executor][day] = timed_run(
                    urls[executor],
                    list(full),
                    frames,
                    executor,
                    address if executor == "dask" else "",
                    f"{executor} {day}",
                )
    same = _same_forecasts(tmp / "local.db", tmp / "dask.db")
    return {
        "ingest_seconds": round(ingest_seconds, 1),
        "runs": runs,
        "identical_forecasts": same,
        "database_mb": round((tmp / "local.db").stat().st_size / 2**20),
    }


def _same_forecasts(a: Path, b: Path) -> bool:
    query = (
        "SELECT s.key, f.origin_ts, f.step, f.value, f.lower, f.upper FROM forecasts f "
        "JOIN series s ON s.id = f.series_id ORDER BY 1, 2, 3"
    )
    with sqlite3.connect(a) as ca, sqlite3.connect(b) as cb:
        return ca.execute(query).fetchall() == cb.execute(query).fetchall()


# --- 2. per-task overhead -------------------------------------------------------------------------


def echo_task(task):
    """Computes nothing; returns a result of a real fit's size (the model's bytes, the history)."""
    from tickcast.service.run.values import Forecast, SeriesResult

    n_history, horizon = task.params["history"], task.horizon
    history = [
        {"epoch": i, "train_loss": 0.1, "val_loss": 0.1, "grad_norm": 1.0, "clip_fraction": 0.0}
        for i in range(n_history)
    ]
    forecast = Forecast({"mae": 1.0, "naive_mae": 1.0, "n": 50.0}, [1.0] * horizon, [0.0] * horizon, [2.0] * horizon)
    return SeriesResult(
        task.key, task.series_id, "ok", blob=task.warm_blob, history=history, params=task.params, forecast=forecast
    )


def real_fit(n_points: int):
    from tickcast.service.run.tasks import train_series
    from tickcast.service.run.values import SeriesTask

    values = make_frames(1, n_points, seed=7)["s0000"]["value"].to_numpy()
    task = SeriesTask("csv:s0000", 1, values, {"seed": 0}, horizon=5, level=0.8)
    result = train_series(task)
    assert result.status == "ok", result.error
    return task, result


def task_overhead(n_tasks: int, n_points: int, address: str) -> dict:
    from tickcast.service.executors import open_executor
    from tickcast.service.run.values import SeriesTask

    task, result = real_fit(n_points)
    tasks = [
        SeriesTask(
            f"csv:s{i:04d}",
            i,
            task.values.copy(),
            {"history": len(result.history), "seed": i},
            horizon=5,
            level=0.8,
            warm_blob=result.blob,
        )
        for i in range(n_tasks)
    ]
    sizes = {
        "task_bytes": len(pickle.dumps(tasks[0], protocol=5)),
        "result_bytes": len(pickle.dumps(echo_task(tasks[0]), protocol=5)),
        "model_bytes": len(result.blob),
        "history_epochs": len(result.history),
    }
    figures = {"payload": sizes}
    started = time.perf_counter()
    for t in tasks:
        pickle.loads(pickle.dumps(echo_task(pickle.loads(pickle.dumps(t, protocol=5))), protocol=5))
    figures["in_process_pickle_round_trip_ms"] = round(1000 * (time.perf_counter() - started) / n_tasks, 3)
    for executor in ("local", "dask"):
        settings = settings_for([], "sqlite://", executor, address if executor == "dask" else "")
        with open_executor(settings.execution, len(tasks)) as pool:
            pool.submit(echo_task, tasks[0]).result()  # workers started and warm
            started = time.perf_counter()
            futures = [pool.submit(echo_task, t) for t in tasks]
            for future in futures:  # in order, as the train stage waits for them
                future.result()
            seconds = time.perf_counter() - started
        figures[executor] = {"ms_per_task": round(1000 * seconds / n_tasks, 2), "tasks": n_tasks}
        say(f"overhead {executor}: {figures[executor]}")
    return figures


# --- 3. the driver's write throughput -------------------------------------------------------------


def write_throughput(url: str, n_series: int, n_points: int, result) -> dict:
    from tickcast.service.run.cycle import _start_run
    from tickcast.service.run.ingest import ingest
    from tickcast.service.run.store import store_fit
    from tickcast.service.run.values import FitRecord
    from tickcast.service.status import FitMode, FitStatus, Trigger

    frames = make_frames(n_series, n_points, seed=3)
    engine = open_database(url)
    settings = settings_for(frames, url, "local")
    ingest(engine, settings, sources={"csv": SyntheticSource(frames)})
    run_id = _start_run(engine, Trigger.MANUAL)
    import sqlalchemy as sa

    with engine.connect() as conn:
        ids = dict(conn.execute(sa.text("SELECT key, id FROM series")).all())
    end = frames["s0000"]["ts"].iloc[-1].date()
    records = [
        FitRecord(
            run_id=run_id,
            series_id=ids[f"csv:{name}"],
            status=FitStatus.OK,
            settings_hash="bench",
            mode=FitMode.COLD,
            train_end=end,
            n_obs=n_points,
            frequency="B",
            level=0.8,
            interval_adapt_rate=0.05,
        )
        for name in frames
    ]
    started = time.perf_counter()
    for record in records:
        store_fit(engine, record, result, result.forecast)
    seconds = time.perf_counter() - started
    engine.dispose()
    return {
        "series": n_series,
        "seconds": round(seconds, 2),
        "series_per_second": round(n_series / seconds, 1),
        "ms_per_series": round(1000 * seconds / n_series, 2),
    }


def writes(tmp: Path, n_series: int, n_points: int) -> dict:
    from tests.support.pg import PostgresServer

    _, result = real_fit(n_points)
    figures = {"sqlite": write_throughput(f"sqlite:///{tmp / 'writes.db'}", n_series, n_points, result)}
    say(f"writes sqlite: {figures['sqlite']}")
    server = PostgresServer().start()
    try:
        with server.database() as url:
            figures["postgresql"] = write_throughput(url, n_series, n_points, result)
    finally:
        server.stop()
    say(f"writes postgresql: {figures['postgresql']}")
    figures["per_fit_rows"] = {"fits": 1, "loss_history": len(result.history), "forecasts": len(result.forecast.point)}
    return figures


# --- report ----------------------------------------------------------------------------------------


def cpu_table(runs: dict) -> list[str]:
    """Where the CPU went in each run (figures from before this table existed have none)."""
    if "cpu_seconds" not in runs["local"]["cold"]:
        return []
    kinds = ("driver", "scheduler", "nannies", "workers")
    lines = [
        "CPU seconds per kind of process during each run, and the worker processes' CPU seconds "
        "per second of fit (wall) time:",
        "",
        "| run | executor | " + " | ".join(kinds) + " | fits' wall s | worker CPU / fit time |",
        "|---|---|" + "---:|" * (len(kinds) + 2),
    ]
    for day in ("cold", "warm"):
        for executor in ("local", "dask"):
            r = runs[executor][day]
            lines.append(
                f"| {day} | {executor} | "
                + " | ".join(str(r["cpu_seconds"].get(k, 0.0)) for k in kinds)
                + f" | {r['fit_seconds_total']} | {r['worker_cpu_over_fit_time']} |"
            )
    return lines


def markdown(f: dict) -> str:
    runs = f["daily"]["runs"]

    def row(day):
        lo, da = runs["local"][day], runs["dask"][day]
        return (
            f"| {day} | {lo['seconds']:.0f} | {lo['stages']['train']:.0f} | {da['seconds']:.0f} | "
            f"{da['stages']['train']:.0f} | **{da['seconds'] / lo['seconds']:.3f}** | "
            f"{da['stages']['train'] / lo['stages']['train']:.3f} | {lo['mean_fit_seconds']} / "
            f"{da['mean_fit_seconds']} | {lo['load_before'][0]}-{lo['load_after'][0]} / "
            f"{da['load_before'][0]}-{da['load_after'][0]} |"
        )

    o, w = f["overhead"], f["writes"]
    return "\n".join(
        [
            "# Scale benchmark: local executor vs Dask, per-task overhead, driver writes",
            "",
            f"{f['series']} synthetic series x {f['points']} business days, default model settings, "
            f"{WORKERS} workers on {f['cpus']} CPUs shared with other work (load averages below). SQLite. "
            f"Template ingest {f['daily']['ingest_seconds']:.0f} s; database {f['daily']['database_mb']} MB after "
            "both runs.",
            "",
            "## Daily run (seconds)",
            "",
            "| run | local total | local train+store | dask total | dask train+store | dask / local (total) | "
            "dask / local (train+store) | mean fit s local / dask | load 1-min before-after local / dask |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|",
            row("cold"),
            row("warm"),
            "",
            *cpu_table(runs),
            "",
            f"Target: dask within 15 % of local (ratio <= 1.15). Forecasts of the two executors identical: "
            f"{f['daily']['identical_forecasts']}. Dask workers started with "
            + (
                ", ".join(f"`{k}={v}`" for k, v in f["dask_worker_env"].items()) + " (tickcast's QUIET_WORKER_ENV)"
                if f.get("dask_worker_env")
                else "dask's default settings (profiler on, 20 ms event-loop tick)"
            )
            + ".",
            "",
            "## Per-task overhead",
            "",
            f"Tasks computing nothing, carrying a {f['points']}-point series and a model "
            f"({o['payload']['model_bytes'] / 1024:.0f} KB) in "
            f"(task {o['payload']['task_bytes'] / 1024:.0f} KB pickled) "
            f"and a result of a real fit's size out ({o['payload']['result_bytes'] / 1024:.0f} KB, "
            f"{o['payload']['history_epochs']} epochs of history), {o['local']['tasks']} of them, waited for in order.",
            "",
            "| executor | ms per task |",
            "|---|---:|",
            f"| in this process (pickle round trip only) | {o['in_process_pickle_round_trip_ms']} |",
            f"| local (2 worker processes) | {o['local']['ms_per_task']} |",
            f"| dask (scheduler + 2 workers, 127.0.0.1) | {o['dask']['ms_per_task']} |",
            "",
            "## Driver write throughput",
            "",
            f"`store_fit` of a real fit (1 fit row with the model's bytes, "
            f"{w['per_fit_rows']['loss_history']} loss-history "
            f"rows, {w['per_fit_rows']['forecasts']} forecasts), one transaction per series, "
            f"{w['sqlite']['series']} series with {f['points']} observations each.",
            "",
            "| database | series/s | ms per series |",
            "|---|---:|---:|",
            f"| SQLite (WAL, this disk) | {w['sqlite']['series_per_second']} | {w['sqlite']['ms_per_series']} |",
            f"| PostgreSQL (127.0.0.1, fsync off as in the suite) | {w['postgresql']['series_per_second']} | "
            f"{w['postgresql']['ms_per_series']} |",
            "",
            f"Python {f['python']}, NumPy {f['numpy']}, dask {f['dask']}. Load average at the start {f['load_start']}, "
            f"at the end {f['load_end']}. Wall time of the benchmark: {f['seconds'] / 60:.0f} min.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=5000)
    parser.add_argument("--points", type=int, default=2500)
    parser.add_argument("--write-series", type=int, default=500)
    parser.add_argument("--tasks", type=int, default=400, help="tasks for the per-task overhead")
    parser.add_argument("--output", default=str(RESULTS), help="directory for the figures")
    parser.add_argument("--name", default="scale", help="file name of the figures (NAME.json, NAME.md)")
    parser.add_argument(
        "--dask-defaults",
        action="store_true",
        help="start the Dask workers with dask's defaults, not tickcast's QUIET_WORKER_ENV",
    )
    parser.add_argument(
        "--report", metavar="SCALE.JSON", help="only rewrite the .md beside it from figures measured before"
    )
    args = parser.parse_args()
    if args.report:
        figures = json.loads(Path(args.report).read_text())
        Path(args.report).with_suffix(".md").write_text(markdown(figures))
        return
    from tickcast.service.executors import QUIET_WORKER_ENV

    WORKER_ENV.update({} if args.dask_defaults else QUIET_WORKER_ENV)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    import dask

    started = time.perf_counter()
    figures = {
        "series": args.series,
        "points": args.points,
        "workers": WORKERS,
        "cpus": os.cpu_count(),
        "load_start": load(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "dask": dask.__version__,
        "dask_worker_env": dict(WORKER_ENV),
    }
    with tempfile.TemporaryDirectory(prefix="tickcast-scale-") as tmp:
        tmp = Path(tmp)
        with dask_cluster(WORKERS) as address:
            figures["overhead"] = task_overhead(args.tasks, args.points, address)
        figures["writes"] = writes(tmp, args.write_series, args.points)
        figures["daily"] = daily_runs(tmp, args.series, args.points)
    figures["load_end"] = load()
    figures["seconds"] = round(time.perf_counter() - started)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(figures, indent=2) + "\n")
    (out / f"{args.name}.md").write_text(markdown(figures))
    print(markdown(figures))


if __name__ == "__main__":
    main()
