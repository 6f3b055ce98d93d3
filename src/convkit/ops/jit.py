"""The compiled layer: every kernel of ``convkit.ops`` is a numba function made by ``kernel``.

numba compiles a Python function of loops and scalar arithmetic to machine
code on its first call (per argument types), so a kernel reads as the
index-form sum in its op's docstring and runs at the speed of C. How
convkit's kernels are written:

* one kernel per op family, next to the formula it computes, on a canonical
  layout (for instance ``(N, C, P)`` for normalisation, three spatial axes
  for pooling, so 1-D, 2-D and 3-D share one compiled kernel per dtype);
* the outer loops over batch and/or channels are ``prange`` loops, run on
  ``convkit.backends.set_num_threads`` threads;
* sums of many float32 terms accumulate in float64;
* matrix products stay with BLAS (NumPy's ``@``), outside every kernel;
* no ``fastmath``: results are those of the formula, rounded as written;
* ``error_model="numpy"``: a division by zero gives inf/NaN as in NumPy.

Compiled code is cached on disk (``cache=True``): in ``__pycache__`` beside
the source, or, where the install directory is read-only, in numba's
user-wide cache directory (``NUMBA_CACHE_DIR`` chooses another). A later
process loads it instead of compiling again.

Threads: numba's OpenMP thread pool is started here with
``OMP_WAIT_POLICY=PASSIVE``, so that its idle threads sleep instead of
spinning; a spinning pool takes the cores from OpenBLAS's threads, which run
between the kernels (measured on 2 cores: a kernel followed by a GEMM took
8 ms instead of 0.45 ms). Where OpenMP is not available numba uses its own
``workqueue`` pool.
"""

from __future__ import annotations

import os

import numba
from numba.np.ufunc import parallel as _numba_parallel

prange = numba.prange

_OPTIONS = dict(nogil=True, cache=True, error_model="numpy")


def kernel(fn=None, *, parallel: bool = False):
    """Compile ``fn`` as a convkit kernel (``@kernel`` or ``@kernel(parallel=True)`` for ``prange`` loops)."""
    if fn is None:
        return lambda f: numba.njit(parallel=parallel, **_OPTIONS)(f)
    return numba.njit(parallel=parallel, **_OPTIONS)(fn)


def start_thread_pool() -> None:
    """Start numba's thread pool (once), its OpenMP threads waiting passively (see the module docstring).

    The variable is set only while the pool's OpenMP library loads (which
    reads it once) and restored afterwards, so other OpenMP libraries in the
    process (PyTorch's own copy) keep their settings.
    """
    if _numba_parallel._is_initialized:
        return
    previous = os.environ.get("OMP_WAIT_POLICY")
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        _numba_parallel._launch_threads()
    finally:
        if previous is None:
            del os.environ["OMP_WAIT_POLICY"]
        else:
            os.environ["OMP_WAIT_POLICY"] = previous


start_thread_pool()
