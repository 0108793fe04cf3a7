"""The built package carries what an installed tickcast needs away from this checkout: the
migrations, the default config, the bundled samples with their licence, the Datasette metadata."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_installs_and_creates_a_database_anywhere(tmp_path):
    # built from a copy of the sources, so a stale build/ folder in the checkout cannot leak in
    src = tmp_path / "src"
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name if src.exists() else (src.mkdir() or src / name))
    for folder in ("service", "models", "migrations"):
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(src)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("tickcast-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "migrations/env.py",
        "migrations/script.py.mako",
        "migrations/versions/0001_initial.py",
        "migrations/versions/0002_run_lease.py",
        "migrations/versions/0003_accuracy_ledger.py",
        "migrations/versions/0005_lease_identity.py",
        "migrations/versions/0006_models_levels_backfill.py",
        "service/tickcast.toml",
        "service/data/sp500.csv.gz",
        "service/data/core-cpi.csv.gz",
        "service/data/PROVENANCE.md",
        "service/data/licenses/arch-LICENSE.md",
        "service/datasette/metadata.json",
        "service/datasette/tickcast_charts.py",  # the Datasette plugin `tickcast browse` loads
        "service/run/cycle.py",
        "service/run/published.py",
        "service/run/backfill.py",
        "service/executors/local.py",
        "service/sources/yahoo.py",
        "models/forecaster.py",
        "models/auto.py",
        "__init__.py",
        "__main__.py",
    ):
        assert "tickcast/" + required in names, required
    # `tickcast` is the only top-level import name: nothing else lands in site-packages
    top_level = {name.split("/", 1)[0] for name in names if not name.startswith("tickcast-")}
    assert top_level == {"tickcast"}, top_level
    assert not any("/_tickcast/" in name for name in names)
    # matplotlib (the largest dependency) comes only with the plot extra
    (metadata,) = [name for name in names if name.endswith(".dist-info/METADATA")]
    requires = [
        line
        for line in zipfile.ZipFile(wheel).read(metadata).decode().splitlines()
        if line.startswith("Requires-Dist: matplotlib")
    ]
    assert requires and all('extra == "plot"' in line for line in requires), requires
    # unpack it elsewhere and run it from there (the checkout is not on the path)
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKCAST_")}
    env["PYTHONPATH"] = str(site)
    code = (
        "import tickcast, sys; assert tickcast.__file__.startswith(sys.argv[1]), tickcast.__file__; "
        "from tickcast.service.cli import main; sys.exit(main(['init']))"
    )
    done = subprocess.run([sys.executable, "-c", code, str(site)], capture_output=True, text=True, env=env, cwd=work)
    assert done.returncode == 0, done.stderr
    assert "upgraded from empty to revision 0007 (head)" in done.stdout
    assert (work / "tickcast.db").exists()
    # `python -m tickcast` is the command, and the documented model API imports
    done = subprocess.run(
        [sys.executable, "-m", "tickcast", "--version"], capture_output=True, text=True, env=env, cwd=work
    )
    assert done.returncode == 0 and done.stdout.startswith("tickcast "), done.stderr
    done = subprocess.run(
        [sys.executable, "-c", "from tickcast.models import RNNForecaster; print(RNNForecaster())"],
        capture_output=True,
        text=True,
        env=env,
        cwd=work,
    )
    assert done.returncode == 0 and "RNNForecaster(" in done.stdout, done.stderr
