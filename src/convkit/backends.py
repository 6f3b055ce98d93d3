"""Backend settings: threads, which convolution algorithm runs, and cuDNN-style benchmark mode.

``set_num_threads(n)`` (or ``with num_threads(n):``) sets the threads of
convkit's compiled kernels and of its matrix products at once. Importing
convkit sets NumPy's BLAS to one thread per call (``ops.gemm`` says why);
``threadpoolctl.threadpool_limits`` sets it back for other work.

Every convolution (``conv*d``, ``convolve*d``, ``conv_transpose*d`` and their
layers) takes ``algorithm=`` (default ``"auto"``): ``"im2col"``,
``"winograd"`` (F(2x2,3x3)), ``"winograd4"`` (F(4x4,3x3)), ``"fft"``,
``"direct"`` or ``"auto"``. A call left on ``"auto"`` follows, in order:
``set_conv_algorithm`` / ``conv_algorithm``, then the environment variable
``CONVKIT_CONV_ALGORITHM``, then the automatic choice (a rule measured on
this library's benchmarks, or, with ``set_conv_benchmark(True)``, the
fastest algorithm timed once per convolution shape). Forcing an algorithm
that cannot run a convolution (``winograd`` with stride 2, say) raises
ValueError.

>>> import numpy as np
>>> import convkit.backends as backends
>>> import convkit.functional as F
>>> x, w = np.ones((1, 2, 8, 8)), np.ones((4, 2, 3, 3))
>>> with backends.conv_algorithm("winograd"):
...     F.conv2d(x, w).shape
(1, 4, 6, 6)
>>> backends.get_conv_algorithm()
'auto'
"""

from __future__ import annotations

import os

import numba
from threadpoolctl import threadpool_limits

from .ops.conv_algorithms import ALGORITHMS, ConvAlgorithm, ConvProblem, auto
from .ops.jit import start_thread_pool

CONV_ALGORITHMS = auto.NAMES
ENV_VAR = "CONVKIT_CONV_ALGORITHM"

__all__ = ["CONV_ALGORITHMS", "ENV_VAR", "conv_algorithm", "get_conv_algorithm", "get_conv_benchmark",
           "get_num_threads", "num_threads", "set_conv_algorithm", "set_conv_benchmark",
           "set_num_threads"]

# convkit splits its matrix products over its own threads (ops.gemm): NumPy's BLAS runs on one.
threadpool_limits(limits=1, user_api="blas")

_forced: str | None = None
_benchmark = False
_timed: dict[ConvProblem, ConvAlgorithm] = {}


def set_conv_algorithm(name: str | None) -> None:
    """Force ``name`` (one of ``CONV_ALGORITHMS``) for every convolution called with ``algorithm="auto"``.

    ``None`` removes the setting (the environment variable, then the automatic choice, apply again).
    """
    global _forced
    _forced = None if name is None else auto.check_name(name, "set_conv_algorithm: name")


def _requested(name: str) -> tuple[str, str]:
    """``(name, source)`` after the precedence rules; ``source`` says where a forced name came from."""
    if name != "auto":
        return name, f"algorithm={name!r}"
    if _forced is not None:
        return _forced, f"convkit.backends.set_conv_algorithm({_forced!r})"
    env = os.environ.get(ENV_VAR)
    if env:
        return auto.check_name(env, f"the environment variable {ENV_VAR}"), f"{ENV_VAR}={env}"
    return "auto", ""


def get_conv_algorithm() -> str:
    """The algorithm name that calls left on ``"auto"`` follow: the setting, else the env variable, else ``"auto"``."""
    return _requested("auto")[0]


def choose_conv_algorithm(name: str, problem: ConvProblem, op: str) -> ConvAlgorithm:
    """The algorithm that runs ``problem`` for a call with ``algorithm=name`` (``convkit.functional`` asks).

    Precedence, first match wins: ``name`` when it is not ``"auto"``; then
    ``set_conv_algorithm``; then the environment variable; then, in
    benchmark mode, the fastest algorithm timed once per problem; else the
    rule ``ops.conv_algorithms.auto.rule``. A forced algorithm that cannot
    run the problem raises ValueError (prefixed ``op``) naming the option it
    lacks and where the choice came from.
    """
    auto.check_name(name, f"{op}: algorithm")
    chosen, source = _requested(name)
    if chosen != "auto":
        algorithm = ALGORITHMS[chosen]
        reason = algorithm.unsupported(problem)
        if reason is not None:
            raise ValueError(f"{op}: algorithm {chosen!r} (forced by {source}) cannot run this convolution: "
                             f"{reason}; use algorithm='auto' or 'im2col'")
        return algorithm
    if _benchmark:
        if problem not in _timed:
            _timed[problem] = auto.fastest(problem)
        return _timed[problem]
    return auto.rule(problem)


class conv_algorithm:
    """Context manager: ``with conv_algorithm("fft"): ...`` forces an algorithm inside the block only.

    Args:
        name (str): one of ``CONV_ALGORITHMS``.
    """

    def __init__(self, name: str):
        self.name = auto.check_name(name, "conv_algorithm: name")

    def __enter__(self) -> conv_algorithm:
        self._previous = _forced
        set_conv_algorithm(self.name)
        return self

    def __exit__(self, *exc) -> None:
        set_conv_algorithm(self._previous)


def set_conv_benchmark(flag: bool) -> None:
    """Benchmark mode of ``"auto"`` (like ``torch.backends.cudnn.benchmark``).

    On: the first convolution of each shape times every algorithm that can
    run it (forward and both gradients, on random data of that shape) and
    keeps the fastest for later calls of that shape. Worth it when shapes
    repeat, as in training; the first step is slower. Off (default): a
    fixed rule. Turning it off forgets the timings.
    """
    global _benchmark
    _benchmark = bool(flag)
    if not _benchmark:
        _timed.clear()


def get_conv_benchmark() -> bool:
    """Whether benchmark mode is on."""
    return _benchmark


def set_num_threads(n: int) -> None:
    """Run convkit on ``n`` threads: its compiled kernels (numba) and its matrix products.

    One number governs both, and they never run at the same time (a kernel
    returns before the next matrix product starts), so ``n`` threads never
    share the cores with another ``n``: no oversubscription. The matrix
    products are split over the ``n`` threads by ``ops.gemm``, each part on
    one BLAS thread: NumPy's BLAS is kept at one thread (set when convkit is
    imported, and here again), since its own thread pool would spin after
    every product and slow down the kernels. The default is one thread per
    core. Like ``torch.set_num_threads``, the count applies to the calling
    thread (numba's rule).

    Args:
        n (int): between 1 and the number of cores numba started with (``numba.config.NUMBA_NUM_THREADS``).
    """
    limit = numba.config.NUMBA_NUM_THREADS
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= limit:
        raise ValueError(f"set_num_threads: n must be an int from 1 to {limit} (the cores numba started "
                         f"with), got {n!r}")
    start_thread_pool()
    numba.set_num_threads(n)
    threadpool_limits(limits=1, user_api="blas")


def get_num_threads() -> int:
    """The thread count of ``set_num_threads`` (numba's, for the calling thread)."""
    start_thread_pool()
    return numba.get_num_threads()


class num_threads:
    """Context manager: ``with num_threads(1): ...`` runs the block on ``n`` threads, then restores the count."""

    def __init__(self, n: int):
        self.n = n

    def __enter__(self) -> num_threads:
        self._previous = get_num_threads()
        set_num_threads(self.n)
        return self

    def __exit__(self, *exc) -> None:
        set_num_threads(self._previous)
