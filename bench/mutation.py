"""Mutation testing of the modules that carry tickcast's promises (``make mutation``).

mutmut (3.x) changes one operator, constant or call at a time in a copy of the code and runs the
tests that cover the changed function; a mutant that no test notices "survived". Chosen over
cosmic-ray by a measurement on this machine (``--compare``: bench/results/mutation-tools.md): mutmut forks
one warm pytest process per mutant and runs only the covering tests, cosmic-ray starts a fresh
test run per mutant.

The copy lives in ``build/mutation/`` (the repository's folders under the one import name
``tickcast``, as installed), so the working tree is never touched. Survivors judged equivalent
(no test could tell them from the original) are listed with their reason in
``bench/mutation_equivalent.toml``; the score counts the others.

    python bench/mutation.py                 # every module below
    python bench/mutation.py --only models   # the model's modules only (a few minutes)
    python bench/mutation.py --compare       # mutmut against cosmic-ray on models/intervals.py
    python bench/mutation.py --only service --report   # the results of a run stopped early
    python bench/mutation.py --module models/combine.py --out mutation-combine   # one module
    python bench/mutation.py --module service/sources --out mutation-sources   # one folder
    python bench/mutation.py --module service/run/tasks.py --recheck --out mutation-tasks   # and survivors again
    python bench/mutation.py --module service/run/tasks.py --report --recheck --out mutation-tasks  # the last run's
    python bench/mutation.py --module service/cli.py --report --recheck --tests tests/test_cli_help.py \
        --out mutation-cli  # the survivors against the tests written since, only

Writes ``bench/results/mutation.md`` (score per module, every surviving mutant's diff; ``--out``
names another file), or with ``--compare`` ``bench/results/mutation-tools.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "mutation"
RESULTS = ROOT / "bench" / "results"
EQUIVALENT = ROOT / "bench" / "mutation_equivalent.toml"
RECHECKED = WORK / "rechecked.json"  # module -> when its survivors were run again (--recheck)

RNN_TESTS = [
    "tests/models/test_forecaster_exact.py",
    "tests/models/test_persist_exact.py",
    "tests/models/test_cells_gradcheck.py",
    "tests/models/test_stack_parts.py",
    "tests/models/test_engine_reference.py",
    "tests/models/test_stacked_fits.py",
    "tests/models/test_training.py",
    "tests/models/test_safeguards.py",
    "tests/models/test_forecasting.py",
    "tests/models/test_series_and_persistence.py",
    "tests/models/test_global.py",
]
# where series come from: CSV files and URLs, FRED, Yahoo through the real yfinance, the samples
SOURCE_TESTS = [
    "tests/test_sources.py",
    "tests/test_http_fetch.py",
    "tests/test_csv_reading.py",
    "tests/test_config.py",
    "tests/test_ingest.py",
    "tests/reliability/test_source_faults.py",
    "tests/reliability/test_bad_input.py",
    "tests/reliability/test_data_limits.py",
    "tests/reliability/test_dates_and_history.py",
]
# the training stage: what a task computes, how tasks are scheduled and handed back
RUN_TESTS = [
    "tests/test_tasks.py",
    "tests/test_train_stage.py",
    "tests/test_worker_process.py",
    "tests/test_stored_equals_computed.py",
    "tests/test_pipeline.py",
    "tests/test_groups.py",
    "tests/reliability/test_model_faults.py",
    "tests/reliability/test_training_faults.py",
    "tests/reliability/test_resources.py",
]

# module -> the fast tests that cover it (mutmut runs, per mutant, those of them that reach its function)
MODULES = {
    "models": {
        "models/optim.py": [
            "tests/models/test_optim_clipping.py",
            "tests/models/test_safeguards.py",
            "tests/models/test_engine_reference.py",
        ],
        "models/engine.py": [
            "tests/models/test_engine_reference.py",
            "tests/models/test_safeguards.py",
            "tests/models/test_training.py",
            "tests/models/test_stacked_fits.py",
        ],
        "models/network.py": ["tests/models/test_safeguards.py", "tests/models/test_training.py"],
        "models/intervals.py": [
            "tests/models/test_safeguards.py",
            "tests/models/test_forecasting.py",
            "tests/models/test_conformal_exact.py",
        ],
        "models/conformal.py": [
            "tests/models/test_safeguards.py",
            "tests/models/test_challengers.py",
            "tests/models/test_conformal_exact.py",
        ],
    },
    # the published forecast's statistical challengers and how it combines them
    "challengers": {
        "models/ets.py": [
            "tests/models/test_challenger_search.py",
            "tests/models/test_ets_grid.py",
            "tests/models/test_auto_warm.py",
            "tests/models/test_challengers.py",
            "tests/models/test_ets_behaviour.py",
            "tests/models/test_challenger_contract.py",
            "tests/models/test_auto.py",
        ],
        "models/theta_models.py": [
            "tests/models/test_challenger_search.py",
            "tests/models/test_auto_warm.py",
            "tests/models/test_theta_reference.py",
            "tests/models/test_challenger_edges.py",
            "tests/models/test_challengers.py",
            "tests/models/test_challenger_contract.py",
            "tests/models/test_auto.py",
        ],
        "models/challenger.py": [
            "tests/models/test_challenger_edges.py",
            "tests/models/test_challenger_contract.py",
            "tests/models/test_challengers.py",
            "tests/models/test_auto.py",
            "tests/models/test_auto_many.py",
            "tests/models/test_auto_warm.py",
        ],
        "models/combine.py": [
            "tests/models/test_combine.py",
            "tests/models/test_auto.py",
            "tests/models/test_auto_many.py",
            "tests/models/test_auto_warm.py",
        ],
        "models/validation.py": [
            "tests/models/test_challengers.py",
            "tests/models/test_challenger_contract.py",
            "tests/models/test_auto.py",
        ],
        "models/auto_forecasts.py": [
            "tests/models/test_auto_contract.py",
            "tests/models/test_auto.py",
            "tests/models/test_auto_many.py",
            "tests/models/test_auto_warm.py",
        ],
        "models/auto_each.py": [
            "tests/models/test_auto_each_contract.py",
            "tests/models/test_auto_contract.py",
            "tests/models/test_auto.py",
            "tests/models/test_auto_many.py",
            "tests/models/test_safeguards.py",
        ],
        "models/auto_parts.py": [
            "tests/models/test_auto_parts_contract.py",
            "tests/models/test_auto_contract.py",
            "tests/models/test_auto_many.py",
        ],
        "models/seasonality.py": [
            "tests/models/test_seasonality_exact.py",
            "tests/models/test_seasonality_baselines.py",
            "tests/models/test_theta_reference.py",
        ],
        "models/auto.py": [
            "tests/models/test_auto_contract.py",
            "tests/models/test_auto.py",
            "tests/models/test_auto_many.py",
            "tests/models/test_auto_warm.py",
            "tests/models/test_challenger_contract.py",
        ],
    },
    # what the stored scores and the benchmarks rest on: the metrics, the baseline forecasts, the
    # RNN's windows and its bytes
    "core": {
        "models/metrics.py": [
            "tests/models/test_baselines_metrics.py",
            "tests/models/test_forecasting.py",
            "tests/test_stored_equals_computed.py",
        ],
        "models/baselines.py": [
            "tests/models/test_baselines_exact.py",
            "tests/models/test_baselines_metrics.py",
            "tests/models/test_theta_reference.py",
            "tests/models/test_seasonality_baselines.py",
            "tests/models/test_challengers.py",
        ],
        "models/persist.py": [
            "tests/models/test_persist_exact.py",
            "tests/models/test_series_and_persistence.py",
            "tests/models/test_safeguards.py",
            "tests/models/test_training.py",
            "tests/reliability/test_model_faults.py",
        ],
        "models/windows.py": [
            "tests/models/test_windows_exact.py",
            "tests/models/test_conformal_exact.py",
            "tests/models/test_training.py",
            "tests/models/test_global.py",
            "tests/models/test_series_and_persistence.py",
            "tests/models/test_transform_choice.py",
            "tests/models/test_stacked_fits.py",
        ],
    },
    # the RNN itself: RNNForecaster, its ensembles fitted as one stack, the cells, the window bank,
    # the forward passes and the training settings
    "rnn": {
        "models/forecaster.py": RNN_TESTS,
        "models/ensemble.py": RNN_TESTS,
        "models/stack.py": RNN_TESTS,
        "models/cells.py": RNN_TESTS,
        "models/bank.py": RNN_TESTS,
        "models/passes.py": RNN_TESTS,
        "models/train.py": RNN_TESTS,
    },
    "service": {
        "service/lease.py": ["tests/test_pipeline.py", "tests/test_lease_alive.py"],
        "service/run/store.py": ["tests/test_stored_equals_computed.py", "tests/test_pipeline.py"],
        "service/run/ingest.py": ["tests/test_ingest.py", "tests/test_hourly.py", "tests/test_stamps.py"],
        "service/run/observations.py": [
            "tests/test_stamps.py",
            "tests/test_hourly.py",
            "tests/test_ingest.py",
            "tests/test_rebase.py",
            "tests/test_plan.py",
            "tests/test_stored_equals_computed.py",
        ],
        "service/run/validate.py": [
            "tests/test_stamps.py",
            "tests/test_hourly.py",
            "tests/test_ingest.py",
            "tests/reliability/test_data_limits.py",
            "tests/reliability/test_source_faults.py",
            "tests/reliability/test_bad_input.py",
        ],
        "service/run/rebase.py": ["tests/test_rebase.py", "tests/test_hourly.py"],
        "service/accuracy.py": ["tests/test_accuracy_ledger.py", "tests/test_accuracy.py", "tests/test_cli.py"],
        "service/run/plan.py": [
            "tests/test_plan.py",
            "tests/test_pipeline.py",
            "tests/test_groups.py",
            "tests/test_stored_equals_computed.py",
            "tests/test_backfill.py",
            "tests/test_rebase.py",
        ],
        "service/run/adaptive.py": [
            "tests/test_adaptive.py",
            "tests/test_stored_equals_computed.py",
            "tests/test_accuracy.py",
            "tests/test_pipeline.py",
        ],
        "service/run/settle.py": [
            "tests/test_settle.py",
            "tests/test_groups.py",
            "tests/test_plan.py",
            "tests/test_pipeline.py",
        ],
        "service/run/values.py": [
            "tests/test_fingerprints.py",
            "tests/test_dataframes_rules.py",
            "tests/test_groups.py",
            "tests/test_plan.py",
            "tests/test_pipeline.py",
            "tests/test_stored_equals_computed.py",
        ],
        "service/queries.py": [
            "tests/test_queries.py",
            "tests/test_cli.py",
            "tests/test_pipeline.py",
            "tests/test_groups.py",
            "tests/reliability/test_health.py",
            "tests/reliability/test_dates_and_history.py",
        ],
        "service/sources/csvfile.py": SOURCE_TESTS,
        "service/sources/http.py": SOURCE_TESTS,
        "service/sources/frames.py": SOURCE_TESTS,
        "service/sources/fred.py": SOURCE_TESTS,
        "service/sources/yahoo.py": SOURCE_TESTS,
        "service/sources/kind.py": SOURCE_TESTS,
        "service/sources/sample.py": SOURCE_TESTS,
        # the terminal's tables: aligned text, CSV, JSON; units; stamps of hourly series
        "service/tables.py": [
            "tests/test_tables.py",
            "tests/test_stamps.py",
            "tests/test_queries.py",
            "tests/test_cli_run.py",
            "tests/test_cli.py",
        ],
        # stamps: a date or a time within a day, in Python, SQLite and PostgreSQL; hourly series end to end
        "service/stamps.py": [
            "tests/test_stamps.py",
            "tests/test_hourly.py",
            "tests/test_migrations.py",
            "tests/test_stored_equals_computed.py",
        ],
        "service/frequencies.py": [
            "tests/test_stamps.py",
            "tests/test_frequencies.py",
            "tests/test_calendars.py",
            "tests/test_ingest.py",
            "tests/test_config.py",
        ],
        "service/calendars.py": [
            "tests/test_calendars.py",
            "tests/test_frequencies.py",
            "tests/test_config.py",
        ],
        # (tests/reliability/test_bad_input.py's generated configs would take an hour of mutants)
        "service/config.py": ["tests/test_config.py", "tests/test_config_limits.py", "tests/test_csv_reading.py"],
        "service/stopping.py": ["tests/test_stopping.py", "tests/test_http_fetch.py"],
        # the training stage: tasks in this process (and in a worker's), their scheduling on the executor
        "service/run/tasks.py": RUN_TESTS,
        "service/run/train.py": [
            "tests/test_train_stage.py",
            "tests/test_groups.py",
            "tests/test_pipeline.py",
            "tests/reliability/test_worker_killed.py",  # (a subprocess: reached by --recheck)
        ],
        # one run: its row in `runs`, the stages in order, outcomes, progress lines, the lease, failed starts
        "service/run/cycle.py": [
            "tests/test_run_cycle.py",
            "tests/test_pipeline.py",
            "tests/test_backfill.py",
            "tests/test_groups.py",
            "tests/reliability/test_runs_recorded.py",  # (a subprocess: reached by --recheck)
        ],
        # before the plan: runs that could not start, what the fits table says, backfill's origins
        "service/run/starts.py": [
            "tests/test_starts.py",
            "tests/test_run_cycle.py",
            "tests/test_pipeline.py",
            "tests/reliability/test_runs_recorded.py",  # (a subprocess: reached by --recheck)
            "tests/reliability/test_refused_at_start.py",  # (a subprocess: reached by --recheck)
        ],
        "service/run/state.py": [
            "tests/test_fit_states.py",
            "tests/test_plan.py",
            "tests/test_groups.py",
            "tests/test_pipeline.py",
            "tests/test_run_cycle.py",
            "tests/test_backfill.py",
        ],
        "service/run/backfill.py": [
            "tests/test_backfill_plans.py",
            "tests/test_backfill.py",
            "tests/test_run_cycle.py",
        ],
        # the daemon and the database's file: lock waits, the scheduled job and its retries, backups
        "service/locks.py": ["tests/test_locks.py", "tests/test_stopping.py", "tests/test_run_cycle.py"],
        "service/scheduler.py": ["tests/test_service_job.py", "tests/test_cron.py", "tests/test_serve.py"],
        "service/backup.py": [
            "tests/test_backup_api.py",
            "tests/test_backup.py",  # (a subprocess: reached by --recheck)
            "tests/reliability/test_backup_files.py",
        ],
        "service/drift.py": [
            "tests/test_drift.py",
            "tests/reliability/test_schema_drift.py",
            "tests/test_migrations.py",
        ],
        # the database: URLs, SQLite's engine (WAL, the busy timeout, BEGIN IMMEDIATE), migrations, repairs
        "service/db.py": [
            "tests/test_db.py",
            "tests/test_migrations.py",
            "tests/test_drift.py",
            "tests/test_locks.py",
            "tests/reliability/test_refused_at_start.py",
            "tests/reliability/test_locks.py",
        ],
        # the command line: arguments, each command's output and exit status, errors in one line
        "service/cli.py": [
            "tests/test_cli_help.py",
            "tests/test_cli_serve_browse.py",
            "tests/test_cli_ingest.py",
            "tests/test_cli_outputs.py",
            "tests/test_cli_run.py",
            "tests/test_hourly.py",
            "tests/test_backup_api.py",
            "tests/test_cli.py",
            "tests/test_accuracy.py",
            "tests/test_backfill.py",
            "tests/test_calendars.py",
            "tests/test_config.py",
            "tests/test_queries.py",
            "tests/test_rebase.py",
            "tests/reliability/test_bad_input.py",
            "tests/reliability/test_health.py",
            "tests/reliability/test_schema_drift.py",
        ],
        # the DataFrame API: frames in and out, frequencies, seasons, horizons, levels, groups
        "service/dataframes.py": [
            "tests/test_dataframes_rules.py",
            "tests/test_dataframes_edges.py",
            "tests/test_dataframes.py",
        ],
        "service/run/published.py": [
            "tests/test_published_readout.py",
            "tests/test_stored_equals_computed.py",
            "tests/test_pipeline.py",
            "tests/test_groups.py",
            "tests/test_dataframes.py",
        ],
    },
    # what had no run before: the config's checks and keys, the watchlist, cron, Datasette's
    # launch, the AutoForecaster's bytes and settings (the chart plugin is not here: most of its
    # mutants are the SVG's colours and sizes, which tests/test_browse.py looks at in a browser)
    "rest": {
        "service/checks.py": [
            "tests/test_config_messages.py",
            "tests/test_config.py",
            "tests/test_config_limits.py",
            "tests/test_csv_reading.py",
        ],
        "service/keys.py": ["tests/test_config_messages.py", "tests/test_config.py", "tests/test_sources.py"],
        "service/watchlist.py": [
            "tests/test_config_messages.py",
            "tests/test_csv_reading.py",
            "tests/test_sources.py",
            "tests/test_config.py",
        ],
        "service/cron.py": ["tests/test_cron.py", "tests/test_config_messages.py"],
        "service/browse.py": ["tests/test_browse_launch.py", "tests/test_cli_serve_browse.py"],
        "models/auto_persist.py": [
            "tests/models/test_auto_bytes.py",
            "tests/models/test_auto.py",
            "tests/models/test_auto_many.py",
            "tests/test_published_readout.py",
            "tests/reliability/test_model_faults.py",
        ],
        "models/config.py": [
            "tests/models/test_config_exact.py",
            "tests/models/test_forecasting.py",
            "tests/models/test_auto.py",
            "tests/test_config_limits.py",
        ],
    },
    # `tickcast plot`: what each panel draws (its own group: about 800 mutants, many of them colours,
    # sizes and labels)
    "plot": {
        "service/plot.py": [
            "tests/test_plot_figure.py",
            "tests/test_hourly.py",
            "tests/test_cli.py",
            "tests/test_accuracy.py",
            "tests/test_groups.py",
            "tests/test_promises.py",
        ],
        "service/datasette/tickcast_charts.py": ["tests/test_charts.py"],
    },
}
# PostgreSQL-parametrised cases start a server per test process: the SQLite ones cover the same code.
# Dask cases start a cluster (marked `cluster`), which hangs in mutmut's forked processes: the local
# executor's cases cover the same store, lease and ingest code. (Until 2026-12-07 they were left out
# by "dask" in their names, which also left out every test whose name or parameters mention
# dask_address: the config's checks of it survived unseen.)
# The install hint names this checkout's pip, which the mirror is not.
PYTEST_ARGS = ["-p", "no:xdist", "-p", "no:randomly", "-q", "-m", "not serial and not cluster"]
PYTEST_ARGS += ["-k", "not postgresql and not install_hint_names_this_checkouts_pip"]


def mirror(modules: dict[str, list[str]]) -> None:
    """The repository as installed (tickcast/, tickcast/service, ...) in WORK, and mutmut's config."""
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    package = WORK / "tickcast"
    shutil.copytree(ROOT / "service" / "_tickcast", package, ignore=ignore)
    for folder in ("service", "models", "migrations"):
        shutil.copytree(ROOT / folder, package / folder, ignore=ignore)
    shutil.copytree(ROOT / "tests", WORK / "tests", ignore=ignore)
    shutil.copytree(ROOT / "service" / "data", WORK / "service" / "data", ignore=ignore)  # where tests look
    shutil.copy(ROOT / "README.md", WORK / "README.md")  # tests check what it documents
    sources = [f'"tickcast/{m}"' for m in modules]
    tests = sorted({t for ts in modules.values() for t in ts})
    (WORK / "pyproject.toml").write_text(
        "[tool.mutmut]\n"
        f"source_paths = [{', '.join(sources)}]\n"
        'also_copy = ["tickcast/", "tests/", "service/", "README.md"]\n'
        f"pytest_add_cli_args = {PYTEST_ARGS!r}\n"
        f"pytest_add_cli_args_test_selection = {tests!r}\n".replace("'", '"')
        # the markers the tests use, as the repository registers them (`cluster` selects what -m leaves out)
        + f"\n[tool.pytest.ini_options]\nmarkers = {json.dumps(_markers())}\n"
    )


def _markers() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]


def mutmut(*args: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("mutmut")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [str(exe), *args], cwd=WORK, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


# A mutant the tests catch: they fail, run past their time, or crash the test process (a segfault:
# ctypes handed a wrong argument), which fails a suite as surely.
CAUGHT = ("killed", "timeout", "segfault")


def results() -> dict[str, str]:
    """mutant name -> status (killed, survived, timeout, no tests, ...)."""
    out = mutmut("results", "--all", "true").stdout
    return {m.group(1): m.group(2) for m in re.finditer(r"^\s*(\S+__mutmut_\d+): (.+)$", out, re.M)}


def diff_of(name: str) -> str:
    shown = mutmut("show", name).stdout
    return "\n".join(line for line in shown.splitlines() if line.startswith(("-", "+")) and line[1:2] == " ")


def module_of(name: str) -> str:
    dotted = name.split(".x_")[0].split(".xǁ")[0]  # functions: .x_f__mutmut_1, methods: .xǁClassǁm__...
    return dotted.removeprefix("tickcast.").replace(".", "/") + ".py"


def compare_cosmic_ray(module: str, tests: list[str]) -> dict:
    """Seconds per mutant of cosmic-ray on ``module`` (mutated in place in the mirror)."""
    config = WORK / "cosmic-ray.toml"
    session = WORK / "cosmic-ray.sqlite"
    command = f"{sys.executable} -m pytest -x {' '.join(PYTEST_ARGS)} {' '.join(tests)}"
    config.write_text(
        "[cosmic-ray]\n"
        f'module-path = "tickcast/{module}"\n'
        "timeout = 120.0\nexcluded-modules = []\n"
        f"test-command = {command!r}\n".replace("'", '"')
        + '[cosmic-ray.distributor]\nname = "local"\n'
    )
    exe = Path(sys.executable).with_name("cosmic-ray")
    env = {**os.environ, "PYTHONPATH": str(WORK)}
    subprocess.run([str(exe), "init", str(config), str(session)], cwd=WORK, check=True, env=env)
    started = time.perf_counter()
    subprocess.run([str(exe), "exec", str(config), str(session)], cwd=WORK, check=True, env=env)
    seconds = time.perf_counter() - started
    report = subprocess.run(
        [str(exe.with_name("cr-report")), str(session)], cwd=WORK, capture_output=True, text=True, check=False
    ).stdout
    total = re.search(r"total jobs: (\d+)", report)
    n = int(total.group(1)) if total else 0
    return {"tool": "cosmic-ray", "module": module, "mutants": n, "seconds": seconds}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=sorted(MODULES), help="one group of modules")
    parser.add_argument(
        "--compare", action="store_true", help="only time mutmut against cosmic-ray on models/intervals.py"
    )
    parser.add_argument(
        "--module",
        help="only this module of the groups (e.g. models/combine.py), a folder's (service/sources), or several "
        "separated by commas",
    )
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--out", default="mutation")
    parser.add_argument(
        "--recheck",
        action="store_true",
        help="after the run (with --report: on the last run) run every survivor again, directly, against all of "
        "its module's tests as they are now (mutmut runs only the tests its coverage run saw reach the function)",
    )
    parser.add_argument(
        "--tests",
        help="with --recheck: run the survivors again against these test files only (comma-separated), e.g. the "
        "ones written after the run; mutmut already ran the others that reach each mutant",
    )
    parser.add_argument(
        "--report",
        action="store_true",
        help="only write the results of the last run in build/mutation (one stopped before the end included)",
    )
    args = parser.parse_args(argv)
    if args.compare:
        return compare()
    groups = [args.only] if args.only else list(MODULES)
    wanted = [w.strip().rstrip("/") for w in args.module.split(",")] if args.module else None
    modules = {
        m: t
        for g in groups
        for m, t in MODULES[g].items()
        if wanted is None or any(m == w or m.startswith(w + "/") for w in wanted)
    }
    if not modules:
        parser.error(f"--module {args.module}: not among the modules of {', '.join(groups)}")
    only = [t.strip() for t in args.tests.split(",")] if args.tests else None
    if only is not None and not args.recheck:
        parser.error("--tests goes with --recheck")
    if args.report:
        if args.recheck:
            recheck(modules, args.max_children, only)
        equivalent = tomllib.loads(EQUIVALENT.read_text()) if EQUIVALENT.exists() else {}
        write(results(), equivalent, [], modules, args.out)
        return 0
    mirror(modules)
    print(f"mutation testing {len(modules)} modules in {WORK.relative_to(ROOT)} ...", flush=True)
    started = time.perf_counter()
    run = mutmut("run", "--max-children", str(args.max_children))
    seconds = time.perf_counter() - started
    if run.returncode != 0:
        print(run.stdout[-3000:], run.stderr[-3000:], sep="\n", file=sys.stderr)
        print("mutation: mutmut failed (output above)", file=sys.stderr)
        return 1
    if args.recheck:
        recheck(modules, args.max_children, only)
    status = results()
    equivalent = tomllib.loads(EQUIVALENT.read_text()) if EQUIVALENT.exists() else {}
    timings = [{"tool": "mutmut", "module": "all", "mutants": len(status), "seconds": seconds}]
    write(status, equivalent, timings, modules, args.out)
    return 0


# mutmut's exit codes in its .meta files: 0 the tests passed (survived), 33 no test reached the function
SURVIVED, NO_TESTS = 0, 33


def recheck(modules: dict[str, list[str]], max_children: int, only: list[str] | None = None) -> None:
    """Run each survivor (and each mutant no test reached in mutmut's coverage run: code that tests
    run in a subprocess or a worker process) again, against all of its module's tests, with the
    tests as they are now; record the exit codes where mutmut reads them. mutmut picks the tests of
    a mutant from a coverage run in its own process, which misses what a subprocess runs and any
    test added after the run."""
    mutants = WORK / "mutants"
    shutil.rmtree(mutants / "tests", ignore_errors=True)
    shutil.copytree(ROOT / "tests", mutants / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for module, tests in modules.items():
        tests = tests if only is None else only
        meta_path = mutants / "tickcast" / f"{module}.meta"
        if not meta_path.exists():
            raise SystemExit(f"mutation: --recheck: {module} has no run in {WORK.relative_to(ROOT)}")
        meta = json.loads(meta_path.read_text())
        codes = meta["exit_code_by_key"]
        # only some tests: a mutant no test reached stays so unless they kill it (the rest never ran it)
        todo = [name for name, code in codes.items() if code in (SURVIVED, NO_TESTS)]
        print(f"{module}: {len(todo)} survivors run again against {len(tests)} test files", flush=True)

        def run_again(name: str, tests: list[str] = tests) -> tuple[str, int]:
            try:
                done = subprocess.run(
                    [sys.executable, "-m", "pytest", "-x", "-p", "no:cacheprovider", *PYTEST_ARGS, *tests],
                    cwd=mutants,
                    env=env | {"MUTANT_UNDER_TEST": name},
                    capture_output=True,
                    timeout=600,
                    check=False,
                )
                return name, done.returncode
            except subprocess.TimeoutExpired:
                return name, 36  # mutmut's code for a timeout

        with ThreadPoolExecutor(max_children) as pool:  # one pytest process per mutant, side by side
            for name, code in pool.map(run_again, todo):
                if code == 0 and codes[name] == NO_TESTS:
                    code = SURVIVED if only is None else NO_TESTS  # a test reached it now, and passed
                codes[name] = code
                print(f"  {name}: {'survived' if code == SURVIVED else 'killed'}", flush=True)
        meta_path.write_text(json.dumps(meta))
    marks = json.loads(RECHECKED.read_text()) if RECHECKED.exists() else {}
    when = time.strftime("%Y-%m-%d %H:%M") + ("" if only is None else "|" + ", ".join(only))
    RECHECKED.write_text(json.dumps(marks | {module: when for module in modules}))


def _rechecked(modules: dict) -> str | None:
    """When the survivors of every module of the report were run again (``recheck``), else None."""
    marks = json.loads(RECHECKED.read_text()) if RECHECKED.exists() else {}
    return max(marks[m] for m in modules) if modules and all(m in marks for m in modules) else None


def _rechecked_against(mark: str) -> str:
    """What a recheck ran the survivors against: every test of the module, or the ones named."""
    when, _, only = mark.partition("|")
    if not only:
        return f"all of its module's tests as they were on {when}"
    return f"{only} as they were on {when} (tests written after the run; mutmut had run the others that reach it)"


def compare() -> int:
    """Both tools on models/intervals.py, one process each, side by side: bench/results/mutation-tools.md."""
    module = "models/intervals.py"
    tests = MODULES["models"][module]
    mirror({module: tests})
    t0 = time.perf_counter()
    mutmut("run", "--max-children", "1")
    rows = [{"tool": "mutmut", "module": module, "mutants": len(results()), "seconds": time.perf_counter() - t0}]
    mirror({module: tests})  # a clean copy: cosmic-ray mutates files in place
    rows.append(compare_cosmic_ray(module, tests))
    lines = [
        "# Mutation testing tools side by side",
        "",
        f"`python bench/mutation.py --compare` on {time.strftime('%Y-%m-%d %H:%M')}: both tools on `{module}` "
        f"with the same tests ({', '.join(tests)}), one process each, one after the other. Load average "
        f"{tuple(round(x, 2) for x in os.getloadavg())}, {os.cpu_count()} CPUs.",
        "",
        "| tool | mutants | seconds | seconds per mutant |",
        "|---|---|---|---|",
        *(
            f"| {r['tool']} | {r['mutants']} | {r['seconds']:.0f} | {r['seconds'] / max(r['mutants'], 1):.2f} |"
            for r in rows
        ),
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "mutation-tools.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def write(status: dict[str, str], equivalent: dict, timings: list[dict], modules: dict, out: str) -> None:
    rows, survivors = [], []
    unchecked = {n for n, s in status.items() if s == "not checked"}  # a run stopped before them
    status = {n: s for n, s in status.items() if n not in unchecked}
    for module in modules:
        mine = {n: s for n, s in status.items() if module_of(n) == module}
        killed = sum(s in CAUGHT for s in mine.values())
        alive = [n for n, s in mine.items() if s not in CAUGHT]
        explained = [n for n in alive if n in equivalent.get(module, {})]
        counted = len(mine) - len(explained)
        score = killed / counted if counted else float("nan")
        survived = len(alive) - len(explained)
        rows.append(f"| `{module}` | {len(mine)} | {killed} | {len(explained)} | {survived} | {score:.0%} |")
        survivors += [(module, n, mine[n], equivalent.get(module, {}).get(n)) for n in alive]
    total = len(status)
    killed = sum(s in CAUGHT for s in status.values())
    explained = sum(1 for *_, why in survivors if why)
    lines = [
        "# Mutation testing: the modules that carry the promises",
        "",
        f"`make mutation` (bench/mutation.py, mutmut) on {time.strftime('%Y-%m-%d %H:%M')}, "
        f"{os.cpu_count()} CPUs, load average {tuple(round(x, 2) for x in os.getloadavg())}. "
        "A mutant is killed when a test fails (or times out, or the test process crashes); the score leaves "
        "out the survivors explained as equivalent in `bench/mutation_equivalent.toml`.",
        "",
        *(
            [
                "Every survivor (and every mutant whose function no test reached in mutmut's own process) was "
                f"then run again, directly, against {_rechecked_against(rechecked)} "
                "(`--recheck`).",
                "",
            ]
            if (rechecked := _rechecked(modules))
            else []
        ),
        *(
            [
                f"**A partial run**: {len(unchecked)} mutants were not checked (the run was stopped; "
                "`--report` wrote what it had). The table counts the checked ones only.",
                "",
            ]
            if unchecked
            else []
        ),
        "| module | mutants | killed | equivalent | survived | score |",
        "|---|---|---|---|---|---|",
        *rows,
        f"| all | {total} | {killed} | {explained} | {total - killed - explained} | "
        f"{killed / max(total - explained, 1):.0%} |",
        "",
        "## Speed (the choice of tool)",
        "",
        "| tool | module | mutants | seconds | seconds per mutant |",
        "|---|---|---|---|---|",
        *(
            f"| {t['tool']} | {t['module']} | {t['mutants']} | {t['seconds']:.0f} | "
            f"{t['seconds'] / max(t['mutants'], 1):.2f} |"
            for t in timings
        ),
        "",
        "## Survivors",
        "",
    ]
    for _module, name, state, why in survivors:
        lines += [f"### `{name}` ({state})", ""]
        lines += [f"Equivalent: {why}", ""] if why else []
        lines += ["```diff", diff_of(name), "```", ""]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{out}.md").write_text("\n".join(lines))
    print("\n".join(lines[: 12 + len(rows)]))


if __name__ == "__main__":
    raise SystemExit(main())
