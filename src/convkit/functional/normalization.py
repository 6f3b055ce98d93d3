"""Normalisation functions with PyTorch's signatures (see ``convkit.ops.normalization``).

Running statistics are ndarrays of shape ``(C,)`` (a Tensor's array is used
too) and are updated IN PLACE, as PyTorch updates its buffers.

>>> import numpy as np
>>> import convkit.functional as F
>>> rm, rv = np.zeros(2, np.float32), np.ones(2, np.float32)
>>> x = np.array([[1.0, 2.0], [3.0, 6.0]], dtype=np.float32)
>>> F.batch_norm(x, rm, rv, training=True).shape
(2, 2)
>>> rm                      # 0.9 * 0 + 0.1 * batch mean
array([0.2, 0.4], dtype=float32)
>>> rv                      # 0.9 * 1 + 0.1 * unbiased batch variance (2 and 8)
array([1.1, 1.7], dtype=float32)
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..autograd import apply
from ..ops import normalization as N
from ..ops._args import relu_slope as check_relu_slope
from ..ops.meta import MetaArray
from ..tensor import Tensor, as_tensor

__all__ = ["batch_norm", "instance_norm", "layer_norm", "group_norm"]

_BATCH_SIZE_HINT = (
    "With one value per channel the batch variance is undefined: use a larger batch, "
    "GroupNorm/LayerNorm/InstanceNorm (per-sample statistics), or call eval() to "
    "normalise with the running statistics"
)


def _check_input(x: Tensor, min_ndim: int, layout: str, op: str) -> None:
    if x.ndim < min_ndim:
        raise ValueError(
            f"{op}: input must have at least {min_ndim} dimensions {layout}, got shape {x.shape}"
        )


def _check_dtype(t: Tensor | np.ndarray, name: str, x: Tensor, op: str) -> None:
    if t.dtype != x.dtype:
        raise TypeError(
            f"{op}: {name} has dtype {t.dtype} but input has dtype {x.dtype}; "
            f"they must match (convert one with .astype)"
        )


def _param(value, name: str, shape: tuple[int, ...], x: Tensor, op: str, what: str) -> Tensor | None:
    """An optional affine parameter as a Tensor of ``shape`` and the input's dtype."""
    if value is None:
        return None
    t = as_tensor(value, name=name, op=op)
    if t.shape != shape:
        raise ValueError(f"{op}: {name} must have shape {shape} ({what}), got {t.shape}")
    _check_dtype(t, name, x, op)
    return t


def _channel_params(weight, bias, x: Tensor, op: str):
    what = f"one per channel of input shape {x.shape}"
    shape = (x.shape[1],)
    return (_param(weight, "weight", shape, x, op, what), _param(bias, "bias", shape, x, op, what))


def _running(value, name: str, x: Tensor, op: str) -> np.ndarray | None:
    """An optional running-statistics buffer: a writable ``(C,)`` ndarray of the input's dtype (a ``MetaArray``
    in a meta model)."""
    if value is None:
        return None
    arr = value.data if isinstance(value, Tensor) else value
    if not isinstance(arr, (np.ndarray, MetaArray)):
        raise TypeError(f"{op}: {name} must be an ndarray (updated in place) or None, "
                        f"got {type(value).__name__}")
    if arr.shape != (x.shape[1],):
        raise ValueError(f"{op}: {name} must have shape ({x.shape[1]},) (one per channel of input "
                         f"shape {x.shape}), got {arr.shape}")
    _check_dtype(arr, name, x, op)
    return arr


def _real(value, name: str, op: str) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{op}: {name} must be a real number, got {type(value).__name__} {value!r}")
    return float(value)


def _check_eps(eps, op: str, positive: bool = False) -> float:
    eps = _real(eps, "eps", op)
    if eps < 0 or (positive and eps == 0):
        need = "> 0 when training" if positive else ">= 0"
        raise ValueError(f"{op}: eps must be {need}, got {eps}")
    return eps


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-05, *, relu_slope=None) -> Tensor:
    """Batch normalisation over all axes but the channel axis 1.

    Args:
        input: ``(N, C)`` or ``(N, C, *spatial)``.
        running_mean, running_var (ndarray | None): ``(C,)`` buffers of the
            input's dtype. Updated in place when ``training``; used to
            normalise (and required) when not.
        weight, bias: ``(C,)`` affine parameters ``gamma``, ``beta``, or None.
        training (bool): normalise with the batch statistics (biased
            variance) and update the buffers (unbiased variance).
        momentum (float): weight of the new statistic,
            ``running = (1 - momentum) * running + momentum * stat``
            (PyTorch's convention: 1 - Keras's momentum).
        eps (float): added to the variance inside the square root.
        relu_slope (float | None): end in a ReLU (0) or leaky ReLU (its
            negative slope, >= 0) computed in the same pass, as
            ``nn.Sequential`` does for a batch norm followed by ``nn.ReLU``;
            equal to applying it after, bit for bit.
    """
    op = "batch_norm"
    x = as_tensor(input, name="input", op=op)
    _check_input(x, 2, "(N, C, *)", op)
    w, b = _channel_params(weight, bias, x, op)
    rm = _running(running_mean, "running_mean", x, op)
    rv = _running(running_var, "running_var", x, op)
    momentum = _real(momentum, "momentum", op)
    eps = _check_eps(eps, op, positive=bool(training))
    relu_slope = check_relu_slope(relu_slope, op)
    if training and x.shape[0] * math.prod(x.shape[2:]) == 1:
        raise ValueError(f"{op}: Expected more than 1 value per channel when training, "
                         f"got input size {x.shape}. {_BATCH_SIZE_HINT}")
    if not training and (rm is None or rv is None):
        raise ValueError(f"{op}: running_mean and running_var must be given when training=False "
                         f"(they normalise in evaluation mode); got "
                         f"running_mean={'None' if rm is None else 'an array'}, "
                         f"running_var={'None' if rv is None else 'an array'}")
    return apply(N.batch_norm, [x, w, b], running_mean=rm,
                 running_var=rv, training=bool(training), momentum=momentum, eps=eps, relu_slope=relu_slope)


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-05) -> Tensor:
    """Instance normalisation: per sample and channel over the spatial axes.

    Args:
        input: ``(N, C, *spatial)`` with more than one spatial element when
            ``use_input_stats``.
        running_mean, running_var (ndarray | None): optional ``(C,)`` buffers;
            updated in place with the batch average of the instance
            statistics when ``use_input_stats``, used to normalise (and
            required) when not.
        weight, bias: ``(C,)`` or None.
        use_input_stats (bool): normalise with each instance's statistics.
        momentum (float): as in ``batch_norm``.
        eps (float): added to the variance inside the square root.
    """
    op = "instance_norm"
    x = as_tensor(input, name="input", op=op)
    _check_input(x, 2, "(N, C, *spatial)", op)
    w, b = _channel_params(weight, bias, x, op)
    rm = _running(running_mean, "running_mean", x, op)
    rv = _running(running_var, "running_var", x, op)
    momentum = _real(momentum, "momentum", op)
    eps = _check_eps(eps, op)
    if use_input_stats and math.prod(x.shape[2:]) == 1:
        raise ValueError(f"{op}: Expected more than 1 spatial element when training, "
                         f"got input size {x.shape}")
    if not use_input_stats and (rm is None or rv is None):
        raise ValueError(f"{op}: running_mean and running_var must be given when "
                         f"use_input_stats=False (they normalise instead of the instance statistics)")
    return apply(N.instance_norm, [x, w, b], running_mean=rm,
                 running_var=rv, use_input_stats=bool(use_input_stats), momentum=momentum, eps=eps)


def _normalized_shape(value, op: str) -> tuple[int, ...]:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,)
    if (not isinstance(value, (tuple, list)) or len(value) == 0
            or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value)):
        raise TypeError(f"{op}: normalized_shape must be an int or a non-empty tuple of ints, got {value!r}")
    return tuple(int(v) for v in value)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-05) -> Tensor:
    """Layer normalisation over the trailing ``normalized_shape`` axes.

    Args:
        input: ``(*, *normalized_shape)``.
        normalized_shape (int | tuple[int, ...]): the trailing shape normalised as one set.
        weight, bias: element-wise affine parameters of shape ``normalized_shape``, or None.
        eps (float): added to the variance inside the square root.
    """
    op = "layer_norm"
    x = as_tensor(input, name="input", op=op)
    shape = _normalized_shape(normalized_shape, op)
    if x.ndim < len(shape) or x.shape[x.ndim - len(shape):] != shape:
        raise ValueError(f"{op}: Given normalized_shape={shape}, expected input with shape "
                         f"(*, {', '.join(map(str, shape))}), but got input of size {x.shape}")
    what = "equal to normalized_shape"
    w = _param(weight, "weight", shape, x, op, what)
    b = _param(bias, "bias", shape, x, op, what)
    eps = _check_eps(eps, op)
    return apply(N.layer_norm, [x, w, b],
                 normalized_ndim=len(shape), eps=eps)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-05) -> Tensor:
    """Group normalisation: per sample over groups of ``C / num_groups`` channels and all spatial axes.

    Args:
        input: ``(N, C, *)`` with ``C`` divisible by ``num_groups``.
        num_groups (int): number of channel groups ``G``.
        weight, bias: per-channel ``(C,)`` affine parameters, or None.
        eps (float): added to the variance inside the square root.
    """
    op = "group_norm"
    x = as_tensor(input, name="input", op=op)
    _check_input(x, 2, "(N, C, *)", op)
    if not isinstance(num_groups, numbers.Integral) or isinstance(num_groups, bool):
        raise TypeError(f"{op}: num_groups must be an int, got {type(num_groups).__name__} {num_groups!r}")
    if num_groups < 1:
        raise ValueError(f"{op}: num_groups must be >= 1, got {num_groups}")
    if x.shape[1] % num_groups:
        raise ValueError(f"{op}: Expected number of channels in input to be divisible by num_groups, "
                         f"but got input of shape {x.shape} and num_groups={num_groups}")
    w, b = _channel_params(weight, bias, x, op)
    eps = _check_eps(eps, op)
    return apply(N.group_norm, [x, w, b],
                 num_groups=int(num_groups), eps=eps)
