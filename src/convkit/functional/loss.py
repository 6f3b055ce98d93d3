"""Losses with PyTorch's signatures: ``mse_loss``, ``nll_loss``, ``cross_entropy``.

Scores are ``(N, C, d_1, ..., d_k)`` (class axis 1) or unbatched ``(C,)``;
class-index targets are integer arrays ``(N, d_1, ..., d_k)`` (or ``()``),
kept as integers. Arguments after ``weight`` are keyword-only (PyTorch's
positional slots there hold its deprecated ``size_average``/``reduce``).

>>> import numpy as np
>>> logits = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
>>> round(cross_entropy(logits, np.array([0, 2])).item(), 4)
0.6691
"""

from __future__ import annotations

import numbers

from ..autograd import apply
from ..ops import loss as L
from ..ops._args import check_same_dtype, is_int
from ..tensor import Tensor, as_tensor

__all__ = ["mse_loss", "nll_loss", "cross_entropy"]


def _check_reduction(op: str, reduction) -> None:
    if reduction not in L.REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {L.REDUCTIONS}, got {reduction!r}")


def _check_class_axis(op: str, x: Tensor) -> int:
    """The number of classes of an ``(N, C, d...)`` or ``(C,)`` input."""
    if x.ndim == 0:
        raise ValueError(f"{op}: input must have a class axis, (N, C, d1, ...) or (C,), got a 0-d input")
    return x.shape[0 if x.ndim == 1 else 1]


def _class_weight(op: str, weight, x: Tensor, num_classes: int) -> Tensor | None:
    if weight is None:
        return None
    w = as_tensor(weight, name="weight", op=op)
    if w.shape != (num_classes,):
        raise ValueError(
            f"{op}: weight must have one entry per class, shape ({num_classes},) for input shape "
            f"{x.shape}, got shape {w.shape}"
        )
    check_same_dtype(op, input=x, weight=w)
    return w


def _check_class_indices(op: str, x: Tensor, t: Tensor, num_classes: int, ignore_index) -> None:
    """Target shape is the input's without the class axis; values are classes or ``ignore_index``."""
    if not is_int(ignore_index):
        raise TypeError(f"{op}: ignore_index must be an int, got {type(ignore_index).__name__} {ignore_index!r}")
    expected = () if x.ndim == 1 else x.shape[:1] + x.shape[2:]
    if t.shape != expected:
        raise ValueError(
            f"{op}: target shape {t.shape} does not match input shape {x.shape}; "
            f"expected target shape {expected} (the input without its class axis)"
        )
    bad = (t.data != ignore_index) & ((t.data < 0) | (t.data >= num_classes))
    if bad.any():
        raise ValueError(
            f"{op}: target holds class index {t.data[bad][0]}, outside [0, {num_classes}) "
            f"for {num_classes} classes (and not ignore_index={ignore_index})"
        )


def _run(primitive, x: Tensor, t: Tensor, w: Tensor | None, **options) -> Tensor:
    """Apply a class-loss primitive; an unbatched ``(C,)`` input gets a batch axis of 1, removed again."""
    if x.ndim > 1:
        return apply(primitive, [x, t, w], **options)
    out = apply(primitive, [x.reshape((1,) + x.shape), t.reshape((1,) + t.shape), w], **options)
    return out.reshape(()) if options["reduction"] == "none" else out


def mse_loss(input, target, *, reduction: str = "mean") -> Tensor:
    """Mean squared error ``(x - t)^2``, reduced by ``reduction`` ('mean' | 'sum' | 'none').

    ``input`` and ``target`` must have the same shape (PyTorch only warns
    and broadcasts, which is almost always a bug); both get gradients.
    """
    x = as_tensor(input, op="mse_loss")
    t = as_tensor(target, name="target", op="mse_loss")
    _check_reduction("mse_loss", reduction)
    if x.shape != t.shape:
        raise ValueError(f"mse_loss: target shape {t.shape} differs from input shape {x.shape}; they must match")
    check_same_dtype("mse_loss", input=x, target=t)
    return apply(L.mse_loss, [x, t], reduction=reduction)


def nll_loss(input, target, weight=None, *, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Negative log-likelihood ``-weight[y_n] * input[n, y_n]`` of log-probabilities ``input``.

    Args:
        input: log-probabilities ``(N, C, d1, ...)`` or ``(C,)``.
        target: integer class indices ``(N, d1, ...)`` or ``()``.
        weight: per-class weights ``(C,)`` or None. Default: None.
        ignore_index (int): target value that contributes nothing. Default: -100.
        reduction (str): 'mean' (divided by the total weight of non-ignored
            items), 'sum' or 'none'. Default: 'mean'.
    """
    op = "nll_loss"
    x = as_tensor(input, op=op)
    t = as_tensor(target, name="target", op=op, float_only=False)
    _check_reduction(op, reduction)
    num_classes = _check_class_axis(op, x)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold integer class indices, got dtype {t.dtype}")
    _check_class_indices(op, x, t, num_classes, ignore_index)
    w = _class_weight(op, weight, x, num_classes)
    return _run(L.nll_loss, x, t, w,
                ignore_index=int(ignore_index), reduction=reduction)


def cross_entropy(input, target, weight=None, *, ignore_index: int = -100, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Tensor:
    """Softmax cross-entropy of logits ``input``, fused and stable for logits of any size.

    Args:
        input: logits ``(N, C, d1, ...)`` or ``(C,)``.
        target: integer class indices ``(N, d1, ...)`` / ``()``, or
            floating-point class probabilities shaped like ``input`` (these
            get a gradient, as in PyTorch).
        weight: per-class weights ``(C,)`` or None. Default: None.
        ignore_index (int): class-index target value that contributes nothing. Default: -100.
        reduction (str): 'mean', 'sum' or 'none'. 'mean' divides by the total
            weight of the non-ignored items for class indices, by the number
            of items for probabilities. Default: 'mean'.
        label_smoothing (float): ``eps`` in [0, 1]; the target becomes
            ``(1 - eps) * target + eps / C``, exactly as PyTorch defines it
            (with weights and ignore_index). Default: 0.0.
    """
    op = "cross_entropy"
    x = as_tensor(input, op=op)
    t = as_tensor(target, name="target", op=op, float_only=False)
    _check_reduction(op, reduction)
    if not isinstance(label_smoothing, numbers.Real) or not 0 <= label_smoothing <= 1:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing!r}")
    num_classes = _check_class_axis(op, x)
    if t.dtype.kind == "f":
        if t.shape != x.shape:
            raise ValueError(
                f"{op}: a floating-point target holds class probabilities and must have the input's "
                f"shape {x.shape}, got {t.shape} (use integer class indices otherwise)"
            )
        check_same_dtype(op, input=x, target=t)
        w = _class_weight(op, weight, x, num_classes)
        return _run(L.soft_cross_entropy, x, t, w,
                    reduction=reduction, label_smoothing=float(label_smoothing))
    if t.dtype.kind not in "iu":
        raise TypeError(
            f"{op}: target must hold integer class indices or floating-point class probabilities, "
            f"got dtype {t.dtype}"
        )
    _check_class_indices(op, x, t, num_classes, ignore_index)
    w = _class_weight(op, weight, x, num_classes)
    return _run(L.cross_entropy, x, t, w, ignore_index=int(ignore_index),
                reduction=reduction, label_smoothing=float(label_smoothing))
