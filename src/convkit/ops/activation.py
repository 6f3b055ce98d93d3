"""Element-wise activations, softmax over one axis, and dropout, with their gradients: compiled kernels.

Every primitive keeps the input dtype (float32 in, float32 out). The
element-wise ones work on any shape; ``softmax``/``log_softmax`` normalise
along one ``axis`` and leave the other axes independent.

Kinks follow PyTorch: ``relu'(0) = 0`` and ``leaky_relu'(0) = negative_slope``
(the derivative of the left piece is taken wherever ``x <= 0``).

Kernels (``ops.jit``). An element-wise op is one pass over the flat,
C-contiguous array (forward: read ``x``, write ``y``; backward: read ``g``
and what forward saved, write ``dx``). Softmax and log-softmax run on rows:
the normalised axis is moved last (a copy only when it is not last already),
so the canonical layout is ``(R, C)``, one contiguous row of ``C`` classes
per item; the loss kernels (``ops.loss``) share these row helpers. A row's
maximum and its sums run in ``LANES`` independent partial results (float64
for sums) in a fixed order, which vectorises where one running sum would
not.

Every kernel comes as a *span* and a *chunks* driver run by
``ops.jit.parallel_spans`` (see there).

``exp`` of a float32 is evaluated in float64 by a polynomial (``_exp_float32``):
a loop of it vectorises, where the C library's ``expf`` is a scalar call per
element (15 times slower here), and its float32 result is the correctly
rounded one (checked on 5e5 points in the tests, 3e6 once). float64 uses the
C library's ``exp``.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba.core import types
from numba.core.extending import intrinsic, overload

from . import Primitive, workspace
from .meta import same
from .jit import flat, fma, kernel, parallel_spans, prange

LANES = 16  # independent partial results of a row reduction


# --------------------------------------------------------------------------- exp of float32
@intrinsic
def _float64_from_bits(typingctx, bits):
    """The float64 whose IEEE bits are the int64 ``bits``."""
    if bits != types.int64:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@intrinsic
def _bits_of_float64(typingctx, value):
    """The IEEE bits of the float64 ``value``, as an int64."""
    if value != types.float64:
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # ln 2 in two parts, the first with trailing zero bits: n * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_ROUND = 6755399441055744.0           # 1.5 * 2^52: t = v + _ROUND rounds v to an integer, kept in t's low bits


_EXP_TERMS = tuple(1.0 / math.factorial(k) for k in range(12))  # 1/k!, the Taylor coefficients of exp


@kernel
def _exp_float32(v):
    """``exp(v)`` for a float32 ``v``, evaluated in float64 and rounded once to float32.

    ``v = n ln2 + r`` with ``n = round(v / ln2)``, ``|r| <= ln2 / 2`` (``r``
    exact to float64); ``exp(r)`` is its Taylor polynomial of degree 11
    (truncation error < 1e-13 relative, far below float32's 6e-8), by
    Horner's rule in fused multiply-adds; ``2^n`` is built from its exponent
    bits. ``v`` is clamped to ``[-150, 100]`` first, whose ``exp`` rounds to
    0 and inf in float32, as the unclamped one does; NaN stays NaN.
    """
    d = np.float64(v)
    if d > 100.0:
        d = 100.0
    if d < -150.0:
        d = -150.0
    t = d * _LOG2E + _ROUND
    n = t - _ROUND
    r = fma(n, -_LN2_LO, fma(n, -_LN2_HI, d))
    c = _EXP_TERMS
    p = fma(fma(fma(fma(fma(fma(fma(fma(fma(fma(fma(c[11], r, c[10]), r, c[9]), r, c[8]), r, c[7]), r, c[6]), r,
                                   c[5]), r, c[4]), r, c[3]), r, c[2]), r, c[1]), r, c[0])
    scale = _float64_from_bits((_bits_of_float64(t) - _bits_of_float64(_ROUND) + 1023) << 52)
    return np.float32(p * scale)


def exp(v):
    """``exp(v)`` in ``v``'s precision, for kernels (float32: ``_exp_float32``; float64: the C library's)."""
    return math.exp(v)


@overload(exp)
def _exp_overload(v):
    if v == types.float32:
        return lambda v: _exp_float32(v)
    return lambda v: math.exp(v)


# ----------------------------------------------------------------------------- row reductions
@kernel
def row_max(row, lanes):
    """``max_c row[c]`` in ``LANES`` partial maxima (``lanes``: ``(LANES,)`` scratch of the row's dtype).

    NaN is not propagated here (a NaN never wins a comparison); it reaches
    the results through ``exp(x - max)`` instead. An empty row gives -inf.
    (Blocks are slices: a constant-length loop over a slice vectorises,
    one over ``row[i + j]`` does not.)
    """
    n = row.size
    full = n - n % LANES
    lanes[:] = -np.inf
    for i in range(0, full, LANES):
        block = row[i:i + LANES]
        for j in range(LANES):
            lanes[j] = block[j] if block[j] > lanes[j] else lanes[j]
    m = lanes[0]
    for j in range(1, LANES):
        m = lanes[j] if lanes[j] > m else m
    for i in range(full, n):
        m = row[i] if row[i] > m else m
    return m


@kernel
def row_sum(row, lanes):
    """``sum_c row[c]`` in float64, in ``LANES`` partial sums added in order (``lanes``: float64 scratch)."""
    n = row.size
    full = n - n % LANES
    lanes[:] = 0.0
    for i in range(0, full, LANES):
        lanes += row[i:i + LANES]
    s = 0.0
    for j in range(LANES):
        s += lanes[j]
    for i in range(full, n):
        s += row[i]
    return s


@kernel
def row_dot(a, b, lanes):
    """``sum_c a[c] * b[c]``, products and sums in float64, in ``LANES`` partial sums (as ``row_sum``)."""
    n = a.size
    full = n - n % LANES
    lanes[:] = 0.0
    for i in range(0, full, LANES):
        block_a = a[i:i + LANES]
        block_b = b[i:i + LANES]
        for j in range(LANES):
            lanes[j] += np.float64(block_a[j]) * np.float64(block_b[j])
    s = 0.0
    for j in range(LANES):
        s += lanes[j]
    for i in range(full, n):
        s += np.float64(a[i]) * np.float64(b[i])
    return s


@kernel
def row_exp_sum(row, e, lanes, lanes64):
    """``(m, s)`` of a row ``x``: ``m = max_c x_c``, ``s = sum_c exp(x_c - m)`` (float64); ``e_c = exp(x_c - m)``.

    So ``softmax(x)_c = e_c / s`` and ``log softmax(x)_c = (x_c - m) - log s``
    are exact for logits of any size (every exponent is <= 0).
    """
    m = row_max(row, lanes)
    for c in range(row.size):
        e[c] = exp(row[c] - m)
    return m, row_sum(e, lanes64)


def rows(x: np.ndarray, axis: int) -> np.ndarray:
    """``x`` with ``axis`` moved last, as a C-contiguous ``(R, C)`` array (a copy only if ``axis`` is not last)."""
    moved = x if axis == x.ndim - 1 else np.moveaxis(x, axis, -1)
    return np.ascontiguousarray(moved).reshape(math.prod(moved.shape[:-1]), moved.shape[-1])


def unrows(r: np.ndarray, shape, axis: int) -> np.ndarray:
    """Inverse of ``rows``: the ``(R, C)`` array back in ``shape`` (a view, strided when ``axis`` was not last)."""
    if axis == len(shape) - 1:
        return r.reshape(shape)
    moved = shape[:axis] + shape[axis + 1:] + (shape[axis],)
    return np.moveaxis(r.reshape(moved), -1, axis)


# ------------------------------------------------------------------------------ element-wise
@kernel
def rectify(x, slope, y):
    """``y = leaky_relu(x, slope)`` over 1-D slices (``y`` may be ``x``): ``slope = 0`` is ReLU.

    ReLU writes 0 where ``x <= 0`` and passes NaN; leaky ReLU writes
    ``x * slope`` where ``x <= 0``. ``slope`` has ``x``'s dtype. Shared by
    ReLU, leaky ReLU and the ops that end in one (``bias_rectify``,
    normalisation), so a fused activation computes the same bits.
    """
    zero = x.dtype.type(0)
    if slope == 0:
        for i in range(x.size):
            v = x[i]
            y[i] = zero if v <= 0 else v
    else:
        for i in range(x.size):
            v = x[i]
            y[i] = v if v > 0 else v * slope


@kernel
def rectify_grad(g, ref, slope, dx):
    """``dx = g * leaky_relu'(ref)`` over 1-D slices: ``g`` where ``ref > 0``, else ``g * slope`` (ReLU: 0).

    ``ref`` is the input, or for ``slope >= 0`` the output (the same sign
    test: ``y > 0`` exactly where ``x > 0``). ReLU writes 0 itself, not
    ``0 * g``, which would be NaN for an infinite ``g``.
    """
    zero = g.dtype.type(0)
    if slope == 0:
        for i in range(g.size):
            dx[i] = zero if ref[i] <= 0 else g[i]
    else:
        for i in range(g.size):
            dx[i] = g[i] if ref[i] > 0 else g[i] * slope


@kernel
def _rectify_span(x, slope, y, start, stop):
    rectify(x[start:stop], slope, y[start:stop])


@kernel(parallel=True)
def _rectify_chunks(x, slope, y, items, threads):
    for t in prange(threads):
        _rectify_span(x, slope, y, t * items // threads, (t + 1) * items // threads)


@kernel
def _rectify_grad_span(g, ref, slope, dx, start, stop):
    rectify_grad(g[start:stop], ref[start:stop], slope, dx[start:stop])


@kernel(parallel=True)
def _rectify_grad_chunks(g, ref, slope, dx, items, threads):
    for t in prange(threads):
        _rectify_grad_span(g, ref, slope, dx, t * items // threads, (t + 1) * items // threads)


def _rectified(x, slope: float):
    """``leaky_relu(x, slope)`` (``slope = 0``: ReLU) as a new workspace array, and ``x`` flat."""
    xf = flat(x)
    y = workspace.empty(xf.shape, xf.dtype)
    parallel_spans(_rectify_span, _rectify_chunks, xf.size, xf.size, xf, xf.dtype.type(slope), y)
    return y.reshape(x.shape), xf


def rectified_grad(g, ref, slope: float):
    """``g * leaky_relu'(ref)`` as a new workspace array shaped like ``g`` (see ``rectify_grad``)."""
    ref = flat(ref)
    dx = workspace.empty(ref.shape, ref.dtype)
    parallel_spans(_rectify_grad_span, _rectify_grad_chunks, ref.size, ref.size, flat(g), ref,
                   ref.dtype.type(slope), dx)
    return dx.reshape(g.shape)


def relu_forward(x):
    """``y_i = max(x_i, 0)`` (NaN stays NaN); shapes: ``x (*)`` -> ``y (*)``.

    Backward, from the saved output: ``dx_i = g_i * [y_i > 0]``
    (``y_i > 0`` exactly where ``x_i > 0``, so ``dx = 0`` at ``x = 0``).
    """
    y, _ = _rectified(x, 0.0)
    return y, y


def relu_backward(g, y, needs=(True,)):
    return (rectified_grad(g, y, 0.0),)


def leaky_relu_forward(x, *, negative_slope: float):
    """``y_i = x_i`` if ``x_i > 0`` else ``a * x_i`` (``a = negative_slope``, any real); shapes ``(*)`` -> ``(*)``.

    Backward, from the saved input (the output cannot tell the sign of
    ``x`` when ``a <= 0``): ``dx_i = g_i`` if ``x_i > 0`` else ``a * g_i``.
    (Measured: a byte mask saved instead costs more than it saves, its
    writes and reads do not vectorise as well.)
    """
    y, xf = _rectified(x, negative_slope)
    return y, (xf, negative_slope)


def leaky_relu_backward(g, saved, needs=(True,)):
    x, slope = saved
    return (rectified_grad(g, x, slope),)


# ------------------------------------------------- a bias and a (leaky) ReLU ending another op
@kernel
def _bias_rectify_span(y, bias, slope, act, start, stop):
    """Planes ``b = start..stop`` of ``y (N, C, P)``: ``y[n, c] += bias[c]``, then ``rectify`` when ``act``."""
    channels = y.shape[1]
    for b in range(start, stop):
        row = y[b // channels, b % channels]
        shift = bias[b % channels]
        for i in range(row.size):
            row[i] += shift
        if act:
            rectify(row, slope, row)


@kernel(parallel=True)
def _bias_rectify_chunks(y, bias, slope, act, items, threads):
    for t in prange(threads):
        _bias_rectify_span(y, bias, slope, act, t * items // threads, (t + 1) * items // threads)


@kernel
def _rectify_bias_grad_span(g, y, slope, act, dz, db, start, stop):
    """Channels ``c = start..stop``: ``dz[:, c] = rectify_grad(g, y)`` (when ``act``), ``db[c] = sum dz[:, c]``."""
    lanes = np.empty(LANES)
    for c in range(start, stop):
        total = 0.0
        for n in range(g.shape[0]):
            if act:
                rectify_grad(g[n, c], y[n, c], slope, dz[n, c])
                total += row_sum(dz[n, c], lanes)
            else:
                total += row_sum(g[n, c], lanes)
        db[c] = total


@kernel(parallel=True)
def _rectify_bias_grad_chunks(g, y, slope, act, dz, db, items, threads):
    for t in prange(threads):
        _rectify_bias_grad_span(g, y, slope, act, dz, db, t * items // threads, (t + 1) * items // threads)


def _planes(a: np.ndarray) -> np.ndarray:
    """``(N, C, *s)`` as a C-contiguous ``(N, C, prod(s))`` view (a copy only when not contiguous)."""
    return np.ascontiguousarray(a).reshape(a.shape[:2] + (math.prod(a.shape[2:]),))


def bias_rectify(y, bias, slope: float | None) -> np.ndarray:
    """``act(y[n,c,s] + bias[c])`` for an op's fresh output ``y (N, C, *s)``, written into ``y`` (or into
    a contiguous copy of it), which is returned.

    ``act`` is ``leaky_relu(., slope)`` (``slope = 0``: ReLU; ``slope >= 0``)
    or nothing when ``slope`` is None; ``bias (C,)`` or None. One pass: a
    layer followed by a (leaky) ReLU adds its bias and rectifies while each
    plane is in cache. With no bias, ``-0.0`` is added: ``v + (-0.0) = v``
    for every ``v``, ``-0.0`` included.
    """
    planes = _planes(y)
    shift = np.full(y.shape[1], -0.0, y.dtype) if bias is None else np.ascontiguousarray(bias, y.dtype)
    act = slope is not None
    parallel_spans(_bias_rectify_span, _bias_rectify_chunks, planes.shape[0] * planes.shape[1], y.size,
                   planes, shift, y.dtype.type(slope if act else 0.0), act)
    return planes.reshape(y.shape)


def rectify_bias_grad(g, y, slope: float | None):
    """Backward of ``bias_rectify``: ``(dz, db)`` with ``dz = g * act'(y)`` (``g`` itself when ``slope`` is None).

    ``dz`` is the gradient of the op's output before the bias and the
    activation, ``db[c] = sum_{n,s} dz[n,c,s]`` (float64 sums, cast to
    ``g``'s dtype). ``act'`` is read off the output ``y`` (``rectify_grad``).
    """
    gp = _planes(g)
    act = slope is not None
    dz = workspace.empty(gp.shape, gp.dtype) if act else gp
    db = np.empty(gp.shape[1])
    parallel_spans(_rectify_bias_grad_span, _rectify_bias_grad_chunks, gp.shape[1], gp.size, gp,
                   _planes(y) if act else gp, gp.dtype.type(slope if act else 0.0), act, dz, db)
    return dz.reshape(g.shape), db.astype(g.dtype)


@kernel
def _sigmoid_span(x, y, start, stop):
    one = x.dtype.type(1)
    x, y = x[start:stop], y[start:stop]
    for i in range(x.size):
        v = x[i]
        e = exp(-abs(v))
        y[i] = one / (one + e) if v >= 0 else e / (one + e)


@kernel(parallel=True)
def _sigmoid_chunks(x, y, items, threads):
    for t in prange(threads):
        _sigmoid_span(x, y, t * items // threads, (t + 1) * items // threads)


@kernel
def _sigmoid_grad_span(g, y, dx, start, stop):
    g, y, dx = g[start:stop], y[start:stop], dx[start:stop]
    for i in range(g.size):
        dx[i] = g[i] * y[i] * (g.dtype.type(1) - y[i])


@kernel(parallel=True)
def _sigmoid_grad_chunks(g, y, dx, items, threads):
    for t in prange(threads):
        _sigmoid_grad_span(g, y, dx, t * items // threads, (t + 1) * items // threads)


def sigmoid_forward(x):
    """``y_i = 1 / (1 + exp(-x_i))``; shapes ``(*)`` -> ``(*)``.

    Evaluated from ``e = exp(-|x|)`` (never overflows): ``y = 1/(1+e)`` for
    ``x >= 0`` and ``y = e/(1+e)`` for ``x < 0``.
    Backward: ``dx_i = g_i * y_i * (1 - y_i)``.
    """
    xf = flat(x)
    y = workspace.empty(xf.shape, xf.dtype)
    parallel_spans(_sigmoid_span, _sigmoid_chunks, xf.size, xf.size, xf, y)
    return y.reshape(x.shape), y


def sigmoid_backward(g, y, needs=(True,)):
    dx = workspace.empty(y.shape, y.dtype)
    parallel_spans(_sigmoid_grad_span, _sigmoid_grad_chunks, y.size, y.size, flat(g), y, dx)
    return (dx.reshape(g.shape),)


@kernel
def _tanh_grad_span(g, y, dx, start, stop):
    g, y, dx = g[start:stop], y[start:stop], dx[start:stop]
    for i in range(g.size):
        dx[i] = g[i] * (g.dtype.type(1) - y[i] * y[i])


@kernel(parallel=True)
def _tanh_grad_chunks(g, y, dx, items, threads):
    for t in prange(threads):
        _tanh_grad_span(g, y, dx, t * items // threads, (t + 1) * items // threads)


def tanh_forward(x):
    """``y_i = tanh(x_i)``; shapes ``(*)`` -> ``(*)``. Backward: ``dx_i = g_i * (1 - y_i^2)``.

    Forward is NumPy's ``tanh`` (one vectorised pass already); backward a kernel.
    """
    y = np.tanh(x)
    return y, flat(y)


def tanh_backward(g, y, needs=(True,)):
    dx = workspace.empty(y.shape, y.dtype)
    parallel_spans(_tanh_grad_span, _tanh_grad_chunks, y.size, y.size, flat(g), y, dx)
    return (dx.reshape(g.shape),)


# ------------------------------------------------------------------------- softmax over rows
@kernel
def _softmax_span(x, log, y, start, stop):
    """Rows ``start..stop`` of ``y = softmax(x)`` (``log``: ``log_softmax(x)``), ``x, y (R, C)``."""
    lanes = np.empty(LANES, x.dtype)
    lanes64 = np.empty(LANES)
    for r in range(start, stop):
        xr = x[r]
        yr = y[r]
        m, s = row_exp_sum(xr, yr, lanes, lanes64)
        if log:
            log_s = math.log(s)
            for c in range(xr.size):
                yr[c] = (xr[c] - m) - log_s
        else:
            inv = 1.0 / s
            for c in range(xr.size):
                yr[c] = yr[c] * inv


@kernel(parallel=True)
def _softmax_chunks(x, log, y, items, threads):
    for t in prange(threads):
        _softmax_span(x, log, y, t * items // threads, (t + 1) * items // threads)


@kernel
def _softmax_grad_span(g, y, log, dx, start, stop):
    """Rows of ``dx``: softmax ``y_k (g_k - sum_i g_i y_i)``; log-softmax ``g_k - exp(y_k) sum_i g_i``."""
    lanes64 = np.empty(LANES)
    for r in range(start, stop):
        gr = g[r]
        yr = y[r]
        dr = dx[r]
        if log:
            total = row_sum(gr, lanes64)
            for c in range(gr.size):
                dr[c] = gr[c] - exp(yr[c]) * total
        else:
            dot = row_dot(gr, yr, lanes64)
            for c in range(gr.size):
                dr[c] = yr[c] * (gr[c] - dot)


@kernel(parallel=True)
def _softmax_grad_chunks(g, y, log, dx, items, threads):
    for t in prange(threads):
        _softmax_grad_span(g, y, log, dx, t * items // threads, (t + 1) * items // threads)


def _softmax(x, axis: int, log: bool):
    xr = rows(x, axis)
    y = workspace.empty(xr.shape, xr.dtype)
    if xr.size:
        parallel_spans(_softmax_span, _softmax_chunks, xr.shape[0], xr.size, xr, log, y)
    return unrows(y, x.shape, axis), (y, axis, log)


def softmax_backward(g, saved, needs=(True,)):
    y, axis, log = saved
    dx = workspace.empty(y.shape, y.dtype)
    if y.size:
        parallel_spans(_softmax_grad_span, _softmax_grad_chunks, y.shape[0], y.size, rows(g, axis), y, log, dx)
    return (unrows(dx, g.shape, axis),)


def softmax_forward(x, *, axis: int):
    """``y_i = exp(x_i) / sum_j exp(x_j)`` along ``axis`` (j runs over that axis).

    Computed per row as ``exp(x_i - m) / s``, ``m = max_j x_j``,
    ``s = sum_j exp(x_j - m)`` (float64). Shapes ``(*)`` -> ``(*)``.
    Backward (Jacobian ``dy_i/dx_k = y_i (delta_ik - y_k)``):
    ``dx_k = y_k * (g_k - sum_i g_i y_i)`` (the sum in float64).
    """
    return _softmax(x, axis, False)


def log_softmax_forward(x, *, axis: int):
    """``y_i = x_i - log sum_j exp(x_j)`` along ``axis``, evaluated as ``(x_i - m) - log s`` (as ``softmax``).

    Shapes ``(*)`` -> ``(*)``.
    Backward (``dy_i/dx_k = delta_ik - softmax(x)_k``):
    ``dx_k = g_k - exp(y_k) * sum_i g_i`` (the sum in float64).
    """
    return _softmax(x, axis, True)


log_softmax_backward = softmax_backward  # saved says which of the two


# ----------------------------------------------------------------------------------- dropout
@kernel
def _keep_scale_span(a, keep, scale, out, start, stop):
    a, keep, out = a[start:stop], keep[start:stop], out[start:stop]
    for i in range(a.size):
        out[i] = a[i] * (scale if keep[i] else a.dtype.type(0))


@kernel(parallel=True)
def _keep_scale_chunks(a, keep, scale, out, items, threads):
    for t in prange(threads):
        _keep_scale_span(a, keep, scale, out, t * items // threads, (t + 1) * items // threads)


def _keep_scale(a, keep, scale):
    """``a_i * m_i`` with ``m_i = scale`` where ``keep_i``, else 0."""
    af = flat(a)
    out = workspace.empty(af.shape, af.dtype)
    parallel_spans(_keep_scale_span, _keep_scale_chunks, af.size, af.size, af, keep, scale, out)
    return out.reshape(a.shape)


def dropout_forward(x, *, keep, p: float):
    """Training-mode dropout: ``y_i = x_i * m_i`` with ``m_i = keep_i / (1 - p)``.

    ``keep`` (bool, ``x``'s shape) is drawn by the caller (``functional.dropout``
    takes ``u_i >= p`` for ``u_i ~ U[0, 1)`` from convkit's generator, so
    ``P(keep_i) = 1 - p``); ops read no global state. ``p = 1`` drops
    everything (``y = 0 * x``). Shapes ``(*)`` -> ``(*)``.
    Backward: ``dx_i = g_i * m_i``.
    """
    scale = x.dtype.type(0.0 if p == 1 else 1.0 / (1.0 - p))
    keep = flat(keep)
    return _keep_scale(x, keep, scale), (keep, scale)


def dropout_backward(g, saved, needs=(True,)):
    keep, scale = saved
    return (_keep_scale(g, keep, scale),)


relu = Primitive("relu", relu_forward, relu_backward, same)
leaky_relu = Primitive("leaky_relu", leaky_relu_forward, leaky_relu_backward, same)
sigmoid = Primitive("sigmoid", sigmoid_forward, sigmoid_backward, same)
tanh = Primitive("tanh", tanh_forward, tanh_backward, same)
softmax = Primitive("softmax", softmax_forward, softmax_backward, same)
log_softmax = Primitive("log_softmax", log_softmax_forward, log_softmax_backward, same)
dropout = Primitive("dropout", dropout_forward, dropout_backward, same)
