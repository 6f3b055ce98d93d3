"""Pooling layers shaped like ``torch.nn``: max, average, unpooling, adaptive and global.

The layers hold no parameters; each stores its arguments under PyTorch's
attribute names (with PyTorch's defaults, e.g. ``stride = kernel_size`` when
not given) and calls the matching function of ``convkit.functional``.
The window arguments are checked when the layer is built.

>>> import numpy as np
>>> from convkit import nn
>>> pool = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
>>> pool
MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=True)
>>> pool(np.zeros((1, 8, 7, 7))).shape
(1, 8, 4, 4)
"""

from __future__ import annotations

from .. import functional as F
from ..functional.pooling import _check_divisor, _window_args
from ..ops._args import ntuple
from .module import Module

__all__ = [
    "MaxPool1d", "MaxPool2d", "MaxPool3d",
    "AvgPool1d", "AvgPool2d", "AvgPool3d",
    "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d",
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d",
    "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d",
    "GlobalAvgPool2d",
]


class _MaxPoolNd(Module):
    _nsp = 0

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        super().__init__()
        _window_args(self._nsp, type(self).__name__, kernel_size, stride, padding, dilation)
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def _args(self):
        return (self.kernel_size, self.stride, self.padding, self.dilation, self.ceil_mode, self.return_indices)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    """Max pooling over ``(N, C, L)`` or ``(C, L)``; see ``convkit.functional.max_pool1d``.

    Args:
        kernel_size, stride (default: kernel_size), padding, dilation, return_indices, ceil_mode:
            as in ``torch.nn.MaxPool1d``.
    """

    _nsp = 1

    def forward(self, input):
        return F.max_pool1d(input, *self._args())


class MaxPool2d(_MaxPoolNd):
    """Max pooling over ``(N, C, H, W)`` or ``(C, H, W)``; arguments as ``MaxPool1d``, per axis."""

    _nsp = 2

    def forward(self, input):
        return F.max_pool2d(input, *self._args())


class MaxPool3d(_MaxPoolNd):
    """Max pooling over ``(N, C, D, H, W)`` or ``(C, D, H, W)``; arguments as ``MaxPool1d``, per axis."""

    _nsp = 3

    def forward(self, input):
        return F.max_pool3d(input, *self._args())


class _AvgPoolNd(Module):
    _nsp = 0

    def __init__(self, kernel_size, stride, padding, ceil_mode, count_include_pad):
        super().__init__()
        _window_args(self._nsp, type(self).__name__, kernel_size, stride, padding)
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(_AvgPoolNd):
    """Average pooling over ``(N, C, L)`` or ``(C, L)``; see ``convkit.functional.avg_pool1d``.

    As in PyTorch, ``kernel_size``, ``stride`` and ``padding`` are stored as 1-tuples.

    Args:
        kernel_size, stride (default: kernel_size), padding, ceil_mode, count_include_pad:
            as in ``torch.nn.AvgPool1d``.
    """

    _nsp = 1

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)
        self.kernel_size = ntuple(kernel_size, 1, "kernel_size", "AvgPool1d")
        self.stride = ntuple(self.stride, 1, "stride", "AvgPool1d")
        self.padding = ntuple(padding, 1, "padding", "AvgPool1d", minimum=0)

    def forward(self, input):
        return F.avg_pool1d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)


class _AvgPoolDivisorNd(_AvgPoolNd):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)
        self.divisor_override = _check_divisor(divisor_override, type(self).__name__)


class AvgPool2d(_AvgPoolDivisorNd):
    """Average pooling over ``(N, C, H, W)`` or ``(C, H, W)``; see ``convkit.functional.avg_pool2d``.

    Args:
        kernel_size, stride (default: kernel_size), padding, ceil_mode, count_include_pad,
        divisor_override: as in ``torch.nn.AvgPool2d``.
    """

    _nsp = 2

    def forward(self, input):
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)


class AvgPool3d(_AvgPoolDivisorNd):
    """Average pooling over ``(N, C, D, H, W)`` or ``(C, D, H, W)``; arguments as ``AvgPool2d``."""

    _nsp = 3

    def forward(self, input):
        return F.avg_pool3d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)


class _MaxUnpoolNd(Module):
    _nsp = 0

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        name = type(self).__name__
        self.kernel_size = ntuple(kernel_size, self._nsp, "kernel_size", name)
        self.stride = ntuple(stride if stride is not None else kernel_size, self._nsp, "stride", name)
        self.padding = ntuple(padding, self._nsp, "padding", name, minimum=0)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpoolNd):
    """Partial inverse of ``MaxPool1d``; ``forward(input, indices, output_size=None)``.

    ``kernel_size``, ``stride`` (default: kernel_size) and ``padding`` are stored as tuples, as in PyTorch.
    """

    _nsp = 1

    def forward(self, input, indices, output_size=None):
        return F.max_unpool1d(input, indices, self.kernel_size, self.stride, self.padding, output_size)


class MaxUnpool2d(_MaxUnpoolNd):
    """Partial inverse of ``MaxPool2d``; see ``MaxUnpool1d``."""

    _nsp = 2

    def forward(self, input, indices, output_size=None):
        return F.max_unpool2d(input, indices, self.kernel_size, self.stride, self.padding, output_size)


class MaxUnpool3d(_MaxUnpoolNd):
    """Partial inverse of ``MaxPool3d``; see ``MaxUnpool1d``."""

    _nsp = 3

    def forward(self, input, indices, output_size=None):
        return F.max_unpool3d(input, indices, self.kernel_size, self.stride, self.padding, output_size)


class _AdaptivePoolNd(Module):
    def __init__(self, output_size):
        super().__init__()
        self.output_size = output_size

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptivePoolNd):
    """Average to ``output_size`` windows; see ``convkit.functional.adaptive_avg_pool1d``."""

    def forward(self, input):
        return F.adaptive_avg_pool1d(input, self.output_size)


class AdaptiveAvgPool2d(_AdaptivePoolNd):
    """Average to ``output_size`` (int or tuple, ``None`` keeps an axis) over ``(N, C, H, W)``."""

    def forward(self, input):
        return F.adaptive_avg_pool2d(input, self.output_size)


class AdaptiveAvgPool3d(_AdaptivePoolNd):
    """Average to ``output_size`` (int or tuple, ``None`` keeps an axis) over ``(N, C, D, H, W)``."""

    def forward(self, input):
        return F.adaptive_avg_pool3d(input, self.output_size)


class _AdaptiveMaxPoolNd(_AdaptivePoolNd):
    def __init__(self, output_size, return_indices=False):
        super().__init__(output_size)
        self.return_indices = return_indices


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    """Maximum over ``output_size`` windows; see ``convkit.functional.adaptive_max_pool1d``."""

    def forward(self, input):
        return F.adaptive_max_pool1d(input, self.output_size, self.return_indices)


class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    """Maximum over ``output_size`` windows (``None`` keeps an axis) over ``(N, C, H, W)``."""

    def forward(self, input):
        return F.adaptive_max_pool2d(input, self.output_size, self.return_indices)


class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    """Maximum over ``output_size`` windows (``None`` keeps an axis) over ``(N, C, D, H, W)``."""

    def forward(self, input):
        return F.adaptive_max_pool3d(input, self.output_size, self.return_indices)


class GlobalAvgPool2d(Module):
    """Mean over all spatial positions (convkit extra): ``(N, C, H, W)`` -> ``(N, C, 1, 1)``.

    Args:
        flatten (bool): return ``(N, C)`` instead (``(C,)`` for an unbatched input),
            ready for a ``Linear`` head. Default: False.

    >>> import numpy as np
    >>> GlobalAvgPool2d(flatten=True)(np.ones((2, 3, 4, 4))).shape
    (2, 3)
    """

    def __init__(self, flatten: bool = False):
        super().__init__()
        self.flatten = flatten

    def forward(self, input):
        y = F.global_avg_pool2d(input)
        return y.reshape(y.shape[:-2]) if self.flatten else y

    def extra_repr(self) -> str:
        return f"flatten={self.flatten}"
