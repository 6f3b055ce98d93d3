"""Max and average pooling, max unpooling and global average pooling, 1-D/2-D/3-D.

Every primitive works on ``x (N, C, n_1, ..., n_k)`` with ``k`` = 1, 2 or 3
spatial axes and one ``kernel``/``stride``/``padding``/``dilation`` entry per
spatial axis (already normalised by the functional layer).

Output size along an axis (PyTorch's ``pooling_output_shape``)::

    o = floor((n + 2p - d(k-1) - 1 + (s-1 if ceil_mode else 0)) / s) + 1
    if ceil_mode and (o-1)*s >= n + p:  o -= 1

The correction drops a last window that would start in the right padding:
every window starts inside the input or the left padding. Window ``o``
covers the input positions ``t_o + j*d``, ``j = 0..k-1``, with
``t_o = o*s - p``. Positions outside ``[0, n)`` are padding: ``-inf`` for max
pooling, ``0`` for average pooling. In ceil mode the last window may also
reach past ``n + p`` (the "overhang"), which is padded the same way but, for
the average, never counted in the divisor.

The windows are the strided view of ``ops.windows.windows`` over the padded
input. Average backward goes through its adjoint ``ops.windows.fold``; max
backward adds the gradient into one strided slice per kernel offset (the
windows whose maximum sits at that offset). Both crop the padding with
``ops.padding.pad_backward``. Loops run over kernel offsets only.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import NamedTuple

import numpy as np

from .padding import pad_backward, pad_forward
from .windows import fold, windows


def pool_output_size(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """Windows along one axis: ``o`` of the module docstring, with the ceil_mode correction."""
    o = (n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (o - 1) * s >= n + p:
        o -= 1
    return o


def pool_geometry(spatial, kernel, stride, padding, dilation, ceil_mode: bool):
    """Output sizes and the ``(low, high)`` padding that holds exactly those windows.

    ``low = p``; ``high`` reaches the end of the last window,
    ``(o-1)*s + d*(k-1) + 1 - n - p``, or is 0 when the windows end inside the
    input (a floor-mode remainder that no window reads is left out).
    """
    out = tuple(pool_output_size(n, k, s, p, d, ceil_mode)
                for n, k, s, p, d in zip(spatial, kernel, stride, padding, dilation))
    pads = tuple((p, max(0, (o - 1) * s + d * (k - 1) + 1 - n - p))
                 for n, k, s, p, d, o in zip(spatial, kernel, stride, padding, dilation, out))
    return out, pads


def _axis_grid(values: np.ndarray, axis: int, nsp: int) -> np.ndarray:
    """``values`` (1-D) shaped to broadcast along spatial ``axis`` of an ``nsp``-axis grid."""
    shape = [1] * nsp
    shape[axis] = values.size
    return values.reshape(shape)


# ------------------------------------------------------------------ max pool
class MaxPoolSaved(NamedTuple):
    """What max-pooling backward needs; ``indices`` is also the ``return_indices`` result."""

    offsets: np.ndarray        # (N, C, *out) kernel offset (row-major id) of each window's maximum
    indices: np.ndarray        # (N, C, *out) int64 flat index of the maximum in its input plane
    input_shape: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]


def _first_in_bounds(out, kernel, stride, padding, dilation) -> np.ndarray:
    """Kernel offset id (row-major over ``kernel``) of each window's first element inside the input.

    Along an axis it is ``j0 = ceil(max(0, -t_o) / d)``; a window whose
    elements are all ``-inf`` reports this position, as PyTorch does.
    """
    nsp = len(kernel)
    per_axis = [_axis_grid(-(-np.maximum(0, p - np.arange(o) * s) // d), a, nsp)
                for a, (o, s, p, d) in enumerate(zip(out, stride, padding, dilation))]
    return sum(j * math.prod(kernel[a + 1:]) for a, j in enumerate(per_axis))


def _flat_input_index(offsets, out, spatial, kernel, stride, padding, dilation) -> np.ndarray:
    """Flat input index ``sum_a pos_a * prod(n_{a+1:})`` of ``pos_a = o_a*s_a - p_a + j_a*d_a`` (int64).

    The index is linear in ``pos``, so it splits into a part of the window
    (``o_a*s_a - p_a``) and a part of the kernel offset (``j_a*d_a``), the
    latter looked up in a table of ``prod(kernel)`` entries.
    """
    nsp = len(kernel)
    plane = [math.prod(spatial[a + 1:]) for a in range(nsp)]
    base = sum(_axis_grid((np.arange(o, dtype=np.int64) * s - p) * st, a, nsp)
               for a, (o, s, p, st) in enumerate(zip(out, stride, padding, plane)))
    js = np.unravel_index(np.arange(math.prod(kernel)), kernel)
    table = sum(j.astype(np.int64) * d * st for j, d, st in zip(js, dilation, plane))
    return base + table[offsets]


def max_pool_forward(x, *, kernel, stride, padding, dilation, ceil_mode):
    """N-d max pooling with the argmax of each window.

    ``y[n, c, o] = max_j x[n, c, o*s - p + j*d]`` (per spatial axis, ``j`` over
    the kernel, padding = ``-inf``); shapes ``x (N, C, *n)`` -> ``y (N, C, *o)``.

    The window is scanned in row-major kernel order with PyTorch's CPU rule
    ``take if v > best or isnan(v)``: the first maximum wins a tie, the *last*
    NaN wins if there are NaNs (and the output is NaN). ``saved.indices`` is
    the flat index of the winner in its unpadded input plane (for 2-D,
    ``h*W + w``), int64.
    """
    spatial = x.shape[2:]
    out, pads = pool_geometry(spatial, kernel, stride, padding, dilation, ceil_mode)
    xp, _ = pad_forward(x, pads=pads, mode="zeros", value=-np.inf)
    view = windows(xp, kernel, stride, dilation)
    best = np.full(x.shape[:2] + out, -np.inf, dtype=x.dtype)
    offsets = np.empty(best.shape, dtype=np.min_scalar_type(math.prod(kernel) - 1))
    offsets[...] = _first_in_bounds(out, kernel, stride, padding, dilation)
    value = np.empty_like(best)
    take, nan = np.empty(best.shape, dtype=bool), np.empty(best.shape, dtype=bool)
    for q, offset in enumerate(itertools.product(*(range(k) for k in kernel))):
        np.copyto(value, view[(Ellipsis,) + offset])
        np.logical_or(np.greater(value, best, out=take), np.isnan(value, out=nan), out=take)
        np.copyto(best, value, where=take)
        np.copyto(offsets, q, where=take)
    indices = _flat_input_index(offsets, out, spatial, kernel, stride, padding, dilation)
    return best, MaxPoolSaved(offsets, indices, x.shape, pads, tuple(kernel), tuple(stride), tuple(dilation))


def max_pool_backward(g, saved: MaxPoolSaved, needs=(True,)):
    """``dx[n, c, i] = sum over windows o whose maximum sits at i of g[n, c, o]``.

    For every kernel offset ``j`` (the loop), the windows whose maximum has
    offset ``j`` send ``g`` to the padded positions ``o*s + j*d`` (a strided
    slice, distinct across ``o``), so overlapping windows add; the padded
    gradient is then cropped. A padding argmax (all-``-inf`` window) sends
    nothing into the input.
    """
    shape, pads = saved.input_shape, saved.pads
    gp = np.zeros(shape[:2] + tuple(n + lo + hi for n, (lo, hi) in zip(shape[2:], pads)), dtype=g.dtype)
    zero = g.dtype.type(0)
    for q, offset in enumerate(itertools.product(*(range(k) for k in saved.kernel))):
        target = (Ellipsis,) + tuple(slice(j * d, j * d + (o - 1) * s + 1, s)
                                     for j, d, s, o in zip(offset, saved.dilation, saved.stride, g.shape[2:]))
        gp[target] += np.where(saved.offsets == q, g, zero)
    return pad_backward(gp, (shape, pads, "zeros"))


# ------------------------------------------------------------------ average pool
def avg_divisors(spatial, kernel, stride, padding, out, count_include_pad: bool,
                 divisor_override: int | None, dtype) -> np.ndarray:
    """Divisor of every window, shape ``out``, as PyTorch computes it.

    Along an axis, for the window starting at ``t = o*s - p``:

    * ``count_include_pad``: ``min(t + k, n + p) - t`` (explicit padding
      counts, the ceil-mode overhang past ``n + p`` does not);
    * otherwise: ``min(t + k, n) - max(t, 0)`` (in-input elements only).

    The divisor of a window is the product over axes; ``divisor_override``,
    when given, replaces it everywhere.
    """
    if divisor_override is not None:
        return np.full(out, divisor_override, dtype=dtype)
    sizes = []
    for n, k, s, p, o in zip(spatial, kernel, stride, padding, out):
        t = np.arange(o) * s - p
        size = np.minimum(t + k, n + p) - t if count_include_pad else np.minimum(t + k, n) - np.maximum(t, 0)
        sizes.append(size)
    return functools.reduce(np.multiply.outer, sizes).astype(dtype)


def avg_pool_forward(x, *, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
    """N-d average pooling.

    ``y[n, c, o] = (1 / D_o) * sum_j x[n, c, o*s - p + j]`` (per spatial axis,
    ``j`` over the kernel, padding = 0, no dilation), with the divisor ``D_o``
    of ``avg_divisors``; shapes ``x (N, C, *n)`` -> ``y (N, C, *o)``.
    """
    spatial = x.shape[2:]
    ones = (1,) * len(kernel)
    out, pads = pool_geometry(spatial, kernel, stride, padding, ones, ceil_mode)
    xp, pad_saved = pad_forward(x, pads=pads, mode="zeros")
    sums = windows(xp, kernel, stride, ones).sum(axis=tuple(range(-len(kernel), 0)))
    divisor = avg_divisors(spatial, kernel, stride, padding, out, count_include_pad, divisor_override, x.dtype)
    return sums / divisor, (divisor, xp.shape, pad_saved, tuple(kernel), tuple(stride))


def avg_pool_backward(g, saved, needs=(True,)):
    """``dx[n, c, i] = sum over windows o containing i of g[n, c, o] / D_o`` (fold, then crop)."""
    divisor, padded_shape, pad_saved, kernel, stride = saved
    scaled = g / divisor
    cols = np.broadcast_to(scaled.reshape(scaled.shape + (1,) * len(kernel)), scaled.shape + kernel)
    gp = fold(cols, padded_shape, kernel, stride, (1,) * len(kernel))
    return pad_backward(gp, pad_saved)


# ------------------------------------------------------------------ max unpool
def unpool_output_size(n: int, k: int, s: int, p: int) -> int:
    """Default max-unpooling size along an axis (PyTorch): ``(n - 1)*s - 2p + k``."""
    return (n - 1) * s - 2 * p + k


def max_unpool_forward(x, indices, *, output_size):
    """Place every value at its index in a zero plane of ``output_size``.

    ``y[n, c, :] = 0``, then ``y[n, c, indices[n, c, i]] = x[n, c, i]`` for every
    ``i`` (flat indices into the output plane). A repeated index keeps one of
    its values; indices from max pooling repeat only where overlapping
    windows share a maximum, so the values agree. Shapes:
    ``x, indices (N, C, *m)`` -> ``y (N, C, *output_size)``.
    """
    n, c = x.shape[:2]
    flat_idx = indices.reshape(n, c, -1)
    out = np.zeros((n, c, math.prod(output_size)), dtype=x.dtype)
    np.put_along_axis(out, flat_idx, x.reshape(n, c, -1), axis=2)
    return out.reshape((n, c) + tuple(output_size)), (flat_idx, x.shape)


def max_unpool_backward(g, saved, needs=(True, False)):
    """``dx[n, c, i] = g[n, c, indices[n, c, i]]`` (a gather); the indices get no gradient.

    As in PyTorch, a repeated index (overlapping pooling windows that share a
    maximum) sends ``g`` to every input carrying it, although only one of
    them reached the output.
    """
    flat_idx, shape = saved
    gx = np.take_along_axis(g.reshape(shape[0], shape[1], -1), flat_idx, axis=2).reshape(shape)
    return gx, None


# ------------------------------------------------------------------ global average
def global_avg_pool_forward(x):
    """``y[n, c, 0, ..., 0] = (1 / prod(n)) * sum_i x[n, c, i]`` over all spatial positions ``i``.

    Shapes: ``x (N, C, *n)`` -> ``y (N, C, 1, ..., 1)``.
    """
    return x.mean(axis=tuple(range(2, x.ndim)), keepdims=True), x.shape


def global_avg_pool_backward(g, shape, needs=(True,)):
    """``dx[n, c, i] = g[n, c, 0, ..., 0] / prod(n)`` for every ``i``."""
    count = math.prod(shape[2:])
    return (np.broadcast_to(g / count, shape).copy(),)
