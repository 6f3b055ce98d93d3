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

Which layers run, in which order: the model's ``forward`` is read, not run.
Understood are ``nn.Sequential`` (and subclasses keeping its ``forward``),
the built-in layers, and custom modules whose ``forward`` is a straight
chain on one input: ``x = self.conv(x)``, nested calls
``self.pool(F.relu(self.conv(x)))``, ``for layer in self.layers: x = layer(x)``
over a ModuleList or Sequential, indexing ``self.layers[0](x)``, the
functions ``relu``, ``leaky_relu``, ``sigmoid``, ``tanh``, ``softmax``,
``log_softmax``, ``dropout``, ``flatten`` and the pooling functions of
``convkit.functional`` (or ``torch``'s of the same names) with constant
arguments, and reshapes that flatten each sample (``x.flatten(1)``,
``x.view(x.size(0), -1)``, ``x.reshape(-1, 400)``). Anything else (branches,
residual sums, ``if``, calls to other methods) raises ``ValueError`` naming the
statement: rather no number than a wrong one. A leaf layer without a rule
also raises, naming it and its class.

>>> import convkit.nn as nn
>>> net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
...                     nn.Linear(6 * 14 * 14, 10))
>>> s = summary(net, (1, 28, 28))
>>> s.total_params, s.total_macs, s.rows[2].output_shape, s.rows[2].receptive_field
(11926, 129360, (6, 14, 14), (6, 6))
"""

from __future__ import annotations

import ast
import functools
import inspect
import json
import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .. import functional as F
from .. import nn
from ..ops._args import is_int
from ..tensor import get_default_dtype
from . import arithmetic
from .layers import RULES, AxisField, Flow, Step, field_note, rule_for

__all__ = ["Row", "Summary", "summary"]


@dataclass(frozen=True)
class Row:
    """One executed leaf layer (or understood function call) and what it does to one sample.

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

    @property
    def output_shape(self) -> tuple[int, ...]:
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
            f"Other ops (bias, norm, activation, pooling; not in MACs): {self.total_other_ops:,}",
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


# ------------------------------------------------------------------ the walk
def summary(model: nn.Module, input_size: Sequence[int], *, dtype=None) -> Summary:
    """Per-layer output shapes, parameters, MACs, memory and receptive fields of ``model``.

    Computed from the layers' settings (see the module docstring for what is
    counted and which ``forward`` methods are understood); nothing is run.

    Args:
        model (Module): the network.
        input_size (sequence of int): one sample's shape without the batch
            axis, e.g. ``(3, 224, 224)``; the axes after the first are spatial.
        dtype: dtype of the activations, for their bytes. Default: the dtype
            of the model's first parameter (``convkit.get_default_dtype()`` if
            it has none).

    Returns:
        Summary

    Raises:
        TypeError: ``model`` is not a Module.
        ValueError: a bad ``input_size``; an input too small for a layer or a
            channel mismatch (naming the layer, its class, the shape it
            received and the layer that produced it); a layer without a rule
            or a ``forward`` that is not a chain.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"summary: model must be a convkit.nn.Module, got {type(model).__name__}")
    if (isinstance(input_size, (str, bytes)) or not isinstance(input_size, Sequence) or not input_size
            or not all(is_int(v) and v >= 1 for v in input_size)):
        raise ValueError(f"summary: input_size must be one sample's shape without the batch axis, "
                         f"positive ints such as (3, 224, 224), got {input_size!r}")
    if dtype is None:
        first = next(model.parameters(), None)
        dtype = first.dtype if first is not None else get_default_dtype()
    dtype = np.dtype(dtype)
    size = tuple(int(v) for v in input_size)
    walker = _Walker(dtype.itemsize)
    start = Flow(size, tuple(AxisField.identity() for _ in size[1:]), "the input")
    walker.module(model, "", start)
    used = walker.used
    unused = tuple((name or "(model)", sum(p.data.size for p in m._parameters.values() if p is not None))
                   for name, m in model.named_modules()
                   if id(m) not in used and any(p is not None for p in m._parameters.values()))
    buffers = sum(np.asarray(b).nbytes for name, m in model.named_modules() if id(m) in used
                  for b in m._buffers.values() if b is not None)
    return Summary(type(model).__name__, size, dtype.name, tuple(walker.rows), buffers, unused)


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)


@dataclass(frozen=True)
class _ModuleRef:
    """A sub-module bound to a name inside ``forward`` (a for-loop variable)."""

    module: nn.Module
    name: str


def _function_layers() -> dict[str, object]:
    """Function (or Tensor method) name -> the layer class it computes, built from its keyword arguments."""
    layers = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh,
              "softmax": nn.Softmax, "log_softmax": nn.LogSoftmax, "dropout": nn.Dropout, "flatten": nn.Flatten}
    for n in (1, 2, 3):
        for kind in ("max_pool", "avg_pool", "adaptive_max_pool", "adaptive_avg_pool"):
            layers[f"{kind}{n}d"] = getattr(nn, "".join(w.capitalize() for w in kind.split("_")) + f"{n}d")
        layers[f"global_avg_pool{n}d"] = functools.partial(getattr(nn, f"AdaptiveAvgPool{n}d"), 1)
    return layers


_FUNCTIONS = _function_layers()
_IGNORED_ARGUMENTS = {"training", "inplace"}  # arguments of the function that change no shape or count
_METHODS = {"flatten", "relu", "sigmoid", "tanh", "softmax", "log_softmax", "reshape", "view"}


class _Unsupported(Exception):
    """A ``forward`` statement or expression the walk cannot follow (turned into a ValueError)."""

    def __init__(self, node: ast.AST, why: str):
        super().__init__(why)
        self.node = node
        self.why = why


class _Walker:
    """Visits the layers in execution order, appending one ``Row`` per leaf layer."""

    def __init__(self, itemsize: int):
        self.itemsize = itemsize
        self.rows: list[Row] = []
        self.used: dict[int, str] = {}
        self.counts: dict[str, int] = {}

    def module(self, m: nn.Module, name: str, x: Flow) -> Flow:
        rule = rule_for(m)
        label = f"{name or 'the model'} ({type(m).__name__})"
        if rule is not None:
            return self.leaf(m, name, type(m).__name__, rule, x)
        if type(m).forward is nn.Sequential.forward:
            for child_name, child in m._modules.items():
                if child is not None:
                    x = self.module(child, _join(name, child_name), x)
            return x
        if type(m).forward is nn.Module.forward:
            raise ValueError(f"summary: {label} has no forward(), so it cannot be called as a layer")
        if not any(m.children()):
            base = next((c for c in type(m).__mro__ if c in RULES), None)
            why = (f"overrides the forward of {base.__name__}" if base is not None
                   else "has no rule: summary knows convkit.nn's convolution, pooling, normalisation, "
                        "activation, dropout, flatten and linear layers")
            raise ValueError(f"summary: cannot analyse layer {label}: it {why}; write it as a Sequential of "
                             f"known layers")
        return _Forward(self, m, name).run(x)

    def leaf(self, m, name: str, kind: str, rule, x: Flow, *, owned: bool = True) -> Flow:
        """Apply ``rule`` and add the row. ``owned``: ``m`` is a module of the model (not a layer
        standing in for a function call), so a second call of it counts no parameters."""
        try:
            step = rule(m, x)
        except (ValueError, TypeError) as err:
            message = str(err)
            for fn in arithmetic.__all__:
                message = message.removeprefix(f"{fn}: ")
            raise type(err)(f"summary: {name or 'the model'} ({kind}) received shape {x.shape} from "
                            f"{x.source}: {message}") from None
        shared = owned and id(m) in self.used
        if owned:
            self.used.setdefault(id(m), name)
        self.rows.append(self.row(m if owned else None, name, kind, x, step, shared))
        return Flow(step.shape, step.fields, f"{name or 'the model'} ({kind})")

    def row(self, m, name: str, kind: str, x: Flow, step: Step, shared: bool) -> Row:
        own = [] if m is None else [p for p in m._parameters.values() if p is not None]
        params = [] if shared else own
        count = sum(p.data.size for p in params)
        note = step.note or field_note(step.fields)
        if shared and own:
            note = f"runs {self.used[id(m)] or 'the model'} again: its parameters are counted there"
        fields = step.fields if step.fields else None
        dense_params = dense_connections = None
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                          nn.ConvTranspose3d)):
            dense_connections = math.prod(x.shape) * math.prod(step.shape)
            dense_params = dense_connections + (math.prod(step.shape) if m.bias is not None else 0)
        return Row(
            name=name, kind=kind, input_shape=x.shape, output_shape=step.shape,
            params=count, trainable_params=sum(p.data.size for p in params if p.requires_grad),
            param_bytes=sum(p.data.nbytes for p in params),
            macs=step.macs, other_ops=step.other_ops,
            activation_bytes=math.prod(step.shape) * self.itemsize,
            im2col_bytes=step.workspace * self.itemsize,
            receptive_field=None if fields is None else tuple(f.size for f in fields),
            jump=None if fields is None else tuple(f.jump for f in fields),
            start=None if fields is None else tuple(f.start for f in fields),
            dense_params=dense_params, dense_connections=dense_connections, note=note, fields=fields,
        )

    def call_name(self, owner: str, function: str) -> str:
        """``relu``, ``relu_1``, ... per owner, as torch.fx names repeated calls."""
        key = _join(owner, function)
        n = self.counts.get(key, 0)
        self.counts[key] = n + 1
        return key if n == 0 else f"{key}_{n}"


class _Forward:
    """Reads a custom module's ``forward`` source and follows it as a chain (see the module docstring)."""

    def __init__(self, walker: _Walker, module: nn.Module, name: str):
        self.walker = walker
        self.module = module
        self.name = name
        cls = type(module)
        try:
            lines, self.first_line = inspect.getsourcelines(cls.forward)
        except (OSError, TypeError) as err:
            raise ValueError(f"summary: cannot read the source of {cls.__name__}.forward "
                             f"({name or 'the model'}) to find the order of its layers: {err}") from None
        self.source = textwrap.dedent("".join(lines))
        self.tree = ast.parse(self.source).body[0]

    def run(self, x: Flow) -> Flow:
        try:
            return self._run(x)
        except _Unsupported as err:
            lineno = getattr(err.node, "lineno", 1)
            code = self.source.splitlines()[lineno - 1].strip()
            raise ValueError(
                f"summary: cannot follow {type(self.module).__name__}.forward ({self.name or 'the model'}), "
                f"line {self.first_line + lineno - 1}: `{code}`: {err.why}. summary reads "
                f"forward without running it and follows chains of layer calls, for-loops over a "
                f"ModuleList, known functions and flattening reshapes (see convkit.analysis.summary)"
            ) from None

    def _run(self, x: Flow) -> Flow:
        args = self.tree.args
        positional = [a.arg for a in args.posonlyargs + args.args]
        if len(positional) - len(args.defaults) != 2 or args.vararg or args.kwarg:
            raise _Unsupported(self.tree, "forward must take exactly one input besides self")
        self.self_name = positional[0]
        env: dict[str, object] = {positional[1]: x}
        result = self._body(self.tree.body, env)
        if result is None:
            raise _Unsupported(self.tree, "forward returns nothing")
        return result

    def _body(self, body, env) -> Flow | None:
        for stmt in body:
            if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                continue
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                env[stmt.targets[0].id] = self._tensor(stmt.value, env)
            elif isinstance(stmt, ast.Return) and stmt.value is not None:
                return self._tensor(stmt.value, env)
            elif isinstance(stmt, ast.For) and isinstance(stmt.target, ast.Name) and not stmt.orelse:
                for ref in self._container(stmt.iter):
                    env[stmt.target.id] = ref
                    if self._body(stmt.body, env) is not None:
                        raise _Unsupported(stmt, "returns from inside a loop")
            else:
                raise _Unsupported(stmt, "only assignments to one name, for-loops over a ModuleList and "
                                         "return are understood")
        return None

    def _self_attr(self, node) -> str | None:
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id == self.self_name):
            return node.attr
        return None

    def _container(self, node) -> list[_ModuleRef]:
        attr = self._self_attr(node)
        child = self.module._modules.get(attr) if attr else None
        if not isinstance(child, (nn.ModuleList, nn.Sequential)):
            raise _Unsupported(node, "loops run over a ModuleList or Sequential attribute of self")
        return [_ModuleRef(m, _join(self.name, attr, key)) for key, m in child._modules.items() if m is not None]

    def _layer(self, node, env) -> _ModuleRef | None:
        """The sub-module a call target names, if it names one."""
        attr = self._self_attr(node)
        if attr is not None:
            child = self.module._modules.get(attr)
            if child is None:
                raise _Unsupported(node, f"self.{attr} is not a sub-module")
            return _ModuleRef(child, _join(self.name, attr))
        if isinstance(node, ast.Subscript):
            container = self._container(node.value)
            index = self._constant(node.slice)
            if not is_int(index) or not -len(container) <= index < len(container):
                raise _Unsupported(node, "index a ModuleList with a constant int in range")
            return container[index]
        if isinstance(node, ast.Name) and isinstance(env.get(node.id), _ModuleRef):
            return env[node.id]
        return None

    def _tensor(self, node, env) -> Flow:
        if isinstance(node, ast.Name):
            value = env.get(node.id)
            if not isinstance(value, Flow):
                raise _Unsupported(node, f"{node.id} is not a tensor computed in forward")
            return value
        if not isinstance(node, ast.Call):
            raise _Unsupported(node, "only calls of layers and functions are understood (no arithmetic, "
                                     "no branches)")
        ref = self._layer(node.func, env)
        if ref is not None:
            if len(node.args) != 1 or node.keywords:
                raise _Unsupported(node, "a layer is called with one tensor")
            return self.walker.module(ref.module, ref.name, self._tensor(node.args[0], env))
        func = node.func
        if isinstance(func, ast.Attribute) and self._is_tensor(func.value, env):
            if func.attr not in _METHODS:
                raise _Unsupported(node, f"the tensor method {func.attr}() is not understood")
            return self._function(node, func.attr, self._tensor(func.value, env), node.args, env)
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        if name not in _FUNCTIONS:
            raise _Unsupported(node, f"the function {name}() is not understood" if name else "unknown call")
        if not node.args:
            raise _Unsupported(node, f"{name}() takes its tensor as the first argument")
        return self._function(node, name, self._tensor(node.args[0], env), node.args[1:], env)

    @staticmethod
    def _is_tensor(node, env) -> bool:
        """Whether ``node`` (the receiver of a method call) is a tensor rather than a module path like ``F``."""
        if isinstance(node, ast.Name):
            return isinstance(env.get(node.id), Flow)
        return isinstance(node, (ast.Call, ast.Subscript))

    def _function(self, node, name: str, x: Flow, args, env) -> Flow:
        if name in ("reshape", "view"):
            return self._reshape(node, name, x, args, env)
        call_args = [self._constant(a) for a in args]
        call_kwargs = {k.arg: self._constant(k.value) for k in node.keywords}
        try:
            bound = inspect.signature(getattr(F, name)).bind(None, *call_args, **call_kwargs)
        except (TypeError, AttributeError) as err:
            raise _Unsupported(node, f"arguments do not match {name}(): {err}") from None
        bound.apply_defaults()
        options = {k: v for k, v in list(bound.arguments.items())[1:] if k not in _IGNORED_ARGUMENTS}
        layer = _FUNCTIONS[name](**options)
        return self.walker.leaf(layer, self.walker.call_name(self.name, name), name, rule_for(layer), x,
                                owned=False)

    def _reshape(self, node, name: str, x: Flow, args, env) -> Flow:
        dims = list(args[0].elts) if len(args) == 1 and isinstance(args[0], (ast.Tuple, ast.List)) else list(args)
        if not dims or node.keywords:
            raise _Unsupported(node, f"{name}() needs the target shape")
        numel = math.prod(x.shape)
        sizes = [self._constant(d) for d in dims[1:]]
        if not self._is_batch(dims[0], env):
            if self._constant(dims[0]) != -1 or -1 in sizes:
                raise _Unsupported(node, "the batch axis comes first: x.size(0), x.shape[0], len(x), "
                                         "or -1 with the other sizes given")
        if not all(is_int(v) and (v >= 1 or v == -1) for v in sizes) or sizes.count(-1) > 1:
            raise _Unsupported(node, "reshape sizes must be constant positive ints and at most one -1")
        known = math.prod(v for v in sizes if v != -1)
        if -1 in sizes:
            if numel % known:
                raise _Unsupported(node, f"cannot split {numel} values per sample into {sizes}")
            sizes[sizes.index(-1)] = numel // known
        if math.prod(sizes) != numel:
            raise _Unsupported(node, f"{name} to {tuple(sizes)} would change the batch size: one sample "
                                     f"{x.shape} has {numel} values")
        shape = tuple(sizes)
        def rule(_, flow: Flow) -> Step:
            return Step(shape, flow.fields if shape == flow.shape else None)
        return self.walker.leaf(None, self.walker.call_name(self.name, name), name, rule, x, owned=False)

    def _is_batch(self, node, env) -> bool:
        """``x.size(0)``, ``x.shape[0]`` or ``len(x)`` for a tensor ``x`` of forward."""
        def tensor_name(n):
            return isinstance(n, ast.Name) and isinstance(env.get(n.id), Flow)
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) \
                and node.value.attr == "shape" and tensor_name(node.value.value):
            return self._constant(node.slice) == 0
        if isinstance(node, ast.Call) and len(node.args) == 1:
            if isinstance(node.func, ast.Attribute) and node.func.attr == "size" and tensor_name(node.func.value):
                return self._constant(node.args[0]) == 0
            if isinstance(node.func, ast.Name) and node.func.id == "len":
                return tensor_name(node.args[0])
        return False

    def _constant(self, node):
        """The value of a constant argument: literals, tuples, + - * // of them, or a plain attribute of self."""
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.Tuple, ast.List)):
            return tuple(self._constant(e) for e in node.elts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -self._constant(node.operand)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv)):
            a, b = self._constant(node.left), self._constant(node.right)
            ops = {ast.Add: lambda: a + b, ast.Sub: lambda: a - b, ast.Mult: lambda: a * b,
                   ast.FloorDiv: lambda: a // b}
            return ops[type(node.op)]()
        attr = self._self_attr(node)
        if attr is not None:
            value = getattr(self.module, attr, None)
            if value is None or isinstance(value, (bool, int, float, str, tuple)):
                return value
        raise _Unsupported(node, "arguments must be constants or plain attributes of self")
