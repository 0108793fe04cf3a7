"""Every benchmark script in bench/ still imports against today's code (a renamed helper once left
bench/m3.py failing at its first line, unnoticed until it was run)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

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


def test_the_hourly_bench_reads_its_series_out_of_the_wheels(tmp_path):
    """bench/hourly.py's reader on stand-in wheels laid out as the real ones (pmdarima's taylor
    array in Python source, vega's CSV, pvlib's TMY3 CSV with its station line first)."""
    import zipfile

    import numpy as np

    sys.path.insert(0, str(BENCH))
    try:
        import hourly
    finally:
        sys.path.remove(str(BENCH))
    n = 2 * (700 + 48)
    half_hours = np.arange(1, 2 * n + 1)
    with zipfile.ZipFile(tmp_path / "pmdarima-2.1.1-cp311-none-any.whl", "w") as z:
        body = ", ".join(str(v) for v in half_hours)
        z.writestr("pmdarima/datasets/taylor.py", f"def load_taylor():\n    rslt = np.array([\n        {body}])\n")
    with zipfile.ZipFile(tmp_path / "vega_datasets-0.9.0-py3-none-any.whl", "w") as z:
        for city, v in (("seattle", 40.0), ("sf", -1.0)):  # San Francisco's window has a value <= 0: skipped
            rows = "\n".join(f"{v + i % 24},2010/01/01 00:00" for i in range(748))
            z.writestr(f"vega_datasets/_data/{city}-temps.csv", "temp,date\n" + rows + "\n")
    with zipfile.ZipFile(tmp_path / "pvlib-0.16.1-py3-none-any.whl", "w") as z:
        header = "Date (MM/DD/YYYY),Time (HH:MM),Dry-bulb (C),Dew-point (C),RHum (%)"
        rows = "\n".join(f"01/01/1997,01:00,{i % 30},5.0,80" for i in range(748))
        for name in ("703165TY.csv", "723170TYA.CSV"):
            z.writestr(f"pvlib/data/{name}", f'1,"STATION",AK,-9.0,55,-160,7\n{header}\n{rows}\n')
    sets = hourly.hourly_sets(tmp_path)
    hours = half_hours[0::2] + half_hours[1::2]
    assert len(sets["electricity"]) == (hours.size - 748) // 84 + 1
    train, test = sets["electricity"][1]
    np.testing.assert_array_equal(train, hours[84 : 84 + 700])
    np.testing.assert_array_equal(test, hours[784 : 784 + 48])
    assert len(sets["temps"]) == 1 and sets["temps"][0][0][1] == 41.0
    assert len(sets["tmy-temp"]) == 2 and sets["tmy-temp"][0][0][2] == 2 * 1.8 + 32
    assert sets["tmy-dew"][0][1][0] == 5 * 1.8 + 32 and sets["tmy-rh"][0][0][0] == 80
    empty = tmp_path / "none"
    empty.mkdir()
    with pytest.raises(SystemExit, match="no pmdarima wheel"):
        hourly.hourly_sets(empty)


def test_the_weekly_bench_cuts_each_series_and_forecasts_the_13_weeks_after_it():
    sys.path.insert(0, str(BENCH))
    try:
        import weekly
        import weekly_accuracy
    finally:
        sys.path.remove(str(BENCH))
    pairs = weekly_accuracy.weekly_set(7, 300, n=5)
    full = weekly.weekly_series(5, 300, seed=7)
    assert len(pairs) == 5
    for (train, test), y in zip(pairs, full):
        assert 80 <= train.size <= 300 - 13 and test.size == 13
        np.testing.assert_array_equal(np.r_[train, test], y[: train.size + 13])
    assert len({train.size for train, _ in pairs}) > 1  # cut at random lengths
