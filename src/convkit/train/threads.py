"""How many threads a training run uses: the count that runs its own step fastest, measured.

Whether a second thread pays depends on the model, the batch and the
machine: on one 2-core machine a LeNet-5 epoch took 4.46 s on 2 threads and
4.90 s on 1, on another 1 thread was 1.8 times faster (its other processes
kept the cores busy). ``fastest_threads`` settles it by timing the run's
own training step (forward, loss, backward) on its first batch for every
count from 1 to the number of cores, on a copy of the model, so the
model, its buffers, the data order and convkit's random generator are as
they were before. The counts take turns, one step each per round, so that
a change in the machine's load while they are timed falls on all of them
(timed one count after the other, a busy moment once made the batch-norm
``convnet`` pick 1 thread, 1.5 times slower than 2).
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


def _step_seconds(model: Module, x: np.ndarray, y: np.ndarray, loss_fn: Callable) -> float:
    """Seconds of one forward + loss + backward pass."""
    start = time.perf_counter()
    loss_fn(model(x), y).backward()
    seconds = time.perf_counter() - start
    model.zero_grad()
    return seconds


def fastest_threads(model: Module, loader: Iterable, *, loss_fn: Callable = F.cross_entropy,
                    repeats: int = 7) -> int:
    """The thread count (``convkit.set_num_threads``) under which ``model`` trains fastest on ``loader``.

    Times ``repeats`` rounds of one step on the first batch of ``loader`` at
    each count from 1 to the cores available to numba (after one untimed
    round), the counts taking turns, and returns the count of the smallest
    median; leaves the thread setting, ``model`` and convkit's generator
    unchanged.
    """
    x, y = next(iter(loader))
    state = generator().bit_generator.state
    trial = copy.deepcopy(model)
    trial.train()
    counts = range(1, numba.config.NUMBA_NUM_THREADS + 1)
    seconds: dict[int, list[float]] = {n: [] for n in counts}
    try:
        for _ in range(repeats + 1):
            for n in counts:
                with num_threads(n):
                    seconds[n].append(_step_seconds(trial, x, y, loss_fn))
    finally:
        generator().bit_generator.state = state
    return min(counts, key=lambda n: float(np.median(seconds[n][1:])))

