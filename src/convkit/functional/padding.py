"""``pad``: PyTorch's ``F.pad``, every mode, negative pads included.

``pad`` lists ``(left, right)`` pairs starting from the LAST axis, as
PyTorch does: ``(1, 2)`` pads the last axis by 1 before and 2 after,
``(1, 2, 3, 4)`` also the second-to-last by 3 and 4. Inside convkit pads
are ``(low, high)`` pairs in axis order; this is the one place that
converts (``ops.padding``).

A negative pad removes that many elements; the input is cropped first and
the crop then padded, as PyTorch does (so a circular pad wraps around the
cropped axis). Modes (``ops.padding``), for an axis of ``n`` elements::

    constant    value (default 0)             any number of trailing axes (at most 3 here)
    reflect     x[-i], the edge not repeated  pad < n;  input (k+1)-D or (k+2)-D for k padded axes
    replicate   x[0], the edge repeated       input (k+1)-D or (k+2)-D, k <= 3
    circular    x[n - i], wrapping around     pad <= n; input (k+1)-D or (k+2)-D, k <= 3

Backward: the gradient of every padded position is added to the element it
copies (a constant border's is dropped), and a cropped element gets 0.

>>> import numpy as np
>>> import convkit.functional as F
>>> F.pad(np.arange(4.0).reshape(1, 4), (2, -1), mode="reflect").tolist()
[[2.0, 1.0, 0.0, 1.0, 2.0]]
"""

from __future__ import annotations

import numbers

from ..autograd import apply
from ..ops import padding as P
from ..ops._args import is_int
from ..tensor import Tensor, as_tensor

__all__ = ["pad"]

_MODES = {"constant": "zeros", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


def _pairs(pad, ndim: int) -> list[tuple[int, int]]:
    """``(low, high)`` per padded axis, in axis order, from PyTorch's last-axis-first list."""
    if isinstance(pad, (str, bytes)) or not hasattr(pad, "__len__") or not all(is_int(p) for p in pad):
        raise TypeError(f"pad: pad must be a tuple of ints (left, right, top, bottom, ...), got {pad!r}")
    if len(pad) % 2:
        raise ValueError(f"pad: pad must have an even length (a (left, right) pair per axis), got {tuple(pad)}")
    if len(pad) // 2 > ndim:
        raise ValueError(f"pad: pad {tuple(pad)} pads {len(pad) // 2} axes, but the input has only {ndim}")
    return [(int(pad[2 * i]), int(pad[2 * i + 1])) for i in reversed(range(len(pad) // 2))]


def pad(input, pad, mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad (or, with negative pads, crop) the trailing axes of ``input``, as ``torch.nn.functional.pad``.

    Shapes: input ``(*, n_1, ..., n_k)`` -> output ``(*, n_1 + lo_1 + hi_1, ...)`` for ``k = len(pad) // 2``.
    """
    x = as_tensor(input, op="pad")
    pairs = _pairs(pad, x.ndim)
    if mode not in _MODES:
        raise ValueError(f"pad: mode must be one of {tuple(_MODES)}, got {mode!r}")
    if value is not None and mode != "constant":
        raise ValueError(f"pad: mode {mode!r} takes no value (only 'constant' does), got value={value!r}")
    if value is not None and (not isinstance(value, numbers.Real) or isinstance(value, bool)):
        raise TypeError(f"pad: value must be a real number, got {value!r}")
    k = len(pairs)
    if k > 3:
        raise ValueError(f"pad: convkit pads at most the last 3 axes, got pad {tuple(pad)} for {k} axes")
    if mode != "constant" and x.ndim not in (k + 1, k + 2):
        raise ValueError(f"pad: {mode} padding of {k} axes needs a {k + 1}-D or {k + 2}-D input (unbatched or "
                         f"batched), got shape {x.shape}")
    lead = x.ndim - k
    sizes = x.shape[lead:]
    if any(n + min(lo, 0) + min(hi, 0) < 0 for n, (lo, hi) in zip(sizes, pairs)):
        raise ValueError(f"pad: pad {tuple(pad)} crops more than the input's sizes {sizes}")
    if any(lo < 0 or hi < 0 for lo, hi in pairs):  # crop first, as PyTorch does
        x = x[(slice(None),) * lead + tuple(slice(-min(lo, 0), n - -min(hi, 0)) for n, (lo, hi) in
                                           zip(sizes, pairs))]
        pairs = [(max(lo, 0), max(hi, 0)) for lo, hi in pairs]
    P.check_pads(x.shape, pairs, _MODES[mode], "pad")
    if mode != "constant" and any(n == 0 for n in x.shape[lead:]):
        raise ValueError(f"pad: {mode} padding needs non-empty axes, got shape {x.shape}")
    out_sizes = tuple(n + lo + hi for n, (lo, hi) in zip(x.shape[lead:], pairs))
    if any(n < 0 for n in out_sizes):
        raise ValueError(f"pad: the padded sizes {out_sizes} would be negative")
    return apply(P.pad, [x], pads=tuple(pairs), mode=_MODES[mode], value=0.0 if value is None else float(value))
