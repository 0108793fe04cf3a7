"""The published forecast on real hourly series, against the seasonal naive forecast, Naive2 and Theta.

M3 has no hourly data, and on hourly data the benchmark to beat is the seasonal naive forecast
(yesterday's values: on M4's hourly series it is 25 % better than Theta). The series here are
real hourly data that public Python packages bundle, read straight out of their wheels (nothing
is installed or imported from them; ``pip download --no-deps vega_datasets pmdarima pvlib -d DIR``
fetches the wheels):

- ``electricity``: half-hourly electricity demand of England and Wales, June to August 2000
  (Taylor 2003; pmdarima's ``taylor``), summed to hours: daily and weekly cycles;
- ``temps``: hourly normal temperatures of Seattle and San Francisco, 2010 (vega_datasets):
  smooth daily cycles, where yesterday is nearly today;
- ``tmy-temp``, ``tmy-dew``, ``tmy-rh``: dry-bulb temperature and dew point (Fahrenheit) and
  relative humidity of two typical meteorological years (Sand Point AK, Greensboro NC; pvlib's
  TMY3 files): weather, with a daily cycle and no weekly one.

Each long series is cut into windows of 700 points to fit and 48 to forecast (M4's hourly
lengths and horizon): disjoint ones, or for the 12 weeks of electricity one every 84 hours.
Windows with a value <= 0 are skipped. The published forecast is
``AutoForecaster(season_length=(24, 168))``, across the windows of a set (``fit_many``) and per
window (``fit``); the baselines use period 24. sMAPE as in M4, averaged over windows and steps.

    pip download --no-deps vega_datasets pmdarima pvlib -d /tmp/wheels
    OPENBLAS_NUM_THREADS=1 python bench/hourly.py --wheels /tmp/wheels   # results/hourly.md, .json
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import re
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

from tickcast.models import AutoForecaster
from tickcast.models.baselines import naive2, seasonal_naive, theta

RESULTS = Path(__file__).resolve().parent / "results"
N, H = 700, 48
WHEELS = {"vega_datasets": "vega_datasets/_data/", "pmdarima": "pmdarima/datasets/taylor.py", "pvlib": "pvlib/data/"}


def _wheel(directory: Path, name: str) -> zipfile.ZipFile:
    found = sorted(directory.glob(f"{name}-*.whl"))
    if not found:
        raise SystemExit(f"no {name} wheel in {directory}: pip download --no-deps {name} -d {directory}")
    return zipfile.ZipFile(found[-1])


def _text(z: zipfile.ZipFile, path: str) -> str:
    return z.read(path).decode("utf-8", errors="replace")


def _column(text: str, column: str, header_row: int = 0) -> np.ndarray:
    rows = list(csv.reader(io.StringIO(text)))
    i = rows[header_row].index(column)
    return np.array([float(r[i]) for r in rows[header_row + 1 :] if r])


def _windows(y: np.ndarray, step: int = N + H) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for start in range(0, y.size - N - H + 1, step):
        w = y[start : start + N + H]
        if np.all(w > 0):
            out.append((w[:N], w[N:]))
    return out


def hourly_sets(directory: Path) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """Set name -> [(700 points to fit, the 48 after them)]."""
    source = _text(_wheel(directory, "pmdarima"), WHEELS["pmdarima"])
    body = source[source.index("rslt = np.array([") :]
    half_hours = np.array([float(v) for v in re.findall(r"\d+(?:\.\d+)?", body[: body.index("])")].split("[", 1)[1])])
    sets = {"electricity": _windows(half_hours[0::2] + half_hours[1::2], step=84)}
    vega = _wheel(directory, "vega_datasets")
    sets["temps"] = [
        w
        for city in ("seattle", "sf")
        for w in _windows(_column(_text(vega, f"{WHEELS['vega_datasets']}{city}-temps.csv"), "temp"))
    ]
    pvlib = _wheel(directory, "pvlib")
    for name in ("703165TY.csv", "723170TYA.CSV"):
        text = _text(pvlib, f"{WHEELS['pvlib']}{name}")
        for key, column, scale, shift in (
            ("tmy-temp", "Dry-bulb (C)", 1.8, 32.0),
            ("tmy-dew", "Dew-point (C)", 1.8, 32.0),
            ("tmy-rh", "RHum (%)", 1.0, 0.0),
        ):
            sets.setdefault(key, []).extend(_windows(_column(text, column, header_row=1) * scale + shift))
    return sets


def smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    return float(np.mean(200.0 * np.abs(actual - forecast) / (np.abs(actual) + np.abs(forecast))))


def score(windows, forecasts) -> float:
    return float(np.mean([smape(t, f[: t.size]) for (_, t), f in zip(windows, forecasts)]))


def published_across(windows, h: int, season_length, label: str = "published across") -> tuple[dict, AutoForecaster]:
    """``AutoForecaster(season_length=...).fit_many`` on the windows of a set: its score and CPU
    seconds (``label``, ``CPU s ...``) and each member's own score; and the fitted model."""
    start = time.process_time()
    model = AutoForecaster(season_length=season_length).fit_many([y for y, _ in windows])
    row = {label: score(windows, model.predict_many(h))}
    row["CPU s" + label.removeprefix("published")] = time.process_time() - start
    members = model.predict_members_many(h)
    for name in members[0]:
        row[f"its {name}"] = score(windows, [m[name] for m in members])
    return row, model


def screening(model: AutoForecaster) -> dict:
    """How many series the seasonal naive forecast joined, and how many had a member ruled out."""
    return {
        "seasonal naive joined": int(sum(w.get("seasonal_naive", 0) > 0 for w in model.weights_)),
        "members ruled out": int(sum(" without " in c for c in model.chosen_)),
    }


def run_set(windows, local: bool) -> dict:
    ys = [y for y, _ in windows]
    row = {
        "series": len(ys),
        "seasonal naive": score(windows, [seasonal_naive(y, H, 24) for y in ys]),
        "naive2": score(windows, [naive2(y, H, 24) for y in ys]),
        "theta": score(windows, [theta(y, H, 24) for y in ys]),
    }
    across, model = published_across(windows, H, (24, 168))
    row.update(across)
    row["weekly period"] = int(sum(m == 168 for m in model.season_lengths_))
    row.update(screening(model))
    if local:
        start = time.process_time()
        row["published per series"] = score(
            windows, [AutoForecaster(season_length=(24, 168)).fit(y).predict(H) for y in ys]
        )
        row["CPU s per series"] = time.process_time() - start
    return row


def write_sets(rows: dict, stem: str, title: str, about: str, digits: int = 2) -> None:
    """bench/results/<stem>.json (the rows) and .md: the title, what was run (``about``) and the
    machine, then one table row per set (floats to ``digits`` decimals)."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(rows, indent=1) + "\n")
    columns = list(dict.fromkeys(k for r in rows.values() for k in r))
    machine = (
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, NumPy {np.__version__}, "
        f"Python {platform.python_version()}."
    )
    lines = [f"# {title}", "", f"{about} {machine}", "", "| set | " + " | ".join(columns) + " |"]
    lines.append("|---|" + "---:|" * len(columns))
    for name, r in rows.items():
        cells = [f"{r[c]:.{digits}f}" if isinstance(r.get(c), float) else str(r.get(c, "")) for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wheels", type=Path, required=True, help="directory with the three wheels")
    parser.add_argument("--no-local", action="store_true", help="skip the per-series fits (the slow part)")
    parser.add_argument("--out", default="hourly", help="result file stem in bench/results/")
    args = parser.parse_args(argv)
    sets = hourly_sets(args.wheels)
    rows = {}
    for name, windows in sets.items():
        rows[name] = run_set(windows, not args.no_local)
        print(name, {k: round(v, 2) for k, v in rows[name].items()}, flush=True)
    about = (
        f"{sum(r['series'] for r in rows.values())} windows of {N} hourly points, each forecast {H} steps "
        "(M4's hourly lengths and horizon); `bench/hourly.py` says where the data come from. Published: "
        "`AutoForecaster(season_length=(24, 168))` across the windows of a set and per window; the "
        "baselines with period 24; `its ...`: the members' own forecasts from the across-series fit; "
        "`weekly period`: windows that took period 168; `seasonal naive joined`: windows whose "
        "combination the seasonal naive forecast takes part in; `members ruled out`: windows where "
        "validation ruled out a member (models/combine.py)."
    )
    write_sets(rows, args.out, "The published forecast on real hourly series (sMAPE, lower is better)", about)
    return 0


if __name__ == "__main__":
    sys.exit(main())
