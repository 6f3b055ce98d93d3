"""Element-wise arithmetic, reductions and shape changes with their gradients.

These are the primitives behind ``Tensor``'s operators. Each is a
``forward(*arrays, **options) -> (out, saved)`` and a
``backward(grad_out, saved, needs) -> grads`` pair, like every primitive in
``convkit.ops``.

Broadcasting: an input of shape ``s`` broadcast to the output shape gets
the gradient summed over the broadcast axes (``unbroadcast``), the adjoint
of broadcasting.
"""

from __future__ import annotations

import math

import numpy as np

from . import Primitive
from .meta import MetaArray, broadcast, reduced, same


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes that broadcasting added or stretched to reach it from ``shape``."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1
    )
    return grad.sum(axis=axes, keepdims=True).reshape(shape) if axes else grad.reshape(shape)


def add_forward(a, b):
    """``out = a + b``."""
    return a + b, (a.shape, b.shape)


def add_backward(g, saved, needs=(True, True)):
    sa, sb = saved
    return (unbroadcast(g, sa) if needs[0] else None,
            unbroadcast(g, sb) if needs[1] else None)


def sub_forward(a, b):
    """``out = a - b``."""
    return a - b, (a.shape, b.shape)


def sub_backward(g, saved, needs=(True, True)):
    sa, sb = saved
    return (unbroadcast(g, sa) if needs[0] else None,
            unbroadcast(-g, sb) if needs[1] else None)


def mul_forward(a, b):
    """``out = a * b``; ``da = g * b``, ``db = g * a``."""
    return a * b, (a, b)


def mul_backward(g, saved, needs=(True, True)):
    a, b = saved
    return (unbroadcast(g * b, a.shape) if needs[0] else None,
            unbroadcast(g * a, b.shape) if needs[1] else None)


def div_forward(a, b):
    """``out = a / b``; ``da = g / b``, ``db = -g * a / b**2``."""
    return a / b, (a, b)


def div_backward(g, saved, needs=(True, True)):
    a, b = saved
    return (unbroadcast(g / b, a.shape) if needs[0] else None,
            unbroadcast(-g * a / (b * b), b.shape) if needs[1] else None)


def neg_forward(a):
    return -a, None


def neg_backward(g, saved, needs=(True,)):
    return (-g,)


def pow_forward(a, *, exponent: float):
    """``out = a ** p`` for a constant ``p``; ``da = g * p * a**(p-1)``."""
    return a ** exponent, (a, exponent)


def pow_backward(g, saved, needs=(True,)):
    a, p = saved
    return (g * p * a ** (p - 1),)


def exp_forward(a):
    out = np.exp(a)
    return out, out


def exp_backward(g, out, needs=(True,)):
    return (g * out,)


def log_forward(a):
    return np.log(a), a


def log_backward(g, a, needs=(True,)):
    return (g / a,)


def sqrt_forward(a):
    out = np.sqrt(a)
    return out, out


def sqrt_backward(g, out, needs=(True,)):
    return (g / (2 * out),)


def abs_forward(a):
    """``|a|``; the gradient at 0 is taken as 0 (``sign(0) = 0``), as in PyTorch."""
    return np.abs(a), a


def abs_backward(g, a, needs=(True,)):
    return (g * np.sign(a),)


def matmul_forward(a, b):
    """``out = a @ b`` with NumPy's matmul broadcasting; 1-D operands are promoted."""
    return a @ b, (a, b)


def matmul_backward(g, saved, needs=(True, True)):
    a, b = saved
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    g2 = g
    if b.ndim == 1:  # b's axis first: for 1-D @ 1-D, g is 0-d and becomes (1, 1)
        g2 = np.expand_dims(g2, -1)
    if a.ndim == 1:
        g2 = np.expand_dims(g2, -2)
    da = db = None
    if needs[0]:
        da = g2 @ np.swapaxes(b2, -1, -2)
        da = unbroadcast(da, a2.shape).reshape(a.shape)
    if needs[1]:
        db = np.swapaxes(a2, -1, -2) @ g2
        db = unbroadcast(db, b2.shape).reshape(b.shape)
    return da, db


def sum_forward(a, *, axis=None, keepdims=False):
    """``out = sum of a over axis``; the gradient is ``g`` broadcast back."""
    return a.sum(axis=axis, keepdims=keepdims), (a.shape, axis, keepdims)


def sum_backward(g, saved, needs=(True,)):
    shape, axis, keepdims = saved
    if not keepdims and axis is not None:
        g = np.expand_dims(g, axis)
    return (np.broadcast_to(g, shape).copy(),)


def mean_forward(a, *, axis=None, keepdims=False):
    """``out = mean of a over axis``; the gradient is ``g / count`` broadcast back."""
    out = a.mean(axis=axis, keepdims=keepdims)
    return out, (a.shape, axis, keepdims, a.size // max(out.size, 1))


def mean_backward(g, saved, needs=(True,)):
    shape, axis, keepdims, count = saved
    if not keepdims and axis is not None:
        g = np.expand_dims(g, axis)
    return (np.broadcast_to(g / count, shape).copy(),)


def max_forward(a, *, axis=None, keepdims=False):
    """``out = max of a over axis``.

    Ties: the gradient goes to every maximal element divided evenly among
    them, which is PyTorch's rule for full reductions (``amax``) too.
    """
    out = a.max(axis=axis, keepdims=True)
    mask = a == out
    count = mask.sum(axis=axis, keepdims=True)
    res = out if keepdims else (out.reshape(()) if axis is None else np.squeeze(out, axis))
    return res, (mask, count, axis, keepdims)


def max_backward(g, saved, needs=(True,)):
    mask, count, axis, keepdims = saved
    if not keepdims:
        g = np.expand_dims(g, axis) if axis is not None else np.reshape(g, (1,) * mask.ndim)
    return (mask * (g / count),)


def reshape_forward(a, *, shape):
    return a.reshape(shape), a.shape


def reshape_backward(g, shape, needs=(True,)):
    return (g.reshape(shape),)


def transpose_forward(a, *, axes):
    """Axis permutation; the gradient applies the inverse permutation."""
    return a.transpose(axes), axes


def transpose_backward(g, axes, needs=(True,)):
    return (g.transpose(np.argsort(axes)),)


def getitem_forward(a, *, index):
    """``a[index]``; the gradient scatters ``g`` back with ``np.add.at`` (repeats add up)."""
    return a[index], (a.shape, index)


def getitem_backward(g, saved, needs=(True,)):
    shape, index = saved
    out = np.zeros(shape, dtype=g.dtype)
    np.add.at(out, index, g)
    return (out,)


def cast_forward(a, *, dtype):
    """``y = a`` converted to ``dtype``; backward converts the gradient back to ``a``'s dtype."""
    return a.astype(dtype), a.dtype


def cast_backward(g, src_dtype, needs=(True,)):
    return (g.astype(src_dtype),)


def concatenate_forward(*arrays, axis: int):
    """``out = [a_0 | a_1 | ...]`` joined along ``axis`` (same shape elsewhere); shapes ``(..., s_i, ...)`` ->
    ``(..., sum_i s_i, ...)``. Backward: each input gets its own slice of ``g`` (``g`` split at the
    running sums of the ``s_i``)."""
    return np.concatenate(arrays, axis=axis), (axis, [a.shape[axis] for a in arrays])


def concatenate_backward(g, saved, needs):
    axis, sizes = saved
    return tuple(np.split(g, np.cumsum(sizes)[:-1], axis=axis))


def stack_forward(*arrays, axis: int):
    """``out[..., i, ...] = a_i`` along a new ``axis``; ``n`` arrays of shape ``S`` -> ``S`` with ``n`` inserted
    at ``axis``. Backward: ``da_i = g[..., i, ...]``."""
    return np.stack(arrays, axis=axis), axis


def stack_backward(g, axis, needs):
    return tuple(np.moveaxis(g, axis, 0))


def matmul_meta(a, b) -> MetaArray:
    """NumPy's matmul shapes: ``(..., n, k) @ (..., k, m) -> (..., n, m)``; a 1-D operand is promoted, and its
    axis dropped from the result."""
    a_shape = (1,) + a.shape if a.ndim == 1 else a.shape
    b_shape = b.shape + (1,) if b.ndim == 1 else b.shape
    if a_shape[-1] != b_shape[-2]:
        raise ValueError(f"matmul: inner sizes differ: {a.shape} @ {b.shape}")
    shape = np.broadcast_shapes(a_shape[:-2], b_shape[:-2]) + (a_shape[-2], b_shape[-1])
    if a.ndim == 1:
        shape = shape[:-2] + shape[-1:]
    if b.ndim == 1:
        shape = shape[:-1]
    return MetaArray(shape, np.result_type(a.dtype, b.dtype))


def reshape_meta(a, *, shape) -> MetaArray:
    """``shape`` with its one ``-1`` (if any) resolved from ``a.size``."""
    shape = tuple(shape)
    if -1 in shape:
        known = math.prod(n for n in shape if n != -1)
        shape = tuple((a.size // known if known else 0) if n == -1 else n for n in shape)
    if math.prod(shape) != a.size:
        raise ValueError(f"reshape: cannot reshape {a.shape} ({a.size} values) to {shape}")
    return MetaArray(shape, a.dtype)


def transpose_meta(a, *, axes) -> MetaArray:
    return MetaArray(tuple(a.shape[i] for i in axes), a.dtype)


def getitem_meta(a, *, index) -> MetaArray:
    """NumPy's indexing rules, applied to a zero-strided stand-in of ``a`` (no data is read or allocated
    for basic indexing; advanced indexing allocates the result's index arrays only)."""
    return MetaArray(np.broadcast_to(np.empty((), np.int8), a.shape)[index].shape, a.dtype)


def cast_meta(a, *, dtype) -> MetaArray:
    return MetaArray(a.shape, dtype)


def concatenate_meta(*arrays, axis: int) -> MetaArray:
    first = arrays[0]
    axis %= first.ndim
    size = sum(a.shape[axis] for a in arrays)
    return MetaArray(first.shape[:axis] + (size,) + first.shape[axis + 1:],
                     np.result_type(*(a.dtype for a in arrays)))


def stack_meta(*arrays, axis: int) -> MetaArray:
    first = arrays[0]
    axis %= first.ndim + 1
    return MetaArray(first.shape[:axis] + (len(arrays),) + first.shape[axis:],
                     np.result_type(*(a.dtype for a in arrays)))


def _mean_meta(a, *, axis=None, keepdims=False) -> MetaArray:
    out = reduced(a, axis=axis, keepdims=keepdims)
    return out if a.dtype.kind == "f" else out.astype(np.float64)


add = Primitive("add", add_forward, add_backward, broadcast)
sub = Primitive("sub", sub_forward, sub_backward, broadcast)
mul = Primitive("mul", mul_forward, mul_backward, broadcast)
div = Primitive("div", div_forward, div_backward, broadcast)
neg = Primitive("neg", neg_forward, neg_backward, same)
power = Primitive("pow", pow_forward, pow_backward, same)
exp = Primitive("exp", exp_forward, exp_backward, same)
log = Primitive("log", log_forward, log_backward, same)
sqrt = Primitive("sqrt", sqrt_forward, sqrt_backward, same)
absolute = Primitive("abs", abs_forward, abs_backward, same)
matmul = Primitive("matmul", matmul_forward, matmul_backward, matmul_meta)
reduce_sum = Primitive("sum", sum_forward, sum_backward, reduced)
reduce_mean = Primitive("mean", mean_forward, mean_backward, _mean_meta)
reduce_max = Primitive("max", max_forward, max_backward, reduced)
reshape = Primitive("reshape", reshape_forward, reshape_backward, reshape_meta)
transpose = Primitive("transpose", transpose_forward, transpose_backward, transpose_meta)
getitem = Primitive("getitem", getitem_forward, getitem_backward, getitem_meta)
cast = Primitive("cast", cast_forward, cast_backward, cast_meta)
concatenate = Primitive("cat", concatenate_forward, concatenate_backward, concatenate_meta)
stack = Primitive("stack", stack_forward, stack_backward, stack_meta)
