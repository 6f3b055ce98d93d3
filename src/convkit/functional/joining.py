"""``cat`` and ``stack``: joining Tensors, with gradients (``torch.cat``, ``torch.stack``; also ``convkit.cat``).

The merges of branching networks: U-Net's skip connections and DenseNet's
blocks concatenate feature maps along the channel axis (``cat(..., dim=1)``).

>>> import numpy as np
>>> import convkit.functional as F
>>> F.cat([np.zeros((2, 3)), np.ones((2, 1))], dim=1).shape
(2, 4)
>>> F.stack([np.zeros(3), np.ones(3)]).shape
(2, 3)
"""

from __future__ import annotations

from collections.abc import Sequence

from ..autograd import apply
from ..ops import arithmetic as A
from ..ops._args import normalize_dim
from ..tensor import Tensor, as_tensor

__all__ = ["cat", "stack"]


def _operands(tensors, op: str) -> list[Tensor]:
    if isinstance(tensors, (Tensor, str, bytes)) or not isinstance(tensors, Sequence):
        raise TypeError(f"{op}: tensors must be a list or tuple of Tensors or arrays, got {type(tensors).__name__}")
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty list of tensors")
    ts = [as_tensor(t, name=f"tensors[{i}]", op=op, float_only=False) for i, t in enumerate(tensors)]
    dtypes = {t.dtype for t in ts}
    if len(dtypes) > 1:
        raise TypeError(f"{op}: the tensors have different dtypes {sorted(map(str, dtypes))}; convert them to one")
    return ts


def cat(tensors, dim: int = 0) -> Tensor:
    """Join ``tensors`` along the existing axis ``dim``; every other axis must match (``torch.cat``)."""
    ts = _operands(tensors, "cat")
    axis = normalize_dim(dim, ts[0].ndim, "cat")
    for i, t in enumerate(ts):
        if t.ndim != ts[0].ndim or t.shape[:axis] + t.shape[axis + 1:] != ts[0].shape[:axis] + ts[0].shape[axis + 1:]:
            raise ValueError(f"cat: tensors[{i}] has shape {t.shape} but tensors[0] has {ts[0].shape}; every axis "
                             f"but dim={dim} must match")
    return apply(A.concatenate, ts, axis=axis)


def stack(tensors, dim: int = 0) -> Tensor:
    """Join ``tensors`` of one shape along a new axis ``dim`` (``torch.stack``)."""
    ts = _operands(tensors, "stack")
    axis = normalize_dim(dim, ts[0].ndim + 1, "stack")
    for i, t in enumerate(ts):
        if t.shape != ts[0].shape:
            raise ValueError(f"stack: tensors[{i}] has shape {t.shape} but tensors[0] has {ts[0].shape}; "
                             "stacked tensors must all have one shape")
    return apply(A.stack, ts, axis=axis)
