"""Layer-by-layer symmetry report of any model: where equivariance breaks, by how much, and why.

``report(model, group, input_size)`` runs the model on a seeded random
input ``x`` and keeps the input and the output of each call of a leaf module
(``capture.run_calls``: forward hooks, calls in the order the model's
``forward`` makes them, residual sums and concatenations included). Then it
runs the transforms ``g▷x`` of the group's elements, a batch of them per
forward pass, and compares each call's arrays with the kept ones the moment
the call returns, keeping only one number per array and element:

    equivariance error  max|f(g▷x) − g'▷f(x)| / max|f(x)|   (a map larger than 1×1; ``g'`` is ``g`` with
                                                            its shift divided by the stride so far)
    invariance error    max|f(g▷x) − f(x)| / max|f(x)|      (once the map is gone: ``Flatten``, heads)

as ``convkit.symmetry.check`` does (``checks.element_error``). A call's input
that is an earlier call's output is not compared twice. A layer **breaks**
the symmetry when some element fails at the output of its call but not at
its input; ``diagnosis`` says why, from the layer's configuration and
weights. The model runs in inference mode (``eval()``; its previous modes
are restored) and in its own dtype, which sets the tolerance
(``checks.default_tolerance``).

**Which elements.** By default (``samples="auto"``) the report checks
``n = COMPARED // v`` elements, ``v`` the values one transformed input's pass
compares, held between ``MIN_SAMPLES`` and ``SAMPLES``: every element when
the group has at most ``n`` (every shift of a 32×32 map or smaller, for all
but large models), else ``n`` drawn at random with the seed (ResNet-18 on
3×224×224 compares 8.4 M values per element: 128 of its 50,176 shifts). A
sampled report states what the sample shows of the whole group at 95 %
confidence. ``MIN_SAMPLES = 100`` is the smallest sample whose statements
stay useful: when none of ``n`` sampled elements fails, at most ``3/n`` of
the group fails (the rule of three: 3.0 % for 100); when ``k`` fail, the
Wilson interval of the failing fraction is at most ``±0.98/√n`` (±9.8 %);
and a layer that breaks a fraction ``p`` of the group goes unseen with
probability ``(1 − p)^n`` (under 5 % for ``p ≥ 3 %``). The usual breakers
break much more than that: zero padding every non-zero shift, a stride
``s`` all shifts but a ``1/s²`` share of them, ``Flatten`` all of them.

**Cost.** One forward pass per element, in batches of ``BATCH_BYTES``
worth of activations (the untransformed pass's arrays times the batch),
and one compiled pass over each call's arrays per element
(``differences.max_abs_difference``): memory is the model, the untransformed
pass's arrays and one batch's forward pass, not every call's output for
every element.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import nn
from ..autograd import no_grad
from ..ops._args import is_int, ntuple
from ..tensor import get_default_dtype
from .actions import Action
from .capture import Call, leaves, run_calls
from .checks import _gap, _relative, _scale, default_tolerance, element_error
from .diagnosis import Context, describe, summarise
from .groups import Group
from .results import LayerReport, SymmetryReport

__all__ = ["report", "SymmetryReport", "LayerReport", "SAMPLES", "MIN_SAMPLES", "COMPARED"]

SAMPLES = 1024             # the most group elements checked by default: every shift of a 32x32 map
MIN_SAMPLES = 100          # the fewest sampled by default (module docstring: what 100 elements show)
COMPARED = 1 << 30         # values compared in all (per element: the untransformed pass's distinct arrays)
BATCH_BYTES = 256 << 20    # a batch of transformed inputs: its untransformed arrays' size times the batch, at most


@dataclass(frozen=True)
class _Base:
    """The untransformed pass, as rows: ``2i`` the input of call ``i``, ``2i + 1`` its output.

    ``same_as[r]`` is the earlier row holding the very same array (a call's input that is an earlier call's
    output), whose errors row ``r`` shares; None for the rows whose errors are computed.
    """

    calls: list[Call]
    arrays: list[np.ndarray]
    strides: list[tuple[int, int]]    # the stride so far of each row's array (``_strides``)
    equivariant: list[bool]           # equivariance (a map larger than 1x1) or invariance is asked
    scales: list[float]               # max|f(x)| of each row (0.0 in the rows that share another's errors)
    same_as: list[int | None]

    @classmethod
    def of(cls, calls: list[Call], input_shape) -> "_Base":
        arrays = [a for call in calls for a in (call.x, call.y)]
        first: dict[int, int] = {}
        same_as = [first.setdefault(id(a), r) for r, a in enumerate(arrays)]
        same_as = [None if s == r else s for r, s in enumerate(same_as)]
        return cls(calls, arrays, _strides(calls, input_shape), [_equivariant(a.shape) for a in arrays],
                   [_scale(a) if s is None else 0.0 for a, s in zip(arrays, same_as)], same_as)

    @property
    def values_per_element(self) -> int:
        """How many values one transformed input's pass compares (each distinct array once)."""
        return sum(a.size for a, s in zip(self.arrays, self.same_as) if s is None)

    @property
    def bytes_per_element(self) -> int:
        """The bytes of those values: about what one more input in a batch adds to a forward pass."""
        return sum(a.nbytes for a, s in zip(self.arrays, self.same_as) if s is None)

    def errors(self, row: int, moved: np.ndarray, elements) -> np.ndarray:
        """The relative errors of row ``row`` for a batch ``moved`` of its array under ``elements`` (one each)."""
        y, stride, scale = self.arrays[row], self.strides[row], self.scales[row]
        out = np.empty(len(elements))
        for j, g in enumerate(elements):
            y_g = moved[j:j + 1]
            if not self.equivariant[row]:
                out[j] = _relative(_gap(y_g, y, None, "report", "f(x)"), scale)
                continue
            try:
                out[j] = element_error(y, y_g, g, stride, scale, "report")[0]
            except ValueError:  # the output map no longer fits the action (e.g. not square)
                out[j] = np.inf
        return out


class _Comparison:
    """``on_call`` for a batch of transformed inputs: writes ``errors[row, j]`` of each call as it returns."""

    def __init__(self, base: _Base, elements, errors: np.ndarray, model):
        self.base, self.elements, self.errors, self.model = base, elements, errors, model
        self.seen = 0

    def __call__(self, call: Call) -> None:
        i, base = self.seen, self.base
        self.seen += 1
        if i >= len(base.calls) or call.layer is not base.calls[i].layer:
            raise _changed(self.model)
        for row, moved in ((2 * i, call.x), (2 * i + 1, call.y)):
            k = base.same_as[row]
            self.errors[row] = self.errors[k] if k is not None else base.errors(row, moved, self.elements)


def _changed(model) -> ValueError:
    return ValueError(f"report: {type(model).__name__}'s forward calls other modules for a transformed input; "
                      "its calls must not depend on the input's values")


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


def _sample(group_size: int, samples, base: _Base, seed: int) -> np.ndarray | None:
    """The indices of the elements to check, sorted; None for all of them."""
    if samples == "auto":
        samples = int(np.clip(COMPARED // max(1, base.values_per_element), MIN_SAMPLES, SAMPLES))
    if samples is None or group_size <= samples:
        return None
    return np.sort(np.random.default_rng(seed).choice(group_size, samples, replace=False))


def _strides(calls: list[Call], input_shape) -> list[tuple[int, int]]:
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


def _layer_stride(layer, in_shape, out_shape) -> tuple[int, int]:
    """How much the layer shrinks the grid: its stride, else the size ratio where it divides exactly."""
    if isinstance(layer, nn.Conv2d):
        return tuple(layer.stride)
    if isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
        return ntuple(layer.stride, 2, "stride", type(layer).__name__)
    return _ratio(in_shape, out_shape) if len(in_shape) == 4 else (1, 1)


def _ratio(input_shape, shape) -> tuple[int, int]:
    """``input_shape``'s spatial size over a map's of ``shape``, per axis, where it divides (else 1)."""
    if len(shape) != 4:
        return (1, 1)
    return tuple(i // o if o and i % o == 0 else 1 for i, o in zip(input_shape[-2:], shape[-2:]))


def _equivariant(shape) -> bool:
    """Whether equivariance (rather than invariance) is asked of an array of ``shape``: a map larger than 1x1."""
    return len(shape) == 4 and shape[-2] * shape[-1] > 1


def report(model, group, input_size, *, seed: int = 0, atol: float | None = None,
           batch_size: int | None = None, samples: int | str | None = "auto") -> SymmetryReport:
    """Check the output of every leaf module's call in ``model`` for equivariance (then invariance) to ``group``.

    Args:
        model (nn.Module): the network: a ``Sequential`` or any module whose ``forward`` calls its layers.
        group (Group or iterable of Action): the symmetry to check (e.g. ``Shifts(28, 28)``, ``D4``).
        input_size (tuple[int, int, int]): ``(C, H, W)`` of one input.
        seed (int): seed of the random normal input (the weights are the model's) and of the sample.
            Default: 0.
        atol (float or None): tolerance on each relative error. Default: by the model's dtype
            (``checks.default_tolerance``).
        batch_size (int or None): how many transformed inputs run at once. Default: as many as
            ``BATCH_BYTES`` holds of the untransformed pass's arrays (at most 64).
        samples (int, None or "auto"): check at most this many group elements, drawn at random (with
            ``seed``) when the group is larger, and say what the sample shows of the whole group at 95 %
            confidence; None: every element; "auto": ``COMPARED`` values compared over the
            elements checked, between ``MIN_SAMPLES`` (100) and ``SAMPLES`` (1024) of them (module
            docstring). Default: "auto".

    Returns:
        SymmetryReport: ``rows`` per layer (error, status, reasons); ``str()`` is a table.
    """
    found = leaves(model)
    c, h, w = _check_input_size(input_size)
    if not is_int(seed) or seed < 0:
        raise ValueError(f"report: seed must be a non-negative int, got {seed!r}")
    if batch_size is not None and (not is_int(batch_size) or batch_size < 1):
        raise ValueError(f"report: batch_size must be a positive int or None, got {batch_size!r}")
    if samples is not None and samples != "auto" and (not is_int(samples) or samples < 1):
        raise ValueError(f"report: samples must be a positive int or None (every element), or 'auto', "
                         f"got {samples!r}")
    params = list(model.parameters())
    dtype = params[0].dtype if params else get_default_dtype()
    x = np.random.default_rng(seed).standard_normal((1, c, h, w)).astype(dtype)
    group_name, elements = _check_group(group, x.shape)
    group_size = len(elements)
    atol = default_tolerance(dtype) if atol is None else float(atol)

    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        with no_grad():
            calls: list[Call] = []
            run_calls(model, found, x, calls.append)
            if not calls:
                raise ValueError(f"report: the forward of {type(model).__name__} calls none of its modules; "
                                 "there is no layer to check")
            base = _Base.of(calls, x.shape)
            chosen = _sample(group_size, samples, base, seed)
            if chosen is not None:
                elements = tuple(elements[i] for i in chosen)
            errors = np.empty((len(base.arrays), len(elements)))
            if batch_size is None:
                batch_size = int(max(1, min(64, BATCH_BYTES // max(1, base.bytes_per_element))))
            for start in range(0, len(elements), batch_size):
                chunk = elements[start:start + batch_size]
                compare = _Comparison(base, chunk, errors[:, start:start + len(chunk)], model)
                run_calls(model, found, np.concatenate([g(x) for g in chunk]), compare)
                if compare.seen != len(calls):
                    raise _changed(model)
    finally:
        for m, training in modes:
            object.__setattr__(m, "training", training)
    return _result(model, group_name, group_size, (1, c, h, w), dtype, seed, atol, base, elements, errors)


def _result(model, group_name, group_size, input_shape, dtype, seed, atol, base: _Base, elements,
            errors: np.ndarray) -> SymmetryReport:
    """The rows: per call, its error, how many elements fail, its status and the reasons (``diagnosis``)."""
    points = tuple(dict.fromkeys(g.point for g in elements))
    rows = []
    for i, call in enumerate(base.calls):
        failing_in = ~(errors[2 * i] <= atol)
        failing = ~(errors[2 * i + 1] <= atol)
        new = failing & ~failing_in
        context = Context(call.x.shape, call.y.shape, base.strides[2 * i], base.equivariant[2 * i], atol, points)
        if new.any():
            status = "breaks"
            reasons = summarise(call.layer, [elements[j] for j in np.flatnonzero(new)], context, explain=True)
        elif failing.any():
            status = "inherited"
            reasons = summarise(call.layer, [elements[j] for j in np.flatnonzero(failing)], context, explain=False)
        else:
            status, reasons = ("restored" if failing_in.any() else "holds"), ()
        rows.append(LayerReport(i, call.name, describe(call.layer), tuple(call.y.shape),
                                "equivariance" if base.equivariant[2 * i + 1] else "invariance",
                                float(errors[2 * i + 1].max()), int(failing.sum()), status, reasons))
    return SymmetryReport(type(model).__name__, group_name, group_size, input_shape, np.dtype(dtype),
                          int(seed), atol, tuple(rows), len(elements))
