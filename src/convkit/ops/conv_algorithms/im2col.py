"""``im2col``: unfold the input windows into columns, then BLAS matrix products.

With ``cols[(c, j), (n, y)] = xp[n, g*Cg + c, y*s + j*d]`` (``ops.windows.unfold``,
zero padding fused: the padded input is never made), per group ``g``::

    y[n, g]  = W[g] @ cols[n]                 W[g] = w[g*Og:(g+1)*Og].reshape(Og, Cg*K)
    dW[g]    = sum_n grad[n, g] @ cols[n]^T
    dcols[n] = W[g]^T @ grad[n, g]            dxp = fold(dcols)

where ``fold`` (``ops.windows.fold_columns``) adds every column entry back
where it was read and drops what lands in the padding.

One column layout, ``(N/B, G, Cg*K, B*P)`` for a chunk of samples, ``B`` of
them side by side in each matrix (``batch_minor``):

* ``B = 1`` (batch-major, the default): one GEMM per sample through
  ``np.matmul``'s batch axis; the output lands in NCHW order as it is.
* ``B`` = the chunk (batch-minor), for small outputs (``P <= BATCH_MINOR_POSITIONS``,
  e.g. LeNet's 10x10 maps): one GEMM per group, ``(Og, Cg*K) @ (Cg*K, B*P)``, and
  one for ``dW`` over the whole chunk; ``y`` and ``grad`` are transposed
  between ``(N, C, P)`` and ``(C, N, P)`` once. Per-sample GEMMs over 100
  positions would cost several times more.

Chunks hold at most ``CHUNK_BYTES`` of columns, so large inputs never
unfold whole; columns are kept for the backward pass only when the batch's
fit ``CACHE_BYTES`` (otherwise they are unfolded again, chunk by chunk).
A 1x1 kernel with stride 1 and no padding needs no unfolding: the columns are the input.
"""

from __future__ import annotations

import numpy as np

from .. import workspace
from ..windows import fold_columns, unfold
from .base import ConvAlgorithm, ConvProblem

CHUNK_BYTES = 32 << 20
CACHE_BYTES = 64 << 20
BATCH_MINOR_POSITIONS = 256


def _cols_bytes(p: ConvProblem) -> int:
    """Size of the whole batch's columns."""
    return p.batch * p.in_channels * p.taps * p.positions * p.dtype.itemsize


def _is_pointwise(p: ConvProblem) -> bool:
    return all(k == 1 for k in p.kernel) and all(s == 1 for s in p.stride) and not p.pads


def batch_minor(p: ConvProblem) -> bool:
    """Whether ``p`` puts a chunk's samples side by side in one matrix (small outputs)."""
    return p.positions <= BATCH_MINOR_POSITIONS and not _is_pointwise(p)


def _chunk(p: ConvProblem) -> int:
    per_sample = p.in_channels * p.taps * p.positions * p.dtype.itemsize
    return max(1, min(p.batch, CHUNK_BYTES // max(per_sample, 1)))


def _chunks(p: ConvProblem):
    """``(n0, n1, block)`` per chunk of samples."""
    step = _chunk(p)
    minor = batch_minor(p)
    for n0 in range(0, p.batch, step):
        n1 = min(p.batch, n0 + step)
        yield n0, n1, (n1 - n0) if minor else 1


def _weight_matrix(w: np.ndarray, groups: int) -> np.ndarray:
    """``(G, Og, Cg*K)``, contiguous."""
    return np.ascontiguousarray(w).reshape(groups, w.shape[0] // groups, -1)


def _columns(x: np.ndarray, p: ConvProblem, block: int) -> np.ndarray:
    """``(n/B, G, Cg*K, B*P)`` columns of the samples ``x``."""
    n = x.shape[0]
    if _is_pointwise(p):
        return x.reshape(n, p.groups, p.in_channels // p.groups, p.positions)
    cols = unfold(x, p.kernel, p.stride, p.dilation, p.pads, block=block)
    return cols.reshape(n // block, p.groups, -1, block * p.positions)


def _to_blocks(a: np.ndarray, p: ConvProblem, channels: int) -> np.ndarray:
    """``(n, C, *out) -> (1, G, C/G, n*P)``: the samples of a chunk side by side."""
    n = a.shape[0]
    out = workspace.empty((p.groups, channels // p.groups, n, p.positions), a.dtype)
    np.copyto(out, a.reshape(n, p.groups, channels // p.groups, p.positions).transpose(1, 2, 0, 3))
    return out.reshape(1, p.groups, channels // p.groups, n * p.positions)


class Im2col(ConvAlgorithm):
    """Unfold + GEMM: every option (N-d, stride, dilation, groups); the baseline the others are held to."""

    name = "im2col"

    def forward(self, xp, w, p):
        xp = np.ascontiguousarray(xp)
        wm = _weight_matrix(w, p.groups)
        og = p.out_channels // p.groups
        y = workspace.empty((p.batch, p.out_channels) + p.out, xp.dtype)
        keep = _cols_bytes(p) <= CACHE_BYTES and not _is_pointwise(p)
        cache = [] if keep else None
        for n0, n1, block in _chunks(p):
            cols = _columns(xp[n0:n1], p, block)
            if block == 1:
                np.matmul(wm, cols, out=y[n0:n1].reshape(n1 - n0, p.groups, og, p.positions))
            else:
                yt = np.matmul(wm, cols[0])  # (G, Og, n*P)
                np.copyto(y[n0:n1].reshape(n1 - n0, p.groups, og, p.positions),
                          yt.reshape(p.groups, og, n1 - n0, p.positions).transpose(2, 0, 1, 3))
            if keep:
                cache.append(cols)
        return y, cache

    def backward(self, grad, xp, w, p, cache, needs_input, needs_weight):
        grad = np.ascontiguousarray(grad)
        wm = _weight_matrix(w, p.groups)
        og = p.out_channels // p.groups
        dxp = workspace.empty(p.input_shape, grad.dtype) if needs_input else None
        dwt = np.zeros((p.groups, wm.shape[2], og), dtype=grad.dtype) if needs_weight else None
        wt = np.ascontiguousarray(wm.transpose(0, 2, 1)) if needs_input else None  # BLAS needs it contiguous
        for index, (n0, n1, block) in enumerate(_chunks(p)):
            n = n1 - n0
            gc = (grad[n0:n1].reshape(n, p.groups, og, p.positions) if block == 1
                  else _to_blocks(grad[n0:n1], p, p.out_channels))
            if needs_weight:
                cols = cache[index] if cache is not None else _columns(xp[n0:n1], p, block)
                part = np.matmul(cols, gc.transpose(0, 1, 3, 2))  # (n/B, G, Cg*K, Og)
                dwt += part[0] if part.shape[0] == 1 else part.sum(axis=0)
            if needs_input:
                dcols = np.matmul(wt, gc)  # (n/B, G, Cg*K, B*P)
                if _is_pointwise(p):
                    dxp[n0:n1] = dcols.reshape(dxp[n0:n1].shape)
                else:
                    fold_columns(dcols, (n,) + dxp.shape[1:], p.kernel, p.stride, p.dilation, p.pads,
                                 block=block, out=dxp[n0:n1])
        dw = None
        if needs_weight:
            dw = np.ascontiguousarray(dwt.transpose(0, 2, 1)).reshape((p.out_channels, -1) + p.kernel)
        return dxp, dw
