"""``interpolate``: up- and down-sampling with PyTorch's signature (``F.interpolate``), nearest and linear modes.

The decoders of segmentation networks and GANs grow feature maps either by
a transposed convolution (learned) or by interpolation followed by a
convolution (fixed, free of checkerboard artefacts). Formulas, PyTorch's
coordinate rules and the gradient: ``convkit.ops.interpolate``.

>>> import numpy as np
>>> import convkit.functional as F
>>> F.interpolate(np.array([[[1.0, 2.0]]]), scale_factor=2).tolist()
[[[1.0, 1.0, 2.0, 2.0]]]
>>> F.interpolate(np.array([[[1.0, 2.0]]]), size=4, mode="linear").tolist()
[[[1.0, 1.25, 1.75, 2.0]]]
"""

from __future__ import annotations

import math
import numbers

from ..autograd import apply
from ..ops import interpolate as I
from ..ops._args import is_int
from ..tensor import Tensor, as_tensor

__all__ = ["interpolate"]

_LINEAR = {"linear": 1, "bilinear": 2, "trilinear": 3}  # the spatial axes each linear mode interpolates
MODES = ("nearest", "nearest-exact", *_LINEAR)


def _per_axis(value, nsp: int, name: str, check) -> tuple:
    """``value`` (one number or one per spatial axis) as an ``nsp``-tuple, each element passing ``check``."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * nsp
    if len(values) != nsp or not all(check(v) for v in values):
        raise ValueError(f"interpolate: {name} must be one positive number or {nsp} (one per spatial axis), "
                         f"got {value!r}")
    return values


def interpolate(input, size=None, scale_factor=None, mode: str = "nearest", align_corners=None,
                recompute_scale_factor=None, antialias: bool = False) -> Tensor:
    """Resample the spatial axes of ``input (N, C, *spatial)`` (1 to 3 of them), as ``torch.nn.functional.interpolate``.

    Give either ``size`` (the output's spatial size) or ``scale_factor``
    (output size ``floor(n * scale_factor)``; the coordinates then use
    ``1/scale_factor``, unless ``recompute_scale_factor`` asks for
    ``n / size``). Modes: ``'nearest'``, ``'nearest-exact'``, and
    ``'linear'`` / ``'bilinear'`` / ``'trilinear'`` for 1 / 2 / 3 spatial
    axes, with ``align_corners`` (default False).
    """
    op = "interpolate"
    x = as_tensor(input, op=op)
    if x.ndim not in (3, 4, 5):
        raise ValueError(f"{op}: input must be (N, C, *spatial) with 1 to 3 spatial axes, got shape {x.shape}")
    nsp = x.ndim - 2
    if mode not in MODES:
        raise ValueError(f"{op}: mode must be one of {MODES} (convkit has no 'bicubic' or 'area'), got {mode!r}")
    if mode in _LINEAR and _LINEAR[mode] != nsp:
        raise ValueError(f"{op}: mode {mode!r} needs {_LINEAR[mode] + 2}-D input, got shape {x.shape}; "
                         f"use {next(k for k, v in _LINEAR.items() if v == nsp)!r} for {nsp} spatial axes")
    if align_corners is not None and mode not in _LINEAR:
        raise ValueError(f"{op}: align_corners can only be set with the linear modes {tuple(_LINEAR)}, "
                         f"got mode {mode!r}")
    if antialias:
        raise ValueError(f"{op}: antialias=True is not supported; leave it False")
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: give exactly one of size and scale_factor, got size={size!r}, "
                         f"scale_factor={scale_factor!r}")
    if size is not None:
        out = _per_axis(size, nsp, "size", lambda v: is_int(v) and v > 0)
        scales = None
    else:
        scales = _per_axis(scale_factor, nsp, "scale_factor",
                           lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool) and 0 < v < math.inf)
        out = tuple(math.floor(float(n) * float(s)) for n, s in zip(x.shape[2:], scales))
        if any(m < 1 for m in out):
            raise ValueError(f"{op}: scale_factor {scale_factor!r} makes the output size {out} of an input of "
                             f"{x.shape[2:]} empty; use a larger scale_factor")
        scales = None if recompute_scale_factor else tuple(float(s) for s in scales)
    return apply(I.interpolate, [x], size=tuple(int(m) for m in out), mode=mode,
                 align_corners=bool(align_corners), scale_factor=scales)
