"""Achieved GFLOP/s of whole fits against the machine's measured matmul peak at the same shapes.

The arithmetic of training is matmuls (per step: the recurrent product with the input columns,
``[h | x | 1] @ [Whh; Wxh; bh]``; backward, ``da @ Whh^T``; the weight gradients
``[h | x | 1]^T @ da``; the read-out), plus element-wise work (tanh, its derivative) that is not
counted here. Every stacked forward and backward of a fit is counted exactly from its shapes, the
fit is timed, and the rate is set against the throughput the same batched matmuls reach when
timed alone, in a loop, at the fit's typical shapes (the physical limit this code is measured
against), and against a large square matmul (the machine's peak).

    OPENBLAS_NUM_THREADS=1 python bench/flops.py        # writes bench/results/flops.md and .json
"""

from __future__ import annotations

import collections
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tickcast.models.ensemble as ensemble  # noqa: E402
import tickcast.models.forecaster as forecaster  # noqa: E402
from competition import DEFAULT_DATA, load  # noqa: E402
from tickcast.models import RNNForecaster  # noqa: E402
from tickcast.models.stack import StackedElman, make_stack  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


class Counter:
    def __init__(self):
        self.flops = 0.0
        self.shapes: collections.Counter = collections.Counter()  # (kind, a, B, dtype) -> flops


COUNT = Counter()


class CountingElman(StackedElman):
    """The production cell, counting the matmul flops of every call."""

    def forward(self, p, X, lengths):
        out, cache = super().forward(p, X, lengths)
        N, B, T, D = X.shape
        H, K = self.H, self.O
        for a in cache["run"]:
            f = 2.0 * a * B * (H + D + 1) * H
            COUNT.flops += f
            COUNT.shapes[("step", a, B, X.dtype.str)] += f
        COUNT.flops += 2.0 * N * B * H * K
        return out, cache

    def backward(self, p, dout, cache, grads):
        g = super().backward(p, dout, cache, grads)
        N, B, T, D = cache["shape"]
        H, K = self.H, self.O
        run = cache["run"]
        for t in range(1, T):
            f = 2.0 * run[t - 1] * B * H * H
            COUNT.flops += f
            COUNT.shapes[("back", run[t - 1], B, dout.dtype.str)] += f
        for start, i, j in cache["groups"]:
            f = 2.0 * (T - start) * (j - i) * B * (H + D + 1) * H
            COUNT.flops += f
            COUNT.shapes[("grad", j - i, B, dout.dtype.str)] += f
        COUNT.flops += 4.0 * N * B * H * K
        return g


def counting_stack(name, input_size=1, hidden_size=32, output_size=1):
    if name == "rnn":
        return CountingElman(input_size, hidden_size, output_size)
    return make_stack(name, input_size, hidden_size, output_size)


ensemble.make_stack = counting_stack  # the fits below count their arithmetic
forecaster.make_stack = counting_stack


def matmul_rate(kind: str, a: int, B: int, H: int, dtype, seconds: float = 0.3) -> float:
    """GFLOP/s of the batched matmul of one kind at these shapes, timed alone in a loop."""
    rng = np.random.default_rng(0)
    if kind == "step":
        x, w, shape = rng.standard_normal((a, B, H + 2)), rng.standard_normal((a, H + 2, H)), (a, B, H)
        flops = 2.0 * a * B * (H + 2) * H
    elif kind == "back":
        x, w, shape = rng.standard_normal((a, B, H)), rng.standard_normal((a, H, H)), (a, B, H)
        flops = 2.0 * a * B * H * H
    else:  # the weight gradient of one step: (H+2, B) @ (B, H), the left operand a transposed view
        x = rng.standard_normal((a, B, H + 2)).transpose(0, 2, 1)
        w, shape = rng.standard_normal((a, B, H)), (a, H + 2, H)
        flops = 2.0 * a * B * (H + 2) * H
    x, w, out = x.astype(dtype), w.astype(dtype), np.empty(shape, dtype=dtype)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(20):
            np.matmul(x, w, out=out)
        n += 20
    return flops * n / (time.perf_counter() - start) / 1e9


def square_peak(dtype, n: int = 1024) -> float:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n)).astype(dtype), rng.standard_normal((n, n)).astype(dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(5):
        a @ b
    return 5 * 2.0 * n**3 / (time.perf_counter() - start) / 1e9


def measure(label: str, fit, H: int = 32) -> dict:
    COUNT.flops, COUNT.shapes = 0.0, collections.Counter()
    start = time.perf_counter()
    fit()
    seconds = time.perf_counter() - start
    flops, shapes = COUNT.flops, COUNT.shapes
    # the limit: the same matmuls at their own best rate (timed alone), flop-weighted
    top = shapes.most_common(12)
    covered = sum(f for _, f in top)
    limit_seconds = sum(f / (matmul_rate(k, a, B, H, np.dtype(dt)) * 1e9) for (k, a, B, dt), f in top)
    limit_rate = covered / limit_seconds / 1e9
    row = {
        "fit": label,
        "seconds": seconds,
        "gflop": flops / 1e9,
        "achieved_gflops": flops / seconds / 1e9,
        "matmul_rate_same_shapes_gflops": limit_rate,
        "share_of_same_shape_peak": flops / seconds / 1e9 / limit_rate,
    }
    print(
        f"  {label}: {seconds:.2f}s, {row['gflop']:.1f} GFLOP, {row['achieved_gflops']:.1f} GFLOP/s "
        f"against {limit_rate:.1f} for the same matmuls alone",
        flush=True,
    )
    return row


def main() -> int:
    df = pd.read_csv(SHARED / "sp500.csv.gz", na_values=["."])
    df["Date"] = pd.to_datetime(df["Date"], format="%m/%d/%Y")
    sp = df.sort_values("Date")["Close"].dropna().to_numpy(np.float64)
    daily = [sp[e - 2500 : e] for e in np.linspace(2500, sp.size, 8).astype(int)]
    m3 = load(DEFAULT_DATA)
    monthly = [s["train"] for s in m3 if s["category"] == "monthly"]
    load_before = os.getloadavg()
    rows = []
    for precision in ("float64", "float32"):
        kw = {"precision": precision}
        rows.append(
            measure(
                f"fit, one daily series (2,500 points), {precision}", lambda kw=kw: RNNForecaster(**kw).fit(daily[-1])
            )
        )
        rows.append(
            measure(f"fit_each, 8 daily series, {precision}", lambda kw=kw: RNNForecaster(**kw).fit_each(daily))
        )
        rows.append(
            measure(
                f"fit_each, 96 M3 monthly series, {precision}",
                lambda kw=kw: RNNForecaster(season_length=12, **kw).fit_each(monthly[::15]),
            )
        )
        rows.append(
            measure(
                f"fit_many, 357 M3 monthly series, {precision}",
                lambda kw=kw: RNNForecaster(season_length=12, **kw).fit_many(monthly[::4]),
            )
        )
    peaks = {dt: square_peak(np.dtype(dt)) for dt in ("float64", "float32")}
    report = {"rows": rows, "square_matmul_peak_gflops": peaks, "loadavg_before_after": load_before + os.getloadavg()}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "flops.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "# Achieved GFLOP/s of fits against the matmul peak at the same shapes",
        "",
        "Matmul flops of every stacked forward and backward of the fit, counted from the shapes, over its "
        "wall time; against the rate the same batched matmuls reach when timed alone at the fit's shapes "
        "(the twelve that carry most of its flops, weighted), and a 1024 x 1024 matmul (the machine's "
        f"peak on one core: {peaks['float64']:.0f} GFLOP/s float64, {peaks['float32']:.0f} float32). "
        "Element-wise work (tanh and its derivative, the optimizer, gathering windows) is not counted, so "
        "the last column is also the share of the wall time the counted matmuls alone would take. Load average "
        f"before and after: {tuple(round(x, 2) for x in report['loadavg_before_after'])}.",
        "",
        "| fit | seconds | GFLOP | achieved GFLOP/s | same matmuls alone GFLOP/s | achieved / alone |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['fit']} | {r['seconds']:.2f} | {r['gflop']:.1f} | {r['achieved_gflops']:.1f} | "
            f"{r['matmul_rate_same_shapes_gflops']:.1f} | {r['share_of_same_shape_peak']:.0%} |"
        )
    (RESULTS / "flops.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
