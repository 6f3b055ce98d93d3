"""Sliding windows over the trailing spatial axes: the one window extraction
that convolution (im2col) and pooling share, forward and backward.

For an already padded array ``xp`` of shape ``(N, C, n_1, ..., n_k)``,
kernel ``k``, stride ``s`` and dilation ``d``, the window of output position
``o`` along an axis covers input positions ``o*s + j*d`` for ``j = 0..k-1``,
and the number of windows is ``out = (n - d*(k-1) - 1) // s + 1``.

``windows(xp, ...)`` returns a read-only strided *view* of shape
``(N, C, out_1, ..., out_k, k_1, ..., k_k)`` (no copy);
``fold(cols, ...)`` is its adjoint: it adds every window element back onto
the position it was read from, looping over kernel offsets only (``prod(k)``
strided slice additions, each over the whole batch).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided


def out_sizes(spatial: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
              dilation: Sequence[int]) -> tuple[int, ...]:
    """Window counts per axis of an already padded input: ``(n - d*(k-1) - 1) // s + 1``."""
    return tuple((n - d * (k - 1) - 1) // s + 1 for n, k, s, d in zip(spatial, kernel, stride, dilation))


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


def fold(cols: np.ndarray, padded_shape: Sequence[int], kernel: Sequence[int],
         stride: Sequence[int], dilation: Sequence[int]) -> np.ndarray:
    """Adjoint of ``windows``: sum ``cols (N, C, *out, *kernel)`` back into an array of ``padded_shape``.

    ``result[..., i] = sum over (o, j) with o*s + j*d = i of cols[..., o, j]``.
    """
    nsp = len(kernel)
    out = cols.shape[-2 * nsp:-nsp]
    result = np.zeros(padded_shape, dtype=cols.dtype)
    for offset in itertools.product(*(range(k) for k in kernel)):
        target = (Ellipsis,) + tuple(
            slice(j * d, j * d + (o - 1) * s + 1, s) for j, d, o, s in zip(offset, dilation, out, stride)
        )
        result[target] += cols[(Ellipsis,) + tuple(slice(None) for _ in out) + offset]
    return result
