"""The one random number generator behind initialisation and dropout.

``manual_seed(s)`` makes weight initialisation and dropout masks
reproducible, as ``torch.manual_seed`` does (the streams differ from
PyTorch's: to compare with torch, copy weights, don't re-seed).
"""

from __future__ import annotations

import numbers

import numpy as np

_generator = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed convkit's generator; returns it."""
    global _generator
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"manual_seed: seed must be a non-negative int, got {seed!r}")
    _generator = np.random.default_rng(int(seed))
    return _generator


def generator() -> np.random.Generator:
    """The current generator (reseeded by ``manual_seed``)."""
    return _generator
