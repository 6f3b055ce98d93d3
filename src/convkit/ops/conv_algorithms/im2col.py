"""``im2col``: unfold the input windows into columns, then BLAS matrix products.

With ``cols[(c, j), (n, y)] = xp[n, g*Cg + c, y*s + j*d]`` (``ops.windows.unfold``,
zero padding fused: the padded input is never made), per group ``g``::

    y[n, g]  = W[g] @ cols[n]                 W[g] = w[g*Og:(g+1)*Og].reshape(Og, Cg*K)
    dW[g]    = sum_n grad[n, g] @ cols[n]^T
    dcols[n] = W[g]^T @ grad[n, g]            dxp = fold(dcols)

where ``fold`` (``ops.windows.fold_columns``) adds every column entry back
where it was read and drops what lands in the padding.

Two column layouts, picked per problem (``batch_minor``):

* batch-major (the default): ``cols (n, G, Cg*K, P)`` for a chunk of ``n``
  samples, one GEMM per sample through ``np.matmul``'s batch axis; the
  output lands in NCHW order as it is.
* batch-minor, for small outputs (``P <= BATCH_MINOR_POSITIONS``, e.g.
  LeNet's 10x10 maps): the chunk is transposed once to ``(C, *n, n_chunk)``
  and unfolded with the batch as one more axis (kernel 1), so that every
  copy of the unfold and every addition of the fold runs over ``n_chunk``
  contiguous values instead of one output row; the columns are
  ``(G, Cg*K, P*n_chunk)`` and the products one GEMM per group (``y``, and
  ``grad`` in backward, are transposed between ``(n, C, P)`` and ``(C, P, n)``
  once). Per-sample GEMMs over 100 positions and copies of 10-value rows
  would cost several times more. (3-D problems with a stride on their last
  axis stay batch-major: the kernels have three axes.)

Chunks hold at most ``CHUNK_BYTES`` of columns, so large inputs never
unfold whole; columns are kept for the backward pass only when the batch's
fit ``CACHE_BYTES`` (otherwise they are unfolded again, chunk by chunk).
A 1x1 kernel with stride 1 and no padding needs no unfolding: the columns are the input.
"""

from __future__ import annotations

import numpy as np

from .. import workspace
from ..gemm import matmul
from ..windows import fold_columns, unfold
from .base import ConvAlgorithm, ConvProblem

CHUNK_BYTES = 32 << 20
CACHE_BYTES = 64 << 20
BATCH_MINOR_POSITIONS = 196


def _cols_bytes(p: ConvProblem) -> int:
    """Size of the whole batch's columns."""
    return p.batch * p.in_channels * p.taps * p.positions * p.dtype.itemsize


def _is_pointwise(p: ConvProblem) -> bool:
    return all(k == 1 for k in p.kernel) and all(s == 1 for s in p.stride) and not p.pads


def batch_minor(p: ConvProblem) -> bool:
    """Whether ``p`` runs in the batch-minor layout (small outputs)."""
    return (p.positions <= BATCH_MINOR_POSITIONS and not _is_pointwise(p)
            and (len(p.kernel) < 3 or p.stride[-1] == 1))


def _chunk(p: ConvProblem) -> int:
    per_sample = p.in_channels * p.taps * p.positions * p.dtype.itemsize
    return max(1, min(p.batch, CHUNK_BYTES // max(per_sample, 1)))


def _chunks(p: ConvProblem):
    """``(n0, n1)`` per chunk of samples."""
    step = _chunk(p)
    for n0 in range(0, p.batch, step):
        yield n0, min(p.batch, n0 + step)


def _weight_matrix(w: np.ndarray, groups: int) -> np.ndarray:
    """``(G, Og, Cg*K)``, contiguous."""
    return np.ascontiguousarray(w).reshape(groups, w.shape[0] // groups, -1)


def _batch_last(a: np.ndarray) -> np.ndarray:
    """``(n, C, *s) -> (C, *s, n)``, contiguous (a ``workspace`` array)."""
    out = workspace.empty(a.shape[1:] + a.shape[:1], a.dtype)
    np.copyto(out, np.moveaxis(a, 0, -1))
    return out


def _minor_geometry(p: ConvProblem, n: int):
    """Unfold arguments for ``(1, C, *s, n)``: the batch as an axis with a kernel of one, or, with three spatial
    axes (stride 1 on the last), merged into the last axis (positions ``i*n + b``: dilation and padding times ``n``)."""
    pads = p.pads or ((0, 0),) * len(p.kernel)
    if len(p.kernel) < 3:
        return (p.kernel + (1,), p.stride + (1,), p.dilation + (1,), tuple(pads) + ((0, 0),))
    (lo, hi) = pads[-1]
    return (p.kernel, p.stride, p.dilation[:-1] + (p.dilation[-1] * n,), tuple(pads[:-1]) + ((lo * n, hi * n),))


def _minor_shape(p: ConvProblem, n: int, spatial) -> tuple[int, ...]:
    """The unfold input shape of ``(C, *spatial, n)``."""
    if len(p.kernel) < 3:
        return (1, p.in_channels) + tuple(spatial) + (n,)
    return (1, p.in_channels) + tuple(spatial[:-1]) + (spatial[-1] * n,)


def _columns(x: np.ndarray, p: ConvProblem, minor: bool) -> np.ndarray:
    """Columns of the samples ``x``: ``(n, G, Cg*K, P)``, or ``(1, G, Cg*K, P*n)`` batch-minor."""
    n = x.shape[0]
    if _is_pointwise(p):
        return x.reshape(n, p.groups, p.in_channels // p.groups, p.positions)
    if not minor:
        return unfold(x, p.kernel, p.stride, p.dilation, p.pads).reshape(n, p.groups, -1, p.positions)
    xt = _batch_last(x).reshape(_minor_shape(p, n, x.shape[2:]))
    cols = unfold(xt, *_minor_geometry(p, n))
    return cols.reshape(1, p.groups, -1, p.positions * n)


def _fold_minor(dcols: np.ndarray, p: ConvProblem, n: int) -> np.ndarray:
    """``dx (n, C, *input)`` from batch-minor ``dcols`` (the adjoint of ``_columns``)."""
    shape = _minor_shape(p, n, p.input)
    dxt = fold_columns(dcols.reshape(1, p.in_channels, p.taps, -1), shape, *_minor_geometry(p, n))
    return np.moveaxis(dxt.reshape((p.in_channels,) + p.input + (n,)), -1, 0)


class Im2col(ConvAlgorithm):
    """Unfold + GEMM: every option (N-d, stride, dilation, groups); the baseline the others are held to."""

    name = "im2col"

    def forward(self, xp, w, p):
        xp = np.ascontiguousarray(xp)
        wm = _weight_matrix(w, p.groups)
        og = p.out_channels // p.groups
        minor = batch_minor(p)
        y = workspace.empty((p.batch, p.out_channels) + p.out, xp.dtype)
        keep = _cols_bytes(p) <= CACHE_BYTES and not _is_pointwise(p)
        cache = [] if keep else None
        for n0, n1 in _chunks(p):
            cols = _columns(xp[n0:n1], p, minor)
            if not minor:
                matmul(wm, cols, out=y[n0:n1].reshape(n1 - n0, p.groups, og, p.positions))
            else:
                yt = matmul(wm, cols[0])  # (G, Og, P*n)
                np.copyto(y[n0:n1].reshape(n1 - n0, p.out_channels, p.positions),
                          np.moveaxis(yt.reshape(p.out_channels, p.positions, n1 - n0), -1, 0))
            if keep:
                cache.append(cols)
        return y, cache

    def backward(self, grad, xp, w, p, cache, needs_input, needs_weight):
        grad = np.ascontiguousarray(grad)
        wm = _weight_matrix(w, p.groups)
        og = p.out_channels // p.groups
        minor = batch_minor(p)
        dxp = workspace.empty(p.input_shape, grad.dtype) if needs_input else None
        dwt = np.zeros((p.groups, wm.shape[2], og), dtype=grad.dtype) if needs_weight else None
        wt = np.ascontiguousarray(wm.transpose(0, 2, 1)) if needs_input else None  # BLAS needs it contiguous
        for index, (n0, n1) in enumerate(_chunks(p)):
            n = n1 - n0
            if minor:  # (1, G, Og, P*n)
                gc = _batch_last(grad[n0:n1].reshape(n, p.out_channels, p.positions))
                gc = gc.reshape(1, p.groups, og, p.positions * n)
            else:
                gc = grad[n0:n1].reshape(n, p.groups, og, p.positions)
            if needs_weight:
                cols = cache[index] if cache is not None else _columns(xp[n0:n1], p, minor)
                part = matmul(cols, gc.transpose(0, 1, 3, 2))  # (n or 1, G, Cg*K, Og)
                dwt += part[0] if part.shape[0] == 1 else part.sum(axis=0)
            if needs_input:
                dcols = matmul(wt, gc)  # (n or 1, G, Cg*K, P or P*n)
                if _is_pointwise(p):
                    dxp[n0:n1] = dcols.reshape(dxp[n0:n1].shape)
                elif minor:
                    dxp[n0:n1] = _fold_minor(dcols, p, n)
                else:
                    fold_columns(dcols, (n,) + dxp.shape[1:], p.kernel, p.stride, p.dilation, p.pads,
                                 out=dxp[n0:n1])
        dw = None
        if needs_weight:
            dw = np.ascontiguousarray(dwt.transpose(0, 2, 1)).reshape((p.out_channels, -1) + p.kernel)
        return dxp, dw
