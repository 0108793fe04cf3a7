"""Gradient clipping (pure functions) and the optimizers (Adam, SGD with momentum).

Clipping runs before the optimizer and returns a new gradient, leaving its input alone. The
optimizers update one flat parameter vector in place (see :mod:`models.params`).
"""

from __future__ import annotations

import numpy as np

from .config import CLIP_MODES
from .params import flatten, unflatten


def global_norm(g: np.ndarray) -> float:
    """Euclidean norm of a flat gradient vector (P,)."""
    return float(np.sqrt(g @ g))  # (P,) @ (P,) -> ()


def clip_flat(g: np.ndarray, clip: float | None, mode: str = "norm") -> tuple[np.ndarray, float, bool]:
    """Clip a flat gradient (P,); returns ``(clipped copy, norm before clipping, was clipped)``.

    ``mode="norm"`` rescales the whole vector to norm ``clip`` when it is longer, which keeps
    its direction; ``mode="value"`` clips every element to ``[-clip, clip]``. ``clip=None``
    or ``0`` disables clipping.
    """
    if mode not in CLIP_MODES:
        raise ValueError(f"clip_mode must be one of {CLIP_MODES}, got {mode!r}")
    norm = global_norm(g)
    if not clip:
        return g.copy(), norm, False
    if mode == "norm":
        if norm > clip:
            return g * (clip / norm), norm, True
        return g.copy(), norm, False
    clipped = np.clip(g, -clip, clip)
    return clipped, norm, bool(np.any(clipped != g))


def clip_grads(
    grads: dict[str, np.ndarray], clip: float | None, mode: str = "norm"
) -> tuple[dict[str, np.ndarray], float, bool]:
    """:func:`clip_flat` for a gradient dict: the norm is global over all keys."""
    shapes = {k: v.shape for k, v in grads.items()}
    g, norm, clipped = clip_flat(flatten(grads, shapes), clip, mode)
    return unflatten(g, shapes), norm, clipped


class Adam:
    """Adam (Kingma & Ba) on a flat parameter vector of ``size`` elements."""

    def __init__(self, size: int, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.m, self.v, self._tmp = np.zeros(size), np.zeros(size), np.zeros(size)
        self.t = 0

    def reset(self) -> None:
        """Forget the moment estimates (after a divergence the old ones describe bad weights)."""
        self.m[:] = 0.0
        self.v[:] = 0.0
        self.t = 0

    def step(self, theta: np.ndarray, g: np.ndarray) -> None:
        """Update ``theta`` (P,) in place from the gradient ``g`` (P,)."""
        m, v, tmp, b1, b2 = self.m, self.v, self._tmp, self.beta1, self.beta2
        self.t += 1
        m *= b1
        np.multiply(g, 1.0 - b1, out=tmp)
        m += tmp
        v *= b2
        np.multiply(g, g, out=tmp)
        tmp *= 1.0 - b2
        v += tmp
        # Bias corrections folded into the step size, as in the paper's Algorithm 1 variant.
        lr_t = self.lr * np.sqrt(1.0 - b2**self.t) / (1.0 - b1**self.t)
        np.sqrt(v, out=tmp)
        tmp += self.eps
        np.divide(m, tmp, out=tmp)
        tmp *= lr_t
        theta -= tmp


class SGD:
    """Stochastic gradient descent with optional (heavy-ball) momentum on a flat vector."""

    def __init__(self, size: int, lr: float = 1e-2, momentum: float = 0.9):
        self.lr, self.momentum = lr, momentum
        self.velocity = np.zeros(size)

    def reset(self) -> None:
        self.velocity[:] = 0.0

    def step(self, theta: np.ndarray, g: np.ndarray) -> None:
        """Update ``theta`` (P,) in place from the gradient ``g`` (P,)."""
        self.velocity *= self.momentum
        self.velocity += g
        theta -= self.lr * self.velocity


def clip_rows(g: np.ndarray, clip: float | None, mode: str = "norm") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`clip_flat` for a stack of networks' gradients g (N, P), each row on its own: returns
    ``(clipped copy (N, P), norms before clipping (N,), was clipped (N,))``. One network's large
    gradient never shrinks another's step."""
    if mode not in CLIP_MODES:
        raise ValueError(f"clip_mode must be one of {CLIP_MODES}, got {mode!r}")
    norms = np.sqrt(np.einsum("np,np->n", g, g))  # (N, P) . (N, P) -> (N,)
    if not clip:
        return g.copy(), norms, np.zeros(g.shape[0], dtype=bool)
    if mode == "norm":
        over = norms > clip
        factor = np.where(over, clip / np.where(over, norms, 1.0), 1.0)  # (N,)
        return g * factor[:, None], norms, over
    clipped = np.clip(g, -clip, clip)
    return clipped, norms, np.any(clipped != g, axis=1)


class StackedAdam:
    """:class:`Adam` for N networks at once: moments (N, P), and a step count and a learning rate
    per network (a network that backs off resets its own moments and halves its own rate)."""

    def __init__(self, n: int, size: int, lr, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.lr = np.broadcast_to(np.asarray(lr, dtype=np.float64), (n,)).copy()
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.m, self.v = np.zeros((n, size)), np.zeros((n, size))
        self.t = np.zeros(n, dtype=np.int64)

    def reset(self, rows) -> None:
        self.m[rows] = 0.0
        self.v[rows] = 0.0
        self.t[rows] = 0

    def keep(self, rows: np.ndarray) -> None:
        """Drop every network but ``rows`` (in that order)."""
        self.lr, self.m, self.v, self.t = self.lr[rows], self.m[rows], self.v[rows], self.t[rows]

    def step(self, theta: np.ndarray, g: np.ndarray, rows: np.ndarray | None = None) -> None:
        """Update ``theta`` (N, P) in place from g: (N, P), or (len(rows), P) for those rows only."""
        b1, b2 = self.beta1, self.beta2
        full = rows is None
        m, v = (self.m, self.v) if full else (self.m[rows], self.v[rows])
        idx = slice(None) if full else rows
        self.t[idx] += 1
        t = self.t[idx]
        m *= b1
        m += g * (1.0 - b1)
        v *= b2
        tmp = g * g
        tmp *= 1.0 - b2
        v += tmp
        # Bias corrections folded into the step size, as in the paper's Algorithm 1 variant.
        lr_t = self.lr[idx] * np.sqrt(1.0 - b2**t) / (1.0 - b1**t)  # (N,)
        np.sqrt(v, out=tmp)
        tmp += self.eps
        np.divide(m, tmp, out=tmp)
        tmp *= lr_t[:, None]
        if full:
            theta -= tmp
        else:
            self.m[rows], self.v[rows] = m, v
            theta[rows] -= tmp


class StackedSGD:
    """:class:`SGD` with momentum for N networks at once, a learning rate per network."""

    def __init__(self, n: int, size: int, lr, momentum: float = 0.9):
        self.lr = np.broadcast_to(np.asarray(lr, dtype=np.float64), (n,)).copy()
        self.momentum = momentum
        self.velocity = np.zeros((n, size))

    def reset(self, rows) -> None:
        self.velocity[rows] = 0.0

    def keep(self, rows: np.ndarray) -> None:
        self.lr, self.velocity = self.lr[rows], self.velocity[rows]

    def step(self, theta: np.ndarray, g: np.ndarray, rows: np.ndarray | None = None) -> None:
        idx = slice(None) if rows is None else rows
        velocity = self.velocity[idx] * self.momentum + g
        self.velocity[idx] = velocity
        theta[idx] -= self.lr[idx][:, None] * velocity


def make_stacked_optimizer(name: str, n: int, size: int, lr):
    """Stacked optimizer by name (``"adam"`` or ``"sgd"``), learning rates (n,) or one for all."""
    if name == "adam":
        return StackedAdam(n, size, lr)
    if name == "sgd":
        return StackedSGD(n, size, lr)
    raise ValueError(f"optimizer must be 'adam' or 'sgd', got {name!r}")
