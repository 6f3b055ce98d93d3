"""Activations, softmax, dropout and flatten, with PyTorch's signatures.

>>> import numpy as np
>>> relu(np.array([-1.0, 0.0, 2.0])).tolist()
[0.0, 0.0, 2.0]
>>> softmax(np.zeros((2, 4)), dim=1).tolist()[0]
[0.25, 0.25, 0.25, 0.25]
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..autograd import apply
from ..ops import activation as A
from ..ops._args import float_dtype, normalize_dim
from ..random import generator
from ..tensor import Tensor, as_tensor

__all__ = ["relu", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax", "dropout", "dropout2d", "flatten"]


def relu(input) -> Tensor:
    """``max(x, 0)`` element-wise; the gradient at 0 is 0."""
    return apply(A.relu, [as_tensor(input, op="relu")])


def leaky_relu(input, negative_slope: float = 0.01) -> Tensor:
    """``x`` where ``x > 0``, else ``negative_slope * x`` (any real slope, negative ones included)."""
    x = as_tensor(input, op="leaky_relu")
    if not isinstance(negative_slope, numbers.Real):
        raise TypeError(
            f"leaky_relu: negative_slope must be a real number, got {type(negative_slope).__name__} "
            f"{negative_slope!r}"
        )
    return apply(A.leaky_relu, [x], negative_slope=float(negative_slope))


def sigmoid(input) -> Tensor:
    """``1 / (1 + exp(-x))`` element-wise, without overflow for large ``|x|``."""
    return apply(A.sigmoid, [as_tensor(input, op="sigmoid")])


def tanh(input) -> Tensor:
    """``tanh(x)`` element-wise."""
    return apply(A.tanh, [as_tensor(input, op="tanh")])


def _along_dim(input, dim, op: str, primitive) -> Tensor:
    """Apply a normalisation along ``dim``; a 0-d input is treated as one element."""
    x = as_tensor(input, op=op)
    axis = normalize_dim(dim, x.ndim, op)
    if x.ndim == 0:
        return apply(primitive, [x.reshape(1)], axis=0).reshape(())
    return apply(primitive, [x], axis=axis)


def _cast(input, dtype, op: str) -> Tensor:
    """``input`` as a Tensor, converted to the float ``dtype`` first when one is given (PyTorch's ``dtype=``)."""
    x = as_tensor(input, op=op)
    if dtype is None:
        return x
    target = float_dtype(dtype, f"{op}: dtype")
    return x if x.dtype == target else x.astype(target)


def softmax(input, dim: int, dtype=None) -> Tensor:
    """``exp(x_i) / sum_j exp(x_j)`` along ``dim`` (max-subtracted, stable for huge logits).

    ``dtype``: convert the input to this float dtype first (the gradient flows back through the conversion).
    """
    return _along_dim(_cast(input, dtype, "softmax"), dim, "softmax", A.softmax)


def log_softmax(input, dim: int, dtype=None) -> Tensor:
    """``x_i - log sum_j exp(x_j)`` along ``dim`` (max-subtracted, stable for huge logits); ``dtype`` as ``softmax``."""
    return _along_dim(_cast(input, dtype, "log_softmax"), dim, "log_softmax", A.log_softmax)


def dropout(input, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability ``p`` and scale the kept ones by ``1 / (1 - p)``.

    The mask is drawn here from convkit's generator (``convkit.manual_seed``):
    element ``i`` is kept when ``u_i >= p`` for ``u_i ~ U[0, 1)``.
    When ``training`` is False, or ``p == 0``, the input Tensor is returned
    unchanged, as in PyTorch; ``p == 1`` gives zeros.
    """
    x = as_tensor(input, op="dropout")
    if not isinstance(p, numbers.Real) or not 0 <= p <= 1:
        raise ValueError(f"dropout: p must be a probability in [0, 1], got {p!r}")
    if not training or p == 0:
        return x
    keep = generator().random(x.shape, dtype=x.dtype) >= p  # drawn here: ops read no global state
    return apply(A.dropout, [x], keep=keep, p=float(p))


def dropout2d(input, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero whole channels with probability ``p`` and scale the kept ones by ``1 / (1 - p)``.

    ``y[n, c] = x[n, c] * m[n, c]`` with one ``m[n, c] = keep[n, c] / (1 - p)``
    per feature map (Tompson et al. 2015: neighbouring pixels are correlated,
    so dropping single ones regularises little). Input ``(N, C, H, W)``, or
    ``(N, C, L)``, which PyTorch also treats channel by channel (it warns
    that this will change; convkit does the same without the warning).
    Identity when not ``training`` or ``p == 0``.
    """
    x = as_tensor(input, op="dropout2d")
    if not isinstance(p, numbers.Real) or not 0 <= p <= 1:
        raise ValueError(f"dropout2d: p must be a probability in [0, 1], got {p!r}")
    if x.ndim not in (3, 4):
        raise ValueError(f"dropout2d: input must be 4-D (N, C, H, W) or 3-D (N, C, L), got shape {x.shape}")
    if not training or p == 0:
        return x
    keep = generator().random(x.shape[:2], dtype=x.dtype) >= p
    keep = np.broadcast_to(keep.reshape(x.shape[:2] + (1,) * (x.ndim - 2)), x.shape)
    return apply(A.dropout, [x], keep=keep, p=float(p))


def flatten(input, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge axes ``start_dim..end_dim`` (inclusive) into one, as ``torch.flatten``; a 0-d input becomes ``(1,)``.

    >>> import numpy as np
    >>> flatten(np.zeros((2, 3, 4, 5)), 1).shape
    (2, 60)
    """
    x = as_tensor(input, op="flatten")
    start = normalize_dim(start_dim, x.ndim, "flatten", "start_dim")
    end = normalize_dim(end_dim, x.ndim, "flatten", "end_dim")
    if start > end:
        raise ValueError(
            f"flatten: start_dim={start_dim} comes after end_dim={end_dim} "
            f"for an input with {x.ndim} dimensions"
        )
    if x.ndim == 0:
        return x.reshape(1)
    return x.reshape(x.shape[:start] + (math.prod(x.shape[start:end + 1]),) + x.shape[end + 1:])
