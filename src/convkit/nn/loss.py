"""Loss modules, shaped like ``torch.nn``: ``MSELoss``, ``NLLLoss``, ``CrossEntropyLoss``.

A class ``weight`` is stored as a buffer named ``weight`` (in ``state_dict``,
as in PyTorch). Arguments after ``weight`` are keyword-only: PyTorch's
positional slots there hold its deprecated ``size_average``/``reduce``,
which convkit does not take.

>>> import numpy as np
>>> from convkit.nn import CrossEntropyLoss
>>> loss = CrossEntropyLoss(weight=np.ones(3), label_smoothing=0.1)
>>> list(loss.state_dict())
['weight']
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from ..ops.loss import REDUCTIONS
from ..tensor import Tensor, get_default_dtype
from .module import Module

__all__ = ["MSELoss", "NLLLoss", "CrossEntropyLoss"]


def _check_reduction(cls: str, reduction) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{cls}: reduction must be one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def _weight_buffer(weight) -> np.ndarray | None:
    """A class-weight argument as an ndarray copy (floats kept; integers and lists as the default dtype)."""
    if weight is None:
        return None
    arr = np.array(weight.data if isinstance(weight, Tensor) else weight)
    if arr.dtype.kind != "f" or not isinstance(weight, (np.ndarray, Tensor)):
        arr = arr.astype(get_default_dtype())
    return arr


class MSELoss(Module):
    """Mean squared error ``(x - t)^2``; see ``convkit.functional.mse_loss``.

    Args:
        reduction (str): 'mean', 'sum' or 'none'. Default: 'mean'.
    """

    def __init__(self, *, reduction: str = "mean"):
        super().__init__()
        self.reduction = _check_reduction("MSELoss", reduction)

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)


class NLLLoss(Module):
    """Negative log-likelihood of log-probabilities; see ``convkit.functional.nll_loss``.

    Args:
        weight: per-class weights ``(C,)`` or None. Default: None.
        ignore_index (int): target value that contributes nothing. Default: -100.
        reduction (str): 'mean', 'sum' or 'none'. Default: 'mean'.
    """

    def __init__(self, weight=None, *, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__()
        self.register_buffer("weight", _weight_buffer(weight))
        self.ignore_index = ignore_index
        self.reduction = _check_reduction("NLLLoss", reduction)

    def forward(self, input, target):
        return F.nll_loss(input, target, self.weight, ignore_index=self.ignore_index, reduction=self.reduction)


class CrossEntropyLoss(Module):
    """Softmax cross-entropy of logits; see ``convkit.functional.cross_entropy``.

    Args:
        weight: per-class weights ``(C,)`` or None. Default: None.
        ignore_index (int): class-index target value that contributes nothing. Default: -100.
        reduction (str): 'mean', 'sum' or 'none'. Default: 'mean'.
        label_smoothing (float): in [0, 1]. Default: 0.0.
    """

    def __init__(self, weight=None, *, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0):
        super().__init__()
        self.register_buffer("weight", _weight_buffer(weight))
        self.ignore_index = ignore_index
        self.reduction = _check_reduction("CrossEntropyLoss", reduction)
        self.label_smoothing = label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)
