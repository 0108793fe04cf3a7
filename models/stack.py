"""Many networks of one architecture as one computation: N recurrent cells with a linear read-out,
their weights stacked on a leading axis, forward and backward (BPTT) by batched matmuls.

Shape legend: N networks, B windows per network, T time steps (the longest window), D inputs per
step, H hidden units, O outputs.

Network n reads windows of its own length L_n <= T, right-aligned in X (N, B, T, D): its window is
``X[n, :, T - L_n:]`` and its state starts at h = 0 at step ``T - L_n``. The networks are ordered
longest window first (``lengths`` non-increasing), so the networks running at step t are a prefix
of the stack: each step is one matmul over that prefix, and a short window costs no arithmetic
before its start (no padding in time, no masks).

Parameters and gradients are dicts of stacked arrays ``(N, *shape)`` with the keys of the single
cell (:mod:`models.cells`), usually views of one (N, P) buffer (:func:`models.params.stack_views`).
``forward(p, X, lengths) -> (out (N, B, O), cache)``; ``backward(p, dout, cache, grads)`` fills
``grads`` and must run before the next ``forward`` of the same shape (the cache lives in reused
buffers). Weight gradients are summed over time in time order for every network, steps before
its start adding exact zeros, so what one network computes does not depend on the networks
stacked with it (up to BLAS's blocking of a padded batch).

A registered cell without a stacked version runs through :class:`LoopStack`, one network at a time.
"""

from __future__ import annotations

import functools

import numpy as np

from .cells import GRU, ElmanRNN, make_cell
from .params import Shapes, allocate, stack_views

_MAX_WORKSPACES = 8
# Bytes of the temporary that weight gradients are summed through, over a block of time steps.
_SUM_BUDGET = 8 << 20
# float32 only: gradients flowing back through long windows shrink step by step, and once below
# ~1e-38 they are subnormal, which x86 CPUs compute 10-100x slower. Every FLUSH_EVERY steps the
# state gradient's entries below FLUSH_BELOW (no weight update can feel them) are set to zero.
FLUSH_EVERY, FLUSH_BELOW = 8, 1e-20


def _flush(x: np.ndarray) -> None:
    np.copyto(x, 0.0, where=np.abs(x) < FLUSH_BELOW)


def running(lengths: np.ndarray, T: int) -> np.ndarray:
    """(T,) how many networks run at step t: those whose window (right-aligned) has begun."""
    starts = T - np.asarray(lengths)
    if np.any(np.diff(starts) < 0) or starts.min(initial=0) < 0:
        raise ValueError(f"window lengths must be non-increasing and at most T={T}, got {np.asarray(lengths).tolist()}")
    return np.searchsorted(starts, np.arange(T), side="right")


def _groups(lengths: np.ndarray, T: int) -> list[tuple[int, int, int]]:
    """(start step, first network, end network) for every run of networks with one window length."""
    starts = T - np.asarray(lengths)
    edges = np.flatnonzero(np.diff(starts)) + 1
    bounds = np.concatenate([[0], edges, [starts.size]])
    return [(int(starts[i]), int(i), int(j)) for i, j in zip(bounds[:-1], bounds[1:])]


@functools.lru_cache(maxsize=256)
def _cached_schedule(lengths: tuple[int, ...], T: int) -> tuple[list[int], list[tuple[int, int, int]]]:
    return running(np.array(lengths), T).tolist(), _groups(np.array(lengths), T)


def _schedule(lengths: np.ndarray, T: int) -> tuple[list[int], list[tuple[int, int, int]]]:
    """:func:`running` and :func:`_groups` of a stack, as Python lists (read once per step)."""
    return _cached_schedule(tuple(int(v) for v in lengths), int(T))


def _time_sum(A: np.ndarray, Bm: np.ndarray, out: np.ndarray, tmp: np.ndarray) -> None:
    """out[n] = sum over t, in time order, of A[t, n] @ Bm[t, n]: A (T, N, p, q), Bm (T, N, q, r),
    out (N, p, r). ``tmp`` (c + 1, N, p, r) bounds the memory: c steps per matmul call."""
    T, c = A.shape[0], tmp.shape[0] - 1
    for s in range(0, T, c):
        e = min(T, s + c)
        np.matmul(A[s:e], Bm[s:e], out=tmp[1 : 1 + e - s])  # (c, N, p, q) @ (c, N, q, r) -> (c, N, p, r)
        if s == 0:
            np.sum(tmp[1 : 1 + e - s], axis=0, out=out)  # NumPy adds along a leading axis in order
        else:
            tmp[0] = out
            np.sum(tmp[: 1 + e - s], axis=0, out=out)


class _Stacked:
    name = ""
    gates = 1

    def __init__(self, input_size: int = 1, hidden_size: int = 32, output_size: int = 1):
        self.D, self.H, self.O = int(input_size), int(hidden_size), int(output_size)
        self._cell = make_cell(self.name, self.D, self.H, self.O)  # shapes and initialisation
        self._workspaces: dict[tuple, dict[str, np.ndarray]] = {}

    @property
    def shapes(self) -> Shapes:
        return self._cell.shapes

    def init_params(self, rng: np.random.Generator, out_scale: float = 0.1) -> dict[str, np.ndarray]:
        """One network's fresh parameters (the single cell's initialisation)."""
        return self._cell.init_params(rng, out_scale)

    def release(self) -> None:
        self._workspaces.clear()

    def _workspace(self, key: tuple, dtype, names: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
        """Buffers shaped ``names`` (each with the networks on axis 1, N = key[0]), reused between
        calls: kept per (B, T, D, dtype) at the largest N asked for, and sliced to N."""
        N, rest = key[0], (*key[1:], np.dtype(dtype).str)
        ws = self._workspaces.get(rest)
        if ws is None or next(iter(ws.values())).shape[1] < N:
            if len(self._workspaces) >= _MAX_WORKSPACES:
                self._workspaces.pop(next(iter(self._workspaces)))  # the oldest
            ws = {k: np.zeros(shape, dtype=dtype) for k, shape in names.items()}
            self._workspaces[rest] = ws
        else:
            self._workspaces[rest] = self._workspaces.pop(rest)  # the newest now
        return {k: v[:, :N] for k, v in ws.items()}

    def _sum_rows(self, N: int, p: int, r: int, T: int) -> int:
        """Time steps per matmul call when summing (N, p, r) products over time."""
        return int(max(1, min(T, _SUM_BUDGET // max(1, N * p * r * 8) - 1)))

    def _readout(self, p, hT: np.ndarray) -> np.ndarray:
        return np.matmul(hT, p["Why"]) + p["by"][:, None, :]  # (N, B, H) @ (N, H, O) -> (N, B, O)

    def _readout_backward(self, p, dout: np.ndarray, hT: np.ndarray, g) -> np.ndarray:
        """Read-out gradients into g; returns dL/dh_T (N, B, H)."""
        np.matmul(hT.transpose(0, 2, 1), dout, out=g["Why"])  # (N, H, B) @ (N, B, O) -> (N, H, O)
        np.sum(dout, axis=1, out=g["by"])  # over the batch, in order
        return np.matmul(dout, p["Why"].transpose(0, 2, 1))  # (N, B, O) @ (N, O, H) -> (N, B, H)


class StackedElman(_Stacked):
    """N Elman networks: ``h_t = tanh(x_t Wxh + h_{t-1} Whh + bh)``, ``out = h_T Why + by``.

    The input projection rides in the recurrent matmul: the state a step reads is augmented with
    its input and a one, ``[h_{t-1} | x_t | 1] (B, H+D+1) @ [Whh; Wxh; bh] (H+D+1, H)``, which costs
    D+1 more columns instead of a pass over all steps' projections; the weight gradients then
    come out of one product, ``[h | x | 1]^T @ da``."""

    name = "rnn"
    gates = 1

    def forward(self, p: dict[str, np.ndarray], X: np.ndarray, lengths: np.ndarray):
        """X (N, B, T, D), lengths (N,) non-increasing -> out (N, B, O), cache."""
        N, B, T, D = X.shape
        H = self.H
        run, groups = _schedule(lengths, T)
        ws = self._workspace((N, B, T, D), X.dtype, {"hx": (T + 1, N, B, H + D + 1), "da": (T, N, B, H)})
        hx, a_t = ws["hx"], ws["da"][0]  # a_t: the pre-activation of one step (the gradients come later)
        hx[:T, :, :, H : H + D] = X.transpose(2, 0, 1, 3)  # (N, B, T, D) -> (T, N, B, D)
        hx[:T, :, :, H + D] = 1.0
        for start, i, j in groups:
            hx[start, i:j, :, :H] = 0.0  # every network starts from h = 0
        W = np.concatenate([p["Whh"], p["Wxh"], p["bh"][:, None, :]], axis=1)  # (N, H+D+1, H)
        for t in range(T):
            a = run[t]
            np.matmul(hx[t, :a], W[:a], out=a_t[:a])  # (a, B, H+D+1) @ (a, H+D+1, H) -> (a, B, H)
            np.tanh(a_t[:a], out=hx[t + 1, :a, :, :H])
        return self._readout(p, hx[T, :, :, :H]), {"ws": ws, "run": run, "groups": groups, "shape": (N, B, T, D)}

    def backward(self, p, dout: np.ndarray, cache, grads: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """dout (N, B, O) = dL/dout -> grads (filled in place, keys of ``p``)."""
        ws, run = cache["ws"], cache["run"]
        N, B, T, D = cache["shape"]
        H, g = self.H, grads
        hx, da = ws["hx"], ws["da"]
        hs = hx[:, :, :, :H]  # (T+1, N, B, H) the states
        dh = self._readout_backward(p, dout, hs[T], g)  # (N, B, H)
        for start, i, j in cache["groups"]:  # tanh' = 1 - h^2, each network's steps
            np.multiply(hs[start + 1 :, i:j], hs[start + 1 :, i:j], out=da[start:, i:j])
            np.subtract(1.0, da[start:, i:j], out=da[start:, i:j])
        WhhT = np.ascontiguousarray(p["Whh"].transpose(0, 2, 1))
        flush = da.dtype == np.float32
        for t in range(T - 1, -1, -1):
            a = run[t]
            da[t, :a] *= dh[:a]  # dL/da_t (a, B, H)
            if t:
                b = run[t - 1]
                np.matmul(da[t, :b], WhhT[:b], out=dh[:b])  # (b, B, H) @ (b, H, H) -> (b, B, H)
                if flush and t % FLUSH_EVERY == 0:
                    _flush(dh[:b])
        dW = np.empty((N, H + D + 1, H), dtype=da.dtype)
        tmp = np.empty((self._sum_rows(N, H + D + 1, H, T) + 1, N, H + D + 1, H), dtype=da.dtype)
        hxT = hx[:T].transpose(0, 1, 3, 2)  # (T, N, H+D+1, B)
        for start, i, j in cache["groups"]:  # each network from its first step, in time order
            # sum_t (H+D+1, B) @ (B, H) -> (j-i, H+D+1, H)
            _time_sum(hxT[start:, i:j], da[start:, i:j], dW[i:j], tmp[:, : j - i])
        g["Whh"][...] = dW[:, :H]
        g["Wxh"][...] = dW[:, H : H + D]
        g["bh"][...] = dW[:, H + D]
        return g


class StackedGRU(_Stacked):
    """N gated recurrent units (gate layout ``[r | z | n]``, as :class:`models.cells.GRU`), worked
    feature-major like it: per step the states are (N, H, B) and the gates (N, 3H, B)."""

    name = "gru"
    gates = 3

    def forward(self, p: dict[str, np.ndarray], X: np.ndarray, lengths: np.ndarray):
        """X (N, B, T, D), lengths (N,) non-increasing -> out (N, B, O), cache."""
        N, B, T, D = X.shape
        H = self.H
        run, groups = _schedule(lengths, T)
        ws = self._workspace(
            (N, B, T, D),
            X.dtype,
            {
                "Xa": (T, N, D + 1, B),
                "xs": (T, N, 3 * H, B),
                "xn": (T, N, H, B),
                "hs": (T + 1, N, H, B),
                "gh": (T, N, 3 * H, B),
                "rz": (T, N, 2 * H, B),
                "n": (T, N, H, B),
                "hmn": (T, N, H, B),
                "K": (T, N, 4 * H, B),
                "G": (T, N, 4 * H, B),
                "tmp": (T, N, H, B),
                "dhh": (1, N, H, B),
            },
        )
        # σ(a) = 1 / (1 + exp(-a)) and tanh(u) = 2 / (1 + exp(-2u)) - 1 (see cells.GRU): signs and
        # the 2 folded into the weights once, so per step one matmul plus one add give
        # gh = [-a_r; -a_z; -2(Whn h + bhn)] (N, 3H, B).
        scale = np.repeat(np.array([-1.0, -1.0, -2.0], dtype=X.dtype), H)  # (3H,)
        Xa, xs, xn, hs = ws["Xa"], ws["xs"], ws["xn"], ws["hs"]
        gh, rz, n, hmn = ws["gh"], ws["rz"], ws["n"], ws["hmn"]
        Xa[:, :, :D] = X.transpose(2, 0, 3, 1)  # (N, B, T, D) -> (T, N, D, B)
        Xa[:, :, D] = 1.0  # the biases' input, for their gradients
        WxT = (p["Wxh"] * scale).transpose(0, 2, 1)  # (N, 3H, D)
        if D == 1:  # same product; OpenBLAS is slow on inner dimension 1
            np.multiply(WxT[None], Xa[:, :, :1], out=xs)  # (1, N, 3H, 1) * (T, N, 1, B) -> (T, N, 3H, B)
        else:
            np.matmul(WxT[None], Xa[:, :, :D], out=xs)  # (1, N, 3H, D) @ (T, N, D, B) -> (T, N, 3H, B)
        xs += (p["bh"] * scale)[None, :, :, None]
        xn[...] = xs[:, :, 2 * H :]  # -2 (Wxn x + bn)
        xs[:, :, 2 * H :] = (-2.0 * p["bhn"])[None, :, :, None]
        WhT = np.ascontiguousarray((p["Whh"] * scale).transpose(0, 2, 1))  # (N, 3H, H)
        for start, i, j in groups:
            hs[start, i:j] = 0.0
        with np.errstate(over="ignore"):  # exp(+large) = inf gives σ = 0, tanh = -1 exactly
            for t in range(T):
                a = run[t]
                g, e, nt = gh[t, :a], rz[t, :a], n[t, :a]
                np.matmul(WhT[:a], hs[t, :a], out=g)  # (a, 3H, H) @ (a, H, B) -> (a, 3H, B)
                g += xs[t, :a]
                np.exp(g[:, : 2 * H], out=e)
                e += 1.0
                np.reciprocal(e, out=e)  # [r; z] (a, 2H, B)
                np.multiply(e[:, :H], g[:, 2 * H :], out=nt)
                nt += xn[t, :a]  # -2 (xn + r ⊙ ghn)
                np.exp(nt, out=nt)
                nt += 1.0
                np.divide(2.0, nt, out=nt)
                nt -= 1.0  # n (a, H, B)
                np.subtract(hs[t, :a], nt, out=hmn[t, :a])
                np.multiply(e[:, H:], hmn[t, :a], out=hs[t + 1, :a])
                hs[t + 1, :a] += nt  # n + z (h - n)
        out = self._readout(p, hs[T].transpose(0, 2, 1))
        return out, {"ws": ws, "run": run, "groups": groups, "shape": (N, B, T, D)}

    def backward(self, p, dout: np.ndarray, cache, grads: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """dout (N, B, O) = dL/dout -> grads (filled in place, keys of ``p``)."""
        ws, run = cache["ws"], cache["run"]
        N, B, T, D = cache["shape"]
        H, g = self.H, grads
        hs, gh, rz, n, hmn = (ws[k] for k in ("hs", "gh", "rz", "n", "hmn"))
        K, G, tmp, dhh = ws["K"], ws["G"], ws["tmp"], ws["dhh"][0]
        r, z, gh_n = rz[:, :, :H], rz[:, :, H:], gh[:, :, 2 * H :]
        # Factors known after the forward pass, all steps at once (see cells.GRU.backward):
        # K = [Kr; Kz; Pn; Kn] (T, N, 4H, B) with Pn = (1 - z)(1 - n^2), Kr = Pn ghn r (1 - r),
        # Kz = (h - n) z (1 - z), Kn = Pn r, ghn = -gh_n / 2.
        Kr, Kz, Pn, Kn = K[:, :, :H], K[:, :, H : 2 * H], K[:, :, 2 * H : 3 * H], K[:, :, 3 * H :]
        np.subtract(1.0, z, out=tmp)
        np.multiply(z, tmp, out=Kz)
        Kz *= hmn
        np.multiply(n, n, out=Pn)
        np.subtract(1.0, Pn, out=Pn)
        Pn *= tmp
        np.multiply(Pn, r, out=Kn)
        np.subtract(1.0, r, out=tmp)
        tmp *= Kn
        tmp *= gh_n
        np.multiply(tmp, -0.5, out=Kr)
        dh = np.ascontiguousarray(self._readout_backward(p, dout, hs[T].transpose(0, 2, 1), g).transpose(0, 2, 1))
        Whh = p["Whh"]
        Wg = np.zeros((N, H, 4 * H), dtype=dout.dtype)  # [Whr Whz 0 Whn]: G's rows
        Wg[:, :, : 2 * H], Wg[:, :, 3 * H :] = Whh[:, :, : 2 * H], Whh[:, :, 2 * H :]
        for start, i, j in cache["groups"]:
            G[:start, i:j] = 0.0  # before its window a network has no gradient
        K5, G5 = K.reshape(T, N, 4, H, B), G.reshape(T, N, 4, H, B)
        for t in range(T - 1, -1, -1):
            a = run[t]
            np.multiply(K5[t, :a], dh[:a, None], out=G5[t, :a])  # [da_r; da_z; da_n; dghn]
            if t:
                b = run[t - 1]
                np.matmul(Wg[:b], G[t, :b], out=dhh[:b])  # (b, H, 4H) @ (b, 4H, B) -> (b, H, B)
                dh[:b] *= z[t, :b]
                dh[:b] += dhh[:b]
                if dh.dtype == np.float32 and t % FLUSH_EVERY == 0:
                    _flush(dh[:b])
        # Weight gradients after the loop, summed over time in order.
        dW = np.empty((N, H, 4 * H), dtype=dout.dtype)
        work = np.empty((self._sum_rows(N, H, 4 * H, T) + 1, N, H, 4 * H), dtype=dout.dtype)
        _time_sum(hs[:T], G.transpose(0, 1, 3, 2), dW, work)  # sum_t (H, B) @ (B, 4H) -> (N, H, 4H)
        g["Whh"][:, :, : 2 * H], g["Whh"][:, :, 2 * H :] = dW[:, :, : 2 * H], dW[:, :, 3 * H :]
        dX = np.empty((N, 4 * H, D + 1), dtype=dout.dtype)
        work = np.empty((self._sum_rows(N, 4 * H, D + 1, T) + 1, N, 4 * H, D + 1), dtype=dout.dtype)
        _time_sum(G, ws["Xa"].transpose(0, 1, 3, 2), dX, work)  # sum_t (4H, B) @ (B, D+1) -> (N, 4H, D+1)
        g["Wxh"][...] = dX[:, : 3 * H, :D].transpose(0, 2, 1)
        g["bh"][...] = dX[:, : 3 * H, D]
        g["bhn"][...] = dX[:, 3 * H :, D]
        return g


class LoopStack:
    """Any :class:`models.cells.Cell` as a stack: one network after another (no batching), for
    cells that have no stacked version. ``cell`` serves the first network; more are made like it."""

    def __init__(self, cell):
        self._cell = cell
        self.name, self.D, self.H, self.O = cell.name, cell.D, cell.H, cell.O
        self._cells: list = [cell]  # one per network: a cell's cache lives in its own buffers

    @property
    def shapes(self) -> Shapes:
        return self._cell.shapes

    def init_params(self, rng: np.random.Generator, out_scale: float = 0.1) -> dict[str, np.ndarray]:
        return self._cell.init_params(rng, out_scale)

    def release(self) -> None:
        for cell in self._cells:
            cell.release()
        del self._cells[1:]

    def forward(self, p, X: np.ndarray, lengths: np.ndarray):
        N, B, T, D = X.shape
        while len(self._cells) < N:
            self._cells.append(type(self._cell)(self.D, self.H, self.O))
        outs, caches = [], []
        for i in range(N):
            one = {k: v[i] for k, v in p.items()}
            out, cache = self._cells[i].forward(one, X[i, :, T - int(lengths[i]) :])  # (B, L, D) -> (B, O)
            outs.append(out)
            caches.append(cache)
        return np.stack(outs), caches

    def backward(self, p, dout: np.ndarray, caches, grads: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        for i, cache in enumerate(caches):
            one = {k: v[i] for k, v in p.items()}
            _, g = allocate(self.shapes)
            self._cells[i].backward(one, dout[i], cache, g)
            for k, v in g.items():
                grads[k][i] = v
        return grads


STACKED: dict[type, type] = {ElmanRNN: StackedElman, GRU: StackedGRU}


def make_stack(name: str, input_size: int = 1, hidden_size: int = 32, output_size: int = 1):
    """The stacked version of a registered cell (the generic loop for cells without one)."""
    return stack_of(make_cell(name, input_size, hidden_size, output_size))


def stack_of(cell):
    """The stack for networks shaped like ``cell`` (a :class:`models.cells.Cell` instance)."""
    stacked = STACKED.get(type(cell))
    if stacked is not None:
        return stacked(cell.D, cell.H, cell.O)
    return LoopStack(cell)


def stacked_forward(stack, flat: np.ndarray, X: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Convenience: out (N, B, O) of networks with weights ``flat`` (N, P) on X (N, B, T, D)."""
    out, _ = stack.forward(stack_views(flat, stack.shapes), X, lengths)
    return out
