"""Adaptive average and max pooling to a target size, 1-D/2-D/3-D.

Along a spatial axis of length ``n`` pooled to ``o`` windows, window ``i``
covers (PyTorch's ``start_index``/``end_index``)::

    [floor(i*n/o), ceil((i+1)*n/o))

Windows may differ in length and overlap when ``o`` does not divide ``n``;
when ``o > n`` several windows share a start. Shapes: ``x (N, C, *n)`` ->
``y (N, C, *o)``.

Both pools are separable over the spatial axes, so every axis is reduced on
its own by a "ragged" window reduction: one ``np.take`` gathers every
window's elements into a block with an extra window axis of the largest
window length (shorter windows repeat their last element, masked out), which
is then reduced:

* average: the box sum factorises and the divisor is the product of the
  per-axis lengths. The adjoint of one axis sends ``g[i] / len_i`` to every
  position of window ``i``; position ``j`` lies in the windows
  ``i in [#{stop <= j}, #{start <= j})``, again a ragged sum;
* max: PyTorch scans a box in row-major order and takes ``v`` if
  ``v > best or isnan(v)`` (the last NaN wins, else the first maximum).
  Reducing the last spatial axis first, then the previous one, selects the
  same element, so the flat index of the winner is carried through the
  per-axis reductions.
"""

from __future__ import annotations

import math

import numpy as np

from . import Primitive


def adaptive_windows(n: int, o: int) -> tuple[np.ndarray, np.ndarray]:
    """``start_i = floor(i*n/o)``, ``stop_i = ceil((i+1)*n/o)`` for ``i = 0..o-1``."""
    i = np.arange(o)
    return (i * n) // o, -(-(i + 1) * n // o)


def _along(values: np.ndarray, axis: int, ndim: int) -> np.ndarray:
    """``values`` (1-D) shaped to broadcast along ``axis`` of an ``ndim``-D array."""
    shape = [1] * ndim
    shape[axis] = values.size
    return values.reshape(shape)


def _window_block(a: np.ndarray, axis: int, start: np.ndarray, stop: np.ndarray):
    """Every window ``[start_i, stop_i)`` of ``a`` along ``axis``, gathered at once.

    Returns ``block`` with the window index ``i`` on ``axis`` and the offset
    ``m`` in the window on ``axis + 1`` (``block[..., i, m, ...] =
    a[..., start_i + m, ...]``), and ``inside`` (``i``, ``m``): whether offset
    ``m`` is part of window ``i`` (shorter windows repeat their last element).
    """
    length = stop - start
    offsets = np.arange(length.max(initial=1))     # at least one offset, also for zero windows
    inside = offsets < length[:, None]
    positions = np.minimum(start[:, None] + offsets, a.shape[axis] - 1)
    return np.take(a, positions, axis=axis), inside


def _ragged_sum(a: np.ndarray, axis: int, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """``out[..., i, ...] = sum_{start_i <= j < stop_i} a[..., j, ...]`` along ``axis``."""
    block, inside = _window_block(a, axis, start, stop)
    mask = inside.reshape(inside.shape + (1,) * (a.ndim - axis - 1))
    return np.where(mask, block, a.dtype.type(0)).sum(axis=axis + 1)


def adaptive_avg_pool_forward(x, *, output_size):
    """``y[n, c, i] = (1 / prod_a len_{i_a}) * sum over the box of window i of x[n, c, j]``.

    The box of ``i = (i_1, ..., i_k)`` is the product of the per-axis windows
    of the module docstring; the sum and the divisor factorise per axis.
    """
    spans = [adaptive_windows(n, o) for n, o in zip(x.shape[2:], output_size)]
    y = x
    for a, (start, stop) in enumerate(spans):
        y = _ragged_sum(y, 2 + a, start, stop) / _along((stop - start).astype(x.dtype), 2 + a, x.ndim)
    return y, (spans, x.shape)


def adaptive_avg_pool_backward(g, saved, needs=(True,)):
    """``dx[n, c, j] = sum over boxes i containing j of g[n, c, i] / prod_a len_{i_a}``.

    Per axis, position ``j`` lies in windows ``i`` with ``stop_i > j >= start_i``,
    i.e. ``i`` in ``[#{stop <= j}, #{start <= j})`` (both sorted), a ragged sum.
    """
    spans, shape = saved
    for a, (start, stop) in enumerate(spans):
        positions = np.arange(shape[2 + a])
        first = np.searchsorted(stop, positions, side="right")
        end = np.searchsorted(start, positions, side="right")
        g = _ragged_sum(g / _along((stop - start).astype(g.dtype), 2 + a, g.ndim), 2 + a, first, end)
    return (g,)


def _winners(values: np.ndarray, axis: int, start: np.ndarray, stop: np.ndarray) -> np.ndarray:
    """Position along ``axis`` of each window's selected element, by PyTorch's scan rule.

    The window block is scanned over the offset ``m``:
    ``take if m is inside the window and (v > best or isnan(v))``.
    """
    block, inside = _window_block(values, axis, start, stop)
    block = np.moveaxis(block, axis + 1, 0)                  # (L, ..., o, ...)
    inside = inside.T.reshape((inside.shape[1],) + _along(start, axis, values.ndim).shape)
    best = block[0].copy()
    arg = np.zeros(best.shape, dtype=np.min_scalar_type(len(block) - 1))
    for m in range(1, len(block)):
        take = inside[m] & ((block[m] > best) | np.isnan(block[m]))
        np.copyto(best, block[m], where=take)
        np.copyto(arg, m, where=take)
    return arg + _along(start, axis, values.ndim)


def adaptive_max_pool_forward(x, *, output_size):
    """``y[n, c, i] = max over the box of window i of x[n, c, j]``, with the winner's flat index.

    Ties and NaN as in PyTorch (module docstring). ``saved[0]`` holds the
    int64 flat index of each winner in its input plane (``h*W + w`` in 2-D).
    """
    spatial = x.shape[2:]
    flat = np.broadcast_to(np.arange(math.prod(spatial), dtype=np.int64).reshape(spatial), x.shape)
    y = x
    for a in reversed(range(len(spatial))):
        pos = _winners(y, 2 + a, *adaptive_windows(spatial[a], output_size[a]))
        y = np.take_along_axis(y, pos, axis=2 + a)
        flat = np.take_along_axis(flat, pos, axis=2 + a)
    return y, (flat, x.shape)


def adaptive_max_pool_backward(g, saved, needs=(True,)):
    """``dx[n, c, j] = sum over windows i whose maximum is j of g[n, c, i]``.

    Overlapping windows can share a maximum, so the scatter accumulates:
    ``np.bincount`` over ``plane * P + index`` (it sums in float64; the result
    is cast back to ``g``'s dtype).
    """
    indices, shape = saved
    planes = shape[0] * shape[1]
    size = math.prod(shape[2:])
    keys = (np.arange(planes, dtype=np.int64)[:, None] * size + indices.reshape(planes, -1)).ravel()
    dx = np.bincount(keys, weights=g.ravel(), minlength=planes * size)
    return (dx.astype(g.dtype, copy=False).reshape(shape),)


adaptive_avg_pool = Primitive("adaptive_avg_pool", adaptive_avg_pool_forward, adaptive_avg_pool_backward)
adaptive_max_pool = Primitive("adaptive_max_pool", adaptive_max_pool_forward, adaptive_max_pool_backward)
