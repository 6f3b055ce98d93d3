"""The largest difference between an array and a re-indexed copy of another, in one compiled pass.

Every error of ``checks`` and ``report`` is ``max|a − g▷b|`` for an action
``g`` on the last two axes (the identity for invariance). With ``a`` and
``b`` laid out as rows ``(R, P)`` (batch × channels, then the ``P = H·W``
pixels) and ``src = g.source_index(H, W)`` flattened (``P``, ``-1`` where
``g`` fills in a zero):

    max_abs_difference(a, b, src) = max over r, p of |a[r, p] − (b[r, src[p]] if src[p] ≥ 0 else 0)|

computed in float64 and NaN-propagating (a NaN anywhere gives NaN), as
``np.max(np.abs(a.astype(float64) − g(b).astype(float64)))`` would, but
without building ``g(b)``, the float64 copies or the difference: one read of
each array, rows split over the threads (``ops.jit.parallel_spans``). The
kernel is self-contained (it calls no other kernel), so numba's on-disk
cache, keyed on its bytecode, stays valid when this file changes.
"""

from __future__ import annotations

import numpy as np

from ..ops.jit import kernel, parallel_spans, prange

__all__ = ["max_abs_difference"]


@kernel
def _rows_span(a, b, src, stop_above, out, start, stop):
    """``out[r]`` = the largest ``|a[r, p] − b[r, src[p]]|`` (``b`` term 0 where ``src[p] < 0``), rows start..stop;
    a row stops at its first difference above ``stop_above``."""
    a = a[start:stop]
    b = b[start:stop]
    out = out[start:stop]
    for r in range(a.shape[0]):
        worst = 0.0
        for p in range(a.shape[1]):
            s = src[p]
            v = np.float64(b[r, s]) if s >= 0 else 0.0
            d = abs(np.float64(a[r, p]) - v)
            if d > worst:
                worst = d
                if d > stop_above:
                    break
            elif d != d:  # NaN: the maximum is NaN whatever follows
                worst = d
                break
        out[r] = worst


@kernel(parallel=True)
def _rows_chunks(a, b, src, stop_above, out, items, threads):
    for t in prange(threads):
        _rows_span(a, b, src, stop_above, out, t * items // threads, (t + 1) * items // threads)


def max_abs_difference(a: np.ndarray, b: np.ndarray, src: np.ndarray, stop_above: float = np.inf) -> float:
    """``max |a[r, p] − b[r, src[p]]|`` over rows ``r`` and pixels ``p`` (0 for ``src[p] < 0``), in float64.

    Args:
        a, b (np.ndarray): ``(R, P)`` arrays (C-contiguous views, or copies where they are not).
        src (np.ndarray): ``(P,)`` int64 indices into ``b``'s rows, ``-1`` for a zero.
        stop_above (float): a bound the caller only needs to know the maximum exceeds (the best of
            several candidates so far): a row stops at its first difference above it. Default: inf.

    Returns:
        float: the largest absolute difference, or, when it exceeds ``stop_above``, some value above
        ``stop_above`` (0.0 for empty arrays; NaN if a difference met before stopping is NaN).
    """
    if a.size == 0:
        return 0.0
    a = np.ascontiguousarray(a)
    b = np.ascontiguousarray(b)
    src = np.ascontiguousarray(src, dtype=np.int64)
    out = np.empty(a.shape[0])
    parallel_spans(_rows_span, _rows_chunks, a.shape[0], a.size, a, b, src, float(stop_above), out)
    return float(np.max(out))
