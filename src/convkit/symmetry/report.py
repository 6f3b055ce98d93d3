"""Layer-by-layer symmetry report of any model: where equivariance breaks, by how much, and why.

``report(model, group, input_size)`` runs the model on a seeded random
input and on its transforms ``g▷x`` for every ``g`` in the group, with a
forward hook on every leaf module (one without children), keeping the
input and the output of each call, in the order the model's ``forward``
makes them: a ``Sequential`` gives its layers in order, a branching model
(residual sums, concatenations, functional calls between modules) its calls
as they happen. For each call it measures, per element, the equivariance
error of the output (while it still has a spatial map larger than 1×1; a
shift is divided by the input's size over the map's, the stride so far)
or, once the map is gone (``Flatten``, ``Linear`` heads, global pooling),
the invariance error, as ``convkit.symmetry.check`` does.

A layer **breaks** the symmetry when some element fails at the output of
its call but not at its input. The report then says why, from the layer's
configuration and weights:

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

The model runs in inference mode (``eval()``; its previous modes are
restored) and in its own dtype, which sets the tolerance
(``checks.default_tolerance``).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from .. import _html, nn
from ..autograd import no_grad
from ..nn.module import Module, Sequential
from ..ops._args import is_int, ntuple, same_pads
from ..tensor import get_default_dtype
from .actions import Action
from .checks import _relative, _scale, _values, default_tolerance, element_error
from .groups import Group

__all__ = ["report", "SymmetryReport", "LayerReport"]

_POINTWISE = (nn.ReLU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.Dropout, nn.Identity, nn.BatchNorm1d,
              nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm2d, nn.GroupNorm, nn.GlobalAvgPool2d)


# ---------------------------------------------------------------- the calls
@dataclass(frozen=True)
class _Call:
    """One call of a leaf module during a forward pass: its name, the module, its input and output arrays."""

    name: str
    layer: Module
    x: np.ndarray
    y: np.ndarray


def _leaves(model) -> list[tuple[str, Module]]:
    """The modules without children, with dotted names (the model itself when it has none)."""
    if not isinstance(model, Module):
        raise TypeError(f"report: model must be a convkit.nn.Module, got {type(model).__name__}")
    leaves = [(name, m) for name, m in model.named_modules() if not any(True for _ in m.children())]
    if not leaves or (leaves == [("", model)] and isinstance(model, Sequential)):
        raise ValueError("report: model is an empty Sequential; there is no layer to check")
    return leaves


def _calls(model, leaves, x) -> list[_Call]:
    """The leaf modules' calls while ``model`` runs on ``x``, in order, with their inputs and outputs.

    When the model's output is not the last call's (``forward`` computes after it: a residual sum, say), a
    last entry named ``(output)`` holds it, with the last call's output as its input.
    """
    calls: list[_Call] = []
    started: list[tuple[str, Module, tuple]] = []  # calls begun and not yet finished, innermost last

    def starting(name: str):
        def hook(layer, args):
            started.append((name, layer, tuple(np.shape(args[0]))))
        return hook

    def recorder(name: str):
        def hook(layer, args, output):
            started.pop()
            calls.append(_Call(name, layer, _values(args[0], f"report: the input of {name}"),
                               _values(output, f"report: layer {name}")))
        return hook

    handles = []
    for name, m in leaves:
        name = name or type(m).__name__
        handles += [m.register_forward_pre_hook(starting(name)), m.register_forward_hook(recorder(name))]
    try:
        output = _values(model(x), f"report: {type(model).__name__}")
    except (ValueError, TypeError) as e:
        if not started:
            raise ValueError(f"report: {type(model).__name__}'s forward failed on an input of shape "
                             f"{tuple(np.shape(x))}: {e}") from e
        name, layer, shape = started[-1]
        raise ValueError(f"report: layer {len(calls)} ({name}: {_describe(layer)}) failed on an input of shape "
                         f"{shape}: {e}") from e
    finally:
        for handle in handles:
            handle.remove()
    if calls and output is not calls[-1].y:
        calls.append(_Call("(output)", model, calls[-1].y, output))
    return calls


# ------------------------------------------------------------- diagnosis
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
class _Context:
    in_shape: tuple[int, ...]     # the layer's input (batch of one)
    out_shape: tuple[int, ...]    # its output
    stride_in: tuple[int, int]    # product of the strides before the layer
    equivariant_in: bool          # whether equivariance (not invariance) is asked at the input
    atol: float
    points: tuple[Action, ...]    # the distinct rotation/flip parts of the group's elements


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


def _axes(ctx: _Context, kernel, stride, dilation, pads) -> list[_Axis]:
    return [_Axis(n, k, s, d, lo, hi, o) for n, k, s, d, (lo, hi), o in
            zip(ctx.in_shape[-2:], kernel, stride, dilation, pads, ctx.out_shape[-2:])]


def _window_reasons(axes: list[_Axis], g: Action, ctx: _Context, padding_mode: str, what: str,
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


def _kernel_reason(layer, g: Action, ctx: _Context) -> list[str]:
    w = getattr(layer, "symmetric_weight", layer.weight).data
    gap = _asymmetry(w, g.point)
    if gap <= ctx.atol or gap == np.inf:  # a non-square kernel under quarter turns: the H/W reason covers it
        return []
    worst = max(a for p in ctx.points if np.isfinite(a := _asymmetry(w, p)))
    return [f"kernel not symmetric under the rotations/flips: max|P▷w − w| up to {worst:.1e}·max|w| "
            f"(from the weights)"]


def _conv_reasons(layer: nn.Conv2d, g: Action, ctx: _Context) -> list[str]:
    if layer.padding == "valid":
        pads = ((0, 0), (0, 0))
    elif layer.padding == "same":
        pads = same_pads(layer.kernel_size, layer.dilation)
    else:
        pads = tuple((p, p) for p in layer.padding)
    same_even = layer.padding == "same"
    axes = _axes(ctx, layer.kernel_size, layer.stride, layer.dilation, pads)
    return (_window_reasons(axes, g, ctx, layer.padding_mode, "convolution", same_even)
            + _kernel_reason(layer, g, ctx))


def _pool_reasons(layer, g: Action, ctx: _Context) -> list[str]:
    name = type(layer).__name__
    kernel = ntuple(layer.kernel_size, 2, "kernel_size", name)
    stride = ntuple(layer.stride, 2, "stride", name)
    padding = ntuple(layer.padding, 2, "padding", name, minimum=0)
    dilation = ntuple(getattr(layer, "dilation", 1), 2, "dilation", name)
    axes = _axes(ctx, kernel, stride, dilation, [(p, p) for p in padding])
    return _window_reasons(axes, g, ctx, "pooling", "pooling", False)


def _adaptive_reasons(layer, g: Action, ctx: _Context) -> list[str]:
    reasons = []
    shift = _shift_at(g, ctx.stride_in)
    for name, n, o, t in zip("HW", ctx.in_shape[-2:], ctx.out_shape[-2:], shift or (0, 0)):
        if t and n % o:
            reasons.append(f"adaptive windows over {n} -> {o} pixels along {name} differ in size, so a shift "
                           f"of the input is no shift of the output")
    if g.rotation % 2 and ctx.out_shape[-2] != ctx.out_shape[-1]:
        reasons.append(f"the output map {ctx.out_shape[-2]}x{ctx.out_shape[-1]} is not square")
    return reasons


def _flatten_reasons(layer, g: Action, ctx: _Context) -> list[str]:
    if ctx.equivariant_in and len(ctx.in_shape) == 4 and ctx.in_shape[-2] * ctx.in_shape[-1] > 1:
        h, w = ctx.in_shape[-2:]
        return [f"Flatten turns the positions of the {h}x{w} map into separate features: from here only "
                f"invariance can be asked, and the map it receives moves with the input instead of staying put"]
    return []


def _linear_reasons(layer, g: Action, ctx: _Context) -> list[str]:
    if len(ctx.in_shape) >= 3:
        return [f"Linear acts on the W axis ({ctx.in_shape[-1]} pixels) with a different weight per position"]
    return []


def _layer_norm_reasons(layer, g: Action, ctx: _Context) -> list[str]:
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


def _diagnose(layer, g: Action, ctx: _Context) -> list[str] | None:
    """Reasons from the configuration why ``layer`` breaks the symmetry under ``g``; None if not analysed."""
    for types, fn in _DIAGNOSES:
        if isinstance(layer, types):
            return fn(layer, g, ctx)
    if isinstance(layer, (nn.Softmax, nn.LogSoftmax)):
        return [] if layer.dim in (1, -len(ctx.in_shape) + 1) else None
    return None


def _layer_stride(layer, in_shape, out_shape) -> tuple[int, int]:
    """How much the layer shrinks the grid: its stride, else the size ratio where it divides exactly."""
    if isinstance(layer, nn.Conv2d):
        return tuple(layer.stride)
    if isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
        return ntuple(layer.stride, 2, "stride", type(layer).__name__)
    return _ratio(in_shape, out_shape) if len(in_shape) == 4 else (1, 1)


# ---------------------------------------------------------------- results
@dataclass(frozen=True)
class LayerReport:
    """One prefix of the model: the layer that ends it and what holds at its output.

    Attributes:
        index (int): position in the flattened chain.
        name (str): dotted name in the model (``"features.0"``).
        layer (str): short description of the layer.
        output_shape (tuple): the prefix's output shape for the batch of one.
        kind (str): ``"equivariance"`` or ``"invariance"`` (once the spatial map is gone).
        max_error (float): the largest relative error over the group.
        failing (int): how many group elements exceed the tolerance.
        status (str): ``"holds"``, ``"breaks"`` (new failures at this layer),
            ``"inherited"`` (failures already present at its input) or
            ``"restored"`` (holds again after failing at its input).
        reasons (tuple[str, ...]): why the layer breaks the symmetry, from its configuration; for
            ``"inherited"`` rows, what would break it even if its input kept the symmetry.
    """

    index: int
    name: str
    layer: str
    output_shape: tuple[int, ...]
    kind: str
    max_error: float
    failing: int
    status: str
    reasons: tuple[str, ...]

    @property
    def holds(self) -> bool:
        return self.failing == 0


@dataclass(frozen=True)
class SymmetryReport:
    """The result of ``report``: one ``LayerReport`` per call; ``str()`` renders a table.

    ``checked`` is how many group elements were run: all ``group_size`` of
    them, or a random sample of them (``sampled``); the rows' ``failing``
    counts are out of ``checked``.
    """

    model: str
    group: str
    group_size: int
    input_shape: tuple[int, ...]
    dtype: np.dtype
    seed: int
    atol: float
    rows: tuple[LayerReport, ...]
    checked: int = 0

    @property
    def sampled(self) -> bool:
        """Whether only a random sample of the group was checked."""
        return 0 < self.checked < self.group_size

    @property
    def holds(self) -> bool:
        """Whether the whole model keeps the symmetry (its last prefix holds)."""
        return self.rows[-1].holds

    @property
    def breaks(self) -> list[LayerReport]:
        """The layers that break the symmetry, in order."""
        return [r for r in self.rows if r.status == "breaks"]

    def __repr__(self) -> str:
        where = ", ".join(f"{r.index} ({r.layer})" for r in self.breaks) or "nowhere"
        return (f"SymmetryReport({self.model} under {self.group}: "
                f"{'holds' if self.holds else 'broken'}; breaks at {where})")

    def __str__(self) -> str:
        table = [_COLUMNS] + self._cells()
        widths = [max(len(row[i]) for row in table) for i in range(len(_COLUMNS))]
        lines = [self._heading(), ""]
        for row in table:
            lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        return "\n".join(lines + [""] + self._reasons() + [self._verdict()])

    def to_dict(self) -> dict:
        """Every field as JSON-ready data: the settings, ``holds``, the verdict and one dict per row."""
        return {"model": self.model, "group": self.group, "group_size": self.group_size, "checked": self.checked,
                "input_shape": list(self.input_shape), "dtype": str(self.dtype), "seed": self.seed, "atol": self.atol,
                "holds": self.holds, "verdict": self._verdict(),
                "rows": [{"index": r.index, "name": r.name, "layer": r.layer, "output_shape": list(r.output_shape),
                          "kind": r.kind, "max_error": r.max_error, "failing": r.failing, "status": r.status,
                          "reasons": list(r.reasons)} for r in self.rows]}

    def _repr_html_(self) -> str:
        """The same table, reasons and verdict as ``str()``, as HTML (what a notebook shows)."""
        return _html.table(_COLUMNS, self._cells(), caption=self._heading(), notes=self._reasons() + [self._verdict()])

    def _heading(self) -> str:
        checked = f", {self.checked} sampled at random" if self.sampled else ""
        return (f"{self.model} under {self.group} ({self.group_size} elements{checked}), input "
                f"{'x'.join(map(str, self.input_shape))} {self.dtype}, seed {self.seed}, tolerance {self.atol:.0e}")

    def _cells(self) -> list[tuple[str, ...]]:
        return [(str(r.index), r.layer, "x".join(map(str, r.output_shape[1:])), r.kind, f"{r.max_error:.1e}",
                 f"{r.failing}/{self.checked}", r.status) for r in self.rows]

    def _reasons(self) -> list[str]:
        lines = []
        for r in self.rows:
            also = "already broken at its input, and also: " if r.status == "inherited" else ""
            lines += [f"layer {r.index} ({r.layer}): {also}{reason}" for reason in r.reasons]
        return lines

    def _verdict(self) -> str:
        final = self.rows[-1]
        if self.holds:
            return (f"verdict: the model is {'invariant' if final.kind == 'invariance' else 'equivariant'} "
                    f"under {self.group} (largest error {final.max_error:.1e})" + self._confidence(0))
        first = self.breaks[0] if self.breaks else final
        return (f"verdict: {final.kind} fails under {self.group}: first broken at layer {first.index} ({first.layer})"
                + self._confidence(final.failing))

    def _confidence(self, failing: int) -> str:
        """For a sample, what it says of the whole group, at 95 % confidence (nothing when all were checked).

        No failure in ``n``: at most ``3/n`` of the group fails (the rule of
        three); else the Wilson score interval of the failing fraction.
        """
        if not self.sampled:
            return ""
        n = self.checked
        if failing == 0:
            return (f"; {n} of the {self.group_size} elements sampled: with 95 % confidence at most "
                    f"{min(1.0, 3 / n):.1%} of the group fails")
        p, z = failing / n, 1.96
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return (f"; {failing} of {n} sampled elements fail: {max(0.0, centre - half):.1%} to "
                f"{min(1.0, centre + half):.1%} of the group, at 95 % confidence")


_COLUMNS = ("#", "layer", "output", "check", "max error", "fails", "verdict")


def _describe(layer) -> str:
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


# ------------------------------------------------------------------- run
def _check_input_size(input_size) -> tuple[int, int, int]:
    if (not isinstance(input_size, (tuple, list)) or len(input_size) != 3
            or not all(is_int(v) and v >= 1 for v in input_size)):
        raise ValueError(f"report: input_size must be (C, H, W), three positive ints, got {input_size!r}")
    return tuple(int(v) for v in input_size)


def _check_group(group, shape) -> tuple[str, tuple[Action, ...]]:
    if isinstance(group, Group):
        if group.grid is not None and group.grid != tuple(shape[-2:]):
            raise ValueError(
                f"report: group {group.name} is for a {group.grid[0]}x{group.grid[1]} map, but the input "
                f"is {shape[-2]}x{shape[-1]} (input shape {shape})"
            )
        name, elements = group.name, tuple(group)
    else:
        elements = tuple(group)
        name = f"{len(elements)} actions"
    for i, g in enumerate(elements):
        if not isinstance(g, Action):
            raise TypeError(f"report: group element {i} must be an Action, got {type(g).__name__}")
        g.check_fits(shape, "the input")
    if not elements:
        raise ValueError("report: group has no elements")
    return name, elements


def _strides(calls: list[_Call], input_shape) -> list[tuple[int, int]]:
    """The stride so far of each call's input and output (rows ``2i``, ``2i+1``).

    A call's output stride is its input's times the layer's own (``_layer_stride``); its input's is that
    of the earlier call whose output it is, else (an array a functional op made) the model input's size
    over the array's, where it divides.
    """
    known: dict[int, tuple[int, int]] = {}
    out = []
    for call in calls:
        s_in = known.get(id(call.x))
        if s_in is None:
            s_in = _ratio(input_shape, call.x.shape)
        s = _layer_stride(call.layer, call.x.shape, call.y.shape)
        s_out = (s_in[0] * s[0], s_in[1] * s[1])
        known[id(call.y)] = s_out
        out += [s_in, s_out]
    return out


def _ratio(input_shape, shape) -> tuple[int, int]:
    """``input_shape``'s spatial size over a map's of ``shape``, per axis, where it divides (else 1)."""
    if len(shape) != 4:
        return (1, 1)
    return tuple(i // o if o and i % o == 0 else 1 for i, o in zip(input_shape[-2:], shape[-2:]))


def _equivariant(shape) -> bool:
    """Whether equivariance (rather than invariance) is asked of an array of ``shape``: a map larger than 1x1."""
    return len(shape) == 4 and shape[-2] * shape[-1] > 1


def _errors(layer_outs, base, elements, strides, equivariant, scales) -> np.ndarray:
    """``(arrays, elements)`` relative errors of the calls' arrays for a batch of transformed inputs."""
    errs = np.empty((len(base), len(elements)))
    for li, (y_all, y, stride, eq, scale) in enumerate(zip(layer_outs, base, strides, equivariant, scales)):
        for j, g in enumerate(elements):
            y_g = y_all[j:j + 1]
            if not eq:
                errs[li, j] = _relative(y_g.astype(np.float64) - y, scale)
                continue
            try:
                errs[li, j] = element_error(y, y_g, g, stride, scale, "report")[0]
            except ValueError:  # the output map no longer fits the action (e.g. not square)
                errs[li, j] = np.inf
    return errs


SAMPLES = 1024             # group elements checked when the group has more (then drawn at random)
BATCH_BYTES = 256 << 20    # recorded arrays per batch of transformed inputs, at most (about)


def report(model, group, input_size, *, seed: int = 0, atol: float | None = None,
           batch_size: int | None = None, samples: int | None = SAMPLES) -> SymmetryReport:
    """Check the output of every leaf module's call in ``model`` for equivariance (then invariance) to ``group``.

    Args:
        model (nn.Module): the network: a ``Sequential`` or any module whose ``forward`` calls its layers.
        group (Group or iterable of Action): the symmetry to check (e.g. ``Shifts(28, 28)``, ``D4``).
        input_size (tuple[int, int, int]): ``(C, H, W)`` of one input.
        seed (int): seed of the random normal input (the weights are the model's). Default: 0.
        atol (float or None): tolerance on each relative error. Default: by the model's dtype
            (``checks.default_tolerance``).
        batch_size (int or None): how many transformed inputs run at once. Default: as many as keep
            the recorded inputs and outputs of all calls under ``BATCH_BYTES`` (at most 64).
        samples (int or None): check at most this many group elements, drawn at random (with ``seed``)
            when the group is larger, and say what the sample shows of the whole group at 95 %
            confidence; None: every element. Default: ``SAMPLES`` (1024: every shift of a 32x32 map).

    Returns:
        SymmetryReport: ``rows`` per layer (error, status, reasons); ``str()`` is a table.
    """
    leaves = _leaves(model)
    c, h, w = _check_input_size(input_size)
    if not is_int(seed) or seed < 0:
        raise ValueError(f"report: seed must be a non-negative int, got {seed!r}")
    if batch_size is not None and (not is_int(batch_size) or batch_size < 1):
        raise ValueError(f"report: batch_size must be a positive int or None, got {batch_size!r}")
    if samples is not None and (not is_int(samples) or samples < 1):
        raise ValueError(f"report: samples must be a positive int or None (every element), got {samples!r}")
    params = list(model.parameters())
    dtype = params[0].dtype if params else get_default_dtype()
    x = np.random.default_rng(seed).standard_normal((1, c, h, w)).astype(dtype)
    group_name, elements = _check_group(group, x.shape)
    group_size = len(elements)
    if samples is not None and group_size > samples:
        chosen = np.sort(np.random.default_rng(seed).choice(group_size, samples, replace=False))
        elements = tuple(elements[i] for i in chosen)
    atol = default_tolerance(dtype) if atol is None else float(atol)
    points = tuple(dict.fromkeys(g.point for g in elements))

    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with no_grad():
            calls = _calls(model, leaves, x)
            if not calls:
                raise ValueError(f"report: the forward of {type(model).__name__} calls none of its modules; "
                                 "there is no layer to check")
            # rows 2i and 2i+1 of the arrays: the input and the output of call i
            base = [a for call in calls for a in (call.x, call.y)]
            strides = _strides(calls, x.shape)
            equivariant = [_equivariant(a.shape) for a in base]
            scales = [_scale(a) for a in base]
            errors = np.empty((len(base), len(elements)))
            if batch_size is None:
                batch_size = int(max(1, min(64, BATCH_BYTES // max(1, sum(a.nbytes for a in base)))))
            for start in range(0, len(elements), batch_size):
                chunk = elements[start:start + batch_size]
                moved = _calls(model, leaves, np.concatenate([g(x) for g in chunk]))
                if [m.layer for m in moved] != [call.layer for call in calls]:
                    raise ValueError(f"report: {type(model).__name__}'s forward calls other modules for a "
                                     "transformed input; its calls must not depend on the input's values")
                outs = [a for call in moved for a in (call.x, call.y)]
                errors[:, start:start + len(chunk)] = _errors(outs, base, chunk, strides, equivariant, scales)
    finally:
        for m, training in modes:
            object.__setattr__(m, "training", training)

    rows = []
    for i, call in enumerate(calls):
        failing_in = ~(errors[2 * i] <= atol)
        failing = ~(errors[2 * i + 1] <= atol)
        new = failing & ~failing_in
        context = _Context(call.x.shape, call.y.shape, strides[2 * i], equivariant[2 * i], atol, points)
        if new.any():
            status = "breaks"
            reasons = _summarise(call.layer, [elements[j] for j in np.flatnonzero(new)], context, explain=True)
        elif failing.any():
            status = "inherited"
            reasons = _summarise(call.layer, [elements[j] for j in np.flatnonzero(failing)], context,
                                 explain=False)
        else:
            status, reasons = ("restored" if failing_in.any() else "holds"), ()
        rows.append(LayerReport(i, call.name, _describe(call.layer), tuple(call.y.shape),
                                "equivariance" if equivariant[2 * i + 1] else "invariance",
                                float(errors[2 * i + 1].max()), int(failing.sum()), status, reasons))
    return SymmetryReport(type(model).__name__, group_name, group_size, (1, c, h, w), np.dtype(dtype),
                          int(seed), atol, tuple(rows), len(elements))


def _summarise(layer, elements: list[Action], ctx: _Context, explain: bool) -> tuple[str, ...]:
    """The distinct reasons over failing ``elements``, each with how many of them it covers.

    With ``explain``, elements no reason covers are counted too ("not explained ...").
    """
    counts: Counter[str] = Counter()
    example: dict[str, Action] = {}
    unexplained: list[Action] = []
    analysed = True
    for g in elements:
        found = _diagnose(layer, g, ctx)
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
