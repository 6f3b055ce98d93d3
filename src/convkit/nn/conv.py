"""Convolution layers shaped like ``torch.nn``: ``Conv{1,2,3}d`` and ``ConvTranspose{1,2,3}d``.

Attributes, weight layouts, defaults, initialisation and ``repr`` are
PyTorch's, so a torch ``state_dict`` (tensors as ndarrays) loads unchanged:

* ``Conv*d.weight``: ``(out_channels, in_channels/groups, *kernel_size)``;
* ``ConvTranspose*d.weight``: ``(in_channels, out_channels/groups, *kernel_size)``;
* ``bias``: ``(out_channels,)`` or None.

Initialisation: ``weight ~ kaiming_uniform_(a=sqrt(5))``, i.e.
``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``, and ``bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))``,
with ``fan_in = weight.shape[1] * prod(kernel_size)`` (for the transposed
layers that is ``out_channels/groups * prod(kernel_size)``, as in PyTorch).

>>> import numpy as np
>>> import convkit.nn as nn
>>> conv = nn.Conv2d(1, 6, 5, padding=2)
>>> conv
Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))
>>> x = np.zeros((4, 1, 28, 28), dtype=np.float32)
>>> conv(x).shape
(4, 6, 28, 28)
>>> up = nn.ConvTranspose2d(6, 1, 3, stride=2, padding=1)
>>> up(conv(x), output_size=(56, 56)).shape
(4, 1, 56, 56)
"""

from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from ..ops._args import ntuple
from ..ops.conv_algorithms.auto import check_name
from ..ops.conv_transpose import transposed_sizes
from ..ops.padding import PADDING_MODES
from ..tensor import Tensor, get_default_dtype
from . import init
from .module import Module, Parameter, empty, ends_in_relu

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d"]


class _ConvBase(Module):
    """Shared construction: argument checks, parameters, initialisation, ``extra_repr``."""

    _nsp: int
    transposed: bool

    def _setup(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
               padding_mode, output_padding, dtype, algorithm) -> None:
        name, n = type(self).__name__, self._nsp
        check_name(algorithm, f"{name}: algorithm")
        for arg, v in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name}: {arg} must be a positive int, got {v!r}")
        if in_channels % groups or out_channels % groups:
            raise ValueError(
                f"{name}: groups={groups} must divide both in_channels ({in_channels}) and "
                f"out_channels ({out_channels})"
            )
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = ntuple(kernel_size, n, "kernel_size", name)
        self.stride = ntuple(stride, n, "stride", name)
        self.padding = self._padding(padding)
        self.dilation = ntuple(dilation, n, "dilation", name)
        self.output_padding = ntuple(output_padding, n, "output_padding", name, minimum=0)
        self.groups = groups
        self.padding_mode = padding_mode
        self.algorithm = algorithm
        dt = get_default_dtype() if dtype is None else np.dtype(dtype)
        if self.transposed:
            shape = (in_channels, out_channels // groups) + self.kernel_size
        else:
            shape = (out_channels, in_channels // groups) + self.kernel_size
        self.weight = Parameter(empty(shape, dtype=dt))
        if bias:
            self.bias = Parameter(empty(out_channels, dtype=dt))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def _padding(self, padding):
        name = type(self).__name__
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{name}: padding must be 'same', 'valid', an int or a tuple, got {padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{name}: padding='same' needs stride 1, got stride={self.stride}")
            return padding
        return ntuple(padding, self._nsp, "padding", name, minimum=0)

    def reset_parameters(self) -> None:
        """PyTorch's default: ``kaiming_uniform_(w, a=sqrt(5))``, bias ``U(+-1/sqrt(fan_in))``."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = init.fan_in(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            init.uniform_(self.bias, -bound, bound)

    def extra_repr(self) -> str:
        n = self._nsp
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0,) * n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        if self.algorithm != "auto":
            s += f", algorithm={self.algorithm}"
        return s


class _ConvNd(_ConvBase):
    transposed = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", dtype=None, *,
                 algorithm: str = "auto"):
        super().__init__()
        self._setup(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                    padding_mode, 0, dtype, algorithm)

    @ends_in_relu
    def forward(self, input, *, relu_slope=None) -> Tensor:
        """The convolution; ``relu_slope`` (None, or >= 0): end in that (leaky) ReLU, in the same pass."""
        fn = (F.conv1d, F.conv2d, F.conv3d)[self._nsp - 1]
        return fn(input, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups,
                  padding_mode=self.padding_mode, algorithm=self.algorithm, relu_slope=relu_slope)


class Conv1d(_ConvNd):
    """1-D convolution layer (cross-correlation), as ``torch.nn.Conv1d``.

    Shape: input ``(N, C_in, L)`` or ``(C_in, L)`` -> output ``(N, C_out, L_out)``,
    ``L_out = (L + 2*padding - dilation*(kernel_size-1) - 1) // stride + 1``.
    Attributes: ``weight (C_out, C_in/groups, kL)``, ``bias (C_out,)``.
    """

    _nsp = 1


class Conv2d(_ConvNd):
    """2-D convolution layer (cross-correlation), as ``torch.nn.Conv2d``.

    Args: in_channels, out_channels, kernel_size (int or pair); stride=1;
    padding=0 (int, pair, 'valid' or 'same'); dilation=1; groups=1; bias=True;
    padding_mode='zeros' ('reflect', 'replicate', 'circular'); dtype=None
    (the default dtype, float32); algorithm='auto' (keyword only: 'im2col',
    'winograd', 'winograd4', 'fft', 'direct'; see ``convkit.backends``).

    Shape: input ``(N, C_in, H, W)`` or ``(C_in, H, W)`` -> output
    ``(N, C_out, H_out, W_out)`` with, per axis,
    ``out = (n + 2*padding - dilation*(k-1) - 1) // stride + 1``.
    Attributes: ``weight (C_out, C_in/groups, kH, kW)``, ``bias (C_out,)``.
    """

    _nsp = 2


class Conv3d(_ConvNd):
    """3-D convolution layer (cross-correlation), as ``torch.nn.Conv3d``.

    Shape: input ``(N, C_in, D, H, W)`` or ``(C_in, D, H, W)`` -> output
    ``(N, C_out, D_out, H_out, W_out)`` (sizes as ``Conv2d``).
    Attributes: ``weight (C_out, C_in/groups, kD, kH, kW)``, ``bias (C_out,)``.
    """

    _nsp = 3


class _ConvTransposeNd(_ConvBase):
    transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1,
                 padding_mode: str = "zeros", dtype=None, *, algorithm: str = "auto"):
        super().__init__()
        if padding_mode != "zeros":
            raise ValueError(f"{type(self).__name__}: only padding_mode='zeros' is supported, got {padding_mode!r}")
        if isinstance(padding, str):
            raise ValueError(f"{type(self).__name__}: padding must be an int or a tuple, got {padding!r}")
        self._setup(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                    padding_mode, output_padding, dtype, algorithm)

    def _output_padding(self, input_shape, output_size) -> tuple[int, ...]:
        """``output_padding`` that yields ``output_size`` (``o_min .. o_min + stride - 1`` per axis)."""
        if output_size is None:
            return self.output_padding
        name, n = type(self).__name__, self._nsp
        sizes = tuple(int(v) for v in output_size)
        if len(sizes) == len(input_shape):
            sizes = sizes[-n:]
        if len(sizes) != n:
            raise ValueError(
                f"{name}: output_size must have {n} or {len(input_shape)} entries, got {tuple(output_size)}"
            )
        pads = tuple((p, p) for p in self.padding)
        smallest = transposed_sizes(input_shape[-n:], self.kernel_size, self.stride, pads, (0,) * n,
                                    self.dilation)
        largest = tuple(lo + s - 1 for lo, s in zip(smallest, self.stride))
        if any(not lo <= v <= hi for v, lo, hi in zip(sizes, smallest, largest)):
            raise ValueError(
                f"{name}: requested an output size of {sizes}, but valid sizes range from {smallest} to "
                f"{largest} (for an input of spatial size {tuple(input_shape[-n:])})"
            )
        return tuple(v - lo for v, lo in zip(sizes, smallest))

    def forward(self, input, output_size=None) -> Tensor:
        fn = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[self._nsp - 1]
        output_padding = self._output_padding(np.shape(input), output_size)
        return fn(input, self.weight, self.bias, self.stride, self.padding, output_padding, self.groups,
                  self.dilation, algorithm=self.algorithm)


class ConvTranspose1d(_ConvTransposeNd):
    """1-D transposed convolution layer, as ``torch.nn.ConvTranspose1d``.

    Shape: input ``(N, C_in, L)`` or ``(C_in, L)`` -> output ``(N, C_out, L_out)``,
    ``L_out = (L-1)*stride - 2*padding + dilation*(kernel_size-1) + output_padding + 1``.
    Attributes: ``weight (C_in, C_out/groups, kL)``, ``bias (C_out,)``.
    """

    _nsp = 1


class ConvTranspose2d(_ConvTransposeNd):
    """2-D transposed convolution layer, as ``torch.nn.ConvTranspose2d`` (note the argument order).

    Args: in_channels, out_channels, kernel_size; stride=1; padding=0;
    output_padding=0; groups=1; bias=True; dilation=1; padding_mode='zeros'
    (the only mode); dtype=None; algorithm='auto' (keyword only, as ``Conv2d``).

    Shape: input ``(N, C_in, H, W)`` or ``(C_in, H, W)`` -> output ``(N, C_out, H_out, W_out)``
    with ``out = (n-1)*stride - 2*padding + dilation*(k-1) + output_padding + 1``.
    ``forward(input, output_size)`` picks ``output_padding = output_size - out_min``
    (valid sizes ``out_min .. out_min + stride - 1``), undoing a strided ``Conv2d``'s shape.
    Attributes: ``weight (C_in, C_out/groups, kH, kW)``, ``bias (C_out,)``.
    """

    _nsp = 2


class ConvTranspose3d(_ConvTransposeNd):
    """3-D transposed convolution layer, as ``torch.nn.ConvTranspose3d``.

    Shape: input ``(N, C_in, D, H, W)`` or ``(C_in, D, H, W)`` -> output
    ``(N, C_out, D_out, H_out, W_out)`` (sizes as ``ConvTranspose2d``).
    Attributes: ``weight (C_in, C_out/groups, kD, kH, kW)``, ``bias (C_out,)``.
    """

    _nsp = 3
