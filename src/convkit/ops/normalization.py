"""Normalisation (batch, instance, group, layer) with its hand-derived gradient: two kernels serve all four.

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

Backward, the same for all four: with ``gh_i = g_i * gamma_p(i)``,
differentiating through ``mu`` and ``sigma`` (both depend on every ``x_j`` of
the set) gives the compact form::

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

Kernels (``ops.jit``). Every op runs on the canonical layout
``x (N, G, K, P)``: ``N*G`` contiguous blocks ``x[n, g]`` of ``K`` rows of
``P`` elements. A set is one block (``per_sample``) or the column of blocks
``x[:, g]`` (a batch set: batch norm, and batch or instance norm with running
statistics, whose sets are the channels)::

    op         layout (N, G, K, P)                    sets      gamma_p(i), i = [n, g, k, t]
    batch      (N, C, 1, prod(spatial))               x[:, c]   gamma[c]
    instance   (N, C, 1, prod(spatial))               x[n, c]   gamma[c]
    group      (N, G, C/G, prod(spatial))             x[n, g]   gamma[g*C/G + k]
    layer      (prod(lead), 1, 1, prod(norm_shape))   x[a]      gamma[t]  (element-wise)

So 1-D, 2-D and 3-D inputs of all four norms share two kernels per dtype,
each a ``prange`` over ``T`` chunks of consecutive blocks (``T`` = the
thread count, at most the number of blocks):

* ``_normalize``, the forward: each set's sums about a shift ``s``, its
  first element (a large mean does not cancel), ``S1 = sum_i (x_i - s)``,
  ``S2 = sum_i (x_i - s)^2``, then ``mu = s + S1/m``,
  ``var = (S2 - S1^2/m)/m`` and ``y``. A per-sample set is summed and written
  while its block is in cache (one pass over ``x``); a batch set is summed
  per chunk, the chunks' sums are added, and a second pass writes ``y``.
* ``_normalize_backward``, the backward of all four: per row ``sum g`` and
  ``sum g (x - mu)`` (for layer norm ``gh = gamma_t g`` first), which give
  ``dbeta_p``, ``dgamma_p`` (each chunk its own, added after the pass: no
  races) and the two means of ``dx``; ``dx`` is written in the same pass for
  a per-sample set or constant statistics, in a second pass for a batch set,
  whose means are ``gamma_c dbeta_c / m`` and ``gamma_c dgamma_c / m``.

Every sum is float64. Without fastmath a compiler keeps the order of a
running sum, which rules out SIMD, so a row of ``SHORT`` elements or more is
added in ``LANES`` independent partial sums (``_accumulate``: element ``i``
of each run of ``LANES`` goes to lane ``i % LANES``), which vectorise, and
the lanes are added pairwise (``_take``); a shorter row is added in order
(``_ordered_sums``), faster there. A batch set keeps its lanes across the
blocks of a chunk. Backward keeps ``x`` itself, not a normalised copy:
``xhat`` is recomputed from ``x``, ``mu`` and ``1/sigma`` (float64, per set).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

from . import Primitive, workspace
from .meta import same
from .activation import rectified_grad, rectify
from .jit import kernel, prange

LANES = 32  # independent partial sums in a row sum (a multiple of the SIMD width that vectorises)
SHORT = 4 * LANES  # rows shorter than this are summed in order (no lanes to set up and add up)


# ------------------------------------------------------------------------------------- kernels
@kernel
def _accumulate(u, ku, v, kv, lanes):
    """``lanes[0, j] += sum_i (u_i - ku)``, ``lanes[1, j] += sum_i (u_i - ku) (v_i - kv)``, ``i`` in lane ``j``.

    ``u``, ``v`` are rows of equal length; element ``i`` of a run of ``LANES``
    goes to lane ``i % LANES``, the last ``len % LANES`` elements to lanes
    ``0, 1, ...``. Lanes are float64 and independent, so the loop vectorises.
    """
    n = u.size
    full = n - n % LANES
    for i in range(0, full, LANES):
        for j in range(LANES):
            du = np.float64(u[i + j]) - ku
            lanes[0, j] += du
            lanes[1, j] += du * (np.float64(v[i + j]) - kv)
    for j in range(n - full):
        du = np.float64(u[full + j]) - ku
        lanes[0, j] += du
        lanes[1, j] += du * (np.float64(v[full + j]) - kv)


@kernel
def _take(lanes):
    """``(sum_j lanes[0, j], sum_j lanes[1, j])``, added pairwise (a tree), and the lanes reset to zero."""
    width = LANES
    while width > 1:
        width //= 2
        for j in range(width):
            lanes[0, j] += lanes[0, j + width]
            lanes[1, j] += lanes[1, j + width]
    s1 = lanes[0, 0]
    s2 = lanes[1, 0]
    lanes[:] = 0.0
    return s1, s2


@kernel
def _ordered_sums(u, ku, v, kv):
    """``(sum_i (u_i - ku), sum_i (u_i - ku) * (v_i - kv))`` over one row, float64, in order.

    For rows shorter than ``SHORT``, where it is faster than ``_accumulate`` and ``_take``.
    """
    s1 = 0.0
    s2 = 0.0
    for i in range(u.size):
        du = np.float64(u[i]) - ku
        s1 += du
        s2 += du * (np.float64(v[i]) - kv)
    return s1, s2


@kernel
def _layer_row(g, x, mu, inv, gamma, part, gh):
    """One row of layer norm: ``gh_t = gamma_t g_t``, ``part[0, t] += g_t``, ``part[1, t] += g_t xhat_t``.

    ``xhat_t = (x_t - mu) * inv``; ``gh`` and ``part`` are float64.
    """
    for t in range(g.size):
        gt = np.float64(g[t])
        gh[t] = gamma[t] * gt
        part[0, t] += gt
        part[1, t] += gt * ((np.float64(x[t]) - mu) * inv)


@kernel
def _finish(s1, s2, shift, m, eps, s, mean, var, inv_std):
    """Set ``s`` from its sums about ``shift``: ``mu = shift + S1/m``, ``var = (S2 - S1^2/m)/m``, ``inv_std``."""
    v = (s2 - s1 * s1 / m) / m
    if v < 0.0:  # rounding of a zero variance; NaN passes
        v = 0.0
    mean[s] = shift + s1 / m
    var[s] = v
    inv_std[s] = 1.0 / np.sqrt(v + eps)


@kernel
def _affine_block(x, y, n, g, mu, inv, gamma, beta, elementwise, act, slope):
    """``y[n,g,k,t] = (x[n,g,k,t] - mu) * inv * gamma_p + beta_p`` over block ``(n, g)``.

    ``p = g*K + k``, or ``p = t`` when ``elementwise``; with ``act``, each
    row then ends in ``leaky_relu(., slope)`` while it is in cache.
    """
    rows = x.shape[2]
    for k in range(rows):
        xs = x[n, g, k]
        ys = y[n, g, k]
        if elementwise:
            for t in range(xs.size):
                ys[t] = (xs[t] - mu) * (inv * gamma[t]) + beta[t]
        else:
            a = gamma[g * rows + k] * inv
            b = beta[g * rows + k]
            for t in range(xs.size):
                ys[t] = (xs[t] - mu) * a + b
        if act:
            rectify(ys, slope, ys)


@kernel
def _dx_block(gy, x, n, g, mu, inv, mean_gh, mean_ghx, gamma, elementwise, dx):
    """``dx = inv (gamma_p g - mean_gh - xhat mean_ghx)``, ``xhat = (x - mu) inv``, over block ``(n, g)``."""
    rows = x.shape[2]
    k1 = inv * mean_gh
    k2 = inv * inv * mean_ghx
    for k in range(rows):
        gs = gy[n, g, k]
        xs = x[n, g, k]
        ds = dx[n, g, k]
        if elementwise:
            for t in range(xs.size):
                ds[t] = (inv * gamma[t]) * gs[t] - k2 * (xs[t] - mu) - k1
        else:
            a = gamma[g * rows + k] * inv
            for t in range(xs.size):
                ds[t] = a * gs[t] - k2 * (xs[t] - mu) - k1


@kernel(parallel=True)
def _normalize(x, gamma, beta, eps, per_sample, batch_stats, elementwise, act, slope, lanes, mean, var, inv_std,
               y):
    """``y = (x - mu_S) / sigma_S * gamma_p + beta_p`` on the layout ``x (N, G, K, P)``.

    Sets: block ``(n, g)`` (set ``n*G + g``) when ``per_sample``, else
    ``x[:, g]`` (set ``g``); ``m`` elements each. With ``batch_stats`` the
    kernel writes the sets' ``mean``, biased ``var`` and ``inv_std``; without,
    it reads ``mean`` and ``inv_std``. With ``act``, ``y`` ends in
    ``leaky_relu(y, slope)`` (``slope`` of ``y``'s dtype). ``gamma``, ``beta`` (float64) are
    ``(G*K,)``, or ``(P,)`` when ``elementwise``. ``lanes`` (zeros,
    ``(T, 1 or G, 2, LANES)``) gives the ``T`` chunks of consecutive blocks
    (one per thread) their partial sums: one set's at a time when
    ``per_sample``, else every batch set's, taken once the chunk is done.
    Batch sets take two passes (all blocks' sums, then ``y``), the others one.
    """
    chunks = lanes.shape[0]
    batch, groups, rows, cols = x.shape
    blocks = batch * groups
    m = rows * cols * (1 if per_sample else batch)
    flat = x.reshape((batch, groups, rows * cols))
    sums = np.empty((chunks, groups, 2))  # each chunk's S1, S2 of each batch set
    two_passes = batch_stats and not per_sample
    for phase in range(2 if two_passes else 1):
        for t in prange(chunks):
            for b in range(t * blocks // chunks, (t + 1) * blocks // chunks):
                n = b // groups
                g = b % groups
                s = b if per_sample else g
                if phase == 0 and batch_stats:
                    shift = np.float64(flat[n if per_sample else 0, g, 0]) if m > 0 else 0.0
                    if per_sample and rows * cols < SHORT:
                        s1, s2 = _ordered_sums(flat[n, g], shift, flat[n, g], shift)
                        _finish(s1, s2, shift, m, eps, s, mean, var, inv_std)
                    elif per_sample:
                        _accumulate(flat[n, g], shift, flat[n, g], shift, lanes[t, 0])
                        s1, s2 = _take(lanes[t, 0])
                        _finish(s1, s2, shift, m, eps, s, mean, var, inv_std)
                    else:
                        _accumulate(flat[n, g], shift, flat[n, g], shift, lanes[t, g])
                if phase == 1 or not two_passes:
                    _affine_block(x, y, n, g, mean[s], inv_std[s], gamma, beta, elementwise, act, slope)
            if phase == 0 and two_passes:
                for g in range(groups):
                    sums[t, g, 0], sums[t, g, 1] = _take(lanes[t, g])
        if phase == 0 and two_passes:
            for c in range(groups):
                total1 = 0.0
                total2 = 0.0
                for t in range(chunks):
                    total1 += sums[t, c, 0]
                    total2 += sums[t, c, 1]
                shift = np.float64(flat[0, c, 0]) if m > 0 else 0.0
                _finish(total1, total2, shift, m, eps, c, mean, var, inv_std)


@kernel(parallel=True)
def _normalize_backward(gy, x, gamma, mean, inv_std, per_sample, batch_stats, elementwise, lanes,
                        want_dx, dx, dparams):
    """``dx`` (when ``want_dx``) and ``dparams = (dbeta_p, dgamma_p)`` (float64) of ``_normalize``.

    Same layout, sets, chunks and ``lanes`` as ``_normalize``; ``mean``,
    ``inv_std`` are the sets' statistics, constants unless ``batch_stats``
    (then ``dx = gamma_p g / sigma``). Each chunk sums its own ``dbeta``,
    ``dgamma`` (``part``), added up after the pass; for a batch set
    (``gamma`` constant on it) ``mean_S(gh) = gamma dbeta / m`` and
    ``mean_S(gh * xhat) = gamma dgamma / m``, used by a second pass.
    """
    chunks = lanes.shape[0]
    batch, groups, rows, cols = x.shape
    blocks = batch * groups
    m = rows * cols * (1 if per_sample else batch)
    npar = gamma.size
    part = np.empty((chunks, 2, npar))
    gh = np.empty((chunks, cols if elementwise else 0))  # layer norm: gamma_t g_t of the row
    two_passes = want_dx and batch_stats and not per_sample
    for phase in range(2 if two_passes else 1):
        for t in prange(chunks):
            if phase == 0:
                for j in range(npar):
                    part[t, 0, j] = 0.0
                    part[t, 1, j] = 0.0
            for b in range(t * blocks // chunks, (t + 1) * blocks // chunks):
                n = b // groups
                g = b % groups
                s = b if per_sample else g
                mu = mean[s]
                inv = inv_std[s]
                mean_gh = 0.0  # mean_S(gh), mean_S(gh * xhat): 0 for constant statistics
                mean_ghx = 0.0
                if phase == 0 and per_sample:
                    sum_gh = 0.0
                    sum_ghx = 0.0
                    for k in range(rows):
                        p = g * rows + k
                        if elementwise:  # gamma_t varies along the row: sum gh = gamma g, made here
                            _layer_row(gy[n, g, k], x[n, g, k], mu, inv, gamma, part[t], gh[t])
                            if cols < SHORT:
                                sg, sgx = _ordered_sums(gh[t], 0.0, x[n, g, k], mu)
                            else:
                                _accumulate(gh[t], 0.0, x[n, g, k], mu, lanes[t, 0])
                                sg, sgx = _take(lanes[t, 0])
                            sgx *= inv
                        else:  # gamma_p is constant on the row: sum g, then scale
                            if cols < SHORT:
                                sg, sgx = _ordered_sums(gy[n, g, k], 0.0, x[n, g, k], mu)
                            else:
                                _accumulate(gy[n, g, k], 0.0, x[n, g, k], mu, lanes[t, 0])
                                sg, sgx = _take(lanes[t, 0])
                            sgx *= inv
                            part[t, 0, p] += sg
                            part[t, 1, p] += sgx
                            sg *= gamma[p]
                            sgx *= gamma[p]
                        sum_gh += sg
                        sum_ghx += sgx
                    mean_gh = sum_gh / m
                    mean_ghx = sum_ghx / m
                elif phase == 0:  # a batch set (K = 1): its lanes keep its sums until the chunk ends
                    _accumulate(gy[n, g, 0], 0.0, x[n, g, 0], mu, lanes[t, g])
                elif batch_stats:
                    mean_gh = gamma[g] * dparams[0, g] / m
                    mean_ghx = gamma[g] * dparams[1, g] / m
                if want_dx and (phase == 1 or not two_passes):
                    _dx_block(gy, x, n, g, mu, inv, mean_gh if batch_stats else 0.0,
                              mean_ghx if batch_stats else 0.0, gamma, elementwise, dx)
            if phase == 0 and not per_sample:
                for g in range(groups):
                    sg, sgx = _take(lanes[t, g])
                    part[t, 0, g] = sg
                    part[t, 1, g] = sgx * inv_std[g]
        if phase == 0:
            for j in range(npar):
                dparams[0, j] = 0.0
                dparams[1, j] = 0.0
                for t in range(chunks):
                    dparams[0, j] += part[t, 0, j]
                    dparams[1, j] += part[t, 1, j]


# ------------------------------------------------------------------------------ array plumbing
class NormSaved(NamedTuple):
    """What backward needs: the input itself (in the layout) and the sets' float64 statistics."""

    x: np.ndarray                # (N, G, K, P), C-contiguous, float32 or float64
    mean: np.ndarray             # (sets,) float64
    inv_std: np.ndarray          # (sets,) float64
    gamma: np.ndarray            # float64, ones where there is no weight
    per_sample: bool
    batch_stats: bool            # mu, sigma computed from x (else constants)
    elementwise: bool
    shape: tuple[int, ...]       # x's shape
    dtype: np.dtype              # x's dtype
    param_shape: tuple[int, ...]
    out: np.ndarray | None       # the output, when it ends in a (leaky) ReLU
    relu_slope: float | None     # that ReLU's negative slope (0: ReLU), or None


def _kernel_input(a: np.ndarray, layout: tuple[int, ...], dtype=None) -> np.ndarray:
    """``a`` as a writeable C-contiguous array of ``layout`` and ``dtype`` (float32 or float64).

    ``dtype`` defaults to ``a``'s own when it is float32/float64, else float64.
    A read-only array is copied: numba would compile the kernels once more for it.
    """
    if dtype is None:
        dtype = a.dtype if a.dtype in (np.float32, np.float64) else np.float64
    a = np.ascontiguousarray(a, dtype=dtype)
    return (a if a.flags.writeable else a.copy()).reshape(layout)


def _param(value, size: int, fill: float) -> np.ndarray:
    """A parameter as a flat float64 array, or ``size`` copies of ``fill`` when it is None."""
    if value is None:
        return np.full(size, fill)
    return np.ascontiguousarray(value, dtype=np.float64).reshape(size)


def _lanes(blocks: int, slots: int) -> np.ndarray:
    """Zeroed lanes ``(T, slots, 2, LANES)`` for ``T`` chunks of blocks: one per thread, at most one per block."""
    return np.zeros((max(1, min(numba.get_num_threads(), blocks)), slots, 2, LANES))


def _forward(x, weight, bias, layout, param_shape, *, per_sample, elementwise, eps, stats=None, relu_slope=None):
    """Run ``_normalize`` on ``x`` in ``layout``: ``(y, saved, mean, var)`` (float64 per set).

    ``param_shape`` is the shape of ``gamma``/``beta`` (given or not);
    ``relu_slope``: None, or the negative slope of the (leaky) ReLU that ``y`` ends in.

    ``stats`` is ``(running_mean, running_var)`` (per set ``g``, constants) or
    None to compute them from ``x``.
    """
    xs = _kernel_input(x, layout)
    batch, groups, rows, cols = layout
    npar = cols if elementwise else groups * rows
    gamma, beta = _param(weight, npar, 1.0), _param(bias, npar, 0.0)
    sets = batch * groups if per_sample else groups
    if stats is None:  # the kernel writes them (NaN for an empty input)
        mean, var, inv_std = np.full(sets, np.nan), np.full(sets, np.nan), np.full(sets, np.nan)
    else:  # copies: the running buffers may change before backward
        mean = np.array(stats[0], dtype=np.float64)
        var = np.array(stats[1], dtype=np.float64)
        inv_std = 1.0 / np.sqrt(var + eps)
    y = workspace.empty(layout, xs.dtype)
    if xs.size:
        _normalize(xs, gamma, beta, eps, per_sample, stats is None, elementwise, relu_slope is not None,
                   xs.dtype.type(relu_slope or 0.0), _lanes(batch * groups, 1 if per_sample else groups), mean,
                   var, inv_std, y)
    out = y.reshape(x.shape).astype(x.dtype, copy=False)
    saved = NormSaved(xs, mean, inv_std, gamma, per_sample, stats is None, elementwise, x.shape, x.dtype,
                      param_shape, None if relu_slope is None else y, relu_slope)
    return out, saved, mean, var


def _backward(g, saved: NormSaved, needs):
    """Gradients ``(dx, dgamma, dbeta)`` of ``_forward`` (formulas in the module docstring)."""
    s = saved
    if s.relu_slope is not None:  # the gradient before the activation
        g = rectified_grad(g, s.out, s.relu_slope)
    gy = _kernel_input(g, s.x.shape, s.x.dtype)
    batch, groups = s.x.shape[:2]
    dx = workspace.empty(s.x.shape, s.x.dtype) if needs[0] else np.empty((0, 0, 0, 0), s.x.dtype)
    dparams = np.zeros((2, s.gamma.size))
    if s.x.size:
        _normalize_backward(gy, s.x, s.gamma, s.mean, s.inv_std, s.per_sample, s.batch_stats, s.elementwise,
                            _lanes(batch * groups, 1 if s.per_sample else groups), bool(needs[0]), dx, dparams)
    dx = dx.reshape(s.shape).astype(s.dtype, copy=False) if needs[0] else None
    dweight = dparams[1].astype(s.dtype).reshape(s.param_shape) if needs[1] else None
    dbias = dparams[0].astype(s.dtype).reshape(s.param_shape) if needs[2] else None
    return dx, dweight, dbias


def _update_running(running: np.ndarray, batch_stat: np.ndarray, momentum: float) -> None:
    """``running = (1 - momentum) * running + momentum * batch_stat``, in place."""
    running *= 1.0 - momentum
    running += momentum * batch_stat.astype(running.dtype)


def _channel_layout(x) -> tuple[int, int, int, int]:
    """``(N, C, 1, prod(spatial))``: the layout of batch and instance norm."""
    return (x.shape[0], x.shape[1], 1, math.prod(x.shape[2:]))


# ------------------------------------------------------------------------------------------ ops
def batch_norm_forward(x, weight, bias, *, running_mean, running_var, training, momentum, eps, relu_slope=None):
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
    ``bias`` ``(C,)`` or None -> ``y`` like ``x``. Kernel layout
    ``(N, C, 1, prod(spatial))``, sets ``x[:, c]``.

    ``relu_slope`` (None, or ``a >= 0``): the output ends in
    ``leaky_relu(y, a)`` (0: ReLU), written in the same pass; backward
    first takes ``g * leaky_relu'(y)`` from the saved output.
    """
    layout = _channel_layout(x)
    stats = None if training else (running_mean, running_var)
    out, saved, mean, var = _forward(x, weight, bias, layout, x.shape[1:2], per_sample=False, elementwise=False,
                                     eps=eps, stats=stats, relu_slope=relu_slope)
    if training:
        m = x.size // x.shape[1]
        if running_mean is not None:
            _update_running(running_mean, mean, momentum)
        if running_var is not None:
            _update_running(running_var, var * (m / (m - 1)), momentum)
    return out, saved


def batch_norm_backward(g, saved: NormSaved, needs=(True, True, True)):
    """``(dx, dgamma, dbeta)``; per channel over ``S = {(n, s)}``:

    training: ``dx = gamma_c / sigma_c * (g - mean_S(g) - xhat * mean_S(g * xhat))``;
    inference: ``dx = gamma_c / sigma_c * g``;
    ``dgamma_c = sum_{n,s} g * xhat``, ``dbeta_c = sum_{n,s} g``
    (``_normalize_backward``).
    """
    return _backward(g, saved, needs)


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
    Kernel layout ``(N, C, 1, prod(spatial))``, sets ``x[n, c]`` (``x[:, c]``
    with running statistics).
    """
    layout = _channel_layout(x)
    if not use_input_stats:
        out, saved, _, _ = _forward(x, weight, bias, layout, x.shape[1:2], per_sample=False, elementwise=False,
                                    eps=eps, stats=(running_mean, running_var))
        return out, saved
    out, saved, mean, var = _forward(x, weight, bias, layout, x.shape[1:2], per_sample=True, elementwise=False,
                                     eps=eps)
    n, channels = x.shape[:2]
    m = math.prod(x.shape[2:])
    if running_mean is not None:
        _update_running(running_mean, mean.reshape(n, channels).mean(axis=0), momentum)
    if running_var is not None:
        _update_running(running_var, var.reshape(n, channels).mean(axis=0) * (m / (m - 1)), momentum)
    return out, saved


def instance_norm_backward(g, saved: NormSaved, needs=(True, True, True)):
    """``(dx, dgamma, dbeta)``; per ``(n, c)`` over ``S = {s}`` with input statistics:

    ``dx = gamma_c / sigma[n,c] * (g - mean_S(g) - xhat * mean_S(g * xhat))``
    (``gamma_c / sigma_c * g`` with running statistics);
    ``dgamma_c = sum_{n,s} g * xhat``, ``dbeta_c = sum_{n,s} g`` (``_normalize_backward``).
    """
    return _backward(g, saved, needs)


def layer_norm_forward(x, weight, bias, *, normalized_ndim, eps):
    """Layer normalisation over the trailing ``k = normalized_ndim`` axes.

    For every leading index ``a``: ``mu[a] = 1/m sum_t x[a,t]``,
    ``var[a] = 1/m sum_t (x[a,t] - mu[a])^2`` over the trailing multi-index
    ``t`` (``m = prod(normalized_shape)``);
    ``y[a,t] = gamma[t] (x[a,t] - mu[a]) / sqrt(var[a] + eps) + beta[t]``
    (element-wise affine).

    Shapes: ``x (*lead, *normalized_shape)``, ``weight``, ``bias``
    ``normalized_shape`` or None -> ``y`` like ``x``. Kernel layout
    ``(prod(lead), 1, 1, m)``, sets ``x[a]``, element-wise parameters.
    """
    lead = x.ndim - normalized_ndim
    layout = (math.prod(x.shape[:lead]), 1, 1, math.prod(x.shape[lead:]))
    out, saved, _, _ = _forward(x, weight, bias, layout, x.shape[lead:], per_sample=True, elementwise=True,
                                eps=eps)
    return out, saved


def layer_norm_backward(g, saved: NormSaved, needs=(True, True, True)):
    """``(dx, dgamma, dbeta)``; per leading index over ``S = {t}``:

    ``dx = 1/sigma * (gh - mean_S(gh) - xhat * mean_S(gh * xhat))`` with ``gh = gamma[t] g``;
    ``dgamma[t] = sum_a g[a,t] xhat[a,t]``, ``dbeta[t] = sum_a g[a,t]`` (``_normalize_backward``).
    """
    return _backward(g, saved, needs)


def group_norm_forward(x, weight, bias, *, num_groups, eps):
    """Group normalisation: channels split into ``G`` groups of ``C/G``; one set per sample and group.

    ``mu[n,k] = 1/m sum_{c in group k, s} x[n,c,s]`` and likewise the biased
    ``var[n,k]``, ``m = C/G * prod(spatial)``;
    ``y[n,c,s] = gamma_c (x[n,c,s] - mu[n,k(c)]) / sqrt(var[n,k(c)] + eps) + beta_c``.
    ``G = 1`` normalises like layer norm over ``(C, *spatial)``, ``G = C``
    like instance norm (their affine parts differ).

    Shapes: ``x (N, C, *spatial)`` with ``C % G == 0``, ``weight``, ``bias``
    ``(C,)`` or None -> ``y`` like ``x``. Kernel layout
    ``(N, G, C/G, prod(spatial))``, sets ``x[n, g]``.
    """
    n, channels = x.shape[:2]
    layout = (n, num_groups, channels // num_groups, math.prod(x.shape[2:]))
    out, saved, _, _ = _forward(x, weight, bias, layout, x.shape[1:2], per_sample=True, elementwise=False,
                                eps=eps)
    return out, saved


def group_norm_backward(g, saved: NormSaved, needs=(True, True, True)):
    """``(dx, dgamma, dbeta)``; per ``(n, group)`` over ``S = {(c in group, s)}``:

    ``dx = 1/sigma * (gh - mean_S(gh) - xhat * mean_S(gh * xhat))`` with ``gh = gamma_c g``;
    ``dgamma_c = sum_{n,s} g * xhat``, ``dbeta_c = sum_{n,s} g`` (``_normalize_backward``).
    """
    return _backward(g, saved, needs)


batch_norm = Primitive("batch_norm", batch_norm_forward, batch_norm_backward, same)
instance_norm = Primitive("instance_norm", instance_norm_forward, instance_norm_backward, same)
layer_norm = Primitive("layer_norm", layer_norm_forward, layer_norm_backward, same)
group_norm = Primitive("group_norm", group_norm_forward, group_norm_backward, same)
