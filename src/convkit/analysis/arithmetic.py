"""Convolution arithmetic along one spatial axis: output sizes, padding, receptive fields.

Plain functions of integers, usable on their own; ``convkit.analysis.summary``
applies the same rules layer by layer. Conventions are PyTorch's: ``n`` is the
input length, ``k`` the kernel size, ``s`` the stride, ``d`` the dilation
(``1`` = none) and padding is either one int ``p`` for both sides or a
``(lo, hi)`` pair, ``lo`` before index 0 and ``hi`` after the last index. A
dilated kernel spans ``k_eff = d(k-1) + 1`` input positions.

>>> conv_output_size(224, 7, stride=2, padding=3)
112
>>> pool_output_size(6, 1, stride=2, ceil_mode=True)
3
>>> same_padding(7, stride=2, n=224, mode="tf")
(2, 3)
>>> receptive_field([(3, 1, 1, 1), (2, 2, 1, 0), (3, 1, 2, 2), (3, 2, 1, 1)])[-1]
(16, 4, 0.5)
"""

from __future__ import annotations

from collections.abc import Sequence

from ..ops._args import check_kernel_fits, is_int
from ..ops.conv_transpose import transposed_sizes
from ..ops.pooling import pool_output_size as windows_along
from ..ops.windows import out_sizes

__all__ = [
    "conv_output_size", "pool_output_size", "conv_transpose_output_size", "same_padding",
    "receptive_field", "padding_for", "output_padding_for",
]


def _positive(value, name: str, fn: str) -> int:
    if not is_int(value) or value < 1:
        raise ValueError(f"{fn}: {name} must be a positive int, got {value!r}")
    return int(value)


def _non_negative(value, name: str, fn: str) -> int:
    if not is_int(value) or value < 0:
        raise ValueError(f"{fn}: {name} must be an int >= 0, got {value!r}")
    return int(value)


def _pair(padding, fn: str) -> tuple[int, int]:
    """``p`` as ``(p, p)``; a ``(lo, hi)`` pair checked and returned as ints."""
    if is_int(padding):
        p = _non_negative(padding, "padding", fn)
        return p, p
    if (isinstance(padding, Sequence) and not isinstance(padding, str) and len(padding) == 2
            and all(is_int(v) and v >= 0 for v in padding)):
        return int(padding[0]), int(padding[1])
    raise ValueError(f"{fn}: padding must be an int >= 0 or a (lo, hi) pair of them, got {padding!r}")


def _number(x: float) -> int | float:
    """``x`` as an int when it is integral (``3.0 -> 3``), else unchanged."""
    return int(x) if float(x).is_integer() else x


def conv_output_size(n: int, kernel: int, stride: int = 1, padding=0, dilation: int = 1) -> int:
    """Length of a convolution's output along one axis.

    ``o = floor((n + p_lo + p_hi - d(k-1) - 1) / s) + 1``

    Every input length in ``n .. n+s-1`` with the same floor gives the same
    ``o``: the ambiguity that ``output_padding_for`` resolves.

    Args:
        n (int): input length.
        kernel (int): kernel size ``k``.
        stride (int): ``s``. Default: 1.
        padding (int | (int, int) | str): ``p`` on both sides, a ``(lo, hi)``
            pair, ``'valid'`` (none) or ``'same'`` (PyTorch's: stride 1 only,
            ``o = n``; see ``same_padding`` for strided and TF variants). Default: 0.
        dilation (int): ``d``. Default: 1.

    Raises ValueError when the dilated kernel does not fit in the padded input.

    >>> conv_output_size(32, 5), conv_output_size(28, 4, padding="same"), conv_output_size(8, 3, 2, (0, 1))
    (28, 28, 4)
    """
    fn = "conv_output_size"
    n, k = _positive(n, "n", fn), _positive(kernel, "kernel", fn)
    s, d = _positive(stride, "stride", fn), _positive(dilation, "dilation", fn)
    if padding == "valid":
        padding = 0
    elif padding == "same":
        if s != 1:
            raise ValueError(
                f"{fn}: padding='same' is PyTorch's stride-1 rule, got stride={s}; for stride > 1 use "
                f"same_padding(kernel, dilation, stride, n, mode='tf' or 'torch') and pass the pair"
            )
        padding = same_padding(k, d)
    lo, hi = _pair(padding, fn)
    check_kernel_fits((n,), (k,), (d,), ((lo, hi),), fn)
    return out_sizes((n,), (k,), (s,), (d,), ((lo, hi),))[0]


def pool_output_size(n: int, kernel: int, stride: int | None = None, padding=0, dilation: int = 1,
                     ceil_mode: bool = False) -> int:
    """Number of pooling windows along one axis, with PyTorch's ``ceil_mode`` rule.

    ``o = floor((n + p_lo + p_hi - d(k-1) - 1 + (s-1 if ceil_mode else 0)) / s) + 1``,
    then, in ceil mode, ``o -= 1`` when ``(o-1)*s >= n + p_lo``: the last
    window must start inside the input or the left padding, never in the right
    padding (the correction of pytorch/pytorch#45357).

    Args:
        n (int): input length.
        kernel (int): window size ``k``.
        stride (int | None): ``s``. Default: ``kernel``.
        padding (int | (int, int)): ``p`` on both sides or ``(lo, hi)``; at most
            ``k // 2`` each, as PyTorch requires. Default: 0.
        dilation (int): ``d``. Default: 1.
        ceil_mode (bool): round the window count up. Default: False.

    Raises ValueError for padding over ``k // 2`` or an input shorter than one window.

    >>> pool_output_size(25, 2), pool_output_size(25, 2, ceil_mode=True), pool_output_size(5, 2, 2, 1, ceil_mode=True)
    (12, 13, 3)
    """
    fn = "pool_output_size"
    n, k = _positive(n, "n", fn), _positive(kernel, "kernel", fn)
    s = k if stride is None else _positive(stride, "stride", fn)
    d = _positive(dilation, "dilation", fn)
    lo, hi = _pair(padding, fn)
    if max(lo, hi) > k // 2:
        raise ValueError(f"{fn}: padding must be at most kernel // 2 = {k // 2} on each side, got {padding!r}")
    o = windows_along(n, k, s, (lo, hi), d, ceil_mode)
    if o < 1:
        raise ValueError(
            f"{fn}: the window spans {d * (k - 1) + 1} positions but the padded input has {n + lo + hi} "
            f"(n={n}, padding=({lo}, {hi}))"
        )
    return o


def conv_transpose_output_size(n: int, kernel: int, stride: int = 1, padding=0, output_padding: int = 0,
                               dilation: int = 1) -> int:
    """Length of a transposed convolution's output along one axis (PyTorch).

    ``o = (n-1)*s - p_lo - p_hi + d(k-1) + output_padding + 1``

    ``padding`` crops the output; ``output_padding`` adds positions on the high
    side only and must be smaller than ``stride`` or ``dilation``: it picks one
    of the input lengths that a strided convolution maps to ``n``.

    Args:
        n (int): input length.
        kernel (int): ``k``.
        stride (int): ``s``. Default: 1.
        padding (int | (int, int)): ``p`` on both sides or ``(lo, hi)``. Default: 0.
        output_padding (int): extra length on the high side. Default: 0.
        dilation (int): ``d``. Default: 1.

    >>> conv_transpose_output_size(14, 3, stride=2, padding=1, output_padding=1)
    28
    """
    fn = "conv_transpose_output_size"
    n, k = _positive(n, "n", fn), _positive(kernel, "kernel", fn)
    s, d = _positive(stride, "stride", fn), _positive(dilation, "dilation", fn)
    lo, hi = _pair(padding, fn)
    op = _non_negative(output_padding, "output_padding", fn)
    if op >= max(s, d):
        raise ValueError(
            f"{fn}: output_padding must be smaller than either stride ({s}) or dilation ({d}), got {op}"
        )
    o = transposed_sizes((n,), (k,), (s,), ((lo, hi),), (op,), (d,))[0]
    if o < 1:
        raise ValueError(f"{fn}: padding ({lo}, {hi}) crops the whole output (length {o + lo + hi} before cropping)")
    return o


def same_padding(kernel: int, dilation: int = 1, stride: int = 1, n: int | None = None,
                 mode: str = "torch") -> tuple[int, int]:
    """``(lo, hi)`` padding for a "same" convolution; an odd total puts the extra element on the high side.

    * ``mode='torch'``: ``total = d(k-1)``, independent of ``n`` and of the
      stride. With stride 1 this is PyTorch's ``padding='same'`` (``o = n``);
      PyTorch refuses stride > 1, where this fixed total gives
      ``o = floor((n-1)/s) + 1``.
    * ``mode='tf'``: TensorFlow/Keras/JAX ``'SAME'`` (ONNX ``SAME_UPPER``), which
      needs ``n`` and gives ``o = ceil(n/s)``:
      ``total = max(0, (ceil(n/s) - 1)*s + d(k-1) + 1 - n)``.

    Both split as ``lo = total // 2``, ``hi = total - lo``.

    Args:
        kernel (int): ``k``.
        dilation (int): ``d``. Default: 1.
        stride (int): ``s``. Default: 1.
        n (int | None): input length; required for ``mode='tf'``. Default: None.
        mode (str): ``'torch'`` or ``'tf'``. Default: ``'torch'``.

    >>> same_padding(4), same_padding(4, dilation=3), same_padding(3, stride=2, n=6, mode="tf")
    ((1, 2), (4, 5), (0, 1))
    """
    fn = "same_padding"
    k, d, s = _positive(kernel, "kernel", fn), _positive(dilation, "dilation", fn), _positive(stride, "stride", fn)
    if mode == "torch":
        total = d * (k - 1)
    elif mode == "tf":
        if n is None:
            raise ValueError(f"{fn}: mode='tf' depends on the input length: pass n")
        n = _positive(n, "n", fn)
        total = max(0, (-(-n // s) - 1) * s + d * (k - 1) + 1 - n)
    else:
        raise ValueError(f"{fn}: mode must be 'torch' or 'tf', got {mode!r}")
    return total // 2, total - total // 2


def receptive_field(layers) -> list[tuple[int, int, int | float]]:
    """Receptive field size ``r``, jump ``j`` and ``start`` after each layer of a chain.

    ``layers`` is a sequence of ``(kernel, stride, dilation[, padding])``
    tuples, one per layer; ``padding`` is an int or a ``(lo, hi)`` pair (only
    ``lo`` matters) and defaults to 0. Element-wise layers (activations,
    batch norm at inference) are ``(1, 1, 1)``. The forward recurrences, from
    ``r = 1, j = 1, start = 0`` on the input, with ``k_eff = d(k-1) + 1``::

        r_out     = r_in + (k_eff - 1) * j_in
        j_out     = j_in * s
        start_out = start_in + ((k_eff - 1)/2 - p_lo) * j_in

    ``j`` is the distance in input positions between neighbouring units (the
    effective stride) and ``start`` the centre of the first unit's field
    (index 0 is the first input position, padding is negative). Unit ``u``
    sees input positions ``start + u*j - (r-1)/2 .. start + u*j + (r-1)/2``.
    Right padding and ``ceil_mode`` change neither ``r`` nor ``j``.

    Returns a list with one ``(r, j, start)`` per layer; ``start`` is an int
    when integral.

    >>> receptive_field([(5, 1, 1, 2), (2, 2, 1), (5, 1, 1), (2, 2, 1)])
    [(5, 1, 0), (6, 2, 0.5), (14, 2, 4.5), (16, 4, 5.5)]
    """
    fn = "receptive_field"
    r, j, start = 1, 1, 0.0
    out = []
    for i, layer in enumerate(layers):
        if not isinstance(layer, Sequence) or len(layer) not in (3, 4):
            raise ValueError(f"{fn}: layer {i} must be (kernel, stride, dilation[, padding]), got {layer!r}")
        k = _positive(layer[0], f"kernel of layer {i}", fn)
        s = _positive(layer[1], f"stride of layer {i}", fn)
        d = _positive(layer[2], f"dilation of layer {i}", fn)
        lo = _pair(layer[3], fn)[0] if len(layer) == 4 else 0
        k_eff = d * (k - 1) + 1
        r, start, j = r + (k_eff - 1) * j, start + ((k_eff - 1) / 2 - lo) * j, j * s
        out.append((r, j, _number(start)))
    return out


def padding_for(n: int, target: int, kernel: int, stride: int = 1, dilation: int = 1) -> int | tuple[int, int]:
    """The padding that makes a convolution's output length ``target``.

    The output is ``target`` exactly when the total padding ``P`` satisfies
    ``(target-1)*s + k_eff - n <= P <= (target-1)*s + k_eff - n + s - 1``
    (``k_eff = d(k-1) + 1``). Returns the smallest symmetric ``p`` (``P = 2p``)
    in that range, else the smallest ``P`` split as PyTorch splits ``'same'``,
    ``(P // 2, P - P // 2)``.

    Args:
        n (int): input length.
        target (int): wanted output length.
        kernel (int): ``k``.
        stride (int): ``s``. Default: 1.
        dilation (int): ``d``. Default: 1.

    Raises ValueError, saying why, when no padding ``P >= 0`` gives ``target``
    (the output is already longer without padding).

    >>> padding_for(28, 28, 5), padding_for(28, 28, 4), padding_for(224, 112, 7, stride=2)
    (2, (1, 2), 3)
    """
    fn = "padding_for"
    n, target, k = _positive(n, "n", fn), _positive(target, "target", fn), _positive(kernel, "kernel", fn)
    s, d = _positive(stride, "stride", fn), _positive(dilation, "dilation", fn)
    low = (target - 1) * s + d * (k - 1) + 1 - n
    high = low + s - 1
    if high < 0:
        raise ValueError(
            f"{fn}: without padding the output already has {conv_output_size(n, k, s, 0, d)} > {target} "
            f"positions (n={n}, kernel={k}, stride={s}, dilation={d}); padding only lengthens it: "
            f"use a larger stride or kernel, or a smaller input"
        )
    low = max(low, 0)
    even = low + low % 2
    if even <= high:
        return even // 2
    return low // 2, low - low // 2


def output_padding_for(n: int, target: int, kernel: int, stride: int = 1, padding: int = 0,
                       dilation: int = 1) -> int:
    """The ``output_padding`` that makes a transposed convolution's output length ``target``.

    ``output_padding = target - o_min`` with
    ``o_min = (n-1)*s - 2p + d(k-1) + 1``. A strided convolution maps every
    input length in a run of ``s`` to the same output, so its transpose must be
    told which one to produce: valid targets are ``o_min .. o_min + max(s, d) - 1``
    (PyTorch: ``output_padding`` smaller than either stride or dilation).

    Args:
        n (int): input length of the transposed convolution.
        target (int): wanted output length.
        kernel (int): ``k``.
        stride (int): ``s``. Default: 1.
        padding (int): ``p`` (cropped from both sides). Default: 0.
        dilation (int): ``d``. Default: 1.

    Raises ValueError naming the valid range when ``target`` is outside it.

    >>> output_padding_for(14, 28, 3, stride=2, padding=1)
    1
    """
    fn = "output_padding_for"
    n, target, k = _positive(n, "n", fn), _positive(target, "target", fn), _positive(kernel, "kernel", fn)
    s, d = _positive(stride, "stride", fn), _positive(dilation, "dilation", fn)
    p = _non_negative(padding, "padding", fn)
    o_min = (n - 1) * s - 2 * p + d * (k - 1) + 1
    largest = o_min + max(s, d) - 1
    if not o_min <= target <= largest:
        raise ValueError(
            f"{fn}: with n={n}, kernel={k}, stride={s}, padding={p}, dilation={d} the output length is "
            f"{o_min} plus output_padding < max(stride, dilation) = {max(s, d)}, i.e. {o_min}..{largest}; "
            f"{target} is outside. output_padding only chooses among the {s} input lengths a stride-{s} "
            f"convolution maps to the same size; change kernel, stride or padding to reach {target}"
        )
    return target - o_min
