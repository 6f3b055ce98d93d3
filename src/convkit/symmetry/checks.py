"""Measure equivariance and invariance of any function on NCHW data.

For a function ``f`` (a Module or any callable on Tensors or ndarrays), an
input ``x`` and an action ``g``:

* equivariance error: ``max|f(g▷x) − g'▷f(x)| / max|f(x)|``, where ``g'``
  is ``g`` as seen at the output (``g_out``; by default ``g`` with its shift
  divided by the output stride, see ``Action.downsampled``);
* invariance error: ``max|f(g▷x) − f(x)| / max|f(x)|``.

Both are relative to the largest output value (absolute when ``f(x)`` is
all zeros) and are computed in float64 from ``f``'s outputs, which run in
the dtype of ``x`` and of the model: round-off then sets the floor, about
1e-16 for float64 and 1e-7 for float32. ``check`` compares each element's
error with a tolerance, by default ``DEFAULT_TOLERANCES[dtype]`` of the
output dtype: use float64 inputs (and models) to separate exact symmetry
from round-off by many orders of magnitude.

>>> import numpy as np
>>> import convkit.nn as nn
>>> from convkit.symmetry import Shift, equivariance_error
>>> conv = nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular", dtype=np.float64)
>>> x = np.random.default_rng(0).standard_normal((1, 1, 8, 8))
>>> equivariance_error(conv, Shift(2, 3), x) < 1e-14
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..autograd import no_grad
from ..ops._args import is_int
from ..tensor import Tensor
from .actions import Action
from .differences import max_abs_difference
from .groups import Group

__all__ = ["equivariance_error", "invariance_error", "check", "CheckResult", "DEFAULT_TOLERANCES",
           "default_tolerance"]

DEFAULT_TOLERANCES = {
    np.dtype(np.float64): 1e-10,
    np.dtype(np.float32): 1e-4,
    np.dtype(np.float16): 1e-2,
}
"""Default pass threshold on the relative error, by output dtype: far above round-off (about 1e-16
in float64 and 1e-7 in float32 per op, with room for deep nets and long sums) and far below what a
symmetry breaker causes (0.01 to 1 relative)."""


def default_tolerance(dtype) -> float:
    """The default tolerance for outputs of ``dtype`` (``DEFAULT_TOLERANCES``; 0 for exact integer outputs)."""
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        return 0.0
    return DEFAULT_TOLERANCES.get(dtype, 1e-4)


def _values(y, what: str) -> np.ndarray:
    if isinstance(y, Tensor):
        return y.data
    if isinstance(y, np.ndarray):
        return y
    raise TypeError(f"{what} must return a Tensor or an ndarray, got {type(y).__name__}")


def _check_input(x, op: str) -> None:
    if not isinstance(x, (Tensor, np.ndarray)):
        raise TypeError(f"{op}: x must be a Tensor or an ndarray (N, C, H, W), got {type(x).__name__}")
    if x.ndim < 2:
        raise ValueError(f"{op}: x must have at least 2 dimensions (..., H, W), got shape {tuple(x.shape)}")


def _check_callable(f, op: str) -> None:
    if not callable(f):
        raise TypeError(f"{op}: f must be callable (a Module or a function), got {type(f).__name__}")


def _check_action(g, name: str, op: str) -> None:
    if not isinstance(g, Action):
        raise TypeError(f"{op}: {name} must be an Action (Shift, Flip, Rot90, ...), got {type(g).__name__}")


def _apply(f, x) -> np.ndarray:
    with no_grad():
        return _values(f(x), "f")


def _stride_pair(stride, op: str) -> tuple[int, int]:
    if is_int(stride) and stride >= 1:
        return int(stride), int(stride)
    if (isinstance(stride, (tuple, list)) and len(stride) == 2
            and all(is_int(s) and s >= 1 for s in stride)):
        return int(stride[0]), int(stride[1])
    raise ValueError(f"{op}: output_stride must be a positive int or a pair of them, got {stride!r}")


def infer_output_stride(in_shape, out_shape) -> tuple[int, int]:
    """``H_in // H_out`` and ``W_in // W_out`` where they divide exactly, else 1 (same-size outputs: 1)."""
    pairs = zip(tuple(in_shape)[-2:], tuple(out_shape)[-2:])
    return tuple(i // o if o and i % o == 0 else 1 for i, o in pairs)  # type: ignore[return-value]


def _spatial_output(x_shape, y_shape, op: str) -> None:
    if len(y_shape) != len(x_shape):
        raise ValueError(
            f"{op}: f's output has shape {tuple(y_shape)}, without the (H, W) axes of the input "
            f"{tuple(x_shape)}, so equivariance cannot be asked; ask for invariance instead "
            f"(invariance_error, or check(..., invariant=True))"
        )


def _relative(worst: float, scale: float) -> float:
    return worst / scale if scale > 0 else worst


def _scale(y: np.ndarray) -> float:
    return float(np.max(np.abs(y.astype(np.float64)))) if y.size else 0.0


@lru_cache(maxsize=512)
def _source(g: Action, h: int, w: int) -> np.ndarray:
    """``g.source_index(h, w)``, flat and read-only (cached: a report asks for the same few many times)."""
    src = g.source_index(h, w).ravel()
    src.flags.writeable = False
    return src


def _gap(a: np.ndarray, b: np.ndarray, g: Action | None, op: str, what: str,
         stop_above: float = np.inf) -> float:
    """``max|a − g▷b|`` in float64 (``g`` None: the identity, any shape); ValueError when the shapes differ.

    ``g`` must fit ``b`` (``check_fits``), so that ``g▷b`` has ``b``'s shape. Past ``stop_above`` the
    result is only some value above it (``differences.max_abs_difference``).
    """
    if a.shape != b.shape:
        raise ValueError(f"{op}: f(g▷x) has shape {a.shape} but {what} has shape {b.shape}")
    if a.size == 0:
        return 0.0
    if g is None:
        last = b.shape[-1] if b.ndim else 1
        return max_abs_difference(a.reshape(-1, last), b.reshape(-1, last), np.arange(last), stop_above)
    h, w = b.shape[-2:]
    return max_abs_difference(a.reshape(-1, h * w), b.reshape(-1, h * w), _source(g, h, w), stop_above)


def _nearest_shifts(g: Action, stride: tuple[int, int]) -> list[Action]:
    """Output actions shifted by ``⌊t/s⌋`` or ``⌈t/s⌉`` per axis, for a shift ``t`` that ``s`` does not divide."""
    (dy, dx), (sy, sx) = g.shift, stride
    ys = {dy // sy, -(-dy // sy)}
    xs = {dx // sx, -(-dx // sx)}
    return [Action(g.rotation, g.flipped, (cy, cx), g.circular) for cy in sorted(ys) for cx in sorted(xs)]


def element_error(y: np.ndarray, y_g: np.ndarray, g: Action, stride: tuple[int, int], scale: float,
                  op: str = "check") -> tuple[float, str]:
    """Equivariance error of one element from ``y = f(x)`` and ``y_g = f(g▷x)``, with a note.

    When ``stride`` does not divide ``g``'s shift, the error is the smallest
    against the nearest output shifts (``⌊t/s⌋``, ``⌈t/s⌉`` per axis) and the
    note says so.
    """
    try:
        targets, note = [g.downsampled(stride)], ""
    except ValueError:
        targets = _nearest_shifts(g, stride)
        note = f"shift {g.shift} is not a multiple of the output stride {stride}"
    gaps = []
    for t in targets:
        out = t.wrapped(*y.shape[-2:])
        out.check_fits(y.shape, "f(x)")
        # a later target matters only where it is smaller: it may stop once above the best so far
        gaps.append(_gap(y_g, y, out, op, "g▷f(x)", stop_above=min(gaps, default=np.inf)))
    return _relative(min(gaps), scale), note


def equivariance_error(f: Callable, g_in: Action, x, g_out: Action | None = None, *, output_stride=None) -> float:
    """Relative equivariance error ``max|f(g_in▷x) − g_out▷f(x)| / max|f(x)|``.

    Args:
        f (callable): a Module or function on Tensors/ndarrays ``(N, C, H, W)``.
        g_in (Action): the action on the input.
        x (Tensor or ndarray): the input; its dtype (and the model's) sets the round-off.
        g_out (Action or None): the action expected on the output. Default:
            ``g_in.downsampled(output_stride)``.
        output_stride (int, pair or None): how much smaller the output grid
            is (a stride-``s`` layer: ``s``). Default: inferred from the
            shapes, ``H_in // H_out`` where that divides exactly, else 1.
            ValueError when it does not divide ``g_in``'s shift.

    Returns:
        float: 0 for exact equivariance; round-off is about 1e-16 in float64.
    """
    op = "equivariance_error"
    _check_callable(f, op)
    _check_action(g_in, "g_in", op)
    _check_input(x, op)
    g_in.check_fits(x.shape)
    y = _apply(f, x)
    _spatial_output(x.shape, y.shape, op)
    if g_out is not None and output_stride is not None:
        raise ValueError(f"{op}: give g_out or output_stride, not both (g_out={g_out!r}, "
                         f"output_stride={output_stride!r})")
    if g_out is None:
        stride = infer_output_stride(x.shape, y.shape) if output_stride is None else _stride_pair(output_stride, op)
        g_out = g_in.downsampled(stride).wrapped(*y.shape[-2:])
    else:
        _check_action(g_out, "g_out", op)
    g_out.check_fits(y.shape, "f(x)")
    return _relative(_gap(_apply(f, g_in(x)), y, g_out, op, "g_out▷f(x)"), _scale(y))


def invariance_error(f: Callable, g: Action, x) -> float:
    """Relative invariance error ``max|f(g▷x) − f(x)| / max|f(x)|``.

    Args:
        f (callable): a Module or function on Tensors/ndarrays.
        g (Action): the action on the input.
        x (Tensor or ndarray): the input ``(N, C, H, W)``.
    """
    op = "invariance_error"
    _check_callable(f, op)
    _check_action(g, "g", op)
    _check_input(x, op)
    g.check_fits(x.shape)
    y = _apply(f, x)
    return _relative(_gap(_apply(f, g(x)), y, None, op, "f(x)"), _scale(y))


@dataclass(frozen=True)
class CheckResult:
    """Per-element errors of ``check`` and whether all of them are within ``atol``.

    Attributes:
        kind (str): ``"equivariance"`` or ``"invariance"``.
        group (str): the group's name.
        elements (tuple[Action, ...]): the elements checked, in the group's order.
        errors (tuple[float, ...]): the relative error of each element.
        notes (tuple[str, ...]): why an element's error is measured the way it is ('' mostly).
        atol (float): the pass threshold on each error.
        dtype (np.dtype): the dtype of ``f``'s output.
    """

    kind: str
    group: str
    elements: tuple[Action, ...]
    errors: tuple[float, ...]
    notes: tuple[str, ...]
    atol: float
    dtype: np.dtype

    @property
    def passed(self) -> bool:
        """True when every element's error is at most ``atol``."""
        return all(e <= self.atol for e in self.errors)

    def __bool__(self) -> bool:
        return self.passed

    @property
    def max_error(self) -> float:
        return max(self.errors)

    @property
    def failures(self) -> list[tuple[Action, float]]:
        """``(element, error)`` of every element above ``atol``, in the group's order."""
        return [(g, e) for g, e in zip(self.elements, self.errors) if e > self.atol]

    def error(self, g: Action) -> float:
        """The error measured for element ``g``."""
        for h, e in zip(self.elements, self.errors):
            if h == g:
                return e
        raise KeyError(f"CheckResult.error: {g!r} was not checked (group {self.group})")

    def __repr__(self) -> str:
        verdict = "PASS" if self.passed else f"FAIL ({len(self.failures)} of {len(self.errors)} elements)"
        head = (f"{self.kind} under {self.group}: {verdict}, max error {self.max_error:.2e} "
                f"(atol {self.atol:.0e}, {self.dtype})")
        order = range(len(self.errors))
        if len(self.errors) > 16:  # the worst ones
            order = sorted(order, key=lambda i: -self.errors[i])[:8]
        width = max(len(repr(self.elements[i])) for i in order)
        lines = [head]
        for i in order:
            mark = "ok" if self.errors[i] <= self.atol else "FAIL"
            note = f"  ({self.notes[i]})" if self.notes[i] else ""
            lines.append(f"  {self.elements[i]!r:<{width}}  {self.errors[i]:.2e}  {mark}{note}")
        if len(order) < len(self.errors):
            lines.append(f"  ... {len(self.errors) - len(order)} more elements, none worse")
        return "\n".join(lines)


def check(f: Callable, group: Group | Iterable[Action], x, atol: float | None = None, *,
          invariant: bool = False, output_stride=None) -> CheckResult:
    """Equivariance (or invariance) errors of ``f`` for every element of ``group``, and pass/fail.

    Args:
        f (callable): a Module or function on Tensors/ndarrays ``(N, C, H, W)``.
        group (Group or iterable of Action): the elements to check.
        x (Tensor or ndarray): the input; run as given (use float64 for a
            round-off floor near 1e-16).
        atol (float or None): pass threshold on each relative error.
            Default: ``default_tolerance`` of the output dtype (1e-10 for
            float64, 1e-4 for float32).
        invariant (bool): check ``f(g▷x) == f(x)`` instead of equivariance. Default: False.
        output_stride (int, pair or None): as in ``equivariance_error`` (equivariance only).
            An element whose shift it does not divide is not rejected: its
            error is the smallest against the nearest output shifts, and it
            fails.

    Returns:
        CheckResult: ``passed``, ``errors`` per element, a readable ``repr``.
    """
    op = "check"
    _check_callable(f, op)
    _check_input(x, op)
    elements = tuple(group)
    for i, g in enumerate(elements):
        _check_action(g, f"group element {i}", op)
        g.check_fits(x.shape)
    if not elements:
        raise ValueError(f"{op}: group has no elements")
    y = _apply(f, x)
    if atol is None:
        atol = default_tolerance(y.dtype)
    elif not isinstance(atol, (int, float)) or isinstance(atol, bool) or not math.isfinite(atol) or atol < 0:
        raise ValueError(f"{op}: atol must be a finite number >= 0, got {atol!r}")
    scale = _scale(y)
    if not invariant:
        _spatial_output(x.shape, y.shape, op)
        stride = infer_output_stride(x.shape, y.shape) if output_stride is None else _stride_pair(output_stride, op)
    errors, notes = [], []
    for g in elements:
        y_g = _apply(f, g(x))
        if invariant:
            err, note = _relative(_gap(y_g, y, None, op, "f(x)"), scale), ""
        else:
            err, note = element_error(y, y_g, g, stride, scale, op)
        errors.append(err)
        notes.append(note)
    name = group.name if isinstance(group, Group) else f"{len(elements)} actions"
    return CheckResult("invariance" if invariant else "equivariance", name, elements, tuple(errors),
                       tuple(notes), float(atol), y.dtype)
