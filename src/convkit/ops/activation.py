"""Element-wise activations, softmax over one axis, and dropout, with their gradients.

Every primitive keeps the input dtype (float32 in, float32 out). The
element-wise ones work on any shape; ``softmax``/``log_softmax`` normalise
along one ``axis`` and leave the other axes independent.

Kinks follow PyTorch: ``relu'(0) = 0`` and ``leaky_relu'(0) = negative_slope``
(the derivative of the left piece is taken wherever ``x <= 0``).
"""

from __future__ import annotations

import numpy as np

from . import Primitive
from ..random import generator


def relu_forward(x):
    """``y_i = max(x_i, 0)``; shapes: ``x (*)`` -> ``y (*)``.

    Backward: ``dx_i = g_i * [x_i > 0]`` (so ``dx = 0`` at ``x = 0``).
    """
    return np.maximum(x, 0), x > 0


def relu_backward(g, positive, needs=(True,)):
    return (g * positive,)


def leaky_relu_forward(x, *, negative_slope: float):
    """``y_i = x_i`` if ``x_i > 0`` else ``a * x_i`` (``a = negative_slope``); shapes ``(*)`` -> ``(*)``.

    Backward: ``dx_i = g_i`` if ``x_i > 0`` else ``a * g_i``.
    """
    positive = x > 0
    return np.where(positive, x, x * negative_slope), (positive, negative_slope)


def leaky_relu_backward(g, saved, needs=(True,)):
    positive, negative_slope = saved
    return (np.where(positive, g, g * negative_slope),)


def sigmoid_forward(x):
    """``y_i = 1 / (1 + exp(-x_i))``; shapes ``(*)`` -> ``(*)``.

    Evaluated from ``e = exp(-|x|)`` (never overflows): ``y = 1/(1+e)`` for
    ``x >= 0`` and ``y = e/(1+e)`` for ``x < 0``.
    Backward: ``dx_i = g_i * y_i * (1 - y_i)``.
    """
    e = np.exp(-np.abs(x))
    y = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
    return y, y


def sigmoid_backward(g, y, needs=(True,)):
    return (g * y * (1 - y),)


def tanh_forward(x):
    """``y_i = tanh(x_i)``; shapes ``(*)`` -> ``(*)``. Backward: ``dx_i = g_i * (1 - y_i^2)``."""
    y = np.tanh(x)
    return y, y


def tanh_backward(g, y, needs=(True,)):
    return (g * (1 - y * y),)


def shifted_logits(x, axis: int):
    """``x - max_axis(x)``: the same softmax, with every exponent <= 0 (no overflow)."""
    return x - x.max(axis=axis, keepdims=True)


def log_softmax_values(x, axis: int):
    """``log p_i = z_i - log sum_j exp(z_j)`` with ``z = x - max(x)`` along ``axis`` (stable for huge ``|x|``)."""
    z = shifted_logits(x, axis)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def softmax_forward(x, *, axis: int):
    """``y_i = exp(x_i) / sum_j exp(x_j)`` along ``axis`` (j runs over that axis).

    Computed as ``exp(z_i) / sum_j exp(z_j)`` with ``z = x - max_j x_j``.
    Shapes ``(*)`` -> ``(*)``.
    Backward (Jacobian ``dy_i/dx_k = y_i (delta_ik - y_k)``):
    ``dx_k = y_k * (g_k - sum_i g_i y_i)``.
    """
    e = np.exp(shifted_logits(x, axis))
    y = e / e.sum(axis=axis, keepdims=True)
    return y, (y, axis)


def softmax_backward(g, saved, needs=(True,)):
    y, axis = saved
    return (y * (g - (g * y).sum(axis=axis, keepdims=True)),)


def log_softmax_forward(x, *, axis: int):
    """``y_i = x_i - log sum_j exp(x_j)`` along ``axis``, evaluated max-shifted.

    Shapes ``(*)`` -> ``(*)``.
    Backward (``dy_i/dx_k = delta_ik - softmax(x)_k``):
    ``dx_k = g_k - exp(y_k) * sum_i g_i``.
    """
    y = log_softmax_values(x, axis)
    return y, (y, axis)


def log_softmax_backward(g, saved, needs=(True,)):
    y, axis = saved
    return (g - np.exp(y) * g.sum(axis=axis, keepdims=True),)


def dropout_forward(x, *, p: float):
    """Training-mode dropout: ``y_i = x_i * m_i / (1 - p)``, ``m_i ~ Bernoulli(1 - p)``.

    The keep mask is drawn from ``convkit.random.generator()`` (reproducible
    under ``convkit.manual_seed``): element ``i`` is dropped when
    ``u_i < p`` for ``u_i ~ U[0, 1)``, so exactly with probability ``p``.
    ``p = 1`` drops everything (``y = 0 * x``). Shapes ``(*)`` -> ``(*)``.
    Backward: ``dx_i = g_i * m_i / (1 - p)``.
    """
    scale = 0.0 if p == 1 else 1.0 / (1.0 - p)
    mask = (generator().random(x.shape, dtype=x.dtype) >= p) * x.dtype.type(scale)
    return x * mask, mask


def dropout_backward(g, mask, needs=(True,)):
    return (g * mask,)


relu = Primitive("relu", relu_forward, relu_backward)
leaky_relu = Primitive("leaky_relu", leaky_relu_forward, leaky_relu_backward)
sigmoid = Primitive("sigmoid", sigmoid_forward, sigmoid_backward)
tanh = Primitive("tanh", tanh_forward, tanh_backward)
softmax = Primitive("softmax", softmax_forward, softmax_backward)
log_softmax = Primitive("log_softmax", log_softmax_forward, log_softmax_backward)
dropout = Primitive("dropout", dropout_forward, dropout_backward)
