"""Start-up time of the command line: `tickcast --help` and `tickcast health` on a populated SQLite
database (the container's healthcheck runs `health` every few minutes). Target: under 0.5 s each.

Each round runs, side by side, the peer `python -c pass` (the interpreter's own start-up, the floor
for any Python command) and the two commands as real processes; the figures are the best and the
median wall time over the rounds. ``python -X importtime`` then shows which of the heavy packages
each command imports, and what they cost.

    python bench/cli_startup.py [--rounds 15]

Writes bench/results/cli_startup.md and bench/results/cli_startup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_SECONDS = 0.5
CONFIG = """
[service]
workers = 1
[watchlist]
sample = ["sp500", "nasdaq", "wti", "core-cpi"]
[model]
epochs = 3
"""


def tickcast() -> list[str]:
    script = Path(sys.executable).parent / "tickcast"  # the console script, as the healthcheck runs it
    return [str(script)] if script.exists() else [sys.executable, "-m", "tickcast"]


def timed(argv: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system) of one run of ``argv``. On a busy machine the wall
    time includes waiting for a core; the CPU time mostly does not."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr}")
    return seconds, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


HEAVY = (
    "sqlalchemy",
    "numpy",
    "tickcast.models",
    "apscheduler",
    "alembic",
    "pandas",
    "requests",
    "matplotlib",
    "yfinance",
    "exchange_calendars",
)


def imports_of(argv: list[str], env: dict) -> dict[str, float | None]:
    """Cumulative import seconds of the heavy packages in one run (``python -X importtime``);
    None: not imported at all."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "tickcast", *argv], env=env, capture_output=True, text=True
    )
    found: dict[str, float | None] = dict.fromkeys(HEAVY)
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if line.startswith("import time:") and len(parts) == 3 and parts[1].strip().isdigit():
            name = parts[2].strip()
            if name in found:
                found[name] = int(parts[1]) / 1e6
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "tickcast.toml").write_text(CONFIG)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TICKCAST_")}
        env.update(TICKCAST_CONFIG=str(Path(tmp) / "tickcast.toml"), TICKCAST_DATA_DIR=tmp)
        subprocess.run(tickcast() + ["run", "-q"], env=env, check=True, stdout=subprocess.DEVNULL)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "tickcast --help": tickcast() + ["--help"],
            "tickcast health": tickcast() + ["health"],
        }
        for argv in commands.values():  # warm the file cache and the .pyc files
            timed(argv, env)
        times: dict[str, list[float]] = {name: [] for name in commands}
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        loads = []
        for _ in range(args.rounds):
            loads.append(os.getloadavg()[0])
            for name, argv in commands.items():
                wall_seconds, cpu_seconds = timed(argv, env)
                times[name].append(wall_seconds)
                cpu[name].append(cpu_seconds)
        imports = {
            name: imports_of(argv[len(tickcast()) :], env)
            for name, argv in commands.items()
            if name.startswith("tickcast")
        }
        db_mb = (Path(tmp) / "tickcast.db").stat().st_size / 2**20
    figures = {
        name: {
            "best_seconds": round(min(t), 3),
            "median_seconds": round(statistics.median(t), 3),
            "best_cpu_seconds": round(min(cpu[name]), 3),
        }
        for name, t in times.items()
    }
    peer = figures["python -c pass"]["best_seconds"]
    for name in ("tickcast --help", "tickcast health"):
        figures[name]["best_vs_peer"] = round(figures[name]["best_seconds"] / peer, 1)
        figures[name]["meets_target"] = figures[name]["best_seconds"] < TARGET_SECONDS
    result = {
        "rounds": args.rounds,
        "target_seconds": TARGET_SECONDS,
        "commands": figures,
        "import_seconds": imports,
        "database_mb": round(db_mb, 1),
        "load_average_1min": {"min": round(min(loads), 2), "max": round(max(loads), 2)},
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cli_startup.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# CLI start-up benchmark",
        "",
        f"Wall time of real processes, best and median of {args.rounds} rounds run side by side with the peer "
        f"`python -c pass`; `health` on a populated SQLite database ({db_mb:.1f} MB, four sample series after "
        f"one run). Target: under {TARGET_SECONDS} s. {os.cpu_count()} CPUs, 1-minute load average "
        f"{min(loads):.1f} to {max(loads):.1f} during the rounds (a shared machine); "
        f"Python {platform.python_version()}.",
        "",
        "| command | best s | median s | best / peer | under target | best CPU s (user + sys) |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for name, f in figures.items():
        lines.append(
            f"| `{name}` | {f['best_seconds']:.3f} | {f['median_seconds']:.3f} | "
            f"{f.get('best_vs_peer', 1.0):.1f} | "
            f"{'' if 'meets_target' not in f else 'yes' if f['meets_target'] else 'no'} | "
            f"{f['best_cpu_seconds']:.3f} |"
        )
    lines += [
        "",
        "What the commands import (`python -X importtime`, cumulative seconds of one run; - : not imported):",
        "",
        "| package | " + " | ".join(f"`{n}`" for n in imports) + " |",
        "|---|" + "---:|" * len(imports),
    ]
    for package in HEAVY:
        cells = ["-" if imports[n][package] is None else f"{imports[n][package]:.3f}" for n in imports]
        lines.append(f"| {package} | " + " | ".join(cells) + " |")
    (RESULTS / "cli_startup.md").write_text("\n".join(lines) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
