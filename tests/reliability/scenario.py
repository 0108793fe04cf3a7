"""A small but complete world for fault injection: two bundled samples and two CSV series, a fast
model, one worker (so crash points are reached in a known order), and helpers to snapshot the
tables by content (not by ids or timestamps) and check the crash invariants."""

from __future__ import annotations

import hashlib
import os
import resource
import signal
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from tickcast.service.db import open_database

from ..support.cli import tickcast_executable
from ..support.small_model import small_model
from ..support.tables import ROWS_PER_STEP

HORIZON = 5
FORECAST_ROWS = HORIZON * ROWS_PER_STEP  # a fit's forecasts: every model's, at every level
CONFIG = """
[service]
workers = {workers}
[watchlist]
sample = ["sp500", "core-cpi"]
[[series]]
key = "csv:alpha"
path = "alpha.csv"
price = true
[[series]]
key = "csv:beta"
path = "beta.csv"
[model]
hidden_size = 8
epochs = 4
ensemble = 1
max_points = 400
[forecast]
horizon = 5
"""


GROUP_CONFIG = """
[service]
workers = {workers}
{tables}
[model]
hidden_size = 8
epochs = 3
ensemble = 1
training = "group"
group_min_series = 3
full_retrain_days = 100
[forecast]
horizon = 5
"""


def make_group_world(root: Path, months: int = 48, workers: int = 1) -> dict:
    """Three monthly CSV series trained as one group; ``months`` values of each."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(12)
    dates = pd.date_range("2015-01-01", periods=60, freq="MS")
    tables = ""
    for i in range(3):
        values = (
            rng.uniform(20, 90) * (1 + 0.2 * np.sin(np.arange(60) * np.pi / 6 + i)) * np.exp(rng.normal(0, 0.02, 60))
        )
        pd.DataFrame({"date": dates[:months].strftime("%Y-%m-%d"), "value": values[:months]}).to_csv(
            root / f"m{i}.csv", index=False
        )
        tables += f'[[series]]\nkey = "csv:m{i}"\npath = "m{i}.csv"\n'
    (root / "tickcast.toml").write_text(GROUP_CONFIG.format(workers=workers, tables=tables))
    return {"TICKCAST_CONFIG": str(root / "tickcast.toml"), "TICKCAST_DATA_DIR": str(root / "data")}


def make_world(root: Path, workers: int = 1) -> dict:
    """Write the config and CSV files under ``root``; returns the environment for `tickcast`."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(11)
    dates = pd.bdate_range("2021-01-04", periods=300)
    pd.DataFrame(
        {"date": dates.strftime("%Y-%m-%d"), "value": 40 * np.exp(np.cumsum(rng.normal(0, 0.02, 300)))}
    ).to_csv(root / "alpha.csv", index=False)
    pd.DataFrame(
        {"date": dates.strftime("%Y-%m-%d"), "value": np.sin(np.arange(300) / 5) + rng.normal(0, 0.1, 300)}
    ).to_csv(root / "beta.csv", index=False)
    (root / "tickcast.toml").write_text(CONFIG.format(workers=workers))
    return {"TICKCAST_CONFIG": str(root / "tickcast.toml"), "TICKCAST_DATA_DIR": str(root / "data")}


def database(env: dict) -> Path:
    return Path(env["TICKCAST_DATA_DIR"]) / "tickcast.db"


def run_tickcast(
    env: dict, *args: str, extra: dict | None = None, timeout: float = 300, preexec_fn=None
) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("TICKCAST_")} | env | (extra or {})
    return subprocess.run(
        tickcast_executable() + list(args),
        capture_output=True,
        text=True,
        env=full,
        timeout=timeout,
        preexec_fn=preexec_fn,
    )


def start_tickcast(env: dict, *args: str) -> subprocess.Popen:
    full = {k: v for k, v in os.environ.items() if not k.startswith("TICKCAST_")} | env
    return subprocess.Popen(
        tickcast_executable() + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full
    )


def query(env: dict, sql: str, params=()) -> list[tuple]:
    conn = sqlite3.connect(f"file:{database(env)}?mode=ro", uri=True, timeout=30)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def integrity(env: dict) -> str:
    return query(env, "PRAGMA integrity_check")[0][0]


def snapshot(env: dict) -> dict[str, set]:
    """The data tables by content: what a person would compare, without ids, run ids or timestamps."""

    def digest(blob):
        return hashlib.sha256(blob).hexdigest() if blob is not None else None

    fits = query(
        env,
        """
        SELECT s.key, f.status, f.mode, f.cell, f.train_start, f.train_end, f.n_obs, f.epochs, f.best_epoch,
               f.train_loss, f.val_loss, f.mae, f.rmse, f.mase, f.naive_mae, f.skill, f.error, f.weights
        FROM fits f JOIN series s ON s.id = f.series_id""",
    )
    return {
        "observations": set(
            query(env, "SELECT s.key, o.ts, o.value FROM observations o JOIN series s ON s.id = o.series_id")
        ),
        "fits": {row[:-1] + (digest(row[-1]),) for row in fits},
        "loss_history": set(
            query(
                env,
                """
            SELECT s.key, f.train_end, h.epoch, h.train_loss, h.val_loss, h.grad_norm, h.clip_fraction
            FROM loss_history h JOIN fits f ON f.id = h.fit_id JOIN series s ON s.id = f.series_id""",
            )
        ),
        "forecasts": set(
            query(
                env,
                "SELECT s.key, x.origin_ts, x.model, x.step, x.target_ts, x.value, x.lower, x.upper, "
                "x.level FROM forecasts x JOIN series s ON s.id = x.series_id",
            )
        ),
    }


def crash_invariants(env: dict) -> list[str]:
    """What must hold after any crash: every series fully written for a run or untouched."""
    if not database(env).exists():
        return []  # killed before the database was created: nothing to check
    problems = []
    if integrity(env) != "ok":
        problems.append(f"integrity_check: {integrity(env)}")
    tables = {name for (name,) in query(env, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "fits" not in tables:
        return problems  # killed before the schema was created (one transaction: all or nothing)
    for fit_id, key, status, epochs, series_id, shared in query(
        env,
        "SELECT f.id, s.key, f.status, f.epochs, f.series_id, f.group_fit_id FROM fits f "
        "LEFT JOIN series s ON s.id = f.series_id",
    ):
        history = query(env, "SELECT count(*), min(epoch) FROM loss_history WHERE fit_id = ?", (fit_id,))[0]
        forecasts = query(env, "SELECT count(*) FROM forecasts WHERE fit_id = ?", (fit_id,))[0][0]
        if status != "ok":
            continue
        if series_id is None:  # a group's shared fit: the model and its loss history, no forecasts
            if history[0] != epochs + 1 or history[1] != 0 or forecasts:
                problems.append(f"shared fit {fit_id} half-written: {history[0]} epochs stored of {epochs + 1}")
        elif shared is not None:  # a group member's row: forecasts; its model is the shared fit's
            (model,) = query(
                env, "SELECT count(*) FROM fits WHERE id = ? AND status = 'ok' AND weights IS NOT NULL", (shared,)
            )[0]
            # a newer fit from the same origin (the group trained again after the crash) took its forecasts over
            (superseded,) = query(
                env,
                "SELECT count(*) FROM fits f JOIN fits g ON g.series_id = f.series_id AND "
                "g.train_end = f.train_end AND g.id > f.id AND g.status = 'ok' WHERE f.id = ?",
                (fit_id,),
            )[0]
            if history[0] or forecasts != (0 if superseded else FORECAST_ROWS) or not model:
                problems.append(
                    f"member fit {fit_id} of {key} half-written: {forecasts} forecasts, shared fit "
                    f"{shared} {'found' if model else 'missing'}"
                )
        elif history[0] != epochs + 1 or history[1] != 0 or forecasts != FORECAST_ROWS:
            problems.append(
                f"fit {fit_id} of {key} half-written: {history[0]} epochs stored of {epochs + 1}, {forecasts} forecasts"
            )
    return problems


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def kill9(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


__all__ = [
    "make_world",
    "make_group_world",
    "run_tickcast",
    "start_tickcast",
    "query",
    "integrity",
    "snapshot",
    "crash_invariants",
    "children_of",
    "alive",
    "kill9",
    "database",
]


FAST = small_model(max_points=None)


def write_csv(path, dates, values) -> None:
    """Values are written as given (strings stay strings, quoted when they hold a comma)."""
    pd.DataFrame({"date": [d.strftime("%Y-%m-%d") for d in dates], "value": values}).to_csv(path, index=False)


def world(tmp_path, names: list[str], extra: str = "") -> dict:
    entries = "".join(f'[[series]]\nkey = "csv:{name}"\npath = "{name}.csv"\n' for name in names)
    (tmp_path / "tickcast.toml").write_text("[service]\nworkers = 1\n" + entries + FAST + extra)
    return {"TICKCAST_CONFIG": str(tmp_path / "tickcast.toml"), "TICKCAST_DATA_DIR": str(tmp_path / "data")}


def slow_world(tmp_path, epochs: int = 60):
    """The crash world with more epochs, so a run lasts long enough to overlap with others."""
    env = make_world(tmp_path)
    cfg = tmp_path / "tickcast.toml"
    cfg.write_text(
        cfg.read_text()
        .replace("epochs = 4", f"epochs = {epochs}\npatience = 100")
        .replace("max_points = 400", "max_points = 1500")
        .replace('sample = ["sp500", "core-cpi"]', 'sample = ["sp500", "nasdaq", "wti", "core-cpi"]')
    )
    return env


def engine_of(env):
    return open_database(f"sqlite:///{database(env)}")


MEMORY_LIMIT = 600 * 2**20  # a run needs about 300 MB of address space; parsing the big CSV, over 1 GB


def limited(kind: int, soft: int, hard: int):
    return lambda: resource.setrlimit(kind, (soft, hard))


def series_row(env, key: str) -> tuple:
    return query(env, "SELECT last_error, last_note FROM series WHERE key = ?", (key,))[0]


def stored(env, key: str) -> list[tuple]:
    return query(
        env,
        "SELECT o.ts, o.value FROM observations o JOIN series s ON s.id = o.series_id WHERE s.key = ? ORDER BY o.ts",
        (key,),
    )
