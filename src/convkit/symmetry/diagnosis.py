"""Why a layer breaks a symmetry, from its configuration and weights (the reasons of ``report``'s rows).

``diagnose(layer, g, ctx)`` lists, for one group element ``g`` that fails at
the layer's output, what in the layer's settings makes it fail; ``summarise``
counts those reasons over all the failing elements of a row. The reasons:

* zero (or reflect/replicate) padding at the borders, under circular shifts;
* unpadded windows that cannot wrap around (the output is smaller than the input);
* a stride that does not divide the shift the layer receives, or a map
  size that is not a multiple of the stride;
* padding that differs between the two sides (an even kernel with
  ``padding='same'``) or strided windows that leave pixels over at one end,
  under flips and rotations;
* a kernel that is not symmetric under the flip/rotation (from the weights);
* H and W settings that differ, under quarter turns;
* ``Flatten`` of a map larger than 1×1 (positions become separate
  features: from there only invariance can be asked), ``Linear`` on a
  spatial axis, position-dependent ``LayerNorm`` weights.

Layers applied pixel by pixel (activations, normalisations in inference
mode, global pooling) have no reason to give; a layer type not listed is
"not analysed". ``describe`` is the short text of a layer's settings that
the rows show.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from .. import nn
from ..ops._args import ntuple
from ..trace import trace
from .actions import Action

_POINTWISE = (nn.ReLU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.Dropout, nn.Identity, nn.BatchNorm1d,
              nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm2d, nn.GroupNorm, nn.GlobalAvgPool2d)


@dataclass(frozen=True)
class _Axis:
    """One spatial axis of a windowed layer (convolution or pooling)."""

    n: int        # input size
    k: int        # kernel
    s: int        # stride
    d: int        # dilation
    lo: int       # padding before index 0
    hi: int       # padding after the last index
    o: int        # output size

    @property
    def reach(self) -> int:
        return self.d * (self.k - 1)


@dataclass(frozen=True)
class Context:
    """What a layer's diagnosis needs beyond the layer: its call's shapes, where it sits, the group."""

    in_shape: tuple[int, ...]     # the layer's input (batch of one)
    out_shape: tuple[int, ...]    # its output
    stride_in: tuple[int, int]    # product of the strides before the layer
    equivariant_in: bool          # whether equivariance (not invariance) is asked at the input
    atol: float
    points: tuple[Action, ...]    # the distinct rotation/flip parts of the group's elements
    kernel_gaps: dict = field(default_factory=dict, compare=False, repr=False)  # _asymmetry per point, once


def _point_axes(g: Action) -> tuple[tuple[bool, bool], bool]:
    """For H and W, whether the point part of ``g`` reverses it; and whether it swaps H and W."""
    col_h = (g.point * Action(shift=(1, 0))).shift  # where the point part sends a step along H
    col_w = (g.point * Action(shift=(0, 1))).shift
    swapped = col_h[0] == 0
    rev_h = (col_h[1] if swapped else col_h[0]) < 0
    rev_w = (col_w[0] if swapped else col_w[1]) < 0
    return (rev_h, rev_w), swapped


def _shift_at(g: Action, stride_in: tuple[int, int]) -> tuple[int, int] | None:
    """``g``'s shift as seen at the layer's input, or None when an earlier stride does not divide it."""
    (dy, dx), (sy, sx) = g.shift, stride_in
    return None if dy % sy or dx % sx else (dy // sy, dx // sx)


def _axes(layer, ctx: Context) -> list[_Axis]:
    """The H and W axes of a convolution's or pooling's window geometry, as the engine normalises it
    (``Graph.geometry`` of a meta trace of the layer alone on the call's input shape)."""
    graph = trace(layer, ctx.in_shape)
    g = next(geometry for node in graph.nodes if (geometry := graph.geometry(node)) is not None)
    return [_Axis(n, k, s, d, lo, hi, o) for n, k, s, d, (lo, hi), o in
            zip(ctx.in_shape[-2:], g.kernel, g.stride, g.dilation, g.pads, g.output)]


def _window_reasons(axes: list[_Axis], g: Action, ctx: Context, padding_mode: str, what: str,
                    same_even: bool) -> list[str]:
    """Why a convolution or pooling over ``axes`` breaks equivariance to ``g``."""
    reasons = []
    shift = _shift_at(g, ctx.stride_in)
    names = ("H", "W")
    if shift is not None and shift != (0, 0):
        for name, ax, t in zip(names, axes, shift):
            if t == 0:
                continue
            padded = ax.lo + ax.hi > 0
            if g.circular:
                if padded and padding_mode != "circular":
                    kind = {"zeros": "zero", "pooling": "pooling"}.get(padding_mode, repr(padding_mode))
                    reasons.append(f"{kind} padding ({ax.lo}, {ax.hi}) along {name} at the borders: border "
                                   f"outputs see padding, not the pixels a circular shift wraps around")
                elif padding_mode == "circular" and ax.lo + ax.hi != ax.reach:
                    reasons.append(f"circular padding ({ax.lo}, {ax.hi}) along {name} does not make up the "
                                   f"kernel's reach {ax.reach}, so the output map does not wrap like the input")
                elif not padded and ax.reach >= ax.s:
                    reasons.append(f"no padding along {name}: windows of {ax.k} pixels cannot wrap around the "
                                   f"border, so the {ax.o} outputs of the {ax.n}-pixel map do not shift circularly")
                if ax.s > 1 and ax.n % ax.s:
                    reasons.append(f"the {ax.n}-pixel map along {name} is not a multiple of the stride {ax.s}")
            elif padded or ax.reach >= ax.s:
                reasons.append(f"{what} windows along {name} mix the zero fill of the shift with pixels (or "
                               f"padding) at the borders")
            if t % ax.s:
                reasons.append(f"stride {ax.s} along {name} does not divide the shift it receives")
    if g.point != Action():
        (rev_h, rev_w), swapped = _point_axes(g)
        if swapped and (axes[0].k, axes[0].s, axes[0].d, axes[0].lo, axes[0].hi, axes[0].n) != \
                (axes[1].k, axes[1].s, axes[1].d, axes[1].lo, axes[1].hi, axes[1].n):
            reasons.append(f"H and W differ in kernel, stride, dilation, padding or size "
                           f"({_axis_text(axes[0])} vs {_axis_text(axes[1])}), and quarter turns swap them")
        for name, ax, reversed_ in zip(names, axes, (rev_h, rev_w)):
            if not reversed_:
                continue
            if ax.lo != ax.hi:
                if same_even:
                    reasons.append(f"even kernel {ax.k} with padding='same' pads ({ax.lo}, {ax.hi}) along {name}: "
                                   f"asymmetric, so the mirrored output is off by one pixel")
                else:
                    reasons.append(f"padding ({ax.lo}, {ax.hi}) along {name} differs between the two sides")
            extra = ax.n + ax.lo + ax.hi - ((ax.o - 1) * ax.s + ax.reach + 1)
            if extra > 0:
                reasons.append(f"stride-{ax.s} windows leave {extra} pixel(s) of the {ax.n}-pixel map along {name} "
                               f"unused at the end, so mirrored windows do not match")
            elif extra < 0:
                reasons.append(f"the last window along {name} hangs {-extra} pixel(s) over the end (ceil_mode), "
                               f"so mirrored windows do not match")
    return reasons


def _axis_text(ax: _Axis) -> str:
    return f"k={ax.k} s={ax.s} d={ax.d} pad=({ax.lo}, {ax.hi}) n={ax.n}"


def _asymmetry(w: np.ndarray, p: Action) -> float:
    """``max|P▷w − w| / max|w|`` over the kernel's last two axes (inf when ``P`` turns a non-square kernel)."""
    if p.rotation % 2 and w.shape[-2] != w.shape[-1]:
        return np.inf
    scale = float(np.max(np.abs(w))) or 1.0
    return float(np.max(np.abs(p(w).astype(np.float64) - w))) / scale


def _kernel_reason(layer, g: Action, ctx: Context) -> list[str]:
    if g.point == Action():  # a pure shift: every kernel is symmetric under the identity
        return []
    if not ctx.kernel_gaps:  # the same for every element of the row
        w = getattr(layer, "symmetric_weight", layer.weight).data
        ctx.kernel_gaps.update((p, _asymmetry(w, p)) for p in ctx.points)
    gap = ctx.kernel_gaps[g.point]
    if gap <= ctx.atol or gap == np.inf:  # a non-square kernel under quarter turns: the H/W reason covers it
        return []
    worst = max(a for a in ctx.kernel_gaps.values() if np.isfinite(a))
    return [f"kernel not symmetric under the rotations/flips: max|P▷w − w| up to {worst:.1e}·max|w| "
            f"(from the weights)"]


def _conv_reasons(layer: nn.Conv2d, g: Action, ctx: Context) -> list[str]:
    return (_window_reasons(_axes(layer, ctx), g, ctx, layer.padding_mode, "convolution", layer.padding == "same")
            + _kernel_reason(layer, g, ctx))


def _pool_reasons(layer, g: Action, ctx: Context) -> list[str]:
    return _window_reasons(_axes(layer, ctx), g, ctx, "pooling", "pooling", False)


def _adaptive_reasons(layer, g: Action, ctx: Context) -> list[str]:
    reasons = []
    shift = _shift_at(g, ctx.stride_in)
    for name, n, o, t in zip("HW", ctx.in_shape[-2:], ctx.out_shape[-2:], shift or (0, 0)):
        if t and n % o:
            reasons.append(f"adaptive windows over {n} -> {o} pixels along {name} differ in size, so a shift "
                           f"of the input is no shift of the output")
    if g.rotation % 2 and ctx.out_shape[-2] != ctx.out_shape[-1]:
        reasons.append(f"the output map {ctx.out_shape[-2]}x{ctx.out_shape[-1]} is not square")
    return reasons


def _flatten_reasons(layer, g: Action, ctx: Context) -> list[str]:
    if ctx.equivariant_in and len(ctx.in_shape) == 4 and ctx.in_shape[-2] * ctx.in_shape[-1] > 1:
        h, w = ctx.in_shape[-2:]
        return [f"Flatten turns the positions of the {h}x{w} map into separate features: from here only "
                f"invariance can be asked, and the map it receives moves with the input instead of staying put"]
    return []


def _linear_reasons(layer, g: Action, ctx: Context) -> list[str]:
    if len(ctx.in_shape) >= 3:
        return [f"Linear acts on the W axis ({ctx.in_shape[-1]} pixels) with a different weight per position"]
    return []


def _layer_norm_reasons(layer, g: Action, ctx: Context) -> list[str]:
    if len(ctx.in_shape) < 4:
        return []
    if layer.elementwise_affine:
        return [f"LayerNorm's element-wise weight over {layer.normalized_shape} differs per position"]
    if len(layer.normalized_shape) == 1 and (g.rotation % 2):
        return ["LayerNorm normalises each row separately, and a quarter turn swaps rows and columns"]
    return []


_DIAGNOSES = (
    ((nn.Conv2d,), _conv_reasons),
    ((nn.MaxPool2d, nn.AvgPool2d), _pool_reasons),
    ((nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d), _adaptive_reasons),
    ((nn.Flatten,), _flatten_reasons),
    ((nn.Linear,), _linear_reasons),
    ((nn.LayerNorm,), _layer_norm_reasons),
    (_POINTWISE, lambda layer, g, ctx: []),
)


def diagnose(layer, g: Action, ctx: Context) -> list[str] | None:
    """Reasons from the configuration why ``layer`` breaks the symmetry under ``g``; None if not analysed."""
    for types, fn in _DIAGNOSES:
        if isinstance(layer, types):
            return fn(layer, g, ctx)
    if isinstance(layer, (nn.Softmax, nn.LogSoftmax)):
        return [] if layer.dim in (1, -len(ctx.in_shape) + 1) else None
    return None


def summarise(layer, elements: list[Action], ctx: Context, explain: bool) -> tuple[str, ...]:
    """The distinct reasons over failing ``elements``, each with how many of them it covers.

    With ``explain``, elements no reason covers are counted too ("not explained ...").
    """
    counts: Counter[str] = Counter()
    example: dict[str, Action] = {}
    unexplained: list[Action] = []
    analysed = True
    for g in elements:
        found = diagnose(layer, g, ctx)
        analysed = analysed and found is not None
        if not found:
            unexplained.append(g)
        for reason in dict.fromkeys(found or ()):
            counts[reason] += 1
            example.setdefault(reason, g)
    n = len(elements)
    out = [f"{reason} ({count} of {n} failing elements, e.g. {example[reason]!r})" if n > 1 else reason
           for reason, count in counts.items()]
    if explain and unexplained:
        what = (f"{type(layer).__name__} is not analysed" if not analysed
                else "not explained by the layer's configuration")
        out.append(f"{what} ({len(unexplained)} of {n} failing elements, e.g. {unexplained[0]!r})" if n > 1
                   else what)
    return tuple(out)


def describe(layer) -> str:
    """A short description: the settings that matter for symmetry."""
    name = type(layer).__name__
    if isinstance(layer, nn.Conv2d):
        k, s, p = layer.kernel_size, layer.stride, layer.padding
        text = f"{name}({layer.in_channels}->{layer.out_channels}, k={_compact(k)}"
        text += f", s={_compact(s)}" if s != (1, 1) else ""
        text += f", p={p!r}" if isinstance(p, str) else (f", p={_compact(p)}" if p != (0, 0) else "")
        text += f", {layer.padding_mode}" if layer.padding_mode != "zeros" else ""
        return text + ")"
    if isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
        k, s, p = (ntuple(v, 2, arg, name, minimum=0) for v, arg in
                   ((layer.kernel_size, "kernel_size"), (layer.stride, "stride"), (layer.padding, "padding")))
        text = f"{name}(k={_compact(k)}, s={_compact(s)}"
        text += f", p={_compact(p)}" if p != (0, 0) else ""
        return text + (", ceil_mode" if layer.ceil_mode else "") + ")"
    if isinstance(layer, nn.Linear):
        return f"{name}({layer.in_features}->{layer.out_features})"
    if isinstance(layer, nn.Flatten) and (layer.start_dim, layer.end_dim) == (1, -1):
        return "Flatten()"
    text = repr(layer)
    return text if len(text) <= 40 and "\n" not in text else name


def _compact(pair) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"

