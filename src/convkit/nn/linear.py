"""``Linear``: the fully connected layer ``y = x W^T + b``, shaped like ``torch.nn.Linear``.

>>> import numpy as np
>>> from convkit.nn import Linear
>>> layer = Linear(3, 4)
>>> layer
Linear(in_features=3, out_features=4, bias=True)
>>> layer(np.ones((2, 5, 3), dtype=np.float32)).shape
(2, 5, 4)
"""

from __future__ import annotations

import math

import numpy as np

from .. import functional as F
from ..ops._args import is_int
from ..tensor import get_default_dtype
from . import init
from .module import Module, Parameter, empty

__all__ = ["Linear"]


class Linear(Module):
    """Affine map over the last axis.

    Args:
        in_features (int): size of the last input axis.
        out_features (int): size of the last output axis.
        bias (bool): learn an additive bias. Default: True.
        dtype: float32 or float64 for the parameters. Default: ``convkit.get_default_dtype()``.

    Shape:
        - Input: ``(*, in_features)``
        - Output: ``(*, out_features)``

    Attributes:
        weight: ``(out_features, in_features)``, initialised ``U(-1/sqrt(in_features), 1/sqrt(in_features))``
            (``kaiming_uniform_(a=sqrt(5))``, PyTorch's default).
        bias: ``(out_features,)``, ``U(-1/sqrt(in_features), 1/sqrt(in_features))``, or None.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, dtype=None):
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if not is_int(value) or value < 1:
                raise ValueError(f"Linear: {name} must be a positive int, got {value!r}")
        dtype = get_default_dtype() if dtype is None else np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"Linear: dtype must be a floating-point dtype, got {dtype}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.weight = Parameter(empty((self.out_features, self.in_features), dtype=dtype))
        if bias:
            self.bias = Parameter(empty(self.out_features, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw the weight and bias with PyTorch's default initialisation."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
