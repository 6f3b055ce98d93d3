"""``summary(model, input_size)``: shapes, parameters, MACs, memory and receptive fields, per layer.

Everything is derived from the layers' settings and the parameter arrays'
sizes; the model is never run, so a 500M-parameter network costs no more
than LeNet. What is counted, per sample (batch size 1):

* **MACs** (multiply-accumulates) of convolutions and linear layers, the
  column most papers quote. ``FLOPs ~ 2 x MACs`` (one multiply and one add
  each). A transposed convolution is counted on its *input* grid,
  ``C_in * prod(in) * (C_out/groups) * prod(k)``: every input value meets every
  kernel weight once (tools that used the output grid over-counted by about
  ``stride**2``).
* **Other ops**, kept out of the MACs: bias adds, normalisation, activations
  and pooling, one op per element and pass (the table in
  ``convkit.analysis.layers``). Counting tools differ exactly here: torchinfo's
  "mult-adds" includes bias adds, ptflops adds pooling and batch norm,
  fvcore and thop count neither, FlopCounterMode reports 2 x MACs. For
  Conv2d(3, 10, 3) on 32x32: 243,000 MACs, 9,000 bias adds, so 243,000
  (fvcore, thop), 252,000 (torchinfo, ptflops) or 486,000 FLOPs.
* **Memory**: activation bytes (the output's elements times the itemsize of
  the model's dtype), parameter and buffer bytes from the arrays'
  itemsize, and for convolutions the buffer the im2col algorithm builds
  (the other convolution algorithms, Winograd, FFT, direct, need other workspaces).
* **Receptive field** per spatial axis: ``receptive_field`` (size ``r``),
  ``jump`` (input positions between neighbouring units, the effective
  stride) and ``start`` (the centre of the first unit's field; index 0 is the
  first input position, padding is negative), following the recurrences of
  ``convkit.analysis.arithmetic.receptive_field`` with dilation and
  asymmetric padding. After a transposed conv the fields are not uniform
  (stride 2, kernel 3: units see 2 and 1 positions alternately) and the
  jump is fractional: the largest field is shown, with a note.
  ``Summary.field_of`` gives any unit's exact input span. After global
  pooling, ``Flatten`` or ``Linear`` there is no spatial axis left: None.

Which ops run, in which order: one ``convkit.trace`` of the forward pass on
a meta input (a shape, no data), so any ``forward`` is followed, branches,
residual additions and concatenations included, as it runs for that input
shape. A row per op: a leaf module that ran one op gives a row named after
the module (``features.0``, type ``Conv2d``); other ops are named as in the
trace (``layer1.0.add``, type ``add``). ``depth=k`` folds every module
call ``k`` levels below the model into one row (a ResNet block), as
torchinfo's ``depth``. A module called twice gives two rows; its
parameters are counted at the first. Receptive fields go through merges:
an addition's or a channel concatenation's units see the union of what
their inputs see.

>>> import convkit.nn as nn
>>> net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
...                     nn.Linear(6 * 14 * 14, 10))
>>> s = summary(net, (1, 28, 28))
>>> s.total_params, s.total_macs, s.rows[2].output_shape, s.rows[2].receptive_field
(11926, 129360, (6, 14, 14), (6, 6))
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .. import nn
from ..ops._args import is_int
from ..tensor import get_default_dtype
from ..trace import Graph, trace
from .layers import AxisField, Flow, field_note, rule_for

__all__ = ["Row", "Summary", "summary"]


@dataclass(frozen=True)
class Row:
    """One row: a leaf layer's call, an op of a ``forward``, or a folded module call, and what it does to one sample.

    ``receptive_field``, ``jump`` and ``start`` hold one entry per spatial axis
    (None once no spatial axis is left); ``dense_params`` and
    ``dense_connections`` are set for convolutions only: what a fully
    connected layer between the same input and output would need
    (connections of the conv = its MACs).
    """

    name: str
    kind: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    params: int
    trainable_params: int
    param_bytes: int
    macs: int
    other_ops: int
    activation_bytes: int
    im2col_bytes: int
    receptive_field: tuple[int, ...] | None
    jump: tuple[int | float, ...] | None
    start: tuple[int | float, ...] | None
    dense_params: int | None = None
    dense_connections: int | None = None
    note: str = ""
    fields: tuple[AxisField, ...] | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        """The row as JSON-ready values (tuples become lists)."""
        out = {}
        for key in self.__dataclass_fields__:
            if key != "fields":
                value = getattr(self, key)
                out[key] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(frozen=True, repr=False)
class Summary:
    """The result of ``summary``: rows in execution order, totals and renderings.

    ``str(summary)`` is a plain-text table, ``to_markdown()`` the same as
    Markdown, ``to_dict()`` / ``to_json()`` every number. Totals are sums over
    the rows (a module run twice counts its parameters once);
    ``unused`` lists modules holding parameters that ``forward`` never calls.
    """

    model: str
    input_size: tuple[int, ...]
    dtype: str
    rows: tuple[Row, ...]
    buffer_bytes: int
    unused: tuple[tuple[str, int], ...] = ()
    output: tuple[int, ...] | None = None

    @property
    def output_shape(self) -> tuple[int, ...]:
        """One sample's shape of what ``forward`` returns (its first tensor); the input's when it returns it."""
        if self.output is not None:
            return self.output
        return self.rows[-1].output_shape if self.rows else self.input_size

    @property
    def total_params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def trainable_params(self) -> int:
        return sum(r.trainable_params for r in self.rows)

    @property
    def param_bytes(self) -> int:
        return sum(r.param_bytes for r in self.rows)

    @property
    def total_macs(self) -> int:
        return sum(r.macs for r in self.rows)

    @property
    def total_flops(self) -> int:
        """``2 * total_macs``: the multiplies and adds of convolutions and linear layers."""
        return 2 * self.total_macs

    @property
    def total_other_ops(self) -> int:
        return sum(r.other_ops for r in self.rows)

    @property
    def total_activation_bytes(self) -> int:
        return sum(r.activation_bytes for r in self.rows)

    @property
    def input_bytes(self) -> int:
        return math.prod(self.input_size) * np.dtype(self.dtype).itemsize

    @property
    def weight_sharing(self) -> list[Row]:
        """The convolution rows, each with ``dense_params`` and ``dense_connections`` set."""
        return [r for r in self.rows if r.dense_params is not None]

    def field_of(self, row: int | str, unit: Sequence[int]) -> tuple[tuple[int, int] | None, ...]:
        """The input positions ``(first, last)`` per spatial axis that unit ``unit`` of a row sees.

        Args:
            row (int | str): index into ``rows``, or a row name (its first occurrence).
            unit (sequence of int): the unit's index along each spatial axis.

        An axis entry is None for a unit that sees no input (possible after a
        transposed conv); positions outside ``0 .. n-1`` are padding.
        """
        r = self._row(row)
        if r.fields is None:
            raise ValueError(f"field_of: row {r.name!r} ({r.kind}) has no spatial axes left")
        if len(unit) != len(r.fields) or not all(is_int(u) and 0 <= u < n
                                                  for u, n in zip(unit, r.output_shape[1:])):
            raise ValueError(f"field_of: unit must be {len(r.fields)} indices within {r.output_shape[1:]}, "
                             f"got {tuple(unit)!r}")
        return tuple(f.bounds(u) for f, u in zip(r.fields, unit))

    def _row(self, row: int | str) -> Row:
        if is_int(row) and -len(self.rows) <= row < len(self.rows):
            return self.rows[row]
        for r in self.rows:
            if r.name == row:
                return r
        raise ValueError(f"field_of: no row {row!r}: give an index below {len(self.rows)} or a row name")

    # ------------------------------------------------------------------ output
    def to_dict(self) -> dict:
        """Every number of the summary: ``model``, ``input_size``, ``dtype``, ``rows``, ``totals``, ``unused``."""
        return {
            "model": self.model,
            "input_size": list(self.input_size),
            "output_shape": list(self.output_shape),
            "dtype": self.dtype,
            "rows": [r.to_dict() for r in self.rows],
            "totals": {
                "params": self.total_params,
                "trainable_params": self.trainable_params,
                "param_bytes": self.param_bytes,
                "buffer_bytes": self.buffer_bytes,
                "macs": self.total_macs,
                "flops": self.total_flops,
                "other_ops": self.total_other_ops,
                "activation_bytes": self.total_activation_bytes,
                "input_bytes": self.input_bytes,
                "largest_im2col_bytes": max((r.im2col_bytes for r in self.rows), default=0),
            },
            "unused": [{"name": n, "params": p} for n, p in self.unused],
        }

    def to_json(self, indent: int | None = 2) -> str:
        """``to_dict()`` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent)

    def _table(self) -> tuple[list[str], list[list[str]], list[str]]:
        """Header, cells and footnotes of the main table."""
        header = ["Layer", "Type", "Output shape", "Params", "MACs", "Other ops", "Activation bytes",
                  "RF", "Jump", "Start", "Note"]
        notes: list[str] = []
        cells = []
        for r in self.rows:
            mark = ""
            if r.note:
                if r.note not in notes:
                    notes.append(r.note)
                mark = f"[{notes.index(r.note) + 1}]"
            cells.append([r.name or "(model)", r.kind, _shape(r.output_shape), f"{r.params:,}", f"{r.macs:,}",
                          f"{r.other_ops:,}", f"{r.activation_bytes:,}", _axes(r.receptive_field),
                          _axes(r.jump), _axes(r.start), mark])
        return header, cells, [f"[{i + 1}] {n}" for i, n in enumerate(notes)]

    def _totals(self) -> list[str]:
        largest = max(self.rows, key=lambda r: r.im2col_bytes, default=None)
        lines = [
            f"Input: {_shape(self.input_size)} {self.dtype} ({self.input_bytes:,} bytes); "
            f"output {_shape(self.output_shape)}",
            f"Total params: {self.total_params:,} (trainable {self.trainable_params:,}, "
            f"non-trainable {self.total_params - self.trainable_params:,})",
            f"Params size: {self.param_bytes:,} bytes ({_si(self.param_bytes)}B); "
            f"buffers: {self.buffer_bytes:,} bytes",
            f"Total MACs: {self.total_macs:,} ({_si(self.total_macs)}) per sample; "
            f"FLOPs ~ 2 x MACs = {self.total_flops:,} ({_si(self.total_flops)})",
            f"Other ops (bias, norm, activation, pooling, merges; not in MACs): {self.total_other_ops:,}",
            f"Activations: {self.total_activation_bytes:,} bytes ({_si(self.total_activation_bytes)}B) "
            f"per sample, the sum of the outputs above",
        ]
        if largest is not None and largest.im2col_bytes:
            lines.append(f"Largest im2col buffer: {largest.im2col_bytes:,} bytes "
                         f"({_si(largest.im2col_bytes)}B) in {largest.name} ({largest.kind})")
        for name, params in self.unused:
            lines.append(f"Not called by forward: {name} ({params:,} params, not in the totals)")
        return lines

    def _sharing(self) -> tuple[list[str], list[list[str]]]:
        header = ["Layer", "Params", "Dense params", "Connections", "Dense connections", "Params saved"]
        cells = [[r.name, f"{r.params:,}", f"{r.dense_params:,}", f"{r.macs:,}", f"{r.dense_connections:,}",
                  f"{r.dense_params / r.params:,.0f}x" if r.params else "-"]
                 for r in self.weight_sharing]
        return header, cells

    def __str__(self) -> str:
        header, cells, notes = self._table()
        table = _aligned(header, cells, numeric=range(3, 10))
        width = len(table[0])
        rule = "=" * width
        out = [f"{self.model} on input {_shape(self.input_size)} ({self.dtype}), per sample", rule,
               table[0], "-" * width, *table[1:], rule, *self._totals()]
        if notes:
            out += ["", *notes]
        sharing_header, sharing = self._sharing()
        if sharing:
            out += ["", "Weight sharing: each convolution vs a fully connected layer with the same input "
                        "and output sizes", *_aligned(sharing_header, sharing, numeric=range(1, 6))]
        return "\n".join(out)

    __repr__ = __str__

    def to_markdown(self) -> str:
        """The table, totals, notes and weight-sharing table as GitHub Markdown."""
        header, cells, notes = self._table()
        out = [f"**{self.model}** on input {_shape(self.input_size)} ({self.dtype}), per sample", "",
               *_markdown(header, cells, numeric=range(3, 10)), ""]
        out += [f"- {line}" for line in self._totals()]
        if notes:
            out += ["", *notes]
        sharing_header, sharing = self._sharing()
        if sharing:
            out += ["", "Weight sharing (each convolution vs a fully connected layer with the same input "
                        "and output sizes):", "", *_markdown(sharing_header, sharing, numeric=range(1, 6))]
        return "\n".join(out)


    def to_html(self) -> str:
        """A self-contained HTML page (``convkit.explain.html``): the table, the totals, weight sharing and a
        receptive-field view in which clicking a unit of a layer shows the input positions it sees."""
        from ..explain import Explanation, Step, Table
        from ..explain.html import to_html

        header, cells, notes = self._table()
        steps = [Step(f"Per layer, for one sample of {_shape(self.input_size)} ({self.dtype}):",
                      tuple(notes), Table(tuple(header), tuple(tuple(row) for row in cells))),
                 Step("Totals:", tuple(self._totals()))]
        sharing_header, sharing = self._sharing()
        if sharing:
            steps.append(Step("Weight sharing: each convolution vs a fully connected layer with the same input and "
                              "output sizes.", value=Table(tuple(sharing_header), tuple(tuple(r) for r in sharing))))
        stack = self._field_stack()
        if stack is not None:
            steps.append(Step("Receptive fields: each layer that changes them, drawn as a grid of its units. The "
                              "input positions a unit sees are the RF, Jump and Start columns above, worked out "
                              "for that unit (Summary.field_of).", figure=stack))
        return to_html([Explanation(f"{self.model} on input {_shape(self.input_size)}", steps, self)])

    def _repr_html_(self) -> str:
        """The page in an ``<iframe srcdoc>``, for Jupyter."""
        from ..explain.html import iframe

        return iframe(self.to_html())

    def _field_stack(self):
        """The input and every row whose receptive fields differ from the row before, or None without any."""
        from ..explain.figures import Field, FieldStack

        names, shapes, fields, previous = ["input"], [tuple(self.input_size[1:])], [], None
        for r in self.rows:
            if r.fields is None or (r.fields, r.output_shape) == previous:
                continue
            previous = (r.fields, r.output_shape)
            spatial = tuple(r.output_shape[1:])
            spans = tuple(tuple(f.bounds(u) for u in range(n)) for f, n in zip(r.fields, spatial))
            fields.append(Field(len(names), 0, r.receptive_field, r.jump, r.start, spans))
            names.append(f"{r.name} {r.kind}")
            shapes.append(spatial)
        return FieldStack(tuple(names), tuple(shapes), tuple(fields)) if fields else None


def _shape(shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _axes(values) -> str:
    """Per-axis values: ``-`` for None, one value when all axes agree, else ``a x b``."""
    if values is None:
        return "-"
    if not values:
        return ""
    text = ["-" if v is None else str(v) for v in values]
    return text[0] if len(set(text)) == 1 else " x ".join(text)


def _si(n: float) -> str:
    """``n`` with a decimal prefix: 15.47 G, 246.82 k."""
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= factor:
            return f"{n / factor:.2f} {prefix}"
    return f"{n:g} "


def _aligned(header: list[str], cells: list[list[str]], numeric) -> list[str]:
    widths = [max(len(c) for c in col) for col in zip(header, *cells)]
    numeric = set(numeric)

    def line(row):
        return "  ".join(c.rjust(w) if i in numeric else c.ljust(w)
                         for i, (c, w) in enumerate(zip(row, widths))).rstrip()
    return [line(header)] + [line(r) for r in cells]


def _markdown(header: list[str], cells: list[list[str]], numeric) -> list[str]:
    numeric = set(numeric)
    rule = ["---:" if i in numeric else "---" for i in range(len(header))]
    return ["| " + " | ".join(row) + " |" for row in (header, rule, *cells)]


# ------------------------------------------------------------------ the rows
_BATCH = 2  # the traced batch: with 2 samples, an op that mixes the batch axis into others shows
def summary(model: nn.Module, input_size: Sequence[int], *, dtype=None, depth: int | None = None) -> Summary:
    """Per-op output shapes, parameters, MACs, memory and receptive fields of ``model``.

    Computed from one ``convkit.trace`` of a meta input (nothing is run;
    see the module docstring for what is counted).

    Args:
        model (Module): the network, any forward (it may be built under
            ``convkit.nn.meta_init``, without weights).
        input_size (sequence of int): one sample's shape without the batch
            axis, e.g. ``(3, 224, 224)``; the axes after the first are spatial.
        dtype: dtype of the activations, for their bytes. Default: the dtype
            of the model's first parameter (``convkit.get_default_dtype()`` if
            it has none).
        depth (int | None): fold every module call at this depth below the
            model into one row (1: the model's children; as torchinfo's
            ``depth``). Default None: a row per op.

    Returns:
        Summary

    Raises:
        TypeError: ``model`` is not a Module.
        ValueError: a bad ``input_size`` or ``depth``; any error of the
            forward pass on that shape (an input too small for a layer, a
            channel mismatch), naming the module whose call raised it and the
            shape it received.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"summary: model must be a convkit.nn.Module, got {type(model).__name__}")
    if (isinstance(input_size, (str, bytes)) or not isinstance(input_size, Sequence) or not input_size
            or not all(is_int(v) and v >= 1 for v in input_size)):
        raise ValueError(f"summary: input_size must be one sample's shape without the batch axis, "
                         f"positive ints such as (3, 224, 224), got {input_size!r}")
    if depth is not None and (not is_int(depth) or depth < 1):
        raise ValueError(f"summary: depth must be a positive int (1: the model's children) or None, got {depth!r}")
    if dtype is None:
        first = next(model.parameters(), None)
        dtype = first.dtype if first is not None else get_default_dtype()
    dtype = np.dtype(dtype)
    size = tuple(int(v) for v in input_size)
    try:
        graph = trace(model, (_BATCH,) + size)
    except (ValueError, TypeError, NotImplementedError) as err:
        raise ValueError(f"summary: {str(err).removeprefix('trace: ')}") from None
    for node in graph.nodes:
        if node.shape[:1] != (_BATCH,):
            raise ValueError(f"summary: {node.name} ({node.op}) turns a batch of {_BATCH} into shape {node.shape}: "
                             f"it does not keep the batch axis first (flatten from axis 1, reshape "
                             f"with the batch size first), so it cannot be described per sample")
    rows, keys = _rows(graph, size, dtype.itemsize)
    layers = [j for j, c in enumerate(graph.calls) if len(c.nodes) > 1 and not any(True for _ in c.module.children())]
    rows, keys = _folded(graph, rows, keys, layers, note=False)  # a layer of several ops is one row
    if depth is not None:
        rows, keys = _folded(graph, rows, keys, [j for j, c in enumerate(graph.calls) if c.depth == depth])
    read = {name for n in graph.nodes for name in (*n.inputs, *n.options.values()) if isinstance(name, str)}
    unused = tuple((name or "(model)", count) for name, m in model.named_modules()
                   if (count := sum(p.data.size for key, p in m._parameters.items()
                                    if p is not None and _join(name, key) not in read)))
    called = {c.name for c in graph.calls}
    buffers = sum(b.nbytes for name, b in graph.buffers.items() if name.rpartition(".")[0] in called)
    output = graph.shape(graph.outputs[0])[1:] if graph.outputs else None
    return Summary(type(model).__name__, size, dtype.name, tuple(rows), buffers, unused, output)


def _rows(graph: Graph, size: tuple[int, ...], itemsize: int) -> tuple[list[Row], list[tuple[str, int]]]:
    """One row per node of ``graph`` (its op's rule applied to the flows of its inputs), and one per call
    of a leaf module that ran no op (``Identity``, ``Dropout`` at inference), in execution order; with
    each row's key, ``("node", index)`` or ``("call", index)``."""
    flows = {"input": Flow(size, tuple(AxisField.identity() for _ in size[1:]))}
    leaf = [not any(True for _ in c.module.children()) for c in graph.calls]
    layers = graph.layers  # a leaf module that ran one op: the row is that layer
    idle = {}
    for j, (c, is_leaf) in enumerate(zip(graph.calls, leaf)):
        if is_leaf and not c.nodes and c.inputs:
            idle.setdefault(c.nodes.start, []).append(j)
    counted: dict[str, str] = {}  # parameter -> the module whose call counted it
    rows, keys = [], []
    for index in range(len(graph.nodes) + 1):
        for j in idle.get(index, ()):
            c = graph.calls[j]
            x = flows[c.inputs[0]]
            rows.append(Row(name=c.name, kind=type(c.module).__name__, input_shape=x.shape, output_shape=x.shape,
                            params=0, trainable_params=0, param_bytes=0, macs=0, other_ops=0,
                            activation_bytes=math.prod(x.shape) * itemsize, im2col_bytes=0,
                            **_field_columns(x.fields)))
            keys.append(("call", j))
        if index == len(graph.nodes):
            break
        node = graph.nodes[index]
        inputs = [flows.get(name) if name is not None else None for name in node.inputs]
        step = rule_for(node.op)(node, inputs, graph)
        flows[node.name] = Flow(node.shape[1:], step.fields or None)
        own = [name for name in node.inputs if name in graph.parameters]
        fresh = [name for name in own if name not in counted]
        note = step.note or field_note(step.fields)
        if own and not fresh:
            note = f"runs {counted[own[0]] or 'the model'} again: its parameters are counted there"
        for name in fresh:
            counted[name] = node.scope
        params = [graph.parameters[name] for name in fresh]
        x = next((f for f in inputs if f is not None), Flow((), None))
        out = node.shape[1:]
        dense_params = dense_connections = None
        if node.op in ("conv", "conv_transpose"):
            dense_connections = math.prod(x.shape) * math.prod(out)
            dense_params = dense_connections + (math.prod(out) if node.inputs[2] is not None else 0)
        rows.append(Row(
            name=node.name, kind=type(layers[index].module).__name__ if index in layers else node.op,
            input_shape=x.shape, output_shape=out,
            params=sum(p.data.size for p in params),
            trainable_params=sum(p.data.size for p in params if p.requires_grad),
            param_bytes=sum(p.data.nbytes for p in params),
            macs=step.macs, other_ops=step.other_ops,
            activation_bytes=math.prod(out) * itemsize, im2col_bytes=step.workspace * itemsize,
            **_field_columns(step.fields or None),
            dense_params=dense_params, dense_connections=dense_connections, note=note,
        ))
        keys.append(("node", index))
    return rows, keys


def _field_columns(fields) -> dict:
    return {"receptive_field": None if fields is None else tuple(f.size for f in fields),
            "jump": None if fields is None else tuple(f.jump for f in fields),
            "start": None if fields is None else tuple(f.start for f in fields),
            "fields": fields}


def _folded(graph: Graph, rows: list[Row], keys: list[tuple[str, int]], calls: list[int], *,
            note: bool = True) -> tuple[list[Row], list[tuple[str, int]]]:
    """``rows`` (and their keys) with the rows of each of ``calls`` (indices into ``graph.calls``) summed
    into one row named after the module; ``note``: say how many rows were folded."""
    folds = {}
    for j in calls:
        c = graph.calls[j]
        end = next((k for k in range(j + 1, len(graph.calls)) if graph.calls[k].depth <= c.depth), len(graph.calls))
        inside = [k for k, (kind, i) in enumerate(keys)
                  if (kind == "node" and i in c.nodes) or (kind == "call" and j < i < end)]
        if len(inside) > 1 and not any(k in folds for k in inside):
            folds[inside[0]] = (j, inside)
    out, out_keys, k = [], [], 0
    while k < len(rows):
        if k not in folds:
            out.append(rows[k])
            out_keys.append(keys[k])
            k += 1
            continue
        j, inside = folds[k]
        call, part = graph.calls[j], [rows[i] for i in inside]
        last = next((r for r in reversed(part) if call.outputs and r.name == call.outputs[0]), part[-1])
        again = next((r.note for r in part if r.note.startswith("runs ")), "")
        text = "; ".join(t for t in (f"{len(part)} rows folded" if note else "", again) if t)
        out.append(Row(
            name=call.name, kind=type(call.module).__name__, input_shape=part[0].input_shape,
            output_shape=last.output_shape,
            **{key: sum(getattr(r, key) for r in part)
               for key in ("params", "trainable_params", "param_bytes", "macs", "other_ops", "activation_bytes")},
            im2col_bytes=max(r.im2col_bytes for r in part), **_field_columns(last.fields), note=text or last.note,
        ))
        out_keys.append(("call", j))
        k = inside[-1] + 1
    return out, out_keys


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)
