"""Gradients of a convolution layer, each shown as a sum and as the operation it amounts to.

For ``O = conv(I, K) + b`` (cross-correlation, stride ``s``, padding ``p``,
dilation ``d``) and an upstream gradient ``G = ∂L/∂O``::

    ∂L/∂b[o]       = Σ_y G[o, y]
    ∂L/∂K[o, c, j] = Σ_y G[o, y] · I_p[c, y·s + j·d]        (= Xᵀ·G with X the im2col matrix)
    ∂L/∂I          = the full correlation of G (zeros inserted for the stride) with the flipped kernel,
                     cropped by the padding  (= conv_transpose(G, K))

``G`` is given (``grad_output``), comes from a mean-squared-error loss
against ``target``, or is all ones (``L = Σ O``). The gradients in
``result`` come from the engine's autograd; the full-correlation route is
computed with ``F.conv1d``/``F.conv2d`` and checked against it by the tests.

>>> e = conv2d_grad([[1, 2, 3], [4, 5, 6], [7, 8, 9]], [[1, 0], [0, -1]])
>>> e.result["grad_weight"]
array([[[[12., 16.],
         [24., 28.]]]])
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from ..tensor import tensor
from .correlation import TAPS, correlation_formulas, correlation_frames
from .explanation import Explanation, Matrix, Step, fmt, roundoff
from .figures import Frame, Frames, Mark, cell_of, running_sums
from .geometry import WindowGeometry, check_fits, columns, conv_geometry, pad, padding_cells, window_view
from .operands import (channel_matrices, conv_weight, kernel_matrices, like_output, operand_shape, per_axis,
                       spatial_input, vector)
from .sums import cells, cells_note, frame_cells, join_terms, product

__all__ = ["conv1d_grad", "conv2d_grad"]


def conv1d_grad(input, weight, bias=None, stride=1, padding=0, dilation=1, *, grad_output=None,
                target=None) -> Explanation:
    """Explain the gradients of ``F.conv1d`` with respect to its input, weight and bias.

    Args:
        input, weight, bias, stride, padding, dilation: as ``explain.conv1d`` (groups 1, zero padding).
        grad_output: ``∂L/∂O``, shaped like the output ``(C_out, L_out)`` (or ``(L_out,)`` for one
            channel). Default: None (all ones, ``L = Σ O``, unless ``target`` is given).
        target: the target of a mean-squared-error loss ``L = mean((O − T)²)``, shaped like the
            output. Default: None.

    Returns an ``Explanation`` whose ``result`` is a dict of the engine's
    gradients: ``grad_output``, ``grad_input``, ``grad_weight``,
    ``grad_bias`` (when there is a bias) and ``loss`` (when there is a target).
    """
    return _explain(1, "conv1d", input, weight, bias, stride, padding, dilation, grad_output, target)


def conv2d_grad(input, weight, bias=None, stride=1, padding=0, dilation=1, *, grad_output=None,
                target=None) -> Explanation:
    """Explain the gradients of ``F.conv2d`` with respect to its input, weight and bias.

    Args:
        input, weight, bias, stride, padding, dilation: as ``explain.conv2d`` (groups 1, zero padding).
        grad_output: ``∂L/∂O``, shaped like the output ``(C_out, H_out, W_out)`` (or
            ``(H_out, W_out)`` for one channel). Default: None (all ones, ``L = Σ O``, unless
            ``target`` is given).
        target: the target of a mean-squared-error loss ``L = mean((O − T)²)``, shaped like the
            output. Default: None.

    Returns an ``Explanation`` whose ``result`` is a dict of the engine's
    gradients: ``grad_output``, ``grad_input``, ``grad_weight``,
    ``grad_bias`` (when there is a bias) and ``loss`` (when there is a target).
    """
    return _explain(2, "conv2d", input, weight, bias, stride, padding, dilation, grad_output, target)


def _explain(nsp, op, input, weight, bias, stride, padding, dilation, grad_output, target) -> Explanation:
    name = f"{op}_grad"
    if grad_output is not None and target is not None:
        raise ValueError(f"{name}: give grad_output or target, not both (target defines ∂L/∂O through the MSE loss)")
    x = spatial_input(input, nsp, name)
    w = conv_weight(weight, nsp, name)
    b = vector(bias, w.shape[0], "bias", name, "one per output channel")
    if w.shape[1] != x.shape[0]:
        raise ValueError(f"{name}: the input has {x.shape[0]} channels but the kernel expects {w.shape[1]} "
                         f"(kernel shape {w.shape}); the gradient explanation covers groups=1")
    g = conv_geometry(w.shape[2:], stride, padding, dilation, name)
    check_fits(x.shape[1:], g, name)
    conv = getattr(F, op)

    xt, wt = tensor(x, requires_grad=True), tensor(w, requires_grad=True)
    bt = None if b is None else tensor(b, requires_grad=True)
    out = conv(xt, wt, bt, stride, padding, dilation)
    shape = out.shape
    steps = [Step(f"Forward: `O = {op}(I, K){' + b' if b is not None else ''}` (explain {op} shows the sums).",
                  value=channel_matrices("I", x) + kernel_matrices("K", w) + channel_matrices("O", out.numpy()))]
    result: dict[str, np.ndarray | float] = {}
    if target is not None:
        t = like_output(target, shape, "target", name)
        o_leaf = tensor(out.numpy(), requires_grad=True)
        loss = F.mse_loss(o_leaf, t)
        loss.backward()
        gy = o_leaf.grad
        F.mse_loss(out, t).backward()
        result["loss"] = float(loss.item())
        steps.extend(_mse_steps(out.numpy(), t, float(loss.item()), gy))
    else:
        gy = np.ones(shape) if grad_output is None else like_output(grad_output, shape, "grad_output", name)
        out.backward(gy)
        steps.append(Step("Take `L = Σ O` (the sum of all outputs), so `∂L/∂O = 1` in every cell (give grad_output or "
                          "target for another loss)." if grad_output is None else
                          "The gradient arriving from the layers above, ∂L/∂O, is given:",
                          value=channel_matrices("∂L/∂O", gy)))
    result["grad_output"] = gy
    if b is not None:
        result["grad_bias"] = bt.grad
        steps.append(Step("Every output cell of channel o adds b[o] once, so `∂L/∂b[o] = Σ ∂L/∂O[o, …]`, "
                          "the sum of that channel's ∂L/∂O.",
                          tuple(f"∂L/∂b{'' if len(b) == 1 else f'[{o}]'} = "
                                f"{join_terms([fmt(v) for v in gy[o].ravel()], 'terms')} = {fmt(bt.grad[o])}"
                                for o in range(len(b)))))
    xp = pad(x, g.pads)
    steps.extend(_weight_steps(xp, gy, wt.grad, g))
    steps.extend(_input_steps(x, w, gy, xt.grad, g, op))
    result["grad_weight"] = wt.grad
    result["grad_input"] = xt.grad
    title = (f"{name}: gradients of {op} for a {operand_shape(x, 1)} input and a {operand_shape(w, 2)} kernel"
             + "".join(f", {k} {v}" for k, v, d in (("stride", stride, 1), ("padding", padding, 0),
                                                    ("dilation", dilation, 1)) if v != d))
    return Explanation(title, steps, result)


def _mse_steps(o: np.ndarray, t: np.ndarray, loss: float, gy: np.ndarray) -> list[Step]:
    n = o.size
    squares = [f"({fmt(a)} − {fmt(c)})²" for a, c in zip(o.ravel(), t.ravel())]
    grads = [f"{_cell('∂L/∂O', cell, o.shape)} = 2·({fmt(o[cell])} − {fmt(t[cell])})/{n} = {fmt(gy[cell])}"
             for cell in cells(o.shape)]
    return [Step(f"The loss is the mean squared error over the n = {n} output cells, `L = (1/n) Σ (O − T)²`, "
                 "with the target T:", (f"L = ({join_terms(squares, 'squares')})/{n} = {fmt(loss)}",),
                 channel_matrices("T", t)),
            Step(f"Its gradient is `∂L/∂O = 2(O − T)/n`, one value per output cell.{cells_note(o.shape)}",
                 tuple(grads), channel_matrices("∂L/∂O", gy))]


def _cell(name: str, cell, shape) -> str:
    """``name[y,x]``, with the leading channel index only when there are several channels."""
    idx = cell if shape[0] > 1 else cell[1:]
    return f"{name}[{','.join(str(int(i)) for i in idx)}]"


def _weight_steps(xp: np.ndarray, gy: np.ndarray, dw: np.ndarray, g: WindowGeometry) -> list[Step]:
    """∂L/∂K as a sum per tap, then as ``Xᵀ·∂L/∂O`` with the im2col matrix."""
    nsp = len(g.kernel)
    view = window_view(xp, g)  # (C, *out, *k)
    taps = TAPS[nsp]
    outs = ("y",) if nsp == 1 else ("y", "x")
    pos = ", ".join(f"{'' if s == 1 else s}{o} + {'' if d == 1 else d}{t}"
                    for o, s, t, d in zip(outs, g.stride, taps, g.dilation))
    iname = "I_p" if g.padded else "I"
    def tap_sum(cell):
        o, c, j = cell[0], cell[1], cell[2:]
        pairs = [(gy[(o,) + y], view[(c,) + y + j]) for y in np.ndindex(*gy.shape[1:])]
        terms = [product(a, v) for a, v in pairs]
        label = [str(v) for v in ((o,) if dw.shape[0] > 1 else ()) + ((c,) if dw.shape[1] > 1 else ()) + j]
        return f"∂L/∂K[{','.join(label)}] = {join_terms(terms)} = {fmt(dw[cell])}", terms, [a * v for a, v in pairs]

    formulas = tuple(tap_sum(cell)[0] for cell in cells(dw.shape))
    stage = channel_matrices(iname, xp) + channel_matrices("∂L/∂O", gy) + kernel_matrices("∂L/∂K", dw)
    c_in, c_out = xp.shape[0], gy.shape[0]
    frames = []
    for cell in frame_cells(dw.shape):
        o, c, j = cell[0], cell[1], cell[2:]
        read = tuple(cell_of(tuple(yi * s + ji * d for yi, s, ji, d in zip(y, g.stride, j, g.dilation)))
                     for y in np.ndindex(*gy.shape[1:]))
        marks = (Mark(c, "window", read), Mark(c_in + o, "grad", tuple(cell_of(y) for y in np.ndindex(*gy.shape[1:]))),
                 Mark(c_in + c_out + o * c_in + c, "out", (cell_of(j),)))
        formula, terms, values = tap_sum(cell)
        frames.append(Frame(formula, marks, tuple(terms), running_sums(values)))
    sums = " ".join(f"Σ_{o}" for o in outs)
    first = Step(f"Each kernel tap multiplied one input value in every output cell, so its gradient sums those "
                 f"input values weighted by ∂L/∂O: `∂L/∂K[{','.join(taps)}] = {sums} ∂L/∂O[{','.join(outs)}]·"
                 f"{iname}[{pos}]` — the correlation of the input with ∂L/∂O.{cells_note(dw.shape, 'kernel')}",
                 formulas, kernel_matrices("∂L/∂K", dw),
                 Frames(stage, tuple(frames), "running sum", tuple(Mark(c, "pad", padding_cells(xp.shape[1:], g.pads))
                                                               for c in range(c_in)) if g.padded else ()))
    cols = columns(xp, g)  # Xᵀ: (C·K, P)
    gmat = gy.reshape(gy.shape[0], -1).T  # (P, C_out)
    prod = cols @ gmat
    second = Step(f"The same as one matrix product: with the im2col matrix X ({cols.shape[1]} windows as rows, "
                  f"{cols.shape[0]} taps as columns, so `vec(O) = X·vec(K)`), `∂L/∂K = Xᵀ·∂L/∂O` "
                  f"({cols.shape[0]}×{cols.shape[1]} times {gmat.shape[0]}×{gmat.shape[1]}); each column of the "
                  "product, reshaped, is one output channel's ∂L/∂K above.",
                  value=(Matrix("Xᵀ", cols), Matrix("∂L/∂O", gmat), Matrix("Xᵀ·∂L/∂O", prod)))
    return [first, second]


def _input_steps(x, w, gy, dx, g: WindowGeometry, op) -> list[Step]:
    """∂L/∂I as the full correlation of ∂L/∂O (zeros inserted) with the flipped kernel, then as conv_transpose."""
    nsp = len(g.kernel)
    axes = tuple(range(2, 2 + nsp))
    flipped = np.ascontiguousarray(np.flip(w, axis=axes).swapaxes(0, 1))  # (C_in, C_out, *k)
    spread_shape = tuple((n - 1) * s + 1 for n, s in zip(gy.shape[1:], g.stride))
    spread = np.zeros(gy.shape[:1] + spread_shape)
    spread[(slice(None),) + tuple(slice(None, None, s) for s in g.stride)] = gy
    padded_in = tuple(n + lo + hi for n, (lo, hi) in zip(x.shape[1:], g.pads))
    reach = [sp + d * (k - 1) for sp, k, d in zip(spread_shape, g.kernel, g.dilation)]
    full_pads = tuple((d * (k - 1), d * (k - 1) + n - r)
                      for k, d, n, r in zip(g.kernel, g.dilation, padded_in, reach))
    full = pad(spread, full_pads)
    corr = getattr(F, op)(full, flipped, None, 1, 0, g.dilation).numpy()  # ∂L/∂I_p
    crop = (slice(None),) + tuple(slice(lo, lo + n) for (lo, _), n in zip(g.pads, x.shape[1:]))
    steps = []
    if max(g.stride) > 1:
        steps.append(Step(f"For ∂L/∂I, first undo the stride: insert {_zeros(tuple(s - 1 for s in g.stride))} "
                          f"between neighbouring cells of ∂L/∂O, since the windows were {per_axis(g.stride)} apart.",
                          value=channel_matrices("∂L/∂O_s", spread)))
    extra = tuple(n - r for n, r in zip(padded_in, reach))
    extra_text = f", plus {per_axis(extra)} more after for the input cells that no window reached" if any(extra) else ""
    steps.append(Step(f"{'Then pad it' if max(g.stride) > 1 else 'For ∂L/∂I, pad ∂L/∂O'} with `d(k − 1)` = "
                      f"{_zeros(tuple(d * (k - 1) for k, d in zip(g.kernel, g.dilation)))} on each side (a 'full' "
                      f"correlation: every overlap of kernel and ∂L/∂O counts){extra_text}.",
                      value=channel_matrices("G", full)))
    gg = WindowGeometry(g.kernel, (1,) * nsp, ((0, 0),) * nsp, g.dilation)
    taps = TAPS[nsp]
    outs = ("r",) if nsp == 1 else ("r", "q")
    pos = ", ".join(f"{o} + {'' if d == 1 else d}{t}" for o, t, d in zip(outs, taps, g.dilation))
    flipped_k = ", ".join(f"{k - 1} − {t}" for k, t in zip(g.kernel, taps))
    target = "∂L/∂I_p" if g.padded else "∂L/∂I"
    steps.append(Step(f"An input cell was multiplied by `K[{','.join(taps)}]` in every output cell whose window put "
                      f"that tap on it, so ∂L/∂I is the correlation of G with the flipped kernel "
                      f"`K'[{','.join(taps)}] = K[{flipped_k}]`: `{target}[{','.join(outs)}] = "
                      f"{' '.join(f'Σ_{t}' for t in taps)} K'[{','.join(taps)}]·G[{pos}]`"
                      f"{' (summed over the output channels)' if w.shape[0] > 1 else ''}."
                      f"{cells_note(corr.shape, 'gradient')}",
                      correlation_formulas(corr, window_view(full, gg), flipped, None, 1, target),
                      kernel_matrices("K'", np.flip(w, axis=axes)) + channel_matrices(target, corr),
                      correlation_frames(full, gg, flipped, corr, None, 1, "G", "K'", target, pads=full_pads)))
    if g.padded:
        steps.append(Step("Crop the padding: the padded cells are not inputs, so ∂L/∂I is the interior.",
                          value=channel_matrices("∂L/∂I", corr[crop])))
    out_pad = tuple(n + lo + hi - r for n, (lo, hi), r in zip(x.shape[1:], g.pads, reach))
    transpose = getattr(F, f"conv_transpose{nsp}d")
    options = f"stride={per_axis(g.stride)}, output_padding={per_axis(out_pad)}, dilation={per_axis(g.dilation)}"
    if all(lo == hi for lo, hi in g.pads):
        pads = tuple(lo for lo, _ in g.pads)
        transposed = transpose(gy, w, None, g.stride, pads, out_pad, 1, g.dilation).numpy()
        call = f"conv_transpose{nsp}d(∂L/∂O, K, padding={per_axis(pads)}, {options})"
    else:  # conv_transpose takes one padding per axis; crop an asymmetric one by hand
        transposed = transpose(gy, w, None, g.stride, 0, out_pad, 1, g.dilation).numpy()[crop]
        call = (f"conv_transpose{nsp}d(∂L/∂O, K, padding=0, {options}) cropped by the padding "
                f"{tuple(g.pads)} (asymmetric, so by hand)")
    diff = float(np.max(np.abs(transposed - dx)))
    steps.append(Step("This is the transposed convolution of ∂L/∂O with the same kernel (output_padding restores "
                      f"the input size the stride rounded away); autograd's ∂L/∂I agrees (max difference "
                      f"{roundoff(diff)}).", (f"∂L/∂I = {call}",), channel_matrices("∂L/∂I", dx)))
    return steps


def _zeros(counts) -> str:
    """``1 zero``, ``2 zeros``, ``2×1 zeros``."""
    return f"{per_axis(counts)} zero{'' if len(set(counts)) == 1 and counts[0] == 1 else 's'}"
