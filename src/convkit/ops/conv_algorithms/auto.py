"""The automatic choice of a convolution algorithm: a measured rule, or a timed choice.

Both are pure functions of a ``ConvProblem``; the settings that decide
between a forced algorithm, the rule and the timed choice (and remember
timings) live in ``convkit.backends``, which ``convkit.functional`` asks
once per call before it runs the op.
"""

from __future__ import annotations

import time

import numpy as np

from . import ALGORITHMS
from .base import ConvAlgorithm, ConvProblem

NAMES = ("auto",) + tuple(ALGORITHMS)


def check_name(name, where: str) -> str:
    """``name`` if it is a known algorithm name, else TypeError/ValueError naming ``where``."""
    if not isinstance(name, str):
        raise TypeError(f"{where} must be a string, one of {NAMES}, got {type(name).__name__}")
    if name not in NAMES:
        raise ValueError(f"{where} must be one of {NAMES}, got {name!r}")
    return name


def rule(p: ConvProblem) -> ConvAlgorithm:
    """The measured rule (``benchmarks/run.py --algorithms``; see the Speed section of README.md).

    * ``direct`` for depthwise convolutions (one input channel per group):
      ``im2col`` would run one matrix product of a single row per channel
      (3.5 times slower on a MobileNet-style 3x3 layer);
    * for 2-D 3x3 kernels at stride 1 with at least 32 input and 32 output
      channels per group: ``winograd4`` on outputs of at least 48x48 (1.3 to
      2 times faster than ``im2col`` on ResNet/VGG layers), ``winograd``
      (F(2x2, 3x3)) on outputs of 16 to 47 (its transforms cost less on a
      smaller map), ``im2col`` below;
    * ``fft`` for kernels of at least 7 per axis at stride 1 with at least 64
      channel pairs: its cost hardly grows with the kernel (1.2 times faster
      than ``im2col`` at 7x7, 1.7 at 9x9, 6 at 15x15);
    * ``im2col`` otherwise (LeNet's layers, strided convolutions, 1x1).
    """
    cg, og = p.in_channels // p.groups, p.out_channels // p.groups
    if cg == 1 and p.groups > 1:
        return ALGORITHMS["direct"]
    if ALGORITHMS["winograd4"].unsupported(p) is None and min(cg, og) >= 32 and min(p.out) >= 16:
        return ALGORITHMS["winograd4" if min(p.out) >= 48 else "winograd"]
    if len(p.kernel) >= 2 and min(p.kernel) >= 7 and all(s == 1 for s in p.stride) and cg * og >= 64:
        return ALGORITHMS["fft"]
    return ALGORITHMS["im2col"]


def _time_once(algo: ConvAlgorithm, xp: np.ndarray, w: np.ndarray, p: ConvProblem) -> float:
    start = time.perf_counter()
    y, cache = algo.forward(xp, w, p)
    algo.backward(y, xp, w, p, cache, True, True)
    return time.perf_counter() - start


def fastest(p: ConvProblem) -> ConvAlgorithm:
    """The supported algorithm with the smallest forward + backward time on random data of ``p``'s shapes.

    Each runs three times (the first call may compile kernels) and its best time counts.
    """
    rng = np.random.default_rng(0)
    xp = rng.standard_normal(p.input_shape).astype(p.dtype)
    w = rng.standard_normal((p.out_channels, p.in_channels // p.groups) + p.kernel).astype(p.dtype)
    times = {name: min(_time_once(a, xp, w, p) for _ in range(3))
             for name, a in ALGORITHMS.items() if a.unsupported(p) is None}
    return ALGORITHMS[min(times, key=times.get)]
