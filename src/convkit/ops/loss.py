"""Losses with their gradients: mean squared error, negative log-likelihood, cross-entropy.

Layout (PyTorch's): scores ``x`` of shape ``(N, C, d_1, ..., d_k)``
(``k >= 0``; class axis 1) and class-index targets ``y`` of shape
``(N, d_1, ..., d_k)``. An *item* ``n`` below is one position
``(n, d_1, ..., d_k)``; the unbatched forms are handled by the functional
layer, which adds the batch axis.

Reductions turn the per-item losses ``l_n`` into the output:
``'none'``: ``l`` itself; ``'sum'``: ``sum_n l_n``; ``'mean'``:
``sum_n l_n / D``, where the divisor ``D`` is given per loss (the number of
items, or the total weight of the non-ignored items for class-index
targets). Backward starts from ``gbar_n = d(out)/d(l_n) * g``: ``g_n``,
``g`` or ``g / D`` respectively.

Class-index targets: ``w_n = weight[y_n] * [y_n != ignore_index]``
(``weight`` defaults to all ones); ignored items contribute 0 to the loss,
to ``D`` and to the gradient. Targets are constants, except the
regression target of ``mse_loss`` and class-probability targets of
cross-entropy, which get gradients as in PyTorch.
"""

from __future__ import annotations

import numpy as np

from . import Primitive
from .activation import log_softmax_values

REDUCTIONS = ("mean", "sum", "none")


def _reduce(per_item, reduction: str, divisor):
    """``l`` for 'none', ``sum_n l_n`` for 'sum', ``sum_n l_n / D`` for 'mean' (0/0 gives NaN, as torch).

    ``D`` is cast to the loss dtype first, so a float32 loss stays float32 under any NumPy promotion rules.
    """
    if reduction == "none":
        return per_item
    total = per_item.sum()
    if reduction == "sum":
        return np.asarray(total)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(total / total.dtype.type(divisor))


def _item_grad(g, reduction: str, divisor, shape):
    """``gbar``: the gradient reaching each per-item loss, of shape ``shape``."""
    if reduction == "none":
        return g
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            g = g / g.dtype.type(divisor)
    return np.broadcast_to(g, shape)


def _kept_item_grad(g, reduction: str, divisor, keep):
    """``gbar`` for class-index targets: exactly 0 on ignored items (even when ``D = 0``, as torch)."""
    return np.where(keep, _item_grad(g, reduction, divisor, keep.shape), 0)


def _per_class(v, ndim: int):
    """A ``(C,)`` vector shaped ``(1, C, 1, ..., 1)`` to broadcast against ``(N, C, d...)``."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def _take_class(a, y):
    """``out[n, d...] = a[n, y[n, d...], d...]``: ``a (N, C, d...)``, ``y (N, d...)`` -> ``(N, d...)``."""
    return np.take_along_axis(np.moveaxis(a, 1, -1), y[..., None], axis=-1)[..., 0]


def _add_at_class(a, y, values) -> None:
    """In place: ``a[n, y[n, d...], d...] += values[n, d...]`` (one class per item, so no collisions)."""
    a_last = np.moveaxis(a, 1, -1)
    idx = y[..., None]
    np.put_along_axis(a_last, idx, np.take_along_axis(a_last, idx, axis=-1) + values[..., None], axis=-1)


def _item_weights(target, class_weight, ignore_index: int):
    """``(y, keep, w)``: targets with ignored items set to class 0, ``keep_n = [y_n != ignore_index]``, ``w_n``."""
    keep = target != ignore_index
    y = np.where(keep, target, 0)
    return y, keep, np.where(keep, class_weight[y], 0)


def _class_weight(weight, num_classes: int, dtype):
    """The ``(C,)`` class weights, all ones when None (multiplying by 1 is exact)."""
    return np.ones(num_classes, dtype=dtype) if weight is None else weight


# ---------------------------------------------------------------- mse_loss
def mse_loss_forward(x, target, *, reduction: str):
    """``l_i = (x_i - t_i)^2`` over every element ``i``; mean divisor ``D`` = number of elements.

    Shapes: ``x (*)``, ``t (*)`` (same shape) -> ``()`` or ``(*)`` for 'none'.
    Backward: ``dx_i = 2 gbar_i (x_i - t_i)``, ``dt_i = -dx_i``.
    """
    d = x - target
    return _reduce(d * d, reduction, d.size), (d, reduction)


def mse_loss_backward(g, saved, needs=(True, True)):
    d, reduction = saved
    dx = 2 * _item_grad(g, reduction, d.size, d.shape) * d
    return (dx if needs[0] else None), (-dx if needs[1] else None)


# ---------------------------------------------------------------- nll_loss
def nll_loss_forward(logp, target, weight=None, *, ignore_index: int, reduction: str):
    """``l_n = -w_n * logp[n, y_n]``; mean divisor ``D = sum_n w_n``.

    Shapes: ``logp (N, C, d...)`` (log-probabilities), ``y (N, d...)``
    integer, ``weight (C,)`` or None -> ``()`` or ``(N, d...)`` for 'none'.
    Backward: ``dlogp[n, c] = -gbar_n * w_n * [c == y_n]`` (zero elsewhere).
    """
    class_weight = _class_weight(weight, logp.shape[1], logp.dtype)
    y, keep, w = _item_weights(target, class_weight, ignore_index)
    per_item = np.where(keep, -w * _take_class(logp, y), 0)
    divisor = w.sum()
    return _reduce(per_item, reduction, divisor), (logp.shape, y, keep, w, reduction, divisor)


def nll_loss_backward(g, saved, needs=(True, False, False)):
    shape, y, keep, w, reduction, divisor = saved
    dlogp = np.zeros(shape, dtype=w.dtype)
    _add_at_class(dlogp, y, -w * _kept_item_grad(g, reduction, divisor, keep))
    return dlogp, None, None


# ------------------------------------------------- cross_entropy (indices)
def cross_entropy_forward(x, target, weight=None, *, ignore_index: int, reduction: str,
                          label_smoothing: float):
    """Softmax cross-entropy against class indices, with optional label smoothing.

    With ``logp = log_softmax(x)`` over the class axis, ``eps = label_smoothing``
    and ``weight_c`` (1 when None), as ``torch.nn.functional.cross_entropy``::

        l_n = (1 - eps) * (-w_n logp[n, y_n]) + eps/C * keep_n * sum_c (-weight_c logp[n, c])

    i.e. ``l_n = -sum_c q[n, c] logp[n, c]`` with the smoothed, weighted target
    ``q[n, c] = keep_n ((1 - eps) weight_{y_n} [c == y_n] + eps/C weight_c)``.
    Mean divisor ``D = sum_n w_n`` (both terms share it, as in torch).
    Shapes: ``x (N, C, d...)``, ``y (N, d...)`` integer, ``weight (C,)`` or
    None -> ``()`` or ``(N, d...)`` for 'none'.
    Backward (softmax minus target): ``dx[n, c] = gbar_n (p[n, c] Q_n - q[n, c])``
    with ``p = softmax(x)`` and ``Q_n = sum_c q[n, c] = (1 - eps) w_n + eps/C keep_n sum_c weight_c``.
    Max-shifted, so logits of any magnitude (1e4) are exact.
    """
    logp = log_softmax_values(x, 1)
    num_classes = x.shape[1]
    class_weight = _class_weight(weight, num_classes, x.dtype)
    y, keep, w = _item_weights(target, class_weight, ignore_index)
    per_item = np.where(keep, -w * _take_class(logp, y), 0)
    if label_smoothing:
        smooth = -(_per_class(class_weight, x.ndim) * logp).sum(axis=1)
        per_item = (1 - label_smoothing) * per_item + (label_smoothing / num_classes) * np.where(keep, smooth, 0)
    divisor = w.sum()
    saved = (logp, y, keep, w, class_weight, label_smoothing, reduction, divisor)
    return _reduce(per_item, reduction, divisor), saved


def cross_entropy_backward(g, saved, needs=(True, False, False)):
    logp, y, keep, w, class_weight, eps, reduction, divisor = saved
    gbar = _kept_item_grad(g, reduction, divisor, keep)
    share = eps / logp.shape[1]
    total_q = (1 - eps) * w + share * class_weight.sum() * keep
    dx = np.exp(logp) * np.expand_dims(gbar * total_q, 1)
    if eps:
        dx -= share * _per_class(class_weight, logp.ndim) * np.expand_dims(gbar * keep, 1)
    _add_at_class(dx, y, -(1 - eps) * gbar * w)
    return dx, None, None


# ---------------------------------------------- cross_entropy (probabilities)
def soft_cross_entropy_forward(x, target, weight=None, *, reduction: str, label_smoothing: float):
    """Softmax cross-entropy against class probabilities (``target`` shaped like ``x``).

    ``q[n, c] = weight_c ((1 - eps) t[n, c] + eps/C)`` and
    ``l_n = -sum_c q[n, c] logp[n, c]`` with ``logp = log_softmax(x)`` over
    the class axis; mean divisor ``D`` = number of items ``N * prod(d)``.
    Shapes: ``x, t (N, C, d...)``, ``weight (C,)`` or None -> ``()`` or ``(N, d...)``.
    Backward: ``dx[n, c] = gbar_n (p[n, c] Q_n - q[n, c])``, ``Q_n = sum_c q[n, c]``,
    ``dt[n, c] = -gbar_n (1 - eps) weight_c logp[n, c]``.
    """
    logp = log_softmax_values(x, 1)
    class_weight = _per_class(_class_weight(weight, x.shape[1], x.dtype), x.ndim)
    q = class_weight * ((1 - label_smoothing) * target + label_smoothing / x.shape[1])
    per_item = -(q * logp).sum(axis=1)
    saved = (logp, q, class_weight, label_smoothing, reduction, per_item.size)
    return _reduce(per_item, reduction, per_item.size), saved


def soft_cross_entropy_backward(g, saved, needs=(True, True, False)):
    logp, q, class_weight, eps, reduction, divisor = saved
    gbar = np.expand_dims(_item_grad(g, reduction, divisor, logp.shape[:1] + logp.shape[2:]), 1)
    dx = gbar * (np.exp(logp) * q.sum(axis=1, keepdims=True) - q) if needs[0] else None
    dt = -(1 - eps) * gbar * class_weight * logp if needs[1] else None
    return dx, dt, None


mse_loss = Primitive("mse_loss", mse_loss_forward, mse_loss_backward)
nll_loss = Primitive("nll_loss", nll_loss_forward, nll_loss_backward)
cross_entropy = Primitive("cross_entropy", cross_entropy_forward, cross_entropy_backward)
soft_cross_entropy = Primitive("soft_cross_entropy", soft_cross_entropy_forward, soft_cross_entropy_backward)
