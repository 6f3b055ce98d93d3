"""Pictures of a training run: curves, confusion matrix, errors, filters, feature maps, receptive fields.

Every function returns its matplotlib ``Figure`` (a notebook shows it, after
``%matplotlib inline``) and,
given a ``path``, also writes it there as a PNG, atomically. Needs
matplotlib (``pip install 'convkit[plot]'``), imported only when a function
here is called; without it they raise ``MatplotlibMissing`` (an ImportError)
saying so. Figures are drawn without pyplot, so nothing here changes the
backend or the state of a user's interactive session.

Signed quantities (weights, activations) use one diverging colour map
centred at zero (``SIGNED``: blue negative, white zero, red positive) with a
colour bar, so the sign of every value can be read.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence

import numpy as np

from .._io import atomic_file
from ..nn import Module
from ..nn.conv import Conv2d
from ..trace import trace

__all__ = ["MatplotlibMissing", "plot_history", "plot_confusion_matrix", "plot_misclassified",
           "plot_filters", "plot_feature_maps", "plot_receptive_field"]

SIGNED = "RdBu_r"  # diverging, white at zero (with symmetric limits)

_MAPS = {"conv", "max_pool", "avg_pool", "adaptive_avg_pool", "adaptive_max_pool"}  # ops whose outputs are maps


class MatplotlibMissing(ImportError):
    """matplotlib, needed for plots, is not installed."""


def plot_history(history: Sequence[dict], path: str | os.PathLike | None = None, title: str = ""):
    """Loss and accuracy per epoch (train, and val/test where recorded), and the learning rate.

    Epochs are whole numbers on the axes. The learning-rate panel (the
    records' ``lr``, group 0's at the end of each epoch) shows the schedule
    the curves came from.

    Args:
        history: the records of ``fit`` (keys ``epoch``, ``train_loss``,
            ``train_accuracy``, optional ``val_*``, ``test_*``, ``lr``).
        path: the PNG file to write, or None.
        title (str): figure title. Default: none.
    Returns the Figure.
    """
    if not history:
        raise ValueError("plot_history: history is empty; expected at least one epoch record")
    from matplotlib.ticker import MaxNLocator

    panels = [("loss", "loss"), ("accuracy", "accuracy")]
    if all("lr" in r for r in history):
        panels.append(("lr", "learning rate (end of epoch)"))
    fig = _figure(figsize=(5 * len(panels), 4))
    epochs = [r["epoch"] for r in history]
    for i, (metric, label) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        if metric == "lr":
            ax.plot(epochs, [r["lr"] for r in history], marker="o", color="grey")
        for split in ("train", "val", "test") if metric != "lr" else ():
            key = f"{split}_{metric}"
            if all(key in r for r in history):
                ax.plot(epochs, [r[key] for r in history], marker="o", label=split)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if metric != "lr":
            ax.legend()
    if title:
        fig.suptitle(title)
    return _finish(fig, path)


def plot_confusion_matrix(matrix, classes: Sequence[str], path: str | os.PathLike | None = None, title: str = ""):
    """The confusion matrix as a heat map of row fractions, each cell labelled with its count.

    Args:
        matrix: ``(K, K)`` counts, true classes in rows, predictions in columns.
        classes: the K class names.
        path: the PNG file to write, or None.
        title (str): figure title. Default: none.
    Returns the Figure.
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
    return _finish(fig, path)


def plot_misclassified(images, labels, predicted, classes: Sequence[str], path: str | os.PathLike | None = None,
                       max_images: int = 100, columns: int = 10, probabilities=None):
    """A grid of the misclassified images, captioned ``true → predicted`` (as LeCun's LeNet-5 errors).

    With ``probabilities``, the errors are sorted by the confidence of the
    wrong prediction, most confident first (fastai's "top losses"), and each
    caption gives it: these are the errors worth a look (a label error, or a
    class the model has confused with certainty).

    Args:
        images: ``(N, H, W)`` images (any numeric dtype), in the order of ``labels``.
        labels, predicted: true and predicted classes ``(N,)``.
        classes: class names by index.
        path: the PNG file to write, or None.
        max_images (int): show at most this many errors. Default: 100.
        columns (int): images per row. Default: 10.
        probabilities: ``(N, K)`` predicted class probabilities (softmax), or None: errors in input order.
    Returns the Figure.
    """
    images, labels, predicted = np.asarray(images), np.asarray(labels), np.asarray(predicted)
    if images.ndim != 3 or not len(images) == len(labels) == len(predicted):
        raise ValueError(f"plot_misclassified: expected images (N, H, W) with N labels and predictions, got "
                         f"images {images.shape}, labels {labels.shape}, predicted {predicted.shape}")
    wrong = np.flatnonzero(labels != predicted)
    confidence = None
    if probabilities is not None:
        probabilities = np.asarray(probabilities)
        if probabilities.shape != (len(labels), len(classes)):
            raise ValueError(f"plot_misclassified: probabilities must have shape ({len(labels)}, {len(classes)}) "
                             f"(N, classes), got {probabilities.shape}")
        confidence = probabilities[np.arange(len(labels)), predicted]
        wrong = wrong[np.argsort(-confidence[wrong], kind="stable")]
    shown = wrong[:max_images]
    columns = max(1, min(columns, len(shown)))
    rows = max(1, math.ceil(len(shown) / columns))
    h, w = images.shape[1:]
    fig = _figure(figsize=(1.3 * columns, 1.45 * rows + 0.5))
    order = "most confident first" if confidence is not None else "first"
    fig.suptitle(f"{len(wrong)} of {len(labels)} misclassified"
                 + (f" ({order} {len(shown)} shown)" if len(shown) < len(wrong) else "")
                 + ": true → predicted" + (" (its probability)" if confidence is not None else ""))
    ax = fig.add_subplot(1, 1, 1)
    ax.axis("off")
    if len(shown):
        pad, top = max(2, w // 4), max(2, h // 3)
        ax.imshow(_tiles(images[shown].astype(np.float64), columns, pad, top), cmap="gray_r")
        for n, i in enumerate(shown):
            r, c = divmod(n, columns)
            sure = f" {confidence[i]:.0%}" if confidence is not None else ""
            ax.text(c * (w + pad) + w / 2, r * (h + top + pad) + top - 1, f"{classes[labels[i]]} → "
                    f"{classes[predicted[i]]}{sure}", ha="center", va="bottom", fontsize=6)
    return _finish(fig, path)


def plot_filters(model: Module, path: str | os.PathLike | None = None, max_filters: int = 64):
    """The kernels of the model's first Conv2d: one row per output channel, one column per input channel.

    All kernels share one colour scale, symmetric about zero (``SIGNED``),
    with its colour bar: red weights are positive, blue negative.

    Args:
        model (Module): holds at least one ``Conv2d``.
        path: the PNG file to write, or None.
        max_filters (int): show at most this many output channels. Default: 64.
    Returns the Figure.
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
    fig = _figure(figsize=(max(4.0, width * scale + 1.4), height * scale + 0.6))
    ax = fig.add_subplot(1, 1, 1)
    shown = ax.imshow(mosaic, cmap=SIGNED, vmin=-limit, vmax=limit)
    fig.colorbar(shown, ax=ax, shrink=0.8, label="weight")
    ax.axis("off")
    layout = "" if in_channels == 1 else " (a row per filter, a column per input channel)"
    ax.set_title(f"first conv layer: {conv.weight.shape[0]} filters of {in_channels}×{kh}×{kw}{layout}",
                 fontsize=9)
    return _finish(fig, path)


def plot_feature_maps(model: Module, image, path: str | os.PathLike | None = None, max_channels: int = 16):
    """The feature maps of one image after each convolution and pooling, as the model computes them.

    The model runs on the image once, in eval mode and without gradients,
    under ``convkit.trace``, so the maps are the outputs of the convolutions
    and poolings its own ``forward`` runs (layers or functional calls), in
    the order it runs them, whatever it does between them (activations,
    additions, concatenations). Below the input (in grey), one row per op,
    named as in the trace, its channels side by side on one colour scale,
    symmetric about zero (``SIGNED``), with the row's colour bar.

    Args:
        model (Module): any network taking ``(1, C, H, W)`` batches.
        image: the input of one sample ``(C, H, W)`` as the model takes it (normalised; converted
            to the model's dtype).
        path: the PNG file to write, or None.
        max_channels (int): channels shown per layer at most. Default: 16.
    Returns the Figure.
    """
    x = np.asarray(image)[None]
    if x.ndim != 4:
        raise ValueError(f"plot_feature_maps: image must be (C, H, W), got shape {np.shape(image)}")
    x = x.astype(next((p.dtype for p in model.parameters()), x.dtype), copy=False)  # the model's own dtype
    graph = trace(model, x)
    layers = graph.layers
    rows = [("input", x[0])]
    for index, node in enumerate(graph.nodes):
        if node.op in _MAPS and node.value.ndim == 4:
            kind = type(layers[index].module).__name__ if index in layers else node.op
            rows.append((f"{node.name}: {kind} {'×'.join(map(str, node.shape[1:]))}", node.value[0]))
    if len(rows) == 1:
        raise ValueError(f"plot_feature_maps: the model ({type(model).__name__}) has no convolution or "
                         "pooling layer that its forward calls")
    fig = _figure(figsize=(12, 1.2 * len(rows) + 0.3))
    for r, (title, maps) in enumerate(rows):
        maps = maps[:max_channels].astype(np.float64)
        limit = float(np.nanmax(np.abs(maps))) if maps.size else 0.0
        limit = limit if limit > 0 and math.isfinite(limit) else 1.0
        ax = fig.add_subplot(len(rows), 1, r + 1)
        shown = ax.imshow(_tiles(maps, len(maps), pad=max(1, maps.shape[-1] // 8)),
                          cmap="gray_r" if r == 0 else SIGNED, vmin=None if r == 0 else -limit,
                          vmax=None if r == 0 else limit)  # the input as the image it is
        fig.colorbar(shown, ax=ax, shrink=0.9, aspect=8, pad=0.01)
        ax.set_title(title, fontsize=8, loc="left")
        ax.set_anchor("W")
        ax.axis("off")
    return _finish(fig, path)


def plot_receptive_field(model: Module, image, path: str | os.PathLike | None = None, unit=None):
    """What one unit of each convolution and pooling layer sees: its receptive field drawn on the image.

    One panel per conv or pool layer (``convkit.analysis.summary``'s rows),
    each the input image with the field of that layer's unit ``unit`` (per
    axis a fraction of the map, default the centre, ``(0.5, 0.5)``) outlined;
    the part of a field that lies in the padding is outside the picture,
    and the title gives the field's size: layer by layer, the field grows.

    Args:
        model (Module): a model ``convkit.analysis.summary`` can read.
        image: one sample ``(C, H, W)`` (channel 0 is drawn) or ``(H, W)``.
        path: the PNG file to write, or None.
        unit: ``(fy, fx)`` fractions in ``[0, 1]`` placing the unit in each layer's map. Default: the centre.
    Returns the Figure.
    """
    from matplotlib.patches import Rectangle

    from ..analysis import summary

    picture = np.asarray(image, dtype=np.float64)
    if picture.ndim == 2:
        picture = picture[None]
    if picture.ndim != 3:
        raise ValueError(f"plot_receptive_field: image must be (C, H, W) or (H, W), got shape {np.shape(image)}")
    fy, fx = (0.5, 0.5) if unit is None else unit
    if not (0 <= fy <= 1 and 0 <= fx <= 1):
        raise ValueError(f"plot_receptive_field: unit must be two fractions in [0, 1], got {unit!r}")
    s = summary(model, picture.shape)
    rows = [(i, r) for i, r in enumerate(s.rows)
            if r.fields is not None and r.kind.endswith(("Conv2d", "Pool2d"))]
    if not rows:
        raise ValueError(f"plot_receptive_field: the model ({type(model).__name__}) has no 2-D convolution or "
                         "pooling layer")
    columns = min(4, len(rows))
    fig = _figure(figsize=(3 * columns, 3.2 * math.ceil(len(rows) / columns)))
    for n, (i, r) in enumerate(rows):
        at = tuple(min(size - 1, int(f * size)) for f, size in zip((fy, fx), r.output_shape[1:]))
        (y0, y1), (x0, x1) = s.field_of(i, at)
        ax = fig.add_subplot(math.ceil(len(rows) / columns), columns, n + 1)
        ax.imshow(picture[0], cmap="gray_r")
        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0 + 1, y1 - y0 + 1, fill=False, edgecolor="red",
                               linewidth=2, clip_on=False))
        ax.set_xlim(-0.5, picture.shape[2] - 0.5)
        ax.set_ylim(picture.shape[1] - 0.5, -0.5)
        ax.set_title(f"{r.name}: {r.kind}, unit {at}\nfield {y1 - y0 + 1}×{x1 - x0 + 1}", fontsize=8)
        ax.axis("off")
    return _finish(fig, path)


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


def _figure(figsize: tuple[float, float]):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise MatplotlibMissing("plots need matplotlib: pip install 'convkit[plot]'") from None
    return Figure(figsize=figsize, layout="constrained")


def _finish(fig, path: str | os.PathLike | None):
    """``fig``, written to ``path`` as a PNG first (atomically) when a path is given."""
    if path is not None:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
        with atomic_file(path) as f:
            f.write(buffer.getvalue())
    return fig
