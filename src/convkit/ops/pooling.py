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

Kernels (``ops.jit``). Padding is never materialised: along every axis a
window is described by its first in-input position and its number of
in-input elements (``_axis_windows``)::

    first_o = t_o + j0*d,  j0 = ceil(max(0, -t_o) / d)
    count_o = #{j in [j0, k) : t_o + j*d < n}

and a kernel visits exactly those elements (padding adds nothing to a sum
and never wins a maximum). The kernels work on the canonical layout
``(P, D, H, W)``, ``P = N*C`` planes, 1-D and 2-D inputs given singleton
leading spatial axes, so one compiled kernel per dtype serves 1-D, 2-D and
3-D; a plane is passed flat, ``(P, D*H*W)`` (``planes``), and addressed as
``(z*H + r)*W + q``, the form of the returned indices. The kernels run a
``prange`` loop over the planes, and every write of a backward pass stays
inside its plane (no races). Within a plane a window kernel computes a row
of outputs ``(a, b, :)`` at once: for each window element, in row-major
order, a loop over the row's windows, which are independent (the loop
pipelines; a loop per window would be as short as the window). The same
kernels serve the adaptive pools (``ops.adaptive_pooling``), whose windows
fit the same per-axis tables, and the global average pool (one window per
axis):

* ``_max_windows``: maximum and flat argmax of every window (row-major scan,
  ``take if v > best or isnan(v)``);
* ``_sum_windows``: window sums (float64 accumulator) over their divisors;
* ``_spread_windows``: the adjoint, ``g / D`` added to every window element;
* ``_scatter_planes``: ``out[p, idx[p, m]] (+)= v[p, m]`` over a zeroed plane
  (max-pooling backward with ``+=``, max unpooling with ``=``).

Unpooling's backward, a gather, is one ``np.take_along_axis``.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from . import Primitive, workspace
from .meta import MetaArray
from .jit import kernel, prange


def pool_output_size(n: int, k: int, s: int, p: int | tuple[int, int], d: int, ceil_mode: bool) -> int:
    """Windows along one axis: ``o`` of the module docstring (padding ``p`` on both sides, or a ``(low, high)``
    pair), with the ceil_mode correction: the last window must start inside the input or the low padding."""
    lo, hi = (p, p) if isinstance(p, int) else p
    o = (n + lo + hi - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (o - 1) * s >= n + lo:
        o -= 1
    return o


def pool_geometry(spatial, kernel, stride, padding, dilation, ceil_mode: bool):
    """Output sizes and the ``(low, high)`` padding that holds exactly those windows.

    ``low = p``; ``high`` reaches the end of the last window,
    ``(o-1)*s + d*(k-1) + 1 - n - p``, or is 0 when the windows end inside the
    input (a floor-mode remainder that no window reads is left out). The
    kernels do not pad; ``convkit.explain`` draws this padded input.
    """
    out = tuple(pool_output_size(n, k, s, p, d, ceil_mode)
                for n, k, s, p, d in zip(spatial, kernel, stride, padding, dilation))
    pads = tuple((p, max(0, (o - 1) * s + d * (k - 1) + 1 - n - p))
                 for n, k, s, p, d, o in zip(spatial, kernel, stride, padding, dilation, out))
    return out, pads


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
    sizes = [_axis_divisors(n, k, s, p, o, count_include_pad)
             for n, k, s, p, o in zip(spatial, kernel, stride, padding, out)]
    return functools.reduce(np.multiply.outer, sizes).astype(dtype)


def _axis_divisors(n: int, k: int, s: int, p: int, o: int, count_include_pad: bool) -> np.ndarray:
    """One axis' factor of ``avg_divisors`` for its ``o`` windows (float64)."""
    t = np.arange(o) * s - p
    size = np.minimum(t + k, n + p) - t if count_include_pad else np.minimum(t + k, n) - np.maximum(t, 0)
    return size.astype(np.float64)


def unpool_output_size(n: int, k: int, s: int, p: int) -> int:
    """Default max-unpooling size along an axis (PyTorch): ``(n - 1)*s - 2p + k``."""
    return (n - 1) * s - 2 * p + k


# ------------------------------------------------------------------ window tables
def _three(values, fill) -> tuple:
    """Per-axis ``values`` padded at the front to three axes with ``fill``."""
    return (fill,) * (3 - len(values)) + tuple(values)


def _axis_windows(n: int, k: int, s: int, p: int, d: int, o: int) -> tuple[np.ndarray, np.ndarray]:
    """``(first, count)`` of the module docstring for the ``o`` windows of one axis (int64)."""
    t = np.arange(o, dtype=np.int64) * s - p
    j0 = -(-np.maximum(0, -t) // d)
    j1 = np.clip(-(-(n - t) // d), 0, k)      # j < j1  <=>  t + j*d < n
    return t + j0 * d, np.maximum(j1 - j0, 0)


@functools.lru_cache(maxsize=512)
def window_tables(spatial, kernel, stride, padding, dilation, out) -> tuple[np.ndarray, ...]:
    """``(first_D, count_D, first_H, count_H, first_W, count_W)`` of the canonical axes (cached, read-only)."""
    tables = []
    for n, k, s, p, d, o in zip(_three(spatial, 1), _three(kernel, 1), _three(stride, 1), _three(padding, 0),
                                _three(dilation, 1), _three(out, 1)):
        for table in _axis_windows(n, k, s, p, d, o):
            table.flags.writeable = False
            tables.append(table)
    return tuple(tables)


@functools.lru_cache(maxsize=512)
def _divisor_tables(spatial, kernel, stride, padding, out, count_include_pad: bool) -> tuple[np.ndarray, ...]:
    """Per canonical axis, the factors of ``avg_divisors`` (float64, cached, read-only)."""
    tables = []
    for n, k, s, p, o in zip(_three(spatial, 1), _three(kernel, 1), _three(stride, 1), _three(padding, 0),
                             _three(out, 1)):
        table = _axis_divisors(n, k, s, p, o, count_include_pad)
        table.flags.writeable = False
        tables.append(table)
    return tuple(tables)


# ------------------------------------------------------------------ kernels
@kernel
def _longest(counts) -> int:
    """The largest entry of ``counts`` (0 if empty): the longest window along the last axis."""
    longest = 0
    for count in counts:
        longest = max(longest, count)
    return longest


@kernel(parallel=True)
def _max_windows(x, y, idx, fd, cd, fh, ch, fw, cw, dd, dh, dw, height, width):
    """``y[p, (a, b, c)] = max`` over window ``(a, b, c)`` of plane ``p``, ``idx`` the flat argmax.

    Planes are flat: ``x (P, D*H*W)``, ``y, idx (P, A*B*C)`` for the
    ``A, B, C`` windows of the tables. Window elements
    ``(fd[a] + i*dd, fh[b] + j*dh, fw[c] + m*dw)`` for ``i < cd[a]``,
    ``j < ch[b]``, ``m < cw[c]``, scanned in row-major order with
    ``take if v > best or isnan(v)`` from ``best = -inf``; the index starts
    at the window's first element (reported by an all-``-inf`` window).
    A row of outputs ``(a, b, :)`` is computed at once: for every window
    element ``(i, j, m)`` in row-major order, a loop over ``c`` (independent
    windows, so the loop pipelines) updates ``best[c]``.
    """
    planes = x.shape[0]
    out_d, out_h, out_w = fd.shape[0], fh.shape[0], fw.shape[0]
    span = _longest(cw)
    for p in prange(planes):
        best = np.empty(out_w)
        where = np.empty(out_w, np.int64)
        o = 0
        for a in range(out_d):
            for b in range(out_h):
                for c in range(out_w):
                    best[c] = -np.inf
                    where[c] = (fd[a] * height + fh[b]) * width + fw[c]
                for i in range(cd[a]):
                    for j in range(ch[b]):
                        row = ((fd[a] + i * dd) * height + fh[b] + j * dh) * width
                        for m in range(span):
                            for c in range(out_w):
                                if m < cw[c]:
                                    q = row + fw[c] + m * dw
                                    v = x[p, q]
                                    take = (v > best[c]) | np.isnan(v)   # no branch on the data
                                    best[c] = v if take else best[c]
                                    where[c] = q if take else where[c]
                for c in range(out_w):
                    y[p, o + c] = best[c]
                    idx[p, o + c] = where[c]
                o += out_w


@kernel(parallel=True)
def _sum_windows(x, y, fd, cd, fh, ch, fw, cw, vd, vh, vw, override, height, width):
    """``y[p, (a, b, c)] = (sum over window (a, b, c) of plane p) / D``, summed in float64.

    Flat planes and windows as in ``_max_windows``, without dilation, a row
    of outputs at once; ``D = vd[a]*vh[b]*vw[c]``, or ``override`` when it
    is not 0.
    """
    planes = x.shape[0]
    out_d, out_h, out_w = fd.shape[0], fh.shape[0], fw.shape[0]
    span = _longest(cw)
    for p in prange(planes):
        total = np.empty(out_w)
        o = 0
        for a in range(out_d):
            for b in range(out_h):
                for c in range(out_w):
                    total[c] = 0.0
                for z in range(fd[a], fd[a] + cd[a]):
                    for r in range(fh[b], fh[b] + ch[b]):
                        row = (z * height + r) * width
                        for m in range(span):
                            for c in range(out_w):
                                if m < cw[c]:
                                    total[c] += x[p, row + fw[c] + m]
                for c in range(out_w):
                    divisor = override if override != 0 else vd[a] * vh[b] * vw[c]
                    y[p, o + c] = total[c] / divisor
                o += out_w


@kernel(parallel=True)
def _spread_windows(g, dx, fd, cd, fh, ch, fw, cw, vd, vh, vw, override, height, width):
    """Adjoint of ``_sum_windows``: ``dx[p]`` zeroed, then ``g[p, (a, b, c)] / D`` added over window ``(a, b, c)``."""
    planes, size = dx.shape
    out_d, out_h, out_w = fd.shape[0], fh.shape[0], fw.shape[0]
    span = _longest(cw)
    for p in prange(planes):
        share = np.empty(out_w)
        for i in range(size):
            dx[p, i] = 0
        o = 0
        for a in range(out_d):
            for b in range(out_h):
                for c in range(out_w):
                    divisor = override if override != 0 else vd[a] * vh[b] * vw[c]
                    share[c] = g[p, o + c] / divisor
                for z in range(fd[a], fd[a] + cd[a]):
                    for r in range(fh[b], fh[b] + ch[b]):
                        row = (z * height + r) * width
                        for m in range(span):
                            for c in range(out_w):
                                if m < cw[c]:
                                    dx[p, row + fw[c] + m] += share[c]
                o += out_w


@kernel(parallel=True)
def _scatter_planes(v, idx, out, accumulate):
    """``out[p]`` zeroed, then ``out[p, idx[p, m]] += v[p, m]`` (``=`` unless ``accumulate``).

    Indices outside ``[0, L)`` (an all-padding window's) are skipped.
    """
    planes, size = out.shape
    count = v.shape[1]
    for p in prange(planes):
        for i in range(size):
            out[p, i] = 0
        for m in range(count):
            i = idx[p, m]
            if 0 <= i < size:
                if accumulate:
                    out[p, i] += v[p, m]
                else:
                    out[p, i] = v[p, m]


def planes(a: np.ndarray) -> np.ndarray:
    """``a (N, C, *n)`` as C-contiguous float32/float64 flat planes ``(N*C, prod(n))`` (a view where it can be).

    Other dtypes are computed in float64.
    """
    if a.dtype not in (np.float32, np.float64):
        a = a.astype(np.float64)
    return np.ascontiguousarray(a).reshape(a.shape[0] * a.shape[1], math.prod(a.shape[2:]))


def _plane_size(shape) -> tuple[int, int]:
    """``(H, W)`` of the canonical ``(D, H, W)`` plane of ``shape (N, C, *n)``."""
    spatial = _three(shape[2:], 1)
    return spatial[1], spatial[2]


def max_windows(x, out, tables, dilation):
    """``(y, indices)`` of ``_max_windows`` for ``x (N, C, *n)``: shapes ``(N, C, *out)``, indices int64."""
    xf = planes(x)
    shape = x.shape[:2] + tuple(out)
    y = workspace.empty(shape, xf.dtype)
    indices = workspace.empty(shape, np.int64)
    _max_windows(xf, y.reshape(xf.shape[0], math.prod(out)), indices.reshape(xf.shape[0], math.prod(out)), *tables, *_three(dilation, 1),
                 *_plane_size(x.shape))
    return y.astype(x.dtype, copy=False), indices


def scatter_indices(g, indices, input_shape, *, accumulate: bool = True) -> np.ndarray:
    """``dx (input_shape)``: every ``g[n, c, o]`` added (or assigned) at ``indices[n, c, o]`` of its plane."""
    gf = planes(g)
    dx = workspace.empty(input_shape, gf.dtype)
    _scatter_planes(gf, np.ascontiguousarray(indices, dtype=np.int64).reshape(gf.shape),
                    dx.reshape(gf.shape[0], math.prod(input_shape[2:])), accumulate)
    return dx.astype(g.dtype, copy=False)


def sum_windows(x, out, tables, divisors, override) -> np.ndarray:
    """``y (N, C, *out)`` of ``_sum_windows`` (``override`` 0: the per-axis ``divisors``)."""
    xf = planes(x)
    y = workspace.empty(x.shape[:2] + tuple(out), xf.dtype)
    _sum_windows(xf, y.reshape(xf.shape[0], math.prod(out)), *tables, *divisors, float(override), *_plane_size(x.shape))
    return y.astype(x.dtype, copy=False)


def spread_windows(g, input_shape, tables, divisors, override) -> np.ndarray:
    """``dx (input_shape)`` of ``_spread_windows``, the adjoint of ``sum_windows``."""
    gf = planes(g)
    dx = workspace.empty(input_shape, gf.dtype)
    _spread_windows(gf, dx.reshape(gf.shape[0], math.prod(input_shape[2:])), *tables, *divisors, float(override),
                    *_plane_size(input_shape))
    return dx.astype(g.dtype, copy=False)


# ------------------------------------------------------------------ max pool
class MaxPoolSaved:
    """What max-pooling backward needs: ``indices`` (also the ``return_indices`` result) and the input shape.

    ``indices`` has the output's shape ``(N, C, *out)`` and holds the int64
    flat index of each window's maximum in its unpadded input plane.
    """

    def __init__(self, indices: np.ndarray, input_shape):
        self.indices = indices
        self.input_shape = tuple(input_shape)


def max_pool_forward(x, *, kernel, stride, padding, dilation, ceil_mode):
    """N-d max pooling with the argmax of each window.

    ``y[n, c, o] = max_j x[n, c, o*s - p + j*d]`` (per spatial axis, ``j`` over
    the kernel, padding = ``-inf``); shapes ``x (N, C, *n)`` -> ``y (N, C, *o)``.

    The window is scanned in row-major kernel order with PyTorch's CPU rule
    ``take if v > best or isnan(v)``: the first maximum wins a tie, the *last*
    NaN wins if there are NaNs (and the output is NaN). ``saved.indices`` is
    the flat index of the winner in its unpadded input plane (for 2-D,
    ``h*W + w``), int64; a window of ``-inf`` only reports its first
    in-input element. One kernel, ``_max_windows``, for every geometry.
    """
    spatial = tuple(x.shape[2:])
    kernel, stride, padding, dilation = tuple(kernel), tuple(stride), tuple(padding), tuple(dilation)
    out, _ = pool_geometry(spatial, kernel, stride, padding, dilation, ceil_mode)
    tables = window_tables(spatial, kernel, stride, padding, dilation, out)
    y, indices = max_windows(x, out, tables, dilation)
    return y, MaxPoolSaved(indices, x.shape)


def max_pool_backward(g, saved: MaxPoolSaved, needs=(True,)):
    """``dx[n, c, i] = sum over windows o whose maximum sits at i of g[n, c, o]``.

    A scatter-add of ``g`` at ``saved.indices`` into a zeroed ``dx`` (the
    indices already point into the unpadded plane), so overlapping windows
    that share a maximum add; a ``-inf`` window's gradient goes to the
    element it reports, as in PyTorch.
    """
    return (scatter_indices(g, saved.indices, saved.input_shape),)


# ------------------------------------------------------------------ average pool
def avg_pool_forward(x, *, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
    """N-d average pooling.

    ``y[n, c, o] = (1 / D_o) * sum_j x[n, c, o*s - p + j]`` (per spatial axis,
    ``j`` over the kernel, padding = 0, no dilation), with the divisor ``D_o``
    of ``avg_divisors``; shapes ``x (N, C, *n)`` -> ``y (N, C, *o)``. The sum
    runs over the in-input elements only, in float64.
    """
    spatial = tuple(x.shape[2:])
    kernel, stride, padding = tuple(kernel), tuple(stride), tuple(padding)
    ones = (1,) * len(kernel)
    out, _ = pool_geometry(spatial, kernel, stride, padding, ones, ceil_mode)
    tables = window_tables(spatial, kernel, stride, padding, ones, out)
    divisors = _divisor_tables(spatial, kernel, stride, padding, out, bool(count_include_pad))
    override = 0 if divisor_override is None else divisor_override
    y = sum_windows(x, out, tables, divisors, override)
    return y, (x.shape, tables, divisors, override)


def avg_pool_backward(g, saved, needs=(True,)):
    """``dx[n, c, i] = sum over windows o containing i of g[n, c, o] / D_o`` (padding positions dropped)."""
    input_shape, tables, divisors, override = saved
    return (spread_windows(g, input_shape, tables, divisors, override),)


# ------------------------------------------------------------------ max unpool
def max_unpool_forward(x, indices, *, output_size):
    """Place every value at its index in a zero plane of ``output_size``.

    ``y[n, c, :] = 0``, then ``y[n, c, indices[n, c, i]] = x[n, c, i]`` for every
    ``i`` (flat indices into the output plane). A repeated index keeps the
    last of its values; indices from max pooling repeat only where
    overlapping windows share a maximum, so the values agree. Shapes:
    ``x, indices (N, C, *m)`` -> ``y (N, C, *output_size)``.
    """
    indices = np.ascontiguousarray(indices, dtype=np.int64)
    y = scatter_indices(x, indices, x.shape[:2] + tuple(output_size), accumulate=False)
    return y, (indices, x.shape)


def max_unpool_backward(g, saved, needs=(True, False)):
    """``dx[n, c, i] = g[n, c, indices[n, c, i]]`` (a gather); the indices get no gradient.

    As in PyTorch, a repeated index (overlapping pooling windows that share a
    maximum) sends ``g`` to every input carrying it, although only one of
    them reached the output.
    """
    indices, shape = saved
    planes = shape[0] * shape[1]
    dx = np.take_along_axis(g.reshape(planes, math.prod(g.shape[2:])), indices.reshape(planes, math.prod(shape[2:])),
                            axis=1)
    return dx.reshape(shape), None


# ------------------------------------------------------------------ global average
def global_avg_pool_forward(x):
    """``y[n, c, 0, ..., 0] = (1 / prod(n)) * sum_i x[n, c, i]`` over all spatial positions ``i``.

    Shapes: ``x (N, C, *n)`` -> ``y (N, C, 1, ..., 1)``. One window covering
    each plane, summed in float64 by ``_sum_windows``.
    """
    spatial = tuple(x.shape[2:])
    ones = (1,) * len(spatial)
    tables = window_tables(spatial, spatial, ones, (0,) * len(spatial), ones, ones)
    divisors = _divisor_tables(spatial, spatial, ones, (0,) * len(spatial), ones, True)
    return sum_windows(x, ones, tables, divisors, 0), (x.shape, tables, divisors)


def global_avg_pool_backward(g, saved, needs=(True,)):
    """``dx[n, c, i] = g[n, c, 0, ..., 0] / prod(n)`` for every ``i``."""
    shape, tables, divisors = saved
    return (spread_windows(g, shape, tables, divisors, 0),)


def max_pool_meta(x, *, kernel, stride, padding, dilation, ceil_mode) -> MetaArray:
    """``(N, C, *n) -> (N, C, *o)``, ``o`` from ``pool_geometry``."""
    out, _ = pool_geometry(tuple(x.shape[2:]), tuple(kernel), tuple(stride), tuple(padding), tuple(dilation),
                           ceil_mode)
    return MetaArray(x.shape[:2] + tuple(out), x.dtype)


def avg_pool_meta(x, *, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override) -> MetaArray:
    return max_pool_meta(x, kernel=kernel, stride=stride, padding=padding, dilation=(1,) * len(kernel),
                         ceil_mode=ceil_mode)


def max_unpool_meta(x, indices, *, output_size) -> MetaArray:
    return MetaArray(x.shape[:2] + tuple(output_size), x.dtype)


def global_avg_pool_meta(x) -> MetaArray:
    return MetaArray(x.shape[:2] + (1,) * (x.ndim - 2), x.dtype)


max_pool = Primitive("max_pool", max_pool_forward, max_pool_backward, max_pool_meta)
avg_pool = Primitive("avg_pool", avg_pool_forward, avg_pool_backward, avg_pool_meta)
max_unpool = Primitive("max_unpool", max_unpool_forward, max_unpool_backward, max_unpool_meta)
global_avg_pool = Primitive("global_avg_pool", global_avg_pool_forward, global_avg_pool_backward,
                            global_avg_pool_meta)
