"""Normalisation (batch, layer, group, instance) with its hand-derived gradient.

Every op standardises ``x`` over a set ``S`` of positions and applies an
affine map. For one normalisation set of ``m = |S|`` elements::

    mu      = 1/m sum_{i in S} x_i
    var     = 1/m sum_{i in S} (x_i - mu)^2          (biased: divides by m)
    sigma   = sqrt(var + eps)
    xhat_i  = (x_i - mu) / sigma
    y_i     = gamma_p(i) * xhat_i + beta_p(i)

where ``p(i)`` is the parameter index of position ``i``. The ops differ only
in how ``S`` and ``p`` are chosen (``x`` has shape ``(N, C, *spatial)``)::

    op          statistics over (one set per ...)       gamma, beta shape
    batch       n and spatial     (per channel c)       (C,)
    instance    spatial           (per sample n, c)     (C,)
    group       c in the group, spatial (per n, group)  (C,)
    layer       the trailing normalized_shape axes      normalized_shape

e.g. batch norm on ``(N, C, H, W)``: ``mu_c = 1/m sum_{n,h,w} x[n,c,h,w]``
with ``m = N*H*W``.

Backward, written once (``_standardize_backward``) and shared by all four:
with ``gh_i = g_i * gamma_p(i)``, differentiating through ``mu`` and ``sigma``
(both depend on every ``x_j`` of the set) gives the compact form::

    dx_i     = 1/sigma * (gh_i - mean_S(gh) - xhat_i * mean_S(gh * xhat))
    dgamma_p = sum_{i: p(i) = p} g_i * xhat_i
    dbeta_p  = sum_{i: p(i) = p} g_i

When ``mu`` and ``sigma`` are constants (batch/instance norm with running
statistics, i.e. inference) the map is affine and ``dx_i = gh_i / sigma``.

Running statistics (batch norm in training; instance norm with running
buffers) are ndarrays of shape ``(C,)`` updated IN PLACE with PyTorch's
convention::

    running = (1 - momentum) * running + momentum * batch_stat

with the UNBIASED variance ``var * m / (m - 1)`` for ``running_var`` while
the normalisation itself uses the biased one (Ioffe & Szegedy 2015).
PyTorch's ``momentum`` is the weight of the NEW statistic: PyTorch 0.1
equals Keras/TensorFlow ``momentum=0.9`` (torch momentum = 1 - Keras momentum).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from . import Primitive


@dataclass(frozen=True)
class NormSaved:
    """What the shared backward needs.

    ``view`` is the shape ``x`` is reshaped to for the statistics (``x.shape``
    itself except for group norm), ``stat_axes`` the axes of ``view`` that
    one set ``S`` spans, ``param_axes`` the axes of ``x`` that share one
    ``gamma``/``beta`` entry (summed for their gradients).
    """

    xhat: np.ndarray                 # x.shape
    inv_std: np.ndarray              # 1 / sigma, view shape with stat_axes of length 1
    weight: np.ndarray | None        # gamma reshaped to broadcast against x
    view: tuple[int, ...]
    stat_axes: tuple[int, ...]
    param_axes: tuple[int, ...]
    param_shape: tuple[int, ...]
    batch_stats: bool                # mu, sigma computed from x (else constants)


def _param_broadcast(shape: tuple[int, ...], param_axes: tuple[int, ...]) -> tuple[int, ...]:
    """Shape that makes a parameter of the non-``param_axes`` extent broadcast against ``shape``."""
    return tuple(1 if a in param_axes else n for a, n in enumerate(shape))


def _normalize(x, weight, bias, *, view, stat_axes, param_axes, eps, stats=None):
    """Shared forward: ``y = gamma * (x - mu) / sigma + beta``.

    ``stats`` is ``(mu, var)`` broadcastable in ``view`` (inference), or
    None to compute them from ``x`` over ``stat_axes``. Returns
    ``(y, saved, mu, var)``.
    """
    xv = x.reshape(view)
    if stats is None:  # two passes (mean, then centred squares): accurate in float32
        mean = xv.mean(axis=stat_axes, keepdims=True)
        centred = xv - mean
        var = np.mean(np.square(centred), axis=stat_axes, keepdims=True)
    else:
        mean, var = stats
        centred = xv - mean
    inv_std = 1.0 / np.sqrt(var + eps)
    centred *= inv_std
    xhat = centred.reshape(x.shape)
    bshape = _param_broadcast(x.shape, param_axes)
    w = None if weight is None else weight.reshape(bshape)
    if w is None:  # keep xhat (saved for backward) unchanged
        out = xhat if bias is None else xhat + bias.reshape(bshape)
    else:
        out = xhat * w
        if bias is not None:
            out += bias.reshape(bshape)
    param_shape = tuple(n for a, n in enumerate(x.shape) if a not in param_axes)
    saved = NormSaved(xhat, inv_std, w, tuple(view), stat_axes, param_axes, param_shape, stats is None)
    return out, saved, mean, var


def _standardize_backward(gh, xhat, inv_std, axes):
    """``dx_i = 1/sigma * (gh_i - mean_S(gh) - xhat_i * mean_S(gh * xhat))`` over ``axes``."""
    tmp = gh * xhat
    mean_ghx = tmp.mean(axis=axes, keepdims=True)
    dx = gh - gh.mean(axis=axes, keepdims=True)
    dx -= np.multiply(xhat, mean_ghx, out=tmp)
    dx *= inv_std
    return dx


def _normalize_backward(g, saved: NormSaved, needs):
    """Gradients ``(dx, dgamma, dbeta)`` of ``_normalize`` (formulas in the module docstring)."""
    s = saved
    dweight = np.sum(g * s.xhat, axis=s.param_axes).reshape(s.param_shape) if needs[1] else None
    dbias = np.sum(g, axis=s.param_axes).reshape(s.param_shape) if needs[2] else None
    dx = None
    if needs[0]:
        gh = (g if s.weight is None else g * s.weight).reshape(s.view)
        if s.batch_stats:
            dx = _standardize_backward(gh, s.xhat.reshape(s.view), s.inv_std, s.stat_axes)
        else:
            dx = gh * s.inv_std
        dx = dx.reshape(g.shape)
    return dx, dweight, dbias


def _update_running(running: np.ndarray, batch_stat: np.ndarray, momentum: float) -> None:
    """``running = (1 - momentum) * running + momentum * batch_stat``, in place."""
    running *= 1.0 - momentum
    running += momentum * batch_stat


def _channel_stats(running_mean, running_var, ndim):
    """Running ``(C,)`` statistics reshaped to ``(1, C, 1, ...)`` for an input of ``ndim`` axes."""
    shape = (1, -1) + (1,) * (ndim - 2)
    return running_mean.reshape(shape), running_var.reshape(shape)


def batch_norm_forward(x, weight, bias, *, running_mean, running_var, training, momentum, eps):
    """Batch normalisation: one set per channel over batch and spatial axes.

    ``mu_c = 1/m sum_{n,s} x[n,c,s]``, ``var_c = 1/m sum_{n,s} (x[n,c,s] - mu_c)^2``
    (biased), ``m = N * prod(spatial)``;
    ``y[n,c,s] = gamma_c (x[n,c,s] - mu_c) / sqrt(var_c + eps) + beta_c``.

    Training: the batch's ``mu_c``, ``var_c`` normalise, and the ``(C,)``
    ndarrays ``running_mean``/``running_var`` (either may be None) are
    updated in place with ``momentum`` and the unbiased ``var_c * m/(m-1)``.
    Inference (``training=False``): ``running_mean``/``running_var`` stand
    in for ``mu_c``/``var_c`` and are left unchanged.

    Shapes: ``x (N, C, *spatial)`` (spatial may be empty), ``weight``,
    ``bias`` ``(C,)`` or None -> ``y`` like ``x``.
    """
    stat_axes = (0,) + tuple(range(2, x.ndim))
    if not training:
        stats = _channel_stats(running_mean, running_var, x.ndim)
        out, saved, _, _ = _normalize(x, weight, bias, view=x.shape, stat_axes=stat_axes,
                                      param_axes=stat_axes, eps=eps, stats=stats)
        return out, saved
    out, saved, mean, var = _batch_normalize(x, weight, bias, eps)
    channels = x.shape[1]
    m = x.size // channels
    if running_mean is not None:
        _update_running(running_mean, mean.reshape(channels), momentum)
    if running_var is not None:
        _update_running(running_var, var.reshape(channels) * (m / (m - 1)), momentum)
    return out, saved


class BatchNormSaved(NamedTuple):
    """What training-mode batch-norm backward needs: ``xhat = centred * inv_std`` is never formed."""

    centred: np.ndarray   # x - mu, shape (N, C, P)
    inv_std: np.ndarray   # (C,)
    weight: np.ndarray | None
    shape: tuple[int, ...]


def _channel_sums(a3: np.ndarray) -> np.ndarray:
    """``sum_{n, p} a3[n, c, p]`` per channel, as a BLAS matrix-vector product (threaded, one read)."""
    return (a3 @ np.ones(a3.shape[2], dtype=a3.dtype)).sum(axis=0)


def _batch_normalize(x, weight, bias, eps):
    """Training-mode batch norm on the view ``(N, C, P)``: ``(y, saved, mu, var)``.

    Five passes over ``x``: the channel sums, the centred copy, the sums of
    its squares (``einsum``, no squared temporary), then ``y = a*centred + b``
    in place (``a = gamma/sigma``). The standardised ``xhat`` is never stored:
    backward works from ``centred`` and ``1/sigma``.
    """
    n, c = x.shape[:2]
    x3 = x.reshape(n, c, -1)
    m = x.dtype.type(x3.shape[0] * x3.shape[2])
    mean = _channel_sums(x3) / m
    centred = x3 - mean[:, None]
    var = np.einsum("ncp,ncp->c", centred, centred) / m
    inv_std = 1.0 / np.sqrt(var + eps)
    scale = inv_std if weight is None else weight * inv_std
    out = np.multiply(centred, scale[:, None])
    if bias is not None:
        out += bias[:, None]
    return out.reshape(x.shape), BatchNormSaved(centred, inv_std, weight, x.shape), mean, var


def batch_norm_backward(g, saved, needs=(True, True, True)):
    """``(dx, dgamma, dbeta)``; per channel over ``S = {(n, s)}``:

    training: ``dx = gamma_c / sigma_c * (g - mean_S(g) - xhat * mean_S(g * xhat))``;
    inference: ``dx = gamma_c / sigma_c * g``;
    ``dgamma_c = sum_{n,s} g * xhat``, ``dbeta_c = sum_{n,s} g``.

    In training, ``gamma_c`` is constant over ``S``, so the two means are
    ``dbeta_c / m`` and ``dgamma_c / m``; with ``xhat = centred / sigma_c``
    and ``a_c = gamma_c / sigma_c``:
    ``dgamma_c = (1/sigma_c) sum g * centred`` and
    ``dx = a_c g - (a_c dgamma_c / (m sigma_c)) centred - a_c dbeta_c / m``,
    two reductions and four element-wise passes.
    """
    if isinstance(saved, NormSaved):
        return _normalize_backward(g, saved, needs)
    centred, inv_std, weight, shape = saved
    g3 = g.reshape(centred.shape)
    m = g.dtype.type(g3.shape[0] * g3.shape[2])
    dbias = _channel_sums(g3)
    dweight = np.einsum("ncp,ncp->c", g3, centred) * inv_std
    dx = None
    if needs[0]:
        a = inv_std if weight is None else weight * inv_std
        dx = np.multiply(g3, a[:, None])
        dx -= np.multiply(centred, (a * dweight * inv_std / m)[:, None])
        dx -= (a * dbias / m)[:, None]
        dx = dx.reshape(shape)
    return dx, (dweight if needs[1] else None), (dbias if needs[2] else None)


def instance_norm_forward(x, weight, bias, *, running_mean, running_var, use_input_stats, momentum, eps):
    """Instance normalisation: one set per sample and channel over the spatial axes.

    ``mu[n,c] = 1/m sum_s x[n,c,s]``, ``var[n,c] = 1/m sum_s (x[n,c,s] - mu[n,c])^2``,
    ``m = prod(spatial)``; ``y[n,c,s] = gamma_c (x[n,c,s] - mu[n,c]) / sqrt(var[n,c] + eps) + beta_c``.

    With ``use_input_stats`` (PyTorch's default) the instance statistics
    normalise and the optional ``(C,)`` running buffers are updated in place
    with the batch average of the per-instance statistics, as PyTorch does:
    ``running_mean = (1 - momentum) running_mean + momentum * 1/N sum_n mu[n,c]``
    (and the unbiased ``var[n,c] * m/(m-1)`` for ``running_var``). Without
    it, the running buffers normalise (inference), as in batch norm.

    Shapes: ``x (N, C, *spatial)``, ``weight``, ``bias`` ``(C,)`` or None -> ``y`` like ``x``.
    """
    spatial = tuple(range(2, x.ndim))
    param_axes = (0,) + spatial
    if not use_input_stats:
        stats = _channel_stats(running_mean, running_var, x.ndim)
        out, saved, _, _ = _normalize(x, weight, bias, view=x.shape, stat_axes=param_axes,
                                      param_axes=param_axes, eps=eps, stats=stats)
        return out, saved
    out, saved, mean, var = _normalize(x, weight, bias, view=x.shape, stat_axes=spatial,
                                       param_axes=param_axes, eps=eps)
    n, channels = x.shape[:2]
    m = math.prod(x.shape[2:])
    if running_mean is not None:
        _update_running(running_mean, mean.reshape(n, channels).mean(axis=0), momentum)
    if running_var is not None:
        unbiased = var.reshape(n, channels).mean(axis=0) * (m / (m - 1))
        _update_running(running_var, unbiased, momentum)
    return out, saved


def instance_norm_backward(g, saved: NormSaved, needs=(True, True, True)):
    """``(dx, dgamma, dbeta)``; per ``(n, c)`` over ``S = {s}`` with input statistics:

    ``dx = gamma_c / sigma[n,c] * (g - mean_S(g) - xhat * mean_S(g * xhat))``
    (``gamma_c / sigma_c * g`` with running statistics);
    ``dgamma_c = sum_{n,s} g * xhat``, ``dbeta_c = sum_{n,s} g``.
    """
    return _normalize_backward(g, saved, needs)


def layer_norm_forward(x, weight, bias, *, normalized_ndim, eps):
    """Layer normalisation over the trailing ``k = normalized_ndim`` axes.

    For every leading index ``a``: ``mu[a] = 1/m sum_t x[a,t]``,
    ``var[a] = 1/m sum_t (x[a,t] - mu[a])^2`` over the trailing multi-index
    ``t`` (``m = prod(normalized_shape)``);
    ``y[a,t] = gamma[t] (x[a,t] - mu[a]) / sqrt(var[a] + eps) + beta[t]``
    (element-wise affine).

    Shapes: ``x (*lead, *normalized_shape)``, ``weight``, ``bias``
    ``normalized_shape`` or None -> ``y`` like ``x``.
    """
    lead = x.ndim - normalized_ndim
    out, saved, _, _ = _normalize(x, weight, bias, view=x.shape,
                                  stat_axes=tuple(range(lead, x.ndim)),
                                  param_axes=tuple(range(lead)), eps=eps)
    return out, saved


def layer_norm_backward(g, saved: NormSaved, needs=(True, True, True)):
    """``(dx, dgamma, dbeta)``; per leading index over ``S = {t}``:

    ``dx = 1/sigma * (gh - mean_S(gh) - xhat * mean_S(gh * xhat))`` with ``gh = gamma[t] g``;
    ``dgamma[t] = sum_a g[a,t] xhat[a,t]``, ``dbeta[t] = sum_a g[a,t]``.
    """
    return _normalize_backward(g, saved, needs)


def group_norm_forward(x, weight, bias, *, num_groups, eps):
    """Group normalisation: channels split into ``G`` groups of ``C/G``; one set per sample and group.

    ``mu[n,k] = 1/m sum_{c in group k, s} x[n,c,s]`` and likewise the biased
    ``var[n,k]``, ``m = C/G * prod(spatial)``;
    ``y[n,c,s] = gamma_c (x[n,c,s] - mu[n,k(c)]) / sqrt(var[n,k(c)] + eps) + beta_c``.
    ``G = 1`` normalises like layer norm over ``(C, *spatial)``, ``G = C``
    like instance norm (their affine parts differ).

    Shapes: ``x (N, C, *spatial)`` with ``C % G == 0``, ``weight``, ``bias``
    ``(C,)`` or None -> ``y`` like ``x``. Statistics are taken on the view
    ``(N, G, C/G * prod(spatial))``.
    """
    n = x.shape[0]
    view = (n, num_groups, math.prod(x.shape[1:]) // num_groups)
    out, saved, _, _ = _normalize(x, weight, bias, view=view, stat_axes=(2,),
                                  param_axes=(0,) + tuple(range(2, x.ndim)), eps=eps)
    return out, saved


def group_norm_backward(g, saved: NormSaved, needs=(True, True, True)):
    """``(dx, dgamma, dbeta)``; per ``(n, group)`` over ``S = {(c in group, s)}``:

    ``dx = 1/sigma * (gh - mean_S(gh) - xhat * mean_S(gh * xhat))`` with ``gh = gamma_c g``;
    ``dgamma_c = sum_{n,s} g * xhat``, ``dbeta_c = sum_{n,s} g``.
    """
    return _normalize_backward(g, saved, needs)


batch_norm = Primitive("batch_norm", batch_norm_forward, batch_norm_backward)
instance_norm = Primitive("instance_norm", instance_norm_forward, instance_norm_backward)
layer_norm = Primitive("layer_norm", layer_norm_forward, layer_norm_backward)
group_norm = Primitive("group_norm", group_norm_forward, group_norm_backward)
