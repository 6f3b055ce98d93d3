"""Convolutions with PyTorch's signatures: ``conv{1,2,3}d``, ``convolve{1,2,3}d``, ``conv_transpose{1,2,3}d``.

* ``conv*d`` is cross-correlation (what PyTorch and every CNN library call
  convolution): ``out[n, o, y] = b[o] + sum_{c, j} w[o, c, j] * xp[n, c, y*s + j*d]``.
* ``convolve*d`` is true convolution: the same with the kernel mirrored in
  every spatial axis; padding, stride, dilation and output size are those
  of ``conv*d``, except that ``'same'`` with an even (dilated) kernel puts
  the odd extra padding element on the low side, the mirror of ``conv*d``'s:
  the output is the centre of the full convolution, as SciPy's
  ``convolve(mode='same')``, the reference for true convolution, gives it.
* ``conv_transpose*d`` is the adjoint of ``conv*d`` (see ``convkit.ops.conv_transpose``).

Layouts are PyTorch's: input ``(N, C_in, *spatial)`` or unbatched
``(C_in, *spatial)``, conv weight ``(C_out, C_in/groups, *kernel)``,
transposed weight ``(C_in, C_out/groups, *kernel)``, bias ``(C_out,)``.
``padding`` of ``conv*d`` is an int, a per-axis tuple, a per-axis tuple of
``(low, high)`` pairs, ``'valid'`` or ``'same'`` (stride 1; an odd total puts
the extra element on the high side, as PyTorch does). ``padding_mode``
(zeros, reflect, replicate, circular) is a keyword that PyTorch's functional
form lacks; its modules have it.

``algorithm`` (keyword, default ``"auto"``) picks how the sum is computed:
``"im2col"``, ``"winograd"`` (F(2x2,3x3)), ``"winograd4"`` (F(4x4,3x3)),
``"fft"``, ``"direct"`` or ``"auto"`` (see ``convkit.backends``); every one
gives the same result up to rounding. Forcing one that cannot run the call
(winograd with a 5x5 kernel, say) raises ValueError.

``relu_slope`` (keyword, default None) ends the convolution in a ReLU
(``0``) or leaky ReLU (its negative slope, ``>= 0``), computed in the pass
that adds the bias: ``F.conv2d(x, w, b, relu_slope=0)`` equals
``F.relu(F.conv2d(x, w, b))``, bit for bit, with one pass less each way.
``nn.Sequential`` uses it for a convolution followed by ``nn.ReLU``.

Every argument is checked before anything is computed.

>>> import numpy as np
>>> import convkit.functional as F
>>> x = np.arange(16.0).reshape(1, 1, 4, 4)
>>> F.conv2d(x, np.ones((2, 1, 3, 3)), padding=1, stride=2).shape
(1, 2, 2, 2)
>>> F.conv_transpose2d(np.ones((1, 2, 2, 2)), np.ones((2, 1, 3, 3)), stride=2, padding=1, output_padding=1).shape
(1, 1, 4, 4)
"""

from __future__ import annotations

from ..autograd import apply
from ..backends import choose_conv_algorithm
from ..ops._args import check_kernel_fits, conv_pads, ntuple, relu_slope as check_relu_slope
from ..ops.conv import conv, problem_for
from ..ops.conv_transpose import adjoint_problem, conv_transpose, transposed_sizes
from ..ops.padding import check_pads
from ..tensor import Tensor, as_tensor

__all__ = [
    "conv1d", "conv2d", "conv3d",
    "convolve1d", "convolve2d", "convolve3d",
    "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
]

_SPATIAL = {1: "L", 2: "H, W", 3: "D, H, W"}
_CHANNELS_LAST = {1: "NLC", 2: "NHWC", 3: "NDHWC"}


def _kernel_letters(nsp: int) -> str:
    return ", ".join("k" + a for a in _SPATIAL[nsp].split(", "))


def _operands(input, weight, bias, nsp: int, op: str, weight_layout: str):
    """Tensors for the operands, after checking ranks and dtypes; also whether the input is batched."""
    x = as_tensor(input, name="input", op=op)
    w = as_tensor(weight, name="weight", op=op)
    b = None if bias is None else as_tensor(bias, name="bias", op=op)
    if x.ndim not in (nsp + 1, nsp + 2):
        raise ValueError(
            f"{op}: input must be {nsp + 2}-D (N, C_in, {_SPATIAL[nsp]}) or {nsp + 1}-D unbatched "
            f"(C_in, {_SPATIAL[nsp]}), got shape {x.shape}"
        )
    if w.ndim != nsp + 2:
        raise ValueError(f"{op}: weight must be {nsp + 2}-D {weight_layout}, got shape {w.shape}")
    for name, t in (("weight", w), ("bias", b)):
        if t is not None and t.dtype != x.dtype:
            raise TypeError(
                f"{op}: input dtype {x.dtype} and {name} dtype {t.dtype} differ; "
                f"convert one so both are {x.dtype} or both {t.dtype}"
            )
    return x, w, b, x.ndim == nsp + 2


def _check_groups(groups, channels: int, what: str, w_shape, op: str) -> None:
    if not isinstance(groups, int) or isinstance(groups, bool):
        raise TypeError(f"{op}: groups must be a positive int, got {groups!r}")
    if groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups}")
    if channels % groups:
        raise ValueError(f"{op}: groups={groups} must divide {what} = {channels} (weight shape {w_shape})")


def _check_channels(x_shape, batched: bool, expected: int, w_shape, groups: int, nsp: int, op: str) -> None:
    """The input's channel axis must hold ``expected`` channels; hint at channels-last input."""
    axis = 1 if batched else 0
    got = x_shape[axis]
    if got == expected:
        return
    msg = (f"{op}: input has {got} channels but weight expects {expected} "
           f"(weight shape {w_shape}, groups={groups}, input shape {x_shape})")
    if x_shape[-1] == expected:
        nd = len(x_shape)
        perm = (0, nd - 1, *range(1, nd - 1)) if batched else (nd - 1, *range(nd - 1))
        layout = _CHANNELS_LAST[nsp] if batched else _CHANNELS_LAST[nsp][1:]
        msg += (f"; the input looks channels-last ({layout}), but convkit expects channels "
                f"first: use input.permute{perm}")
    raise ValueError(msg)


def _check_bias(b: Tensor | None, channels: int, op: str) -> None:
    if b is not None and b.shape != (channels,):
        raise ValueError(f"{op}: bias must have shape ({channels},) (one per output channel), got {b.shape}")


def _check_spatial(spatial, op: str) -> None:
    if any(n < 1 for n in spatial):
        raise ValueError(f"{op}: input spatial sizes must be positive, got {tuple(spatial)}")


def _batched(x: Tensor, batched: bool) -> Tensor:
    return x if batched else x.reshape((1,) + x.shape)


def _unbatched(y: Tensor, batched: bool) -> Tensor:
    return y if batched else y.reshape(y.shape[1:])


def _conv(nsp: int, flip: bool, op: str, input, weight, bias, stride, padding, dilation, groups,
          padding_mode, algorithm, relu_slope) -> Tensor:
    layout = f"(C_out, C_in/groups, {_kernel_letters(nsp)})"
    x, w, b, batched = _operands(input, weight, bias, nsp, op, layout)
    stride = ntuple(stride, nsp, "stride", op)
    dilation = ntuple(dilation, nsp, "dilation", op)
    kernel = w.shape[2:]
    pads = conv_pads(padding, nsp, kernel, stride, dilation, op, flip=flip)
    _check_groups(groups, w.shape[0], "the output channels, weight.shape[0]", w.shape, op)
    _check_channels(x.shape, batched, w.shape[1] * groups, w.shape, groups, nsp, op)
    _check_bias(b, w.shape[0], op)
    _check_spatial(x.shape[-nsp:], op)
    check_pads(x.shape, pads, padding_mode, op)
    check_kernel_fits(x.shape[-nsp:], kernel, dilation, pads, op)
    relu_slope = check_relu_slope(relu_slope, op)
    x = _batched(x, batched)
    problem = problem_for(x.shape, w.shape, stride=stride, pads=pads, dilation=dilation, groups=groups,
                          padding_mode=padding_mode, dtype=x.dtype)
    y = apply(conv, [x, w, b], stride=stride, pads=pads, dilation=dilation, groups=groups,
              padding_mode=padding_mode, flip=flip, algorithm=choose_conv_algorithm(algorithm, problem, op),
              relu_slope=relu_slope)
    return _unbatched(y, batched)


def _conv_transpose(nsp: int, op: str, input, weight, bias, stride, padding, output_padding, groups,
                    dilation, algorithm) -> Tensor:
    layout = f"(C_in, C_out/groups, {_kernel_letters(nsp)})"
    x, w, b, batched = _operands(input, weight, bias, nsp, op, layout)
    stride = ntuple(stride, nsp, "stride", op)
    dilation = ntuple(dilation, nsp, "dilation", op)
    if isinstance(padding, str):
        raise TypeError(
            f"{op}: padding must be an int or a tuple of {nsp} ints (transposed convolution has no "
            f"'same'/'valid'), got {padding!r}"
        )
    pads = tuple((p, p) for p in ntuple(padding, nsp, "padding", op, minimum=0))
    output_padding = ntuple(output_padding, nsp, "output_padding", op, minimum=0)
    if any(op_ >= s and op_ >= d for op_, s, d in zip(output_padding, stride, dilation)):
        raise ValueError(
            f"{op}: output_padding must be smaller than either stride or dilation in every dimension, "
            f"got output_padding={output_padding}, stride={stride}, dilation={dilation}"
        )
    _check_groups(groups, w.shape[0], "the input channels, weight.shape[0]", w.shape, op)
    _check_channels(x.shape, batched, w.shape[0], w.shape, groups, nsp, op)
    _check_bias(b, w.shape[1] * groups, op)
    _check_spatial(x.shape[-nsp:], op)
    out = transposed_sizes(x.shape[-nsp:], w.shape[2:], stride, pads, output_padding, dilation)
    if any(o < 1 for o in out):
        raise ValueError(
            f"{op}: output size {out} is not positive for input size {x.shape[-nsp:]}, kernel "
            f"{w.shape[2:]}, stride {stride}, padding {padding!r}, dilation {dilation}; reduce padding"
        )
    x = _batched(x, batched)
    problem = adjoint_problem(x.shape, w.shape, stride, dilation, groups, x.dtype)
    y = apply(conv_transpose, [x, w, b], stride=stride, pads=pads, output_padding=output_padding,
              dilation=dilation, groups=groups, algorithm=choose_conv_algorithm(algorithm, problem, op))
    return _unbatched(y, batched)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           padding_mode="zeros", algorithm="auto", relu_slope=None) -> Tensor:
    """1-D cross-correlation, as ``torch.nn.functional.conv1d``.

    Shapes: input ``(N, C_in, L)`` or ``(C_in, L)``; weight ``(C_out, C_in/groups, kL)``;
    bias ``(C_out,)`` or None; output ``(N, C_out, L_out)``,
    ``L_out = (L + p_lo + p_hi - dilation*(kL-1) - 1) // stride + 1``.
    """
    return _conv(1, False, "conv1d", input, weight, bias, stride, padding, dilation, groups, padding_mode,
                 algorithm, relu_slope)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           padding_mode="zeros", algorithm="auto", relu_slope=None) -> Tensor:
    """2-D cross-correlation, as ``torch.nn.functional.conv2d``.

    Shapes: input ``(N, C_in, H, W)`` or ``(C_in, H, W)``; weight ``(C_out, C_in/groups, kH, kW)``;
    bias ``(C_out,)`` or None; output ``(N, C_out, H_out, W_out)`` with, per axis,
    ``out = (n + p_lo + p_hi - dilation*(k-1) - 1) // stride + 1``.
    """
    return _conv(2, False, "conv2d", input, weight, bias, stride, padding, dilation, groups, padding_mode,
                 algorithm, relu_slope)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           padding_mode="zeros", algorithm="auto", relu_slope=None) -> Tensor:
    """3-D cross-correlation, as ``torch.nn.functional.conv3d``.

    Shapes: input ``(N, C_in, D, H, W)`` or ``(C_in, D, H, W)``; weight
    ``(C_out, C_in/groups, kD, kH, kW)``; bias ``(C_out,)`` or None; output
    ``(N, C_out, D_out, H_out, W_out)`` (sizes as in ``conv2d``).
    """
    return _conv(3, False, "conv3d", input, weight, bias, stride, padding, dilation, groups, padding_mode,
                 algorithm, relu_slope)


def convolve1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
               padding_mode="zeros", algorithm="auto", relu_slope=None) -> Tensor:
    """1-D true convolution: ``conv1d`` with the kernel mirrored (``weight[..., ::-1]``).

    ``out[n, o, y] = b[o] + sum_{c, j} w[o, c, j] * xp[n, c, y*s + (kL-1-j)*d]``; shapes as ``conv1d``.
    """
    return _conv(1, True, "convolve1d", input, weight, bias, stride, padding, dilation, groups, padding_mode,
                 algorithm, relu_slope)


def convolve2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
               padding_mode="zeros", algorithm="auto", relu_slope=None) -> Tensor:
    """2-D true convolution: ``conv2d`` with the kernel mirrored in both spatial axes.

    ``out[n, o, y, x] = b[o] + sum_{c, i, j} w[o, c, i, j] * xp[n, c, y*s + (kH-1-i)*d, x*s + (kW-1-j)*d]``;
    shapes as ``conv2d``.
    """
    return _conv(2, True, "convolve2d", input, weight, bias, stride, padding, dilation, groups, padding_mode,
                 algorithm, relu_slope)


def convolve3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
               padding_mode="zeros", algorithm="auto", relu_slope=None) -> Tensor:
    """3-D true convolution: ``conv3d`` with the kernel mirrored in all three spatial axes; shapes as ``conv3d``."""
    return _conv(3, True, "convolve3d", input, weight, bias, stride, padding, dilation, groups, padding_mode,
                 algorithm, relu_slope)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, *, algorithm="auto") -> Tensor:
    """1-D transposed convolution, as ``torch.nn.functional.conv_transpose1d`` (note the argument order).

    Shapes: input ``(N, C_in, L)`` or ``(C_in, L)``; weight ``(C_in, C_out/groups, kL)``;
    bias ``(C_out,)`` or None; output ``(N, C_out, L_out)``,
    ``L_out = (L-1)*stride - 2*padding + dilation*(kL-1) + output_padding + 1``.
    """
    return _conv_transpose(1, "conv_transpose1d", input, weight, bias, stride, padding, output_padding,
                           groups, dilation, algorithm)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, *, algorithm="auto") -> Tensor:
    """2-D transposed convolution, as ``torch.nn.functional.conv_transpose2d`` (note the argument order).

    Shapes: input ``(N, C_in, H, W)`` or ``(C_in, H, W)``; weight ``(C_in, C_out/groups, kH, kW)``;
    bias ``(C_out,)`` or None; output ``(N, C_out, H_out, W_out)`` with, per axis,
    ``out = (n-1)*stride - 2*padding + dilation*(k-1) + output_padding + 1``.
    """
    return _conv_transpose(2, "conv_transpose2d", input, weight, bias, stride, padding, output_padding,
                           groups, dilation, algorithm)


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1, *, algorithm="auto") -> Tensor:
    """3-D transposed convolution, as ``torch.nn.functional.conv_transpose3d`` (note the argument order).

    Shapes: input ``(N, C_in, D, H, W)`` or ``(C_in, D, H, W)``; weight
    ``(C_in, C_out/groups, kD, kH, kW)``; bias ``(C_out,)`` or None; output sizes as ``conv_transpose2d``.
    """
    return _conv_transpose(3, "conv_transpose3d", input, weight, bias, stride, padding, output_padding,
                           groups, dilation, algorithm)
