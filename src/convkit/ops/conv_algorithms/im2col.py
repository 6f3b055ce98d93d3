"""``im2col``: unfold the input windows into columns, then one BLAS matrix product per sample.

Forward, per sample ``n`` and group ``g``, with ``cols[(c, j), y] = xp[n, g*Cg + c, y*s + j*d]``::

    y[n, g] = W[g] @ cols          W[g] = w[g*Og:(g+1)*Og].reshape(Og, Cg*K)

and backward ``dW[g] = sum_n grad[n, g] @ cols^T``, ``dcols = W[g]^T @ grad[n, g]``,
``dxp = fold(dcols)`` (each column entry added back where it was read).

Two layouts, picked per problem (``batch_minor``):

* batch-major (the default): ``cols (n, G, Cg*K, P)`` for a chunk of ``n``
  samples, one GEMM per sample through ``np.matmul``'s batch axis; the
  output lands in NCHW order with no transpose. Chunks hold at most
  ``CHUNK_BYTES`` of columns, so large inputs never unfold whole; columns
  are kept for the backward pass only when they fit ``CACHE_BYTES``
  (otherwise they are unfolded again, chunk by chunk).
* batch-minor, for small outputs (``P <= BATCH_MINOR_POSITIONS``, e.g.
  LeNet's 10x10 maps): the input is transposed once to ``(C, *padded, N)``
  so that every unfold copy and every fold addition runs over contiguous
  rows of ``out_last * N`` values, and the product is one GEMM per group,
  ``(Og, Cg*K) @ (Cg*K, P*N)``. Per-sample GEMMs over 100 positions and
  copies of 10-value rows would cost three times more.

A 1x1 kernel with stride 1 needs no unfolding: the columns are a view of the input.
"""

from __future__ import annotations

import numpy as np

from ..windows import windows
from .base import ConvAlgorithm, ConvProblem, offsets, tap_slices

CHUNK_BYTES = 32 << 20
CACHE_BYTES = 64 << 20
BATCH_MINOR_POSITIONS = 256


def _cols_bytes(p: ConvProblem) -> int:
    """Size of the whole batch's columns."""
    return p.batch * p.in_channels * p.taps * p.positions * p.dtype.itemsize


def batch_minor(p: ConvProblem) -> bool:
    """Whether ``p`` runs in the batch-minor layout (small outputs whose columns fit the cache budget)."""
    return p.positions <= BATCH_MINOR_POSITIONS and _cols_bytes(p) <= CACHE_BYTES


def _is_pointwise(p: ConvProblem) -> bool:
    return all(k == 1 for k in p.kernel) and all(s == 1 for s in p.stride)


def _weight_matrix(w: np.ndarray, groups: int) -> np.ndarray:
    """``(G, Og, Cg*K)``, contiguous."""
    return np.ascontiguousarray(w).reshape(groups, w.shape[0] // groups, -1)


# ----------------------------------------------------------------- batch-major
def _unfold(xp: np.ndarray, p: ConvProblem, out: np.ndarray | None = None) -> np.ndarray:
    """``cols (n, G, Cg*K, P)`` of the samples in ``xp``: ``cols[n, g, (c, j), y] = xp[n, g*Cg + c, y*s + j*d]``.

    Written into ``out`` (contiguous, that shape) when given.
    """
    n, g, cg, nsp = xp.shape[0], p.groups, p.in_channels // p.groups, len(p.kernel)
    if _is_pointwise(p):
        return xp.reshape(n, g, cg, p.positions)
    view = windows(xp, p.kernel, p.stride, p.dilation).reshape((n, g, cg) + p.out + p.kernel)
    sp, ker = tuple(range(3, 3 + nsp)), tuple(range(3 + nsp, 3 + 2 * nsp))
    view = view.transpose((0, 1, 2) + ker + sp)
    if out is None:
        return np.ascontiguousarray(view).reshape(n, g, cg * p.taps, p.positions)
    np.copyto(out.reshape(view.shape), view)
    return out


def _fold_into(dxp: np.ndarray, dcols: np.ndarray, p: ConvProblem) -> None:
    """``dxp[n, g*Cg + c, y*s + j*d] += dcols[n, g, (c, j), y]`` (the adjoint of ``_unfold``), in place."""
    n = dxp.shape[0]
    dcols = dcols.reshape((n, p.in_channels) + p.kernel + p.out)
    for j in offsets(p.kernel):
        dxp[(Ellipsis,) + tap_slices(j, p.stride, p.dilation, p.out)] += dcols[(slice(None), slice(None)) + j]


def _chunk(p: ConvProblem) -> int:
    per_sample = p.in_channels * p.taps * p.positions * p.dtype.itemsize
    return max(1, min(p.batch, CHUNK_BYTES // max(per_sample, 1)))


def _major_forward(xp, w, p: ConvProblem):
    wm = _weight_matrix(w, p.groups)
    y = np.empty((p.batch, p.out_channels) + p.out, dtype=xp.dtype)
    yg = y.reshape(p.batch, p.groups, p.out_channels // p.groups, p.positions)
    keep = _cols_bytes(p) <= CACHE_BYTES and not _is_pointwise(p)
    cols = np.empty((p.batch, p.groups, (p.in_channels // p.groups) * p.taps, p.positions), xp.dtype) if keep else None
    step = _chunk(p)
    for n0 in range(0, p.batch, step):
        part = _unfold(xp[n0:n0 + step], p, cols[n0:n0 + step] if keep else None)
        np.matmul(wm, part, out=yg[n0:n0 + step])
    return y, cols


def _major_backward(grad, xp, w, p: ConvProblem, cache, needs_input, needs_weight):
    wm = _weight_matrix(w, p.groups)
    gg = grad.reshape(p.batch, p.groups, p.out_channels // p.groups, p.positions)
    dxp = np.zeros((p.batch, p.in_channels) + p.padded, dtype=grad.dtype) if needs_input else None
    dwt = np.zeros((p.groups, wm.shape[2], wm.shape[1]), dtype=grad.dtype) if needs_weight else None
    wt = np.ascontiguousarray(wm.transpose(0, 2, 1))  # a broadcast transposed view sends numpy off BLAS
    step = p.batch if cache is not None else _chunk(p)
    for n0 in range(0, p.batch, step):
        gc = gg[n0:n0 + step]
        if needs_weight:
            cols = cache if cache is not None else _unfold(xp[n0:n0 + step], p)
            dwt += np.matmul(cols, gc.transpose(0, 1, 3, 2)).sum(axis=0)
        if needs_input:
            dcols = np.matmul(wt, gc)
            if _is_pointwise(p):
                dxp[n0:n0 + step] = dcols.reshape(dxp[n0:n0 + step].shape)
            else:
                _fold_into(dxp[n0:n0 + step], dcols, p)
    dw = None
    if needs_weight:
        dw = np.ascontiguousarray(dwt.transpose(0, 2, 1)).reshape((p.out_channels, -1) + p.kernel)
    return dxp, dw


# ----------------------------------------------------------------- batch-minor
def _minor_unfold(xt: np.ndarray, p: ConvProblem) -> np.ndarray:
    """``cols (G, Cg*K, P*N)`` from ``xt (C, *padded, N)``: ``cols[g, (c, j), (y, n)] = xt[g*Cg + c, y*s + j*d, n]``."""
    cols = np.empty((p.in_channels,) + p.kernel + p.out + (p.batch,), dtype=xt.dtype)
    for j in offsets(p.kernel):
        cols[(slice(None),) + j] = xt[(slice(None),) + tap_slices(j, p.stride, p.dilation, p.out)]
    return cols.reshape(p.groups, (p.in_channels // p.groups) * p.taps, p.positions * p.batch)


def _batch_last(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(a, 0, -1))


def _minor_forward(xp, w, p: ConvProblem):
    cols = _minor_unfold(_batch_last(xp), p)
    yt = np.matmul(_weight_matrix(w, p.groups), cols)  # (G, Og, P*N)
    y = np.ascontiguousarray(np.moveaxis(yt.reshape((p.out_channels,) + p.out + (p.batch,)), -1, 0))
    return y, cols


def _minor_backward(grad, xp, w, p: ConvProblem, cache, needs_input, needs_weight):
    gt = _batch_last(grad).reshape(p.groups, p.out_channels // p.groups, -1)
    dxp = dw = None
    if needs_weight:
        cols = cache if cache is not None else _minor_unfold(_batch_last(xp), p)
        dwt = np.matmul(cols, gt.transpose(0, 2, 1))  # (G, Cg*K, Og): OpenBLAS runs this shape 1.7x faster
        dw = np.ascontiguousarray(dwt.transpose(0, 2, 1)).reshape((p.out_channels, -1) + p.kernel)
    if needs_input:
        dcols = np.matmul(np.ascontiguousarray(_weight_matrix(w, p.groups).transpose(0, 2, 1)), gt)
        dcols = dcols.reshape((p.in_channels,) + p.kernel + p.out + (p.batch,))
        dxt = np.zeros((p.in_channels,) + p.padded + (p.batch,), dtype=grad.dtype)
        for j in offsets(p.kernel):
            dxt[(slice(None),) + tap_slices(j, p.stride, p.dilation, p.out)] += dcols[(slice(None),) + j]
        dxp = np.ascontiguousarray(np.moveaxis(dxt, -1, 0))
    return dxp, dw


class Im2col(ConvAlgorithm):
    """Unfold + GEMM: every option (N-d, stride, dilation, groups); the baseline the others are held to."""

    name = "im2col"

    def forward(self, xp, w, p):
        return (_minor_forward if batch_minor(p) else _major_forward)(xp, w, p)

    def backward(self, grad, xp, w, p, cache, needs_input, needs_weight):
        run = _minor_backward if batch_minor(p) else _major_backward
        return run(grad, xp, w, p, cache, needs_input, needs_weight)
