"""Ingest throughput: the service's ingest path against raw ``sqlite3.executemany``, side by side.

500 synthetic series x 2,500 daily points go into a fresh SQLite file through ``service.ingest``
(validation, upsert, series bookkeeping, one transaction per series), and the same rows go into the
same table of another fresh file through the standard library's ``executemany`` (also one
transaction per series). Target: the service reaches at least half the raw rate.

    python bench/ingest.py [--series 500] [--points 2500] [--repeat 3]

Writes bench/results/ingest.md and bench/results/ingest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import SyntheticSource  # noqa: E402
from tickcast.service.config import settings_from_dict  # noqa: E402
from tickcast.service.db import open_database  # noqa: E402
from tickcast.service.run.ingest import ingest  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def make_frames(n_series: int, n_points: int, seed: int = 0) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2010-01-01", periods=n_points)
    return {
        f"s{i:04d}": pd.DataFrame({"ts": dates, "value": 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n_points)))})
        for i in range(n_series)
    }


def run_service(frames: dict[str, pd.DataFrame], path: str) -> float:
    settings = settings_from_dict(
        {"series": [{"key": f"csv:{name}", "path": "unused.csv"} for name in frames]},
        db_url=f"sqlite:///{path}",
        env={},
    )
    engine = open_database(settings.db_url)
    started = time.perf_counter()
    results = ingest(engine, settings, sources={"csv": SyntheticSource(frames)})
    elapsed = time.perf_counter() - started
    assert all(r.status == "ok" for r in results), [r.error for r in results if r.status != "ok"]
    assert sum(r.new_rows for r in results) == sum(len(f) for f in frames.values())
    engine.dispose()
    return elapsed


def run_raw(frames: dict[str, pd.DataFrame], path: str) -> float:
    engine = open_database(f"sqlite:///{path}")  # same schema, created by the same migrations
    engine.dispose()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    started = time.perf_counter()
    for i, (name, frame) in enumerate(frames.items(), 1):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(
            "INSERT INTO series (id, key, source, symbol, created_at) VALUES (?, ?, 'csv', ?, ?)",
            (i, f"csv:{name}", name, "2026-01-01 00:00:00"),
        )
        rows = zip([i] * len(frame), frame["ts"].dt.strftime("%Y-%m-%d"), frame["value"].tolist())
        conn.executemany("INSERT INTO observations (series_id, ts, value) VALUES (?, ?, ?)", rows)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=500)
    parser.add_argument("--points", type=int, default=2500)
    parser.add_argument("--repeat", type=int, default=3, help="alternating rounds; the best of each is kept")
    args = parser.parse_args()
    frames = make_frames(args.series, args.points)
    rows = args.series * args.points
    service_times, raw_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.repeat):
            raw_times.append(run_raw(frames, os.path.join(tmp, f"raw{round_}.db")))
            service_times.append(run_service(frames, os.path.join(tmp, f"service{round_}.db")))
            print(
                f"round {round_ + 1}: service {rows / service_times[-1]:,.0f} rows/s, "
                f"raw {rows / raw_times[-1]:,.0f} rows/s",
                file=sys.stderr,
            )
    service_rate, raw_rate = rows / min(service_times), rows / min(raw_times)
    ratio = service_rate / raw_rate
    figures = {
        "series": args.series,
        "points": args.points,
        "rows": rows,
        "rounds": args.repeat,
        "service_rows_per_s": round(service_rate),
        "raw_rows_per_s": round(raw_rate),
        "ratio": round(ratio, 3),
        "target_ratio": 0.5,
        "meets_target": ratio >= 0.5,
        "service_seconds": [round(t, 3) for t in service_times],
        "raw_seconds": [round(t, 3) for t in raw_times],
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ingest.json").write_text(json.dumps(figures, indent=2) + "\n")
    (RESULTS / "ingest.md").write_text(
        "# Ingest benchmark\n\n"
        f"{args.series} series x {args.points} daily points ({rows:,} rows) into a fresh SQLite file, one "
        f"transaction per series; best of {args.repeat} alternating rounds.\n\n"
        "| path | rows/s |\n|---|---:|\n"
        f"| service (`service.ingest`: validate, upsert, bookkeeping) | {service_rate:,.0f} |\n"
        f"| raw `sqlite3.executemany` | {raw_rate:,.0f} |\n"
        f"| **ratio** (target >= 0.5) | **{ratio:.2f}** |\n\n"
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs.\n"
    )
    print(f"service {service_rate:,.0f} rows/s, raw {raw_rate:,.0f} rows/s, ratio {ratio:.2f} (target >= 0.5)")


if __name__ == "__main__":
    main()
