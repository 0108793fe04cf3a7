"""A stack of recurrent networks with their own windows (models.stack) and a cell of the same shape,
seeded: what the gradient checks and the stack's tests start from."""

from __future__ import annotations

import numpy as np

from tickcast.models.cells import make_cell
from tickcast.models.params import allocate_stack, flatten
from tickcast.models.stack import make_stack


def stacked_problem(name, lengths=(6, 4, 4, 2), D=2, H=3, O=2, B=5, seed=3, dtype=np.float64):  # noqa: E741
    """(stack, cell, flat weights (N, P), their views, X (N, B, T, D), targets (N, B, O), lengths):
    N networks with window lengths ``lengths`` (longest first), non-zero biases so that every term
    of the backward pass matters; in ``dtype``."""
    rng = np.random.default_rng(seed)
    stack, cell = make_stack(name, D, H, O), make_cell(name, D, H, O)
    flat, params = allocate_stack(len(lengths), stack.shapes)
    for i in range(len(lengths)):
        p = cell.init_params(rng, out_scale=1.0)
        for v in p.values():
            v += 0.3 * rng.standard_normal(v.shape)
        flat[i] = flatten(p, cell.shapes)
    X = rng.standard_normal((len(lengths), B, max(lengths), D))  # (N, B, T, D)
    target = rng.standard_normal((len(lengths), B, O))  # (N, B, O)
    if dtype != np.float64:
        flat32, params32 = allocate_stack(len(lengths), stack.shapes, dtype=dtype)
        flat32[...] = flat
        flat, params, X, target = flat32, params32, X.astype(dtype), target.astype(dtype)
    return stack, cell, flat, params, X, target, np.array(lengths)
