"""Training many networks as one computation: one network's training loop (its settings in
:mod:`models.train`) run for N networks at once, each a :class:`Job` with its own weights,
windows, settings, seeded generator and early-stopping state, their mini-batch steps stacked
into batched matmuls (:mod:`models.stack`).

Every network goes through exactly the steps it would alone: its own permutation of its own
windows each epoch, its own batch size, learning-rate schedule, global-norm clipping, Adam
moments, back-offs and stopping. Stacking changes only what runs beside it. Networks that stop
(early stopping, their epoch budget, divergence) leave the stack at the end of the epoch; within
an epoch a network with fewer steps simply sits the last ones out.

Shapes: N networks in the stack, B windows per network and step (a network with fewer is
padded with masked windows), T the longest window, K outputs, P parameters per network.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .bank import Gather
from .errors import TrainingDiverged
from .optim import clip_rows, make_stacked_optimizer
from .params import stack_views
from .passes import Source, evaluate
from .stack import stack_of
from .train import TrainSettings, significant


@dataclass
class Job:
    """One network's training. ``flat`` (P,) holds the initial weights and, after :func:`run`, the
    trained ones (the best epoch's). ``record=False``: nobody reads the history, so a job without
    epochs skips the evaluation before them. ``error`` is set instead of raising when it diverges."""

    flat: np.ndarray
    train: Source
    val: Source | None
    settings: TrainSettings
    rng: np.random.Generator
    record: bool = True
    history: list = field(default_factory=list)
    best_epoch: int = 0
    n_epochs: int = 0
    error: BaseException | None = None


def masked_loss(out: np.ndarray, Y: np.ndarray, M: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Per network masked loss of out (N, B, K) against Y (N, B, K) -> (loss (N,), dL/dout (N, B, K)).
    ``mae``: sum(M |d|) / sum(M), ``mse``: sum(M d^2) / sum(M), for each network; 0 without targets."""
    weight = M.sum(axis=(1, 2))  # (N,) counts: exact
    safe = np.where(weight > 0, weight, 1.0)[:, None, None]
    d = out - Y
    if kind == "mae":
        per, dout = np.abs(d) * M, np.sign(d) * M / safe
    else:
        per, dout = d * d * M, 2.0 * d * M / safe
    return per.sum(axis=2).sum(axis=1) / safe[:, 0, 0], dout


def run(stack, jobs: Sequence[Job], dtype=np.float64) -> None:
    """Train every job (same architecture) as one stack; see the module docstring."""
    if jobs:
        # Overflow to inf/NaN is detected and handled; NumPy's warnings about it are noise here.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            StackTrainer(stack, jobs, np.dtype(dtype)).run()


def train(cell, flat: np.ndarray, params, data, val, settings: TrainSettings, rng: np.random.Generator):
    """One network through the same loop: train ``flat`` (P,) (``params`` are views of it) in place
    on ``data`` (a :class:`models.train.Data` or any :class:`Source`), early stopping on ``val``;
    returns ``(history, best_epoch, epochs_run)``; raises TrainingDiverged.

    Epoch 0 is the loss before any update. After each epoch the validation loss (the training
    loss when there is no validation data) decides early stopping (``patience`` 0 disables it);
    the best weights, epoch 0 included, are restored at the end. A validation improvement counts
    when it is ``min_delta`` (relative) and ``significance`` standard errors large. A step whose
    loss or gradient is not finite never updates the weights: the best weights are restored, the
    optimizer reset and the learning rate halved; after ``max_backoffs`` of those TrainingDiverged
    is raised."""
    job = Job(flat, data, val, settings, rng)
    run(stack_of(cell), [job])
    if job.error is not None:
        raise job.error
    return job.history, job.best_epoch, job.n_epochs


def _similar_batches(counts: np.ndarray) -> list[np.ndarray]:
    """The networks of one step split by batch size (positions, in order): each group is padded to
    its largest batch, and a batch of less than half of it goes to the next group. A network's last,
    short batch then costs about its own size, not its neighbours' (one more call at most steps)."""
    groups, left = [], np.arange(counts.size)
    while left.size:
        big = 2 * counts[left] > counts[left].max()
        groups.append(left[big])
        left = left[~big]
    return groups


def _entry(epoch, train_loss, val_loss, grad_norm, clip_fraction, lr) -> dict:
    return {
        "epoch": int(epoch),
        "train_loss": float(train_loss),
        "val_loss": None if val_loss is None else float(val_loss),
        "grad_norm": float(grad_norm),
        "clip_fraction": float(clip_fraction),
        "lr": float(lr),
    }


class _Buffers:
    """The weights of a step's networks in the stack's arithmetic and their gradients: buffers (N, P)
    allocated once, their per-key views kept per number of rows."""

    def __init__(self, stack, n: int, size: int, dtype: np.dtype):
        self.stack, self.dtype = stack, dtype
        self.W, self.G = np.zeros((n, size), dtype=dtype), np.zeros((n, size), dtype=dtype)
        self._views: dict[int, tuple[dict, dict]] = {}

    def views(self, W: np.ndarray, rows: np.ndarray | None):
        """(weights, gradients) as dicts of views, rows ``rows`` of W (all when None) copied in."""
        a = W.shape[0] if rows is None else rows.size
        if rows is None:
            self.W[:a] = W
        else:
            np.take(W, rows, axis=0, out=self.W[:a])
        if a not in self._views:
            shapes = self.stack.shapes
            self._views[a] = (stack_views(self.W[:a], shapes), stack_views(self.G[:a], shapes))
        return self._views[a]

    def grads(self, a: int) -> np.ndarray:
        return self.G[:a]


class StackTrainer:
    """The training state of a stack of jobs: the live networks, longest window first (row i of
    every array is ``self.jobs[i]``). ``run`` is the whole loop, ``epoch`` one pass of mini-batch
    steps over every live network (the unit bench/train.py times)."""

    def __init__(self, stack, jobs: Sequence[Job], dtype: np.dtype):
        order = sorted(range(len(jobs)), key=lambda j: -jobs[j].train.L)  # stable: ties keep their order
        self.stack, self.dtype = stack, dtype
        self.jobs = [jobs[j] for j in order]
        self.W = np.stack([job.flat for job in self.jobs]).astype(np.float64)  # (N, P) master weights
        self.best = self.W.copy()
        self.lengths = np.array([job.train.L for job in self.jobs])
        st = [job.settings for job in self.jobs]
        shared = ("optimizer", "loss", "clip", "clip_mode")
        if any(getattr(s, k) != getattr(st[0], k) for s in st for k in shared):
            raise ValueError(f"networks trained as one stack share their {', '.join(shared)}")
        self.opt = make_stacked_optimizer(st[0].optimizer, len(jobs), self.W.shape[1], [s.lr for s in st])
        self.base_lr = np.array([s.lr for s in st], dtype=np.float64)  # an integer lr still halves
        self.backoffs = np.zeros(len(jobs), dtype=np.int64)
        self.alive = np.ones(len(jobs), dtype=bool)
        self.buffers = _Buffers(stack, len(jobs), self.W.shape[1], dtype)

    # ------------------------------------------------------------------ the loop
    def run(self) -> None:
        jobs = self.jobs
        quiet = np.array([not j.record and j.settings.epochs == 0 and j.val is None for j in jobs])
        for i in np.flatnonzero(quiet).tolist():
            self._finish(i, 0)
        self._compact()
        if not self.jobs:
            return
        jobs = self.jobs
        train_loss, _, _ = evaluate(self.stack, self.W, [j.train for j in jobs], jobs[0].settings.loss, self.dtype)
        val_loss, val_windows, val_weight = self._evaluate_val(np.arange(len(jobs)))
        self.state: list[dict | None] = []
        for i, job in enumerate(jobs):
            monitored = val_loss[i] if val_loss[i] is not None else train_loss[i]
            if monitored is None or not np.isfinite(monitored):
                self._fail(i, TrainingDiverged("the loss at initialisation is not finite"))
                self.state.append(None)
                continue
            job.history = [_entry(0, train_loss[i], val_loss[i], 0.0, 0.0, self.opt.lr[i])]
            self.state.append(
                {
                    "best_loss": monitored,
                    "wait": 0,
                    "windows": val_windows[i] if val_loss[i] is not None else None,
                    "weight": float(val_weight[i]),
                }
            )
        epoch = 0
        while True:
            self._compact()
            if not self.jobs:
                return
            epoch += 1
            done = [i for i, job in enumerate(self.jobs) if epoch > job.settings.epochs]
            for i in done:
                self._finish(i, epoch - 1)
            self._compact()
            if not self.jobs:
                return
            for i, job in enumerate(self.jobs):
                E = job.settings.epochs
                # cosine decay from lr to lr/10 over the epoch budget: big steps first, settling later
                self.opt.lr[i] = self.base_lr[i] * (0.55 + 0.45 * math.cos(math.pi * (epoch - 1) / max(E, 1)))
            stats = self.epoch()
            self._end_epoch(epoch, stats)

    def _end_epoch(self, epoch: int, stats) -> None:
        train_loss, grad_norm, clip_fraction = stats
        rows = np.flatnonzero(self.alive)
        val_loss, val_windows, _ = self._evaluate_val(rows)
        redo = []
        for k, i in enumerate(rows.tolist()):
            finite = train_loss[i] is not None and np.isfinite(train_loss[i] + grad_norm[i])
            if not finite or (val_loss[k] is not None and not np.isfinite(val_loss[k])):
                self._back_off(i, "non-finite validation loss" if finite else "no finite training loss in an epoch")
                if self.alive[i]:
                    redo.append(i)
        if redo:
            idx = np.array(redo)
            again_val, again_windows, _ = self._evaluate_val(idx)
            again_train, _, _ = evaluate(
                self.stack, self.W[idx], [self.jobs[i].train for i in idx], self.jobs[0].settings.loss, self.dtype
            )
            pos = {int(i): k for k, i in enumerate(rows)}
            for k, i in enumerate(redo):
                val_loss[pos[i]], val_windows[pos[i]] = again_val[k], again_windows[k]
                train_loss[i], grad_norm[i] = again_train[k], 0.0
        for k, i in enumerate(rows.tolist()):
            state = self.state[i]
            if not self.alive[i] or state is None:
                continue
            job, st = self.jobs[i], self.jobs[i].settings
            job.history.append(
                _entry(epoch, train_loss[i], val_loss[k], grad_norm[i], clip_fraction[i], self.opt.lr[i])
            )
            if val_loss[k] is not None:
                windows = val_windows[k]
                better = significant(
                    windows, state["windows"], state["weight"], st.significance, st.min_delta, self.stack.O
                )
            else:
                tl = train_loss[i]
                better = tl is not None and np.isfinite(tl) and tl < state["best_loss"] * (1.0 - st.min_delta)
            if better:
                state["best_loss"] = val_loss[k] if val_loss[k] is not None else train_loss[i]
                state["wait"] = 0
                job.best_epoch = epoch
                if val_loss[k] is not None:
                    state["windows"] = windows
                self.best[i] = self.W[i]
            else:
                state["wait"] += 1
                if st.patience and state["wait"] >= st.patience:
                    self._finish(i, epoch)

    def epoch(self):
        """One pass over every live network's shuffled windows -> per row (mean train loss or None,
        mean gradient norm before clipping, fraction of steps clipped)."""
        n, jobs, st0 = len(self.jobs), self.jobs, self.jobs[0].settings
        sizes = np.array([len(j.train) for j in jobs])
        batch = np.array([min(j.settings.batch_size, max(len(j.train), 1)) for j in jobs])
        steps = -(-sizes // np.maximum(batch, 1))
        perms = [j.rng.permutation(len(j.train)) for j in jobs]
        T, K, D = int(self.lengths.max()), self.stack.O, jobs[0].train.D
        Bmax = int(batch.max())
        X = np.zeros((n, Bmax, T, D), dtype=self.dtype)
        Y, M = np.zeros((n, Bmax, K)), np.zeros((n, Bmax, K))
        ids = np.zeros((n, Bmax), dtype=np.int64)
        sources = [j.train for j in jobs]
        gather = Gather(sources) if Gather.usable(sources) else None
        loss_sum, n_seen = np.zeros(n), np.zeros(n)
        norm_sum, n_steps, n_clipped = np.zeros(n), np.zeros(n), np.zeros(n)
        for s in range(int(steps.max(initial=0))):
            live = np.flatnonzero((steps > s) & self.alive)
            every = np.minimum(batch[live], sizes[live] - s * batch[live])
            for part in _similar_batches(every):
                rows, counts = live[part], every[part]
                a, b_max = rows.size, int(counts.max())
                for i, r in enumerate(rows.tolist()):
                    ids[i, : counts[i]] = perms[r][s * batch[r] : s * batch[r] + counts[i]]
                Xs, Ys, Ms = X[:a, :b_max], Y[:a, :b_max], M[:a, :b_max]
                if gather is not None:
                    gather.fill(rows, ids[:a, :b_max], counts, Xs, Ys, Ms)
                else:
                    for i, r in enumerate(rows.tolist()):
                        b = counts[i]
                        sources[r].fill(ids[i, :b], Xs[i, :b], Ys[i, :b], Ms[i, :b])
                        Ms[i, b:] = 0.0
                p, g = self.buffers.views(self.W, rows if a < n else None)
                out, cache = self.stack.forward(p, Xs, self.lengths[rows])
                loss, dout = masked_loss(out.astype(np.float64, copy=False), Ys, Ms, st0.loss)
                self.stack.backward(p, dout.astype(self.dtype, copy=False), cache, g)
                grad = self.buffers.grads(a)
                clipped, norm, was = clip_rows(grad.astype(np.float64, copy=False), st0.clip, st0.clip_mode)
                finite = np.isfinite(loss) & np.isfinite(norm)
                for i in np.flatnonzero(~finite).tolist():
                    self._back_off(int(rows[i]), "non-finite loss or gradient")
                ok = finite & self.alive[rows]
                if ok.all() and a == n:
                    self.opt.step(self.W, clipped)
                elif ok.any():
                    self.opt.step(self.W, clipped[ok], rows[ok])
                r = rows[ok]
                loss_sum[r] += loss[ok] * counts[ok]
                n_seen[r] += counts[ok]
                norm_sum[r] += norm[ok]
                n_steps[r] += 1
                n_clipped[r] += was[ok]
        train = [loss_sum[i] / n_seen[i] if n_seen[i] else None for i in range(n)]
        safe = np.maximum(n_steps, 1)
        return train, np.where(n_steps > 0, norm_sum / safe, 0.0), np.where(n_steps > 0, n_clipped / safe, 0.0)

    # ------------------------------------------------------------------ helpers
    def _evaluate_val(self, rows: np.ndarray):
        """Validation (loss or None, per-window losses or None, weight) for the given rows."""
        with_val = [i for i in rows if self.jobs[i].val is not None]
        losses: list = [None] * len(rows)
        windows: list = [None] * len(rows)
        weight = np.zeros(len(rows))
        if with_val:
            idx = np.array(with_val)
            kind = self.jobs[0].settings.loss
            l_, w_, t_ = evaluate(self.stack, self.W[idx], [self.jobs[i].val for i in idx], kind, self.dtype)
            pos = {int(i): k for k, i in enumerate(rows)}
            for k, i in enumerate(idx):
                losses[pos[int(i)]], windows[pos[int(i)]], weight[pos[int(i)]] = l_[k], w_[k], t_[k]
        return losses, windows, weight

    def _back_off(self, i: int, reason: str) -> None:
        """Never step from non-finite values: restore the best weights, reset the optimizer's
        moments and halve the learning rate, or give up after max_backoffs."""
        st = self.jobs[i].settings
        self.backoffs[i] += 1
        if self.backoffs[i] > st.max_backoffs:
            self._fail(
                i,
                TrainingDiverged(
                    f"{reason} after {st.max_backoffs} learning-rate back-offs (lr now "
                    f"{self.opt.lr[i]:.3g}, started at {st.lr:.3g}); lower lr or check the series"
                ),
            )
            return
        self.W[i] = self.best[i]
        self.opt.reset(i)
        self.base_lr[i] *= 0.5
        self.opt.lr[i] *= 0.5

    def _fail(self, i: int, error: BaseException) -> None:
        self.jobs[i].error = error
        self.alive[i] = False

    def _finish(self, i: int, epochs_run: int) -> None:
        job = self.jobs[i]
        job.flat[:] = self.best[i]
        job.n_epochs = epochs_run
        self.alive[i] = False

    def _compact(self) -> None:
        """Drop the networks that are done from every array (their results are in their jobs)."""
        keep = np.flatnonzero(self.alive)
        if keep.size == len(self.jobs):
            return
        self.jobs = [self.jobs[i] for i in keep]
        self.W, self.best, self.lengths = self.W[keep], self.best[keep], self.lengths[keep]
        self.buffers = _Buffers(self.stack, keep.size, self.W.shape[1], self.dtype)
        self.base_lr, self.backoffs, self.alive = self.base_lr[keep], self.backoffs[keep], self.alive[keep]
        self.opt.keep(keep)
        if hasattr(self, "state"):
            self.state = [self.state[i] for i in keep]
