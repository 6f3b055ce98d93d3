"""Literal loop implementations of pooling, for tests of the compiled kernels only.

Every function loops over batch, channel, output position and window
element, one scalar at a time, so each line can be checked against the
formula:

* max: scan the window in row-major kernel order; ``take v if v > best or
  isnan(v)``, starting from ``best = -inf`` at the window's first in-input
  element (PyTorch's CPU rule: first maximum on ties, last NaN);
* average: window sum over in-input elements divided by the divisor
  (``count_include_pad`` clips the window to ``[-p, n + p)``, otherwise to
  ``[0, n)``; ``divisor_override`` replaces both);
* adaptive: window ``i`` along an axis is ``[floor(i*n/o), ceil((i+1)*n/o))``.

Shapes: ``x (N, C, *n)`` with 1 to 3 spatial axes.
"""

from __future__ import annotations

import itertools
import math

import numpy as np


def output_size(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's pooling output size along one axis, with the ceil_mode correction."""
    numerator = n + 2 * p - d * (k - 1) - 1
    o = (math.ceil(numerator / s) if ceil_mode else numerator // s) + 1
    if ceil_mode and (o - 1) * s >= n + p:
        o -= 1
    return o


def _flat(pos, spatial) -> int:
    index = 0
    for q, n in zip(pos, spatial):
        index = index * n + q
    return index


def max_pool(x, kernel, stride, padding, dilation, ceil_mode):
    """Max pooling by loops: returns ``(out, indices)``, indices flat in each input plane."""
    spatial = x.shape[2:]
    out_shape = tuple(output_size(n, k, s, p, d, ceil_mode)
                      for n, k, s, p, d in zip(spatial, kernel, stride, padding, dilation))
    out = np.empty(x.shape[:2] + out_shape, dtype=x.dtype)
    indices = np.empty(out.shape, dtype=np.int64)
    for b, c in np.ndindex(*x.shape[:2]):
        for o in np.ndindex(*out_shape):
            starts = [oi * s - p for oi, s, p in zip(o, stride, padding)]
            first = [t + (-t + d - 1) // d * d if t < 0 else t for t, d in zip(starts, dilation)]
            best, where = -np.inf, _flat(first, spatial)
            for j in itertools.product(*(range(k) for k in kernel)):
                pos = [t + ji * d for t, ji, d in zip(starts, j, dilation)]
                if not all(0 <= q < n for q, n in zip(pos, spatial)):
                    continue
                v = x[(b, c) + tuple(pos)]
                if v > best or np.isnan(v):
                    best, where = v, _flat(pos, spatial)
            out[(b, c) + o], indices[(b, c) + o] = best, where
    return out, indices


def max_pool_grad(g, indices, input_shape):
    """``dx[b, c, i] = sum of g[b, c, o] over outputs o whose index is i`` (loops)."""
    dx = np.zeros(input_shape[:2] + (math.prod(input_shape[2:]),), dtype=g.dtype)
    for b, c in np.ndindex(*g.shape[:2]):
        for o in np.ndindex(*g.shape[2:]):
            i = indices[(b, c) + o]
            if 0 <= i < dx.shape[2]:
                dx[b, c, i] += g[(b, c) + o]
    return dx.reshape(input_shape)


def _avg_windows(spatial, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
    """Per output position: the in-input positions of its window and its divisor."""
    out_shape = tuple(output_size(n, k, s, p, 1, ceil_mode)
                      for n, k, s, p in zip(spatial, kernel, stride, padding))
    for o in np.ndindex(*out_shape):
        starts = [oi * s - p for oi, s, p in zip(o, stride, padding)]
        ranges = [range(max(t, 0), min(t + k, n)) for t, k, n in zip(starts, kernel, spatial)]
        if divisor_override is not None:
            divisor = divisor_override
        elif count_include_pad:
            divisor = math.prod(min(t + k, n + p) - t for t, k, n, p in zip(starts, kernel, spatial, padding))
        else:
            divisor = math.prod(len(r) for r in ranges)
        yield o, list(itertools.product(*ranges)), divisor


def avg_pool(x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override=None):
    """Average pooling by loops (no dilation, as in PyTorch)."""
    wins = list(_avg_windows(x.shape[2:], kernel, stride, padding, ceil_mode,
                             count_include_pad, divisor_override))
    out_shape = tuple(np.max([o for o, _, _ in wins], axis=0) + 1)
    out = np.zeros(x.shape[:2] + out_shape, dtype=x.dtype)
    for b, c in np.ndindex(*x.shape[:2]):
        for o, positions, divisor in wins:
            total = 0.0
            for pos in positions:
                total += x[(b, c) + pos]
            out[(b, c) + o] = total / divisor
    return out


def avg_pool_grad(g, input_shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override=None):
    """``dx[b, c, i] = sum over windows o containing i of g[b, c, o] / divisor_o`` (loops)."""
    dx = np.zeros(input_shape, dtype=g.dtype)
    for o, positions, divisor in _avg_windows(input_shape[2:], kernel, stride, padding, ceil_mode,
                                              count_include_pad, divisor_override):
        for b, c in np.ndindex(*input_shape[:2]):
            for pos in positions:
                dx[(b, c) + pos] += g[(b, c) + o] / divisor
    return dx


def _adaptive_boxes(spatial, out_shape):
    for o in np.ndindex(*out_shape):
        ranges = [range(i * n // m, -(-(i + 1) * n // m)) for i, n, m in zip(o, spatial, out_shape)]
        yield o, list(itertools.product(*ranges))


def adaptive_avg_pool(x, out_shape):
    """Adaptive average pooling by loops."""
    out = np.zeros(x.shape[:2] + tuple(out_shape), dtype=x.dtype)
    for o, box in _adaptive_boxes(x.shape[2:], out_shape):
        for b, c in np.ndindex(*x.shape[:2]):
            out[(b, c) + o] = sum(x[(b, c) + pos] for pos in box) / len(box)
    return out


def adaptive_max_pool(x, out_shape):
    """Adaptive max pooling by loops, scanning each box in row-major order: ``(out, indices)``."""
    spatial = x.shape[2:]
    out = np.empty(x.shape[:2] + tuple(out_shape), dtype=x.dtype)
    indices = np.empty(out.shape, dtype=np.int64)
    for o, box in _adaptive_boxes(spatial, out_shape):
        for b, c in np.ndindex(*x.shape[:2]):
            best, where = -np.inf, _flat(box[0], spatial)
            for pos in box:
                v = x[(b, c) + pos]
                if v > best or np.isnan(v):
                    best, where = v, _flat(pos, spatial)
            out[(b, c) + o], indices[(b, c) + o] = best, where
    return out, indices
