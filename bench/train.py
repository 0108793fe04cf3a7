"""Training throughput: our NumPy cells against PyTorch's nn.RNN / nn.GRU + nn.Linear.

Both sides run the same training step on the CPU in one process, interleaved: a mini-batch of
windows (B, T, 1) drawn by a shuffled permutation, forward through the cell, a linear read-out
of the last hidden state, mean squared error, backward, global-norm clipping at 1.0 and an Adam
step (lr 1e-3). Ours is the production step (``models.train``), in float64; PyTorch runs in
float64 (the same arithmetic) and, for reference, in float32 (its usual setting). PyTorch keeps
its default number of threads, which is reported.

NumPy's OpenBLAS threading matters a lot here: the matrices are small,
and under CPU contention a multi-threaded OpenBLAS call can wait milliseconds for its second
thread. The comparison therefore runs twice, each in a fresh child process (ours and PyTorch
side by side inside it): once with OPENBLAS_NUM_THREADS=1, the setting recommended for the
service's workers, and once with OpenBLAS's default.

    pip install '.[bench]'          # torch==2.13.0, CPU build
    python bench/train.py           # writes bench/results/train.md and train.json
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

if "--child" in sys.argv:  # must precede the NumPy import to take effect
    blas = sys.argv[sys.argv.index("--child") + 1]
    if blas != "default":
        os.environ["OPENBLAS_NUM_THREADS"] = blas
    else:
        os.environ.pop("OPENBLAS_NUM_THREADS", None)

import numpy as np  # noqa: E402

try:
    import torch
except ImportError:
    sys.exit("bench/train.py needs PyTorch: pip install 'torch==2.13.0' (the bench extra)")

REPO = Path(__file__).resolve().parents[1]

from tickcast.models.cells import make_cell  # noqa: E402
from tickcast.models.params import allocate, flatten  # noqa: E402
from tickcast.models.train import Data, Trainer, TrainSettings  # noqa: E402

RESULTS = REPO / "bench" / "results"
SIZES = [("default", 64, 30, 32), ("large", 256, 60, 64)]
CELLS = ["rnn", "gru"]
STEPS = {"default": 20, "large": 4}  # steps per timed round
ROUNDS = 5
TARGET = {"default": 2.0, "large": 1.0}
TORCH_THREADS = torch.get_num_threads()
LR, CLIP = 1e-3, 1.0


def ours(cell_name: str, X: np.ndarray, Y: np.ndarray, B: int, H: int):
    """A callable running one epoch (= STEPS steps) of our production training step."""
    cell = make_cell(cell_name, 1, H, 1)
    rng = np.random.default_rng(0)
    flat, params = allocate(cell.shapes)
    flat[:] = flatten(cell.init_params(rng), cell.shapes)
    settings = TrainSettings(1, B, LR, "adam", CLIP, "norm", 0, 0.0, 6, loss="mse")
    trainer = Trainer(cell, flat, params, settings, rng)
    data = Data(X, Y.reshape(len(Y), -1), np.ones((len(Y), 1)))
    return lambda: trainer.epoch(data)


def theirs(cell_name: str, X: np.ndarray, Y: np.ndarray, B: int, H: int, dtype):
    torch.manual_seed(0)
    rnn_cls = torch.nn.RNN if cell_name == "rnn" else torch.nn.GRU
    rnn = rnn_cls(1, H, batch_first=True).to(dtype)
    head = torch.nn.Linear(H, 1).to(dtype)
    params = list(rnn.parameters()) + list(head.parameters())
    opt = torch.optim.Adam(params, lr=LR)
    Xt, Yt = torch.from_numpy(X).to(dtype), torch.from_numpy(Y).to(dtype)
    gen = torch.Generator().manual_seed(0)

    def epoch():
        perm = torch.randperm(Xt.shape[0], generator=gen)
        for start in range(0, Xt.shape[0], B):
            idx = perm[start : start + B]
            opt.zero_grad(set_to_none=True)
            seq, _ = rnn(Xt[idx])  # (B, T, H)
            out = head(seq[:, -1])  # (B, H) -> (B, 1)
            loss = torch.nn.functional.mse_loss(out[:, 0], Yt[idx])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, CLIP)
            opt.step()

    return epoch


def steps_per_second(fn, steps: int) -> float:
    start = time.perf_counter()
    fn()
    return steps / (time.perf_counter() - start)


def with_threads(n: int, fn):
    """Run fn with torch limited to n intra-op threads, then restore the default."""

    def run():
        torch.set_num_threads(n)
        try:
            fn()
        finally:
            torch.set_num_threads(TORCH_THREADS)

    return run


def compare() -> list[dict]:
    """All sizes and cells in this process; one row each."""
    rows = []
    for size, B, T, H in SIZES:
        steps = STEPS[size]
        rng = np.random.default_rng(1)
        X = rng.standard_normal((B * steps, T, 1))
        Y = rng.standard_normal(B * steps)
        for cell_name in CELLS:
            runners = {
                "numpy_f64": ours(cell_name, X, Y, B, H),
                "torch_f64": theirs(cell_name, X, Y, B, H, torch.float64),
                "torch_f64_1thread": with_threads(1, theirs(cell_name, X, Y, B, H, torch.float64)),
                "torch_f32": theirs(cell_name, X, Y, B, H, torch.float32),
            }
            rates = {k: [] for k in runners}
            for fn in runners.values():  # warm-up: buffers, allocator, lazy imports
                fn()
            for _ in range(ROUNDS):  # interleaved, so load changes hit every side alike
                for k, fn in runners.items():
                    rates[k].append(steps_per_second(fn, steps))
            best = {k: max(v) for k, v in rates.items()}
            med = {k: statistics.median(v) for k, v in rates.items()}
            # The stricter comparison: PyTorch float64 at whichever thread count was faster.
            best["torch_f64_best_threads"] = max(best["torch_f64"], best["torch_f64_1thread"])
            med["torch_f64_best_threads"] = max(med["torch_f64"], med["torch_f64_1thread"])
            rows.append(
                {
                    "size": size,
                    "cell": cell_name,
                    "B": B,
                    "T": T,
                    "H": H,
                    "best_steps_per_s": best,
                    "median_steps_per_s": med,
                    "ratio_best": {k: best["numpy_f64"] / v for k, v in best.items()},
                    "ratio_median": {k: med["numpy_f64"] / v for k, v in med.items()},
                    "target_vs_torch_f64": TARGET[size],
                    "rounds": {k: [round(r, 2) for r in v] for k, v in rates.items()},
                }
            )
            q, m = rows[-1]["ratio_best"], rows[-1]["ratio_median"]
            print(
                f"  {size:8s} {cell_name}: best ours {best['numpy_f64']:.1f}/s, torch f64 "
                f"{best['torch_f64']:.1f}/s ({best['torch_f64_1thread']:.1f}/s on 1 thread), "
                f"f32 {best['torch_f32']:.1f}/s -> {q['torch_f64_best_threads']:.2f}x the faster "
                f"torch f64 (median {m['torch_f64_best_threads']:.2f}x)",
                file=sys.stderr,
                flush=True,
            )
    return rows


def main() -> int:
    if "--child" in sys.argv:
        json.dump({"machine": machine(), "results": compare()}, sys.stdout)
        return 0
    runs = []
    for blas in ("1", "default"):
        print(f"OPENBLAS_NUM_THREADS={blas}:", file=sys.stderr, flush=True)
        load_before = os.getloadavg()
        child = subprocess.run(
            [sys.executable, __file__, "--child", blas], check=True, stdout=subprocess.PIPE, text=True
        )
        run = json.loads(child.stdout)
        run["openblas_num_threads"] = blas
        run["loadavg_before_after"] = [round(x, 2) for x in load_before + os.getloadavg()]
        runs.append(run)
    write(runs)
    return 0


def machine() -> dict:
    return {
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_num_threads": torch.get_num_threads(),
        "torch_num_interop_threads": torch.get_num_interop_threads(),
        "numpy_blas": _numpy_blas(),
        "env": {
            k: os.environ.get(k)
            for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE")
        },
    }


def _numpy_blas() -> str:
    try:
        info = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{info.get('name')} {info.get('version')}"
    except Exception:  # noqa: BLE001 - show_config's layout is not a stable API
        return "unknown"


def write(runs: list[dict]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "train.json").write_text(json.dumps({"runs": runs}, indent=2) + "\n")
    info = runs[0]["machine"]
    lines = [
        "# Training throughput: NumPy cells vs PyTorch (CPU)",
        "",
        "One training step = mini-batch of windows (B, T, 1) -> cell -> linear read-out of the last "
        "hidden state -> MSE -> backward -> global-norm clipping (1.0) -> Adam (lr 1e-3). Ours is "
        "`models.train` in float64; PyTorch is `nn.RNN`/`nn.GRU` + `nn.Linear` with autograd, in "
        "float64 (same arithmetic) and float32, with its default threads and, for reference, one "
        f"thread. Steps per second, higher is better: the best of {ROUNDS} interleaved rounds "
        "(the machine is shared, and the best round is the one least disturbed; the ratio of the "
        "median rounds is shown too). PyTorch on one thread is often faster than on its default "
        "two at these sizes, so the targets are judged against whichever was faster. Targets: at least "
        f"{TARGET['default']:.0f}x PyTorch (float64) at the default size, {TARGET['large']:.0f}x "
        "at the large one.",
    ]
    for run in runs:
        lines += [
            "",
            f"## NumPy with OPENBLAS_NUM_THREADS={run['openblas_num_threads']}",
            "",
            f"Load average (1, 5, 15 min) before and after: {run['loadavg_before_after']}.",
            "",
            "| size | cell | B, T, H | ours f64 | torch f64 | torch f64, 1 thread | torch f32 | "
            "ours / torch f64 | ours / torch f64 1 thread | ours / faster torch f64 | (median "
            "rounds) | ours / torch f32 | target vs faster torch f64 |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in run["results"]:
            s, q, m = r["best_steps_per_s"], r["ratio_best"], r["ratio_median"]
            ok = "met" if q["torch_f64_best_threads"] >= r["target_vs_torch_f64"] else "MISSED"
            lines.append(
                f"| {r['size']} | {r['cell']} | {r['B']}, {r['T']}, {r['H']} | "
                f"{s['numpy_f64']:.1f} | {s['torch_f64']:.1f} | {s['torch_f64_1thread']:.1f} | "
                f"{s['torch_f32']:.1f} | {q['torch_f64']:.2f}x | {q['torch_f64_1thread']:.2f}x | "
                f"**{q['torch_f64_best_threads']:.2f}x** | {m['torch_f64_best_threads']:.2f}x | "
                f"{q['torch_f32']:.2f}x | >= {r['target_vs_torch_f64']:.0f}x: {ok} |"
            )
    lines += [
        "",
        f"Machine: {info['cpu_count']} CPUs ({info['processor']}), Python {info['python']}, "
        f"NumPy {info['numpy']} ({info['numpy_blas']}), torch {info['torch']} with "
        f"{info['torch_num_threads']} intra-op threads (its default) and "
        f"{info['torch_num_interop_threads']} inter-op threads.",
        "The machine is shared with other jobs (see the load averages), so single rounds vary; "
        "train.json keeps every round.",
    ]
    (RESULTS / "train.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
