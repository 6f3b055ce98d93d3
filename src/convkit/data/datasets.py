"""MNIST and Fashion-MNIST: finding the four IDX files, loading and checking them.

Both datasets are 28x28 grey images (uint8, 0 = background) in ten classes:
60,000 for training ("train") and 10,000 for testing ("test"), stored as
``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz`` (the
unzipped names without ``.gz`` are accepted too).

Where ``load`` looks, in this order:

1. ``data_dir``, when given: then the only place looked (a wrong path is an
   error, not a silent fallback to other data);
2. ``$CONVKIT_DATA``;
3. the cache ``<root>/<name>``, where the root is ``cache_dir``, else
   ``$CONVKIT_CACHE``, else ``$XDG_CACHE_HOME/convkit`` (by default
   ``~/.cache/convkit``);
4. for Fashion-MNIST, Debian's package directory
   ``/usr/share/datasets/fashion-mnist`` (``apt-get install dataset-fashion-mnist``).

In ``data_dir`` and ``$CONVKIT_DATA`` the files may lie in a subfolder
named after the dataset (``D/mnist``, ``D/fashion-mnist``: looked at first)
or in the directory itself; in the cache they lie in ``<root>/<name>``.
With ``download=True``, files that are found nowhere are downloaded from
the dataset's ``MIRRORS`` in turn, each checked against its published
SHA-256 (``SHA256``) before it is kept, into ``data_dir`` if given, else
into ``<root>/<name>``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .download import DownloadError
from .download import download as download_file
from .idx import read_idx, read_idx_header

SPLITS = {"train": "train", "test": "t10k"}
SYSTEM_DIRS = {"fashion-mnist": Path("/usr/share/datasets/fashion-mnist")}
# Where --download fetches each dataset, tried in order; a file is kept only if its SHA-256 is the published one.
MIRRORS = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    "fashion-mnist": ("https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
                      "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"),
}
SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    # The files of Zalando's repository and S3 bucket (the digests TensorFlow Datasets records for them;
    # Debian's package recompresses the same IDX data, so its .gz files have other digests).
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc",
        "train-labels-idx1-ubyte.gz": "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc",
        "t10k-images-idx3-ubyte.gz": "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229",
        "t10k-labels-idx1-ubyte.gz": "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf",
    },
}


@dataclass(frozen=True)
class _Info:
    title: str
    classes: tuple[str, ...]
    mean: float
    std: float


# mean and std: of all 60,000 x 784 training pixels, scaled to [0, 1].
_DATASETS = {
    "fashion-mnist": _Info(
        "Fashion-MNIST",
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        0.2860, 0.3530,
    ),
    "mnist": _Info("MNIST", tuple(str(d) for d in range(10)), 0.1307, 0.3081),
}
NAMES = tuple(_DATASETS)


class DataError(FileNotFoundError):
    """A dataset's files are not where ``load`` looked; the message says how to get them."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """One split of a dataset.

    Attributes:
        images: uint8 array ``(N, 28, 28)``, 0 = background.
        labels: int64 array ``(N,)`` of class indices in ``0..9``.
        classes: the ten class names, indexed by label.
        name: ``"fashion-mnist"`` or ``"mnist"``.
        split: ``"train"`` or ``"test"``.
        mean, std: the dataset's training-pixel mean and standard deviation
            on the [0, 1] scale (Fashion-MNIST 0.2860 / 0.3530, MNIST
            0.1307 / 0.3081), for ``DataLoader(mean=..., std=...)``.
    """

    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    name: str
    split: str

    @property
    def mean(self) -> float:
        return _DATASETS[self.name].mean

    @property
    def std(self) -> float:
        return _DATASETS[self.name].std

    def __len__(self) -> int:
        return len(self.labels)

    def fingerprint(self) -> dict:
        """What identifies this data: ``{"name", "split", "size", "sha256"}``.

        ``sha256`` is the hex SHA-256 of the labels' bytes (as int64) followed
        by the images' bytes, as loaded: the same for a gzip file and its
        unzipped copy, different for any other data (about 30 ms for the
        47 MB of Fashion-MNIST's training images).
        """
        digest = hashlib.sha256(np.ascontiguousarray(self.labels, dtype=np.int64).tobytes())
        digest.update(np.ascontiguousarray(self.images).data)
        return {"name": self.name, "split": self.split, "size": len(self), "sha256": digest.hexdigest()}

    def __repr__(self) -> str:
        return (f"Dataset(name={self.name!r}, split={self.split!r}, images={self.images.dtype} "
                f"{self.images.shape}, labels={self.labels.dtype} {self.labels.shape})")


def _file_names(split: str) -> tuple[str, str]:
    prefix = SPLITS[split]
    return f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"


def _cache_root(cache_dir) -> Path:
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get("CONVKIT_CACHE"):
        return Path(os.environ["CONVKIT_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "convkit"


def _search_dirs(name: str, data_dir, cache_dir) -> list[tuple[str, Path]]:
    """``(label, directory)`` pairs in lookup order."""
    if data_dir is not None:
        base = Path(data_dir).expanduser()
        return [("data_dir", base / name), ("data_dir", base)]
    searched = []
    if os.environ.get("CONVKIT_DATA"):
        base = Path(os.environ["CONVKIT_DATA"]).expanduser()
        searched += [("$CONVKIT_DATA", base / name), ("$CONVKIT_DATA", base)]
    searched.append(("cache", _cache_root(cache_dir) / name))
    if name in SYSTEM_DIRS:
        searched.append((f"Debian package dataset-{name}", SYSTEM_DIRS[name]))
    return searched


def _find(directory: Path, gz_name: str) -> Path | None:
    for candidate in (directory / gz_name, directory / gz_name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def _locate(split: str, searched: list[tuple[str, Path]]) -> tuple[Path, Path] | None:
    """The (images, labels) files of ``split`` from the first directory holding both."""
    for _, directory in searched:
        images, labels = (_find(directory, f) for f in _file_names(split))
        if images and labels:
            return images, labels
    return None


def _download(name: str, split: str, dest_dir: Path) -> tuple[Path, Path]:
    """Fetch the split's two files into ``dest_dir``, trying each of the dataset's mirrors in turn."""
    paths = []
    for file_name in _file_names(split):
        failures = []
        digest = SHA256[name][file_name]
        for mirror in MIRRORS[name]:
            try:
                paths.append(download_file(mirror + file_name, dest_dir / file_name, digest))
                break
            except (DownloadError, ValueError) as exc:
                failures.append(str(exc))
        else:
            raise DataError(
                f"could not download {_DATASETS[name].title} file {file_name} from any mirror (offline?):\n  "
                + "\n  ".join(failures)
                + f"\nDownload it by hand into {dest_dir} (SHA-256 {digest}) or pass --data-dir DIR holding it."
            )
    return paths[0], paths[1]


def _missing_message(name: str, split: str, searched: list[tuple[str, Path]], download_dir: Path) -> str:
    info = _DATASETS[name]
    files = ", ".join(n for s in SPLITS for n in _file_names(s))
    lines = [f"{info.title} ({split} split) not found. Looked for {', '.join(_file_names(split))} "
             "(or the same without .gz) in:"]
    lines += [f"  {d}  ({label})" for label, d in searched]
    if not any(label in ("data_dir", "$CONVKIT_DATA") for label, _ in searched):
        lines.append("  ($CONVKIT_DATA is not set)")
    lines.append("To get it:")
    urls = " or ".join(MIRRORS[name])
    lines.append(f"  download it, SHA-256 verified, into {download_dir}: add --download "
                 f"(Python: load({name!r}, download=True)); files from {urls}")
    if name in SYSTEM_DIRS:
        lines.append(f"  or sudo apt-get install dataset-fashion-mnist   (Debian/Ubuntu; installs {SYSTEM_DIRS[name]})")
    lines.append(f"  or put {files} into a directory DIR and pass --data-dir DIR "
                 "(Python: data_dir=DIR) or set CONVKIT_DATA=DIR")
    return "\n".join(lines)


def _read_checked(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Both files' arrays; their headers are checked against each other before any data are read."""
    image_dtype, image_shape = read_idx_header(images_path)
    label_dtype, label_shape = read_idx_header(labels_path)
    if image_dtype != np.uint8 or len(image_shape) != 3 or image_shape[1:] != (28, 28):
        raise ValueError(
            f"load: {images_path} holds {image_dtype} of shape {image_shape}; expected uint8 "
            "images (N, 28, 28) (IDX magic 2051)"
        )
    if label_dtype != np.uint8 or len(label_shape) != 1:
        raise ValueError(
            f"load: {labels_path} holds {label_dtype} of shape {label_shape}; expected uint8 "
            "labels (N,) (IDX magic 2049)"
        )
    if label_shape[0] != image_shape[0]:
        raise ValueError(
            f"load: {images_path} has {image_shape[0]} images but {labels_path} has {label_shape[0]} labels"
        )
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if len(labels) and labels.max() > 9:
        raise ValueError(f"load: {labels_path} has label {labels.max()}; expected labels in 0..9")
    return images, labels.astype(np.int64)


def load(name: str, split: str = "train", data_dir=None, download: bool = False, cache_dir=None) -> Dataset:
    """Load one split of MNIST or Fashion-MNIST from IDX files (see the module docstring for where).

    Args:
        name: ``"fashion-mnist"`` or ``"mnist"``.
        split: ``"train"`` (60,000 images) or ``"test"`` (10,000). Default ``"train"``.
        data_dir: a directory holding the files (or a ``<name>`` subfolder
            holding them); when given, the only place looked. Default None.
        download: if the files are found nowhere, download them (SHA-256
            verified) into ``data_dir`` or the cache. Default False.
        cache_dir: the cache root (the data lie in ``<cache_dir>/<name>``);
            default ``$CONVKIT_CACHE`` or ``~/.cache/convkit``.

    Returns:
        A ``Dataset`` with images uint8 ``(N, 28, 28)`` and labels int64 ``(N,)``.

    Raises:
        DataError (a FileNotFoundError): the files are not found (and not
            downloaded); the message says how to get them.
        ValueError: unknown ``name`` or ``split``; files that are not valid
            IDX, or hold the wrong shapes or labels outside 0..9.
    """
    if name not in _DATASETS:
        raise ValueError(f"load: name must be one of {', '.join(NAMES)}, got {name!r}")
    if split not in SPLITS:
        raise ValueError(f"load: split must be one of {', '.join(SPLITS)}, got {split!r}")
    searched = _search_dirs(name, data_dir, cache_dir)
    located = _locate(split, searched)
    if located is None:
        download_dir = Path(data_dir).expanduser() if data_dir is not None else _cache_root(cache_dir) / name
        if not download:
            raise DataError(_missing_message(name, split, searched, download_dir))
        located = _download(name, split, download_dir)
    images, labels = _read_checked(*located)
    return Dataset(images, labels, _DATASETS[name].classes, name, split)
