"""Resampling by interpolation (PyTorch's ``F.interpolate``): nearest and (bi/tri)linear, one axis at a time.

Along a spatial axis of ``n`` input and ``m`` output positions, output
position ``i`` reads the source coordinate ``u_i`` (PyTorch's rules; ``r`` is
``1/scale_factor`` when a scale factor was given, else ``n/m``)::

    nearest         u_i = floor(i r)                      (float32 arithmetic, as PyTorch)
    nearest-exact   u_i = floor((i + 1/2) r)
    linear          u_i = max((i + 1/2) r - 1/2, 0)       align_corners=False
                    u_i = i (n - 1)/(m - 1)               align_corners=True (0 when m = 1)

and, with ``a_i = min(floor(u_i), n - 1)``, ``b_i = min(a_i + 1, n - 1)``,
``l_i = u_i - a_i``::

    nearest:  y[..., i] = x[..., a_i]
    linear:   y[..., i] = (1 - l_i) x[..., a_i] + l_i x[..., b_i]

Bilinear and trilinear interpolation apply the linear rule to each axis in
turn, the last axis first (so that every output is PyTorch's
``(1-l)((1-l')x00 + l'x01) + l((1-l')x10 + l'x11)``). Backward runs the axes
in reverse, each spreading ``g`` back to the sources it read::

    dx[..., a_i] += (1 - l_i) g[..., i],   dx[..., b_i] += l_i g[..., i]    (nearest: dx[..., a_i] += g[..., i])

Kernels (``ops.jit``): one gather and one spread over the rows of the
array with the axis moved last, parallel over rows.
"""

from __future__ import annotations

import math

import numpy as np

from . import Primitive, workspace
from .meta import MetaArray
from .jit import kernel, prange


class Axis:
    """The sources of one axis: ``a``, ``b`` (int64) and ``l`` (float64) per output position."""

    def __init__(self, n: int, m: int, mode: str, align_corners: bool, scale_factor: float | None):
        i = np.arange(m)
        if mode in ("nearest", "nearest-exact"):
            r = np.float32(1.0 / scale_factor) if scale_factor else np.float32(n) / np.float32(m)
            shift = np.float32(0.5 if mode == "nearest-exact" else 0.0)
            u = np.floor((i.astype(np.float32) + shift) * r)
            self.a = np.minimum(u.astype(np.int64), n - 1)
            self.b, self.l = self.a, np.zeros(m)
            return
        if align_corners:
            r = (n - 1) / (m - 1) if m > 1 else 0.0
            u = i * r
        else:
            r = 1.0 / scale_factor if scale_factor else n / m
            u = np.maximum((i + 0.5) * r - 0.5, 0.0)
        self.a = np.minimum(np.floor(u).astype(np.int64), n - 1)
        self.b = np.minimum(self.a + 1, n - 1)
        self.l = np.clip(u - self.a, 0.0, 1.0)


@kernel(parallel=True)
def _gather(x, a, b, l, linear, y):
    """``y[r, i] = (1 - l_i) x[r, a_i] + l_i x[r, b_i]`` (``x[r, a_i]`` when not ``linear``)."""
    one = y.dtype.type(1)
    for r in prange(x.shape[0]):
        xs = x[r]
        ys = y[r]
        for i in range(ys.size):
            if linear:
                w = y.dtype.type(l[i])
                ys[i] = (one - w) * xs[a[i]] + w * xs[b[i]]
            else:
                ys[i] = xs[a[i]]


@kernel(parallel=True)
def _spread(g, a, b, l, linear, dx):
    """``dx[r, a_i] += (1 - l_i) g[r, i]``, ``dx[r, b_i] += l_i g[r, i]`` (``dx`` zeroed here)."""
    one = dx.dtype.type(1)
    for r in prange(g.shape[0]):
        gs = g[r]
        ds = dx[r]
        ds[:] = 0
        for i in range(gs.size):
            if linear:
                w = dx.dtype.type(l[i])
                ds[a[i]] += (one - w) * gs[i]
                ds[b[i]] += w * gs[i]
            else:
                ds[a[i]] += gs[i]


def _along(arr: np.ndarray, axis: int, size: int, run, ax: Axis, linear: bool) -> np.ndarray:
    """Apply ``run`` (``_gather`` or ``_spread``) along ``axis`` of ``arr``, giving ``size`` positions there."""
    moved = np.ascontiguousarray(np.moveaxis(arr, axis, -1))
    rows = moved.reshape(-1, moved.shape[-1]) if moved.size else moved.reshape(0, moved.shape[-1])
    out = workspace.empty((math.prod(moved.shape[:-1]), size), arr.dtype)
    if out.size:
        run(rows, ax.a, ax.b, ax.l, linear, out)
    return np.moveaxis(out.reshape(moved.shape[:-1] + (size,)), -1, axis)


def interpolate_forward(x, *, size, mode: str, align_corners: bool, scale_factor):
    """``y (N, C, *size)`` from ``x (N, C, *n)`` (module docstring); ``scale_factor``: one per axis, or None."""
    spatial = x.shape[2:]
    axes = [Axis(n, m, mode, align_corners, None if scale_factor is None else scale_factor[k])
            for k, (n, m) in enumerate(zip(spatial, size))]
    linear = mode not in ("nearest", "nearest-exact")
    y = x
    for k in reversed(range(len(spatial))):  # the last axis first (module docstring)
        y = _along(y, 2 + k, size[k], _gather, axes[k], linear)
    return np.ascontiguousarray(y), (axes, linear, spatial)


def interpolate_backward(g, saved, needs=(True,)):
    axes, linear, spatial = saved
    dx = g
    for k in range(len(spatial)):  # the reverse of forward's order
        dx = _along(dx, 2 + k, spatial[k], _spread, axes[k], linear)
    return (np.ascontiguousarray(dx),)


def interpolate_meta(x, *, size, mode, align_corners, scale_factor) -> MetaArray:
    return MetaArray(x.shape[:2] + tuple(size), x.dtype)


interpolate = Primitive("interpolate", interpolate_forward, interpolate_backward, interpolate_meta)
