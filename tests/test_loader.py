"""DataLoader batches, normalisation, per-epoch determinism; crop and flip augmentations; splits."""

import numpy as np
import pytest

from convkit.data import DataLoader, RandomCrop, RandomHorizontalFlip, train_val_split

RNG = np.random.default_rng(0)
IMAGES = RNG.integers(0, 256, (50, 28, 28), dtype=np.uint8)
LABELS = RNG.integers(0, 10, 50)


def epoch(loader, e):
    loader.set_epoch(e)
    return list(loader)


@pytest.mark.parametrize("batch_size, drop_last, sizes", [
    (16, False, [16, 16, 16, 2]), (16, True, [16, 16, 16]), (50, False, [50]), (64, True, []), (64, False, [50]),
])
def test_batch_shapes_and_count(batch_size, drop_last, sizes):
    loader = DataLoader(IMAGES, LABELS, batch_size=batch_size, drop_last=drop_last)
    batches = list(loader)
    assert len(loader) == len(sizes) == len(batches)
    for (x, y), size in zip(batches, sizes):
        assert x.shape == (size, 1, 28, 28) and x.dtype == np.float32
        assert y.shape == (size,) and y.dtype == np.int64


def test_normalisation_and_stored_order():
    loader = DataLoader(IMAGES, LABELS.astype(np.uint8), batch_size=16, mean=0.2860, std=0.3530)
    x = np.concatenate([b[0] for b in loader])
    y = np.concatenate([b[1] for b in loader])
    np.testing.assert_allclose(x[:, 0], ((IMAGES / 255) - 0.2860) / 0.3530, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(y, LABELS)
    assert y.dtype == np.int64


def test_float64_and_default_scaling():
    x64 = next(iter(DataLoader(IMAGES, LABELS, batch_size=50, mean=0.5, std=0.25, dtype=np.float64)))[0]
    assert x64.dtype == np.float64
    np.testing.assert_allclose(x64[:, 0], (IMAGES / 255 - 0.5) / 0.25, rtol=1e-15, atol=1e-15)
    x = next(iter(DataLoader(IMAGES, LABELS, batch_size=50)))[0]
    np.testing.assert_allclose(x[:, 0], IMAGES / 255, rtol=1e-7, atol=0)
    assert x.min() >= 0 and x.max() <= 1


def test_images_with_a_channel_axis():
    images = RNG.integers(0, 256, (10, 3, 8, 8), dtype=np.uint8)
    x, y = next(iter(DataLoader(images, np.arange(10), batch_size=4)))
    assert x.shape == (4, 3, 8, 8)
    np.testing.assert_allclose(x, images[:4] / 255, rtol=1e-7)


def test_shuffle_order_is_drawn_from_seed_and_epoch():
    loader = DataLoader(IMAGES, np.arange(50), batch_size=8, shuffle=True, seed=3)
    for e in (0, 1, 7):
        y = np.concatenate([b[1] for b in epoch(loader, e)])
        np.testing.assert_array_equal(y, np.random.default_rng([3, e]).permutation(50))
        np.testing.assert_array_equal(loader.order(), y)
    first, second = (np.concatenate([b[1] for b in epoch(loader, e)]) for e in (0, 1))
    assert not np.array_equal(first, second)
    other_seed = DataLoader(IMAGES, np.arange(50), batch_size=8, shuffle=True, seed=4)
    assert not np.array_equal(np.concatenate([b[1] for b in other_seed]), first)


def test_epoch_repeats_until_set_epoch():
    loader = DataLoader(IMAGES, np.arange(50), batch_size=8, shuffle=True)
    a, b = (np.concatenate([y for _, y in loader]) for _ in range(2))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("augment", [(), (RandomCrop(28, 2), RandomHorizontalFlip(0.5))])
def test_resumed_run_sees_the_same_batches(augment):
    def make():
        return DataLoader(IMAGES, LABELS, batch_size=16, shuffle=True, seed=11, mean=0.1, std=0.3,
                          augment=augment)

    uninterrupted = make()
    epochs = [epoch(uninterrupted, e) for e in range(3)]
    resumed = make()
    for e in (2, 1):
        for (x, y), (x_ref, y_ref) in zip(epoch(resumed, e), epochs[e], strict=True):
            np.testing.assert_array_equal(x, x_ref)
            np.testing.assert_array_equal(y, y_ref)


def test_augmentations_differ_between_epochs_not_within():
    loader = DataLoader(IMAGES, LABELS, batch_size=50, augment=[RandomCrop(28, 2)])
    x0, x1, x0_again = (epoch(loader, e)[0][0] for e in (0, 1, 0))
    assert not np.array_equal(x0, x1)
    np.testing.assert_array_equal(x0, x0_again)


def test_augmentations_change_the_batch_before_normalisation():
    plain = DataLoader(IMAGES, LABELS, batch_size=50, mean=0.2, std=0.4)
    augmented = DataLoader(IMAGES, LABELS, batch_size=50, mean=0.2, std=0.4, augment=[RandomCrop(28, 4)])
    x, x_aug = next(iter(plain))[0], next(iter(augmented))[0]
    assert not np.array_equal(x, x_aug)
    zero_pixel = np.float32((0 - 0.2) / 0.4)
    assert (x_aug == zero_pixel).sum() > (x == zero_pixel).sum()  # the zero fill is background
    assert set(np.unique(x_aug)) <= set(np.unique(((np.arange(256) / 255 - 0.2) / 0.4).astype(np.float32)))


def find_offset(out, padded, size):
    """All (dy, dx) with ``padded[dy:dy+size, dx:dx+size] == out``."""
    h, w = padded.shape[-2:]
    return [(dy, dx) for dy in range(h - size + 1) for dx in range(w - size + 1)
            if np.array_equal(padded[..., dy:dy + size, dx:dx + size], out)]


@pytest.mark.parametrize("size, padding", [(28, 2), (28, 4), (24, 0), (20, 3)])
def test_random_crop_is_a_window_of_the_zero_padded_image(size, padding):
    images = RNG.integers(1, 256, (200, 28, 28), dtype=np.uint8)  # no zeros: the fill is visible
    out = RandomCrop(size, padding)(images, np.random.default_rng(5))
    assert out.shape == (200, size, size) and out.dtype == np.uint8
    padded = np.pad(images, ((0, 0), (padding, padding), (padding, padding)))
    offsets = []
    for image, cropped in zip(padded, out):
        found = find_offset(cropped, image, size)
        assert len(found) == 1
        offsets.append(found[0])
    span = 28 + 2 * padding - size
    seen = np.array(offsets)
    assert seen.min() == 0 and seen.max() == span  # extreme shifts occur
    assert len(set(offsets)) > min(20, (span + 1) ** 2 // 2)
    np.testing.assert_array_equal(out, RandomCrop(size, padding)(images, np.random.default_rng(5)))
    assert not np.array_equal(out, RandomCrop(size, padding)(images, np.random.default_rng(6)))


def test_random_crop_shift_fills_with_zeros():
    image = np.arange(1, 26, dtype=np.uint8).reshape(1, 5, 5)
    for seed in range(20):
        out = RandomCrop(5, 1)(image, np.random.default_rng(seed))[0]
        dy, dx = find_offset(out, np.pad(image[0], 1), 5)[0]
        shifted = np.zeros((7, 7), np.uint8)
        shifted[2 - dy:7 - dy, 2 - dx:7 - dx] = image[0]  # image moved by (1 - dy, 1 - dx)
        np.testing.assert_array_equal(out, shifted[1:6, 1:6])


def test_random_crop_with_channels_crops_all_channels_alike():
    images = RNG.integers(1, 256, (30, 3, 10, 10), dtype=np.uint8)
    out = RandomCrop(10, 2)(images, np.random.default_rng(0))
    assert out.shape == (30, 3, 10, 10)
    padded = np.pad(images, ((0, 0), (0, 0), (2, 2), (2, 2)))
    for image, cropped in zip(padded, out):
        assert len(find_offset(cropped, image, 10)) == 1


def test_no_padding_full_size_crop_is_identity():
    np.testing.assert_array_equal(RandomCrop(28, 0)(IMAGES, np.random.default_rng(0)), IMAGES)


def test_horizontal_flip_reverses_columns_of_some_images():
    images = RNG.integers(0, 256, (1000, 4, 6), dtype=np.uint8)
    out = RandomHorizontalFlip(0.5)(images, np.random.default_rng(2))
    flipped = np.array([np.array_equal(o, i[:, ::-1]) for o, i in zip(out, images)])
    kept = np.array([np.array_equal(o, i) for o, i in zip(out, images)])
    assert np.all(flipped ^ kept)
    assert 400 < flipped.sum() < 600
    np.testing.assert_array_equal(out, RandomHorizontalFlip(0.5)(images, np.random.default_rng(2)))
    np.testing.assert_array_equal(RandomHorizontalFlip(0.0)(images, np.random.default_rng(0)), images)
    np.testing.assert_array_equal(RandomHorizontalFlip(1.0)(images, np.random.default_rng(0)), images[..., ::-1])
    assert out is not images


def test_train_val_split():
    train, val = train_val_split(1000, 0.1, seed=0)
    assert len(train) == 900 and len(val) == 100
    np.testing.assert_array_equal(np.sort(np.concatenate([train, val])), np.arange(1000))
    assert np.all(np.diff(train) > 0) and np.all(np.diff(val) > 0)
    again = train_val_split(1000, 0.1, seed=0)
    np.testing.assert_array_equal(again[1], val)
    assert not np.array_equal(train_val_split(1000, 0.1, seed=1)[1], val)
    train, val = train_val_split(7, 0.0)
    np.testing.assert_array_equal(train, np.arange(7))
    assert val.shape == (0,)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(images=IMAGES.astype(np.float32)), TypeError, r"images must be a uint8 ndarray .* float32"),
    (dict(images=IMAGES[0]), TypeError, r"images must be a uint8 ndarray .* \(28, 28\)"),
    (dict(labels=LABELS[:10]), ValueError, r"50 images but 10 labels"),
    (dict(labels=LABELS.astype(float)), TypeError, r"labels must be integers of shape \(N,\), got float64"),
    (dict(batch_size=0), ValueError, r"batch_size must be a positive int, got 0"),
    (dict(seed=-1), ValueError, r"seed must be a non-negative int, got -1"),
    (dict(std=0.0), ValueError, r"std must be a positive finite number, got 0.0"),
    (dict(mean=float("nan")), ValueError, r"mean must be a finite number, got nan"),
    (dict(dtype=np.int32), TypeError, r"dtype must be float32 or float64, got int32"),
    (dict(augment=[3]), TypeError, r"augment must hold callables aug\(images, rng\), got 3"),
])
def test_loader_rejects_bad_arguments(kwargs, error, match):
    args = dict(images=IMAGES, labels=LABELS) | kwargs
    with pytest.raises(error, match=match):
        DataLoader(**args)


@pytest.mark.parametrize("call, match", [
    (lambda: DataLoader(IMAGES, LABELS).set_epoch(-1), r"epoch must be a non-negative int, got -1"),
    (lambda: RandomCrop(0), r"size must be a positive int, got 0"),
    (lambda: RandomCrop(28, -1), r"padding must be a non-negative int, got -1"),
    (lambda: RandomCrop(33, 2)(IMAGES, np.random.default_rng()), r"size 33 is larger than the padded images \(32, 32\)"),
    (lambda: RandomCrop()(IMAGES[0], np.random.default_rng()), r"at least 3 dims, got shape \(28, 28\)"),
    (lambda: RandomHorizontalFlip(1.5), r"p must be a probability in \[0, 1\], got 1.5"),
    (lambda: train_val_split(0), r"n must be a positive int, got 0"),
    (lambda: train_val_split(10, 1.0), r"val_fraction must be in \[0, 1\), got 1.0"),
    (lambda: train_val_split(10, 0.01), r"gives 0 validation and 10 training samples"),
])
def test_other_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()
