"""Weight initialisation, in place, with PyTorch's formulas and names.

A meta tensor (``convkit.nn.meta_init``) has no values to fill: every
function returns it unchanged, drawing nothing.

Fans of a weight of shape ``(out, in, *k)``: ``fan_in = in * prod(k)``,
``fan_out = out * prod(k)`` (for a transposed-conv weight ``(in, out/g, *k)``
PyTorch applies the same rule to its dimensions, and so do we).

* ``kaiming_uniform_``: ``U(-b, b)``, ``b = gain * sqrt(3 / fan)``;
* ``kaiming_normal_``: ``N(0, (gain / sqrt(fan))^2)``;
* ``xavier_uniform_``: ``U(-b, b)``, ``b = gain * sqrt(6 / (fan_in + fan_out))``;
* ``xavier_normal_``: ``N(0, gain^2 * 2 / (fan_in + fan_out))``;

with ``gain = calculate_gain(nonlinearity, a)`` (``sqrt(2 / (1 + a^2))`` for
leaky_relu). PyTorch's default for Conv and Linear is
``kaiming_uniform_(w, a=sqrt(5))``, i.e. ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``,
and bias ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``.
"""

from __future__ import annotations

import math

import numpy as np

from ..ops.meta import MetaArray
from ..random import generator
from ..tensor import Tensor

__all__ = [
    "calculate_gain", "uniform_", "normal_", "constant_", "zeros_", "ones_",
    "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_", "xavier_normal_", "fan_in",
]


def _array(tensor) -> np.ndarray:
    return tensor.data if isinstance(tensor, Tensor) else tensor


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """Recommended gain for a nonlinearity (PyTorch's table)."""
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
              "conv_transpose2d", "conv_transpose3d", "sigmoid")
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _fans(arr: np.ndarray) -> tuple[int, int]:
    if arr.ndim < 2:
        raise ValueError(f"init: fan in/out need a weight with >= 2 dimensions, got shape {arr.shape}")
    receptive = int(np.prod(arr.shape[2:])) if arr.ndim > 2 else 1
    return arr.shape[1] * receptive, arr.shape[0] * receptive


def uniform_(tensor, a: float = 0.0, b: float = 1.0):
    """Fill with ``U(a, b)``, drawn directly in the tensor's dtype (no float64 temporary)."""
    arr = _array(tensor)
    if arr.size == 0 or isinstance(arr, MetaArray):
        return tensor
    draw = generator().random(arr.shape, dtype=arr.dtype if arr.dtype in (np.float32, np.float64) else np.float64)
    arr[...] = a + (b - a) * draw
    return tensor


def normal_(tensor, mean: float = 0.0, std: float = 1.0):
    """Fill with ``N(mean, std^2)``, drawn directly in the tensor's dtype."""
    arr = _array(tensor)
    if arr.size == 0 or isinstance(arr, MetaArray):
        return tensor
    draw = generator().standard_normal(arr.shape, dtype=arr.dtype if arr.dtype in (np.float32, np.float64) else np.float64)
    arr[...] = mean + std * draw
    return tensor


def constant_(tensor, val: float):
    arr = _array(tensor)
    if not isinstance(arr, MetaArray):
        arr[...] = val
    return tensor


def zeros_(tensor):
    return constant_(tensor, 0.0)


def ones_(tensor):
    return constant_(tensor, 1.0)


def _fan(arr, mode):
    fan_in, fan_out = _fans(arr)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"init: mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return fan_in if mode == "fan_in" else fan_out


def kaiming_uniform_(tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"):
    arr = _array(tensor)
    if arr.size == 0:  # nothing to fill (and a zero fan), as in PyTorch
        return tensor
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(arr, mode))
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu"):
    arr = _array(tensor)
    if arr.size == 0:  # nothing to fill (and a zero fan), as in PyTorch
        return tensor
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(arr, mode))
    return normal_(tensor, 0.0, std)


def xavier_uniform_(tensor, gain: float = 1.0):
    fan_in, fan_out = _fans(_array(tensor))
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor, gain: float = 1.0):
    fan_in, fan_out = _fans(_array(tensor))
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def fan_in(arr) -> int:
    """``in * prod(kernel)`` of a weight (used for PyTorch's default bias bound ``1/sqrt(fan_in)``)."""
    return _fans(_array(arr))[0]
