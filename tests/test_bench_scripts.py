"""Every benchmark script in bench/ still imports against today's code (a renamed helper once left
bench/m3.py failing at its first line, unnoticed until it was run)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench"
OPTIONAL = {"train": "PyTorch"}  # scripts that need an optional dependency say so and exit


def test_every_bench_script_imports():
    scripts = sorted(p.stem for p in BENCH.glob("*.py"))
    assert {"competition", "daily_run", "accuracy", "m3", "challengers"} <= set(scripts)
    probe = (
        "import importlib, sys\n"
        "failed = []\n"
        f"for name in {scripts!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except SystemExit as exc:\n"
        f"        if name not in {sorted(OPTIONAL)!r}:\n"
        "            failed.append(f'{name}: exits on import: {exc}')\n"
        "    except Exception as exc:\n"
        "        failed.append(f'{name}: {type(exc).__name__}: {exc}')\n"
        "print('\\n'.join(failed))\n"
        "sys.exit(1 if failed else 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=BENCH, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
