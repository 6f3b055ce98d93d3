"""What each layer does to one sample: output shape, cost and receptive fields, from its settings alone.

A rule takes a layer and the ``Flow`` reaching it (the per-sample shape
without the batch axis, the receptive fields, the layer that produced it) and
returns a ``Step``. Nothing is computed on data.

Counts per sample (``convkit.analysis.summary`` states them once for users):

* ``macs``: multiply-accumulates of convolutions and linear layers only:
  conv ``C_out * prod(out) * (C_in/g) * prod(k)``; transposed conv
  ``C_in * prod(in) * (C_out/g) * prod(k)`` (counted on its *input* grid: each
  input value is multiplied by each kernel weight once); linear
  ``prod(leading axes) * in_features * out_features``.
* ``other_ops``: everything else, one op per element and pass: bias adds
  (1 per output element); batch norm at inference, folded to a scale and a
  shift (2); layer/group/instance norm (5: mean 1, variance 2, normalise 2,
  plus 2 when affine); ReLU, LeakyReLU, Sigmoid, Tanh (1); Softmax,
  LogSoftmax (3: exponential, sum, divide or subtract); max pooling
  (window size - 1 comparisons per output); average pooling (window size per
  output: the adds and one divide). Dropout, Flatten and Identity: 0.
* ``workspace``: elements of the buffer the im2col algorithm builds to turn a
  convolution into one matrix product: ``C_in * prod(k) * prod(out)`` for a
  conv, ``C_out * prod(k) * prod(in)`` (the columns folded back by col2im)
  for a transposed conv.

Receptive fields (``AxisField``) are those of inference: batch norm in
training mode mixes the whole batch. Positions are input pixel indices
along the axis; padding has negative indices or indices past the end, and
counts towards the field, as in the standard recurrences.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from .. import nn
from ..ops._args import normalize_dim, ntuple
from ..ops.adaptive_pooling import adaptive_windows
from . import arithmetic

__all__ = ["AxisField", "Flow", "Step", "rule_for", "field_note"]


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
    """What reaches a layer: one sample's shape, its receptive fields (one ``AxisField`` per
    axis after the channel axis; None once a layer has mixed all positions) and its producer."""

    shape: tuple[int, ...]
    fields: tuple[AxisField, ...] | None
    source: str


@dataclass(frozen=True)
class Step:
    """What a layer produces and costs for one sample (counts as in the module docstring)."""

    shape: tuple[int, ...]
    fields: tuple[AxisField, ...] | None
    macs: int = 0
    other_ops: int = 0
    workspace: int = 0
    note: str = ""


def _expect_ndim(x: Flow, nsp: int, layout: str) -> None:
    if len(x.shape) != nsp + 1:
        raise ValueError(f"expects one sample of shape ({layout}), got {len(x.shape)} axes")


def _expect_channels(x: Flow, expected: int, what: str) -> None:
    if x.shape[0] != expected:
        raise ValueError(f"expects {expected} input channels ({what}), got {x.shape[0]}")


def _per_axis(x: Flow, make) -> tuple[AxisField, ...] | None:
    """``make(axis, field)`` for every spatial axis, or None when the fields are already lost."""
    return None if x.fields is None else tuple(make(a, f) for a, f in enumerate(x.fields))


_LAYOUTS = {1: "C, L", 2: "C, H, W", 3: "C, D, H, W"}


def _conv(m, x: Flow, nsp: int) -> Step:
    _expect_ndim(x, nsp, _LAYOUTS[nsp])
    _expect_channels(x, m.in_channels, "in_channels")
    if isinstance(m.padding, str):
        pads = (tuple(arithmetic.same_padding(k, d) for k, d in zip(m.kernel_size, m.dilation))
                if m.padding == "same" else ((0, 0),) * nsp)
    else:
        pads = tuple((p, p) for p in m.padding)
    out = tuple(arithmetic.conv_output_size(n, k, s, pad, d)
                for n, k, s, pad, d in zip(x.shape[1:], m.kernel_size, m.stride, pads, m.dilation))
    kernel = math.prod(m.kernel_size)
    positions = m.out_channels * math.prod(out)
    return Step(
        shape=(m.out_channels,) + out,
        fields=_per_axis(x, lambda a, f: f.window(m.kernel_size[a], m.stride[a], m.dilation[a], pads[a][0])),
        macs=positions * (m.in_channels // m.groups) * kernel,
        other_ops=positions if m.bias is not None else 0,
        workspace=m.in_channels * kernel * math.prod(out),
    )


def _conv_transpose(m, x: Flow, nsp: int) -> Step:
    _expect_ndim(x, nsp, _LAYOUTS[nsp])
    _expect_channels(x, m.in_channels, "in_channels")
    out = tuple(arithmetic.conv_transpose_output_size(n, k, s, p, op, d)
                for n, k, s, p, op, d in zip(x.shape[1:], m.kernel_size, m.stride, m.padding,
                                             m.output_padding, m.dilation))
    kernel = math.prod(m.kernel_size)
    inputs = math.prod(x.shape[1:])
    return Step(
        shape=(m.out_channels,) + out,
        fields=_per_axis(x, lambda a, f: f.transposed(m.kernel_size[a], m.stride[a], m.dilation[a], m.padding[a])),
        macs=m.in_channels * inputs * (m.out_channels // m.groups) * kernel,
        other_ops=m.out_channels * math.prod(out) if m.bias is not None else 0,
        workspace=m.out_channels * kernel * inputs,
    )


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


def _pool(m, x: Flow, nsp: int, kind: str) -> Step:
    _expect_ndim(x, nsp, _LAYOUTS[nsp])
    if kind == "max" and m.return_indices:
        raise ValueError("returns (values, indices) with return_indices=True; a chain passes one tensor on")
    kernel = ntuple(m.kernel_size, nsp, "kernel_size", type(m).__name__)
    stride = ntuple(m.stride, nsp, "stride", type(m).__name__)
    padding = ntuple(m.padding, nsp, "padding", type(m).__name__, minimum=0)
    dilation = ntuple(getattr(m, "dilation", 1), nsp, "dilation", type(m).__name__)
    out = tuple(arithmetic.pool_output_size(n, k, s, p, d, m.ceil_mode)
                for n, k, s, p, d in zip(x.shape[1:], kernel, stride, padding, dilation))
    outputs = x.shape[0] * math.prod(out)
    window = math.prod(kernel)
    return Step(
        shape=(x.shape[0],) + out,
        fields=_per_axis(x, lambda a, f: f.window(kernel[a], stride[a], dilation[a], padding[a])),
        other_ops=outputs * (window - 1 if kind == "max" else window),
    )


def _adaptive_pool(m, x: Flow, nsp: int, kind: str) -> Step:
    _expect_ndim(x, nsp, _LAYOUTS[nsp])
    if kind == "max" and m.return_indices:
        raise ValueError("returns (values, indices) with return_indices=True; a chain passes one tensor on")
    size = m.output_size
    sizes = (size,) * nsp if isinstance(size, int) else tuple(size)
    if len(sizes) != nsp or not all(v is None or (isinstance(v, int) and v >= 1) for v in sizes):
        raise ValueError(f"output_size must be an int or {nsp} ints >= 1 or None, got {size!r}")
    spatial = x.shape[1:]
    out = tuple(n if v is None else v for v, n in zip(sizes, spatial))
    elements = math.prod(int((stop - start).sum()) for start, stop in
                         (adaptive_windows(n, o) for n, o in zip(spatial, out)))
    ops = x.shape[0] * (elements - (math.prod(out) if kind == "max" else 0))
    if all(o == 1 for o in out):
        return Step((x.shape[0],) + out, None, other_ops=ops, note=_GLOBAL)
    return Step((x.shape[0],) + out, _per_axis(x, lambda a, f: f.adaptive(spatial[a], out[a])), other_ops=ops)


_GLOBAL = "global pooling: every unit sees the whole input, so no field is given from here on"


def _global_avg_pool(m, x: Flow) -> Step:
    _expect_ndim(x, 2, _LAYOUTS[2])
    shape = (x.shape[0],) if m.flatten else (x.shape[0], 1, 1)
    return Step(shape, None, other_ops=math.prod(x.shape), note=_GLOBAL)


def _batch_norm(m, x: Flow, ndims: tuple[int, ...]) -> Step:
    if len(x.shape) not in ndims:
        layouts = " or ".join(f"{n} axes" for n in ndims)
        raise ValueError(f"expects one sample with {layouts}, got shape with {len(x.shape)}")
    _expect_channels(x, m.num_features, "num_features")
    return Step(x.shape, x.fields, other_ops=2 * math.prod(x.shape))


def _sample_norm(x: Flow, affine: bool) -> Step:
    """Layer, group and instance norm: statistics of this sample, so every output also
    depends, through them, on all the positions they are taken over."""
    note = "" if not x.fields else "field excludes the per-sample statistics, which see every position"
    return Step(x.shape, x.fields, other_ops=(7 if affine else 5) * math.prod(x.shape), note=note)


def _instance_norm(m, x: Flow, nsp: int) -> Step:
    _expect_ndim(x, nsp, _LAYOUTS[nsp])
    if m.affine:
        _expect_channels(x, m.num_features, "num_features")
    return _sample_norm(x, m.affine)


def _group_norm(m, x: Flow) -> Step:
    if not x.shape:
        raise ValueError("expects a channel axis")
    _expect_channels(x, m.num_channels, "num_channels")
    return _sample_norm(x, m.affine)


def _layer_norm(m, x: Flow) -> Step:
    trailing = x.shape[len(x.shape) - len(m.normalized_shape):]
    if trailing != m.normalized_shape:
        raise ValueError(f"normalizes the trailing axes {m.normalized_shape}, but they are {trailing}")
    return _sample_norm(x, m.elementwise_affine)


def _elementwise(m, x: Flow, ops: int) -> Step:
    if isinstance(m, (nn.Softmax, nn.LogSoftmax)):
        normalize_dim(m.dim, len(x.shape) + 1, type(m).__name__)
    return Step(x.shape, x.fields, other_ops=ops * math.prod(x.shape))


def _flatten(m, x: Flow) -> Step:
    batched = (1,) + x.shape
    start = normalize_dim(m.start_dim, len(batched), "Flatten", "start_dim")
    end = normalize_dim(m.end_dim, len(batched), "Flatten", "end_dim")
    if start == 0:
        raise ValueError(f"flattens the batch axis (start_dim={m.start_dim}); summary describes one sample, "
                         f"so use start_dim=1")
    if start > end:
        raise ValueError(f"start_dim={m.start_dim} comes after end_dim={m.end_dim}")
    shape = batched[1:start] + (math.prod(batched[start:end + 1]),) + batched[end + 1:]
    return Step(shape, x.fields if shape == x.shape else None)


def _linear(m, x: Flow) -> Step:
    if not x.shape or x.shape[-1] != m.in_features:
        hint = " (it acts on the last axis: flatten first)" if math.prod(x.shape) == m.in_features else ""
        raise ValueError(f"expects a last axis of size in_features={m.in_features}{hint}")
    rows = math.prod(x.shape[:-1])
    return Step(x.shape[:-1] + (m.out_features,), None, macs=rows * m.in_features * m.out_features,
                other_ops=rows * m.out_features if m.bias is not None else 0)


def _identity(m, x: Flow) -> Step:
    return Step(x.shape, x.fields)


def _build_rules() -> dict[type, object]:
    rules: dict[type, object] = {}
    for nsp in (1, 2, 3):
        def layer(name):
            return getattr(nn, name.format(nsp))
        rules[layer("Conv{}d")] = functools.partial(_conv, nsp=nsp)
        rules[layer("ConvTranspose{}d")] = functools.partial(_conv_transpose, nsp=nsp)
        rules[layer("MaxPool{}d")] = functools.partial(_pool, nsp=nsp, kind="max")
        rules[layer("AvgPool{}d")] = functools.partial(_pool, nsp=nsp, kind="avg")
        rules[layer("AdaptiveMaxPool{}d")] = functools.partial(_adaptive_pool, nsp=nsp, kind="max")
        rules[layer("AdaptiveAvgPool{}d")] = functools.partial(_adaptive_pool, nsp=nsp, kind="avg")
        rules[layer("InstanceNorm{}d")] = functools.partial(_instance_norm, nsp=nsp)
    rules[nn.BatchNorm1d] = functools.partial(_batch_norm, ndims=(1, 2))
    rules[nn.BatchNorm2d] = functools.partial(_batch_norm, ndims=(3,))
    rules[nn.BatchNorm3d] = functools.partial(_batch_norm, ndims=(4,))
    rules[nn.GroupNorm] = _group_norm
    rules[nn.LayerNorm] = _layer_norm
    rules[nn.GlobalAvgPool2d] = _global_avg_pool
    for cls in (nn.ReLU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh):
        rules[cls] = functools.partial(_elementwise, ops=1)
    for cls in (nn.Softmax, nn.LogSoftmax):
        rules[cls] = functools.partial(_elementwise, ops=3)
    rules[nn.Dropout] = _identity
    rules[nn.Identity] = _identity
    rules[nn.Flatten] = _flatten
    rules[nn.Linear] = _linear
    return rules


RULES = _build_rules()


def rule_for(module):
    """The rule for ``module``'s class (or the nearest base with one), or None.

    None also when the class overrides the base's ``forward``: its settings
    no longer say what it computes.
    """
    for cls in type(module).__mro__:
        if cls in RULES:
            return RULES[cls] if type(module).forward is cls.forward else None
    return None
