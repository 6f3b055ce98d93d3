"""Max and average pooling, forward and backward, window by window (1-D and 2-D).

* max pooling: each window's maximum, where it sits (the first maximum wins
  a tie, as in PyTorch), the input with the winners marked, and the
  gradient routed only to the winners;
* average pooling: each window's sum over its divisor ``D`` (``k²`` for a
  full ``k×k`` window, fewer when ``count_include_pad=False`` or ``ceil_mode``
  clips it), and the gradient spread evenly, ``∂L/∂O/D`` to every cell.

Windows come from the engine's padded input and window view
(``ops.pooling.pool_geometry``, ``ops.windows``), outputs, winners and
gradients from ``F.max_pool*d``/``F.avg_pool*d`` and autograd.

>>> e = max_pool2d([[1, 3, 0, 1], [2, 4, 1, 5], [0, 1, 2, 2], [1, 0, 3, 1]], 2)
>>> e.result["output"]
array([[[4., 5.],
        [1., 3.]]])
>>> print(e.steps[2].formulas[0])
O[0,0] = max(1, 3, 2, 4) = 4, at I[1,1]
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from ..ops._args import ntuple
from ..ops.pooling import avg_divisors, pool_geometry
from ..tensor import tensor
from .correlation import OUT_INDEX
from .explanation import Explanation, Step, fmt
from .figures import Frame, Frames, Mark, cell_of, running_sums
from .geometry import WindowGeometry, pad, padding_cells, window_cells, window_view
from .operands import AXES, channel_matrices, extent, like_output, operand_shape, per_axis, plural, spatial_input
from .sums import MAX_FRAMES, cells, cells_note, frame_cells, join_terms

__all__ = ["max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d"]


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, *,
               grad_output=None) -> Explanation:
    """Explain ``F.max_pool1d`` and its backward on ``input (L,)`` or ``(C, L)``.

    Args:
        kernel_size, stride, padding, dilation, ceil_mode: as ``F.max_pool1d``
            (stride defaults to ``kernel_size``).
        grad_output: ``∂L/∂O`` shaped like the output. Default: None (all ones, ``L = Σ O``).

    Returns an ``Explanation`` whose ``result`` is a dict: ``output``, ``indices``
    (flat position of each window's winner), ``grad_output`` and ``grad_input``.
    """
    return _max(1, input, kernel_size, stride, padding, dilation, ceil_mode, grad_output)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, *,
               grad_output=None) -> Explanation:
    """Explain ``F.max_pool2d`` and its backward on ``input (H, W)`` or ``(C, H, W)``.

    Args:
        kernel_size, stride, padding, dilation, ceil_mode: as ``F.max_pool2d``
            (stride defaults to ``kernel_size``).
        grad_output: ``∂L/∂O`` shaped like the output. Default: None (all ones, ``L = Σ O``).

    Returns an ``Explanation`` whose ``result`` is a dict: ``output``, ``indices``
    (flat position of each window's winner in its input plane), ``grad_output`` and ``grad_input``.
    """
    return _max(2, input, kernel_size, stride, padding, dilation, ceil_mode, grad_output)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True, *,
               grad_output=None) -> Explanation:
    """Explain ``F.avg_pool1d`` and its backward on ``input (L,)`` or ``(C, L)``.

    Args:
        kernel_size, stride, padding, ceil_mode, count_include_pad: as ``F.avg_pool1d``.
        grad_output: ``∂L/∂O`` shaped like the output. Default: None (all ones, ``L = Σ O``).

    Returns an ``Explanation`` whose ``result`` is a dict: ``output``, ``divisors``,
    ``grad_output`` and ``grad_input``.
    """
    return _avg(1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None, grad_output)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None, *, grad_output=None) -> Explanation:
    """Explain ``F.avg_pool2d`` and its backward on ``input (H, W)`` or ``(C, H, W)``.

    Args:
        kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override: as ``F.avg_pool2d``.
        grad_output: ``∂L/∂O`` shaped like the output. Default: None (all ones, ``L = Σ O``).

    Returns an ``Explanation`` whose ``result`` is a dict: ``output``, ``divisors``,
    ``grad_output`` and ``grad_input``.
    """
    return _avg(2, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, grad_output)


def _windows(x, nsp, op, kernel_size, stride, padding, dilation, ceil_mode, fill):
    """Geometry as the engine normalises it, the padded input and its windows ``(C, *out, *k)``."""
    kernel = ntuple(kernel_size, nsp, "kernel_size", op)
    stride_t = kernel if stride is None else ntuple(stride, nsp, "stride", op)
    padding_t = ntuple(padding, nsp, "padding", op, minimum=0)
    dilation_t = ntuple(dilation, nsp, "dilation", op)
    out, pads = pool_geometry(x.shape[1:], kernel, stride_t, padding_t, dilation_t, bool(ceil_mode))
    g = WindowGeometry(kernel, stride_t, pads, dilation_t)
    xp = pad(x, pads, value=fill)
    return g, padding_t, out, xp, window_view(xp, g)


def _size_step(spatial, g: WindowGeometry, padding, out, ceil_mode: bool) -> Step:
    """``o = ⌊(n + 2p − d(k − 1) − 1)/s⌋ + 1`` per axis (⌈…⌉ in ceil mode, with PyTorch's last-window rule)."""
    lo, hi = ("⌈", "⌉") if ceil_mode else ("⌊", "⌋")
    formulas = []
    for axis, n, k, s, p, d, o in zip(AXES[len(spatial)], spatial, g.kernel, g.stride, padding, g.dilation, out):
        raw = -(-(n + 2 * p - d * (k - 1) - 1) // s) + 1 if ceil_mode else o
        text = f"{axis}: {lo}({n} + 2·{p} − {d}·({k} − 1) − 1)/{s}{hi} + 1 = {raw}"
        if raw != o:
            text += (f", but window {raw - 1} would start at {(raw - 1) * s} − {p} ≥ {n}, in the right padding, "
                     f"so it is dropped: {o}")
        formulas.append(text)
    rule = (" ceil_mode rounds up, keeping a last partial window unless it would start in the right padding."
            if ceil_mode else "")
    overlap = any(s < d * (k - 1) + 1 for k, s, d in zip(g.kernel, g.stride, g.dilation))
    return Step(f"The output size along each axis is `o = {lo}(n + 2p − d(k − 1) − 1)/s{hi} + 1`, as for a "
                f"convolution (the stride defaults to the window size); with stride {per_axis(g.stride)} the "
                f"windows {'overlap' if overlap else 'do not overlap'}.{rule}", tuple(formulas))


def _window_frames(xp, g: WindowGeometry, out, view, caption, winner=None) -> Frames:
    """Per output cell: its window over ``xp``, the values read with their running max (when ``winner``
    gives the padded position of a cell's maximum) or running sum, and the cell; ``caption(cell)`` its formula."""
    channels = xp.shape[0]
    stage = channel_matrices("I_p" if g.padded else "I", xp) + channel_matrices("O", out)
    frames = []
    for cell in frame_cells(out.shape):
        c, y = cell[0], cell[1:]
        window = window_cells(y, g)
        marks = [Mark(c, "window", window), Mark(channels + c, "out", (cell_of(y),))]
        values = view[cell].ravel()
        if winner is None:
            running = running_sums(values)
        else:
            marks.append(Mark(c, "win", (cell_of(winner(cell)),)))
            running = tuple(float(v) for v in np.maximum.accumulate(values))
        frames.append(Frame(caption(cell), tuple(marks), tuple(fmt(v) for v in values), running))
    fixed = tuple(Mark(c, "pad", padding_cells(xp.shape[1:], g.pads)) for c in range(channels)) if g.padded else ()
    return Frames(stage, tuple(frames), "running sum" if winner is None else "running max", fixed)


def _routing_frames(gy, dx, marked, routes) -> Frames:
    """Per input cell: the output cells whose gradient reaches it, the shares with their running sum, the cell.

    ``routes`` holds ``(input cell, formula, output cells, share texts, share values)``.
    """
    channels = gy.shape[0]
    stage = channel_matrices("∂L/∂O", gy) + channel_matrices("∂L/∂I", dx, marked)
    frames = tuple(Frame(formula, (Mark(cell[0], "grad", tuple(cell_of(o[1:]) for o in sources)),
                                   Mark(channels + cell[0], "out", (cell_of(cell[1:]),))),
                         tuple(terms), running_sums(values))
                   for cell, formula, sources, terms, values in routes)
    return Frames(stage, frames, "running sum")


def _label(name: str, cell, channels: int) -> str:
    """``name[y,x]`` for a cell ``(c, y, x)``, with ``c`` only when there are several channels."""
    idx = cell if channels > 1 else cell[1:]
    return f"{name}[{','.join(str(i) for i in idx)}]"


def _max(nsp, input, kernel_size, stride, padding, dilation, ceil_mode, grad_output) -> Explanation:
    op = f"max_pool{nsp}d"
    x = spatial_input(input, nsp, op)
    xt = tensor(x, requires_grad=True)
    out_t, idx_t = getattr(F, op)(xt, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)
    out, indices = out_t.numpy(), idx_t.numpy()
    g, padding_t, _, xp, view = _windows(x, nsp, op, kernel_size, stride, padding, dilation, ceil_mode, -np.inf)
    gy = np.ones(out.shape) if grad_output is None else like_output(grad_output, out.shape, "grad_output", op)
    out_t.backward(gy)
    dx = xt.grad
    spatial = x.shape[1:]
    steps = [Step(f"The input I: {plural(x.shape[0], 'channel')} of {extent(spatial)}; windows of "
                  f"{extent(g.kernel)}, stride {per_axis(g.stride)}"
                  f"{f', dilation {per_axis(g.dilation)}' if max(g.dilation) > 1 else ''}.",
                  value=channel_matrices("I", x))]
    if max(padding_t) > 0:
        steps.append(Step("Padding adds −inf around the input (never a maximum), "
                          f"{per_axis(padding_t)} on each side.", value=channel_matrices("I_p", xp)))
    steps.append(_size_step(spatial, g, padding_t, out.shape[1:], bool(ceil_mode)))
    def winner(cell) -> tuple[int, ...]:
        return tuple(int(i) for i in np.unravel_index(int(indices[cell]), spatial))

    def max_formula(cell) -> str:
        values = ", ".join(fmt(v) for v in view[cell].ravel())
        return (f"{_label('O', cell, x.shape[0])} = max({values}) = {fmt(out[cell])}, "
                f"at {_label('I', (cell[0],) + winner(cell), x.shape[0])}")

    def padded_winner(cell) -> tuple[int, ...]:
        return tuple(i + lo for i, (lo, _) in zip(winner(cell), g.pads))

    steps.append(Step("Each output cell is the maximum of its window; the position of the maximum is kept for the "
                      f"backward pass (the first one wins a tie, as in PyTorch).{cells_note(out.shape)}",
                      tuple(max_formula(cell) for cell in cells(out.shape)), channel_matrices("O", out),
                      _window_frames(xp, g, out, view, max_formula, padded_winner)))
    marked = np.zeros(x.shape, dtype=bool)
    for c in range(x.shape[0]):
        marked[c].flat[np.unique(indices[c])] = True
    steps.append(Step("The input with every window's winner marked *:", value=channel_matrices("I", x, marked)))
    received: dict[tuple, list[str]] = {}
    for cell in np.ndindex(*out.shape):
        where = (cell[0],) + tuple(np.unravel_index(int(indices[cell]), spatial))
        received.setdefault(where, []).append(cell)
    routes = []
    for where in sorted(received)[:MAX_FRAMES]:
        sources = received[where]
        terms = " + ".join(_label("∂L/∂O", c, x.shape[0]) for c in sources)
        routes.append((where, f"{_label('∂L/∂I', where, x.shape[0])} = {terms} = {fmt(dx[where])}", sources,
                       [fmt(gy[c]) for c in sources], [gy[c] for c in sources]))
    grad_formulas = [route[1] for route in routes[:16]]
    more = (f" ({len(received) - 16} more winners follow the same rule.)" if len(received) > 16 else "")
    grad_cell = _label("∂L/∂O", ("c",) + OUT_INDEX[nsp], 1)
    steps.append(Step(f"Backward: the maximum passes `{grad_cell}` to its window's winner only; every other input "
                      "cell gets 0, and a cell that wins several windows adds their gradients."
                      f"{'' if grad_output is not None else ' Here ∂L/∂O = 1 everywhere (L = Σ O).'}{more}",
                      tuple(grad_formulas), channel_matrices("∂L/∂O", gy) + channel_matrices("∂L/∂I", dx, marked),
                      _routing_frames(gy, dx, marked, routes)))
    title = (f"{op}: windows of {extent(g.kernel)}, stride {per_axis(g.stride)}, over a {operand_shape(x, 1)} input"
             + (f", padding {per_axis(padding_t)}" if max(padding_t) else "")
             + (f", dilation {per_axis(g.dilation)}" if max(g.dilation) > 1 else "")
             + (", ceil_mode" if ceil_mode else ""))
    return Explanation(title, steps, {"output": out, "indices": indices, "grad_output": gy, "grad_input": dx})


def _avg(nsp, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override,
         grad_output) -> Explanation:
    op = f"avg_pool{nsp}d"
    x = spatial_input(input, nsp, op)
    xt = tensor(x, requires_grad=True)
    extra = () if nsp == 1 else (divisor_override,)
    out_t = getattr(F, op)(xt, kernel_size, stride, padding, ceil_mode, count_include_pad, *extra)
    out = out_t.numpy()
    g, padding_t, _, xp, view = _windows(x, nsp, op, kernel_size, stride, padding, 1, ceil_mode, 0.0)
    divisors = avg_divisors(x.shape[1:], g.kernel, g.stride, padding_t, out.shape[1:], bool(count_include_pad),
                            divisor_override, x.dtype)
    gy = np.ones(out.shape) if grad_output is None else like_output(grad_output, out.shape, "grad_output", op)
    out_t.backward(gy)
    dx = xt.grad
    spatial = x.shape[1:]
    full = int(np.prod(g.kernel))
    steps = [Step(f"The input I: {plural(x.shape[0], 'channel')} of {extent(spatial)}; windows of {extent(g.kernel)}, "
                  f"stride {per_axis(g.stride)}.", value=channel_matrices("I", x))]
    if max(padding_t) > 0:
        counted = ("count in the divisor (count_include_pad=True)" if count_include_pad else
                   "do not count in the divisor (count_include_pad=False)")
        steps.append(Step(f"Padding adds zeros around the input, {per_axis(padding_t)} on each side; they add "
                          f"nothing to a sum and {counted}.", value=channel_matrices("I_p", xp)))
    steps.append(_size_step(spatial, g, padding_t, out.shape[1:], bool(ceil_mode)))
    def avg_formula(cell) -> str:
        terms = join_terms([fmt(v) for v in view[cell].ravel()], "terms")
        return f"{_label('O', cell, x.shape[0])} = ({terms})/{fmt(divisors[cell[1:]])} = {fmt(out[cell])}"

    divisor_text = (f"divisor_override={divisor_override}" if divisor_override is not None else
                    f"D = {full} for a full window; a window clipped by ceil_mode"
                    + (" or by the padding" if not count_include_pad else "") + " counts only its cells")
    steps.append(Step(f"Each output cell is the average of its window: its sum divided by D ({divisor_text})."
                      f"{cells_note(out.shape)}", tuple(avg_formula(cell) for cell in cells(out.shape)),
                      channel_matrices("O", out), _window_frames(xp, g, out, view, avg_formula)))

    def spread(cell):
        """``(cell, formula, windows, shares, their values)`` of one input cell's gradient."""
        windows, shares = [], []
        for tap in reversed(list(np.ndindex(*g.kernel))):  # the windows o with o·s − p + t = i, in order
            o = [(i + lo - t) / s for i, (lo, _), t, s in zip(cell[1:], g.pads, tap, g.stride)]
            if all(v.is_integer() and 0 <= v < n for v, n in zip(o, out.shape[1:])):
                windows.append((cell[0],) + tuple(int(v) for v in o))
                shares.append(f"{fmt(gy[windows[-1]])}/{fmt(divisors[windows[-1][1:]])}")
        formula = f"{_label('∂L/∂I', cell, x.shape[0])} = {' + '.join(shares or ['0'])} = {fmt(dx[cell])}"
        return cell, formula, windows, shares, [gy[w] / divisors[w[1:]] for w in windows]

    grad_formulas = [spread(cell)[1] for cell in cells(x.shape)]
    grad_cell = _label("∂L/∂O", ("c",) + OUT_INDEX[nsp], 1)
    square = nsp == 2 and g.kernel[0] == g.kernel[1]
    share = f"1/{g.kernel[0]}² = 1/{full}" if square else f"1/{full}"
    steps.append(Step(f"Backward: each window spreads its gradient evenly, `{grad_cell}/D` to each of its cells "
                      f"({share} of it for a full window); where windows overlap the shares add."
                      f"{'' if grad_output is not None else ' Here ∂L/∂O = 1 everywhere (L = Σ O).'}"
                      f"{cells_note(x.shape, 'input')}",
                      tuple(grad_formulas), channel_matrices("∂L/∂O", gy) + channel_matrices("∂L/∂I", dx),
                      _routing_frames(gy, dx, None, [spread(cell) for cell in frame_cells(x.shape)])))
    title = (f"{op}: windows of {extent(g.kernel)}, stride {per_axis(g.stride)}, over a {operand_shape(x, 1)} input"
             + (f", padding {per_axis(padding_t)}" if max(padding_t) else "")
             + (", ceil_mode" if ceil_mode else "") + ("" if count_include_pad else ", count_include_pad=False"))
    return Explanation(title, steps, {"output": out, "divisors": divisors, "grad_output": gy, "grad_input": dx})
