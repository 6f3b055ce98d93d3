"""Pooling with PyTorch's functional signatures, 1-D/2-D/3-D.

Inputs are ``(N, C, *spatial)`` or, as in PyTorch, unbatched ``(C, *spatial)``
(the batch axis is added for the computation and removed again). Integer
inputs are converted to the default float dtype; outputs keep the input's
float dtype. Indices (``return_indices=True``) are int64 Tensors holding the
flat position of each maximum in its input plane (``h*W + w`` in 2-D), the
form ``max_unpool*d`` takes back.

Output size per axis (``ceil_mode`` correction included)::

    o = floor((n + 2p - d(k-1) - 1 + (s-1 if ceil_mode else 0)) / s) + 1,
    then o -= 1 if ceil_mode and (o-1)*s >= n + p

>>> import numpy as np
>>> import convkit.functional as F
>>> F.avg_pool1d(np.arange(7.0).reshape(1, 1, 7), 2, 3, ceil_mode=True).tolist()
[[[0.5, 3.5, 6.0]]]
>>> y, idx = F.max_pool2d(np.arange(16.0).reshape(1, 1, 4, 4), 2, return_indices=True)
>>> idx.tolist()
[[[[5, 7], [13, 15]]]]
>>> F.max_unpool2d(y, idx, 2).shape
(1, 1, 4, 4)
"""

from __future__ import annotations

import numpy as np

from ..autograd import apply, apply_with_saved
from ..ops import adaptive_pooling as AP
from ..ops import pooling as P
from ..ops._args import is_int, ntuple
from ..ops.meta import MetaArray
from ..tensor import Tensor, as_tensor

__all__ = [
    "max_pool1d", "max_pool2d", "max_pool3d",
    "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "max_unpool1d", "max_unpool2d", "max_unpool3d",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
    "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
    "global_avg_pool1d", "global_avg_pool2d", "global_avg_pool3d",
]

_LAYOUT = {1: "L", 2: "H, W", 3: "D, H, W"}


# ------------------------------------------------------------------ argument checks
def _pool_input(x, nsp: int, op: str) -> tuple[Tensor, bool]:
    """The input as a batched ``(N, C, *spatial)`` Tensor, and whether it came batched."""
    t = as_tensor(x, name="input", op=op)
    if t.ndim not in (nsp + 1, nsp + 2):
        raise ValueError(
            f"{op}: input must be {nsp + 1}-D (C, {_LAYOUT[nsp]}) or {nsp + 2}-D "
            f"(N, C, {_LAYOUT[nsp]}), got shape {t.shape}"
        )
    if any(n == 0 for n in t.shape[-nsp - 1:]):
        raise ValueError(f"{op}: input has an empty channel or spatial dimension, shape {t.shape}")
    batched = t.ndim == nsp + 2
    return (t if batched else t.reshape((1,) + t.shape)), batched


def _unbatch(t: Tensor, batched: bool) -> Tensor:
    return t if batched else t.reshape(t.shape[1:])


def _stride(stride, kernel, nsp: int, op: str) -> tuple[int, ...]:
    """``stride`` as an ``nsp``-tuple; None or empty (PyTorch's ``stride=()``) means the kernel size."""
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        return kernel
    return ntuple(stride, nsp, "stride", op)


def _window_args(nsp: int, op: str, kernel_size, stride, padding, dilation=1):
    """kernel, stride (default: kernel), padding and dilation as ``nsp``-tuples, checked as PyTorch does."""
    kernel = ntuple(kernel_size, nsp, "kernel_size", op)
    stride = _stride(stride, kernel, nsp, op)
    padding = ntuple(padding, nsp, "padding", op, minimum=0)
    dilation = ntuple(dilation, nsp, "dilation", op)
    if any(p > k // 2 for p, k in zip(padding, kernel)):
        raise ValueError(
            f"{op}: padding should be at most half of kernel_size (p <= k // 2 per axis), "
            f"got padding={padding} with kernel_size={kernel}"
        )
    return kernel, stride, padding, dilation


def _output_shape(op: str, spatial, kernel, stride, padding, dilation, ceil_mode) -> tuple[int, ...]:
    out = tuple(P.pool_output_size(n, k, s, p, d, ceil_mode)
                for n, k, s, p, d in zip(spatial, kernel, stride, padding, dilation))
    if any(o < 1 for o in out):
        raise ValueError(
            f"{op}: input too small: spatial size {tuple(spatial)} with kernel_size={kernel}, "
            f"stride={stride}, padding={padding}, dilation={dilation}, ceil_mode={ceil_mode} "
            f"gives output size {out}; every output size must be >= 1"
        )
    return out


def _indices_tensor(indices: np.ndarray | None, y: Tensor, batched: bool) -> Tensor:
    """The int64 indices of a max pooling; for a meta input (``indices`` None), a meta tensor of ``y``'s shape."""
    if indices is None:
        return Tensor._from_op(MetaArray(y.shape, np.int64), None)
    return as_tensor(indices if batched else indices[0], name="indices", float_only=False)


# ------------------------------------------------------------------ max pooling
def _max_pool(nsp, op, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    x, batched = _pool_input(input, nsp, op)
    kernel, stride, padding, dilation = _window_args(nsp, op, kernel_size, stride, padding, dilation)
    _output_shape(op, x.shape[2:], kernel, stride, padding, dilation, bool(ceil_mode))
    y, saved = apply_with_saved(P.max_pool, [x], kernel=kernel, stride=stride,
                                padding=padding, dilation=dilation, ceil_mode=bool(ceil_mode))
    y = _unbatch(y, batched)
    return (y, _indices_tensor(saved and saved.indices, y, batched)) if return_indices else y


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """1-D max pooling over ``(N, C, L)`` or ``(C, L)``.

    ``y[n, c, o] = max_j x[n, c, o*s - p + j*d]`` (``-inf`` padding). Ties go to
    the first maximum in the window, NaN propagates (the last NaN is the
    index), as PyTorch on CPU.

    Args:
        kernel_size (int | tuple): window size ``k``.
        stride (int | tuple | None): step ``s``. Default: ``kernel_size``.
        padding (int | tuple): implicit ``-inf`` on both sides, ``0 <= p <= k // 2``. Default: 0.
        dilation (int | tuple): spacing ``d`` between window elements. Default: 1.
        ceil_mode (bool): round the output size up (module docstring). Default: False.
        return_indices (bool): also return the int64 argmax indices. Default: False.
    """
    return _max_pool(1, "max_pool1d", input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """2-D max pooling over ``(N, C, H, W)`` or ``(C, H, W)``; arguments as ``max_pool1d``, per axis."""
    return _max_pool(2, "max_pool2d", input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """3-D max pooling over ``(N, C, D, H, W)`` or ``(C, D, H, W)``; arguments as ``max_pool1d``, per axis."""
    return _max_pool(3, "max_pool3d", input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


# ------------------------------------------------------------------ average pooling
def _check_divisor(divisor_override, op: str):
    if divisor_override is None:
        return None
    if not is_int(divisor_override):
        raise TypeError(
            f"{op}: divisor_override must be an int or None, got "
            f"{type(divisor_override).__name__} {divisor_override!r}"
        )
    if divisor_override == 0:
        raise ValueError(f"{op}: divisor_override must not be zero")
    return int(divisor_override)


def _avg_pool(nsp, op, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override):
    x, batched = _pool_input(input, nsp, op)
    kernel, stride, padding, _ = _window_args(nsp, op, kernel_size, stride, padding)
    divisor_override = _check_divisor(divisor_override, op)
    if nsp == 3 and any(n < k for n, k in zip(x.shape[2:], kernel)):
        raise ValueError(
            f"{op}: input spatial size {x.shape[2:]} is smaller than kernel_size {kernel} "
            f"(PyTorch's avg_pool3d requires input >= kernel along every axis, padding notwithstanding)"
        )
    _output_shape(op, x.shape[2:], kernel, stride, padding, (1,) * nsp, bool(ceil_mode))
    y = apply(P.avg_pool, [x], kernel=kernel, stride=stride, padding=padding,
              ceil_mode=bool(ceil_mode), count_include_pad=bool(count_include_pad),
              divisor_override=divisor_override)
    return _unbatch(y, batched)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """1-D average pooling over ``(N, C, L)`` or ``(C, L)``.

    ``y[n, c, o] = (1 / D_o) * sum_j x[n, c, o*s - p + j]`` (zero padding). The
    divisor ``D_o`` counts the window clipped to ``[-p, n + p)`` with
    ``count_include_pad`` (explicit padding counts, the ceil_mode overhang
    does not), or to ``[0, n)`` without it.

    Args:
        kernel_size (int | tuple): window size ``k``.
        stride (int | tuple | None): step ``s``. Default: ``kernel_size``.
        padding (int | tuple): implicit zeros on both sides, ``0 <= p <= k // 2``. Default: 0.
        ceil_mode (bool): round the output size up. Default: False.
        count_include_pad (bool): count explicit padding in the divisor. Default: True.
    """
    return _avg_pool(1, "avg_pool1d", input, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """2-D average pooling over ``(N, C, H, W)`` or ``(C, H, W)``; arguments as ``avg_pool1d``, plus

    Args:
        divisor_override (int | None): if given (non-zero), the divisor of every window. Default: None.
    """
    return _avg_pool(2, "avg_pool2d", input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """3-D average pooling over ``(N, C, D, H, W)`` or ``(C, D, H, W)``; arguments as ``avg_pool2d``."""
    return _avg_pool(3, "avg_pool3d", input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                     divisor_override)


# ------------------------------------------------------------------ max unpooling
def _unpool_shape(op, spatial, kernel, stride, padding, output_size) -> tuple[int, ...]:
    """PyTorch's ``_unpool_output_size``: the default, or ``output_size`` checked against it."""
    nsp = len(kernel)
    default = tuple(P.unpool_output_size(n, k, s, p) for n, k, s, p in zip(spatial, kernel, stride, padding))
    if output_size is None:
        size = default
    else:
        if not isinstance(output_size, (tuple, list)) or not all(is_int(v) for v in output_size):
            raise TypeError(f"{op}: output_size must be a tuple of ints, got {output_size!r}")
        size = tuple(output_size[2:] if len(output_size) == nsp + 2 else output_size)
        if len(size) != nsp:
            raise ValueError(
                f"{op}: output_size must hold {nsp} (or {nsp + 2}) sizes, got {len(size)}: {output_size!r}"
            )
        for axis, (o, d, s) in enumerate(zip(size, default, stride)):
            if not d - s < o < d + s:
                raise ValueError(
                    f"{op}: invalid output_size {tuple(output_size)}: entry {axis} must be between "
                    f"{d - s} and {d + s} (exclusive) for input size {tuple(spatial)}, "
                    f"kernel_size={kernel}, stride={stride}, padding={padding}"
                )
    if any(o < 1 for o in size):
        raise ValueError(
            f"{op}: output size {size} is empty (input size {tuple(spatial)}, kernel_size={kernel}, "
            f"stride={stride}, padding={padding}); every output size must be >= 1"
        )
    return tuple(int(o) for o in size)


def _unpool_indices(indices, x: Tensor, batched: bool, op: str) -> Tensor:
    """``indices`` as an int64 Tensor with the (batched) input's shape."""
    idx = as_tensor(indices, name="indices", op=op, float_only=False)
    if idx.dtype.kind not in "iu":
        raise TypeError(
            f"{op}: indices must be integers (the int64 indices of max_pool with return_indices=True), "
            f"got dtype {idx.dtype}"
        )
    expected = x.shape if batched else x.shape[1:]
    if idx.shape != expected:
        raise ValueError(f"{op}: indices must have the input's shape {expected}, got {idx.shape}")
    data = idx.data.astype(np.int64, copy=False)
    return as_tensor(data if batched else data[None], name="indices", float_only=False)


def _max_unpool(nsp, op, input, indices, kernel_size, stride, padding, output_size):
    x, batched = _pool_input(input, nsp, op)
    idx = _unpool_indices(indices, x, batched, op)
    kernel = ntuple(kernel_size, nsp, "kernel_size", op)
    stride = _stride(stride, kernel, nsp, op)
    padding = ntuple(padding, nsp, "padding", op, minimum=0)
    size = _unpool_shape(op, x.shape[2:], kernel, stride, padding, output_size)
    plane = int(np.prod(size))
    if idx.data.size and (idx.data.min() < 0 or idx.data.max() >= plane):
        raise ValueError(
            f"{op}: indices must lie in [0, {plane}) for an output plane of size {size}, got values in "
            f"[{idx.data.min()}, {idx.data.max()}]; if they index a larger pooled input, pass its size "
            f"as output_size"
        )
    y = apply(P.max_unpool, [x, idx], output_size=size)
    return _unbatch(y, batched)


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Partial inverse of ``max_pool1d``: every value goes to its index, the rest is zero.

    ``y[n, c, indices[n, c, i]] = x[n, c, i]``; output length
    ``(L - 1)*s - 2p + k`` unless ``output_size`` (1 or 3 ints, each strictly
    between that default minus and plus ``s``) says otherwise.

    Args:
        input: pooled values ``(N, C, L)`` or ``(C, L)``.
        indices: int indices of the same shape, from ``max_pool1d(..., return_indices=True)``.
        kernel_size, stride, padding: those of the pooling (stride default: ``kernel_size``).
        output_size (tuple | None): the size before pooling. Default: None.
    """
    return _max_unpool(1, "max_unpool1d", input, indices, kernel_size, stride, padding, output_size)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Partial inverse of ``max_pool2d`` over ``(N, C, H, W)`` or ``(C, H, W)``; see ``max_unpool1d``."""
    return _max_unpool(2, "max_unpool2d", input, indices, kernel_size, stride, padding, output_size)


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Partial inverse of ``max_pool3d`` over ``(N, C, D, H, W)`` or ``(C, D, H, W)``; see ``max_unpool1d``."""
    return _max_unpool(3, "max_unpool3d", input, indices, kernel_size, stride, padding, output_size)


# ------------------------------------------------------------------ adaptive pooling
def _adaptive_shape(output_size, spatial, op: str) -> tuple[int, ...]:
    """Target size per axis: an int for all axes, or a tuple whose ``None`` entries keep the input size."""
    nsp = len(spatial)
    sizes = (output_size,) * nsp if is_int(output_size) else output_size
    if (not isinstance(sizes, (tuple, list)) or len(sizes) != nsp
            or not all(v is None or is_int(v) for v in sizes)):
        raise TypeError(
            f"{op}: output_size must be an int or a tuple of {nsp} ints or None, got {output_size!r}"
        )
    if any(v is not None and v < 0 for v in sizes):
        raise ValueError(f"{op}: output_size entries must be >= 0, got {output_size!r}")
    return tuple(n if v is None else int(v) for v, n in zip(sizes, spatial))


def _adaptive_avg(nsp, op, input, output_size):
    x, batched = _pool_input(input, nsp, op)
    size = _adaptive_shape(output_size, x.shape[2:], op)
    y = apply(AP.adaptive_avg_pool, [x], output_size=size)
    return _unbatch(y, batched)


def adaptive_avg_pool1d(input, output_size):
    """Average over ``output_size`` windows per axis; window ``i`` of ``o`` over ``n`` is
    ``[floor(i*n/o), ceil((i+1)*n/o))``. Input ``(N, C, L)`` or ``(C, L)``.

    Args:
        output_size (int | tuple): target size; ``None`` entries keep the input size.
    """
    return _adaptive_avg(1, "adaptive_avg_pool1d", input, output_size)


def adaptive_avg_pool2d(input, output_size):
    """``adaptive_avg_pool1d`` over ``(N, C, H, W)`` or ``(C, H, W)``, per axis."""
    return _adaptive_avg(2, "adaptive_avg_pool2d", input, output_size)


def adaptive_avg_pool3d(input, output_size):
    """``adaptive_avg_pool1d`` over ``(N, C, D, H, W)`` or ``(C, D, H, W)``, per axis."""
    return _adaptive_avg(3, "adaptive_avg_pool3d", input, output_size)


def _adaptive_max(nsp, op, input, output_size, return_indices):
    x, batched = _pool_input(input, nsp, op)
    size = _adaptive_shape(output_size, x.shape[2:], op)
    y, saved = apply_with_saved(AP.adaptive_max_pool, [x], output_size=size)
    y = _unbatch(y, batched)
    return (y, _indices_tensor(saved and saved[0], y, batched)) if return_indices else y


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """Maximum over the windows of ``adaptive_avg_pool1d``; ties and NaN as ``max_pool1d``.

    Args:
        output_size (int | tuple): target size; ``None`` entries keep the input size.
        return_indices (bool): also return the int64 argmax indices. Default: False.
    """
    return _adaptive_max(1, "adaptive_max_pool1d", input, output_size, return_indices)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """``adaptive_max_pool1d`` over ``(N, C, H, W)`` or ``(C, H, W)``, per axis."""
    return _adaptive_max(2, "adaptive_max_pool2d", input, output_size, return_indices)


def adaptive_max_pool3d(input, output_size, return_indices=False):
    """``adaptive_max_pool1d`` over ``(N, C, D, H, W)`` or ``(C, D, H, W)``, per axis."""
    return _adaptive_max(3, "adaptive_max_pool3d", input, output_size, return_indices)


# ------------------------------------------------------------------ global average
def _global_avg(nsp, op, input):
    x, batched = _pool_input(input, nsp, op)
    return _unbatch(apply(P.global_avg_pool, [x]), batched)


def global_avg_pool1d(input):
    """Mean over the length: ``(N, C, L)`` -> ``(N, C, 1)`` (``(C, L)`` -> ``(C, 1)``)."""
    return _global_avg(1, "global_avg_pool1d", input)


def global_avg_pool2d(input):
    """Mean over all spatial positions: ``(N, C, H, W)`` -> ``(N, C, 1, 1)`` (unbatched too).

    >>> import numpy as np
    >>> global_avg_pool2d(np.ones((2, 3, 4, 5))).shape
    (2, 3, 1, 1)
    """
    return _global_avg(2, "global_avg_pool2d", input)


def global_avg_pool3d(input):
    """Mean over all spatial positions: ``(N, C, D, H, W)`` -> ``(N, C, 1, 1, 1)`` (unbatched too)."""
    return _global_avg(3, "global_avg_pool3d", input)
