"""Synthetic data for training tests: an easy 10-class problem any small CNN learns in seconds."""

import numpy as np

from convkit.data import write_idx


def bars(n, seed):
    """Class k is a bright horizontal bar at rows 2k+4..2k+5 on noise; returns uint8 images (n, 28, 28), int64 labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = rng.integers(0, 60, size=(n, 28, 28))
    for k in range(10):
        images[labels == k, 2 * k + 4:2 * k + 6, 4:24] = 230
    return images.astype(np.uint8), labels.astype(np.int64)


def write_bars_dataset(root, train: int, test: int):
    """The four Fashion-MNIST file names in ``root``, holding ``train`` and ``test`` bar images; returns ``root``."""
    for prefix, n, seed in (("train", train, 0), ("t10k", test, 1)):
        images, labels = bars(n, seed)
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels.astype(np.uint8))  # IDX has no int64
    return root
