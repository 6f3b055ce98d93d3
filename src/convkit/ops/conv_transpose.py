"""N-d transposed convolution: the adjoint (input gradient) of ``ops.conv``'s correlation.

Shapes (``k`` spatial axes, ``G`` groups, ``Cg = C_in/G``, ``Og = C_out/G``)::

    x (N, C_in, *n)    w (C_in, Og, *kernel)    b (C_out,) or None    out (N, C_out, *o)

with, per axis, ``o = (n-1)*s - p_lo - p_hi + d*(kernel-1) + output_padding + 1``.
Written for one spatial axis, input channel ``c`` in group ``g = c // Cg``
scatters into the output channels ``g*Og + q``::

    full[n, g*Og + q, y*s + j*d] += x[n, c, y] * w[c, q, j]      for all y < n, j < K
    out[n, o, i] = b[o] + full[n, o, p_lo + i]                   for 0 <= i < o

``full`` has length ``o + p_lo + p_hi``: padding crops the output and
``output_padding`` only adds positions on the high side (they still receive
contributions when ``p_hi > 0``). Equivalently: insert ``s-1`` zeros between
the input samples, pad ``d*(K-1) - p_lo`` zeros before and
``d*(K-1) - p_hi + output_padding`` after, and cross-correlate with stride 1
and dilation ``d`` with the spatially flipped, in/out-swapped kernel
``w'[q, c, j] = w[c, q, K-1-j]``.

Gradients (``gp`` = ``grad_out`` zero-padded by ``(p_lo, p_hi)``, i.e. ``full``'s gradient)::

    dx[n, c, y] = sum_{q < Og} sum_j w[c, q, j] * gp[n, g*Og + q, y*s + j*d]    (a correlation of gp)
    dw[c, q, j] = sum_{n, y} x[n, c, y] * gp[n, g*Og + q, y*s + j*d]             (conv's dw, roles swapped)
    db[o]       = sum_{n, i} grad_out[n, o, i]

Computation: forward is the convolution's input-gradient path (GEMM
``w^T @ x`` then ``col2im``), backward its forward path (``im2col`` of
``gp`` then GEMMs), sharing ``ops.conv``'s helpers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .conv import col2im, from_group_major, im2col, to_group_major
from .padding import pad_forward


def transposed_sizes(n: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
                     pads: Sequence[tuple[int, int]], output_padding: Sequence[int],
                     dilation: Sequence[int]) -> tuple[int, ...]:
    """Output sizes ``(n-1)*s - p_lo - p_hi + d*(k-1) + output_padding + 1`` per axis."""
    return tuple((ni - 1) * s - lo - hi + d * (k - 1) + op + 1
                 for ni, k, s, (lo, hi), op, d in zip(n, kernel, stride, pads, output_padding, dilation))


def _reach(n: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
           dilation: Sequence[int]) -> tuple[int, ...]:
    """Length of ``full`` that the scatter writes: ``(n-1)*s + d*(k-1) + 1`` per axis."""
    return tuple((ni - 1) * s + d * (k - 1) + 1 for ni, k, s, d in zip(n, kernel, stride, dilation))


def conv_transpose_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, *,
                           stride: Sequence[int], pads: Sequence[tuple[int, int]],
                           output_padding: Sequence[int], dilation: Sequence[int], groups: int = 1):
    """Transposed convolution forward (formulas in the module docstring).

    Args:
        x: ``(N, C_in, *n)``; w: ``(C_in, C_out/groups, *kernel)``; b: ``(C_out,)`` or None.
        stride, dilation: one positive int per spatial axis.
        pads: one ``(low, high)`` pair per spatial axis, cropped from the output.
        output_padding: extra output size per axis (``< stride`` or ``< dilation``).
    Returns ``out (N, C_out, *o)`` and the saved state for ``conv_transpose_backward``.
    """
    kernel = w.shape[2:]
    n = x.shape[2:]
    out = transposed_sizes(n, kernel, stride, pads, output_padding, dilation)
    full = tuple(o + lo + hi for o, (lo, hi) in zip(out, pads))
    wmat = w.reshape(groups, w.shape[0] // groups, -1)  # (G, Cg, Og*K)
    xg = to_group_major(x, groups)  # (G, Cg, N*P)
    cols = np.matmul(wmat.transpose(0, 2, 1), xg)  # (G, Og*K, N*P)
    c_out = w.shape[1] * groups
    yfull = col2im(cols, (x.shape[0], c_out) + full, groups, kernel, stride, dilation, n)
    crop = (slice(None), slice(None)) + tuple(slice(lo, lo + o) for o, (lo, _) in zip(out, pads))
    y = np.ascontiguousarray(yfull[crop])
    if b is not None:
        y += b.reshape((1, -1) + (1,) * len(kernel))
    saved = (xg, wmat, x.shape, w.shape, pads, groups, stride, dilation)
    return y, saved


def conv_transpose_backward(g: np.ndarray, saved, needs=(True, True, True)):
    """``(dx, dw, db)`` of the transposed convolution (formulas in the module docstring)."""
    xg, wmat, x_shape, w_shape, pads, groups, stride, dilation = saved
    kernel = w_shape[2:]
    dx = dw = db = None
    if needs[0] or needs[1]:
        gp = pad_forward(g, pads=pads, mode="zeros")[0]
        reach = _reach(x_shape[2:], kernel, stride, dilation)
        gp = gp[(slice(None), slice(None)) + tuple(slice(0, r) for r in reach)]
        cols = im2col(gp, groups, kernel, stride, dilation)  # (G, Og*K, N*P)
    if needs[0]:
        dx = from_group_major(np.matmul(wmat, cols), x_shape[0], x_shape[2:])
    if needs[1]:
        dw = np.matmul(xg, cols.transpose(0, 2, 1)).reshape(w_shape)
    if needs[2]:
        db = g.sum(axis=(0,) + tuple(range(2, g.ndim)))
    return dx, dw, db
