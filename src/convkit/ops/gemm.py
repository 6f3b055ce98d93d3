"""Matrix products: NumPy's BLAS on one thread per call, large products split over convkit's threads.

convkit runs its threads itself: the compiled kernels on numba's pool, the
matrix products here. BLAS keeps one thread (``convkit.backends`` sets it
when convkit is imported and in ``set_num_threads``), because an OpenBLAS
thread pool spins for a while after every product (about 0.1 s) and takes
the cores from the kernel that runs next: measured on 2 cores, a LeNet-5
training step took 47 ms with two BLAS threads against 12 ms with one.

``matmul(a, b)`` is ``np.matmul(a, b)``; a product of at least
``SPLIT_FLOPS`` floating-point operations is cut into one part per thread,
along the leading batch axis when it has enough entries, else along the
longer of the rows of ``a`` and the columns of ``b`` (a skinny product cut
along its short side runs slower in BLAS), and the parts run at once (NumPy releases the GIL in BLAS)
into one output array. Every entry is the same sum of products; BLAS may
order a part's sums differently from the whole's, so the result agrees
with ``np.matmul``'s to rounding (float32: about 1e-7 relative).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from . import workspace

SPLIT_FLOPS = 4_000_000

_pools: dict[int, ThreadPoolExecutor] = {}


def _pool(workers: int) -> ThreadPoolExecutor:
    if workers not in _pools:
        _pools[workers] = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="convkit-gemm")
    return _pools[workers]


def _cuts(n: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` consecutive ranges covering ``0..n`` (sizes differing by at most one)."""
    bounds = [n * i // parts for i in range(parts + 1)]
    return [(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]


def _matmul_part(a: np.ndarray, b: np.ndarray, out: np.ndarray, errors: dict) -> None:
    with np.errstate(**errors):
        np.matmul(a, b, out=out)


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``np.matmul(a, b, out=out)``, split over the threads when it is large (see the module docstring).

    Shapes as ``np.matmul``: ``a (..., M, K)``, ``b (..., K, N)`` -> ``(..., M, N)``, the leading axes
    broadcast; 1-D operands are not split.
    """
    threads = numba.get_num_threads()
    if threads == 1 or a.ndim < 2 or b.ndim < 2:
        return np.matmul(a, b, out=out)
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    lead = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    if 2 * math.prod(lead) * m * k * n < SPLIT_FLOPS:
        return np.matmul(a, b, out=out)
    if out is None:
        out = workspace.empty(lead + (m, n), np.result_type(a, b))
    a = a.reshape((1,) * (len(lead) + 2 - a.ndim) + a.shape)
    b = b.reshape((1,) * (len(lead) + 2 - b.ndim) + b.shape)
    if lead and lead[0] >= threads:
        pieces = [(a[lo:hi] if a.shape[0] > 1 else a, b[lo:hi] if b.shape[0] > 1 else b, out[lo:hi])
                  for lo, hi in _cuts(lead[0], threads)]
    elif m >= n:
        pieces = [(a[..., lo:hi, :], b, out[..., lo:hi, :]) for lo, hi in _cuts(m, threads)]
    else:
        pieces = [(a, b[..., lo:hi], out[..., lo:hi]) for lo, hi in _cuts(n, threads)]
    errors = np.geterr()  # the caller's floating-point error handling (np.errstate is per thread)
    futures = [_pool(threads - 1).submit(_matmul_part, x, y, o, errors) for x, y, o in pieces[1:]]
    np.matmul(*pieces[0][:2], out=pieces[0][2])
    for f in futures:
        f.result()
    return out
