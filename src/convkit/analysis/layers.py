"""What each op of a traced forward pass does to one sample: cost and receptive fields, from its settings.

A rule takes a node of ``convkit.trace`` (its op, normalised options and
output shape), the ``Flow`` of each of its inputs (the per-sample shape
without the batch axis and the receptive fields; None for parameters and
constants) and the ``Graph`` (for weight shapes and ``Graph.geometry``), and
returns a ``Step``. Nothing is computed on data: the shapes
are those the ops' own shape rules gave during the trace.

Counts per sample (``convkit.analysis.summary`` states them once for users):

* ``macs``: multiply-accumulates of convolutions and linear layers only:
  conv ``C_out * prod(out) * (C_in/g) * prod(k)``; transposed conv
  ``C_in * prod(in) * (C_out/g) * prod(k)`` (counted on its *input* grid: each
  input value is multiplied by each kernel weight once); linear
  ``prod(leading axes) * in_features * out_features``.
* ``other_ops``: everything else, one op per element and pass: bias adds
  (1 per output element); batch norm at inference, folded to a scale and a
  shift (2); layer/group/instance norm (5: mean 1, variance 2, normalise 2,
  plus 2 when affine); ReLU, LeakyReLU, Sigmoid, Tanh, the element-wise
  functions (neg, abs, exp, log, sqrt, pow) and the element-wise
  arithmetic of a merge (add, sub, mul, div: 1 per output element; a sum
  of ``k`` tensors written ``a + b + c`` is ``k - 1`` adds); Softmax,
  LogSoftmax (3: exponential, sum, divide or subtract); max pooling
  (window size - 1 comparisons per output); average pooling (window size per
  output: the adds and one divide). Dropout, reshapes, concatenation and
  Identity: 0 (they move values, or nothing).
* ``workspace``: elements of the buffer the im2col algorithm builds to turn a
  convolution into one matrix product: ``C_in * prod(k) * prod(out)`` for a
  conv, ``C_out * prod(k) * prod(in)`` (the columns folded back by col2im)
  for a transposed conv.

Receptive fields (``AxisField``) are those of inference: batch norm in
training mode mixes the whole batch. Positions are input pixel indices
along the axis; padding has negative indices or indices past the end, and
counts towards the field, as in the standard recurrences. Where paths merge
(an addition, a concatenation along the channels) a unit's field is the
union of what each of its inputs sees (``AxisField.union``): a residual
block's output sees what its convolutions see, the shortcut adding nothing
wider.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from ..ops.adaptive_pooling import adaptive_windows

__all__ = ["AxisField", "Flow", "Step", "RULES", "ELEMENTWISE", "SAMPLE_NORMS", "field_note", "rule_for"]


@dataclass(frozen=True)
class AxisField:
    """The receptive fields of the units along one spatial axis, in input positions.

    Unit ``u = q + m*period`` (``0 <= q < period``) sees input positions
    ``lo[q] + m*shift`` to ``hi[q] + m*shift``; ``lo[q]`` is None for a unit
    that sees no input (a transposed conv's output that no kernel tap
    reaches). A chain of convolutions and pools has period 1, the uniform
    case of the standard recurrences. A transposed conv of stride ``s``
    multiplies the period by ``s``: its units see alternately more and fewer
    inputs (k=3, s=2: 2 and 1), so ``size`` reports the largest field.
    A dilated layer's field is the span from its first to its last input;
    the positions between its taps are holes inside that span.
    """

    lo: tuple[int | None, ...]
    hi: tuple[int | None, ...]
    shift: int

    @classmethod
    def identity(cls) -> AxisField:
        """Each unit of the input sees itself."""
        return cls((0,), (0,), 1)

    @property
    def period(self) -> int:
        return len(self.lo)

    def bounds(self, u: int) -> tuple[int, int] | None:
        """``(first, last)`` input position seen by unit ``u`` (any int, padding included), or None."""
        m, q = divmod(u, self.period)
        if self.lo[q] is None:
            return None
        return self.lo[q] + m * self.shift, self.hi[q] + m * self.shift

    def gather(self, reads, out_period: int, in_advance: int) -> AxisField:
        """Fields of a layer whose output unit ``q < out_period`` reads the units ``reads(q)``
        of this axis, and unit ``q + out_period`` the same units moved by ``in_advance``."""
        repeats = self.period // math.gcd(self.period, in_advance)
        lo, hi = [], []
        for q in range(out_period * repeats):
            m, r = divmod(q, out_period)
            seen = [b for i in reads(r) if (b := self.bounds(i + m * in_advance)) is not None]
            lo.append(min(b[0] for b in seen) if seen else None)
            hi.append(max(b[1] for b in seen) if seen else None)
        return AxisField(tuple(lo), tuple(hi), self.shift * in_advance * repeats // self.period)

    def window(self, kernel: int, stride: int, dilation: int, pad_lo: int) -> AxisField:
        """Convolution or pooling: unit ``o`` reads ``o*s - p_lo + t*d``, ``t < k``."""
        return self.gather(lambda q: [t * dilation - pad_lo for t in range(kernel)], 1, stride)

    def transposed(self, kernel: int, stride: int, dilation: int, pad_lo: int) -> AxisField:
        """Transposed convolution: output ``o`` receives input ``i`` when ``i*s - p_lo + t*d = o``."""
        def reads(q):
            return [(q + pad_lo - t * dilation) // stride for t in range(kernel)
                    if (q + pad_lo - t * dilation) % stride == 0]
        return self.gather(reads, stride, 1)

    def adaptive(self, n: int, o: int) -> AxisField:
        """Adaptive pooling of ``n`` units to ``o``: window ``i`` is ``[floor(i*n/o), ceil((i+1)*n/o))``."""
        g = math.gcd(n, o)
        start, stop = adaptive_windows(n, o)
        return self.gather(lambda q: range(int(start[q]), int(stop[q])), o // g, n // g)

    def union(self, other: AxisField) -> AxisField | None:
        """Unit ``u`` sees what it sees here and in ``other`` (the first to the last position of both);
        None when the two do not repeat with the same jump (no periodic description exists)."""
        period = self.period * other.period // math.gcd(self.period, other.period)
        shift = self.shift * (period // self.period)
        if other.shift * (period // other.period) != shift:
            return None
        lo, hi = [], []
        for q in range(period):
            seen = [b for b in (self.bounds(q), other.bounds(q)) if b is not None]
            lo.append(min(b[0] for b in seen) if seen else None)
            hi.append(max(b[1] for b in seen) if seen else None)
        return AxisField(tuple(lo), tuple(hi), shift)

    def _seeing(self) -> list[int]:
        return [q for q in range(self.period) if self.lo[q] is not None]

    @property
    def size(self) -> int:
        """The largest field: ``hi - lo + 1`` over the units (0 when no unit sees any input)."""
        return max((self.hi[q] - self.lo[q] + 1 for q in self._seeing()), default=0)

    @property
    def jump(self) -> int | float:
        """Input positions between neighbouring units (the effective stride): ``shift / period``."""
        return _number(self.shift / self.period)

    @property
    def start(self) -> int | float | None:
        """Centre of unit 0's field, extrapolated by ``jump`` when unit 0 sees no input
        (None when no unit does)."""
        seeing = self._seeing()
        if not seeing:
            return None
        q = seeing[0]
        return _number((self.lo[q] + self.hi[q]) / 2 - q * self.shift / self.period)

    def sizes(self) -> list[int]:
        """The distinct field sizes, smallest first (one for a uniform axis)."""
        return sorted({self.hi[q] - self.lo[q] + 1 for q in self._seeing()})

    @property
    def evenly_spaced(self) -> bool:
        """The fields' centres lie ``jump`` apart (checked over the units that see input)."""
        step = self.shift / self.period
        return all((self.lo[q] + self.hi[q]) / 2 == self.start + q * step for q in self._seeing())

    @property
    def uniform(self) -> bool:
        """Every unit sees the same number of positions, centred ``jump`` apart: the standard recurrences hold."""
        return len(self._seeing()) == self.period and len(self.sizes()) == 1 and self.evenly_spaced


def _number(x: float) -> int | float:
    return int(x) if float(x).is_integer() else x


@dataclass(frozen=True)
class Flow:
    """A value reaching an op: one sample's shape and its receptive fields (one ``AxisField`` per
    axis after the channel axis; None once an op has mixed all positions)."""

    shape: tuple[int, ...]
    fields: tuple[AxisField, ...] | None


@dataclass(frozen=True)
class Step:
    """The receptive fields of an op's output and what it costs for one sample (counts as in the module
    docstring)."""

    fields: tuple[AxisField, ...] | None
    macs: int = 0
    other_ops: int = 0
    workspace: int = 0
    note: str = ""


def field_note(fields) -> str:
    """A note for fields that differ from unit to unit (after a transposed conv or uneven adaptive
    windows), else ``""``."""
    if not fields or all(f.uniform for f in fields):
        return ""
    if any(not f.sizes() for f in fields):
        return "no input reaches these units, only biases do"
    parts = []
    if any(len(f.sizes()) > 1 for f in fields):
        sizes = " x ".join("/".join(map(str, f.sizes())) for f in fields)
        parts.append(f"units see {sizes} positions (largest shown)")
    if not all(f.evenly_spaced for f in fields):
        parts.append("centres unevenly spaced (jump is the mean spacing)")
    if any(None in f.lo for f in fields):
        parts.append("some units see no input, only biases")
    return "non-uniform field: " + "; ".join(parts)


def _per_axis(x: Flow, make) -> tuple[AxisField, ...] | None:
    """``make(axis, field)`` for every spatial axis, or None when the fields are already lost."""
    return None if x.fields is None else tuple(make(a, f) for a, f in enumerate(x.fields))


def _numel(node) -> int:
    """Elements of the node's output for one sample."""
    return math.prod(node.shape[1:])


def _conv(node, inputs, graph) -> Step:
    x, g = inputs[0], graph.geometry(node)
    positions = math.prod(node.shape[1:])
    return Step(
        fields=_per_axis(x, lambda a, f: f.window(g.kernel[a], g.stride[a], g.dilation[a], g.pads[a][0])),
        macs=positions * graph.shape(node.inputs[1])[1] * math.prod(g.kernel),
        other_ops=positions if node.inputs[2] is not None else 0,
        workspace=x.shape[0] * math.prod(g.kernel) * math.prod(g.output),
    )


def _conv_transpose(node, inputs, graph) -> Step:
    x, g = inputs[0], graph.geometry(node)
    in_positions = math.prod(x.shape[1:])
    return Step(
        fields=_per_axis(x, lambda a, f: f.transposed(g.kernel[a], g.stride[a], g.dilation[a], g.pads[a][0])),
        macs=x.shape[0] * in_positions * graph.shape(node.inputs[1])[1] * math.prod(g.kernel),
        other_ops=_numel(node) if node.inputs[2] is not None else 0,
        workspace=node.shape[1] * math.prod(g.kernel) * in_positions,
    )


def _pool(node, inputs, graph, kind: str) -> Step:
    x, g = inputs[0], graph.geometry(node)
    window = math.prod(g.kernel)
    return Step(
        fields=_per_axis(x, lambda a, f: f.window(g.kernel[a], g.stride[a], g.dilation[a], g.pads[a][0])),
        other_ops=_numel(node) * (window - 1 if kind == "max" else window),
    )


_GLOBAL = "global pooling: every unit sees the whole input, so no field is given from here on"


def _adaptive_pool(node, inputs, kind: str) -> Step:
    x = inputs[0]
    spatial, out = x.shape[1:], node.shape[2:]
    elements = math.prod(int((stop - start).sum()) for start, stop in
                         (adaptive_windows(n, m) for n, m in zip(spatial, out)))
    ops = x.shape[0] * (elements - (math.prod(out) if kind == "max" else 0))
    if all(m == 1 for m in out):
        return Step(None, other_ops=ops, note=_GLOBAL)
    return Step(_per_axis(x, lambda a, f: f.adaptive(spatial[a], out[a])), other_ops=ops)


def _global_avg_pool(node, inputs) -> Step:
    return Step(None, other_ops=math.prod(inputs[0].shape), note=_GLOBAL)


def _sample_norm(node, inputs, affine: bool) -> Step:
    """Layer, group and instance norm: statistics of this sample, so every output also
    depends, through them, on all the positions they are taken over."""
    x = inputs[0]
    note = "" if not x.fields else "field excludes the per-sample statistics, which see every position"
    return Step(x.fields, other_ops=(7 if affine else 5) * _numel(node), note=note)


def _elementwise(node, inputs, ops: int) -> Step:
    return Step(inputs[0].fields, other_ops=ops * _numel(node))


def _merge(node, inputs, ops: int) -> Step:
    """Element-wise arithmetic of tensors (a residual addition, a gate): each unit sees the union of
    what its inputs' units see; a parameter or constant operand adds no field."""
    flows = [x for x in inputs if x is not None]
    return Step(_union(flows, node.shape[1:]), other_ops=ops * _numel(node))


def _union(flows, shape) -> tuple[AxisField, ...] | None:
    """The fields of a value made from ``flows`` position by position (None if any has none or they
    have other spatial axes than ``shape``)."""
    if not flows or any(x.fields is None or len(x.shape) != len(shape) or x.shape[1:] != shape[1:] for x in flows):
        return None
    fields = flows[0].fields
    for x in flows[1:]:
        merged = tuple(a.union(b) for a, b in zip(fields, x.fields))
        if any(f is None for f in merged):
            return None
        fields = merged
    return fields


def _cat(node, inputs) -> Step:
    """Concatenation: along the channels, each unit sees the union of the inputs' fields; along a
    spatial axis, positions are no longer one grid and the fields are not given."""
    axis = node.options["axis"] % len(node.shape)
    return Step(_union([x for x in inputs if x is not None], node.shape[1:]) if axis == 1 else None)


def _reshape(node, inputs) -> Step:
    x = inputs[0]
    return Step(x.fields if tuple(node.shape[1:]) == x.shape else None)


def _pad(node, inputs) -> Step:
    """Padding shifts the positions by the low pads (what lies in a reflected or circular pad is
    counted as padding, as the standard recurrences do)."""
    x, pads = inputs[0], node.options["pads"]
    lead = len(x.shape) + 1 - len(pads)
    if lead < 2 or x.fields is None:
        return Step(None)
    pads = ((0, 0),) * (lead - 2) + tuple(pads)
    return Step(tuple(f.window(1, 1, 1, lo) for f, (lo, _) in zip(x.fields, pads)))


def _linear(node, inputs, graph) -> Step:
    rows = math.prod(node.shape[1:-1])
    out_features, in_features = graph.shape(node.inputs[1])
    return Step(None, macs=rows * in_features * out_features,
                other_ops=rows * out_features if node.inputs[2] is not None else 0)


def _other(node, inputs) -> Step:
    """Any other op (matmul, reductions, transpose, indexing, interpolation...): one op per output
    element; no field is given after it (a note says so where its input had one)."""
    had = any(x is not None and x.fields for x in inputs)
    return Step(None, other_ops=_numel(node), note=f"no receptive field is given after {node.op}" if had else "")


def _plain(rule, **options):
    return lambda node, inputs, graph: rule(node, inputs, **options)


ELEMENTWISE = {  # op -> other ops per element; the output unit sees what the input unit sees
    "relu": 1, "leaky_relu": 1, "sigmoid": 1, "tanh": 1, "neg": 1, "abs": 1, "exp": 1, "log": 1, "sqrt": 1,
    "pow": 1, "softmax": 3, "log_softmax": 3, "batch_norm": 2, "dropout": 0, "cast": 0,
}
SAMPLE_NORMS = ("instance_norm", "group_norm", "layer_norm")  # fields kept, statistics over the sample

RULES = {
    "conv": _conv,
    "conv_transpose": _conv_transpose,
    "linear": _linear,
    "max_pool": functools.partial(_pool, kind="max"),
    "avg_pool": functools.partial(_pool, kind="avg"),
    "adaptive_max_pool": _plain(_adaptive_pool, kind="max"),
    "adaptive_avg_pool": _plain(_adaptive_pool, kind="avg"),
    "global_avg_pool": _plain(_global_avg_pool),
    **{op: lambda node, inputs, graph: _sample_norm(node, inputs, node.inputs[1] is not None)
       for op in SAMPLE_NORMS},
    **{op: _plain(_elementwise, ops=n) for op, n in ELEMENTWISE.items()},
    **{op: _plain(_merge, ops=1) for op in ("add", "sub", "mul", "div")},
    "cat": _plain(_cat),
    "reshape": _plain(_reshape),
    "pad": _plain(_pad),
}


def rule_for(op: str):
    """The rule of primitive ``op``; ``_other`` for ops without their own."""
    return RULES.get(op, _plain(_other))
