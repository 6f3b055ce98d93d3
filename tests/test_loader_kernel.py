"""The DataLoader's one-pass batch kernel against a plain NumPy computation of gather, crop, flip and normalise."""

import numpy as np
import pytest

from convkit.data import DataLoader, RandomCrop, RandomHorizontalFlip

RNG = np.random.default_rng(11)


def reference_batches(images, labels, batch_size, seed, epoch, augment, mean, std, dtype, shuffle=True):
    """What the loader must yield, step by step in NumPy, drawing the same numbers from the same generators."""
    n = len(images)
    order = np.random.default_rng([seed, epoch]).permutation(n) if shuffle else np.arange(n)
    rng = np.random.default_rng([seed, epoch, 1])
    out = []
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        batch = images[idx]                                        # gather
        for kind, *args in augment:
            if kind == "crop":
                size, p = args
                padded = np.pad(batch, [(0, 0)] * (batch.ndim - 2) + [(p, p), (p, p)])
                dy = rng.integers(0, padded.shape[-2] - size + 1, size=len(batch))
                dx = rng.integers(0, padded.shape[-1] - size + 1, size=len(batch))
                batch = np.stack([padded[b, ..., dy[b]:dy[b] + size, dx[b]:dx[b] + size] for b in range(len(batch))])
            else:
                flip = rng.random(len(batch)) < args[0]
                batch = np.stack([batch[b, ..., ::-1] if flip[b] else batch[b] for b in range(len(batch))])
        x = ((batch / 255.0 - mean) / std).astype(dtype)          # normalise (float64, rounded once)
        out.append((x if x.ndim == 4 else x[:, None], labels[idx]))
    return out


def as_augment(spec):
    return [RandomCrop(*args) if kind == "crop" else RandomHorizontalFlip(*args) for kind, *args in spec]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("images", [RNG.integers(0, 256, (203, 28, 28), dtype=np.uint8),
                                    RNG.integers(0, 256, (37, 3, 9, 13), dtype=np.uint8)],
                         ids=["N,H,W", "N,C,H,W"])
@pytest.mark.parametrize("spec", [
    [],
    [("crop", 9, 2)],
    [("flip", 0.5)],
    [("crop", 9, 2), ("flip", 0.5)],
    [("flip", 0.3), ("crop", 8, 4)],
    [("crop", 7, 0), ("flip", 0.6), ("crop", 9, 3), ("flip", 1.0)],
], ids=str)
def test_batches_equal_the_numpy_reference(spec, images, dtype):
    labels = np.arange(len(images))
    for epoch in (0, 2):
        loader = DataLoader(images, labels, batch_size=64, shuffle=True, seed=4, mean=0.3, std=0.25,
                            augment=as_augment(spec), dtype=dtype)
        loader.set_epoch(epoch)
        expected = reference_batches(images, labels, 64, 4, epoch, spec, 0.3, 0.25, dtype)
        for (x, y), (x_ref, y_ref) in zip(loader, expected, strict=True):
            assert x.dtype == dtype and x.shape == x_ref.shape
            np.testing.assert_array_equal(x, x_ref)
            np.testing.assert_array_equal(y, y_ref)


def test_a_custom_augmentation_sees_the_uint8_batch_so_far():
    images = RNG.integers(0, 256, (20, 6, 6), dtype=np.uint8)
    seen = []

    def invert(batch, rng):
        seen.append(batch.copy())
        return 255 - batch

    loader = DataLoader(images, np.arange(20), batch_size=8, augment=[RandomHorizontalFlip(1.0), invert])
    x, _ = next(iter(loader))
    np.testing.assert_array_equal(seen[0], images[:8, :, ::-1])
    assert seen[0].dtype == np.uint8 and seen[0].shape == (8, 6, 6)
    np.testing.assert_array_equal(x[:, 0], ((255 - images[:8, :, ::-1]) / 255.0).astype(np.float32))
