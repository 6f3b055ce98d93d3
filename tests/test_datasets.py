"""MNIST / Fashion-MNIST loading: where files are looked up, shape checks, the missing-data message."""

from pathlib import Path

import numpy as np
import pytest

import convkit.data.datasets as datasets
from convkit.data import DataError, Dataset, load, write_idx

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")


def make_split(directory, n, split="train", gz=True, images=None, labels=None):
    """Write one split of ``n`` random images; returns (images, labels)."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(n)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8) if images is None else images
    labels = rng.integers(0, 10, n, dtype=np.uint8) if labels is None else labels
    prefix = {"train": "train", "test": "t10k"}[split]
    suffix = ".gz" if gz else ""
    write_idx(directory / f"{prefix}-images-idx3-ubyte{suffix}", images)
    write_idx(directory / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
    return images, labels


@pytest.fixture
def places(monkeypatch, tmp_path):
    """No $CONVKIT_DATA, the cache and Debian's directory redirected to empty folders under tmp_path."""
    monkeypatch.delenv("CONVKIT_DATA", raising=False)
    monkeypatch.delenv("CONVKIT_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(datasets, "SYSTEM_DIRS", {"fashion-mnist": tmp_path / "debian"})
    return tmp_path


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("split", ["train", "test"])
def test_load_from_data_dir(places, gz, split):
    images, labels = make_split(places / "d", 5, split, gz=gz)
    ds = load("fashion-mnist", split, data_dir=places / "d")
    assert isinstance(ds, Dataset)
    assert ds.images.dtype == np.uint8 and ds.images.shape == (5, 28, 28)
    assert ds.labels.dtype == np.int64 and ds.labels.shape == (5,)
    np.testing.assert_array_equal(ds.images, images)
    np.testing.assert_array_equal(ds.labels, labels)
    assert (ds.name, ds.split, len(ds)) == ("fashion-mnist", split, 5)
    assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot" and len(ds.classes) == 10
    assert repr(ds) == f"Dataset(name='fashion-mnist', split='{split}', images=uint8 (5, 28, 28), labels=int64 (5,))"


def test_dataset_constants(places):
    make_split(places / "d", 3)
    fashion = load("fashion-mnist", data_dir=places / "d")
    digits = load("mnist", data_dir=places / "d")
    assert (fashion.mean, fashion.std) == (0.2860, 0.3530)
    assert (digits.mean, digits.std) == (0.1307, 0.3081)
    assert digits.classes == tuple("0123456789")


def test_subfolder_named_after_the_dataset_comes_first(places):
    make_split(places / "d", 3)
    make_split(places / "d" / "mnist", 4)
    assert len(load("mnist", data_dir=places / "d")) == 4
    assert len(load("fashion-mnist", data_dir=places / "d")) == 3


def test_lookup_order(places, monkeypatch):
    make_split(places / "debian", 2)
    assert len(load("fashion-mnist")) == 2
    make_split(places / "xdg" / "convkit" / "fashion-mnist", 3)
    assert len(load("fashion-mnist")) == 3
    make_split(places / "cache" / "fashion-mnist", 4)
    monkeypatch.setenv("CONVKIT_CACHE", str(places / "cache"))
    assert len(load("fashion-mnist")) == 4
    make_split(places / "arg-cache" / "fashion-mnist", 5)
    assert len(load("fashion-mnist", cache_dir=places / "arg-cache")) == 5
    make_split(places / "env" / "fashion-mnist", 6)
    monkeypatch.setenv("CONVKIT_DATA", str(places / "env"))
    assert len(load("fashion-mnist", cache_dir=places / "arg-cache")) == 6
    make_split(places / "arg", 7)
    assert len(load("fashion-mnist", data_dir=places / "arg")) == 7


def test_data_dir_is_the_only_place_looked(places, monkeypatch):
    make_split(places / "env", 3)
    monkeypatch.setenv("CONVKIT_DATA", str(places / "env"))
    with pytest.raises(DataError) as info:
        load("fashion-mnist", data_dir=places / "typo")
    assert str(places / "typo") in str(info.value)
    assert str(places / "env") not in str(info.value)


def test_env_dir_without_this_dataset_falls_through(places, monkeypatch):
    make_split(places / "env" / "mnist", 3)
    make_split(places / "debian", 2)
    monkeypatch.setenv("CONVKIT_DATA", str(places / "env"))
    assert len(load("mnist")) == 3
    assert len(load("fashion-mnist")) == 2


def test_needs_both_files_of_the_split_in_one_place(places):
    make_split(places / "debian", 2)
    make_split(places / "xdg" / "convkit" / "fashion-mnist", 3)
    (places / "xdg" / "convkit" / "fashion-mnist" / "train-labels-idx1-ubyte.gz").unlink()
    assert len(load("fashion-mnist")) == 2
    with pytest.raises(DataError):
        load("fashion-mnist", "test")


def test_missing_fashion_mnist_says_how_to_get_it(places):
    with pytest.raises(FileNotFoundError) as info:
        load("fashion-mnist", "test")
    assert isinstance(info.value, DataError)
    message = str(info.value)
    assert "Fashion-MNIST (test split) not found" in message
    assert "sudo apt-get install dataset-fashion-mnist" in message
    assert "--data-dir" in message and "CONVKIT_DATA" in message
    assert "t10k-images-idx3-ubyte.gz" in message
    for place in (places / "xdg" / "convkit" / "fashion-mnist", places / "debian"):
        assert str(place) in message
    assert "download=True" in message and "--download" in message


def test_missing_mnist_says_how_to_get_it(places):
    with pytest.raises(DataError) as info:
        load("mnist")
    message = str(info.value)
    assert "MNIST (train split) not found" in message
    assert "--download" in message and "download=True" in message
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/" in message
    assert "http://yann.lecun.com/exdb/mnist/" in message
    assert "--data-dir" in message and "CONVKIT_DATA" in message
    assert "apt-get" not in message


def test_fashion_mnist_missing_offers_download_and_debians_package(places):
    with pytest.raises(DataError, match=r"(?s)add --download.*zalandoresearch.*apt-get install dataset-fashion-mnist"):
        load("fashion-mnist")


@pytest.mark.parametrize("images, labels, match", [
    (np.zeros((3, 27, 28), np.uint8), np.zeros(3, np.uint8), r"uint8 of shape \(3, 27, 28\); expected uint8 images"),
    (np.zeros((3, 28, 28), np.int16), np.zeros(3, np.uint8), r"int16 .* expected uint8 images \(N, 28, 28\)"),
    (np.zeros((3, 28, 28), np.uint8), np.zeros((3, 1), np.uint8), r"shape \(3, 1\); expected uint8 labels \(N,\)"),
    (np.zeros((3, 28, 28), np.uint8), np.zeros(4, np.uint8), r"has 3 images but .* has 4 labels"),
    (np.zeros((3, 28, 28), np.uint8), np.array([0, 10, 1], np.uint8), r"label 10; expected labels in 0..9"),
])
def test_bad_content_is_rejected(places, images, labels, match):
    make_split(places / "d", 3, images=images, labels=labels)
    with pytest.raises(ValueError, match=match):
        load("mnist", data_dir=places / "d")


def test_bad_name_or_split(places):
    with pytest.raises(ValueError, match=r"name must be one of fashion-mnist, mnist, got 'cifar10'"):
        load("cifar10")
    with pytest.raises(ValueError, match=r"split must be one of train, test, got 'val'"):
        load("mnist", "val")


@pytest.mark.skipif(not DEBIAN_DIR.is_dir(), reason=f"Debian package dataset-fashion-mnist not installed "
                    f"({DEBIAN_DIR} missing); CI installs it")
def test_real_fashion_mnist_test_split(monkeypatch, tmp_path):
    monkeypatch.delenv("CONVKIT_DATA", raising=False)
    monkeypatch.setenv("CONVKIT_CACHE", str(tmp_path))
    ds = load("fashion-mnist", "test")
    assert ds.images.shape == (10_000, 28, 28) and ds.images.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(ds.labels, minlength=10), [1000] * 10)
    assert ds.images.max() == 255 and ds.images.min() == 0
