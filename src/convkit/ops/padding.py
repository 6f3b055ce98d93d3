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

Forward, with ``src`` per axis (``-1`` for a ``zeros`` border)::

    out[..., i_1, ..., i_k] = x[..., src(i_1), ..., src(i_k)]     (``value`` where any src is -1)

Backward: every output position sends its gradient to its source, so ::

    dx[..., m] = sum over padded positions i with src(i) = m of g[..., i]

the interior of ``g`` plus the border gradients added to the positions they
were copied from (a ``zeros`` border's gradient is dropped).

Both are compiled kernels on three canonical spatial axes (``(L, n_1, n_2, n_3)``
with every leading axis folded into ``L``, missing spatial axes of size 1),
parallel over ``L``; the interior is copied row by row, the border positions
go through the ``src`` tables (one per axis, built here).
"""

from __future__ import annotations

import math

import numpy as np

from . import Primitive, workspace
from .meta import MetaArray
from .jit import kernel, prange

PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _source_index(i: int, n: int, mode: str) -> int:
    """Index of the input element that padded position ``i`` copies (``0 <= i < n`` is itself; -1: none)."""
    if 0 <= i < n:
        return i
    if mode == "zeros":
        return -1
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


def _canonical(shape, pads):
    """``(L, n_1, n_2, n_3)`` and the three ``(low, high)`` pairs of the canonical layout."""
    k = len(pads)
    if k > 3:
        raise ValueError(f"pad: at most 3 padded axes, got {k}")
    lead = math.prod(shape[:len(shape) - k])
    spatial = (1,) * (3 - k) + tuple(shape[len(shape) - k:])
    return (lead,) + spatial, ((0, 0),) * (3 - k) + tuple(tuple(p) for p in pads)


def _tables(spatial, pads, mode):
    """The three ``src`` tables (int64), one per canonical axis."""
    return tuple(np.array([_source_index(i - lo, n, mode) for i in range(n + lo + hi)], dtype=np.int64)
                 for n, (lo, hi) in zip(spatial, pads))


@kernel(parallel=True)
def _pad(x, out, t1, t2, t3, lo1, lo2, lo3, value):
    """``out[l, a, b, c] = x[l, t1[a], t2[b], t3[c]]``, ``value`` where a table says -1."""
    lead, n1, n2, n3 = x.shape
    m1, m2, m3 = out.shape[1], out.shape[2], out.shape[3]
    for l in prange(lead):
        for a in range(m1):
            for b in range(m2):
                dst = out[l, a, b]
                s1, s2 = t1[a], t2[b]
                if s1 < 0 or s2 < 0:
                    for c in range(m3):
                        dst[c] = value
                    continue
                src = x[l, s1, s2]
                for c in range(lo3):
                    dst[c] = value if t3[c] < 0 else src[t3[c]]
                for c in range(n3):
                    dst[lo3 + c] = src[c]
                for c in range(lo3 + n3, m3):
                    dst[c] = value if t3[c] < 0 else src[t3[c]]


@kernel(parallel=True)
def _unpad(g, dx, t1, t2, t3, lo1, lo2, lo3):
    """``dx[l] = sum over (a, b, c) with sources (m_1, m_2, m_3) of g[l, a, b, c]``: interior, then borders."""
    lead, n1, n2, n3 = dx.shape
    m1, m2, m3 = g.shape[1], g.shape[2], g.shape[3]
    for l in prange(lead):
        for i1 in range(n1):
            for i2 in range(n2):
                src = g[l, lo1 + i1, lo2 + i2]
                dst = dx[l, i1, i2]
                for c in range(n3):
                    dst[c] = src[lo3 + c]
        for a in range(m1):
            inside1 = lo1 <= a < lo1 + n1
            for b in range(m2):
                s1, s2 = t1[a], t2[b]
                if s1 < 0 or s2 < 0:
                    continue
                src = g[l, a, b]
                dst = dx[l, s1, s2]
                if inside1 and lo2 <= b < lo2 + n2:  # interior row: its middle is copied already
                    for c in range(lo3):
                        if t3[c] >= 0:
                            dst[t3[c]] += src[c]
                    for c in range(lo3 + n3, m3):
                        if t3[c] >= 0:
                            dst[t3[c]] += src[c]
                else:
                    for c in range(m3):
                        if t3[c] >= 0:
                            dst[t3[c]] += src[c]


def pad_forward(x: np.ndarray, *, pads, mode: str = "zeros", value: float = 0.0):
    """Pad the last ``len(pads)`` axes of ``x`` (formula in the module docstring).

    Shapes: ``x (..., n_1, ..., n_k)`` -> ``out (..., n_1 + lo_1 + hi_1, ...)``; ``x`` itself when
    nothing is padded.
    """
    saved = (x.shape, tuple(tuple(p) for p in pads), mode)
    if all(lo == 0 and hi == 0 for lo, hi in pads):
        return x, saved
    lead = x.ndim - len(pads)
    out = workspace.empty(x.shape[:lead] + tuple(n + lo + hi for n, (lo, hi) in zip(x.shape[lead:], pads)),
                          x.dtype)
    shape, cpads = _canonical(x.shape, pads)
    xc = np.ascontiguousarray(x).reshape(shape)
    _pad(xc, out.reshape((shape[0],) + tuple(n + lo + hi for n, (lo, hi) in zip(shape[1:], cpads))),
         *_tables(shape[1:], cpads, mode), *(lo for lo, _ in cpads), xc.dtype.type(value))
    return out, saved


def pad_backward(g: np.ndarray, saved, needs=(True,)):
    """Fold the gradient of the padded array back onto the input (formula in the module docstring)."""
    shape, pads, mode = saved
    if all(lo == 0 and hi == 0 for lo, hi in pads):
        return (g,)
    cshape, cpads = _canonical(shape, pads)
    gc = np.ascontiguousarray(g)
    dx = workspace.empty(shape, gc.dtype)
    _unpad(gc.reshape((cshape[0],) + tuple(n + lo + hi for n, (lo, hi) in zip(cshape[1:], cpads))),
           dx.reshape(cshape), *_tables(cshape[1:], cpads, mode), *(lo for lo, _ in cpads))
    return (dx,)


def pad_meta(x, *, pads, mode="zeros", value=0.0) -> MetaArray:
    """``(..., n_1, ..., n_k) -> (..., n_1 + lo_1 + hi_1, ...)``."""
    lead = x.ndim - len(pads)
    return MetaArray(x.shape[:lead] + tuple(n + lo + hi for n, (lo, hi) in zip(x.shape[lead:], pads)), x.dtype)


pad = Primitive("pad", pad_forward, pad_backward, pad_meta)
