"""N-d transposed convolution: the adjoint (input gradient) of ``ops.conv``'s correlation.

Shapes (``k`` spatial axes, ``G`` groups, ``Cg = C_in/G``, ``Og = C_out/G``)::

    x (N, C_in, *n)    w (C_in, Og, *kernel)    b (C_out,) or None    out (N, C_out, *o)

with, per axis, ``o = (n-1)*s - p_lo - p_hi + d*(kernel-1) + output_padding + 1``.
Written for one spatial axis, input channel ``c`` in group ``g = c // Cg``
scatters into the output channels ``g*Og + q``::

    full[n, g*Og + q, y*s + j*d] += x[n, c, y] * w[c, q, j]      for all y < n, j < K
    out[n, o, i] = b[o] + full[n, o, p_lo + i]                   for 0 <= i < o

``full`` has length ``o + p_lo + p_hi``: padding crops the output and
``output_padding`` only adds positions on the high side (they still receive
contributions when ``p_hi > 0``). Equivalently: insert ``s-1`` zeros between
the input samples, pad ``d*(K-1) - p_lo`` zeros before and
``d*(K-1) - p_hi + output_padding`` after, and cross-correlate with stride 1
and dilation ``d`` with the spatially flipped, in/out-swapped kernel
``w'[q, c, j] = w[c, q, K-1-j]``.

Gradients (``gp`` = ``grad_out`` zero-padded by ``(p_lo, p_hi)``, i.e. ``full``'s gradient)::

    dx[n, c, y] = sum_{q < Og} sum_j w[c, q, j] * gp[n, g*Og + q, y*s + j*d]    (a correlation of gp)
    dw[c, q, j] = sum_{n, y} x[n, c, y] * gp[n, g*Og + q, y*s + j*d]             (conv's dw, roles swapped)
    db[o]       = sum_{n, i} grad_out[n, o, i]

Computation: the transposed convolution of ``x`` is the input gradient of
the correlation ``P`` that maps ``(N, C_out, *reach)`` to ``(N, C_in, *n)``
with the same weight (``reach = (n-1)*s + d*(k-1) + 1``, the extent that
``full`` is written over), so every algorithm of ``ops.conv_algorithms``
serves both: forward is ``P``'s input gradient, ``dx`` is ``P``'s forward of
``gp`` and ``dw`` is ``P``'s weight gradient with ``x`` as the output gradient.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import Primitive
from .meta import MetaArray
from .conv_algorithms import ConvAlgorithm, conv_problem
from .conv_algorithms.auto import rule
from .padding import pad_forward


def transposed_sizes(n: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
                     pads: Sequence[tuple[int, int]], output_padding: Sequence[int],
                     dilation: Sequence[int]) -> tuple[int, ...]:
    """Output sizes ``(n-1)*s - p_lo - p_hi + d*(k-1) + output_padding + 1`` per axis."""
    return tuple((ni - 1) * s - lo - hi + d * (k - 1) + op + 1
                 for ni, k, s, (lo, hi), op, d in zip(n, kernel, stride, pads, output_padding, dilation))


def reach(n: Sequence[int], kernel: Sequence[int], stride: Sequence[int],
          dilation: Sequence[int]) -> tuple[int, ...]:
    """Length of ``full`` that the scatter writes: ``(n-1)*s + d*(k-1) + 1`` per axis."""
    return tuple((ni - 1) * s + d * (k - 1) + 1 for ni, k, s, d in zip(n, kernel, stride, dilation))


def adjoint_problem(x_shape, w_shape, stride, dilation, groups: int, dtype):
    """The correlation whose input gradient is this transposed convolution (see the module docstring)."""
    full = reach(x_shape[2:], w_shape[2:], stride, dilation)
    return conv_problem((x_shape[0], w_shape[1] * groups) + full, w_shape, stride, dilation, groups, dtype)


def conv_transpose_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, *,
                           stride: Sequence[int], pads: Sequence[tuple[int, int]],
                           output_padding: Sequence[int], dilation: Sequence[int], groups: int = 1,
                           algorithm: ConvAlgorithm | None = None):
    """Transposed convolution forward (formulas in the module docstring).

    Args:
        x: ``(N, C_in, *n)``; w: ``(C_in, C_out/groups, *kernel)``; b: ``(C_out,)`` or None.
        stride, dilation: one positive int per spatial axis.
        pads: one ``(low, high)`` pair per spatial axis, cropped from the output.
        output_padding: extra output size per axis (``< stride`` or ``< dilation``).
        algorithm: the ``ops.conv_algorithms`` algorithm of the adjoint correlation, as
            ``convkit.backends.choose_conv_algorithm`` chose it; None: ``auto.rule``'s choice.
    Returns ``out (N, C_out, *o)`` and the saved state for ``conv_transpose_backward``.
    """
    out = transposed_sizes(x.shape[2:], w.shape[2:], stride, pads, output_padding, dilation)
    problem = adjoint_problem(x.shape, w.shape, stride, dilation, groups, x.dtype)
    algorithm = algorithm or rule(problem)
    yfull = algorithm.backward(x, None, w, problem, None, True, False)[0]  # (N, C_out, *reach)
    y = np.zeros((x.shape[0], w.shape[1] * groups) + out, dtype=x.dtype)
    kept = tuple(slice(0, max(0, min(o, r - lo))) for o, r, (lo, _) in zip(out, problem.padded, pads))
    src = tuple(slice(lo, lo + k.stop) for k, (lo, _) in zip(kept, pads))
    y[(Ellipsis,) + kept] = yfull[(Ellipsis,) + src]
    if b is not None:
        y += b.reshape((1, -1) + (1,) * len(out))
    return y, (algorithm, problem, x, w, pads)


def conv_transpose_backward(g: np.ndarray, saved, needs=(True, True, True)):
    """``(dx, dw, db)`` of the transposed convolution (formulas in the module docstring)."""
    algo, problem, x, w, pads = saved
    dx = dw = db = None
    if needs[0] or needs[1]:
        gp = pad_forward(g, pads=pads, mode="zeros")[0]
        gp = gp[(slice(None), slice(None)) + tuple(slice(0, r) for r in problem.padded)]
        cache = None
        if needs[0]:
            dx, cache = algo.forward(gp, w, problem)
        if needs[1]:
            dw = algo.backward(x, gp, w, problem, cache, False, True)[1]
    if needs[2]:
        db = g.sum(axis=(0,) + tuple(range(2, g.ndim)))
    return dx, dw, db


def conv_transpose_meta(x, w, b=None, *, stride, pads, output_padding, dilation, groups=1,
                        algorithm=None) -> MetaArray:
    """``(N, C_in, *n) -> (N, C_out, *o)`` with ``transposed_sizes``."""
    out = transposed_sizes(x.shape[2:], w.shape[2:], stride, pads, output_padding, dilation)
    return MetaArray((x.shape[0], w.shape[1] * groups) + tuple(out), x.dtype)


conv_transpose = Primitive("conv_transpose", conv_transpose_forward, conv_transpose_backward,
                           conv_transpose_meta)
