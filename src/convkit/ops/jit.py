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
process loads it instead of compiling again. numba checks a cached kernel
against its own source file only, so a kernel that calls a helper kernel of
another module would keep a stale copy of the helper after that module
changed (an upgrade, an edit); convkit's kernels are therefore stamped with
one hash of the sources they can reach (``kernel_sources``: all of ``ops``,
and the modules of ``optim`` and ``data`` that import this one, since a
kernel calls only kernels), and any change there compiles them all again.

Threads: numba's OpenMP thread pool is started here with
``OMP_WAIT_POLICY=PASSIVE``, so that its idle threads sleep instead of
spinning; a spinning pool takes the cores from OpenBLAS's threads, which run
between the kernels (measured on 2 cores: a kernel followed by a GEMM took
8 ms instead of 0.45 ms). Where OpenMP is not available numba uses its own
``workqueue`` pool.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numba
import numpy as np
from numba.core import caching as _numba_caching
from numba.core import types
from numba.core.extending import intrinsic
from numba.np.ufunc import parallel as _numba_parallel

prange = numba.prange

_OPTIONS = dict(nogil=True, cache=True, error_model="numpy")

_CONVKIT = Path(__file__).resolve().parent.parent
KERNEL_PACKAGES = ("ops", "optim", "data", "symmetry")


def kernel_sources() -> list[Path]:
    """The files compiled kernels can depend on: every ``.py`` of ``ops``, and of ``optim``, ``data`` and
    ``symmetry`` those that import ``ops.jit`` (their other modules, edited often, then leave the cache valid)."""
    found = []
    for package in KERNEL_PACKAGES:
        for path in sorted((_CONVKIT / package).rglob("*.py")):
            if package == "ops" or "jit import" in path.read_text(encoding="utf-8"):
                found.append(path)
    return found


def _sources_stamp() -> bytes:
    """SHA-256 of ``kernel_sources()``, in order, each with its path."""
    digest = hashlib.sha256()
    for path in kernel_sources():
        digest.update(str(path.relative_to(_CONVKIT)).encode())
        digest.update(path.read_bytes())
    return digest.digest()


_STAMP = _sources_stamp()


class _StampedLocator:
    """A numba cache locator for convkit's files only, whose source stamp is ``_STAMP``."""

    @classmethod
    def from_function(cls, py_func, py_file):
        if not Path(py_file).resolve().is_relative_to(_CONVKIT):
            return None
        return super().from_function(py_func, py_file)

    def get_source_stamp(self):
        return _STAMP


# Tried before numba's own locators, in numba's order: NUMBA_CACHE_DIR, __pycache__, the user-wide directory.
_numba_caching.CacheImpl._locator_classes[:0] = [
    type(f"Convkit{base.__name__}", (_StampedLocator, base), {})
    for base in (_numba_caching.UserProvidedCacheLocator, _numba_caching.InTreeCacheLocator,
                 _numba_caching.UserWideCacheLocator)
]


PARALLEL_WORK = 1 << 15  # elements; below this a kernel runs on the calling thread only


def kernel(fn=None, *, parallel: bool = False):
    """Compile ``fn`` as a convkit kernel (``@kernel`` or ``@kernel(parallel=True)`` for ``prange`` loops)."""
    if fn is None:
        return lambda f: numba.njit(parallel=parallel, **_OPTIONS)(f)
    return numba.njit(parallel=parallel, **_OPTIONS)(fn)


def parallel_spans(span, chunks, items: int, work: int, *args) -> None:
    """Run ``span(*args, 0, items)`` here, or ``chunks(*args, items, threads)`` over the threads.

    The pattern of the element-wise, row and update kernels: a *span*
    kernel does items ``start..stop`` on the calling thread; it slices its
    arrays to ``[start:stop]`` and loops from 0, so indices need no
    wrap-around test and the loop vectorises (twice as fast as a loop over
    ``range(start, stop)``). Its *chunks* driver runs one span per thread in
    a ``prange``. ``work`` (elements touched) decides: under
    ``PARALLEL_WORK``, or with one thread, the span runs alone here, since
    waking the other threads would cost more than it saves.
    """
    threads = numba.get_num_threads()
    if work < PARALLEL_WORK or threads == 1 or items < 2:
        span(*args, 0, items)
    else:
        chunks(*args, items, min(threads, items))


def flat(a: np.ndarray) -> np.ndarray:
    """``a`` as a flat C-contiguous array (a view when it is contiguous already)."""
    return np.ascontiguousarray(a).reshape(-1)


@intrinsic
def fma(typingctx, a, b, c):
    """``a * b + c`` rounded once, for kernels (three floats of one type; the CPU's fused multiply-add)."""
    if not (isinstance(a, types.Float) and a == b == c):
        return None

    def codegen(context, builder, sig, args):
        return builder.fma(*args)

    return a(a, b, c), codegen


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
