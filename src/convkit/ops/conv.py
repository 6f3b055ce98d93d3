"""N-d convolution (cross-correlation, or true convolution with ``flip=True``) by im2col + GEMM.

Shapes (``k`` spatial axes, ``G`` groups, ``Cg = C_in/G``, ``Og = C_out/G``)::

    x (N, C_in, *n)    w (C_out, Cg, *kernel)    b (C_out,) or None    out (N, C_out, *o)

with ``o = (n + p_lo + p_hi - d*(kernel-1) - 1) // s + 1`` per axis. Written
for one spatial axis (the others are alike, index by index), with ``xp`` the
input padded by ``(p_lo, p_hi)`` in ``padding_mode`` and output channel ``o``
in group ``g = o // Og``:

Cross-correlation (PyTorch's ``conv``)::

    out[n, o, y] = b[o] + sum_{c < Cg} sum_{j < K} w[o, c, j] * xp[n, g*Cg + c, y*s + j*d]

True convolution (``flip=True``) mirrors the kernel in every spatial axis and
changes nothing else (padding, stride, dilation and output size are those of
the correlation)::

    out[n, o, y] = b[o] + sum_{c < Cg} sum_{j < K} w[o, c, j] * xp[n, g*Cg + c, y*s + (K-1-j)*d]

Gradients of the correlation, for ``grad_out = gy`` (``flip`` mirrors ``dw``
back the same way)::

    db[o]          = sum_{n, y} gy[n, o, y]
    dw[o, c, j]    = sum_{n, y} gy[n, o, y] * xp[n, g*Cg + c, y*s + j*d]
    dxp[n, g*Cg + c, i] = sum_{o in group g} sum_{(y, j): y*s + j*d = i} gy[n, o, y] * w[o, c, j]

and ``dx`` is ``dxp`` folded back through the padding (``pad_backward``).

A layer followed by a (leaky) ReLU (``relu_slope = a``, ``a >= 0``; 0 is
ReLU) ends in it: ``out = leaky_relu(out, a)``, computed in the pass that
adds the bias (``activation.bias_rectify``); backward first takes
``gy = g * leaky_relu'(out)`` from the saved output, in the pass that sums
``db`` (``activation.rectify_bias_grad``).

Computation: ``conv_forward`` pads the input (``padding_mode``; zero
padding is left to the algorithm, whose kernels read zeros outside ``x``
instead of copying it into a padded array), mirrors the kernel for
``flip``, and hands the correlation of the padded input to
the algorithm of ``ops.conv_algorithms`` that ``convkit.functional`` chose
(im2col, winograd, winograd4, fft or direct); it adds the bias (and the
activation) itself, and
``conv_backward`` folds ``dxp`` back through the padding and mirrors ``dw``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from . import Primitive
from .meta import MetaArray
from .activation import bias_rectify, rectify_bias_grad
from .conv_algorithms import ConvAlgorithm, ConvProblem, conv_problem
from .conv_algorithms.auto import rule
from .padding import pad_backward, pad_forward


def _mirror(w: np.ndarray) -> np.ndarray:
    """``w`` reversed along every spatial axis (a view)."""
    return w[(slice(None), slice(None)) + (slice(None, None, -1),) * (w.ndim - 2)]


def problem_for(x_shape, w_shape, *, stride, pads, dilation, groups: int, padding_mode: str, dtype) -> ConvProblem:
    """The ``ConvProblem`` that ``conv_forward`` hands its algorithm.

    Zero padding is fused (the problem carries ``pads`` and the unpadded
    ``x_shape``); the other modes give the algorithm a padded copy, so the
    problem is that of the padded shape.
    """
    if padding_mode == "zeros":
        return conv_problem(x_shape, w_shape, stride, dilation, groups, dtype, pads=pads)
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(x_shape[2:], pads))
    return conv_problem(tuple(x_shape[:2]) + padded, w_shape, stride, dilation, groups, dtype)


def conv_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, *,
                 stride: Sequence[int], pads: Sequence[tuple[int, int]], dilation: Sequence[int],
                 groups: int = 1, padding_mode: str = "zeros", flip: bool = False,
                 algorithm: ConvAlgorithm | None = None, relu_slope: float | None = None):
    """Convolution forward (see the module docstring for the formulas).

    Args:
        x: ``(N, C_in, *n)``; w: ``(C_out, C_in/groups, *kernel)``; b: ``(C_out,)`` or None.
        stride, dilation: one positive int per spatial axis.
        pads: one ``(low, high)`` pair per spatial axis (``_args.conv_pads``).
        groups: channel groups; ``padding_mode``: zeros/reflect/replicate/circular.
        flip: mirror the kernel (true convolution).
        algorithm: the ``ops.conv_algorithms`` algorithm that computes the correlation, as
            ``convkit.backends.choose_conv_algorithm`` chose it; None: ``auto.rule``'s choice.
        relu_slope: None, or the negative slope ``a >= 0`` of the (leaky) ReLU the output ends in.
    Returns ``out (N, C_out, *o)`` and the saved state for ``conv_backward``.
    """
    problem = problem_for(x.shape, w.shape, stride=stride, pads=pads, dilation=dilation, groups=groups,
                          padding_mode=padding_mode, dtype=x.dtype)
    if padding_mode == "zeros":  # the algorithm reads zeros outside x: no padded copy
        xp, pad_saved = x, None
    else:
        xp, pad_saved = pad_forward(x, pads=pads, mode=padding_mode)
    wk = _mirror(w) if flip else w
    algorithm = algorithm or rule(problem)
    y, cache = algorithm.forward(xp, wk, problem)
    if b is not None or relu_slope is not None:
        y = bias_rectify(y, b, relu_slope)
    out = y if relu_slope is not None else None  # what the activation's gradient is read from
    return y, (algorithm, problem, xp, wk, cache, pad_saved, flip, out, relu_slope)


def conv_backward(g: np.ndarray, saved, needs=(True, True, True)):
    """``(dx, dw, db)`` of the convolution (formulas in the module docstring)."""
    algo, problem, xp, wk, cache, pad_saved, flip, out, relu_slope = saved
    dx = dw = db = None
    if relu_slope is not None or needs[2]:
        g, db = rectify_bias_grad(g, out, relu_slope)
    if needs[0] or needs[1]:
        dxp, dwk = algo.backward(g, xp, wk, problem, cache, needs[0], needs[1])
        if needs[0]:
            dx = dxp if pad_saved is None else pad_backward(dxp, pad_saved)[0]
        if needs[1]:
            dw = np.ascontiguousarray(_mirror(dwk)) if flip else dwk
    return dx, dw, (db if needs[2] else None)


def conv_meta(x, w, b=None, *, stride, pads, dilation, groups=1, padding_mode="zeros", flip=False,
              algorithm=None, relu_slope=None) -> MetaArray:
    """``(N, C_in, *n) -> (N, C_out, *o)``, ``o`` as in the module docstring (``conv_problem``'s)."""
    problem = problem_for(x.shape, w.shape, stride=stride, pads=pads, dilation=dilation, groups=groups,
                          padding_mode=padding_mode, dtype=x.dtype)
    return MetaArray((x.shape[0], w.shape[0]) + problem.out, x.dtype)


conv = Primitive("conv", conv_forward, conv_backward, conv_meta)
