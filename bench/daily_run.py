"""The daily job at scale: 500 synthetic series x 2,500 daily points in SQLite.

A cold run (every model trained from scratch) and then a warm daily run (one new point per series,
each model fine-tuned from its previous fit), timed per stage, through ``service.pipeline.run_cycle``
with the default model settings (the published forecast: the RNN with AutoETS, DOTM and the
screened seasonal naive forecast) and one worker per core. Targets on a 2-core machine (issue 22):
cold run <= 40 s, warm daily run <= 10 s; the first targets were 10 minutes and 60 s.

The series are one frequency (trading days), so they form one group: with the default
``model.training = "auto"`` a group of series this long (median over ``group_max_median_length``)
trains per series. ``--group`` also times the same runs with ``training = "group"`` (one model
across all of them), to show what that choice costs at this size.

    python bench/daily_run.py [--series 500] [--points 2500] [--workers 0] [--group]

``--peer TREE`` (a ``git worktree`` of an earlier commit) also times the default cold and warm runs
with that checkout's code, this checkout's and the peer's in turn (``--rounds`` each, every run in
a fresh process), so that a change is measured against its predecessor at the same machine speed:
this machine's speed varies by 2x from hour to hour, and the targets are absolute seconds.

Writes bench/results/daily_run.md and bench/results/daily_run.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic import SyntheticSource  # noqa: E402
from tickcast.service.config import settings_from_dict  # noqa: E402
from tickcast.service.db import open_database  # noqa: E402
from tickcast.service.run.cycle import run_cycle  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
COLD_TARGET, WARM_TARGET = 40, 10  # seconds, 500 x 2,500 on 2 cores (issue 22)


def make_frames(n_series: int, n_points: int, seed: int = 0, cycle: float = 0.002) -> dict[str, pd.DataFrame]:
    """Price-like series: daily log-returns of 1 % noise, a small drift and a weekly cycle of
    amplitude ``cycle`` in the returns (0.002: about a random walk; 0.01: a pattern the RNN learns)."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2015-01-01", periods=n_points + 1)
    frames = {}
    for i in range(n_series):
        steps = rng.normal(0.0002, 0.01, n_points + 1) + cycle * np.sin(np.arange(n_points + 1) * 2 * np.pi / 5)
        frames[f"s{i:04d}"] = pd.DataFrame({"ts": dates, "value": 100 * np.exp(np.cumsum(steps))})
    return frames


def timed_run(engine, settings, frames, label):
    lines = []
    started = time.perf_counter()
    summary = run_cycle(
        engine, settings, sources={"csv": SyntheticSource(frames)}, progress=lambda m, problem=False: lines.append(m)
    )
    total = time.perf_counter() - started
    modes = {}
    for o in summary.outcomes:
        mode = str(o.mode or o.fit)
        modes[mode] = modes.get(mode, 0) + 1
    fit_seconds = [o.seconds for o in summary.outcomes if o.fit == "trained"]
    with engine.connect() as conn:  # fits whose RNN ran epochs (a warm start may carry it over as is)
        trained = conn.execute(
            sa.text("SELECT count(*) FROM fits WHERE run_id = :r AND epochs > 0"), {"r": summary.run_id}
        ).scalar_one()
    print(f"{label}: {summary.status} in {total:.1f} s {summary.timings} {modes}", file=sys.stderr)
    assert summary.status == "ok", [o.error for o in summary.outcomes if o.failed][:3]
    return {
        "seconds": round(total, 2),
        "stages": {k: round(v, 2) for k, v in summary.timings.items()},
        "modes": modes,
        "mean_fit_seconds": round(float(np.mean(fit_seconds)), 3) if fit_seconds else None,
        "max_fit_seconds": round(float(np.max(fit_seconds)), 3) if fit_seconds else None,
        "rnn_trained": int(trained),
    }


def peer_path(tree: Path, farm: Path) -> Path:
    """A directory to put first on PYTHONPATH so that ``tickcast`` is the checkout ``tree``'s
    code (the installed package maps ``tickcast`` to this checkout; a path entry is found first):
    its package files, and its models/, service/ and migrations/ as the subpackages."""
    pkg = farm / "tickcast"
    pkg.mkdir(parents=True)
    for name in ("__init__.py", "__main__.py"):
        shutil.copy(tree / "service" / "_tickcast" / name, pkg / name)
    for sub in ("models", "service", "migrations"):
        (pkg / sub).symlink_to((tree / sub).resolve(), target_is_directory=True)
    return farm


def commit_of(tree: Path) -> str:
    done = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or "an unknown commit"


def side_by_side(args, tree: Path) -> dict:
    """The default cold and warm runs, this checkout's and ``tree``'s code in turn, each in a
    fresh process; every round's figures."""
    rounds: dict[str, list] = {"this": [], "peer": []}
    with tempfile.TemporaryDirectory() as tmp:
        farm = peer_path(tree, Path(tmp) / "farm")
        for r in range(args.rounds):
            for who in ("this", "peer"):
                env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
                if who == "peer":
                    env["PYTHONPATH"] = str(farm)
                out = Path(tmp) / f"{who}{r}.json"
                cmd = [sys.executable, __file__, "--series", str(args.series), "--points", str(args.points)]
                cmd += ["--workers", str(args.workers), "--emit", str(out)]
                subprocess.run(cmd, env=env, check=True)
                rounds[who].append(json.loads(out.read_text()))
                print(f"round {r + 1} {who}: cold {rounds[who][-1]['cold']['seconds']} s", file=sys.stderr)
    return rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=500)
    parser.add_argument("--points", type=int, default=2500)
    parser.add_argument("--workers", type=int, default=0, help="0: one per core")
    parser.add_argument("--group", action="store_true", help='also time training = "group"')
    parser.add_argument("--no-pattern", action="store_true", help="skip the runs on series with a learnt pattern")
    parser.add_argument("--peer", type=Path, help="a checkout (git worktree) of an earlier commit to time beside")
    parser.add_argument("--rounds", type=int, default=2, help="with --peer: runs of each, in turn")
    parser.add_argument("--emit", type=Path, help=argparse.SUPPRESS)  # one default cold and warm run, to this file
    args = parser.parse_args()

    def cold_then_warm(model: dict, label: str, cycle: float = 0.002):
        full = make_frames(args.series, args.points, cycle=cycle)
        day1 = {k: f.iloc[:-1] for k, f in full.items()}  # the next day adds one point per series
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.db"
            settings = settings_from_dict(
                {
                    "series": [{"key": f"csv:{name}", "path": "unused.csv", "price": True} for name in full],
                    "service": {"workers": args.workers},
                    "model": model,
                },
                db_url=url,
                env={},
            )
            engine = open_database(url)
            cold = timed_run(engine, settings, day1, f"{label} cold")
            warm = timed_run(engine, settings, full, f"{label} warm")
            db_mb = os.path.getsize(f"{tmp}/bench.db") / 2**20
            engine.dispose()
        return settings, cold, warm, db_mb

    if args.emit:
        import tickcast.models

        _, cold, warm, _ = cold_then_warm({}, "default")
        code = str(Path(tickcast.models.__file__).resolve().parent.parent)
        args.emit.write_text(json.dumps({"code": code, "cold": cold, "warm": warm}))
        return
    peer = side_by_side(args, args.peer) if args.peer else None
    settings, cold, warm, db_mb = cold_then_warm({}, "default")
    figures = {
        "series": args.series,
        "points": args.points,
        "workers": settings.workers,
        "training": settings.model.training,
        "cold": cold,
        "warm": warm,
        "targets": {"cold_seconds": COLD_TARGET, "warm_seconds": WARM_TARGET},
        "meets_targets": cold["seconds"] <= COLD_TARGET and warm["seconds"] <= WARM_TARGET,
        "database_mb": round(db_mb, 1),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
    }
    if peer is not None:
        figures["side_by_side"] = {"peer": str(args.peer), "rounds": peer}
    if not args.no_pattern:  # where the RNN learns something, its warm starts fine-tune every member
        _, pattern_cold, pattern_warm, _ = cold_then_warm({}, "pattern", cycle=0.01)
        figures["pattern"] = {"cycle": 0.01, "cold": pattern_cold, "warm": pattern_warm}
    if args.group:
        _, group_cold, group_warm, _ = cold_then_warm({"training": "group"}, "group")
        figures["group"] = {"cold": group_cold, "warm": group_warm}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "daily_run.json").write_text(json.dumps(figures, indent=2) + "\n")

    def row(name, r, target):
        st = r["stages"]
        return (
            f"| {name} | {r['seconds']:.1f} | {target} | {st.get('ingest', 0):.1f} | {st.get('plan', 0):.1f} | "
            f"{st.get('train', 0):.1f} | {r['mean_fit_seconds']} | {r['modes']} | {r['rnn_trained']} |"
        )

    pattern_rows = ""
    if "pattern" in figures:
        pattern = figures["pattern"]
        pattern_rows = (
            row("pattern: cold", pattern["cold"], "-") + "\n" + row("pattern: warm", pattern["warm"], "-") + "\n"
        )
    group_rows = ""
    if args.group:
        group = figures["group"]
        group_rows = (
            row('training = "group": cold', group["cold"], "-")
            + "\n"
            + row('training = "group": warm', group["warm"], "-")
            + "\n"
        )
    peer_section = ""
    if peer is not None:
        lines = [
            f"\n## Side by side with {args.peer} at {commit_of(args.peer)} (`--peer`)\n\n"
            "The default cold and warm runs, this checkout's code and the peer's in turn, each in a fresh process "
            "(seconds; `code`: where each imported tickcast.models from).\n\n"
            "| round | code | cold s | cold mean fit s | warm s |\n|---|---|---:|---:|---:|"
        ]
        for r in range(args.rounds):
            for who in ("this", "peer"):
                f = peer[who][r]
                lines.append(
                    f"| {r + 1} | {who}: {f['code']} | {f['cold']['seconds']:.1f} | "
                    f"{f['cold']['mean_fit_seconds']} | {f['warm']['seconds']:.1f} |"
                )
        best = {who: min(f["cold"]["seconds"] for f in peer[who]) for who in peer}
        lines.append(
            f"\nBest cold run: this {best['this']:.1f} s, peer {best['peer']:.1f} s "
            f"(ratio {best['this'] / best['peer']:.2f}).\n"
        )
        peer_section = "\n".join(lines)
    how = (
        "a group of series this long trains per series"
        if args.points > settings.model.group_max_median_length
        else "the group is trained both ways on cold fits"
    )
    (RESULTS / "daily_run.md").write_text(
        "# Daily run benchmark\n\n"
        f"{args.series} synthetic series x {args.points} daily points in SQLite, default model settings "
        f'(training = "{settings.model.training}": {how}), '
        f"{settings.workers} worker process(es) on {os.cpu_count()} CPUs. Stage times in seconds; "
        'train includes writing each fit, its loss history and forecasts. With training = "group" the fit time is '
        "that of the one shared fit (one task, so one core).\n\n"
        "| run | total s | target s | ingest | plan | train + store | mean fit s (per worker) | fits "
        "| fits whose RNN ran epochs |\n"
        "|---|---:|---:|---:|---:|---:|---:|---|---:|\n"
        f"{row('cold (from scratch)', cold, COLD_TARGET)}\n{row('warm (one new point)', warm, WARM_TARGET)}\n"
        f"{pattern_rows}{group_rows}\n"
        "The default series are price-like (1 % daily noise, a faint weekly cycle): on most of them the "
        "RNN's validation finds no epoch better than its untrained read-out. A cold fit of a series this long "
        "continues its validation fit (models/README.md: the RNN's final model is the validation model "
        "fine-tuned, AutoETS keeps the model it chose), and such members are carried over as they are, as "
        "warm starts carry them. The `pattern` rows: the same runs on series whose weekly cycle is as large "
        "as the noise (`make_frames(cycle=0.01)`), where the RNN learns it and every warm start fine-tunes.\n\n"
        f"Database after the default runs: {db_mb:.0f} MB. Python {platform.python_version()}, NumPy "
        f"{np.__version__}. Load average at the end: {figures['load_average_at_end']} (the machine is shared: "
        "other jobs' load inflates these times).\n" + peer_section
    )
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
