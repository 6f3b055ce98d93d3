"""Cross-correlation (``conv1d``/``conv2d``) and true convolution (``convolve1d``/``convolve2d``) as sums.

Every output cell is written as its explicit sum of products, kernel value
first, with the bias added last; the window values come from the engine's
padded input and window view, the totals from ``convkit.functional``::

    O[o, y, x] = b[o] + Σ_c Σ_i Σ_j K[o, c, i, j] · I_p[c, y·s + i·d, x·s + j·d]

True convolution is the same sum with the flipped kernel
``K'[i, j] = K[kH−1−i, kW−1−j]``; its explanation ends with both results
side by side.

>>> e = conv2d([[1, 2, 3], [4, 5, 6], [7, 8, 9]], [[1, 0], [0, -1]])
>>> e.result
array([[[-4., -4.],
        [-4., -4.]]])
>>> print(e.steps[3].formulas[0])
O[0,0] = 1·1 + 0·2 + 0·4 + (-1)·5 = -4
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .explanation import Explanation, Step, fmt
from .figures import Frame, Frames, Mark, cell_of, running_sums
from .geometry import (WindowGeometry, check_fits, conv_geometry, conv_size_step, dilation_step, pad,
                       padding_cells, padding_step, position, window_cells, window_view)
from .operands import (channel_matrices, conv_weight, extent, index, kernel_matrices, operand_shape, plural,
                       shape_text, spatial_input, vector)
from .sums import cells, cells_note, frame_cells, grouped_terms, operand, product

__all__ = ["conv1d", "conv2d", "convolve1d", "convolve2d"]

OUT_INDEX = {1: ("y",), 2: ("y", "x")}
TAPS = {1: ("j",), 2: ("i", "j")}


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           padding_mode: str = "zeros") -> Explanation:
    """Explain ``F.conv1d`` (cross-correlation) cell by cell.

    Args:
        input: ``(L,)`` (one channel) or ``(C_in, L)``.
        weight: ``(k,)``, ``(C_in, k)`` (one output channel) or ``(C_out, C_in/groups, k)``.
        bias: ``(C_out,)`` or None. Default: None.
        stride, padding, dilation, groups, padding_mode: as ``F.conv1d``
            (padding also ``'same'``/``'valid'``). Defaults: 1, 0, 1, 1, ``'zeros'``.

    Returns an ``Explanation`` whose ``result`` is ``F.conv1d``'s output ``(C_out, L_out)``.
    """
    return _explain(1, False, "conv1d", input, weight, bias, stride, padding, dilation, groups, padding_mode)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           padding_mode: str = "zeros") -> Explanation:
    """Explain ``F.conv2d`` (cross-correlation, PyTorch's "convolution") cell by cell.

    Args:
        input: ``(H, W)`` (one channel) or ``(C_in, H, W)``.
        weight: ``(kH, kW)``, ``(C_in, kH, kW)`` (one output channel) or ``(C_out, C_in/groups, kH, kW)``.
        bias: ``(C_out,)`` or None. Default: None.
        stride, padding, dilation, groups, padding_mode: as ``F.conv2d``
            (padding also ``'same'``/``'valid'``). Defaults: 1, 0, 1, 1, ``'zeros'``.

    Returns an ``Explanation`` whose ``result`` is ``F.conv2d``'s output ``(C_out, H_out, W_out)``.
    """
    return _explain(2, False, "conv2d", input, weight, bias, stride, padding, dilation, groups, padding_mode)


def convolve1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
               padding_mode: str = "zeros") -> Explanation:
    """Explain ``F.convolve1d`` (true convolution: the kernel flipped), next to ``F.conv1d``.

    Arguments and shapes as ``conv1d``; ``result`` is ``F.convolve1d``'s output.
    """
    return _explain(1, True, "convolve1d", input, weight, bias, stride, padding, dilation, groups, padding_mode)


def convolve2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
               padding_mode: str = "zeros") -> Explanation:
    """Explain ``F.convolve2d`` (true convolution: the kernel rotated by 180°), next to ``F.conv2d``.

    Arguments and shapes as ``conv2d``; ``result`` is ``F.convolve2d``'s output.
    """
    return _explain(2, True, "convolve2d", input, weight, bias, stride, padding, dilation, groups, padding_mode)


def _explain(nsp: int, flip: bool, op: str, input, weight, bias, stride, padding, dilation, groups,
             padding_mode) -> Explanation:
    x = spatial_input(input, nsp, op)
    w = conv_weight(weight, nsp, op)
    b = vector(bias, w.shape[0], "bias", op, "one per output channel")
    g = conv_geometry(w.shape[2:], stride, padding, dilation, op, flip)
    check_fits(x.shape[1:], g, op)
    out = getattr(F, op)(x, w, b, stride, padding, dilation, groups, padding_mode=padding_mode).numpy()
    xp = pad(x, g.pads, padding_mode)
    wk = np.flip(w, axis=tuple(range(2, 2 + nsp))) if flip else w
    kname = "K'" if flip else "K"
    iname = "I_p" if g.padded else "I"

    steps = [Step(f"The input I: {plural(x.shape[0], 'channel')} of {extent(x.shape[1:])}.",
                  value=channel_matrices("I", x)),
             kernel_step(w, b, groups)]
    if flip:
        steps.append(flip_step(w, wk))
    if g.padded:
        steps.append(padding_step(x, xp, g, padding, padding_mode, flip=flip))
    steps.append(conv_size_step(x.shape[1:], g, out.shape[1:]))
    if max(g.dilation) > 1:
        steps.append(dilation_step(wk, g, kname))
    kind = ("the flipped kernel K' with the window of the input under it (true convolution)" if flip else
            "the kernel with the window of the input under it (no flip: cross-correlation, what PyTorch calls "
            "convolution)")
    stride_text = f" {stride_sentence(g.stride)}" if max(g.stride) > 1 else ""
    steps.append(Step(f"Each output cell is the sum of the products of {kind}"
                      f"{', plus the bias' if b is not None else ''}: "
                      f"`{general_formula(w.shape, g, b is not None, kname, iname)}`.{stride_text}"
                      f"{cells_note(out.shape)}",
                      correlation_formulas(out, window_view(xp, g), wk, b, groups),
                      figure=correlation_frames(xp, g, wk, out, b, groups, iname, kname, pads=g.pads)))
    steps.append(Step(f"The output O: {plural(out.shape[0], 'channel')} of {extent(out.shape[1:])}, "
                      f"as {op} computes it.",
                      value=channel_matrices("O", out)))
    if flip:
        twin = op.replace("convolve", "conv")
        other = getattr(F, twin)(x, w, b, stride, padding, dilation, groups, padding_mode=padding_mode).numpy()
        same = ("here they are equal, because this kernel is symmetric under that rotation"
                if np.array_equal(other, out) else "they differ because the kernel is not symmetric under that rotation")
        steps.append(Step(f"Side by side: cross-correlation with K ({twin}) and true convolution ({op}); {same}.",
                          value=channel_matrices(f"{twin}(I, K)", other) + channel_matrices(f"{op}(I, K)", out)))

    what = "convolution" if flip else "cross-correlation"
    extras = [f"{name} {value}" for name, value, default in
              (("stride", stride, 1), ("padding", padding, 0), ("dilation", dilation, 1), ("groups", groups, 1),
               ("padding_mode", padding_mode, "zeros")) if value != default]
    title = (f"{op}: {what} of a {operand_shape(x, 1)} input with a {operand_shape(w, 2)} kernel"
             + (f" ({', '.join(extras)})" if extras else ""))
    return Explanation(title, steps, out)


def stride_sentence(stride) -> str:
    """How the window moves: ``With stride 2 the window moves 2 cells at a time.``"""
    if len(set(stride)) == 1:
        return f"With stride {stride[0]} the window moves {stride[0]} cells at a time."
    return f"With stride {shape_text(stride)} the window moves {stride[0]} rows down and {stride[1]} columns across."


def kernel_step(w: np.ndarray, b: np.ndarray | None, groups: int) -> Step:
    """The kernels (one per output/input channel pair), the bias, and what groups mean."""
    c_out, cg = w.shape[:2]
    text = (f"The kernel K: {extent(w.shape[2:])}" if w.shape[:2] == (1, 1) else
            f"The kernel K: {plural(c_out, 'output channel')} × {plural(cg, 'input channel')} of "
            f"{extent(w.shape[2:])}")
    text += "." if b is None else f", and the bias b = [{', '.join(fmt(v) for v in b)}], one per output channel."
    if groups > 1:
        text += (f" groups={groups}: the channels split into {groups} groups; output channel o sees only the "
                 f"{cg} input channel(s) of its group, o // {c_out // groups}.")
    return Step(text, value=kernel_matrices("K", w))


def flip_step(w: np.ndarray, wk: np.ndarray) -> Step:
    """K and the flipped K' side by side."""
    k = w.shape[2:]
    taps = TAPS[len(k)]
    flipped = ", ".join(f"{n - 1} − {t}" for n, t in zip(k, taps))
    return Step(f"True convolution flips the kernel in every axis, `K'[{','.join(taps)}] = K[{flipped}]`"
                f"{' (a rotation by 180°)' if len(k) == 2 else ''}; then it slides it like cross-correlation.",
                value=kernel_matrices("K", w) + kernel_matrices("K'", wk))


def general_formula(w_shape, g: WindowGeometry, bias: bool, kname: str = "K", iname: str = "I_p") -> str:
    """``O[y,x] = b + Σ_i Σ_j K[i,j]·I_p[y + i, x + j]`` for this stride and dilation, with channels if several."""
    nsp = len(g.kernel)
    outs, taps = OUT_INDEX[nsp], TAPS[nsp]
    multi_out, multi_in = w_shape[0] > 1, w_shape[1] > 1
    positions = [position(o, s, t, d) for o, s, t, d in zip(outs, g.stride, taps, g.dilation)]
    o_idx = (["o"] if multi_out else []) + list(outs)
    k_idx = (["o"] if multi_out else []) + (["c"] if multi_in else []) + list(taps)
    i_idx = (["c"] if multi_in else []) + positions
    sums = ("Σ_c " if multi_in else "") + " ".join(f"Σ_{t}" for t in taps)
    b = ("b[o] + " if multi_out else "b + ") if bias else ""
    return f"O[{','.join(o_idx)}] = {b}{sums} {kname}[{','.join(k_idx)}]·{iname}[{', '.join(i_idx)}]"


def correlation_formulas(out: np.ndarray, view: np.ndarray, wk: np.ndarray, b: np.ndarray | None, groups: int,
                         name: str = "O") -> tuple[str, ...]:
    """``O[y,x] = K·I + … + b = value`` for the cells ``sums.cells`` picks.

    ``view (C_in, *out, *k)`` holds the windows, ``wk (C_out, C_in/groups, *k)``
    the kernel as applied (already flipped for true convolution), ``out``
    the engine's result.
    """
    return tuple(cell_sum(out, view, wk, b, groups, cell, name)[0] for cell in cells(out.shape))


def cell_sum(out: np.ndarray, view: np.ndarray, wk: np.ndarray, b: np.ndarray | None, groups: int, cell,
             name: str = "O") -> tuple[str, list[str], list[float]]:
    """One output cell's formula, its terms (products, then the bias) and their values (arguments as above)."""
    c_out, cg = wk.shape[:2]
    o, y = cell[0], cell[1:]
    first = (o // (c_out // groups)) * cg
    pairs = [list(zip(wk[o, c].ravel(), view[first + c][y].ravel())) for c in range(cg)]
    grouped = [[product(kv, xv) for kv, xv in group] for group in pairs]
    text = grouped_terms(grouped)
    terms = [t for group in grouped for t in group]
    values = [float(kv * xv) for group in pairs for kv, xv in group]
    if b is not None:
        text += f" + {operand(b[o])}"
        terms.append(operand(b[o]))
        values.append(float(b[o]))
    return f"{index(name, *y, channel=o if c_out > 1 else None)} = {text} = {fmt(out[cell])}", terms, values


def correlation_frames(xp: np.ndarray, g: WindowGeometry, wk: np.ndarray, out: np.ndarray, b: np.ndarray | None,
                       groups: int, iname: str, kname: str, name: str = "O", pads=None) -> Frames:
    """The window sliding over ``xp``: per output cell its window, the kernel, the products and the running sum.

    ``xp (C_in, *n)`` is the (padded) input the windows read, ``pads`` its
    padding per axis (drawn in every frame; None draws none), the rest as
    ``correlation_formulas``. Frames follow ``sums.frame_cells``.
    """
    c_in, (c_out, cg) = xp.shape[0], wk.shape[:2]
    stage = channel_matrices(iname, xp) + kernel_matrices(kname, wk) + channel_matrices(name, out)
    view = window_view(xp, g)
    frames = []
    for cell in frame_cells(out.shape):
        o, y = cell[0], cell[1:]
        first = (o // (c_out // groups)) * cg
        window = window_cells(y, g)
        taps = tuple(cell_of(t) for t in np.ndindex(*g.kernel))
        marks = [Mark(first + c, "window", window) for c in range(cg)]
        marks += [Mark(c_in + o * cg + c, "tap", taps) for c in range(cg)]
        marks.append(Mark(c_in + c_out * cg + o, "out", (cell_of(y),)))
        formula, terms, values = cell_sum(out, view, wk, b, groups, cell, name)
        frames.append(Frame(formula, tuple(marks), tuple(terms), running_sums(values)))
    border = () if pads is None else padding_cells(xp.shape[1:], pads)
    fixed = tuple(Mark(c, "pad", border) for c in range(c_in)) if border else ()
    return Frames(stage, tuple(frames), "running sum", fixed)
