"""How many threads a training run uses: the count that runs its own step fastest, measured.

Whether a second thread pays depends on the model, the batch and the
machine: on one 2-core machine a LeNet-5 epoch took 4.46 s on 2 threads and
4.90 s on 1, on another 1 thread was 1.8 times faster (its other processes
kept the cores busy). ``fastest_threads`` settles it by timing the run's
own training step (forward, loss, backward) on its first batch for every
count from 1 to the number of cores, on a copy of the model, so the
model, its buffers, the data order and convkit's random generator are as
they were before.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable

import numba
import numpy as np

from .. import functional as F
from ..backends import num_threads
from ..nn import Module
from ..random import generator


def _step_seconds(model: Module, x: np.ndarray, y: np.ndarray, loss_fn: Callable, repeats: int) -> float:
    """Median seconds of ``repeats`` forward + loss + backward passes (after one untimed pass)."""
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        loss_fn(model(x), y).backward()
        times.append(time.perf_counter() - start)
        model.zero_grad()
    return float(np.median(times[1:]))


def fastest_threads(model: Module, loader: Iterable, *, loss_fn: Callable = F.cross_entropy,
                    repeats: int = 5) -> int:
    """The thread count (``convkit.set_num_threads``) under which ``model`` trains fastest on ``loader``.

    Times ``repeats`` steps on the first batch of ``loader`` at each count
    from 1 to the cores available to numba and returns the fastest; leaves
    the thread setting, ``model`` and convkit's generator unchanged.
    """
    x, y = next(iter(loader))
    state = generator().bit_generator.state
    trial = copy.deepcopy(model)
    trial.train()
    try:
        seconds = {}
        for n in range(1, numba.config.NUMBA_NUM_THREADS + 1):
            with num_threads(n):
                seconds[n] = _step_seconds(trial, x, y, loss_fn, repeats)
    finally:
        generator().bit_generator.state = state
    return min(seconds, key=seconds.get)

