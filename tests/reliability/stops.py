"""Stopping a run from outside: long fits to stop, signals sent, how a stopped run is closed."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..support.daemon import Daemon
from .scenario import children_of, crash_invariants, query


def pool_workers(pid: int) -> list[int]:
    """The driver's spawned pool workers (not multiprocessing's resource tracker)."""
    found = []
    for child in children_of(pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
            found.append(child)
    return found


CONTRACT_SECONDS = 30  # SIGTERM to exit, whatever the run is doing (docker compose stop's grace)


CATCH_UP = '[schedule]\ncron = "0 0 * * *"\ntimezone = "UTC"\n'


def long_fit_world(root: Path, workers: int = 1, serve: bool = False) -> dict:
    """A short series (its fit is done in a moment) and long ones whose fits take minutes."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(4)
    entries = []
    for name, points in (("short", 60), ("long1", 2500), ("long2", 2500)):
        dates = pd.bdate_range("2010-01-04", periods=points)
        values = 20 * np.exp(np.cumsum(rng.normal(0, 0.01, points)))
        pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "value": values}).to_csv(root / f"{name}.csv", index=False)
        entries.append(f'[[series]]\nkey = "csv:{name}"\npath = "{name}.csv"\nprice = true\n')
    (root / "tickcast.toml").write_text(
        f"[service]\nworkers = {workers}\n[watchlist]\nsample = []\n"
        + "".join(entries)
        + "[model]\nhidden_size = 16\nepochs = 2000\npatience = 10000\nensemble = 1\n"
        + (CATCH_UP if serve else "")
    )
    return {"TICKCAST_CONFIG": str(root / "tickcast.toml"), "TICKCAST_DATA_DIR": str(root / "data")}


def stopped_within(daemon: Daemon, seconds: float, signum: int = signal.SIGTERM) -> tuple[int, float]:
    started = time.monotonic()
    daemon.proc.send_signal(signum)
    try:
        code = daemon.proc.wait(timeout=seconds * 4)  # to see how late it was, not only that it was
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait()
    daemon.reader.join(timeout=10)
    return code, time.monotonic() - started


def closed_as_failed(env, reason: str) -> None:
    ((status, error),) = query(env, "SELECT status, error FROM runs")
    assert status == "failed" and error.startswith(reason), error
    assert error.endswith("completed series are stored, the next run does the rest")
    assert query(env, "SELECT count(*) FROM run_lease") == [(0,)]
    assert crash_invariants(env) == []
