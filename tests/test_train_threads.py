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
