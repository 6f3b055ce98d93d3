"""The affine map ``y = x W^T + b`` over the last axis, with its gradient.

All leading axes of ``x`` are flattened into one, so forward and backward
are each a single matrix product (GEMM), whatever the batch shape.
"""

from __future__ import annotations

from . import Primitive
from .meta import MetaArray
from .gemm import matmul


def linear_forward(x, weight, bias=None):
    """``y[..., o] = sum_i x[..., i] * W[o, i] + b[o]``.

    Shapes: ``x (*, in)``, ``W (out, in)``, ``b (out,)`` or None ->
    ``y (*, out)``. With ``X = x`` reshaped to ``(M, in)``, ``M = prod(*)``:
    ``Y = X W^T + b``.
    Backward, with ``G = g`` reshaped to ``(M, out)``:
    ``dX = G W``, ``dW = G^T X``, ``db[o] = sum_m G[m, o]``.
    """
    x2 = x.reshape(-1, x.shape[-1])
    y = matmul(x2, weight.T)
    if bias is not None:
        y += bias
    return y.reshape(x.shape[:-1] + (weight.shape[0],)), (x2, weight, x.shape)


def linear_backward(g, saved, needs=(True, True, True)):
    x2, weight, x_shape = saved
    g2 = g.reshape(-1, weight.shape[0])
    dx = matmul(g2, weight).reshape(x_shape) if needs[0] else None
    dw = matmul(g2.T, x2) if needs[1] else None
    db = g2.sum(axis=0) if needs[2] else None
    return dx, dw, db


def linear_meta(x, weight, bias=None) -> MetaArray:
    """``(*, in) -> (*, out)``."""
    return MetaArray(x.shape[:-1] + (weight.shape[0],), x.dtype)


linear = Primitive("linear", linear_forward, linear_backward, linear_meta)
