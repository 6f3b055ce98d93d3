"""Output sizes and receptive fields of a network, layer by layer.

The network is a spec string (``convkit.models.from_spec``, e.g.
``"conv3-10 pool2 conv3-10 pool2 flatten fc3"``) or any ``nn.Module``: its
layers are those of one ``convkit.trace`` of a forward pass on a zero input
(each leaf layer, and each op a ``forward`` calls itself), with the geometry
the ops received (kernel, stride, dilation, ``(low, high)`` padding).
Formulas come from ``convkit.analysis.arithmetic``; the shapes are checked
against that forward pass through the engine, and the receptive field
against the gradient of one output unit (back-propagated through the same
geometry with all-ones kernels, where every input the unit sees gets a
non-zero gradient). The receptive-field recurrences hold along a chain: the
table stops at the first op that merges paths (``convkit.analysis.summary``
follows fields through merges).

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
from ..analysis.layers import ELEMENTWISE, SAMPLE_NORMS
from ..tensor import tensor
from ..trace import Node, trace
from .explanation import Explanation, Matrix, Step, Table, fmt
from .figures import Field, FieldStack
from .operands import AXES, shape_text

__all__ = ["output_size", "receptive_field"]

_KEEP_FIELDS = {*ELEMENTWISE, *SAMPLE_NORMS}  # ops whose units see what their input's units see
_MERGES = {"add", "sub", "mul", "div", "cat", "stack", "matmul"}


class _Layer:
    """One row of the explanation: a traced op, its label (``name Class`` for a leaf layer, ``name (op)`` for an
    op of a ``forward``), the module that ran it, its input and output shapes without the batch axis, and
    its window geometry (``Graph.geometry``; None for other ops)."""

    def __init__(self, node: Node, module, graph):
        self.node = node
        self.module = module
        self.label = f"{node.name} {type(module).__name__}" if module is not None else f"{node.name} ({node.op})"
        self.input = graph.shape(node.inputs[0])[1:]
        self.output = node.shape[1:]
        self.geometry = graph.geometry(node)


def _layers(model, input_size, op: str) -> tuple[list[_Layer], tuple[int, ...]]:
    """The traced layers in execution order, and ``input_size`` as a tuple of ints."""
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
    first = next(model.parameters(), None)
    dtype = first.dtype if first is not None else np.float32
    try:
        graph = trace(model, np.zeros((1,) + size, dtype))
    except (ValueError, TypeError) as err:
        raise ValueError(f"{op}: {err}") from None
    layers = graph.layers
    return [_Layer(n, layers[i].module if i in layers else None, graph) for i, n in enumerate(graph.nodes)], size


def _conv_sizes(layer: _Layer):
    g, spatial = layer.geometry, layer.input[1:]
    formulas, out = [], []
    for axis, n, k, s, (lo, hi), d in zip(AXES[len(spatial)], spatial, g.kernel, g.stride, g.pads, g.dilation):
        size = conv_output_size(n, k, s, (lo, hi), d)
        padding = f"2·{lo}" if lo == hi else f"{lo} + {hi}"
        formulas.append(f"{axis}: ⌊({n} + {padding} − {d}·({k} − 1) − 1)/{s}⌋ + 1 = {size}")
        out.append(size)
    note = ""
    if getattr(layer.module, "padding", None) == "same":
        note = (" padding='same' pads d(k − 1) in total, " +
                ", ".join(f"{d}·({k} − 1) = {lo + hi} → ({lo}, {hi})" for k, d, (lo, hi) in
                          zip(g.kernel, g.dilation, g.pads)) + ", so the size is kept.")
    channels = layer.output[0]
    return f"channels {layer.input[0]} → {channels}.{note} Per axis:", formulas, (channels, *out)


def _transposed_sizes(layer: _Layer):
    g, spatial = layer.geometry, layer.input[1:]
    formulas, out = [], []
    for axis, n, k, s, (lo, hi), op, d in zip(AXES[len(spatial)], spatial, g.kernel, g.stride, g.pads,
                                              layer.node.options["output_padding"], g.dilation):
        size = conv_transpose_output_size(n, k, s, (lo, hi), op, d)
        padding = f"2·{lo}" if lo == hi else f"({lo} + {hi})"
        formulas.append(f"{axis}: ({n} − 1)·{s} − {padding} + {d}·({k} − 1) + {op} + 1 = {size}")
        out.append(size)
    return f"channels {layer.input[0]} → {layer.output[0]}. Per axis:", formulas, (layer.output[0], *out)


def _pool_sizes(layer: _Layer):
    g, shape, ceil = layer.geometry, layer.input, layer.node.options["ceil_mode"]
    lo, hi = ("⌈", "⌉") if ceil else ("⌊", "⌋")
    formulas, out = [], []
    for axis, n, k, s, (p, _), d in zip(AXES[len(shape) - 1], shape[1:], g.kernel, g.stride, g.pads, g.dilation):
        size = pool_output_size(n, k, s, p, d, ceil)
        formulas.append(f"{axis}: {lo}({n} + 2·{p} − {d}·({k} − 1) − 1)/{s}{hi} + 1 = {size}")
        out.append(size)
    rule = " ceil_mode rounds up (a last window may not start in the right padding)." if ceil else ""
    return f"channels unchanged ({shape[0]}).{rule} Per axis:", formulas, (shape[0], *out)


def _layer_sizes(layer: _Layer):
    """``(sentence, formulas, output shape)`` of one layer from its geometry, or None when it keeps the shape."""
    op, shape = layer.node.op, layer.input
    if op == "conv":
        return _conv_sizes(layer)
    if op == "conv_transpose":
        return _transposed_sizes(layer)
    if op in ("max_pool", "avg_pool"):
        return _pool_sizes(layer)
    if op in ("adaptive_avg_pool", "adaptive_max_pool"):
        return "the output size is fixed by output_size, whatever the input:", [], layer.output
    if op == "global_avg_pool":
        return "each channel is averaged over all its positions:", [], layer.output
    if op == "reshape" and len(layer.output) == 1 and layer.output != shape:
        size = int(np.prod(shape))
        return "all axes merge into one:", [f"{'·'.join(map(str, shape))} = {size}"], (size,)
    if op == "linear":
        return (f"a dense layer maps in_features = {shape[-1]} to out_features = {layer.output[-1]}:", [],
                layer.output)
    if layer.output == shape:
        return None
    return f"the {op} gives:", [], layer.output


def output_size(model, input_size=(1, 28, 28)) -> Explanation:
    """Explain the output shape of every layer of ``model`` for one input of ``input_size``.

    Args:
        model (str | nn.Module): a spec string for ``convkit.models.from_spec`` or any module (its
            layers and ops as one traced forward pass runs them).
        input_size (tuple of int): one sample's shape, no batch axis, e.g. ``(1, 28, 28)``.

    Returns an ``Explanation`` whose ``result`` is the list of per-layer output shapes (no batch
    axis) of the engine's forward pass.
    """
    op = "output_size"
    layers, size = _layers(model, input_size, op)
    engine = [layer.output for layer in layers]
    steps = [Step(f"The input: one sample of shape {shape_text(size)} (the batch axis is left out). Convolution "
                  "and pooling change the spatial size by `o = ⌊(n + 2p − d(k − 1) − 1)/s⌋ + 1` per axis (n input "
                  "size, p padding, d dilation, k kernel size, s stride); element-wise layers keep the shape.")]
    kept, rows = [], []
    for layer in layers:
        sizes = _layer_sizes(layer)
        if sizes is None:
            kept.append(layer.label)
            rows.append((layer.label, shape_text(layer.input), shape_text(layer.output)))
            continue
        if kept:
            steps.append(Step(f"{', '.join(kept)} {'keeps' if len(kept) == 1 else 'keep'} the shape "
                              f"{shape_text(layer.input)}."))
            kept = []
        sentence, formulas, formula_shape = sizes
        steps.append(Step(f"{layer.label} on {shape_text(layer.input)}: {sentence}", tuple(formulas) +
                          (f"output {shape_text(formula_shape)}",)))
        rows.append((layer.label, shape_text(formula_shape), shape_text(layer.output)))
    if kept:
        steps.append(Step(f"{', '.join(kept)} {'keeps' if len(kept) == 1 else 'keep'} the shape "
                          f"{shape_text(layers[-1].output)}."))
    agree = all(r[1] == r[2] for r in rows)
    spatial_layers = _spatial_layers(layers)[0]
    steps.append(Step("All layers, with the shape from the formulas next to the shape the engine's forward pass gives "
                      f"({'they agree' if agree else 'THEY DIFFER'}):",
                      value=Table(("layer", "formula", "forward pass"), tuple(rows)),
                      figure=_field_stack(size, spatial_layers) if spatial_layers else None))
    title = f"output_size: {len(layers)} layers on a {shape_text(size)} input"
    return Explanation(title, steps, engine)


def _rf_layer(layer: _Layer):
    """``(kernel, stride, dilation, left padding)`` per axis, None for a layer that keeps the fields, or the
    reason the chain of recurrences stops here."""
    node, g = layer.node, layer.geometry
    if node.op in ("conv", "max_pool", "avg_pool"):
        return tuple(zip(g.kernel, g.stride, g.dilation, (lo for lo, _ in g.pads)))
    if node.op == "conv_transpose":
        return (f"{layer.label} is a transposed convolution: its units see alternating numbers of inputs "
                "(no single receptive field), so the table stops before it.")
    if node.op in ("adaptive_avg_pool", "adaptive_max_pool", "global_avg_pool", "linear") or \
            (node.op == "reshape" and layer.output != layer.input):
        return f"{layer.label} mixes all positions: from here on every unit sees the whole input."
    if node.op in _MERGES:
        return (f"{layer.label} merges paths, where these chain recurrences end; convkit.analysis.summary "
                "follows the fields through merges.")
    if node.op in _KEEP_FIELDS or node.op == "reshape":
        return None
    return f"{layer.label} ({node.op}) is neither a convolution nor a pooling: the table stops before it."


def _spatial_layers(layers: list[_Layer]):
    """``(layer, geometry)`` of the convolution and pooling layers of the chain from the input, up to the first
    layer that mixes all positions, merges or branches; the reason it stops there (``""`` if it does not); and
    the element-wise layers skipped on the way."""
    spatial_layers, skipped, current = [], [], "input"
    for layer in layers:
        if layer.node.inputs[0] != current:
            return spatial_layers, (f"The network branches at {layer.label}, where these chain recurrences end; "
                                    "convkit.analysis.summary follows the fields through branches."), skipped
        geometry = _rf_layer(layer)
        if isinstance(geometry, str):
            return spatial_layers, geometry, skipped
        if geometry is None:
            skipped.append(layer.label)
        else:
            spatial_layers.append((layer, geometry))
        current = layer.node.name
    return spatial_layers, "", skipped


def receptive_field(model, input_size=(1, 28, 28)) -> Explanation:
    """Explain the receptive field size ``r``, jump ``j`` and ``start`` of every spatial layer of ``model``.

    Args:
        model (str | nn.Module): a spec string or any module; the recurrences follow its chain of
            layers from the input to the first branch, merge or layer that mixes all positions.
        input_size (tuple of int): one sample's shape ``(C, *spatial)``, no batch axis.

    Returns an ``Explanation`` whose ``result`` is a list with one
    ``(layer, r, j, start)`` per convolution or pooling layer, each of ``r``,
    ``j``, ``start`` a tuple with one entry per spatial axis (from
    ``convkit.analysis.arithmetic.receptive_field``).
    """
    op = "receptive_field"
    layers, size = _layers(model, input_size, op)
    nsp = len(size) - 1
    names = AXES[nsp]
    spatial_layers, stop, skipped = _spatial_layers(layers)
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
    stack = _field_stack(size, spatial_layers)
    for a in axes:
        axis = "" if same else f" ({names[a]})"
        r, j, start = 1, 1, 0
        formulas, rows = [], []
        for number, ((layer, g), (r_new, j_new, s_new)) in enumerate(zip(spatial_layers, per_axis[a]), 1):
            name = layer.label
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
    result = [(layer.label, tuple(per_axis[a][i][0] for a in range(nsp)), tuple(per_axis[a][i][1] for a in range(nsp)),
               tuple(per_axis[a][i][2] for a in range(nsp))) for i, (layer, _) in enumerate(spatial_layers)]
    title = f"receptive_field: {len(spatial_layers)} convolution/pooling layers on a {shape_text(size)} input"
    return Explanation(title, steps, result)


def _field_stack(size, spatial_layers) -> FieldStack:
    """The input and every spatial layer as grids, with each unit's field in every earlier one.

    The field of layer ``l`` in layer ``m < l`` is the recurrence run over the
    layers between them; unit ``u`` sees ``start + u·j ∓ (r − 1)/2`` there.
    Layer shapes come from the engine's forward pass.
    """
    names = ("input",) + tuple(layer.label for layer, _ in spatial_layers)
    grids = (size[1:],) + tuple(layer.output[1:] for layer, _ in spatial_layers)
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
