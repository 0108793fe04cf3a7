"""Variants of the RNN trained across series on M3, alone and in the mean with AutoETS and DOTM.

Where the published forecast stands against the M3 goal (12.37 official, N-BEATS-I+G) the gap is
mostly monthly (13.41 against N-BEATS' 13.11). This measures what the RNN member could add: each
variant is ``RNNForecaster(season_length=m, **variant).fit_many(train parts of a category)``, scored
alone and as the plain mean of its forecast with AutoETS's and the Dynamic Optimised Theta's (each
``fit_many`` on the same parts, as the published forecast's members are), sMAPE over series x
horizon points (the M3 paper's average) per category. A row `A + B` is the mean of four: the
variants A and B, AutoETS and DOTM (two RNN members in one combination), for the PAIRS both of
whose variants ran. `seed 1` is the default with another seed: the noise every other row carries.

    OPENBLAS_NUM_THREADS=1 python bench/rnn_variants.py   # results/rnn-variants.md, .json (every variant, ~30 min)
    OPENBLAS_NUM_THREADS=1 python bench/rnn_variants.py --categories yearly,quarterly,monthly,other \
        --variants "default,seed 1,raw,gru,gru raw,history 2 K,history 5 K" --out rnn-variants-cells
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from competition import DEFAULT_DATA, load, smape  # noqa: E402
from tickcast.models import AutoETS, RNNForecaster, Theta  # noqa: E402
from tickcast.models.validation import default_horizon  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CATEGORIES = ("quarterly", "monthly")
# name -> RNNForecaster settings beyond season_length=m (a callable of m where they depend on it)
VARIANTS = {
    "default": lambda m: {},
    "hidden_size 64": lambda m: {"hidden_size": 64},
    "lr 1e-3": lambda m: {"lr": 1e-3},
    "patience 6": lambda m: {"patience": 6},
    "6 members with lookbacks 2-7 K (N-BEATS')": lambda m: {"lookbacks": (2, 3, 4, 5, 6, 7), "ensemble": 6},
    # not seasonally adjusted: the network learns the season from its windows (same read-out length)
    "raw": lambda m: {"season_length": 1, "horizon": default_horizon(m)},
    "seed 1": lambda m: {"seed": 1},
    "gru": lambda m: {"cell": "gru"},
    "gru raw": lambda m: {"cell": "gru", "season_length": 1, "horizon": default_horizon(m)},
    # N-BEATS' history limit L_H: training windows cut from each series' newest L_H x K points only
    "history 2 K": lambda m: {"max_windows": 2 * default_horizon(m)},
    "history 5 K": lambda m: {"max_windows": 5 * default_horizon(m)},
}
# two RNN members in one mean with AutoETS and DOTM: (A, B) gives the row "A + B"
PAIRS = (("default", "seed 1"), ("default", "raw"), ("default", "gru raw"), ("gru", "gru raw"), ("default", "gru"))


def points_score(tests, forecasts) -> float:
    """sMAPE over all series x horizon points of a category (its series share one horizon)."""
    return float(np.mean([smape(t, f[: t.size]) for t, f in zip(tests, forecasts)]))


def run(categories, variants) -> dict:
    series = load(DEFAULT_DATA)
    out: dict = {}
    for cat in categories:
        chosen = [s for s in series if s["category"].lower() == cat]
        ys, tests, m, h = [s["train"] for s in chosen], [s["test"] for s in chosen], chosen[0]["m"], chosen[0]["h"]
        stats = [
            model(horizon=default_horizon(m)).fit_many(ys, season_lengths=[m] * len(ys)).predict_many(h)
            for model in (AutoETS, Theta)
        ]
        rnns, rows = {}, {}
        for name in variants:
            start = time.process_time()
            settings = {"season_length": m, "seed": 0, **VARIANTS[name](m)}
            rnns[name] = RNNForecaster(**settings).fit_many(ys).predict_many(h)
            cpu = time.process_time() - start
            mean3 = [(r + e + t) / 3 for r, e, t in zip(rnns[name], *stats)]
            rows[name] = {"rnn": points_score(tests, rnns[name]), "mean": points_score(tests, mean3), "CPU s": cpu}
            print(cat, name, {k: round(v, 3) for k, v in rows[name].items()}, flush=True)
        for a, b in PAIRS:
            if a in rnns and b in rnns:
                mean4 = [(u + v + e + t) / 4 for u, v, e, t in zip(rnns[a], rnns[b], *stats)]
                rows[f"{a} + {b}"] = {"rnn": None, "mean": points_score(tests, mean4), "CPU s": None}
        rows["(AutoETS, DOTM)"] = {
            "rnn": None,
            "mean": points_score(tests, [(e + t) / 2 for e, t in zip(*stats)]),
            "CPU s": None,
        }
        out[cat] = {"series": len(ys), "horizon": h, "rows": rows}
    return out


def write(results: dict, stem: str) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(results, indent=1) + "\n")
    fmt = lambda v: "" if v is None else f"{v:.2f}"  # noqa: E731  (None: not applicable)
    lines = [
        "# RNN variants across series on M3: alone and in the mean with AutoETS and DOTM",
        "",
        "sMAPE over series x horizon points per category (lower is better); `bench/rnn_variants.py` says "
        "what each row is. `mean`: the plain mean of the variant's forecast with AutoETS's and DOTM's (the "
        "published forecast adds screening and ruling out, which change little on M3); `A + B`: the mean of "
        "four (two RNN members). CPU s: the variant's fit. "
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, NumPy {np.__version__}, Python "
        f"{platform.python_version()}, load average {tuple(round(x, 2) for x in os.getloadavg())} at the end.",
        "",
    ]
    for cat, r in results.items():
        lines += [
            f"## {cat} ({r['series']} series, {r['horizon']} steps)",
            "",
            "| variant | RNN alone | mean with AutoETS and DOTM | CPU s |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| {name} | {fmt(v['rnn'])} | {fmt(v['mean'])} | {fmt(v['CPU s'])} |" for name, v in r["rows"].items()
        ]
        lines.append("")
    (RESULTS / f"{stem}.md").write_text("\n".join(lines))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--categories", default=",".join(CATEGORIES), help="M3 categories, comma-separated")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"of {', '.join(VARIANTS)}")
    parser.add_argument("--out", default="rnn-variants", help="result file stem in bench/results/")
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
    categories = [c.strip().lower() for c in args.categories.split(",") if c.strip()]
    write(run(categories, variants), args.out)
    print(f"wrote bench/results/{args.out}.md", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
