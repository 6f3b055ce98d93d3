"""Transposed convolution as stamps: each input value adds a scaled copy of the kernel to the output.

For input ``I``, kernel ``K (C_in, C_out/groups, *k)``, stride ``s`` and
dilation ``d``, input cell ``(c, y)`` adds ``I[c, y]·K[c, q, j]`` at output
position ``y·s + j·d`` of channel ``q``; the sum of all stamps (the "full"
output) is then cropped by ``padding`` on both sides, ``output_padding``
adds positions on the high side, and the bias is added::

    o = (n − 1)·s − 2p + d(k − 1) + output_padding + 1

Stamps and results come from ``F.conv_transpose1d``/``F.conv_transpose2d``
(a stamp is the transposed convolution of one input cell).

>>> e = conv_transpose2d([[1, 2], [3, 4]], [[1, 1], [1, 1]], stride=2)
>>> e.result
array([[[1., 1., 2., 2.],
        [1., 1., 2., 2.],
        [3., 3., 4., 4.],
        [3., 3., 4., 4.]]])
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from ..ops._args import ntuple
from .explanation import Explanation, Step, fmt
from .figures import Frame, Frames, Mark, cell_of
from .operands import (AXES, as_array, channel_matrices, extent, kernel_matrices, operand_shape, per_axis, plural,
                       spatial_input, vector)
from .sums import cells, cells_note, frame_cells, join_terms, product

__all__ = ["conv_transpose1d", "conv_transpose2d"]

MAX_STAMPS = 9


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1) -> Explanation:
    """Explain ``F.conv_transpose1d`` stamp by stamp.

    Args:
        input: ``(L,)`` or ``(C_in, L)``.
        weight: ``(k,)``, ``(C_in, k)`` (one output channel) or ``(C_in, C_out/groups, k)``.
        bias, stride, padding, output_padding, groups, dilation: as ``F.conv_transpose1d``.
            Defaults: None, 1, 0, 0, 1, 1.

    Returns an ``Explanation`` whose ``result`` is ``F.conv_transpose1d``'s output ``(C_out, L_out)``.
    """
    return _explain(1, input, weight, bias, stride, padding, output_padding, groups, dilation)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1) -> Explanation:
    """Explain ``F.conv_transpose2d`` stamp by stamp.

    Args:
        input: ``(H, W)`` or ``(C_in, H, W)``.
        weight: ``(kH, kW)``, ``(C_in, kH, kW)`` (one output channel) or ``(C_in, C_out/groups, kH, kW)``.
        bias, stride, padding, output_padding, groups, dilation: as ``F.conv_transpose2d``.
            Defaults: None, 1, 0, 0, 1, 1.

    Returns an ``Explanation`` whose ``result`` is ``F.conv_transpose2d``'s output ``(C_out, H_out, W_out)``.
    """
    return _explain(2, input, weight, bias, stride, padding, output_padding, groups, dilation)


def _weight(value, nsp: int, op: str) -> np.ndarray:
    """``(C_in, C_out/groups, *k)``; ``(*k)`` is one channel each, ``(C_in, *k)`` one output channel."""
    w = as_array(value, "weight", op)
    if w.ndim == nsp:
        w = w[None, None]
    elif w.ndim == nsp + 1:
        w = w[:, None]
    if w.ndim != nsp + 2 or w.size == 0:
        k = "k" if nsp == 1 else "kH, kW"
        raise ValueError(f"{op}: weight must be ({k}), (C_in, {k}) or (C_in, C_out/groups, {k}), got shape {w.shape}")
    return w


def _explain(nsp, input, weight, bias, stride, padding, output_padding, groups, dilation) -> Explanation:
    op = f"conv_transpose{nsp}d"
    x = spatial_input(input, nsp, op)
    w = _weight(weight, nsp, op)
    fn = getattr(F, op)
    unbiased = fn(x, w, None, stride, padding, output_padding, groups, dilation).numpy()  # checks the arguments
    b = vector(bias, unbiased.shape[0], "bias", op, "one per output channel")
    out = fn(x, w, b, stride, padding, output_padding, groups, dilation).numpy()
    s = ntuple(stride, nsp, "stride", op)
    d = ntuple(dilation, nsp, "dilation", op)
    p = ntuple(padding, nsp, "padding", op, minimum=0)
    op_pad = ntuple(output_padding, nsp, "output_padding", op, minimum=0)
    kernel = w.shape[2:]
    full = fn(x, w, None, s, 0, op_pad, groups, d).numpy()

    steps = [Step(f"The input I: {plural(x.shape[0], 'channel')} of {extent(x.shape[1:])}.",
                  value=channel_matrices("I", x)),
             Step(f"The kernel K: {extent(kernel)}" + ("" if w.shape[:2] == (1, 1) else
                  f", {plural(w.shape[0], 'input channel')} × {plural(w.shape[1], 'output channel')} per group "
                  "(transposed layout: C_in first)") + ".", value=kernel_matrices("K", w))]
    formulas = [f"{axis}: ({n} − 1)·{si} − 2·{pi} + {di}·({k} − 1) + {oi} + 1 = {o}"
                for axis, n, si, pi, di, k, oi, o in zip(AXES[nsp], x.shape[1:], s, p, d, kernel, op_pad,
                                                          out.shape[1:])]
    steps.append(Step("The output size along each axis is `o = (n − 1)·s − 2p + d(k − 1) + output_padding + 1`: the "
                      "input cells are s apart in the output, and the last one's kernel reaches d(k − 1) further.",
                      tuple(formulas)))
    steps.append(_stamps_step(x, w, s, d, op_pad, groups, fn))
    steps.append(Step(f"Adding all the stamps gives the full output; each of its cells is the sum of the products "
                      f"that landed on it.{cells_note(full.shape)}", _sum_formulas(x, w, s, d, groups, full),
                      channel_matrices("O_full", full)))
    if max(p) > 0:
        crop = (slice(None),) + tuple(slice(pi, pi + o) for pi, o in zip(p, out.shape[1:]))
        steps.append(Step(f"padding={per_axis(p)} crops {per_axis(p)} from each side of the full output (it undoes "
                          "the padding of the convolution this transposes).",
                          value=channel_matrices("O" if b is None else "F_crop", full[crop])))
    if max(op_pad) > 0:
        steps.append(Step(f"output_padding={per_axis(op_pad)} keeps {per_axis(op_pad)} more at the high end: a "
                          "strided convolution maps several input sizes to the same output size, and this picks "
                          "the larger one. Those cells still receive stamps."))
    if b is not None:
        steps.append(Step(f"Adding the bias b = [{', '.join(fmt(v) for v in b)}] (one per output channel) gives the "
                          f"output, as {op} computes it.", value=channel_matrices("O", out)))
    steps.append(Step(f"This is the adjoint of conv{nsp}d with the same kernel, stride, padding and dilation: it "
                      "maps the convolution's output shape back to its input shape (the shape, not the values, is "
                      "inverted) and computes conv's input gradient."))
    title = (f"{op}: a {operand_shape(x, 1)} input stamps a {operand_shape(w, 2)} kernel"
             + "".join(f", {name} {per_axis(v)}" for name, v in (("stride", s), ("padding", p),
                                                                  ("output_padding", op_pad), ("dilation", d))
                       if max(v) != (1 if name in ("stride", "dilation") else 0)))
    return Explanation(title, steps, out)


def _stamps_step(x, w, s, d, op_pad, groups, fn) -> Step:
    """One stamp per input cell (a few when there are many), each from the engine."""
    every = list(np.ndindex(*x.shape))
    shown = every if len(every) <= MAX_STAMPS else every[:3] + every[-1:]
    stamps, formulas = [], []
    for cell in shown:
        one = np.zeros_like(x)
        one[cell] = x[cell]
        stamp = fn(one, w, None, s, 0, op_pad, groups, d).numpy()
        formulas.append(_stamp_formula(x, cell, s))
        stamps.extend(channel_matrices(f"{_input_label(x, cell)}·K", stamp))
    note = ("" if len(shown) == len(every) else
            f" There are {len(every)} stamps, more than the {MAX_STAMPS} shown one by one, so these are the first "
            "3 and the last; the others follow the same rule.")
    taps = "" if max(d) == 1 else f", its taps {per_axis(d)} apart (dilation)"
    return Step(f"Each input value stamps a copy of the kernel, scaled by that value, into the output: input cell y "
                f"puts its stamp's corner at y·s (stride {per_axis(s)}){taps}.{note}", tuple(formulas), tuple(stamps),
                _stamp_frames(x, w, s, d, op_pad, groups, fn))


def _input_label(x, cell) -> str:
    return f"I[{','.join(map(str, cell if x.shape[0] > 1 else cell[1:]))}]"


def _stamp_formula(x, cell, s) -> str:
    corner = ", ".join(f"{yi}·{si} = {yi * si}" for yi, si in zip(cell[1:], s))
    return f"{_input_label(x, cell)}·K = {fmt(x[cell])}·K, corner at ({corner})"


def _stamp_frames(x, w, s, d, op_pad, groups, fn) -> Frames:
    """One frame per input cell (``sums.frame_cells``): the cell, the kernel, where its stamp lands, and
    ``O_full`` so far: the transposed convolution of the input cells up to this one (the engine's)."""
    cg, og = x.shape[0] // groups, w.shape[1]
    stage = channel_matrices("I", x) + kernel_matrices("K", w)
    first_out = len(stage)
    stage += channel_matrices("O_full", fn(x, w, None, s, 0, op_pad, groups, d).numpy())
    order = list(np.ndindex(*x.shape))
    frames = []
    for cell in frame_cells(x.shape):
        c, y = cell[0], cell[1:]
        group = c // cg
        landed = tuple(cell_of(tuple(yi * si + ji * di for yi, si, ji, di in zip(y, s, j, d)))
                       for j in np.ndindex(*w.shape[2:]))
        marks = [Mark(c, "window", (cell_of(y),))]
        marks += [Mark(x.shape[0] + c * og + q, "tap", tuple(cell_of(j) for j in np.ndindex(*w.shape[2:])))
                  for q in range(og)]
        marks += [Mark(first_out + group * og + q, "out", landed) for q in range(og)]
        upto = np.zeros_like(x)
        for done in order[:order.index(cell) + 1]:
            upto[done] = x[done]
        so_far = fn(upto, w, None, s, 0, op_pad, groups, d).numpy()
        frames.append(Frame(_stamp_formula(x, cell, s), tuple(marks),
                            values=tuple((first_out + q, so_far[q]) for q in range(so_far.shape[0]))))
    return Frames(stage, tuple(frames))


def _sum_formulas(x, w, s, d, groups, full) -> tuple[str, ...]:
    """``O_full[r] = I[y]·K[j] + … = value`` over the ``(y, j)`` with ``y·s + j·d = r``."""
    cg, og = x.shape[0] // groups, w.shape[1]
    formulas = []
    for cell in cells(full.shape):
        out_channel, r = cell[0], cell[1:]
        group, q = divmod(out_channel, og)
        landed = []
        for c in range(group * cg, (group + 1) * cg):
            for j in np.ndindex(*w.shape[2:]):
                y = [(ri - ji * di) / si for ri, ji, di, si in zip(r, j, d, s)]
                if all(v.is_integer() and 0 <= v < n for v, n in zip(y, x.shape[1:])):
                    landed.append(product(x[(c,) + tuple(int(v) for v in y)], w[(c, q) + j]))
        label = f"O_full[{','.join(map(str, cell if full.shape[0] > 1 else cell[1:]))}]"
        formulas.append(f"{label} = {join_terms(landed)} = {fmt(full[cell])}" if landed else
                        f"{label} = 0 (no stamp reaches it)")
    return tuple(formulas)
