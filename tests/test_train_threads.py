"""convkit.train.threads.fastest_threads: measures, and leaves model, generator and settings as they were."""

import numba
import numpy as np

import convkit
from convkit.data import DataLoader
from convkit.models import convnet
from convkit.random import generator
from convkit.train.threads import fastest_threads


def test_fastest_threads_returns_a_valid_count_and_changes_nothing():
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (40, 28, 28), dtype=np.uint8), rng.integers(0, 10, 40)
    loader = DataLoader(images, labels, 20, shuffle=True, seed=0)
    convkit.manual_seed(0)
    model = convnet()                       # batch norm (running stats) and dropout (the generator)
    before = {k: np.array(v) for k, v in model.state_dict().items()}
    state = generator().bit_generator.state
    threads = convkit.get_num_threads()
    n = fastest_threads(model, loader, repeats=1)
    assert 1 <= n <= numba.config.NUMBA_NUM_THREADS
    assert convkit.get_num_threads() == threads
    assert generator().bit_generator.state == state
    after = model.state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.parameters())


def test_the_counts_take_turns_so_a_busy_moment_does_not_decide(monkeypatch):
    """2 threads take 1.0 s a step and 1 thread 1.5 s, but the machine is busy (3x slower) for the first
    third of the timing: timed one count after the other, 2 threads would look slower; taking turns, not."""
    from convkit.train import threads as module

    calls = []

    def fake_step(model, x, y, loss_fn):
        n = convkit.get_num_threads()
        calls.append(n)
        busy = 3.0 if len(calls) <= 6 else 1.0
        return busy * (1.5 if n == 1 else 1.0)

    monkeypatch.setattr(module, "_step_seconds", fake_step)
    monkeypatch.setattr(module.numba.config, "NUMBA_NUM_THREADS", 2)
    loader = DataLoader(np.zeros((4, 28, 28), np.uint8), np.zeros(4, np.int64), 2)
    assert fastest_threads(convnet(), loader, repeats=7) == 2
    assert calls[:4] == [1, 2, 1, 2]
