"""Data for training: IDX files, MNIST / Fashion-MNIST, mini-batches.

>>> from convkit.data import DataLoader, RandomCrop
>>> import numpy as np
>>> images = np.zeros((10, 28, 28), dtype=np.uint8)
>>> loader = DataLoader(images, np.arange(10) % 3, batch_size=4, shuffle=True, augment=[RandomCrop(28, 2)])
>>> len(loader)
3
>>> [(x.shape, x.dtype.name, y.dtype.name) for x, y in loader][-1]
((2, 1, 28, 28), 'float32', 'int64')
"""

from .datasets import DataError, Dataset, load
from .download import DownloadError, download
from .idx import read_idx, write_idx
from .loader import DataLoader, RandomCrop, RandomHorizontalFlip, train_val_split
from .resize import fit_images

__all__ = [
    "read_idx", "write_idx", "load", "Dataset", "DataLoader", "RandomCrop", "RandomHorizontalFlip",
    "train_val_split", "fit_images", "download", "DataError", "DownloadError",
]
