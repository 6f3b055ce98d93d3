"""Convolution as a matrix product: im2col times the flattened kernel, and the sparse (Toeplitz) matrix.

Two ways to write ``conv2d`` as one matrix product:

* **im2col** (the engine's default algorithm): the columns matrix ``cols``
  holds one window per column (PyTorch's ``unfold``), the
  kernel becomes a matrix ``W`` with one row per output channel, and
  ``Y = W·cols + b`` reshaped to ``(C_out, H_out, W_out)`` is the output;
* **the sparse matrix** ``T`` acting on the flattened image:
  ``vec(O) = T·vec(I) + b``. Column ``k`` of ``T`` is the convolution of the
  ``k``-th unit image, so ``T`` is built by the engine itself; its
  transpose is the transposed convolution (the input gradient).

>>> e = im2col([[1, 2, 3], [4, 5, 6], [7, 8, 9]], [[1, 0], [0, -1]])
>>> e.result["columns"]
array([[1., 2., 4., 5.],
       [2., 3., 5., 6.],
       [4., 5., 7., 8.],
       [5., 6., 8., 9.]])
>>> e.result["toeplitz"].shape
(4, 9)
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .correlation import kernel_step
from .explanation import Explanation, Matrix, Step, fmt
from .figures import Frame, Frames, Mark, running_sums
from .geometry import (check_fits, columns, conv_geometry, conv_size_step, pad, padding_cells, padding_step,
                       window_cells)
from .operands import channel_matrices, conv_weight, extent, operand_shape, plural, shape_text, spatial_input, vector
from .sums import cells, cells_note, frame_cells, join_terms, operand, product

__all__ = ["im2col"]

MAX_TOEPLITZ_ENTRIES = 1_000_000


def im2col(input, weight, bias=None, stride=1, padding=0, dilation=1, *, padding_mode: str = "zeros") -> Explanation:
    """Explain ``F.conv2d`` as im2col + one matrix product, and as the sparse matrix on the flattened image.

    Args:
        input: ``(H, W)`` or ``(C_in, H, W)``.
        weight: ``(kH, kW)``, ``(C_in, kH, kW)`` or ``(C_out, C_in, kH, kW)``.
        bias: ``(C_out,)`` or None. Default: None.
        stride, padding, dilation, padding_mode: as ``F.conv2d``. Defaults: 1, 0, 1, ``'zeros'``.

    Returns an ``Explanation`` whose ``result`` is a dict: ``columns``
    ``(C_in·kH·kW, H_out·W_out)``, ``weight_matrix`` ``(C_out, C_in·kH·kW)``,
    ``toeplitz`` ``(C_out·H_out·W_out, C_in·H·W)`` (None beyond ``MAX_TOEPLITZ_ENTRIES``) and ``output``
    (``F.conv2d``'s, ``(C_out, H_out, W_out)``).
    """
    op = "im2col"
    x = spatial_input(input, 2, op)
    w = conv_weight(weight, 2, op)
    b = vector(bias, w.shape[0], "bias", op, "one per output channel")
    g = conv_geometry(w.shape[2:], stride, padding, dilation, op)
    check_fits(x.shape[1:], g, op)
    out = F.conv2d(x, w, b, stride, padding, dilation, padding_mode=padding_mode).numpy()
    xp = pad(x, g.pads, padding_mode)
    cols = columns(xp, g)
    wmat = w.reshape(w.shape[0], -1)
    y = wmat @ cols + (0 if b is None else b[:, None])
    iname = "I_p" if g.padded else "I"

    steps = [Step(f"The input I: {plural(x.shape[0], 'channel')} of {extent(x.shape[1:])}.",
                  value=channel_matrices("I", x)),
             kernel_step(w, b, 1)]
    if g.padded:
        steps.append(padding_step(x, xp, g, padding, padding_mode))
    steps.append(conv_size_step(x.shape[1:], g, out.shape[1:]))
    taps = "(c, i, j)" if x.shape[0] > 1 else "(i, j)"
    positions = list(np.ndindex(*out.shape[1:]))

    def column(p: int) -> str:
        window = ", ".join(fmt(v) for v in cols[:, p])
        return f"column {p} = window of O[{','.join(map(str, positions[p]))}] = [{window}]"

    steps.append(Step(
        f"im2col copies every window of {iname} into one column (PyTorch's unfold): the {cols.shape[0]} rows are "
        f"the kernel taps {taps}, the {cols.shape[1]} columns the output positions (y, x), both in row-major "
        f"order, so column (y, x) holds the window under O[y,x].",
        tuple(column(p) for p in range(min(2, cols.shape[1]))), Matrix("cols", cols),
        _unfold_frames(xp, g, cols, positions, iname, column)))
    steps.append(Step(f"The kernel flattened in the same tap order: one row per output channel, W is "
                      f"{shape_text(wmat.shape)}.", value=Matrix("W", wmat)))
    def entry(o: int, p: int) -> tuple[str, list[str], list[float]]:
        terms = [product(a, c) for a, c in zip(wmat[o], cols[:, p])]
        values = [float(a * c) for a, c in zip(wmat[o], cols[:, p])]
        text = join_terms(terms)
        if b is not None:
            text += f" + {operand(b[o])}"
            terms.append(operand(b[o]))
            values.append(float(b[o]))
        return f"Y[{o},{p}] = {text} = {fmt(y[o, p])}", terms, values

    product_formulas = [entry(o, p)[0] for o, p in cells(y.shape)]
    product_frames = []
    for o, p in frame_cells(y.shape):
        formula, terms, values = entry(o, p)
        product_frames.append(Frame(formula, (Mark(0, "tap", tuple((o, k) for k in range(wmat.shape[1]))),
                                              Mark(1, "window", tuple((k, p) for k in range(cols.shape[0]))),
                                              Mark(2, "out", ((o, p),))),
                                    tuple(terms), running_sums(values)))
    steps.append(Step(f"The whole convolution is one matrix product, `Y = W·cols{' + b' if b is not None else ''}` "
                      f"({shape_text(wmat.shape)} times {shape_text(cols.shape)}): entry (o, p) is row o of W times "
                      f"column p of cols — the same sums of products as cell by cell.{cells_note(y.shape, 'product')}",
                      tuple(product_formulas), Matrix("Y", y),
                      Frames((Matrix("W", wmat), Matrix("cols", cols), Matrix("Y", y)), tuple(product_frames))))
    steps.append(Step(f"Reshaped to {plural(out.shape[0], 'channel')} of {shape_text(out.shape[1:])}, Y is "
                      "conv2d's output.", value=channel_matrices("O", out)))
    entries = out.size * x.size
    if entries <= MAX_TOEPLITZ_ENTRIES:
        t = toeplitz(x.shape, w, stride, padding, dilation, padding_mode)
        steps.extend(toeplitz_steps(x, t, b))
    else:
        t = None
        steps.append(Step(f"The same convolution is also one matrix T acting on the flattened image, "
                          f"`vec(O) = T·vec(I)`, but here T would have {out.size}×{x.size} = {entries} entries, more "
                          f"than the {MAX_TOEPLITZ_ENTRIES} built for an explanation; try a smaller input."))
    title = f"im2col: conv2d of a {operand_shape(x, 1)} input with a {operand_shape(w, 2)} kernel as a matrix product"
    return Explanation(title, steps, {"columns": cols, "weight_matrix": wmat, "toeplitz": t, "output": out})


def _unfold_frames(xp: np.ndarray, g, cols: np.ndarray, positions, iname: str, caption) -> Frames:
    """One frame per output position: its window in every channel of ``xp`` and its column of ``cols``."""
    stage = channel_matrices(iname, xp) + (Matrix("cols", cols),)
    frames = []
    for p in frame_cells((len(positions),)):
        y = positions[p[0]]
        window = window_cells(y, g)
        marks = tuple(Mark(c, "window", window) for c in range(xp.shape[0]))
        frames.append(Frame(caption(p[0]), marks + (Mark(len(stage) - 1, "out",
                                                         tuple((k, p[0]) for k in range(cols.shape[0]))),)))
    fixed = tuple(Mark(c, "pad", padding_cells(xp.shape[1:], g.pads)) for c in range(xp.shape[0])) if g.padded else ()
    return Frames(stage, tuple(frames), fixed=fixed)


def toeplitz(input_shape, w: np.ndarray, stride, padding, dilation, padding_mode: str) -> np.ndarray:
    """The matrix ``T`` with ``vec(conv2d(I, w)) = T·vec(I)``: column ``k`` is ``conv2d`` of the ``k``-th unit image."""
    size = int(np.prod(input_shape))
    units = np.eye(size).reshape((size,) + tuple(input_shape))
    responses = F.conv2d(units, w, None, stride, padding, dilation, padding_mode=padding_mode).numpy()
    return responses.reshape(size, -1).T


def toeplitz_steps(x: np.ndarray, t: np.ndarray, b: np.ndarray | None) -> list[Step]:
    """``T`` (zeros as ``·``), then ``T·vec(I) + b = vec(O)`` with the non-zero products of its rows."""
    vec = x.ravel()
    bias = np.zeros(t.shape[0]) if b is None else np.repeat(b, t.shape[0] // len(b))
    result = t @ vec + bias
    nonzero = int(np.count_nonzero(t))
    formulas = []
    for (r,) in cells(result.shape):
        terms = [product(t[r, k], vec[k]) for k in np.flatnonzero(t[r])] or ["0"]
        text = join_terms(terms) + (f" + {operand(bias[r])}" if b is not None else "")
        formulas.append(f"(T·vec(I){' + b' if b is not None else ''})[{r}] = {text} = {fmt(result[r])}")
    return [
        Step(f"The same convolution as one matrix acting on the flattened image: `vec(O) = T·vec(I)"
             f"{' + b' if b is not None else ''}`. Column k of T is conv2d's output for the k-th unit image, so T has "
             f"{t.shape[0]} rows (output cells) and {t.shape[1]} columns (input cells), and only {nonzero} of its "
             f"{t.size} entries are non-zero (· marks a zero): each row holds one window's kernel taps, shifted "
             "along the row by the stride; the padding is built in.", value=Matrix("T", t, blank_zeros=True)),
        Step(f"Multiplying T by the flattened image gives the flattened output.{cells_note(result.shape, 'product')}",
             tuple(formulas), (Matrix("vec(I)", vec), Matrix("vec(O)", result))),
        Step("Its transpose goes the other way: `Tᵀ·vec(∂L/∂O)` is the gradient with respect to the input, and "
             "applying Tᵀ is exactly the transposed convolution (conv_transpose2d with the same kernel, stride, "
             "padding and dilation)."),
    ]
