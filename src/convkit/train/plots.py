"""Pictures of a training run as PNG files: curves, confusion matrix, errors, filters, feature maps.

Needs matplotlib (``pip install 'convkit[plot]'``), imported only when a
function here is called; without it they raise ``MatplotlibMissing`` (an
ImportError) saying so. Figures are drawn on matplotlib's Agg canvas
without pyplot, so nothing here changes the backend or the state of a
user's interactive session, and each PNG is written atomically.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence

import numpy as np

from ..autograd import no_grad
from .._io import atomic_file
from ..nn import Module
from ..nn.activation import Dropout, Identity, LeakyReLU, ReLU, Sigmoid, Tanh
from ..nn.conv import Conv2d
from ..nn.normalization import BatchNorm2d
from ..nn.pooling import AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, MaxPool2d

__all__ = ["MatplotlibMissing", "plot_history", "plot_confusion_matrix", "plot_misclassified",
           "plot_filters", "plot_feature_maps"]

_POOLS = (MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, AdaptiveMaxPool2d)
# Layers that keep an image an image: feature maps are followed through these.
_SPATIAL = (Conv2d, BatchNorm2d, ReLU, LeakyReLU, Sigmoid, Tanh, Dropout, Identity, *_POOLS)


class MatplotlibMissing(ImportError):
    """matplotlib, needed for plots, is not installed."""


def plot_history(history: Sequence[dict], path: str | os.PathLike, title: str = "") -> None:
    """Loss and accuracy per epoch (train, and val/test where recorded), side by side.

    Args:
        history: the records of ``fit`` (keys ``epoch``, ``train_loss``,
            ``train_accuracy``, optional ``val_*``, ``test_*``).
        path: the PNG file to write.
        title (str): figure title. Default: none.
    """
    if not history:
        raise ValueError("plot_history: history is empty; expected at least one epoch record")
    fig = _figure(figsize=(10, 4))
    epochs = [r["epoch"] for r in history]
    for i, (metric, label) in enumerate((("loss", "loss"), ("accuracy", "accuracy"))):
        ax = fig.add_subplot(1, 2, i + 1)
        for split in ("train", "val", "test"):
            key = f"{split}_{metric}"
            if all(key in r for r in history):
                ax.plot(epochs, [r[key] for r in history], marker="o", label=split)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    _save(fig, path)


def plot_confusion_matrix(matrix, classes: Sequence[str], path: str | os.PathLike, title: str = "") -> None:
    """The confusion matrix as a heat map of row fractions, each cell labelled with its count.

    Args:
        matrix: ``(K, K)`` counts, true classes in rows, predictions in columns.
        classes: the K class names.
        path: the PNG file to write.
        title (str): figure title. Default: none.
    """
    matrix = np.asarray(matrix)
    k = len(classes)
    if matrix.shape != (k, k):
        raise ValueError(f"plot_confusion_matrix: matrix has shape {matrix.shape}, expected ({k}, {k}) "
                         f"for {k} classes")
    with np.errstate(invalid="ignore", divide="ignore"):
        fractions = np.nan_to_num(matrix / matrix.sum(axis=1, keepdims=True))
    size = 2 + 0.6 * k
    fig = _figure(figsize=(size + 1, size))
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(fractions, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    ax.set_xticks(range(k), labels=classes, rotation=45, ha="right")
    ax.set_yticks(range(k), labels=classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if fractions[i, j] > 0.5 else "black")
    if title:
        ax.set_title(title)
    _save(fig, path)


def plot_misclassified(images, labels, predicted, classes: Sequence[str], path: str | os.PathLike,
                       max_images: int = 100, columns: int = 10) -> None:
    """A grid of the misclassified images, each captioned ``true → predicted`` (as LeCun's LeNet-5 errors).

    Args:
        images: ``(N, H, W)`` images (any numeric dtype), in the order of ``labels``.
        labels, predicted: true and predicted classes ``(N,)``.
        classes: class names by index.
        path: the PNG file to write.
        max_images (int): show at most this many errors (the first ones). Default: 100.
        columns (int): images per row. Default: 10.
    """
    images, labels, predicted = np.asarray(images), np.asarray(labels), np.asarray(predicted)
    if images.ndim != 3 or not len(images) == len(labels) == len(predicted):
        raise ValueError(f"plot_misclassified: expected images (N, H, W) with N labels and predictions, got "
                         f"images {images.shape}, labels {labels.shape}, predicted {predicted.shape}")
    wrong = np.flatnonzero(labels != predicted)
    shown = wrong[:max_images]
    columns = max(1, min(columns, len(shown)))
    rows = max(1, math.ceil(len(shown) / columns))
    h, w = images.shape[1:]
    fig = _figure(figsize=(1.3 * columns, 1.45 * rows + 0.5))
    fig.suptitle(f"{len(wrong)} of {len(labels)} misclassified"
                 + (f" (first {len(shown)} shown)" if len(shown) < len(wrong) else "") + ": true → predicted")
    ax = fig.add_subplot(1, 1, 1)
    ax.axis("off")
    if len(shown):
        pad, top = max(2, w // 4), max(2, h // 3)
        ax.imshow(_tiles(images[shown].astype(np.float64), columns, pad, top), cmap="gray_r")
        for n, i in enumerate(shown):
            r, c = divmod(n, columns)
            ax.text(c * (w + pad) + w / 2, r * (h + top + pad) + top - 1, f"{classes[labels[i]]} → "
                    f"{classes[predicted[i]]}", ha="center", va="bottom", fontsize=6)
    _save(fig, path)


def plot_filters(model: Module, path: str | os.PathLike, max_filters: int = 64) -> None:
    """The kernels of the model's first Conv2d: one row per output channel, one column per input channel.

    All kernels share one symmetric grey scale (white positive, black
    negative, middle grey zero).

    Args:
        model (Module): holds at least one ``Conv2d``.
        path: the PNG file to write.
        max_filters (int): show at most this many output channels. Default: 64.
    """
    conv = next((m for m in model.modules() if isinstance(m, Conv2d)), None)
    if conv is None:
        raise ValueError(f"plot_filters: the model ({type(model).__name__}) has no Conv2d layer")
    weight = conv.weight.data[:max_filters].astype(np.float64)
    out_channels, in_channels, kh, kw = weight.shape
    limit = float(np.abs(weight).max()) or 1.0
    # One input channel: the filters side by side, 8 to a row; else one row per filter.
    columns = min(out_channels, 8) if in_channels == 1 else in_channels
    mosaic = _tiles(weight.reshape(-1, kh, kw), columns, pad=max(1, kw // 4))
    height, width = mosaic.shape
    scale = min(0.3, 10.0 / width, 14.0 / height)
    fig = _figure(figsize=(max(4.0, width * scale + 0.4), height * scale + 0.6))
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(mosaic, cmap="gray", vmin=-limit, vmax=limit)
    ax.axis("off")
    layout = "" if in_channels == 1 else " (a row per filter, a column per input channel)"
    ax.set_title(f"first conv layer: {conv.weight.shape[0]} filters of {in_channels}×{kh}×{kw}{layout}",
                 fontsize=9)
    _save(fig, path)


def plot_feature_maps(model: Module, image, path: str | os.PathLike, max_channels: int = 16) -> None:
    """The feature maps of one image after each convolution and pooling layer.

    The model's layers are applied one after another in definition order
    while they keep an image an image (convolution, normalisation,
    activation, dropout, pooling; in eval mode, without gradients); the
    walk stops at the first other layer (Flatten, Linear, ...). One row per
    conv or pool layer, its channels side by side, each scaled to its own
    range.

    Args:
        model (Module): a network whose leading layers form a chain (a
            ``Sequential``, or a model whose ``forward`` begins with them in
            order, as VGG's ``features``).
        image: the input of one sample ``(C, H, W)`` as the model takes it (normalised).
        path: the PNG file to write.
        max_channels (int): channels shown per layer at most. Default: 16.
    """
    x = np.asarray(image)[None]
    if x.ndim != 4:
        raise ValueError(f"plot_feature_maps: image must be (C, H, W), got shape {np.shape(image)}")
    rows = [("input", x[0])]
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            for name, layer in _leaf_modules(model):
                if not isinstance(layer, _SPATIAL):
                    break
                x = layer(x).data
                if isinstance(layer, (Conv2d, *_POOLS)):
                    rows.append((f"{name}: {type(layer).__name__} {x.shape[1]}×{x.shape[2]}×{x.shape[3]}", x[0]))
    finally:
        model.train(was_training)
    if len(rows) == 1:
        raise ValueError(f"plot_feature_maps: the model ({type(model).__name__}) does not start with a "
                         "convolution or pooling layer")
    fig = _figure(figsize=(12, 1.2 * len(rows) + 0.3))
    for r, (title, maps) in enumerate(rows):
        maps = maps[:max_channels].astype(np.float64)
        low = maps.min(axis=(1, 2), keepdims=True)
        span = maps.max(axis=(1, 2), keepdims=True) - low
        scaled = (maps - low) / np.where(span > 0, span, 1.0)
        ax = fig.add_subplot(len(rows), 1, r + 1)
        ax.imshow(_tiles(scaled, len(scaled), pad=max(1, maps.shape[-1] // 8)),
                  cmap="gray_r" if r == 0 else "viridis", vmin=0, vmax=1)
        ax.set_title(title, fontsize=8, loc="left")
        ax.set_anchor("W")
        ax.axis("off")
    _save(fig, path)


def _tiles(images: np.ndarray, columns: int, pad: int, top: int = 0) -> np.ndarray:
    """``(N, H, W)`` images in rows of ``columns``: ``pad`` pixels between them, ``top`` above each row.

    The gaps are NaN, which ``imshow`` leaves blank.
    """
    n, h, w = images.shape
    rows = math.ceil(n / columns)
    mosaic = np.full((rows * (h + top + pad) - pad, columns * (w + pad) - pad), np.nan)
    for i in range(n):
        r, c = divmod(i, columns)
        y, x = r * (h + top + pad) + top, c * (w + pad)
        mosaic[y:y + h, x:x + w] = images[i]
    return mosaic


def _leaf_modules(model: Module):
    """``(name, module)`` of the modules without children, in definition order."""
    return ((name, m) for name, m in model.named_modules() if not any(True for _ in m.children()))


def _figure(figsize: tuple[float, float]):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise MatplotlibMissing("plots need matplotlib: pip install 'convkit[plot]'") from None
    return Figure(figsize=figsize, layout="constrained")


def _save(fig, path: str | os.PathLike) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    with atomic_file(path) as f:
        f.write(buffer.getvalue())
