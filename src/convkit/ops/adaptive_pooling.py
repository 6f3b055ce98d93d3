"""Adaptive average and max pooling to a target size, 1-D/2-D/3-D.

Along a spatial axis of length ``n`` pooled to ``o`` windows, window ``i``
covers (PyTorch's ``start_index``/``end_index``)::

    [floor(i*n/o), ceil((i+1)*n/o))

Windows may differ in length and overlap when ``o`` does not divide ``n``;
when ``o > n`` several windows share a start. Shapes: ``x (N, C, *n)`` ->
``y (N, C, *o)``.

A window is a box, the product of its per-axis ranges, so the per-axis
tables ``(first, count)`` of ``ops.pooling`` describe it exactly (first =
``start_i``, count = the length ``len_i``, no dilation), and the pooling
kernels compute both pools:

* average: ``_sum_windows`` with the divisor ``prod_a len_{i_a}`` (per-axis
  factors), its adjoint ``_spread_windows`` for the gradient;
* max: ``_max_windows`` scans the box in row-major order and takes ``v`` if
  ``v > best or isnan(v)`` (the last NaN wins, else the first maximum), as
  PyTorch does, recording the winner's flat index; the gradient is the
  scatter-add ``_scatter_planes`` at those indices.
"""

from __future__ import annotations

import functools

import numpy as np

from . import Primitive
from .meta import MetaArray
from .pooling import max_windows, scatter_indices, spread_windows, sum_windows


def adaptive_windows(n: int, o: int) -> tuple[np.ndarray, np.ndarray]:
    """``start_i = floor(i*n/o)``, ``stop_i = ceil((i+1)*n/o)`` for ``i = 0..o-1``."""
    i = np.arange(o)
    return (i * n) // o, -(-(i + 1) * n // o)


@functools.lru_cache(maxsize=512)
def _tables(spatial, output_size):
    """``(first, count)`` per canonical axis (as ``ops.pooling.window_tables``) and the per-axis lengths (float64)."""
    lead = 3 - len(spatial)
    windows, lengths = [], []
    for n, o in zip((1,) * lead + spatial, (1,) * lead + output_size):
        start, stop = adaptive_windows(n, o)
        first, count = start.astype(np.int64), (stop - start).astype(np.int64)
        length = count.astype(np.float64)
        for table in (first, count, length):
            table.flags.writeable = False
        windows += [first, count]
        lengths.append(length)
    return tuple(windows), tuple(lengths)


def adaptive_avg_pool_forward(x, *, output_size):
    """``y[n, c, i] = (1 / prod_a len_{i_a}) * sum over the box of window i of x[n, c, j]``.

    The box of ``i = (i_1, ..., i_k)`` is the product of the per-axis windows
    of the module docstring; its sum runs in float64.
    """
    output_size = tuple(output_size)
    tables, lengths = _tables(tuple(x.shape[2:]), output_size)
    return sum_windows(x, output_size, tables, lengths, 0), (x.shape, output_size)


def adaptive_avg_pool_backward(g, saved, needs=(True,)):
    """``dx[n, c, j] = sum over boxes i containing j of g[n, c, i] / prod_a len_{i_a}``."""
    shape, output_size = saved
    tables, lengths = _tables(tuple(shape[2:]), output_size)
    return (spread_windows(g, shape, tables, lengths, 0),)


def adaptive_max_pool_forward(x, *, output_size):
    """``y[n, c, i] = max over the box of window i of x[n, c, j]``, with the winner's flat index.

    Ties and NaN as in PyTorch (module docstring). ``saved[0]`` holds the
    int64 flat index of each winner in its input plane (``h*W + w`` in 2-D).
    """
    output_size = tuple(output_size)
    tables, _ = _tables(tuple(x.shape[2:]), output_size)
    y, indices = max_windows(x, output_size, tables, (1,) * len(output_size))
    return y, (indices, x.shape)


def adaptive_max_pool_backward(g, saved, needs=(True,)):
    """``dx[n, c, j] = sum over windows i whose maximum is j of g[n, c, i]``.

    Overlapping windows can share a maximum, so the scatter accumulates.
    """
    indices, shape = saved
    return (scatter_indices(g, indices, shape),)


def adaptive_pool_meta(x, *, output_size) -> MetaArray:
    """``(N, C, *n) -> (N, C, *output_size)``."""
    return MetaArray(x.shape[:2] + tuple(output_size), x.dtype)


adaptive_avg_pool = Primitive("adaptive_avg_pool", adaptive_avg_pool_forward, adaptive_avg_pool_backward,
                              adaptive_pool_meta)
adaptive_max_pool = Primitive("adaptive_max_pool", adaptive_max_pool_forward, adaptive_max_pool_backward,
                              adaptive_pool_meta)
