"""``unfold`` / ``fold``: convolution as a matrix product, with PyTorch's signatures (``F.unfold``, ``F.fold``).

``unfold(x, k)`` lays every ``k``-window of ``x (N, C, H, W)`` out as a
column of ``(N, C*K, L)``; a convolution is then one matrix product with the
flattened weight, and ``fold`` (the adjoint: overlapping windows add up)
puts columns back into an image. Formulas: ``convkit.ops.unfold``.

>>> import numpy as np
>>> import convkit.functional as F
>>> x = np.arange(16.0).reshape(1, 1, 4, 4)
>>> w = np.ones((2, 1, 3, 3))
>>> cols = F.unfold(x, 3)                                  # (1, 9, 4): four 3x3 windows
>>> y = (w.reshape(2, 9) @ cols.numpy()).reshape(1, 2, 2, 2)
>>> bool(np.allclose(y, F.conv2d(x, w).numpy()))
True
>>> F.fold(F.unfold(x, 2, stride=2), (4, 4), 2, stride=2).numpy().tolist() == x.tolist()
True
"""

from __future__ import annotations

import math

from ..autograd import apply
from ..ops import unfold as U
from ..ops._args import ntuple
from ..ops.windows import out_sizes
from ..tensor import Tensor, as_tensor

__all__ = ["unfold", "fold"]


def _geometry(op: str, kernel_size, dilation, padding, stride):
    kernel = ntuple(kernel_size, 2, "kernel_size", op)
    dilation = ntuple(dilation, 2, "dilation", op)
    stride = ntuple(stride, 2, "stride", op)
    pads = tuple((p, p) for p in ntuple(padding, 2, "padding", op, minimum=0))
    return kernel, dilation, pads, stride


def _blocks(op: str, size, kernel, dilation, pads, stride) -> tuple[int, int]:
    """Windows per axis, ``(size + 2p - d(k-1) - 1) // s + 1``; each must be positive."""
    blocks = out_sizes(size, kernel, stride, dilation, pads)
    if any(b < 1 for b in blocks):
        raise ValueError(f"{op}: the kernel {kernel} (dilation {dilation}) does not fit the padded size "
                         f"{tuple(n + lo + hi for n, (lo, hi) in zip(size, pads))} (size {tuple(size)}, padding "
                         f"{tuple(lo for lo, _ in pads)}); reduce kernel_size or dilation, or pad more")
    return blocks


def unfold(input, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Sliding windows as columns: ``(N, C, H, W)`` -> ``(N, C*kH*kW, L)``, or unbatched ``(C, H, W)`` ->
    ``(C*kH*kW, L)``, ``L`` = the number of windows; as ``torch.nn.functional.unfold``."""
    op = "unfold"
    x = as_tensor(input, op=op)
    if x.ndim not in (3, 4):
        raise ValueError(f"{op}: input must be 4-D (N, C, H, W) or 3-D unbatched (C, H, W), got shape {x.shape}")
    kernel, dilation, pads, stride = _geometry(op, kernel_size, dilation, padding, stride)
    _blocks(op, x.shape[-2:], kernel, dilation, pads, stride)
    batched = x.ndim == 4
    xb = x if batched else x.reshape((1,) + x.shape)
    cols = apply(U.unfold, [xb], kernel=kernel, stride=stride, dilation=dilation, pads=pads)
    return cols if batched else cols.reshape(cols.shape[1:])


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """Columns back into an image, overlaps summed: ``(N, C*kH*kW, L)`` -> ``(N, C, *output_size)`` (or
    unbatched ``(C*kH*kW, L)`` -> ``(C, *output_size)``); the adjoint of ``unfold``, as ``torch.nn.functional.fold``."""
    op = "fold"
    cols = as_tensor(input, op=op)
    if cols.ndim not in (2, 3):
        raise ValueError(f"{op}: input must be 3-D (N, C*kH*kW, L) or 2-D unbatched (C*kH*kW, L), "
                         f"got shape {cols.shape}")
    size = ntuple(output_size, 2, "output_size", op)
    kernel, dilation, pads, stride = _geometry(op, kernel_size, dilation, padding, stride)
    taps = math.prod(kernel)
    rows, windows = cols.shape[-2:]
    if rows % taps:
        raise ValueError(f"{op}: input.shape[-2] = {rows} must be a multiple of kH*kW = {taps} "
                         f"(kernel_size {kernel}): C*kH*kW rows")
    blocks = _blocks(op, size, kernel, dilation, pads, stride)
    if windows != math.prod(blocks):
        raise ValueError(f"{op}: input.shape[-1] = {windows} must be the number of windows, {math.prod(blocks)} "
                         f"({blocks[0]} x {blocks[1]} for output_size {size}, kernel_size {kernel}, dilation "
                         f"{dilation}, padding {tuple(lo for lo, _ in pads)}, stride {stride})")
    batched = cols.ndim == 3
    cb = cols if batched else cols.reshape((1,) + cols.shape)
    out = apply(U.fold, [cb], size=size, kernel=kernel, stride=stride, dilation=dilation, pads=pads)
    return out if batched else out.reshape(out.shape[1:])
