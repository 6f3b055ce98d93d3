"""``unfold`` and ``fold``: im2col and its adjoint as user-facing ops (PyTorch's ``F.unfold`` / ``F.fold``).

For ``x (N, C, H, W)`` zero-padded by ``(lo, hi)`` per axis, kernel
``(k_1, k_2)``, stride ``s`` and dilation ``d``, with ``K = k_1 k_2`` kernel
offsets ``j = (j_1, j_2)`` (flat ``j_1 k_2 + j_2``) and ``L = o_1 o_2``
windows ``y = (y_1, y_2)`` (flat ``y_1 o_2 + y_2``,
``o = (n + lo + hi - d(k - 1) - 1) // s + 1``)::

    cols[n, c*K + j, y] = xp[n, c, y_1 s_1 + j_1 d_1, y_2 s_2 + j_2 d_2]        unfold: (N, C, H, W) -> (N, C*K, L)

so that a convolution is one matrix product, ``out[n] = W.reshape(C_out, C*K) @ cols[n]``.
``fold`` is its adjoint: every column entry is added back where it was read
(overlapping windows add up; what lands in the padding is dropped)::

    out[n, c, i] = sum_{(j, y): y*s + j*d - lo = i} cols[n, c*K + j, y]        fold: (N, C*K, L) -> (N, C, H, W)

Gradients: each is the other's adjoint, so ``dx = fold(dcols)`` for unfold
and ``dcols = unfold(dout)`` for fold. Both run the compiled window kernels of
``ops.windows`` (the ones im2col convolution uses).
"""

from __future__ import annotations

import math

import numpy as np

from . import Primitive
from .meta import MetaArray
from .windows import fold_columns, out_sizes, unfold as unfold_windows


def unfold_forward(x, *, kernel, stride, dilation, pads):
    """``cols (N, C*K, L)`` of ``x (N, C, H, W)`` (module docstring)."""
    cols = unfold_windows(np.ascontiguousarray(x), kernel, stride, dilation, pads)  # (N, C, K, L)
    n, c, k, windows = cols.shape
    return cols.reshape(n, c * k, windows), (x.shape, kernel, stride, dilation, pads)


def unfold_backward(g, saved, needs=(True,)):
    shape, kernel, stride, dilation, pads = saved
    return (fold_columns(g, shape, kernel, stride, dilation, pads),)


def fold_forward(cols, *, size, kernel, stride, dilation, pads):
    """``out (N, C, *size)`` from ``cols (N, C*K, L)`` (module docstring)."""
    channels = cols.shape[1] // math.prod(kernel)
    shape = (cols.shape[0], channels) + tuple(size)
    return fold_columns(cols, shape, kernel, stride, dilation, pads), (cols.shape, kernel, stride, dilation, pads)


def fold_backward(g, saved, needs=(True,)):
    shape, kernel, stride, dilation, pads = saved
    return (unfold_windows(np.ascontiguousarray(g), kernel, stride, dilation, pads).reshape(shape),)


def unfold_meta(x, *, kernel, stride, dilation, pads) -> MetaArray:
    """``(N, C, *n) -> (N, C*K, L)``, ``L`` the product of the per-axis window counts."""
    windows = math.prod(out_sizes(x.shape[2:], kernel, stride, dilation, pads))
    return MetaArray((x.shape[0], x.shape[1] * math.prod(kernel), windows), x.dtype)


def fold_meta(cols, *, size, kernel, stride, dilation, pads) -> MetaArray:
    return MetaArray((cols.shape[0], cols.shape[1] // math.prod(kernel)) + tuple(size), cols.dtype)


unfold = Primitive("unfold", unfold_forward, unfold_backward, unfold_meta)
fold = Primitive("fold", fold_forward, fold_backward, fold_meta)
