"""The data of a ``convkit train`` run: the dataset's splits, fitted to the run's input size, and the loaders.

The training loader is shuffled (and augmented with ``--augment``: random
2-pixel shifts, plus horizontal flips except on MNIST, where a mirrored
digit is no digit). ``--val-fraction`` holds out a share of the training
set for validation. A last training batch of a single image is dropped
(batch normalisation cannot train on one); evaluation loaders keep every
image.
"""

from __future__ import annotations

import dataclasses

from ..data import (
    DataError,
    DataLoader,
    Dataset,
    RandomCrop,
    RandomHorizontalFlip,
    fit_images,
    load,
    train_val_split,
)
from ..train import phase
from .failure import Exit
from .run_settings import EVAL_BATCH, IMAGE


def load_data(name: str, split: str, data_dir, download: bool) -> Dataset:
    """Split ``split`` of dataset ``name`` from ``data_dir`` (downloaded if asked); exit 1 if it cannot be read."""
    phase(f"loading {name} ({split}) ...")
    try:
        return load(name, split, data_dir=data_dir, download=download)
    except DataError as exc:
        raise Exit(str(exc), 1) from None
    except (ValueError, OSError) as exc:
        raise Exit(f"cannot load {name} ({split}): {exc}", 1) from None


def fitted(data: Dataset, settings: dict) -> Dataset:
    """``data`` with its images fitted to ``input_size`` (``convkit.data.fit_images``, by ``resize``)."""
    if settings["input_size"] == IMAGE:
        return data
    phase(f"fitting the {data.split} images to {settings['input_size']}x{settings['input_size']} "
          f"({settings['resize']}) ...")
    return dataclasses.replace(data, images=fit_images(data.images, settings["input_size"], settings["resize"]))


def train_loaders(train_set: Dataset, settings: dict) -> tuple[DataLoader, DataLoader | None]:
    """The shuffled (and maybe augmented) training loader, and the validation loader if a share is held out.

    Exit 2 if the validation share leaves fewer than two training images.
    """
    images, labels = train_set.images, train_set.labels
    val_loader = None
    fraction, n = settings["val_fraction"], len(labels)
    if fraction > 0:
        try:
            train_idx, val_idx = train_val_split(n, fraction, settings["seed"])
        except ValueError:
            raise Exit(f"--val-fraction {fraction} of the {n} training images leaves no validation or no "
                       "training images; choose a smaller (or larger) share", 2) from None
        val_loader = DataLoader(images[val_idx], labels[val_idx], EVAL_BATCH,
                                mean=train_set.mean, std=train_set.std)
        images, labels = images[train_idx], labels[train_idx]
    if len(labels) < 2:
        held = f" after --val-fraction {fraction}" if fraction > 0 else ""
        raise Exit(f"{len(labels)} training image(s){held}: too few to train on; at least 2 are needed", 2)
    augment = ()
    if settings["augment"]:
        # Mirroring changes digits (a mirrored 2 is no digit), not clothes.
        augment = (RandomCrop(train_set.images.shape[-1], padding=2),) + ((RandomHorizontalFlip(),) if train_set.name != "mnist" else ())
    loader = DataLoader(images, labels, settings["batch_size"], shuffle=True, seed=settings["seed"],
                        mean=train_set.mean, std=train_set.std, augment=augment,
                        drop_last=len(labels) % settings["batch_size"] == 1)
    return loader, val_loader
