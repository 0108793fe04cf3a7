"""Training throughput of the production step against PyTorch doing the same batched work.

One step = a mini-batch of windows (B, T, 1) for each of N networks (ensemble members, or members
of many series) stacked on a leading axis -> Elman cell or GRU -> linear read-out of the last
hidden state (K outputs) -> masked MAE -> backward -> global-norm clipping at 1.0, each network on
its own -> Adam (lr 1e-3). Ours is the step of ``models.engine`` (windows gathered, forward and
backward of ``models.stack``, per-network clipping, stacked Adam on float64 weights), in float64
and float32 arithmetic. PyTorch runs the same stacked computation written with ``torch.bmm`` (its
nn.RNN has no stacked-weights form) under autograd, with per-network clipping and torch.optim.Adam,
in float64 and float32, on 1 thread and on its default number, the faster of which is the
reference. For reference, PyTorch's own fused nn.RNN / nn.GRU too, the networks one after
another (how they would be trained without stacking), float32. Both sides in one process,
interleaved rounds, best round reported.

Sizes: ``default`` the per-series fit (3 members, B 64, T 24, H 32, K 8), ``many`` series fitted
together (48 networks, B 32, T 54, H 32, K 18: M3 monthly in fit_each), ``large`` (3 networks,
B 256, T 60, H 64, K 8).

    pip install torch==2.13.0          # the bench extra, CPU build; never used by the models
    OPENBLAS_NUM_THREADS=1 python bench/train.py      # writes bench/results/train.md and train.json
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

try:
    import torch
except ImportError:
    sys.exit("bench/train.py needs PyTorch: pip install 'torch==2.13.0' (the bench extra)")

from tickcast.models.engine import Job, StackTrainer
from tickcast.models.params import flatten
from tickcast.models.stack import make_stack
from tickcast.models.train import Data, TrainSettings

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = [("default", 3, 64, 24, 32, 8), ("many", 48, 32, 54, 32, 18), ("large", 3, 256, 60, 64, 8)]
CELLS = ["rnn", "gru"]
STEPS = {"default": 16, "many": 4, "large": 4}  # steps per timed round
ROUNDS = 5
LR, CLIP = 1e-3, 1.0
TORCH_THREADS = torch.get_num_threads()


def problem(N: int, B: int, T: int, K: int, steps: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, B * steps, T, 1))
    Y = rng.standard_normal((N, B * steps, K))
    return X, Y


def ours(cell: str, X: np.ndarray, Y: np.ndarray, B: int, H: int, precision: str):
    """A callable running one epoch (= STEPS steps) of our production step for N stacked networks."""
    N, _, T, _ = X.shape
    stack = make_stack(cell, 1, H, Y.shape[2])
    settings = TrainSettings(1, B, LR, "adam", CLIP, "norm", 0, 0.0, 6, loss="mae")
    jobs = []
    for i in range(N):
        flat = flatten(stack.init_params(np.random.default_rng(i), 0.1), stack.shapes)
        jobs.append(Job(flat, Data(X[i], Y[i], np.ones_like(Y[i])), None, settings, np.random.default_rng(i)))
    state = StackTrainer(stack, jobs, np.dtype(precision))
    return lambda: state.epoch()


class TorchStack(torch.nn.Module):
    """N Elman networks or GRUs with a linear read-out, weights stacked, written with torch.bmm."""

    def __init__(self, cell: str, N: int, H: int, K: int, dtype):
        super().__init__()
        G = 3 if cell == "gru" else 1
        self.cell, self.H = cell, H
        self.Wxh = torch.nn.Parameter(torch.randn(N, 1, G * H, dtype=dtype))
        self.Whh = torch.nn.Parameter(torch.randn(N, H, G * H, dtype=dtype) / H**0.5)
        self.bh = torch.nn.Parameter(torch.zeros(N, 1, G * H, dtype=dtype))
        if cell == "gru":
            self.bhn = torch.nn.Parameter(torch.zeros(N, 1, H, dtype=dtype))
        self.Why = torch.nn.Parameter(torch.randn(N, H, K, dtype=dtype) * 0.1 / H**0.5)
        self.by = torch.nn.Parameter(torch.zeros(N, 1, K, dtype=dtype))

    def forward(self, X):  # X (N, B, T, 1) -> (N, B, K)
        N, B, T, _ = X.shape
        H = self.H
        xs = X * self.Wxh.unsqueeze(2) + self.bh.unsqueeze(2)  # (N, B, T, G*H)
        h = X.new_zeros(N, B, H)
        for t in range(T):
            if self.cell == "rnn":
                h = torch.tanh(xs[:, :, t] + torch.bmm(h, self.Whh))  # (N, B, H) @ (N, H, H)
            else:
                gh = torch.bmm(h, self.Whh)  # (N, B, H) @ (N, H, 3H)
                gx = xs[:, :, t]
                r = torch.sigmoid(gx[..., :H] + gh[..., :H])
                z = torch.sigmoid(gx[..., H : 2 * H] + gh[..., H : 2 * H])
                n = torch.tanh(gx[..., 2 * H :] + r * (gh[..., 2 * H :] + self.bhn))
                h = (1 - z) * n + z * h
        return torch.baddbmm(self.by, h, self.Why)  # (N, B, H) @ (N, H, K) + (N, 1, K)


def theirs(cell: str, X: np.ndarray, Y: np.ndarray, B: int, H: int, dtype):
    torch.manual_seed(0)
    N, n, _, _ = X.shape
    model = TorchStack(cell, N, H, Y.shape[2], dtype)
    params = list(model.parameters())
    opt = torch.optim.Adam(params, lr=LR)
    Xt, Yt = torch.from_numpy(X).to(dtype), torch.from_numpy(Y).to(dtype)
    gens = [torch.Generator().manual_seed(i) for i in range(N)]

    def epoch():
        perms = torch.stack([torch.randperm(n, generator=g) for g in gens])  # each network its own order
        for start in range(0, n, B):
            idx = perms[:, start : start + B]  # (N, B)
            xb = torch.gather(Xt, 1, idx[:, :, None, None].expand(-1, -1, Xt.shape[2], 1))
            yb = torch.gather(Yt, 1, idx[:, :, None].expand(-1, -1, Yt.shape[2]))
            opt.zero_grad(set_to_none=True)
            loss = (model(xb) - yb).abs().mean(dim=(1, 2)).sum()  # each network's own mean
            loss.backward()
            with torch.no_grad():  # global-norm clipping per network
                norms = torch.sqrt(sum(p.grad.pow(2).flatten(1).sum(1) for p in params))
                scale = torch.clamp(CLIP / (norms + 1e-12), max=1.0)
                for p in params:
                    p.grad.mul_(scale.view(-1, *[1] * (p.grad.dim() - 1)))
            opt.step()

    return epoch


def theirs_native(cell: str, X: np.ndarray, Y: np.ndarray, B: int, H: int, dtype):
    """PyTorch's own fused nn.RNN / nn.GRU + nn.Linear, one network after another (no stacking)."""
    torch.manual_seed(0)
    N, n, _, _ = X.shape
    rnn_cls = torch.nn.RNN if cell == "rnn" else torch.nn.GRU
    nets = [(rnn_cls(1, H, batch_first=True).to(dtype), torch.nn.Linear(H, Y.shape[2]).to(dtype)) for _ in range(N)]
    groups = [list(r.parameters()) + list(h.parameters()) for r, h in nets]
    opt = torch.optim.Adam([p for g in groups for p in g], lr=LR)
    Xt, Yt = torch.from_numpy(X).to(dtype), torch.from_numpy(Y).to(dtype)
    gens = [torch.Generator().manual_seed(i) for i in range(N)]

    def epoch():
        perms = [torch.randperm(n, generator=g) for g in gens]
        for start in range(0, n, B):
            opt.zero_grad(set_to_none=True)
            for i, (rnn, head) in enumerate(nets):
                idx = perms[i][start : start + B]
                seq, _ = rnn(Xt[i, idx])  # (B, T, H)
                (head(seq[:, -1]) - Yt[i, idx]).abs().mean().backward()
                torch.nn.utils.clip_grad_norm_(groups[i], CLIP)
            opt.step()

    return epoch


def with_threads(n: int, fn):
    def run():
        torch.set_num_threads(n)
        try:
            fn()
        finally:
            torch.set_num_threads(TORCH_THREADS)

    return run


def compare() -> list[dict]:
    rows = []
    for size, N, B, T, H, K in SIZES:
        steps = STEPS[size]
        X, Y = problem(N, B, T, K, steps)
        for cell in CELLS:
            runners = {
                "numpy_f64": ours(cell, X, Y, B, H, "float64"),
                "numpy_f32": ours(cell, X, Y, B, H, "float32"),
                "torch_f64": theirs(cell, X, Y, B, H, torch.float64),
                "torch_f64_1thread": with_threads(1, theirs(cell, X, Y, B, H, torch.float64)),
                "torch_f32": theirs(cell, X, Y, B, H, torch.float32),
                "torch_f32_1thread": with_threads(1, theirs(cell, X, Y, B, H, torch.float32)),
                "torch_native_f32": theirs_native(cell, X, Y, B, H, torch.float32),
                "torch_native_f32_1thread": with_threads(1, theirs_native(cell, X, Y, B, H, torch.float32)),
            }
            rates: dict[str, list[float]] = {k: [] for k in runners}
            for fn in runners.values():  # warm-up: buffers, allocator, lazy imports
                fn()
            for _ in range(ROUNDS):  # interleaved, so load changes hit every side alike
                for k, fn in runners.items():
                    start = time.perf_counter()
                    fn()
                    rates[k].append(steps / (time.perf_counter() - start))
            best = {k: max(v) for k, v in rates.items()}
            med = {k: statistics.median(v) for k, v in rates.items()}
            for agg in (best, med):
                agg["torch_f64_best"] = max(agg["torch_f64"], agg["torch_f64_1thread"])
                agg["torch_f32_best"] = max(agg["torch_f32"], agg["torch_f32_1thread"])
                agg["torch_native_f32_best"] = max(agg["torch_native_f32"], agg["torch_native_f32_1thread"])
            row = {
                "size": size,
                "cell": cell,
                "N": N,
                "B": B,
                "T": T,
                "H": H,
                "K": K,
                "best_steps_per_s": best,
                "median_steps_per_s": med,
                "ratios_best": {
                    "f64_vs_torch_f64": best["numpy_f64"] / best["torch_f64_best"],
                    "f32_vs_torch_f32": best["numpy_f32"] / best["torch_f32_best"],
                    "f64_vs_torch_f32": best["numpy_f64"] / best["torch_f32_best"],
                    "f32_vs_torch_native_f32": best["numpy_f32"] / best["torch_native_f32_best"],
                },
                "ratios_median": {
                    "f64_vs_torch_f64": med["numpy_f64"] / med["torch_f64_best"],
                    "f32_vs_torch_f32": med["numpy_f32"] / med["torch_f32_best"],
                },
                "rounds": {k: [round(r, 2) for r in v] for k, v in rates.items()},
            }
            rows.append(row)
            q = row["ratios_best"]
            print(
                f"  {size:8s} {cell}: ours f64 {best['numpy_f64']:.1f}/s f32 {best['numpy_f32']:.1f}/s, "
                f"torch f64 {best['torch_f64_best']:.1f}/s f32 {best['torch_f32_best']:.1f}/s -> "
                f"f64 {q['f64_vs_torch_f64']:.2f}x, f32 {q['f32_vs_torch_f32']:.2f}x",
                file=sys.stderr,
                flush=True,
            )
    return rows


def machine() -> dict:
    return {
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_num_threads": TORCH_THREADS,
        "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
    }


def main() -> int:
    load_before = os.getloadavg()
    rows = compare()
    run = {
        "machine": machine(),
        "results": rows,
        "loadavg_before_after": [round(x, 2) for x in load_before + os.getloadavg()],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "train.json").write_text(json.dumps(run, indent=2) + "\n")
    lines = [
        "# Training throughput: the production step against PyTorch (CPU), same batched work",
        "",
        "One step: N stacked networks, each a mini-batch of its own windows (B, T, 1) -> cell -> read-out "
        "of the last hidden state (K outputs) -> masked MAE -> backward -> global-norm clipping (1.0) per "
        "network -> Adam. Ours is `models.engine`'s step (float64 weights; forward and backward in float64 "
        "or float32); PyTorch is the same stacked computation with `torch.bmm` and autograd, the faster of "
        f"1 and {TORCH_THREADS} threads. Steps per second, best of {ROUNDS} interleaved rounds (ratio of "
        f"median rounds in brackets). OPENBLAS_NUM_THREADS={run['machine']['openblas_num_threads']}; load "
        f"average before and after: {run['loadavg_before_after']}. Target: at least 1x PyTorch float32 at "
        "the large size.",
        "",
        "| size | cell | N, B, T, H, K | ours f64 | ours f32 | torch f64 | torch f32 | ours f64 / torch f64 | "
        "ours f32 / torch f32 | ours f64 / torch f32 | torch nn.RNN/GRU f32, one net after another | ours f32 / it |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        s, q, m = r["best_steps_per_s"], r["ratios_best"], r["ratios_median"]
        lines.append(
            f"| {r['size']} | {r['cell']} | {r['N']}, {r['B']}, {r['T']}, {r['H']}, {r['K']} | {s['numpy_f64']:.1f} | "
            f"{s['numpy_f32']:.1f} | {s['torch_f64_best']:.1f} | {s['torch_f32_best']:.1f} | "
            f"{q['f64_vs_torch_f64']:.2f}x ({m['f64_vs_torch_f64']:.2f}x) | **{q['f32_vs_torch_f32']:.2f}x** "
            f"({m['f32_vs_torch_f32']:.2f}x) | {q['f64_vs_torch_f32']:.2f}x | {s['torch_native_f32_best']:.1f} | "
            f"{q['f32_vs_torch_native_f32']:.2f}x |"
        )
    info = run["machine"]
    lines += [
        "",
        f"Machine: {info['cpu_count']} CPUs ({info['processor']}), Python {info['python']}, NumPy {info['numpy']}, "
        f"torch {info['torch']}. The machine is shared with other jobs; train.json keeps every round.",
    ]
    (RESULTS / "train.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
