"""Sliding windows over the trailing spatial axes: the window extraction of
convolution (im2col, the FFT's grid placement) and of the worked
explanations, its adjoint, and the zero padding fused into both. (Pooling's
kernels walk their windows themselves, from per-axis tables of each window's
first in-input element and length: ``ops.pooling``.)

For an input ``x`` of shape ``(N, C, n_1, ..., n_k)`` zero-padded by
``(lo, hi)`` per axis (the padding is never materialised: a position outside
``[0, n)`` reads 0), kernel ``k``, stride ``s`` and dilation ``d``, the window
of output position ``o`` along an axis covers padded positions ``o*s + j*d``
(input positions ``o*s + j*d - lo``) for ``j = 0..k-1``, and the number of
windows is ``out = (n + lo + hi - d*(k-1) - 1) // s + 1``.

* ``windows(xp, ...)``: a read-only strided *view* ``(N, C, *out, *kernel)``
  of an already padded array (no copy), for code that reads windows in place;
* ``unfold(x, ...)``: the columns of im2col, written by one compiled kernel,
  ``cols[b, c, j, i*P + y] = x[b*B + i, c, y*s + j*d - lo]`` (0 in the padding)
  with ``P = prod(out)``, ``j`` the flat kernel offset and ``B`` samples per
  column block (``B = 1``: one ``(C*K, P)`` matrix per sample; ``B = N``: one
  ``(C*K, N*P)`` matrix for the batch);
* ``fold(cols, ...)``: the adjoint of ``unfold``,
  ``dx[n, c, i] = sum over (j, y) with y*s + j*d - lo = i of cols[b, c, j, i_n*P + y]``
  (each window element added back where it was read; what lands in the
  padding is dropped, so the padding's gradient crop is fused too).

The kernels work on three canonical spatial axes (1-D and 2-D inputs get
leading axes of size 1), so one compiled kernel per dtype serves every
dimension; they run in parallel over the ``(n, c)`` planes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import workspace
from .jit import kernel, prange


def out_sizes(spatial: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
              dilation: Sequence[int], pads: Sequence[tuple[int, int]] | None = None) -> tuple[int, ...]:
    """Window counts per axis: ``(n + lo + hi - d*(k-1) - 1) // s + 1`` (``pads`` None: no padding)."""
    pads = pads or ((0, 0),) * len(kernel)
    return tuple((n + lo + hi - d * (k - 1) - 1) // s + 1
                 for n, k, s, d, (lo, hi) in zip(spatial, kernel, stride, dilation, pads))


def windows(xp: np.ndarray, kernel: Sequence[int], stride: Sequence[int],
            dilation: Sequence[int]) -> np.ndarray:
    """Strided view ``(N, C, *out, *kernel)`` with ``view[..., o, j] = xp[..., o*s + j*d]``."""
    nsp = len(kernel)
    lead = xp.shape[:-nsp]
    out = out_sizes(xp.shape[-nsp:], kernel, stride, dilation)
    st = xp.strides
    lead_st, sp_st = st[:-nsp], st[-nsp:]
    shape = lead + out + tuple(kernel)
    strides = lead_st + tuple(a * s for a, s in zip(sp_st, stride)) + tuple(a * d for a, d in zip(sp_st, dilation))
    return as_strided(xp, shape=shape, strides=strides, writeable=False)


def three(values: Sequence[int], fill: int) -> tuple[int, ...]:
    """``values`` of 1 to 3 spatial axes, led by ``fill`` up to three (the kernels' canonical axes)."""
    return (fill,) * (3 - len(values)) + tuple(values)


def canonical(a: np.ndarray, nsp: int) -> np.ndarray:
    """``a (N, C, *spatial)`` as a C-contiguous ``(N, C, n_1, n_2, n_3)`` (a view when already contiguous)."""
    a = np.ascontiguousarray(a)
    return a.reshape(a.shape[:a.ndim - nsp] + three(a.shape[a.ndim - nsp:], 1))


def _geometry(kernel, stride, dilation, pads):
    """The 12 ints ``k, s, d, lo`` of the three canonical axes."""
    nsp = len(kernel)
    lows = tuple(lo for lo, _ in pads) if pads else (0,) * nsp
    return three(kernel, 1) + three(stride, 1) + three(dilation, 1) + three(lows, 0)


@kernel
def _valid(o, s, off, n):
    """``(a, e)``: the outputs ``a <= y < e`` (within ``[0, o)``) whose position ``y*s + off`` lies in ``[0, n)``."""
    a = 0 if off >= 0 else (s - 1 - off) // s
    e = (n - off + s - 1) // s if n > off else 0
    a = min(a, o)
    e = max(min(e, o), a)
    return a, e


@kernel(parallel=True)
def _unfold(x, cols, block, o1, o2, o3, k1, k2, k3, s1, s2, s3, d1, d2, d3, lo1, lo2, lo3):
    """``cols[b, c, j, i*P + y] = x[b*block + i, c, y*s + j*d - lo]``, 0 outside ``x`` (shapes in ``unfold``).

    Offsets are computed on flat views of both arrays; a row's valid outputs
    ``[a3, e3)`` are one loop from 0 over two 1-D slices (the form LLVM
    vectorises; each slice has one type: contiguous, or strided by ``s3``).
    """
    samples, channels, n1, n2, n3 = x.shape
    positions = o1 * o2 * o3
    width = block * positions
    taps = k1 * k2 * k3
    xf = x.reshape(x.size)
    cf = cols.reshape(cols.size)
    for item in prange(samples * channels):
        n = item // channels
        c = item - n * channels
        b = n // block
        xbase = item * n1 * n2 * n3
        q = (b * channels + c) * taps * width + (n - b * block) * positions
        for j1 in range(k1):
            for j2 in range(k2):
                for j3 in range(k3):
                    off3 = j3 * d3 - lo3
                    a3, e3 = _valid(o3, s3, off3, n3)
                    row = q
                    for y1 in range(o1):
                        i1 = y1 * s1 + j1 * d1 - lo1
                        for y2 in range(o2):
                            i2 = y2 * s2 + j2 * d2 - lo2
                            if i1 < 0 or i1 >= n1 or i2 < 0 or i2 >= n2:
                                for t in range(o3):
                                    cf[row + t] = 0
                            else:
                                for t in range(a3):
                                    cf[row + t] = 0
                                src = xbase + (i1 * n2 + i2) * n3 + a3 * s3 + off3
                                dst = row + a3
                                part = cf[dst:dst + e3 - a3]
                                if s3 == 1:
                                    whole = xf[src:src + e3 - a3]
                                    for t in range(e3 - a3):
                                        part[t] = whole[t]
                                else:
                                    spaced = xf[src:src + (e3 - a3 - 1) * s3 + 1:s3]
                                    for t in range(e3 - a3):
                                        part[t] = spaced[t]
                                for t in range(e3, o3):
                                    cf[row + t] = 0
                            row += o3
                    q += width


@kernel(parallel=True)
def _fold(cols, dx, block, o1, o2, o3, k1, k2, k3, s1, s2, s3, d1, d2, d3, lo1, lo2, lo3):
    """``dx[n, c] = 0``, then ``dx[b*block + i, c, y*s + j*d - lo] += cols[b, c, j, i*P + y]`` inside ``dx``."""
    samples, channels, n1, n2, n3 = dx.shape
    positions = o1 * o2 * o3
    width = block * positions
    taps = k1 * k2 * k3
    plane = n1 * n2 * n3
    df = dx.reshape(dx.size)
    cf = cols.reshape(cols.size)
    for item in prange(samples * channels):
        n = item // channels
        c = item - n * channels
        b = n // block
        xbase = item * plane
        for t in range(plane):
            df[xbase + t] = 0
        q = (b * channels + c) * taps * width + (n - b * block) * positions
        for j1 in range(k1):
            for j2 in range(k2):
                for j3 in range(k3):
                    off3 = j3 * d3 - lo3
                    a3, e3 = _valid(o3, s3, off3, n3)
                    row = q
                    for y1 in range(o1):
                        i1 = y1 * s1 + j1 * d1 - lo1
                        for y2 in range(o2):
                            i2 = y2 * s2 + j2 * d2 - lo2
                            if 0 <= i1 < n1 and 0 <= i2 < n2:
                                dst = xbase + (i1 * n2 + i2) * n3 + a3 * s3 + off3
                                src = row + a3
                                part = cf[src:src + e3 - a3]
                                if s3 == 1:
                                    whole = df[dst:dst + e3 - a3]
                                    for t in range(e3 - a3):
                                        whole[t] += part[t]
                                else:
                                    spaced = df[dst:dst + (e3 - a3 - 1) * s3 + 1:s3]
                                    for t in range(e3 - a3):
                                        spaced[t] += part[t]
                            row += o3
                    q += width


def unfold(x: np.ndarray, kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int],
           pads: Sequence[tuple[int, int]] | None = None, *, block: int = 1,
           out: np.ndarray | None = None) -> np.ndarray:
    """im2col columns of ``x (N, C, *n)`` zero-padded by ``pads``: ``(N/block, C, K, block*P)``.

    ``cols[b, c, j, i*P + y] = x[b*block + i, c, y*s + j*d - lo]`` (0 in the padding), ``K = prod(kernel)``,
    ``P = prod(out)``; ``N`` must be a multiple of ``block``. Written into ``out`` (that many elements,
    contiguous) when given, else into a ``workspace`` array.
    """
    nsp = len(kernel)
    o = out_sizes(x.shape[2:], kernel, stride, dilation, pads)
    n, c = x.shape[:2]
    shape = (n // block, c, math.prod(kernel), block * math.prod(o))
    cols = workspace.empty(shape, x.dtype) if out is None else out.reshape(shape)
    _unfold(canonical(x, nsp), cols, block, *three(o, 1), *_geometry(kernel, stride, dilation, pads))
    return cols


def fold_columns(cols: np.ndarray, shape: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
                 dilation: Sequence[int], pads: Sequence[tuple[int, int]] | None = None, *, block: int = 1,
                 out: np.ndarray | None = None) -> np.ndarray:
    """Adjoint of ``unfold``: ``dx`` of ``shape (N, C, *n)`` from ``cols (N/block, C, K, block*P)``.

    ``dx[n, c, i] = sum over (j, y) with y*s + j*d - lo = i of cols[n // block, c, j, (n % block)*P + y]``.
    Written into ``out`` (contiguous, ``shape``) when given, else into a ``workspace`` array.
    """
    shape = tuple(shape)
    o = out_sizes(shape[2:], kernel, stride, dilation, pads)
    dx = workspace.empty(shape, cols.dtype) if out is None else out
    cols = np.ascontiguousarray(cols).reshape(shape[0] // block, shape[1], math.prod(kernel), block * math.prod(o))
    _fold(cols, dx.reshape(shape[:2] + three(shape[2:], 1)), block, *three(o, 1),
          *_geometry(kernel, stride, dilation, pads))
    return dx


def fold(cols: np.ndarray, padded_shape: Sequence[int], kernel: Sequence[int],
         stride: Sequence[int], dilation: Sequence[int]) -> np.ndarray:
    """Adjoint of ``windows``: sum ``cols (N, C, *out, *kernel)`` back into an array of ``padded_shape``.

    ``result[..., i] = sum over (o, j) with o*s + j*d = i of cols[..., o, j]`` (``fold_columns`` on the
    window axes moved in front of the output axes).
    """
    nsp = len(kernel)
    lead = cols.ndim - 2 * nsp
    moved = np.moveaxis(cols, tuple(range(cols.ndim - nsp, cols.ndim)), tuple(range(lead, lead + nsp)))
    return fold_columns(moved, padded_shape, kernel, stride, dilation)
