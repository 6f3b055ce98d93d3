"""Argument normalisation shared by every primitive.

User-facing arguments arrive in PyTorch's forms (an int, a per-dimension
tuple, or a string for padding). They are converted here, once, into the
explicit forms the primitives compute with:

* ``ntuple(v, n)``: one positive int per spatial dimension;
* padding: a tuple of ``(low, high)`` pairs, one per spatial dimension, in
  the order of the spatial axes (D, H, W). ``low`` pads before index 0,
  ``high`` after the last index. This is the only padding order used inside
  convkit.

Every check raises ``ValueError``/``TypeError`` that names the operation,
the argument, what was given and what was expected.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Pads = tuple[tuple[int, int], ...]


def is_int(v) -> bool:
    """True for Python and NumPy integers, False for bools (which are ints to Python)."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def ntuple(value, n: int, name: str, op: str, *, minimum: int = 1) -> tuple[int, ...]:
    """``value`` (int or length-``n`` sequence of ints) as an ``n``-tuple of ints >= ``minimum``."""
    if is_int(value):
        out = (int(value),) * n
    elif isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) == 1 and n > 1:
            value = tuple(value) * n
        if len(value) != n or not all(is_int(v) for v in value):
            raise TypeError(
                f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}"
            )
        out = tuple(int(v) for v in value)
    else:
        raise TypeError(
            f"{op}: {name} must be an int or a tuple of {n} ints, got {type(value).__name__} {value!r}"
        )
    if any(v < minimum for v in out):
        raise ValueError(f"{op}: {name} must be >= {minimum} in every dimension, got {value!r}")
    return out


def same_pads(kernel: Sequence[int], dilation: Sequence[int], flip: bool = False) -> Pads:
    """``padding='same'`` split for stride 1.

    The total padding along an axis is ``d*(k-1)``; the left side gets
    ``total // 2`` and the right side the rest, so an odd total puts the
    extra element on the right (bottom), exactly as ``torch.nn.functional.conv2d``.
    For true convolution (``flip``, the kernel mirrored) the split is
    mirrored too, the extra element on the left: the output is then the
    centre of the full convolution, ``out[i] = full[i + (k-1)//2]`` (dilated
    ``k``), SciPy's ``convolve(mode='same')``.
    """
    pads = []
    for k, d in zip(kernel, dilation):
        total = d * (k - 1)
        low = total - total // 2 if flip else total // 2
        pads.append((low, total - low))
    return tuple(pads)


def conv_pads(padding, n: int, kernel: Sequence[int], stride: Sequence[int],
              dilation: Sequence[int], op: str, *, flip: bool = False) -> Pads:
    """Normalise a convolution ``padding`` argument to ``n`` (low, high) pairs.

    Accepts an int, a tuple of ``n`` ints (symmetric per axis), a tuple of
    ``n`` (low, high) pairs, ``'valid'`` (no padding) or ``'same'`` (stride 1
    only, as in PyTorch: output size equals input size; ``flip``: true
    convolution's mirrored split, ``same_pads``).
    """
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(
                    f"{op}: padding='same' is only defined for stride 1 (as in PyTorch), "
                    f"got stride={tuple(stride)}"
                )
            return same_pads(kernel, dilation, flip)
        raise ValueError(f"{op}: padding must be 'valid', 'same', an int or a tuple, got {padding!r}")
    if (isinstance(padding, Sequence) and len(padding) == n
            and all(isinstance(p, Sequence) and not isinstance(p, str) for p in padding)):
        pairs = []
        for p in padding:
            if len(p) != 2 or not all(is_int(v) for v in p):
                raise TypeError(f"{op}: padding pairs must be (low, high) ints, got {padding!r}")
            pairs.append((int(p[0]), int(p[1])))
        pads = tuple(pairs)
    else:
        sym = ntuple(padding, n, "padding", op, minimum=0)
        pads = tuple((p, p) for p in sym)
    if any(v < 0 for pair in pads for v in pair):
        raise ValueError(f"{op}: padding must be >= 0, got {padding!r}")
    return pads


@dataclass(frozen=True)
class WindowGeometry:
    """The normalised geometry of a convolution, transposed convolution or pooling: one entry per spatial axis.

    ``pads`` are ``(low, high)`` pairs (cropped from the output of a transposed
    convolution); ``output`` is the output's spatial size when known. One type
    for the trace's nodes (``Graph.geometry``), the summary rules and the
    explanations.
    """

    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]
    dilation: tuple[int, ...]
    output: tuple[int, ...] | None = None
    transposed: bool = False

    @property
    def padded(self) -> bool:
        """Whether any axis is padded."""
        return any(lo or hi for lo, hi in self.pads)

    @property
    def span(self) -> tuple[int, ...]:
        """Input positions a dilated kernel covers: ``d(k-1) + 1``."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilation))


def check_kernel_fits(spatial: Sequence[int], kernel: Sequence[int], dilation: Sequence[int], pads: Pads,
                      op: str) -> None:
    """Raise a ValueError with a fix when the dilated kernel, ``d(k-1) + 1`` positions per axis, is larger than
    the padded input, ``n + p_lo + p_hi``: the one check (and message) of convolutions, their explanations
    and ``analysis.conv_output_size``."""
    spans = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(spatial, pads))
    if all(s <= p for s, p in zip(spans, padded)):
        return
    need = max(-(-(s - n) // 2) for n, s in zip(spatial, spans))
    dilated = f" (dilation {_cross(dilation)}: it spans {_cross(spans)})" if max(dilation) > 1 else ""
    raise ValueError(f"{op}: the {_cross(kernel)} kernel{dilated} is larger than the {_cross(padded)} padded input "
                     f"(input {_cross(spatial)}); use a kernel of at most {_cross(padded)}, or pad the input, "
                     f"e.g. padding={need}")


def _cross(sizes) -> str:
    """``(3, 5)`` as ``3×5``."""
    return "×".join(str(int(v)) for v in sizes)


def check_ndim(shape: tuple[int, ...], expected: int, name: str, op: str, layout: str) -> None:
    if len(shape) != expected:
        raise ValueError(
            f"{op}: {name} must be {expected}-D ({layout}), got shape {tuple(shape)}"
        )


def normalize_dim(dim, ndim: int, op: str, name: str = "dim") -> int:
    """``dim`` as an index in ``[0, max(ndim, 1))``; negative values count from the end (a 0-d input has one dim)."""
    if not is_int(dim):
        raise TypeError(f"{op}: {name} must be an int, got {type(dim).__name__} {dim!r}")
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise ValueError(
            f"{op}: {name}={dim} is out of range for an input with {ndim} dimensions "
            f"(expected {-n} to {n - 1})"
        )
    return dim % n


def check_same_dtype(op: str, **arrays) -> None:
    """Raise ``TypeError`` when the given (non-None) arrays or Tensors do not share one dtype, naming both."""
    named = [(name, a) for name, a in arrays.items() if a is not None]
    first_name, first = named[0]
    for name, a in named[1:]:
        if a.dtype != first.dtype:
            raise TypeError(
                f"{op}: {name} has dtype {a.dtype} but {first_name} has dtype {first.dtype}; "
                f"convert one of them (e.g. .float() or .double())"
            )


def relu_slope(value, op: str) -> float | None:
    """``relu_slope``: None, or the negative slope ``a >= 0`` of the (leaky) ReLU an op's output ends in.

    Negative slopes are refused: the fused backward reads the activation's
    derivative off the output's sign, which only ``a >= 0`` preserves.
    """
    if value is None:
        return None
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{op}: relu_slope must be None or a real number >= 0, got {value!r}")
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"{op}: relu_slope must be a finite number >= 0 (0 is ReLU), got {value!r}; "
                         f"apply F.leaky_relu separately for a negative slope")
    return float(value)


def float_dtype(dtype, what: str):
    """``dtype`` as a floating-point ``np.dtype``; TypeError naming ``what`` (``"op: dtype"``) for anything else."""
    try:
        target = np.dtype(dtype)
    except TypeError:
        target = None
    if target is None or target.kind != "f":
        raise TypeError(f"{what} must be a floating-point dtype (np.float32, np.float64, ...), got {dtype!r}")
    return target
