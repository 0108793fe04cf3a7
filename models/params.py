"""Parameter and gradient dicts backed by one contiguous buffer.

A model's parameters are a dict of named arrays (``Wxh``, ``Whh``, ...); its gradients are a
dict with the same keys. Both are views into one flat float64 vector, so the optimizer, the
global-norm clipping and the finite check each touch a single array instead of looping over
keys in Python.
"""

from __future__ import annotations

import math

import numpy as np

Shapes = dict[str, tuple[int, ...]]


def allocate(shapes: Shapes) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Zeroed flat float64 buffer and a dict of views into it, one per key, in key order."""
    sizes = [int(np.prod(shape)) for shape in shapes.values()]
    flat = np.zeros(sum(sizes))
    views, offset = {}, 0
    for (key, shape), size in zip(shapes.items(), sizes):
        views[key] = flat[offset : offset + size].reshape(shape)
        offset += size
    return flat, views


def flatten(tree: dict[str, np.ndarray], shapes: Shapes) -> np.ndarray:
    """Concatenate a dict shaped like ``shapes`` into a new flat vector (key order of shapes)."""
    return np.concatenate([np.asarray(tree[k], dtype=np.float64).ravel() for k in shapes])


def unflatten(flat: np.ndarray, shapes: Shapes) -> dict[str, np.ndarray]:
    """Views of ``flat`` shaped like ``shapes``; the inverse of :func:`flatten`."""
    views, offset = {}, 0
    for key, shape in shapes.items():
        size = int(np.prod(shape))
        views[key] = flat[offset : offset + size].reshape(shape)
        offset += size
    return views


def allocate_stack(n: int, shapes: Shapes, dtype=np.float64) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Zeroed (n, P) buffer for n networks of one architecture, one row per network laid out like
    :func:`allocate`'s vector, and views shaped (n, *shape) per key."""
    size = sum(int(np.prod(shape)) for shape in shapes.values())
    flat = np.zeros((n, size), dtype=dtype)
    return flat, stack_views(flat, shapes)


def stack_views(flat: np.ndarray, shapes: Shapes) -> dict[str, np.ndarray]:
    """Views of a stacked buffer (n, P) shaped (n, *shape) per key: row i is network i."""
    n, views, offset = flat.shape[0], {}, 0
    for key, shape in shapes.items():
        size = math.prod(shape)
        views[key] = flat[:, offset : offset + size].reshape(n, *shape)
        offset += size
    return views
