"""Geometry shared by the convolution explanations: stride, padding, dilation and output size.

Arguments are normalised by the engine's own rules (``convkit.ops._args``),
the padded input comes from ``convkit.ops.padding.pad_forward`` and the
windows from ``convkit.ops.windows.windows``, so what is shown is what the
engine computes with.
"""

from __future__ import annotations

import numpy as np

from ..ops._args import WindowGeometry, check_kernel_fits, conv_pads, ntuple
from ..ops.padding import pad_forward
from ..ops.windows import windows
from .explanation import Matrix, Step
from .figures import cell_of
from .operands import AXES, channel_matrices, extent, per_axis, sized

_MODES = {
    "zeros": "zeros",
    "reflect": "the input mirrored at its edge (the edge value is not repeated)",
    "replicate": "copies of the edge value",
    "circular": "the input wrapped around from the opposite side",
}


def conv_geometry(kernel, stride, padding, dilation, op: str, flip: bool = False) -> WindowGeometry:
    """The engine's normalisation of ``stride``, ``padding`` (incl. 'same'/'valid', mirrored for true
    convolution when ``flip``) and ``dilation``."""
    nsp = len(kernel)
    stride = ntuple(stride, nsp, "stride", op)
    dilation = ntuple(dilation, nsp, "dilation", op)
    return WindowGeometry(tuple(kernel), stride, conv_pads(padding, nsp, kernel, stride, dilation, op, flip=flip),
                        dilation)


def check_fits(spatial, g: WindowGeometry, op: str) -> None:
    """Raise a ValueError with a fix when the dilated kernel is larger than the padded input (the engine's
    own check, ``ops._args.check_kernel_fits``)."""
    check_kernel_fits(spatial, g.kernel, g.dilation, g.pads, op)


def pad(x: np.ndarray, pads, mode: str = "zeros", value: float = 0.0) -> np.ndarray:
    """``x (C, *spatial)`` padded by the engine (``ops.padding.pad_forward``)."""
    return pad_forward(x[None], pads=pads, mode=mode, value=value)[0][0]


def window_view(xp: np.ndarray, g: WindowGeometry) -> np.ndarray:
    """The engine's windows of a padded ``xp (C, *n)``: ``(C, *out, *kernel)``, ``[c, y, j] = xp[c, y*s + j*d]``."""
    return windows(xp[None], g.kernel, g.stride, g.dilation)[0]


def window_cells(out_index, g: WindowGeometry) -> tuple[tuple[int, int], ...]:
    """The ``(row, col)`` cells of the padded input that output position ``out_index`` reads, tap by tap.

    >>> window_cells((1, 0), WindowGeometry((2, 2), (2, 1), ((0, 0), (0, 0)), (1, 1)))
    ((2, 0), (2, 1), (3, 0), (3, 1))
    """
    return tuple(cell_of(tuple(y * s + t * d for y, s, t, d in zip(out_index, g.stride, tap, g.dilation)))
                 for tap in np.ndindex(*g.kernel))


def padding_cells(padded, pads) -> tuple[tuple[int, int], ...]:
    """The ``(row, col)`` cells of a ``padded`` extent that lie in the padding ``pads`` (``(lo, hi)`` per axis).

    >>> padding_cells((3,), ((1, 1),))
    ((0, 0), (0, 2))
    """
    return tuple(cell_of(p) for p in np.ndindex(*padded)
                 if any(i < lo or i >= n - hi for i, n, (lo, hi) in zip(p, padded, pads)))


def columns(xp: np.ndarray, g: WindowGeometry) -> np.ndarray:
    """im2col of a padded ``xp (C, *n)``: ``(C·K, P)``, ``cols[(c, j), y] = xp[c, y*s + j*d]``, row-major."""
    view = window_view(xp, g)
    nsp = len(g.kernel)
    c, out = view.shape[0], view.shape[1:1 + nsp]
    order = (0,) + tuple(range(1 + nsp, 1 + 2 * nsp)) + tuple(range(1, 1 + nsp))
    return view.transpose(order).reshape(c * int(np.prod(g.kernel)), int(np.prod(out)))


def padding_step(x: np.ndarray, xp: np.ndarray, g: WindowGeometry, padding, mode: str, name: str = "I",
                 flip: bool = False) -> Step:
    """The padded input, with how much each side got and why (``'same'`` explained)."""
    sides = ", ".join(f"{axis}: {lo} before and {hi} after" for axis, (lo, hi) in zip(AXES[len(g.pads)], g.pads))
    text = f"Padding adds {_MODES[mode]} around the input ({sides}), giving `{name}_p` of {extent(xp.shape[1:])}."
    if padding == "same":
        totals = ", ".join(f"{d}·({k} − 1) = {d * (k - 1)}" for k, d in zip(g.kernel, g.dilation))
        where = ("before, the mirror of cross-correlation's, so that the output is the centre of the full "
                 "convolution (SciPy's mode='same')" if flip else "after, as PyTorch does")
        text += (f" padding='same' pads `d(k − 1)` in total along each axis ({totals}) so that the output keeps the "
                 f"input's size; an odd total puts the extra row or column {where}.")
    return Step(text, value=channel_matrices(f"{name}_p", xp))


def conv_size_step(spatial, g: WindowGeometry, out_spatial) -> Step:
    """``o = ⌊(n + p_lo + p_hi − d(k − 1) − 1)/s⌋ + 1`` per axis, numbers substituted, engine's result."""
    symmetric = all(lo == hi for lo, hi in g.pads)
    general = "n + 2p" if symmetric else "n + p_lo + p_hi"
    formulas = []
    for axis, n, k, s, (lo, hi), d, o in zip(AXES[len(spatial)], spatial, g.kernel, g.stride, g.pads, g.dilation,
                                             out_spatial):
        padding = f"2·{lo}" if symmetric else f"{lo} + {hi}"
        formulas.append(f"{axis}: ⌊({n} + {padding} − {d}·({k} − 1) − 1)/{s}⌋ + 1 = {o}")
    return Step(f"The output size along each axis is `o = ⌊({general} − d(k − 1) − 1)/s⌋ + 1` "
                "(n input size, p padding, d dilation, k kernel size, s stride).", tuple(formulas))


def dilation_step(w: np.ndarray, g: WindowGeometry, name: str = "K") -> Step:
    """The kernel with ``d - 1`` zeros between its taps: what a dilated kernel covers."""
    spread = np.zeros(w.shape[:2] + g.span)
    spread[(slice(None), slice(None)) + tuple(slice(None, None, d) for d in g.dilation)] = w
    return Step(f"Dilation {per_axis(g.dilation)} spreads the kernel taps apart: the kernel reads the input like "
                f"this {sized(g.span)} kernel with zeros between its taps (`k_eff = d(k − 1) + 1`).",
                value=tuple(Matrix(f"{name}_d" + ("" if w.shape[:2] == (1, 1) else f"[{o},{c}]"), spread[o, c])
                            for o in range(w.shape[0]) for c in range(w.shape[1])))


def position(out: str, s: int, tap: str, d: int) -> str:
    """Index expression of the input position read by a tap: ``2y + i``, ``y + 2i``.

    >>> position("y", 2, "i", 1), position("x", 1, "j", 3)
    ('2y + i', 'x + 3j')
    """
    return f"{'' if s == 1 else s}{out} + {'' if d == 1 else d}{tap}"

