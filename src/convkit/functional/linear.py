"""``linear``: PyTorch's ``F.linear`` on Tensors or ndarrays."""

from __future__ import annotations

from ..autograd import apply
from ..ops import linear as L
from ..ops._args import check_same_dtype
from ..tensor import Tensor, as_tensor

__all__ = ["linear"]


def linear(input, weight, bias=None) -> Tensor:
    """``y = x W^T + b`` over the last axis of ``x``.

    Args:
        input: ``(*, in_features)``, any number of leading axes (none for a single vector).
        weight: ``(out_features, in_features)``.
        bias: ``(out_features,)`` or None. Default: None.

    Returns a Tensor of shape ``(*, out_features)``.

    >>> import numpy as np
    >>> linear(np.ones((2, 5, 3)), np.ones((4, 3)), np.zeros(4)).shape
    (2, 5, 4)
    """
    x = as_tensor(input, name="input", op="linear")
    w = as_tensor(weight, name="weight", op="linear")
    b = None if bias is None else as_tensor(bias, name="bias", op="linear")
    if w.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features), got shape {w.shape}")
    if x.ndim == 0 or x.shape[-1] != w.shape[1]:
        raise ValueError(
            f"linear: input has {x.shape[-1] if x.ndim else 'no'} features (last axis of input shape "
            f"{x.shape}) but weight expects {w.shape[1]} (weight shape {w.shape})"
        )
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(
            f"linear: bias must have shape (out_features,) = ({w.shape[0]},) for weight shape "
            f"{w.shape}, got {b.shape}"
        )
    check_same_dtype("linear", input=x, weight=w, bias=b)
    return apply(L.linear, [x, w, b])
