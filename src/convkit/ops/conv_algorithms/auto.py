"""Which algorithm runs a convolution: a forced choice, a rule per problem, or a timed choice.

Precedence, first match wins:

1. the ``algorithm=`` keyword of the call, when it is not ``"auto"``;
2. ``convkit.backends.set_conv_algorithm(name)`` (or its context manager);
3. the environment variable ``CONVKIT_CONV_ALGORITHM``;
4. ``"auto"``: with benchmark mode on (``convkit.backends.set_conv_benchmark(True)``),
   the fastest supported algorithm measured once per problem (forward plus
   both gradients, like cuDNN's benchmark mode) and remembered; otherwise ``rule(p)``.

A forced algorithm that cannot run the problem is an error (``ValueError``
naming the option it lacks and where the choice came from); ``auto`` only
ever picks algorithms that can.
"""

from __future__ import annotations

import os
import time

import numpy as np

from . import ALGORITHMS
from .base import ConvAlgorithm, ConvProblem

NAMES = ("auto",) + tuple(ALGORITHMS)
ENV_VAR = "CONVKIT_CONV_ALGORITHM"

_forced: str | None = None
_benchmark = False
_timed: dict[ConvProblem, str] = {}


def check_name(name, where: str) -> str:
    """``name`` if it is a known algorithm name, else TypeError/ValueError naming ``where``."""
    if not isinstance(name, str):
        raise TypeError(f"{where} must be a string, one of {NAMES}, got {type(name).__name__}")
    if name not in NAMES:
        raise ValueError(f"{where} must be one of {NAMES}, got {name!r}")
    return name


def set_forced(name: str | None) -> str | None:
    """Force ``name`` for calls left on ``"auto"`` (None: back to the env variable / rule); returns the previous."""
    global _forced
    previous = _forced
    _forced = None if name is None else check_name(name, "set_conv_algorithm: name")
    return previous


def set_benchmark(flag: bool) -> bool:
    """Turn the timed choice on or off; returns the previous setting. Turning it off forgets the timings."""
    global _benchmark
    previous, _benchmark = _benchmark, bool(flag)
    if not _benchmark:
        _timed.clear()
    return previous


def benchmark_enabled() -> bool:
    return _benchmark


def requested(name: str) -> tuple[str, str]:
    """``(name, source)`` after the precedence rules; ``source`` says where a forced name came from."""
    if name != "auto":
        return name, f"algorithm={name!r}"
    if _forced is not None:
        return _forced, f"convkit.backends.set_conv_algorithm({_forced!r})"
    env = os.environ.get(ENV_VAR)
    if env:
        return check_name(env, f"the environment variable {ENV_VAR}"), f"{ENV_VAR}={env}"
    return "auto", ""


def rule(p: ConvProblem) -> ConvAlgorithm:
    """The measured rule (``benchmarks/run.py --algorithms``; see the Speed section of README.md).

    * ``winograd4`` for 2-D 3x3 kernels, stride 1, at least 32 input and 32
      output channels per group and outputs of at least 16x16: 1.3 to 1.8
      times faster than ``im2col`` on ResNet/VGG layers; on 14x14 maps the
      transforms cost more than they save;
    * ``fft`` for kernels of at least 7 per axis at stride 1 with at least 64
      channel pairs: its cost hardly grows with the kernel (1.2 times faster
      than ``im2col`` at 7x7, 1.7 at 9x9, 6 at 15x15);
    * ``im2col`` otherwise (LeNet's layers, strided stems, 1x1). ``direct``
      was never the fastest on the measured shapes, so the rule never picks it.
    """
    cg, og = p.in_channels // p.groups, p.out_channels // p.groups
    if ALGORITHMS["winograd4"].unsupported(p) is None and min(cg, og) >= 32 and min(p.out) >= 16:
        return ALGORITHMS["winograd4"]
    if len(p.kernel) >= 2 and min(p.kernel) >= 7 and all(s == 1 for s in p.stride) and cg * og >= 64:
        return ALGORITHMS["fft"]
    return ALGORITHMS["im2col"]


def _time_once(algo: ConvAlgorithm, xp: np.ndarray, w: np.ndarray, p: ConvProblem) -> float:
    start = time.perf_counter()
    y, cache = algo.forward(xp, w, p)
    algo.backward(y, xp, w, p, cache, True, True)
    return time.perf_counter() - start


def _fastest(xp: np.ndarray, w: np.ndarray, p: ConvProblem) -> ConvAlgorithm:
    """The supported algorithm with the smallest forward + backward time on this data (best of 2 runs)."""
    if p not in _timed:
        times = {name: min(_time_once(a, xp, w, p) for _ in range(2))
                 for name, a in ALGORITHMS.items() if a.unsupported(p) is None}
        _timed[p] = min(times, key=times.get)
    return ALGORITHMS[_timed[p]]


def check(name: str, p: ConvProblem, op: str) -> None:
    """Raise ValueError (prefixed ``op``) if the algorithm that ``name`` forces cannot run ``p``."""
    chosen, source = requested(name)
    if chosen != "auto":
        reason = ALGORITHMS[chosen].unsupported(p)
        if reason is not None:
            raise ValueError(f"{op}: algorithm {chosen!r} (forced by {source}) cannot run this convolution: "
                             f"{reason}; use algorithm='auto' or 'im2col'")


def select(name: str, p: ConvProblem, xp: np.ndarray | None = None, w: np.ndarray | None = None,
           op: str = "conv") -> ConvAlgorithm:
    """The algorithm that runs ``p`` (``xp``, ``w`` are the data timed in benchmark mode)."""
    check(name, p, op)
    chosen, _ = requested(name)
    if chosen != "auto":
        return ALGORITHMS[chosen]
    if _benchmark and xp is not None:
        return _fastest(xp, w, p)
    return rule(p)
