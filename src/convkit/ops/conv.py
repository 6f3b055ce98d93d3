"""N-d convolution (cross-correlation, or true convolution with ``flip=True``) by im2col + GEMM.

Shapes (``k`` spatial axes, ``G`` groups, ``Cg = C_in/G``, ``Og = C_out/G``)::

    x (N, C_in, *n)    w (C_out, Cg, *kernel)    b (C_out,) or None    out (N, C_out, *o)

with ``o = (n + p_lo + p_hi - d*(kernel-1) - 1) // s + 1`` per axis. Written
for one spatial axis (the others are alike, index by index), with ``xp`` the
input padded by ``(p_lo, p_hi)`` in ``padding_mode`` and output channel ``o``
in group ``g = o // Og``:

Cross-correlation (PyTorch's ``conv``)::

    out[n, o, y] = b[o] + sum_{c < Cg} sum_{j < K} w[o, c, j] * xp[n, g*Cg + c, y*s + j*d]

True convolution (``flip=True``) mirrors the kernel in every spatial axis and
changes nothing else (padding, stride, dilation and output size are those of
the correlation)::

    out[n, o, y] = b[o] + sum_{c < Cg} sum_{j < K} w[o, c, j] * xp[n, g*Cg + c, y*s + (K-1-j)*d]

Gradients of the correlation, for ``grad_out = gy`` (``flip`` mirrors ``dw``
back the same way)::

    db[o]          = sum_{n, y} gy[n, o, y]
    dw[o, c, j]    = sum_{n, y} gy[n, o, y] * xp[n, g*Cg + c, y*s + j*d]
    dxp[n, g*Cg + c, i] = sum_{o in group g} sum_{(y, j): y*s + j*d = i} gy[n, o, y] * w[o, c, j]

and ``dx`` is ``dxp`` folded back through the padding (``pad_backward``).

Computation: ``im2col`` copies the windows of ``xp`` into columns
``(G, Cg*K, N*P)`` (``P = prod(o)``), so the forward is one batched GEMM over
the group axis, ``(G, Og, Cg*K) @ (G, Cg*K, N*P)``; ``dw`` is
``gy (G, Og, N*P) @ cols^T`` and ``dxp`` is ``col2im(w^T @ gy)``, col2im
being ``windows.fold`` (a loop over kernel offsets only).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .padding import pad_backward, pad_forward
from .windows import fold, out_sizes, windows


def im2col(xp: np.ndarray, groups: int, kernel: Sequence[int], stride: Sequence[int],
           dilation: Sequence[int]) -> np.ndarray:
    """Columns of the padded input: ``(N, C, *n) -> (G, Cg*K, N*P)``.

    ``cols[g, (c, j), (n, y)] = xp[n, g*Cg + c, y*s + j*d]``, ``(c, j)`` and
    ``(n, y)`` flattened in C order. One copy from the strided window view.
    """
    nsp = len(kernel)
    view = windows(xp, kernel, stride, dilation)  # (N, C, *o, *k)
    n, c = view.shape[:2]
    view = view.reshape((n, groups, c // groups) + view.shape[2:])
    sp = tuple(range(3, 3 + nsp))
    ker = tuple(range(3 + nsp, 3 + 2 * nsp))
    view = view.transpose((1, 2) + ker + (0,) + sp)  # (G, Cg, *k, N, *o)
    return view.reshape(groups, (c // groups) * math.prod(kernel), n * math.prod(view.shape[-nsp:]))


def col2im(cols: np.ndarray, padded_shape: Sequence[int], groups: int, kernel: Sequence[int],
           stride: Sequence[int], dilation: Sequence[int], out: Sequence[int]) -> np.ndarray:
    """Adjoint of ``im2col``: add columns ``(G, Cg*K, N*P)`` back onto an array of ``padded_shape``.

    ``result[n, g*Cg + c, i] = sum_{(y, j): y*s + j*d = i} cols[g, (c, j), (n, y)]``.
    """
    n, c = padded_shape[:2]
    cg = c // groups
    cols = cols.reshape((groups, cg) + tuple(kernel) + (n,) + tuple(out))
    nsp = len(kernel)
    sp = tuple(range(3 + nsp, 3 + 2 * nsp))
    ker = tuple(range(2, 2 + nsp))
    cols = cols.transpose((2 + nsp, 0, 1) + sp + ker)  # (N, G, Cg, *o, *k), a view
    result = fold(cols, (n, groups, cg) + tuple(padded_shape[2:]), kernel, stride, dilation)
    return result.reshape(padded_shape)


def to_group_major(a: np.ndarray, groups: int) -> np.ndarray:
    """``(N, C, *sp) -> (G, C/G, N*P)``: ``r[g, c, (n, y)] = a[n, g*C/G + c, y]`` (a view when N = 1, else a copy)."""
    n, c = a.shape[:2]
    p = math.prod(a.shape[2:])
    a = a.reshape(n, groups, c // groups, p)
    return a.transpose(1, 2, 0, 3).reshape(groups, c // groups, n * p)


def from_group_major(r: np.ndarray, n: int, spatial: Sequence[int]) -> np.ndarray:
    """Inverse of ``to_group_major``: ``(G, Cg, N*P) -> (N, G*Cg, *spatial)`` (a contiguous copy)."""
    g, cg = r.shape[:2]
    r = r.reshape(g, cg, n, math.prod(spatial)).transpose(2, 0, 1, 3)
    return np.ascontiguousarray(r).reshape((n, g * cg) + tuple(spatial))


def _mirror(w: np.ndarray) -> np.ndarray:
    """``w`` reversed along every spatial axis (a view)."""
    return w[(slice(None), slice(None)) + (slice(None, None, -1),) * (w.ndim - 2)]


def conv_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, *,
                 stride: Sequence[int], pads: Sequence[tuple[int, int]], dilation: Sequence[int],
                 groups: int = 1, padding_mode: str = "zeros", flip: bool = False):
    """Convolution forward (see the module docstring for the formulas).

    Args:
        x: ``(N, C_in, *n)``; w: ``(C_out, C_in/groups, *kernel)``; b: ``(C_out,)`` or None.
        stride, dilation: one positive int per spatial axis.
        pads: one ``(low, high)`` pair per spatial axis (``_args.conv_pads``).
        groups: channel groups; ``padding_mode``: zeros/reflect/replicate/circular.
        flip: mirror the kernel (true convolution).
    Returns ``out (N, C_out, *o)`` and the saved state for ``conv_backward``.
    """
    kernel = w.shape[2:]
    xp, pad_saved = pad_forward(x, pads=pads, mode=padding_mode)
    out = out_sizes(xp.shape[2:], kernel, stride, dilation)
    wk = _mirror(w) if flip else w
    wmat = wk.reshape(groups, w.shape[0] // groups, -1)  # (G, Og, Cg*K)
    cols = im2col(xp, groups, kernel, stride, dilation)  # (G, Cg*K, N*P)
    y = from_group_major(np.matmul(wmat, cols), x.shape[0], out)
    if b is not None:
        y += b.reshape((1, -1) + (1,) * len(kernel))
    saved = (cols, wmat, pad_saved, xp.shape, w.shape, groups, stride, dilation, flip)
    return y, saved


def conv_backward(g: np.ndarray, saved, needs=(True, True, True)):
    """``(dx, dw, db)`` of the convolution (formulas in the module docstring)."""
    cols, wmat, pad_saved, padded_shape, w_shape, groups, stride, dilation, flip = saved
    kernel = w_shape[2:]
    out = g.shape[2:]
    dx = dw = db = None
    if needs[0] or needs[1]:
        gm = to_group_major(g, groups)  # (G, Og, N*P)
    if needs[0]:
        dcols = np.matmul(wmat.transpose(0, 2, 1), gm)  # (G, Cg*K, N*P)
        dxp = col2im(dcols, padded_shape, groups, kernel, stride, dilation, out)
        dx = pad_backward(dxp, pad_saved)[0]
    if needs[1]:
        dwk = np.matmul(gm, cols.transpose(0, 2, 1)).reshape(w_shape)
        dw = np.ascontiguousarray(_mirror(dwk)) if flip else dwk
    if needs[2]:
        db = g.sum(axis=(0,) + tuple(range(2, g.ndim)))
    return dx, dw, db
