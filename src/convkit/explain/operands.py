"""Operands of the explanations: arrays brought to the engine's layouts, and their labels.

An explanation shows one example at a time, so inputs are unbatched:
``(*spatial)`` is one channel, ``(C, *spatial)`` several. A kernel may be
given as ``(*k)`` (one input and one output channel), ``(C_in, *k)`` (one
output channel) or PyTorch's ``(C_out, C_in/groups, *k)``. Everything is
float64, so the numbers shown are exact for small integers.
"""

from __future__ import annotations

import numpy as np

from .explanation import Matrix

AXES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def as_array(value, name: str, op: str) -> np.ndarray:
    """``value`` (array-like) as a float64 ndarray; a TypeError naming ``name`` otherwise."""
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{op}: {name} must be an array of numbers, got {type(value).__name__} {value!r}") from None
    return array


def spatial_input(value, nsp: int, op: str, name: str = "input") -> np.ndarray:
    """The input as ``(C, *spatial)``: an ``nsp``-D array is one channel (a number or a row, one row of it).

    Raises ValueError for other ranks, saying which shapes are accepted.
    """
    x = as_array(value, name, op)
    if x.ndim < nsp:  # a number or a row: one row of the image
        x = x.reshape((1,) * (nsp - x.ndim) + x.shape)
    if x.ndim == nsp:
        x = x[None]
    if x.ndim != nsp + 1:
        layout = "L" if nsp == 1 else "H, W"
        raise ValueError(f"{op}: {name} must be ({layout}) or (C, {layout}) — one example, no batch axis — "
                         f"got shape {x.shape}; e.g. {'[1, 2, 3, 4]' if nsp == 1 else '[[1, 2], [3, 4]]'}")
    if x.size == 0:
        raise ValueError(f"{op}: {name} is empty (shape {x.shape})")
    return x


def conv_weight(value, nsp: int, op: str, name: str = "weight") -> np.ndarray:
    """The kernel as ``(C_out, C_in/groups, *k)``: ``(*k)`` is 1×1 channels, ``(C_in, *k)`` one output channel.

    A number or a row given for a 2-D kernel is one row, ``1×k``.
    """
    w = as_array(value, name, op)
    if w.ndim < nsp:  # a number or a row: a 1×k kernel
        w = w.reshape((1,) * (nsp - w.ndim) + w.shape)
    if w.ndim in (nsp, nsp + 1):
        w = w.reshape((1,) * (nsp + 2 - w.ndim) + w.shape)
    if w.ndim != nsp + 2:
        k = "k" if nsp == 1 else "kH, kW"
        raise ValueError(f"{op}: {name} must be ({k}), (C_in, {k}) or (C_out, C_in/groups, {k}), got shape {w.shape}")
    if w.size == 0:
        raise ValueError(f"{op}: {name} is empty (shape {w.shape})")
    return w


def vector(value, length: int, name: str, op: str, what: str) -> np.ndarray | None:
    """``value`` as a float64 vector of ``length`` (a number repeats), or None when ``value`` is None."""
    if value is None:
        return None
    v = as_array(value, name, op)
    if v.ndim == 0:
        v = np.full(length, float(v))
    if v.shape != (length,):
        raise ValueError(f"{op}: {name} must have {length} values ({what}), got shape {v.shape}")
    return v


def index(name: str, *idx, channel: int | None = None) -> str:
    """``name[c,i,j]``; the channel is left out when ``channel`` is None.

    >>> index("O", 0, 1), index("O", 0, 1, channel=2)
    ('O[0,1]', 'O[2,0,1]')
    """
    parts = ([] if channel is None else [channel]) + list(idx)
    return f"{name}[{','.join(str(int(i)) for i in parts)}]"


def channel_matrices(name: str, a: np.ndarray, marked: np.ndarray | None = None) -> tuple[Matrix, ...]:
    """One ``Matrix`` per channel of ``a (C, *spatial)``: labelled ``name`` when C = 1, else ``name[c]``."""
    if a.shape[0] == 1:
        return (Matrix(name, a[0], None if marked is None else marked[0]),)
    return tuple(Matrix(f"{name}[{c}]", a[c], None if marked is None else marked[c]) for c in range(a.shape[0]))


def kernel_matrices(name: str, w: np.ndarray) -> tuple[Matrix, ...]:
    """One ``Matrix`` per ``(o, c)`` slice of ``w (C_out, C_in, *k)``, labelled with the indices that vary."""
    c_out, c_in = w.shape[:2]
    out = []
    for o in range(c_out):
        for c in range(c_in):
            idx = ([o] if c_out > 1 else []) + ([c] if c_in > 1 else [])
            label = name if not idx else f"{name}[{','.join(map(str, idx))}]"
            out.append(Matrix(label, w[o, c]))
    return tuple(out)


def shape_text(shape) -> str:
    """``(2, 3) -> '2×3'``."""
    return "×".join(str(int(n)) for n in shape)


def extent(shape) -> str:
    """A spatial extent in words: ``(5,) -> 'length 5'``, ``(3, 4) -> '3×4'``."""
    return f"length {shape[0]}" if len(shape) == 1 else shape_text(shape)


def per_axis(values) -> str:
    """One number when every axis has the same, else ``2×1``.

    >>> per_axis((2, 2)), per_axis((2, 1))
    ('2', '2×1')
    """
    return str(values[0]) if len(set(values)) == 1 else shape_text(values)


def plural(n: int, word: str) -> str:
    """``1 channel``, ``2 channels``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


def sized(shape) -> str:
    """A shape as an adjective: ``(5,) -> 'length-5'``, ``(3, 3) -> '3×3'``."""
    return f"length-{shape[0]}" if len(shape) == 1 else shape_text(shape)


def operand_shape(a: np.ndarray, lead: int) -> str:
    """The shape without ``lead`` leading axes that are all 1: ``(1, 1, 3, 3) -> '3×3'``, ``(1, 5) -> 'length-5'``."""
    shape = a.shape
    while lead and shape[0] == 1:
        shape, lead = shape[1:], lead - 1
    return sized(shape)


def like_output(value, shape: tuple[int, ...], name: str, op: str) -> np.ndarray:
    """``value`` as an array of the output's ``shape`` (a single channel may omit its axis), else ValueError."""
    a = as_array(value, name, op)
    if a.shape == shape[1:] and shape[0] == 1:
        a = a[None]
    if a.shape != shape:
        raise ValueError(f"{op}: {name} must have the output's shape {shape} (or {shape[1:]} for one channel), "
                         f"got {a.shape}")
    return a
