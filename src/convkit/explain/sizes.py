"""Output sizes and receptive fields of a network, layer by layer.

The network is a spec string (``convkit.models.from_spec``, e.g.
``"conv3-10 pool2 conv3-10 pool2 flatten fc3"``) or an ``nn.Module`` whose
leaf layers run one after another in registration order (a ``Sequential``,
nested or not). Formulas come from ``convkit.analysis.arithmetic``; the
shapes are checked against a forward pass of a zero input through the
engine, and the receptive field against the gradient of one output unit
(back-propagated through the same geometry with all-ones kernels, where
every input the unit sees gets a non-zero gradient).

Output size per axis::

    convolution, pooling   o = ⌊(n + p_lo + p_hi − d(k − 1) − 1)/s⌋ + 1   (⌈…⌉ + PyTorch's rule in ceil_mode)
    transposed convolution o = (n − 1)·s − 2p + d(k − 1) + output_padding + 1

Receptive field per axis, from ``r_0 = 1, j_0 = 1, start_0 = 0`` on the input::

    r_l = r_{l−1} + (k_l − 1)·d_l·j_{l−1}     j_l = j_{l−1}·s_l
    start_l = start_{l−1} + ((k_eff − 1)/2 − p_l)·j_{l−1}      k_eff = d(k − 1) + 1

>>> e = output_size("conv3-10 pool2 conv3-10 pool2 flatten fc3", (1, 28, 28))
>>> e.result[-1]
(3,)
>>> receptive_field("conv3-10 pool2 conv3-10 pool2", (1, 28, 28)).result[-1]
('4 MaxPool2d', (10, 10), (4, 4), (4.5, 4.5))
"""

from __future__ import annotations

import numpy as np

from .. import functional as F
from .. import nn
from ..analysis.arithmetic import (conv_output_size, conv_transpose_output_size, pool_output_size,
                                   receptive_field as rf_recurrence)
from ..autograd import no_grad
from ..ops._args import conv_pads, ntuple
from ..tensor import tensor
from .explanation import Explanation, Matrix, Step, Table, fmt
from .figures import Field, FieldStack
from .operands import AXES, shape_text

__all__ = ["output_size", "receptive_field"]

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_MAX = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)
_AVG = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
_ADAPTIVE = (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool1d,
             nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)


def _layers(model, input_size, op: str) -> tuple[list[tuple[str, nn.Module]], tuple[int, ...]]:
    """The leaf layers (name, module) in order, and ``input_size`` as a tuple of ints."""
    if not isinstance(input_size, (tuple, list)) or not all(isinstance(v, (int, np.integer)) and v > 0
                                                           for v in input_size):
        raise ValueError(f"{op}: input_size must be a tuple of positive ints without the batch axis, "
                         f"e.g. (1, 28, 28), got {input_size!r}")
    size = tuple(int(v) for v in input_size)
    if isinstance(model, str):
        from ..models import from_spec

        if len(size) != 3:
            raise ValueError(f"{op}: a spec string needs input_size (C, H, W), got {size}")
        model = from_spec(model, size)
    if not isinstance(model, nn.Module):
        raise TypeError(f"{op}: model must be a spec string or an nn.Module, got {type(model).__name__}")
    leaves = [(f"{name} {type(m).__name__}" if name else type(m).__name__, m)
              for name, m in model.named_modules() if not any(True for _ in m.children())]
    return leaves, size


def _forward_shapes(leaves, size) -> list[tuple[int, ...]]:
    """Each layer's output shape (no batch axis) from a forward pass of zeros, in eval mode."""
    modes = [m.training for _, m in leaves]
    shapes = []
    try:
        x = np.zeros((1,) + size, dtype=np.float32)
        with no_grad():
            for _, m in leaves:
                m.train(False)
                x = m(x)
                shapes.append(tuple(x.shape[1:]))
    finally:
        for (_, m), mode in zip(leaves, modes):
            m.train(mode)
    return shapes


def _conv_sizes(m, spatial):
    nsp = len(m.kernel_size)
    pads = conv_pads(m.padding, nsp, m.kernel_size, m.stride, m.dilation, type(m).__name__)
    formulas, out = [], []
    for axis, n, k, s, (lo, hi), d in zip(AXES[nsp], spatial, m.kernel_size, m.stride, pads, m.dilation):
        o = conv_output_size(n, k, s, (lo, hi), d)
        padding = f"2·{lo}" if lo == hi else f"{lo} + {hi}"
        formulas.append(f"{axis}: ⌊({n} + {padding} − {d}·({k} − 1) − 1)/{s}⌋ + 1 = {o}")
        out.append(o)
    note = ""
    if m.padding == "same":
        note = (" padding='same' pads d(k − 1) in total, " +
                ", ".join(f"{d}·({k} − 1) = {lo + hi} → ({lo}, {hi})" for k, d, (lo, hi) in
                          zip(m.kernel_size, m.dilation, pads)) + ", so the size is kept.")
    return f"channels {m.in_channels} → {m.out_channels}.{note} Per axis:", formulas, (m.out_channels, *out)


def _transposed_sizes(m, spatial):
    nsp = len(m.kernel_size)
    formulas, out = [], []
    for axis, n, k, s, p, op, d in zip(AXES[nsp], spatial, m.kernel_size, m.stride, m.padding,
                                       m.output_padding, m.dilation):
        o = conv_transpose_output_size(n, k, s, p, op, d)
        formulas.append(f"{axis}: ({n} − 1)·{s} − 2·{p} + {d}·({k} − 1) + {op} + 1 = {o}")
        out.append(o)
    return f"channels {m.in_channels} → {m.out_channels}. Per axis:", formulas, (m.out_channels, *out)


def _pool_args(m, nsp):
    name = type(m).__name__
    kernel = ntuple(m.kernel_size, nsp, "kernel_size", name)
    stride = ntuple(m.stride, nsp, "stride", name)
    padding = ntuple(m.padding, nsp, "padding", name, minimum=0)
    dilation = ntuple(getattr(m, "dilation", 1), nsp, "dilation", name)
    return kernel, stride, padding, dilation


def _pool_sizes(m, shape):
    nsp = len(shape) - 1
    kernel, stride, padding, dilation = _pool_args(m, nsp)
    lo, hi = ("⌈", "⌉") if m.ceil_mode else ("⌊", "⌋")
    formulas, out = [], []
    for axis, n, k, s, p, d in zip(AXES[nsp], shape[1:], kernel, stride, padding, dilation):
        o = pool_output_size(n, k, s, p, d, m.ceil_mode)
        formulas.append(f"{axis}: {lo}({n} + 2·{p} − {d}·({k} − 1) − 1)/{s}{hi} + 1 = {o}")
        out.append(o)
    rule = " ceil_mode rounds up (a last window may not start in the right padding)." if m.ceil_mode else ""
    return f"channels unchanged ({shape[0]}).{rule} Per axis:", formulas, (shape[0], *out)


def _layer_sizes(m, shape):
    """``(sentence, formulas, output shape)`` of one layer from its settings, or None when it keeps the shape."""
    if isinstance(m, _CONV):
        return _conv_sizes(m, shape[1:])
    if isinstance(m, _TRANSPOSED):
        return _transposed_sizes(m, shape[1:])
    if isinstance(m, _MAX + _AVG):
        return _pool_sizes(m, shape)
    if isinstance(m, _ADAPTIVE):
        target = ntuple(m.output_size, len(shape) - 1, "output_size", type(m).__name__)
        return "the output size is fixed by output_size, whatever the input:", [], (shape[0], *target)
    if isinstance(m, nn.GlobalAvgPool2d):
        out = (shape[0],) if m.flatten else (shape[0], 1, 1)
        return "each channel is averaged over all its positions:", [], out
    if isinstance(m, nn.Flatten):
        size = int(np.prod(shape))
        return "all axes merge into one:", [f"{'·'.join(map(str, shape))} = {size}"], (size,)
    if isinstance(m, nn.Linear):
        return (f"a dense layer maps in_features = {m.in_features} to out_features = {m.out_features}:", [],
                shape[:-1] + (m.out_features,))
    return None


def output_size(model, input_size=(1, 28, 28)) -> Explanation:
    """Explain the output shape of every layer of ``model`` for one input of ``input_size``.

    Args:
        model (str | nn.Module): a spec string for ``convkit.models.from_spec`` or a module whose
            leaf layers run in registration order (e.g. an ``nn.Sequential``).
        input_size (tuple of int): one sample's shape, no batch axis, e.g. ``(1, 28, 28)``.

    Returns an ``Explanation`` whose ``result`` is the list of per-layer output shapes (no batch
    axis) of the engine's forward pass.
    """
    op = "output_size"
    leaves, size = _layers(model, input_size, op)
    engine = _forward_shapes(leaves, size)
    steps = [Step(f"The input: one sample of shape {shape_text(size)} (the batch axis is left out). Convolution "
                  "and pooling change the spatial size by `o = ⌊(n + 2p − d(k − 1) − 1)/s⌋ + 1` per axis (n input "
                  "size, p padding, d dilation, k kernel size, s stride); element-wise layers keep the shape.")]
    shape, kept, rows = size, [], []
    for (name, m), actual in zip(leaves, engine):
        sizes = _layer_sizes(m, shape)
        if sizes is None:
            kept.append(name)
            rows.append((name, shape_text(shape), shape_text(actual)))
            shape = actual
            continue
        if kept:
            steps.append(Step(f"{', '.join(kept)} {'keeps' if len(kept) == 1 else 'keep'} the shape "
                              f"{shape_text(shape)}."))
            kept = []
        sentence, formulas, formula_shape = sizes
        steps.append(Step(f"{name} on {shape_text(shape)}: {sentence}", tuple(formulas) +
                          (f"output {shape_text(formula_shape)}",)))
        rows.append((name, shape_text(formula_shape), shape_text(actual)))
        shape = actual
    if kept:
        steps.append(Step(f"{', '.join(kept)} {'keeps' if len(kept) == 1 else 'keep'} the shape {shape_text(shape)}."))
    agree = all(r[1] == r[2] for r in rows)
    spatial_layers = _spatial_layers(leaves, len(size) - 1)[0]
    steps.append(Step("All layers, with the shape from the formulas next to the shape the engine's forward pass gives "
                      f"({'they agree' if agree else 'THEY DIFFER'}):",
                      value=Table(("layer", "formula", "forward pass"), tuple(rows)),
                      figure=_field_stack(leaves, size, spatial_layers) if spatial_layers else None))
    title = f"output_size: {len(leaves)} layers on a {shape_text(size)} input"
    return Explanation(title, steps, engine)


def _rf_layer(m, nsp, name):
    """``(kernel, stride, dilation, left padding)`` per axis, or a reason the field stops here."""
    if isinstance(m, _CONV):
        pads = conv_pads(m.padding, nsp, m.kernel_size, m.stride, m.dilation, type(m).__name__)
        return tuple(zip(m.kernel_size, m.stride, m.dilation, (lo for lo, _ in pads)))
    if isinstance(m, _MAX + _AVG):
        kernel, stride, padding, dilation = _pool_args(m, nsp)
        return tuple(zip(kernel, stride, dilation, padding))
    if isinstance(m, _TRANSPOSED):
        return (f"{name} is a transposed convolution: its units see alternating numbers of inputs "
                "(no single receptive field), so the table stops before it.")
    if isinstance(m, _ADAPTIVE + (nn.GlobalAvgPool2d, nn.Flatten, nn.Linear)):
        return f"{name} mixes all positions: from here on every unit sees the whole input."
    return None


def _spatial_layers(leaves, nsp: int):
    """``(name, geometry)`` of the convolution and pooling layers up to the first that mixes all positions, the
    reason the chain stops there (``""`` if it does not), and the element-wise layers skipped on the way."""
    spatial_layers, skipped = [], []
    for name, m in leaves:
        geometry = _rf_layer(m, nsp, name)
        if isinstance(geometry, str):
            return spatial_layers, geometry, skipped
        if geometry is None:
            skipped.append(name)
        else:
            spatial_layers.append((name, geometry))
    return spatial_layers, "", skipped


def receptive_field(model, input_size=(1, 28, 28)) -> Explanation:
    """Explain the receptive field size ``r``, jump ``j`` and ``start`` of every spatial layer of ``model``.

    Args:
        model (str | nn.Module): a spec string or a module whose leaf layers run in order.
        input_size (tuple of int): one sample's shape ``(C, *spatial)``, no batch axis.

    Returns an ``Explanation`` whose ``result`` is a list with one
    ``(layer, r, j, start)`` per convolution or pooling layer, each of ``r``,
    ``j``, ``start`` a tuple with one entry per spatial axis (from
    ``convkit.analysis.arithmetic.receptive_field``).
    """
    op = "receptive_field"
    leaves, size = _layers(model, input_size, op)
    nsp = len(size) - 1
    names = AXES[nsp]
    spatial_layers, stop, skipped = _spatial_layers(leaves, nsp)
    if not spatial_layers:
        raise ValueError(f"{op}: the model has no convolution or pooling layer before its first dense/global layer; "
                         "e.g. 'conv3-8 pool2 conv3-8'")
    per_axis = [rf_recurrence([g[a] for _, g in spatial_layers]) for a in range(nsp)]
    same = all(per_axis[a] == per_axis[0] and all(g[a] == g[0] for _, g in spatial_layers) for a in range(nsp))
    axes = range(1) if same else range(nsp)
    steps = [Step("Start on the input with `r_0 = 1` (a unit sees itself), `j_0 = 1` (neighbours are 1 input apart) "
                  "and `start_0 = 0` (the centre of unit 0). Each layer widens the field by `(k − 1)·d` of its "
                  "input units, each `j_{l−1}` input positions apart, and multiplies the spacing by its stride: "
                  "`r_l = r_{l−1} + (k_l − 1)·d_l·j_{l−1}`, `j_l = j_{l−1}·s_l`, "
                  "`start_l = start_{l−1} + ((k_eff − 1)/2 − p_l)·j_{l−1}` with `k_eff = d(k − 1) + 1`."
                  + (f" Element-wise layers ({', '.join(skipped)}) change nothing and are left out." if skipped else "")
                  + ("" if same else " The axes differ, so each has its own table."))]
    stack = _field_stack(leaves, size, spatial_layers)
    for a in axes:
        axis = "" if same else f" ({names[a]})"
        r, j, start = 1, 1, 0
        formulas, rows = [], []
        for number, ((name, g), (r_new, j_new, s_new)) in enumerate(zip(spatial_layers, per_axis[a]), 1):
            k, s, d, p = g[a]
            k_eff = d * (k - 1) + 1
            formulas.append(f"{name}: r_{number} = {r} + ({k} − 1)·{d}·{j} = {r_new},  j_{number} = {j}·{s} = "
                            f"{j_new},  start_{number} = {fmt(start)} + ({fmt((k_eff - 1) / 2)} − {p})·{j} = "
                            f"{fmt(s_new)}")
            rows.append((name, str(k), str(s), str(d), str(p), str(k_eff), str(r_new), str(j_new), fmt(s_new)))
            r, j, start = r_new, j_new, s_new
        steps.append(Step(f"Layer by layer{axis}:", tuple(formulas),
                          Table(("layer", "k", "s", "d", "p", "k_eff", "r", "j", "start"), tuple(rows)),
                          stack if a == 0 else None))
    if stop:
        steps.append(Step(stop))
    steps.append(_probe_step(spatial_layers, per_axis, size))
    result = [(name, tuple(per_axis[a][i][0] for a in range(nsp)), tuple(per_axis[a][i][1] for a in range(nsp)),
               tuple(per_axis[a][i][2] for a in range(nsp))) for i, (name, _) in enumerate(spatial_layers)]
    title = f"receptive_field: {len(spatial_layers)} convolution/pooling layers on a {shape_text(size)} input"
    return Explanation(title, steps, result)


def _field_stack(leaves, size, spatial_layers) -> FieldStack:
    """The input and every spatial layer as grids, with each unit's field in every earlier one.

    The field of layer ``l`` in layer ``m < l`` is the recurrence run over the
    layers between them; unit ``u`` sees ``start + u·j ∓ (r − 1)/2`` there.
    Layer shapes come from the engine's forward pass.
    """
    shapes = dict(zip((name for name, _ in leaves), (s[1:] for s in _forward_shapes(leaves, size))))
    names = ("input",) + tuple(name for name, _ in spatial_layers)
    grids = (size[1:],) + tuple(shapes[name] for name, _ in spatial_layers)
    fields = []
    for layer in range(1, len(names)):
        for earlier in range(layer):
            between = [g for _, g in spatial_layers[earlier:layer]]
            per_axis = [rf_recurrence([g[a] for g in between])[-1] for a in range(len(grids[0]))]
            spans = tuple(tuple((round(start + u * j - (r - 1) / 2), round(start + u * j + (r - 1) / 2))
                                for u in range(n)) for (r, j, start), n in zip(per_axis, grids[layer]))
            fields.append(Field(layer, earlier, tuple(f[0] for f in per_axis), tuple(f[1] for f in per_axis),
                                tuple(f[2] for f in per_axis), spans))
    return FieldStack(names, grids, tuple(fields))


def _probe_step(spatial_layers, per_axis, size) -> Step:
    """Back-propagate a 1 from one unit of the last layer through all-ones kernels; its support is the field."""
    nsp = len(size) - 1
    spatial = size[1:]
    x = tensor(np.ones((1, 1) + spatial), requires_grad=True)
    y = x
    conv = getattr(F, f"conv{nsp}d")
    for _, g in spatial_layers:
        kernel = tuple(a[0] for a in g)
        y = conv(y, np.ones((1, 1) + kernel), None, tuple(a[1] for a in g),
                 tuple((a[3], a[3]) for a in g), tuple(a[2] for a in g))
    r, j, start = (tuple(per_axis[a][-1][i] for a in range(nsp)) for i in range(3))
    unit, expected = [], []
    for a in range(nsp):
        units = y.shape[2 + a]
        inside = [u for u in range(units) if start[a] + u * j[a] - (r[a] - 1) / 2 >= 0
                  and start[a] + u * j[a] + (r[a] - 1) / 2 <= spatial[a] - 1]
        u = inside[0] if inside else 0
        left = round(start[a] + u * j[a] - (r[a] - 1) / 2)
        unit.append(u)
        expected.append((max(0, left), min(spatial[a] - 1, left + r[a] - 1)))
    grad = np.zeros(y.shape)
    grad[(0, 0) + tuple(unit)] = 1
    y.backward(grad)
    support = x.grad[0, 0] != 0
    found = [tuple(int(v) for v in (np.flatnonzero(support.any(axis=tuple(b for b in range(nsp) if b != a)))[[0, -1]]))
             for a in range(nsp)]
    names = AXES[nsp]
    formulas = tuple(
        f"{names[a]}: unit {unit[a]} is centred at {fmt(start[a])} + {unit[a]}·{j[a]} = "
        f"{fmt(start[a] + unit[a] * j[a])} and sees ± ({r[a]} − 1)/2 around it → inputs {expected[a][0]} … "
        f"{expected[a][1]}; the gradient is non-zero on {found[a][0]} … {found[a][1]}"
        for a in range(nsp))
    clipped = any(expected[a][1] - expected[a][0] + 1 < r[a] for a in range(nsp))
    picture = Matrix("support", support.astype(float), blank_zeros=True)
    return Step("Check with the engine: give every layer an all-ones kernel of its geometry (pooling too), "
                f"back-propagate a 1 from unit {tuple(unit)} of the last layer, and see which inputs get a "
                "non-zero gradient" + (" (the field is larger than the input here, so it is clipped)" if clipped
                                       else "") + ":", formulas, None if picture.too_large() else picture)
