"""What every convolution algorithm shares: the problem it solves and the interface it offers.

An algorithm computes the cross-correlation of ``ops.conv`` on an input that
is already padded (padding modes, bias and kernel mirroring stay in
``ops.conv``), for ``k`` spatial axes and ``G`` groups (``Cg = C_in/G``,
``Og = C_out/G``, group of output channel ``o``: ``g = o // Og``)::

    y[n, o, y] = sum_{c < Cg} sum_{j < K} w[o, c, j] * xp[n, g*Cg + c, y*s + j*d]

and, for ``grad = dL/dy``, the two gradients::

    dxp[n, g*Cg + c, i] = sum_{o in g} sum_{(y, j): y*s + j*d = i} grad[n, o, y] * w[o, c, j]
    dw[o, c, j]         = sum_{n, y} grad[n, o, y] * xp[n, g*Cg + c, y*s + j*d]

Shapes: ``xp (N, C_in, *padded)``, ``w (C_out, Cg, *kernel)``, ``y, grad (N, C_out, *out)``
with ``out = (padded - d*(kernel-1) - 1) // s + 1`` per axis.

Fused zero padding: a problem made with ``pads`` (``conv_problem(x.shape, ...,
pads=...)``) hands the algorithm the *unpadded* input ``x (N, C_in, *n)``,
``padded = n + lo + hi``; the algorithm reads ``xp[..., i] = x[..., i - lo]``
(0 outside ``x``) without making the padded copy, and returns the gradient
``dx`` of ``x`` itself (the padding's share of ``dxp`` dropped). Without
``pads`` (or with all zeros), ``xp`` is the padded input and ``dxp`` its gradient.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..windows import out_sizes


class ConvProblem(NamedTuple):
    """The geometry of one convolution on a padded input (everything an algorithm choice depends on)."""

    batch: int
    in_channels: int
    out_channels: int
    groups: int
    padded: tuple[int, ...]
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    out: tuple[int, ...]
    dtype: np.dtype
    pads: tuple[tuple[int, int], ...] = ()

    @property
    def lows(self) -> tuple[int, ...]:
        """Fused zero padding before the input, per axis (all 0 without ``pads``)."""
        return tuple(lo for lo, _ in self.pads) if self.pads else (0,) * len(self.kernel)

    @property
    def input(self) -> tuple[int, ...]:
        """Spatial shape of the array the algorithm is given: ``padded`` less the fused padding."""
        if not self.pads:
            return self.padded
        return tuple(n - lo - hi for n, (lo, hi) in zip(self.padded, self.pads))

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of the array the algorithm is given (and of the input gradient it returns)."""
        return (self.batch, self.in_channels) + self.input

    @property
    def positions(self) -> int:
        """Output positions per sample and channel, ``prod(out)``."""
        return math.prod(self.out)

    @property
    def taps(self) -> int:
        """Kernel elements per channel pair, ``prod(kernel)``."""
        return math.prod(self.kernel)


def conv_problem(xp_shape, w_shape, stride, dilation, groups: int, dtype, pads=None) -> ConvProblem:
    """The ``ConvProblem`` of input ``xp_shape`` and weight ``w_shape``.

    ``pads`` None (or all zero): ``xp_shape`` is the padded input's shape. Otherwise one ``(low, high)``
    pair per spatial axis: ``xp_shape`` is the unpadded input's, and the algorithm pads with zeros itself.
    """
    kernel = tuple(w_shape[2:])
    pads = tuple((int(lo), int(hi)) for lo, hi in pads) if pads is not None else ()
    if all(lo == 0 and hi == 0 for lo, hi in pads):
        pads = ()
    padded = tuple(xp_shape[2:])
    if pads:
        padded = tuple(n + lo + hi for n, (lo, hi) in zip(padded, pads))
    out = out_sizes(padded, kernel, stride, dilation)
    return ConvProblem(xp_shape[0], xp_shape[1], w_shape[0], groups, padded, kernel, tuple(stride),
                       tuple(dilation), out, np.dtype(dtype), pads)


class ConvAlgorithm:
    """One way to compute a convolution, its input gradient and its weight gradient.

    Subclasses set ``name`` and implement the three methods; ``unsupported``
    returns None for a problem they can run, else the reason they cannot.
    """

    name: str

    def unsupported(self, p: ConvProblem) -> str | None:
        """None if this algorithm runs ``p``, else a phrase saying which option it lacks."""
        return None

    def forward(self, xp: np.ndarray, w: np.ndarray, p: ConvProblem):
        """``(y, cache)``: ``y (N, C_out, *out)`` without bias, and what ``backward`` may reuse (or None)."""
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def backward(self, grad: np.ndarray, xp: np.ndarray | None, w: np.ndarray, p: ConvProblem,
                 cache, needs_input: bool, needs_weight: bool):
        """``(dxp, dw)`` for ``grad (N, C_out, *out)``; each None unless asked for.

        ``xp`` and ``cache`` are needed only for ``dw`` (the transposed
        convolution asks for ``dxp`` alone, with ``xp = cache = None``).
        """
        raise NotImplementedError(f"{type(self).__name__} does not define backward()")

    def __repr__(self) -> str:
        return f"<conv algorithm {self.name}>"

