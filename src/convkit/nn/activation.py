"""Activation, dropout, flatten and identity layers, shaped like ``torch.nn``.

>>> import convkit.nn as nn
>>> nn.Sequential(nn.Flatten(), nn.LeakyReLU(0.1), nn.Dropout(0.2))
Sequential(
  (0): Flatten(start_dim=1, end_dim=-1)
  (1): LeakyReLU(negative_slope=0.1)
  (2): Dropout(p=0.2, inplace=False)
)
"""

from __future__ import annotations

import numbers

from .. import functional as F
from .module import Module, rectifier

__all__ = ["ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "Dropout", "Dropout2d", "Flatten", "Identity"]


class ReLU(Module):
    """``max(x, 0)`` element-wise. Shape: any, unchanged.

    Args:
        inplace (bool): accepted for PyTorch compatibility; convkit always
            computes out of place, which gives the same values. Default: False.
    """

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace

    @rectifier
    def forward(self, input):
        return F.relu(input)

    def relu_slope(self) -> float:
        """0: what a layer followed by this module applies itself (``nn.Sequential``)."""
        return 0.0

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Module):
    """``x`` where ``x > 0`` else ``negative_slope * x``. Shape: any, unchanged.

    Args:
        negative_slope (float): slope for ``x <= 0``. Default: 0.01.
        inplace (bool): accepted for PyTorch compatibility; convkit always
            computes out of place, which gives the same values. Default: False.
    """

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    @rectifier
    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope)

    def relu_slope(self) -> float | None:
        """The slope a layer followed by this module applies itself, or None for a negative one (not fused)."""
        return float(self.negative_slope) if self.negative_slope >= 0 else None

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class Sigmoid(Module):
    """``1 / (1 + exp(-x))`` element-wise. Shape: any, unchanged."""

    def forward(self, input):
        return F.sigmoid(input)


class Tanh(Module):
    """``tanh(x)`` element-wise. Shape: any, unchanged."""

    def forward(self, input):
        return F.tanh(input)


class Softmax(Module):
    """Softmax along ``dim`` (required; PyTorch's implicit choice is deprecated). Shape: unchanged."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """Log-softmax along ``dim`` (required). Shape: unchanged."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.log_softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Dropout(Module):
    """Zero elements with probability ``p`` in training mode, scaling the rest by ``1/(1-p)``; identity in eval.

    Args:
        p (float): drop probability in [0, 1]. Default: 0.5.
        inplace (bool): accepted for PyTorch compatibility; convkit always
            computes out of place, which gives the same values. Default: False.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not isinstance(p, numbers.Real) or not 0 <= p <= 1:
            raise ValueError(f"Dropout: p must be a probability in [0, 1], got {p!r}")
        self.p = p
        self.inplace = inplace

    def forward(self, input):
        return F.dropout(input, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}, inplace={self.inplace}"


class Dropout2d(Dropout):
    """Zero whole channels of ``(N, C, H, W)`` input with probability ``p`` in training mode, scaling the rest
    by ``1/(1-p)`` (``F.dropout2d``); identity in eval. Args as ``Dropout``."""

    def forward(self, input):
        return F.dropout2d(input, self.p, self.training)


class Flatten(Module):
    """Merge axes ``start_dim..end_dim`` into one: ``(N, C, H, W) -> (N, C*H*W)`` by default.

    Args:
        start_dim (int): first axis to merge. Default: 1 (keeps the batch axis).
        end_dim (int): last axis to merge. Default: -1.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input):
        return F.flatten(input, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Identity(Module):
    """Returns its input; constructor arguments are accepted and ignored, as in PyTorch."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input
