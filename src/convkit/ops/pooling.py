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

Fast path: non-overlapping windows (``stride == kernel``, no padding, no
dilation, every window inside the input: LeNet's 2x2 pools) reduce one
spatial axis at a time, last axis first, over ``k`` strided slices
(``x[..., t::k]``). For the maximum, a later slice takes over only where it
is strictly greater, so ties go to the first element in row-major order as
on the general path; the stage winners (a bool mask for ``k = 2``) route the
gradient back through the same slices, with no index arithmetic and no
padded copy. An input with a NaN falls back to the general path (its NaN
rule needs the per-element scan); the flat ``indices`` are only computed
when ``return_indices`` asks for them.
"""

from __future__ import annotations

import functools
import itertools
import math
import numpy as np

from . import Primitive
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
def non_overlapping(spatial, kernel, stride, padding, dilation, ceil_mode: bool) -> bool:
    """Whether the windows tile the input without overlap or padding (the fast path's case)."""
    return all(k == s and p == 0 and d == 1 and k <= n and (not ceil_mode or n % k == 0)
               for n, k, s, p, d in zip(spatial, kernel, stride, padding, dilation))


def _tiled(x: np.ndarray, kernel) -> np.ndarray:
    """``x`` cropped to whole windows (a view): every spatial axis a multiple of its kernel size."""
    nsp = len(kernel)
    return x[(Ellipsis,) + tuple(slice(0, n - n % k) for n, k in zip(x.shape[-nsp:], kernel))]


def _along(axis: int, t: int, k: int) -> tuple:
    """Index of the ``t``-th element of every window along ``axis``: ``[..., t::k, ...]``."""
    return (slice(None),) * axis + (slice(t, None, k),)


def _scan_max(x: np.ndarray, axis: int, k: int):
    """Max over consecutive groups of ``k`` along ``axis``, first maximum winning ties.

    Returns ``(best, winner)``: ``winner`` holds each group's winning
    position, as a bool array for ``k = 2`` (True: the second) and uint8 otherwise.
    """
    first, second = x[_along(axis, 0, k)], x[_along(axis, 1, k)]
    winner = np.greater(second, first)
    best = np.maximum(first, second)
    if k == 2:
        return best, winner
    winner = winner.view(np.uint8)
    take = np.empty(best.shape, dtype=bool)
    for t in range(2, k):
        value = x[_along(axis, t, k)]
        np.greater(value, best, out=take)
        np.maximum(best, value, out=best)
        np.copyto(winner, t, where=take)
    return best, winner


def _route(g: np.ndarray, winner: np.ndarray, axis: int, k: int, finite: bool) -> np.ndarray:
    """Adjoint of one ``_scan_max`` stage: ``out[..., t::k, ...] = g`` where ``winner == t``, else 0.

    A product by the mask is ten times faster than ``np.where``; it is exact
    when ``g`` is finite (otherwise ``inf * 0`` would leave NaN, so ``np.where``
    runs). With ``k = 2`` the second slice is ``g * winner`` and the first
    ``g`` minus it (``g - g`` and ``g - 0`` are exact).
    """
    out = np.empty(g.shape[:axis] + (g.shape[axis] * k,) + g.shape[axis + 1:], dtype=g.dtype)
    if not finite:
        zero = g.dtype.type(0)
        for t in range(k):
            out[_along(axis, t, k)] = np.where(winner == t, g, zero)
    elif k == 2:
        second = np.multiply(g, winner, out=out[_along(axis, 1, 2)])
        np.subtract(g, second, out=out[_along(axis, 0, 2)])
    else:
        for t in range(k):
            np.multiply(g, winner == t, out=out[_along(axis, t, k)])
    return out


class MaxPoolSaved:
    """What max-pooling backward needs; ``indices`` is also the ``return_indices`` result.

    ``offsets`` (the row-major kernel offset of each window's maximum, shape
    ``(N, C, *out)``) and ``indices`` (its flat int64 index in the unpadded
    input plane) are computed on first use on the fast path, whose backward
    routes the gradient through the per-axis ``winners`` instead.
    """

    def __init__(self, input_shape, pads, kernel, stride, padding, dilation, *, offsets=None, winners=None,
                 x=None, best=None):
        self.input_shape = tuple(input_shape)
        self.pads, self.kernel, self.stride = pads, tuple(kernel), tuple(stride)
        self.padding, self.dilation = tuple(padding), tuple(dilation)
        self.winners, self._x, self._best = winners, x, best
        self._offsets = offsets
        self._indices = None

    @property
    def offsets(self) -> np.ndarray:
        if self._offsets is None:  # fast path: the first element of each window equal to its maximum
            view = windows(_tiled(self._x, self.kernel), self.kernel, self.stride, self.dilation)
            flat = view.reshape(self._best.shape + (-1,))
            hit = flat == self._best[..., None]
            self._offsets = hit.argmax(axis=-1).astype(np.min_scalar_type(math.prod(self.kernel) - 1))
        return self._offsets

    @property
    def indices(self) -> np.ndarray:
        if self._indices is None:
            out = self.offsets.shape[2:]
            self._indices = _flat_input_index(self.offsets, out, self.input_shape[2:], self.kernel, self.stride,
                                              self.padding, self.dilation)
        return self._indices


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


def _max_pool_tiled(x, kernel):
    """Fast path: ``(best, winners)``, one ``_scan_max`` stage per spatial axis, last axis first."""
    best, winners = _tiled(x, kernel), []
    for axis in reversed(range(2, x.ndim)):
        k = kernel[axis - 2]
        if k == 1:
            winners.append(None)
            continue
        best, winner = _scan_max(best, axis, k)
        winners.append(winner)
    return best, tuple(winners)


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
    if non_overlapping(spatial, kernel, stride, padding, dilation, ceil_mode):
        best, winners = _max_pool_tiled(x, kernel)
        if not np.isnan(best).any():
            best = best if best.base is None else best.copy()  # a 1x1 kernel leaves a view of x
            return best, MaxPoolSaved(x.shape, pads, kernel, stride, padding, dilation, winners=winners,
                                      x=x, best=best)
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
    return best, MaxPoolSaved(x.shape, pads, kernel, stride, padding, dilation, offsets=offsets)


def _max_pool_tiled_backward(g, saved: MaxPoolSaved):
    finite = bool(np.isfinite(g).all())
    nsp = len(saved.kernel)
    for stage, axis in enumerate(range(2, 2 + nsp)):
        winner = saved.winners[nsp - 1 - stage]
        if winner is not None:
            g = _route(g, winner, axis, saved.kernel[axis - 2], finite)
    if g.shape == saved.input_shape:
        return (g,)
    dx = np.zeros(saved.input_shape, dtype=g.dtype)
    dx[(Ellipsis,) + tuple(slice(0, n) for n in g.shape[2:])] = g
    return (dx,)


def max_pool_backward(g, saved: MaxPoolSaved, needs=(True,)):
    """``dx[n, c, i] = sum over windows o whose maximum sits at i of g[n, c, o]``.

    For every kernel offset ``j`` (the loop), the windows whose maximum has
    offset ``j`` send ``g`` to the padded positions ``o*s + j*d`` (a strided
    slice, distinct across ``o``), so overlapping windows add; the padded
    gradient is then cropped. A padding argmax (all-``-inf`` window) sends
    nothing into the input. The fast path routes ``g`` back through its
    per-axis winners instead (the same positions).
    """
    if saved.winners is not None:
        return _max_pool_tiled_backward(g, saved)
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


def _sum_tiled(x, kernel):
    """Fast path: window sums of non-overlapping windows, ``k`` strided slices added per axis."""
    total = _tiled(x, kernel)
    for axis in reversed(range(2, x.ndim)):
        k = kernel[axis - 2]
        if k > 1:
            acc = total[_along(axis, 0, k)] + total[_along(axis, 1, k)]
            for t in range(2, k):
                acc += total[_along(axis, t, k)]
            total = acc
    return total if total.base is None else total.copy()


def avg_pool_forward(x, *, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
    """N-d average pooling.

    ``y[n, c, o] = (1 / D_o) * sum_j x[n, c, o*s - p + j]`` (per spatial axis,
    ``j`` over the kernel, padding = 0, no dilation), with the divisor ``D_o``
    of ``avg_divisors``; shapes ``x (N, C, *n)`` -> ``y (N, C, *o)``.
    """
    spatial = x.shape[2:]
    ones = (1,) * len(kernel)
    out, pads = pool_geometry(spatial, kernel, stride, padding, ones, ceil_mode)
    divisor = avg_divisors(spatial, kernel, stride, padding, out, count_include_pad, divisor_override, x.dtype)
    if non_overlapping(spatial, kernel, stride, padding, ones, ceil_mode):
        return _sum_tiled(x, kernel) / divisor, (divisor, x.shape, None, tuple(kernel), tuple(stride))
    xp, pad_saved = pad_forward(x, pads=pads, mode="zeros")
    sums = windows(xp, kernel, stride, ones).sum(axis=tuple(range(-len(kernel), 0)))
    return sums / divisor, (divisor, xp.shape, pad_saved, tuple(kernel), tuple(stride))


def avg_pool_backward(g, saved, needs=(True,)):
    """``dx[n, c, i] = sum over windows o containing i of g[n, c, o] / D_o`` (fold, then crop).

    Fast path (``pad_saved`` None): every input element lies in at most one
    window, so ``dx`` is ``g / D`` repeated ``k`` times along each axis,
    zero in a floor-mode remainder.
    """
    divisor, padded_shape, pad_saved, kernel, stride = saved
    scaled = g / divisor
    if pad_saved is None:
        for axis, k in enumerate(kernel, start=2):
            if k > 1:
                scaled = np.repeat(scaled, k, axis=axis)
        if scaled.shape == tuple(padded_shape):
            return (scaled,)
        dx = np.zeros(padded_shape, dtype=g.dtype)
        dx[(Ellipsis,) + tuple(slice(0, n) for n in scaled.shape[2:])] = scaled
        return (dx,)
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


max_pool = Primitive("max_pool", max_pool_forward, max_pool_backward)
avg_pool = Primitive("avg_pool", avg_pool_forward, avg_pool_backward)
max_unpool = Primitive("max_unpool", max_unpool_forward, max_unpool_backward)
global_avg_pool = Primitive("global_avg_pool", global_avg_pool_forward, global_avg_pool_backward)
