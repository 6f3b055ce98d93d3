"""Normalisation layers shaped like ``torch.nn`` (attribute names, defaults, state_dict keys).

* ``BatchNorm1d/2d/3d``: parameters ``weight`` (ones), ``bias`` (zeros) when
  ``affine``; buffers ``running_mean`` (zeros), ``running_var`` (ones) and
  ``num_batches_tracked`` (int64 0-d) when ``track_running_stats``.
  Training normalises with the batch statistics and updates the buffers;
  ``eval()`` normalises with the buffers. ``momentum=None`` makes the
  buffers a cumulative average (factor ``1 / num_batches_tracked``).
* ``InstanceNorm1d/2d/3d``: the same attributes with PyTorch's defaults
  ``affine=False, track_running_stats=False``; accept unbatched input.
* ``LayerNorm``: element-wise ``weight``/``bias`` of ``normalized_shape``.
* ``GroupNorm``: per-channel ``weight``/``bias``.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np

from .. import functional as F
from ..tensor import Tensor, as_tensor, get_default_dtype
from . import init
from .module import Module, Parameter, empty, ends_in_relu

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "InstanceNorm1d", "InstanceNorm2d",
           "InstanceNorm3d", "LayerNorm", "GroupNorm"]


def _float_dtype(dtype, cls: str) -> np.dtype:
    dt = get_default_dtype() if dtype is None else np.dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"{cls}: dtype must be a floating-point dtype, got {dt}")
    return dt


def _positive_int(value, name: str, cls: str) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{cls}: {name} must be an int, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{cls}: {name} must be >= 1, got {value}")
    return int(value)


def _affine_params(module: Module, shape: tuple[int, ...], affine: bool, bias: bool, dtype) -> None:
    """Register ``weight`` (ones) and ``bias`` (zeros), or None for each that is absent."""
    if affine:
        module.weight = Parameter(init.ones_(empty(shape, dtype)))
        if bias:
            module.bias = Parameter(init.zeros_(empty(shape, dtype)))
        else:
            module.register_parameter("bias", None)
    else:
        module.register_parameter("weight", None)
        module.register_parameter("bias", None)


class _NormBase(Module):
    """Attributes shared by batch and instance norm (PyTorch's ``_NormBase``)."""

    def __init__(self, num_features, eps, momentum, affine, track_running_stats, dtype, bias):
        super().__init__()
        cls = type(self).__name__
        self.num_features = _positive_int(num_features, "num_features", cls)
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        dt = _float_dtype(dtype, cls)
        _affine_params(self, (self.num_features,), affine, bias, dt)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(self.num_features, dt))
            self.register_buffer("running_var", np.ones(self.num_features, dt))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        """Running mean 0, running variance 1, no batches tracked."""
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def reset_parameters(self) -> None:
        """Reset the running statistics and the affine map to the identity."""
        self.reset_running_stats()
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    _input_ndims: tuple[int, ...]

    def __init__(self, num_features: int, eps: float = 1e-05, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True, dtype=None, *,
                 bias: bool = True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype, bias)

    def _check_input_dim(self, x: Tensor) -> None:
        if x.ndim not in self._input_ndims:
            expected = " or ".join(f"{n}D" for n in self._input_ndims)
            raise ValueError(f"{type(self).__name__}: expected {expected} input "
                             f"(got {x.ndim}D input of shape {x.shape})")

    def _average_factor(self) -> float:
        """The momentum of this step: ``momentum``, or ``1 / num_batches_tracked`` (after this batch) if None."""
        if self.momentum is not None:
            return self.momentum
        if self.training and self.track_running_stats:
            return 1.0 / float(self.num_batches_tracked + 1)
        return 0.0

    @ends_in_relu
    def forward(self, input, *, relu_slope=None) -> Tensor:
        """Batch statistics in training (updating the buffers), running statistics in eval.

        ``relu_slope`` (None, or >= 0): end in that (leaky) ReLU, in the same pass.
        """
        x = as_tensor(input, name="input", op=type(self).__name__)
        self._check_input_dim(x)
        update = self.training and self.track_running_stats
        use_batch_stats = self.training or self.running_mean is None
        pass_buffers = not self.training or self.track_running_stats
        out = F.batch_norm(x, self.running_mean if pass_buffers else None,
                           self.running_var if pass_buffers else None, self.weight, self.bias,
                           use_batch_stats, self._average_factor(), self.eps, relu_slope=relu_slope)
        if update:
            self.num_batches_tracked[...] += 1
        return out


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of ``(N, C)`` or ``(N, C, L)`` input over N (and L) per channel."""

    _input_ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of ``(N, C, H, W)`` input over N, H, W per channel."""

    _input_ndims = (4,)


class BatchNorm3d(_BatchNorm):
    """Batch normalisation of ``(N, C, D, H, W)`` input over N, D, H, W per channel."""

    _input_ndims = (5,)


class _InstanceNorm(_NormBase):
    _unbatched_ndim: int

    def __init__(self, num_features: int, eps: float = 1e-05, momentum: float = 0.1,
                 affine: bool = False, track_running_stats: bool = False, dtype=None, *,
                 bias: bool = True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype, bias)

    def _check_input(self, x: Tensor) -> None:
        cls, nd = type(self).__name__, self._unbatched_ndim
        if x.ndim not in (nd, nd + 1):
            raise ValueError(f"{cls}: expected {nd}D or {nd + 1}D input (got {x.ndim}D input of shape {x.shape})")
        feature_dim = x.ndim - nd
        if x.shape[feature_dim] == self.num_features:
            return
        if self.affine:
            raise ValueError(f"{cls}: expected input's size at dim={feature_dim} to match num_features "
                             f"({self.num_features}), but got: {x.shape[feature_dim]}.")
        warnings.warn(f"{cls}: input's size at dim={feature_dim} does not match num_features. "
                      "You can silence this warning by not passing in num_features, "
                      "which is not used because affine=False", stacklevel=4)

    def forward(self, input) -> Tensor:
        """Per-instance statistics; the running buffers instead in eval when tracked."""
        x = as_tensor(input, name="input", op=type(self).__name__)
        self._check_input(x)
        unbatched = x.ndim == self._unbatched_ndim
        if unbatched:
            x = x.reshape((1,) + x.shape)
        out = F.instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                              self.training or not self.track_running_stats,
                              0.0 if self.momentum is None else self.momentum, self.eps)
        return out.reshape(out.shape[1:]) if unbatched else out


class InstanceNorm1d(_InstanceNorm):
    """Instance normalisation of ``(N, C, L)`` or unbatched ``(C, L)`` input over L."""

    _unbatched_ndim = 2


class InstanceNorm2d(_InstanceNorm):
    """Instance normalisation of ``(N, C, H, W)`` or unbatched ``(C, H, W)`` input over H, W."""

    _unbatched_ndim = 3


class InstanceNorm3d(_InstanceNorm):
    """Instance normalisation of ``(N, C, D, H, W)`` or unbatched ``(C, D, H, W)`` input over D, H, W."""

    _unbatched_ndim = 4


class LayerNorm(Module):
    """Layer normalisation over the trailing ``normalized_shape`` axes, element-wise affine."""

    def __init__(self, normalized_shape, eps: float = 1e-05, elementwise_affine: bool = True,
                 bias: bool = True, dtype=None):
        super().__init__()
        cls = type(self).__name__
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        if not isinstance(normalized_shape, (tuple, list)) or not normalized_shape:
            raise TypeError(f"{cls}: normalized_shape must be an int or a non-empty tuple of ints, "
                            f"got {normalized_shape!r}")
        self.normalized_shape = tuple(_positive_int(n, "normalized_shape", cls) for n in normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        _affine_params(self, self.normalized_shape, elementwise_affine, bias, _float_dtype(dtype, cls))

    def forward(self, input) -> Tensor:
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")


class GroupNorm(Module):
    """Group normalisation: ``num_channels`` split into ``num_groups`` groups, per-channel affine."""

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-05, affine: bool = True,
                 dtype=None, *, bias: bool = True):
        super().__init__()
        cls = type(self).__name__
        self.num_groups = _positive_int(num_groups, "num_groups", cls)
        self.num_channels = _positive_int(num_channels, "num_channels", cls)
        if num_channels % num_groups:
            raise ValueError(f"{cls}: num_channels ({num_channels}) must be divisible by "
                             f"num_groups ({num_groups})")
        self.eps = eps
        self.affine = affine
        _affine_params(self, (self.num_channels,), affine, bias, _float_dtype(dtype, cls))

    def forward(self, input) -> Tensor:
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")
