"""Recurrent cells with a linear read-out, forward and backward by hand (BPTT).

Shape legend: B batch (windows), T window length (time steps), D inputs per step,
H hidden units, O outputs (1: the next scaled value).

Both cells map a batch of windows ``X (B, T, D)`` to ``out (B, O)`` through the last hidden
state, starting every window from ``h0 = 0``. ``forward`` returns ``(out, cache)``;
``backward(params, dout, cache)`` returns a gradient dict with the parameters' keys.

Speed comes from doing as little Python per time step as possible: the input projection of
all T steps is one matmul before the loop, the weight gradients are one matmul over all steps
after the backward loop, element-wise factors that do not depend on the incoming gradient are
computed for all steps at once, and every buffer is reused between calls of the same (B, T).
A cache therefore lives in those buffers: call ``backward`` before the next ``forward`` of the
same shape.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from .params import Shapes, allocate

_MAX_WORKSPACES = 8


@runtime_checkable
class Cell(Protocol):  # pragma: no mutate block (an interface: mutmut's trampolines would add methods no cell has)
    """What the training loop needs from a recurrent cell with a linear read-out.

    ``D, H, O``: inputs per step, hidden units, outputs. Parameters and gradients are dicts
    with the keys and shapes of ``shapes``. ``forward(p, X (B, T, D)) -> (out (B, O), cache)``;
    ``backward(p, dout (B, O), cache, grads=None) -> grads`` (filled in place when given) and
    must be called before the next ``forward`` of the same shape. ``release()`` drops buffers.
    The read-out is ``out = h_T @ Why + by``, with those names: the bias starts at the mean
    target, and a network whose ``Why`` is all zeros forecasts ``by`` without running the cell.
    A new cell class registered with :func:`register_cell` is gradient-checked by the tests
    without editing them.
    """

    name: str
    D: int
    H: int
    O: int  # noqa: E741 (the read-out width, as in the shape legend)

    @property
    def shapes(self) -> Shapes: ...

    def init_params(self, rng: np.random.Generator, out_scale: float = 0.1) -> dict[str, np.ndarray]: ...

    def forward(self, p: dict[str, np.ndarray], X: np.ndarray) -> tuple[np.ndarray, dict]: ...

    def backward(
        self, p: dict[str, np.ndarray], dout: np.ndarray, cache: dict, grads: dict[str, np.ndarray] | None = None
    ) -> dict[str, np.ndarray]: ...

    def release(self) -> None: ...


CELLS: dict[str, type] = {}


def register_cell(cls: type) -> type:
    """Class decorator: make a cell available by its ``name`` (config ``cell = "<name>"``)."""
    CELLS[getattr(cls, "name")] = cls  # noqa: B009 (a class attribute mypy cannot see on `type`)
    return cls


def _orthogonal(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, n) random orthogonal matrix: keeps the recurrent Jacobian's norm near 1 at start."""
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    return q * np.sign(np.diag(r))


class _Cell:
    name = ""
    gates = 1  # blocks of H columns in Wxh and Whh

    def __init__(self, input_size: int = 1, hidden_size: int = 32, output_size: int = 1):
        self.D, self.H, self.O = int(input_size), int(hidden_size), int(output_size)
        self._workspaces: dict[tuple[int, int], dict[str, np.ndarray]] = {}

    @property
    def shapes(self) -> Shapes:
        D, H, O, G = self.D, self.H, self.O, self.gates  # noqa: E741
        return {"Wxh": (D, G * H), "Whh": (H, G * H), "bh": (G * H,), "Why": (H, O), "by": (O,)}

    def init_params(self, rng: np.random.Generator, out_scale: float = 0.1) -> dict[str, np.ndarray]:
        """Fresh parameters drawn from ``rng``; ``Why`` is small (std ``out_scale / sqrt(H)``)
        so the first forecasts sit at ``by``. Values are views into one flat buffer."""
        D, H, O = self.D, self.H, self.O  # noqa: E741
        _, p = allocate(self.shapes)
        p["Wxh"][...] = rng.standard_normal((D, self.gates * H)) / np.sqrt(D)
        for g in range(self.gates):
            p["Whh"][:, g * H : (g + 1) * H] = _orthogonal(rng, H)
        p["Why"][...] = rng.standard_normal((H, O)) * (out_scale / np.sqrt(H))
        return p

    def release(self) -> None:
        """Drop the reusable buffers (a fitted model kept in memory then holds only its weights)."""
        self._workspaces.clear()

    def _workspace(self, B: int, T: int, names: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
        ws = self._workspaces.get((B, T))
        if ws is None:
            if len(self._workspaces) >= _MAX_WORKSPACES:
                self._workspaces.clear()
            ws = {k: np.zeros(shape) for k, shape in names.items()}
            self._workspaces[(B, T)] = ws
        return ws

    def _project_inputs(self, p, X: np.ndarray, ws) -> None:
        """All steps' input projections in one matmul, time-major (T, B, G*H)."""
        B, T, D = X.shape
        if D != self.D:
            raise ValueError(f"X has {D} inputs per step, the cell expects {self.D}")
        Xf, xs = ws["Xf"], ws["xs"].reshape(T * B, -1)
        Xf.reshape(T, B, D)[...] = X.transpose(1, 0, 2)  # (B, T, D) -> (T, B, D)
        if D == 1:  # same product; OpenBLAS is slow on inner dimension 1
            np.multiply(Xf, p["Wxh"], out=xs)  # (T*B, 1) * (1, G*H) -> (T*B, G*H)
        else:
            np.matmul(Xf, p["Wxh"], out=xs)  # (T*B, D) @ (D, G*H) -> (T*B, G*H)
        xs += p["bh"]

    def _readout(self, p, hT: np.ndarray) -> np.ndarray:
        return hT @ p["Why"] + p["by"]  # (B, H) @ (H, O) -> (B, O)

    def _readout_backward(self, p, dout, hT, g) -> np.ndarray:
        """Gradients of the linear read-out; returns dL/dh_T (B, H)."""
        np.matmul(hT.T, dout, out=g["Why"])  # (H, B) @ (B, O) -> (H, O)
        g["by"][...] = dout.sum(axis=0)
        return dout @ p["Why"].T  # (B, O) @ (O, H) -> (B, H)

    def _input_weight_grads(self, ws, dA: np.ndarray, g, cols: slice) -> None:
        """dWxh, dbh for the columns ``cols`` from dA (T*B, k) = dL/d(pre-activation), all steps."""
        np.matmul(ws["Xf"].T, dA, out=g["Wxh"][:, cols])  # (D, T*B) @ (T*B, k) -> (D, k)
        g["bh"][cols] = dA.sum(axis=0)

    def _new_grads(self, grads):
        return allocate(self.shapes)[1] if grads is None else grads


@register_cell
class ElmanRNN(_Cell):
    """``h_t = tanh(x_t Wxh + h_{t-1} Whh + bh)``, ``out = h_T Why + by``."""

    name = "rnn"
    gates = 1

    def forward(self, p: dict[str, np.ndarray], X: np.ndarray):
        """X (B, T, D) -> out (B, O), cache."""
        B, T, _ = X.shape
        H = self.H
        ws = self._workspace(
            B, T, {"Xf": (T * B, self.D), "xs": (T, B, H), "hs": (T + 1, B, H), "da": (T, B, H), "dh": (B, H)}
        )
        self._project_inputs(p, X, ws)
        # tanh(a) = 2 / (1 + exp(-2a)) - 1, exact to ~1e-16: NumPy's float64 tanh is a scalar
        # loop on CPUs without AVX-512 and exp is twice as fast. The -2 is folded into the
        # projections once here instead of once per step.
        xs, hs = ws["xs"], ws["hs"]
        xs *= -2.0
        Whh2 = -2.0 * p["Whh"]
        with np.errstate(over="ignore"):  # exp(+large) = inf gives tanh = -1 exactly
            for t in range(T):
                h = hs[t + 1]
                np.matmul(hs[t], Whh2, out=h)  # (B, H) @ (H, H) -> (B, H)
                h += xs[t]
                np.exp(h, out=h)
                h += 1.0
                np.divide(2.0, h, out=h)
                h -= 1.0
        return self._readout(p, hs[T]), {"ws": ws, "B": B, "T": T}

    def backward(self, p, dout: np.ndarray, cache, grads=None) -> dict[str, np.ndarray]:
        """dout (B, O) = dL/dout -> gradient dict (keys of ``p``)."""
        ws, B, T = cache["ws"], cache["B"], cache["T"]
        H, g = self.H, self._new_grads(grads)
        hs, da, dh = ws["hs"], ws["da"], ws["dh"]
        dh[...] = self._readout_backward(p, dout, hs[T], g)
        np.multiply(hs[1:], hs[1:], out=da)  # tanh' = 1 - h^2, all steps
        np.subtract(1.0, da, out=da)
        WhhT = p["Whh"].T
        for t in range(T - 1, -1, -1):
            da[t] *= dh  # dL/da_t (B, H)
            if t:
                np.matmul(da[t], WhhT, out=dh)  # (B, H) @ (H, H) -> (B, H)
        TB = T * B
        np.matmul(
            hs[:T].reshape(TB, H).T,
            da.reshape(TB, H),  # (H, T*B) @ (T*B, H) -> (H, H)
            out=g["Whh"],
        )
        self._input_weight_grads(ws, da.reshape(TB, H), g, slice(0, H))
        return g


@register_cell
class GRU(_Cell):
    """Gated recurrent unit (gate layout ``[r | z | n]`` in the 3H columns, as in PyTorch)::

        r = σ(x Wxr + h Whr + br)         z = σ(x Wxz + h Whz + bz)
        n = tanh(x Wxn + bn + r ⊙ (h Whn + bhn))
        h' = (1 - z) ⊙ n + z ⊙ h

    Internally the GRU works feature-major: per step the state is hᵀ (H, B) and the gates
    are (3H, B), so every gate block is a contiguous slice and the element-wise work (three
    gates, ~3x the Elman cell's) runs on contiguous memory. Parameters keep the usual layout.
    """

    name = "gru"
    gates = 3

    @property
    def shapes(self) -> Shapes:
        return {**super().shapes, "bhn": (self.H,)}

    def forward(self, p: dict[str, np.ndarray], X: np.ndarray):
        """X (B, T, D) -> out (B, O), cache."""
        B, T, D = X.shape
        H = self.H
        if D != self.D:
            raise ValueError(f"X has {D} inputs per step, the cell expects {self.D}")
        ws = self._workspace(
            B,
            T,
            {
                "Xt": (T, D, B),
                "xs": (T, 3 * H, B),
                "xn": (T, H, B),
                "hs": (T + 1, H, B),
                "gh": (T, 3 * H, B),
                "rz": (T, 2 * H, B),
                "n": (T, H, B),
                "hmn": (T, H, B),
                "K": (T, 4 * H, B),
                "G": (T, 4 * H, B),
                "WB": (T, H, 4 * H),
                "XB": (T, 3 * H, D),
                "tmp": (T, H, B),
                "dh": (H, B),
                "dhh": (H, B),
            },
        )
        # σ(a) = 1 / (1 + exp(-a)) and tanh(u) = 2 / (1 + exp(-2u)) - 1 (see ElmanRNN): the
        # signs and the 2 are folded into the weights once here. Per step one matmul plus one
        # add then give gh = [-a_r; -a_z; -2(Whn h + bhn)] (3H, B).
        scale = np.repeat([-1.0, -1.0, -2.0], H)  # (3H,)
        Xt, xs, xn, hs = ws["Xt"], ws["xs"], ws["xn"], ws["hs"]
        gh, rz, n, hmn = ws["gh"], ws["rz"], ws["n"], ws["hmn"]
        Xt[...] = X.transpose(1, 2, 0)  # (B, T, D) -> (T, D, B)
        WxT = (p["Wxh"] * scale).T  # (3H, D)
        if D == 1:  # same product; OpenBLAS is slow on inner dimension 1
            np.multiply(WxT[None], Xt, out=xs)  # (1,3H,1) * (T,1,B) -> (T,3H,B)
        else:
            np.matmul(WxT, Xt, out=xs)  # (3H,D) @ (T,D,B) -> (T,3H,B)
        xs += (p["bh"] * scale)[:, None]
        xn[...] = xs[:, 2 * H :]  # -2 (Wxn x + bn)
        xs[:, 2 * H :] = (-2.0 * p["bhn"])[:, None]
        WhT = np.ascontiguousarray((p["Whh"] * scale).T)  # (3H, H)
        with np.errstate(over="ignore"):  # exp(+large) = inf gives σ = 0, tanh = -1 exactly
            for t in range(T):
                g, e, nt = gh[t], rz[t], n[t]
                np.matmul(WhT, hs[t], out=g)  # (3H, H) @ (H, B) -> (3H, B)
                g += xs[t]
                np.exp(g[: 2 * H], out=e)
                e += 1.0
                np.reciprocal(e, out=e)  # [r; z] (2H, B)
                np.multiply(e[:H], g[2 * H :], out=nt)
                nt += xn[t]  # -2 (xn + r ⊙ ghn)
                np.exp(nt, out=nt)
                nt += 1.0
                np.divide(2.0, nt, out=nt)
                nt -= 1.0  # n (H, B)
                np.subtract(hs[t], nt, out=hmn[t])
                np.multiply(e[H:], hmn[t], out=hs[t + 1])
                hs[t + 1] += nt  # n + z (h - n)
        return self._readout(p, hs[T].T), {"ws": ws, "T": T}

    def backward(self, p, dout: np.ndarray, cache, grads=None) -> dict[str, np.ndarray]:
        """dout (B, O) = dL/dout -> gradient dict (keys of ``p``)."""
        ws, T = cache["ws"], cache["T"]
        H, g = self.H, self._new_grads(grads)
        hs, gh, rz, n, hmn = (ws[k] for k in ("hs", "gh", "rz", "n", "hmn"))
        K, G, WB, XB, tmp, dh, dhh = (ws[k] for k in ("K", "G", "WB", "XB", "tmp", "dh", "dhh"))
        r, z, gh_n = rz[:, :H], rz[:, H:], gh[:, 2 * H :]
        # Every gradient inside a step is dh times a factor known after the forward pass, so the
        # factors are computed for all steps at once, K = [Kr; Kz; Pn; Kn] (T, 4H, B):
        # Pn = (1 - z)(1 - n^2) = da_n/dh, Kr = Pn ghn r (1 - r) = da_r/dh,
        # Kz = (h - n) z (1 - z) = da_z/dh, Kn = Pn r = dghn/dh, with ghn = -gh_n / 2.
        # The x-side pre-activations [a_r; a_z; a_n] are then G's first 3H rows, contiguous.
        Kr, Kz, Pn, Kn = K[:, :H], K[:, H : 2 * H], K[:, 2 * H : 3 * H], K[:, 3 * H :]
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
        dh[...] = self._readout_backward(p, dout, hs[T].T, g).T  # (B, H) -> (H, B)
        Whh = p["Whh"]
        Wg = np.zeros((H, 4 * H))  # [Whr Whz 0 Whn]: G's rows
        Wg[:, : 2 * H], Wg[:, 3 * H :] = Whh[:, : 2 * H], Whh[:, 2 * H :]
        K4, G4 = K.reshape(T, 4, H, -1), G.reshape(T, 4, H, -1)
        for t in range(T - 1, -1, -1):
            np.multiply(K4[t], dh, out=G4[t])  # [da_r; da_z; da_n; dghn]
            if t:
                np.matmul(Wg, G[t], out=dhh)  # (H, 4H) @ (4H, B) -> (H, B)
                dh *= z[t]
                dh += dhh
        # Weight gradients after the loop, all steps in one stacked matmul each plus a sum.
        np.matmul(hs[:T], G.transpose(0, 2, 1), out=WB)  # (T,H,B) @ (T,B,4H) -> (T,H,4H)
        dW = WB.sum(axis=0)  # (H, 4H)
        g["Whh"][:, : 2 * H], g["Whh"][:, 2 * H :] = dW[:, : 2 * H], dW[:, 3 * H :]
        np.matmul(G[:, : 3 * H], ws["Xt"].transpose(0, 2, 1), out=XB)  # (T,3H,B) @ (T,B,D) -> (T,3H,D)
        g["Wxh"][...] = XB.sum(axis=0).T
        g["bh"][...] = G[:, : 3 * H].sum(axis=(0, 2))
        g["bhn"][...] = G[:, 3 * H :].sum(axis=(0, 2))
        return g


def make_cell(name: str, input_size: int = 1, hidden_size: int = 32, output_size: int = 1) -> Cell:
    """A registered cell by name (``"rnn"`` or ``"gru"``, see :data:`CELLS`)."""
    try:
        return CELLS[name](input_size, hidden_size, output_size)
    except KeyError:
        raise ValueError(f"unknown cell {name!r}; choose one of {sorted(CELLS)}") from None
