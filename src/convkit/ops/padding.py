"""Padding of the trailing spatial axes, with its gradient.

``pads`` is a tuple of ``(low, high)`` pairs for the last ``len(pads)``
axes, in axis order (D, H, W) — the one padding order inside convkit
(PyTorch's ``F.pad`` lists the last axis first; convkit does not).

Modes, for an axis of length ``n`` and a padded position ``i`` in
``[-low, n + high)`` (source index ``src(i)``):

============ ========================================== =====================
mode         value at padded position ``i``              PyTorch / NumPy name
============ ========================================== =====================
``zeros``    ``value`` (0, or -inf for max pooling)      'zeros' / 'constant'
``reflect``  ``x[reflect(i)]``, edge not repeated         'reflect' / 'reflect'
``replicate````x[clip(i, 0, n-1)]``                       'replicate' / 'edge'
``circular`` ``x[i mod n]``                               'circular' / 'wrap'
============ ========================================== =====================

Backward: every output position sends its gradient to ``src(i)``, so the
input gradient is the interior of ``g`` plus the border gradients added to
the positions they were copied from. The loop runs over border positions
(at most ``low + high`` per axis), never over the whole array.
"""

from __future__ import annotations

import numpy as np

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _source_index(i: int, n: int, mode: str) -> int:
    """Index of the input element that padded position ``i`` copies (``0 <= i < n`` is itself)."""
    if mode == "replicate":
        return min(max(i, 0), n - 1)
    if mode == "circular":
        return i % n
    if mode == "reflect":
        if n == 1:
            return 0
        period = 2 * (n - 1)
        i = i % period
        return i if i < n else period - i
    raise ValueError(f"pad: unknown mode {mode!r}")


def check_pads(shape: tuple[int, ...], pads, mode: str, op: str) -> None:
    """Raise if ``mode`` cannot pad ``shape`` by ``pads`` (PyTorch's limits)."""
    if mode not in PADDING_MODES:
        raise ValueError(f"{op}: padding_mode must be one of {PADDING_MODES}, got {mode!r}")
    spatial = shape[len(shape) - len(pads):]
    for axis, ((lo, hi), n) in enumerate(zip(pads, spatial)):
        if mode == "reflect" and (lo >= n or hi >= n):
            raise ValueError(
                f"{op}: reflect padding ({lo}, {hi}) must be smaller than the input size {n} "
                f"along spatial axis {axis} (input shape {tuple(shape)})"
            )
        if mode == "circular" and (lo > n or hi > n):
            raise ValueError(
                f"{op}: circular padding ({lo}, {hi}) must not exceed the input size {n} "
                f"along spatial axis {axis} (input shape {tuple(shape)})"
            )


def pad_forward(x: np.ndarray, *, pads, mode: str = "zeros", value: float = 0.0):
    """Pad the last ``len(pads)`` axes of ``x``.

    Shapes: ``x (..., n_1, ..., n_k)`` -> ``out (..., n_1 + lo_1 + hi_1, ...)``.
    """
    lead = x.ndim - len(pads)
    if all(lo == 0 and hi == 0 for lo, hi in pads):
        return x, (x.shape, pads, mode)
    if mode == "zeros":
        out = np.full(x.shape[:lead] + tuple(n + lo + hi for n, (lo, hi) in zip(x.shape[lead:], pads)),
                      value, dtype=x.dtype)
        out[(Ellipsis,) + tuple(slice(lo, lo + n) for n, (lo, _) in zip(x.shape[lead:], pads))] = x
        return out, (x.shape, pads, mode)
    np_mode = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}[mode]
    out = np.pad(x, [(0, 0)] * lead + [tuple(p) for p in pads], mode=np_mode)
    return out, (x.shape, pads, mode)


def pad_backward(g: np.ndarray, saved, needs=(True,)):
    """Fold the gradient of the padded array back onto the input (see module docstring)."""
    shape, pads, mode = saved
    lead = len(shape) - len(pads)
    if all(lo == 0 and hi == 0 for lo, hi in pads):
        return (g,)
    if mode == "zeros":
        inner = (Ellipsis,) + tuple(slice(lo, lo + n) for n, (lo, _) in zip(shape[lead:], pads))
        return (np.ascontiguousarray(g[inner]),)
    # Undo one axis at a time, last axis first: fold each border slice onto its source.
    for axis in reversed(range(len(pads))):
        ax = lead + axis
        lo, hi = pads[axis]
        n = shape[ax]
        moved = np.moveaxis(g, ax, 0)
        inner = moved[lo:lo + n].copy()
        for i in list(range(-lo, 0)) + list(range(n, n + hi)):
            inner[_source_index(i, n, mode)] += moved[i + lo]
        g = np.moveaxis(inner, 0, ax)
    return (np.ascontiguousarray(g),)
