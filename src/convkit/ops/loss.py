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

Kernels (``ops.jit``). Cross-entropy runs on rows: the class axis is moved
last (a copy only when there are spatial axes ``d``), so items are the
contiguous rows of an ``(R, C)`` array, ``R = N * prod(d)``; one kernel per
dtype serves every shape. Per row, forward computes ``m = max_c x_c`` and
``s = sum_c exp(x_c - m)`` (float64; ``ops.activation``'s row helpers), the
log-probabilities ``logp_c = (x_c - m) - log s`` and the row's loss, and
saves ``m`` and ``log s`` (not ``logp``): backward recomputes
``p_c = exp(logp_c)`` while it writes ``dx``. Per-item losses and weights
are float64, and so are their sums, the reductions. ``nll_loss`` reads one
element per item and stays on the ``(N, C, P)`` layout.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from . import Primitive, workspace
from .meta import MetaArray
from .activation import LANES, exp, row_dot, row_exp_sum, rows, unrows
from .jit import flat, kernel, parallel_spans, prange

REDUCTIONS = ("mean", "sum", "none")


# ------------------------------------------------------------------ reductions and gradients
def _reduce_items(loss, reduction: str, divisor, dtype, shape):
    """The output from the float64 per-item losses: ``l`` (``shape``), ``sum_n l_n`` or ``sum_n l_n / D``, in ``dtype``.

    0/0 gives NaN, as torch (a 'mean' over no item, or over ignored items only).
    """
    if reduction == "none":
        return loss.astype(dtype).reshape(shape)
    total = loss.sum()
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):
            total = total / np.float64(divisor)
    return np.asarray(total, dtype=dtype)


def _item_grad(g, reduction: str, divisor):
    """``(g_items, step, scale)`` with ``gbar_n = g_items[n * step] * scale`` (read by the backward kernels)."""
    g = np.asarray(g)
    if reduction == "none":
        return flat(g), 1, 1.0
    with np.errstate(divide="ignore"):
        scale = np.float64(1.0) / np.float64(divisor) if reduction == "mean" else 1.0
    return np.ascontiguousarray(g).reshape(1), 0, float(scale)


def _class_weight(weight, num_classes: int, dtype):
    """The ``(C,)`` class weights as a contiguous ``dtype`` array, all ones when None (multiplying by 1 is exact)."""
    return np.ones(num_classes, dtype=dtype) if weight is None else np.ascontiguousarray(weight, dtype=dtype)


def _targets(target):
    """Class indices as a flat int64 array (one compiled kernel whatever the integer type)."""
    return np.ascontiguousarray(target, dtype=np.int64).reshape(-1)


# ---------------------------------------------------------------- mse_loss
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


def mse_loss_forward(x, target, *, reduction: str):
    """``l_i = (x_i - t_i)^2`` over every element ``i``; mean divisor ``D`` = number of elements.

    Shapes: ``x (*)``, ``t (*)`` (same shape) -> ``()`` or ``(*)`` for 'none'.
    Backward: ``dx_i = 2 gbar_i (x_i - t_i)``, ``dt_i = -dx_i``.
    """
    d = x - target
    return _reduce(d * d, reduction, d.size), (d, reduction)


def mse_loss_backward(g, saved, needs=(True, True)):
    d, reduction = saved
    if reduction != "none":
        if reduction == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):
                g = g / g.dtype.type(d.size)
        g = np.broadcast_to(g, d.shape)
    dx = 2 * g * d
    return (dx if needs[0] else None), (-dx if needs[1] else None)


# ---------------------------------------------------------------- nll_loss
@kernel
def _nll_span(logp, target, weight, ignore_index, classes, inner, loss, w, start, stop):
    """Items ``start..stop`` of ``l_n = -w_n logp[n, y_n]`` on the flat ``(N, C, P)`` ``logp``."""
    for i in range(start, stop):
        t = target[i]
        if t == ignore_index:
            loss[i] = 0.0
            w[i] = 0.0
            continue
        wt = np.float64(weight[t])
        w[i] = wt
        loss[i] = -wt * logp[(i // inner) * classes * inner + t * inner + i % inner]


@kernel
def _nll_grad(target, ignore_index, classes, inner, w, g, g_step, g_scale, dlogp):
    """``dlogp[n, y_n] = -gbar_n w_n`` on the zero-filled flat ``(N, C, P)`` ``dlogp``."""
    for i in range(target.size):
        t = target[i]
        if t != ignore_index:
            dlogp[(i // inner) * classes * inner + t * inner + i % inner] = -(g[i * g_step] * g_scale) * w[i]


class _NllSaved(NamedTuple):
    shape: tuple
    dtype: np.dtype
    target: np.ndarray   # (items,) int64
    w: np.ndarray        # (items,) float64
    ignore_index: int
    reduction: str
    divisor: float


def nll_loss_forward(logp, target, weight=None, *, ignore_index: int, reduction: str):
    """``l_n = -w_n * logp[n, y_n]``; mean divisor ``D = sum_n w_n``.

    Shapes: ``logp (N, C, d...)`` (log-probabilities), ``y (N, d...)``
    integer, ``weight (C,)`` or None -> ``()`` or ``(N, d...)`` for 'none'.
    Backward: ``dlogp[n, c] = -gbar_n * w_n * [c == y_n]`` (zero elsewhere).
    """
    classes = logp.shape[1]
    inner = math.prod(logp.shape[2:])
    t = _targets(target)
    loss, w = np.empty(t.size), np.empty(t.size)
    _nll_span(flat(logp), t, _class_weight(weight, classes, logp.dtype), ignore_index, classes, inner,
              loss, w, 0, t.size)
    divisor = w.sum()
    saved = _NllSaved(logp.shape, logp.dtype, t, w, ignore_index, reduction, divisor)
    return _reduce_items(loss, reduction, divisor, logp.dtype, target.shape), saved


def nll_loss_backward(g, saved: _NllSaved, needs=(True, False, False)):
    s = saved
    dlogp = workspace.zeros(s.shape, s.dtype)
    g_items, step, scale = _item_grad(g, s.reduction, s.divisor)
    _nll_grad(s.target, s.ignore_index, s.shape[1], math.prod(s.shape[2:]), s.w, g_items, step, scale,
              dlogp.reshape(-1))
    return dlogp, None, None


# ------------------------------------------------- cross_entropy (indices)
@kernel
def _cross_entropy_span(x, target, weight, ignore_index, eps, shift, log_sum, loss, w, start, stop):
    """Rows ``start..stop`` of ``x (R, C)``: ``shift = m``, ``log_sum = log s`` (``x``'s dtype), loss and ``w_n`` (float64)."""
    classes = x.shape[1]
    share = eps / classes
    lanes = np.empty(LANES, x.dtype)
    lanes64 = np.empty(LANES)
    e = np.empty(classes, x.dtype)
    for r in range(start, stop):
        xr = x[r]
        m, s = row_exp_sum(xr, e, lanes, lanes64)
        ls = x.dtype.type(math.log(s))
        shift[r] = m
        log_sum[r] = ls
        t = target[r]
        if t == ignore_index:
            loss[r] = 0.0
            w[r] = 0.0
            continue
        wt = np.float64(weight[t])
        w[r] = wt
        nll = -wt * ((xr[t] - m) - ls)
        if eps != 0:
            for c in range(classes):
                e[c] = (xr[c] - m) - ls
            loss[r] = (1 - eps) * nll - share * row_dot(weight, e, lanes64)
        else:
            loss[r] = nll


@kernel(parallel=True)
def _cross_entropy_chunks(x, target, weight, ignore_index, eps, shift, log_sum, loss, w, items, threads):
    for k in prange(threads):
        _cross_entropy_span(x, target, weight, ignore_index, eps, shift, log_sum, loss, w,
                            k * items // threads, (k + 1) * items // threads)


@kernel
def _cross_entropy_grad_span(x, target, weight, ignore_index, eps, total_weight, shift, log_sum, w,
                             g, g_step, g_scale, dx, start, stop):
    """Rows of ``dx = gbar (p Q - q)`` (module docstring), 0 on ignored rows."""
    classes = x.shape[1]
    share = eps / classes
    for r in range(start, stop):
        dr = dx[r]
        t = target[r]
        if t == ignore_index:
            dr[:] = 0
            continue
        xr = x[r]
        m = shift[r]
        ls = log_sum[r]
        gbar = np.float64(g[r * g_step]) * g_scale
        total_q = (1 - eps) * w[r] + share * total_weight
        for c in range(classes):
            dr[c] = gbar * (exp((xr[c] - m) - ls) * total_q - share * weight[c])
        dr[t] = gbar * (exp((xr[t] - m) - ls) * total_q - share * weight[t] - (1 - eps) * w[r])


@kernel(parallel=True)
def _cross_entropy_grad_chunks(x, target, weight, ignore_index, eps, total_weight, shift, log_sum, w,
                               g, g_step, g_scale, dx, items, threads):
    for k in prange(threads):
        _cross_entropy_grad_span(x, target, weight, ignore_index, eps, total_weight, shift, log_sum, w,
                                 g, g_step, g_scale, dx, k * items // threads, (k + 1) * items // threads)


class _CrossEntropySaved(NamedTuple):
    x: np.ndarray        # (R, C) rows
    shape: tuple         # x's shape (N, C, d...)
    target: np.ndarray   # (R,) int64
    weight: np.ndarray   # (C,)
    ignore_index: int
    eps: float
    shift: np.ndarray    # (R,) m
    log_sum: np.ndarray  # (R,) log s
    w: np.ndarray        # (R,) float64 w_n
    reduction: str
    divisor: float


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
    xr = rows(x, 1)
    t = _targets(target)
    weight = _class_weight(weight, x.shape[1], x.dtype)
    items = xr.shape[0]
    shift, log_sum = np.empty(items, x.dtype), np.empty(items, x.dtype)
    loss, w = np.empty(items), np.empty(items)
    parallel_spans(_cross_entropy_span, _cross_entropy_chunks, items, xr.size,
                   xr, t, weight, ignore_index, float(label_smoothing), shift, log_sum, loss, w)
    divisor = w.sum()
    saved = _CrossEntropySaved(xr, x.shape, t, weight, ignore_index, float(label_smoothing), shift, log_sum, w,
                               reduction, divisor)
    return _reduce_items(loss, reduction, divisor, x.dtype, target.shape), saved


def cross_entropy_backward(g, saved: _CrossEntropySaved, needs=(True, False, False)):
    s = saved
    dx = workspace.empty(s.x.shape, s.x.dtype)
    g_items, step, scale = _item_grad(g, s.reduction, s.divisor)
    parallel_spans(_cross_entropy_grad_span, _cross_entropy_grad_chunks, s.x.shape[0], s.x.size,
                   s.x, s.target, s.weight, s.ignore_index, s.eps, float(s.weight.sum(dtype=np.float64)),
                   s.shift, s.log_sum, s.w, g_items, step, scale, dx)
    return unrows(dx, s.shape, 1), None, None


# ---------------------------------------------- cross_entropy (probabilities)
@kernel
def _soft_cross_entropy_span(x, target, weight, eps, shift, log_sum, loss, total_q, start, stop):
    """Rows of ``l_n = -sum_c q_c logp_c`` and ``Q_n = sum_c q_c`` (float64), ``q_c = weight_c ((1-eps) t_c + eps/C)``."""
    classes = x.shape[1]
    share = eps / classes
    lanes = np.empty(LANES, x.dtype)
    lanes64 = np.empty(LANES)
    e = np.empty(classes, x.dtype)
    for r in range(start, stop):
        xr = x[r]
        tr = target[r]
        m, s = row_exp_sum(xr, e, lanes, lanes64)
        ls = x.dtype.type(math.log(s))
        shift[r] = m
        log_sum[r] = ls
        lq = 0.0
        sq = 0.0
        for c in range(classes):
            q = np.float64(weight[c]) * ((1 - eps) * tr[c] + share)
            lq += q * ((xr[c] - m) - ls)
            sq += q
        loss[r] = -lq
        total_q[r] = sq


@kernel(parallel=True)
def _soft_cross_entropy_chunks(x, target, weight, eps, shift, log_sum, loss, total_q, items, threads):
    for k in prange(threads):
        _soft_cross_entropy_span(x, target, weight, eps, shift, log_sum, loss, total_q,
                                 k * items // threads, (k + 1) * items // threads)


@kernel
def _soft_cross_entropy_grad_span(x, target, weight, eps, shift, log_sum, total_q, g, g_step, g_scale,
                                  want_dx, want_dt, dx, dt, start, stop):
    """Rows of ``dx = gbar (p Q - q)`` and ``dt = -gbar (1 - eps) weight logp`` (each when wanted)."""
    classes = x.shape[1]
    share = eps / classes
    for r in range(start, stop):
        xr = x[r]
        tr = target[r]
        m = shift[r]
        ls = log_sum[r]
        gbar = np.float64(g[r * g_step]) * g_scale
        if want_dx:
            dr = dx[r]
            for c in range(classes):
                q = np.float64(weight[c]) * ((1 - eps) * tr[c] + share)
                dr[c] = gbar * (exp((xr[c] - m) - ls) * total_q[r] - q)
        if want_dt:
            dtr = dt[r]
            for c in range(classes):
                dtr[c] = -gbar * (1 - eps) * weight[c] * ((xr[c] - m) - ls)


@kernel(parallel=True)
def _soft_cross_entropy_grad_chunks(x, target, weight, eps, shift, log_sum, total_q, g, g_step, g_scale,
                                    want_dx, want_dt, dx, dt, items, threads):
    for k in prange(threads):
        _soft_cross_entropy_grad_span(x, target, weight, eps, shift, log_sum, total_q, g, g_step, g_scale,
                                      want_dx, want_dt, dx, dt, k * items // threads, (k + 1) * items // threads)


class _SoftSaved(NamedTuple):
    x: np.ndarray        # (R, C) rows
    target: np.ndarray   # (R, C) rows
    shape: tuple
    weight: np.ndarray   # (C,)
    eps: float
    shift: np.ndarray    # (R,)
    log_sum: np.ndarray  # (R,)
    total_q: np.ndarray  # (R,) float64 Q_n
    reduction: str


def soft_cross_entropy_forward(x, target, weight=None, *, reduction: str, label_smoothing: float):
    """Softmax cross-entropy against class probabilities (``target`` shaped like ``x``).

    ``q[n, c] = weight_c ((1 - eps) t[n, c] + eps/C)`` and
    ``l_n = -sum_c q[n, c] logp[n, c]`` with ``logp = log_softmax(x)`` over
    the class axis; mean divisor ``D`` = number of items ``N * prod(d)``.
    Shapes: ``x, t (N, C, d...)``, ``weight (C,)`` or None -> ``()`` or ``(N, d...)``.
    Backward: ``dx[n, c] = gbar_n (p[n, c] Q_n - q[n, c])``, ``Q_n = sum_c q[n, c]``,
    ``dt[n, c] = -gbar_n (1 - eps) weight_c logp[n, c]``.
    """
    xr, tr = rows(x, 1), rows(target, 1)
    weight = _class_weight(weight, x.shape[1], x.dtype)
    items = xr.shape[0]
    shift, log_sum = np.empty(items, x.dtype), np.empty(items, x.dtype)
    loss, total_q = np.empty(items), np.empty(items)
    parallel_spans(_soft_cross_entropy_span, _soft_cross_entropy_chunks, items, xr.size,
                   xr, tr, weight, float(label_smoothing), shift, log_sum, loss, total_q)
    saved = _SoftSaved(xr, tr, x.shape, weight, float(label_smoothing), shift, log_sum, total_q, reduction)
    return _reduce_items(loss, reduction, items, x.dtype, x.shape[:1] + x.shape[2:]), saved


def soft_cross_entropy_backward(g, saved: _SoftSaved, needs=(True, True, False)):
    s = saved
    empty = np.empty((0, s.x.shape[1]), s.x.dtype)
    dx = workspace.empty(s.x.shape, s.x.dtype) if needs[0] else empty
    dt = workspace.empty(s.x.shape, s.x.dtype) if needs[1] else empty
    g_items, step, scale = _item_grad(g, s.reduction, s.x.shape[0])
    parallel_spans(_soft_cross_entropy_grad_span, _soft_cross_entropy_grad_chunks, s.x.shape[0],
                   s.x.size * (bool(needs[0]) + bool(needs[1])), s.x, s.target, s.weight, s.eps, s.shift,
                   s.log_sum, s.total_q, g_items, step, scale, bool(needs[0]), bool(needs[1]), dx, dt)
    return (unrows(dx, s.shape, 1) if needs[0] else None), (unrows(dt, s.shape, 1) if needs[1] else None), None


def loss_meta(x, target, weight=None, *, reduction: str, **options) -> MetaArray:
    """A scalar, or for ``reduction='none'`` one loss per item: ``target``'s shape (``mse_loss``: the
    elements; the class-index losses: ``(N, d...)``; ``soft_cross_entropy``: ``x`` without its class axis)."""
    if reduction != "none":
        return MetaArray((), x.dtype)
    if target.shape == x.shape and options:
        return MetaArray(x.shape[:1] + x.shape[2:], x.dtype)
    return MetaArray(target.shape, x.dtype)


mse_loss = Primitive("mse_loss", mse_loss_forward, mse_loss_backward, loss_meta)
nll_loss = Primitive("nll_loss", nll_loss_forward, nll_loss_backward, loss_meta)
cross_entropy = Primitive("cross_entropy", cross_entropy_forward, cross_entropy_backward, loss_meta)
soft_cross_entropy = Primitive("soft_cross_entropy", soft_cross_entropy_forward, soft_cross_entropy_backward,
                                loss_meta)
