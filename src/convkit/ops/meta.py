"""``MetaArray``: a shape and a dtype standing in for an ndarray, and the shape rules shared by the ops.

Every ``Primitive`` has a ``meta`` function beside its forward: given
``MetaArray`` inputs (and the same options) it returns the output's
``MetaArray``, computing nothing and allocating no data. A Tensor holding
a MetaArray is a *meta tensor* (PyTorch's ``device="meta"``): models built
under ``convkit.nn.meta_init()`` hold meta parameters, and
``convkit.trace.trace(model, shape)`` runs a forward on a meta input, so that
a model's graph, shapes and costs come out in milliseconds without weights
or activations.

>>> a = MetaArray((1, 3, 224, 224), "float32")
>>> a.shape, a.size, a.nbytes
((1, 3, 224, 224), 150528, 602112)
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["MetaArray", "same", "broadcast", "reduced", "is_meta"]


class MetaArray:
    """The shape and dtype of an array that is never allocated.

    Has the attributes of an ndarray that describe it (``shape``, ``dtype``,
    ``ndim``, ``size``, ``itemsize``, ``nbytes``); asking for its values
    raises a TypeError naming what to do instead.
    """

    __slots__ = ("shape", "dtype")

    def __init__(self, shape, dtype):
        self.shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)

    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: math.prod(self.shape))
    itemsize = property(lambda self: self.dtype.itemsize)
    nbytes = property(lambda self: self.size * self.dtype.itemsize)

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d meta array")
        return self.shape[0]

    def __array__(self, *args, **kwargs):
        raise TypeError(f"a meta tensor of shape {self.shape} ({self.dtype}) has no values: it was built under "
                        f"convkit.nn.meta_init() or traced from a shape. Build the model without meta_init to "
                        f"run it on data")

    def astype(self, dtype, copy: bool = True) -> MetaArray:
        return MetaArray(self.shape, dtype)

    def __eq__(self, other) -> bool:
        return isinstance(other, MetaArray) and (self.shape, self.dtype) == (other.shape, other.dtype)

    __hash__ = None

    def __repr__(self) -> str:
        return f"MetaArray(shape={self.shape}, dtype={self.dtype})"


def is_meta(a) -> bool:
    """Whether ``a`` is a MetaArray."""
    return isinstance(a, MetaArray)


def same(x, *others, **options) -> MetaArray:
    """The rule of ops whose output has the first input's shape and dtype (element-wise, normalisation)."""
    return MetaArray(x.shape, x.dtype)


def broadcast(a, b) -> MetaArray:
    """The rule of binary element-wise ops: NumPy broadcasting of the shapes, promotion of the dtypes."""
    return MetaArray(np.broadcast_shapes(a.shape, b.shape), np.result_type(a.dtype, b.dtype))


def reduced(a, *, axis=None, keepdims=False) -> MetaArray:
    """The rule of reductions over ``axis`` (None: all axes), keeping the axes as 1 with ``keepdims``."""
    axes = range(a.ndim) if axis is None else [axis] if isinstance(axis, int) else axis
    axes = {ax % a.ndim for ax in axes}
    shape = tuple(1 if i in axes else n for i, n in enumerate(a.shape) if keepdims or i not in axes)
    return MetaArray(shape, a.dtype)
