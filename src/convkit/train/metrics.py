"""Classification metrics on label arrays, and a description of the machine a run used.

>>> import numpy as np
>>> y_true = np.array([0, 0, 1, 2, 2, 2])
>>> y_pred = np.array([0, 1, 1, 2, 2, 0])
>>> accuracy(y_pred, y_true)
0.6666666666666666
>>> confusion_matrix(y_true, y_pred, num_classes=3)
array([[1, 1, 0],
       [0, 1, 0],
       [1, 0, 2]])
>>> per_class_accuracy(confusion_matrix(y_true, y_pred, num_classes=3)).round(3)
array([0.5  , 1.   , 0.667])
"""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .. import _html

__all__ = ["accuracy", "confusion_matrix", "per_class_accuracy", "ConfusionMatrix", "machine_info"]


def accuracy(predictions, labels) -> float:
    """The fraction of ``predictions`` equal to ``labels`` (both ``(N,)`` integer arrays, N >= 1)."""
    predictions, labels = _labels("accuracy", predictions, labels)
    if predictions.size == 0:
        raise ValueError("accuracy: got 0 predictions; expected at least one")
    return float(np.mean(predictions == labels))


def confusion_matrix(labels, predictions, num_classes: int) -> np.ndarray:
    """``C[i, j]`` = how many samples of true class ``i`` were predicted as class ``j``.

    Computed in one ``np.bincount`` over ``i * num_classes + j``.

    Args:
        labels: true classes, integers ``(N,)`` in ``[0, num_classes)``.
        predictions: predicted classes, integers ``(N,)`` in ``[0, num_classes)``.
        num_classes (int): K, the size of the matrix.

    Returns:
        int64 array ``(K, K)``; rows are true classes, columns predictions
        (the order of ``sklearn.metrics.confusion_matrix(labels, predictions)``).
    """
    predictions, labels = _labels("confusion_matrix", predictions, labels)
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"confusion_matrix: num_classes must be a positive int, got {num_classes!r}")
    for name, values in (("labels", labels), ("predictions", predictions)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(f"confusion_matrix: {name} range over [{values.min()}, {values.max()}]; "
                             f"expected classes in [0, {num_classes})")
    counts = np.bincount(labels * num_classes + predictions, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def per_class_accuracy(matrix) -> np.ndarray:
    """The recall of every class: ``C[i, i] / sum_j C[i, j]`` (NaN for a class with no samples)."""
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"per_class_accuracy: matrix must be square (K, K), got shape {matrix.shape}")
    totals = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.diagonal(matrix) / totals


@dataclass(frozen=True)
class ConfusionMatrix:
    """A confusion matrix with its class names: ``str()`` is a text table, a notebook shows an HTML heat map.

    Rows are true classes, columns predictions, and the last column each
    class's accuracy (its recall, ``per_class_accuracy``); in HTML every
    cell is shaded by its share of the row.

    >>> print(ConfusionMatrix(np.array([[3, 1], [0, 4]]), ("cat", "dog")))
    confusion matrix (rows: true class, columns: predicted class)
             0    1  accuracy
    0 cat    3    1    0.7500
    1 dog    0    4    1.0000
    """

    counts: np.ndarray
    classes: Sequence[str]

    def __post_init__(self):
        k = len(self.classes)
        if np.shape(self.counts) != (k, k):
            raise ValueError(f"ConfusionMatrix: counts must be ({k}, {k}) for {k} classes, "
                             f"got shape {np.shape(self.counts)}")

    def __str__(self) -> str:
        recall = per_class_accuracy(self.counts)
        names = [f"{i} {name}" for i, name in enumerate(self.classes)]
        width = max(len(n) for n in names)
        cell = max(5, len(str(int(np.max(self.counts)))) + 1)
        lines = ["confusion matrix (rows: true class, columns: predicted class)",
                 " " * width + "".join(f"{j:>{cell}}" for j in range(len(names))) + "  accuracy"]
        for name, row, r in zip(names, self.counts, recall):
            lines.append(f"{name:<{width}}" + "".join(f"{v:>{cell}}" for v in row) + f"{r:>10.4f}")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        counts = np.asarray(self.counts)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.nan_to_num(counts / counts.sum(axis=1, keepdims=True))
        recall = per_class_accuracy(counts)
        rows = [[f"{i} {name}", *map(int, row), f"{r:.4f}"]
                for i, (name, row, r) in enumerate(zip(self.classes, counts, recall))]
        shades = [[None, *map(float, row), None] for row in share]
        return _html.table(["true \\ predicted", *map(str, range(len(self.classes))), "accuracy"], rows,
                           caption="confusion matrix (rows: true class, columns: predicted class)", shades=shades)


def machine_info() -> dict:
    """The CPU model, core count, OS, Python, NumPy and BLAS library of this machine, for reports."""
    info = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    blas = _blas()
    if blas:
        info["blas"] = blas
    return info


def _labels(owner: str, predictions, labels) -> tuple[np.ndarray, np.ndarray]:
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    for name, values in (("predictions", predictions), ("labels", labels)):
        if values.ndim != 1 or values.dtype.kind not in "iu":
            raise ValueError(f"{owner}: {name} must be a 1-d integer array, got shape {values.shape} "
                             f"of dtype {values.dtype}")
    if predictions.shape != labels.shape:
        raise ValueError(f"{owner}: predictions have shape {predictions.shape} but labels {labels.shape}")
    return predictions.astype(np.int64, copy=False), labels.astype(np.int64, copy=False)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _blas() -> str | None:
    """``"<library> <version> (<threads> threads)"`` via threadpoolctl when it is installed."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    libraries = [f"{i.get('internal_api', i.get('prefix'))} {i.get('version') or ''} "
                 f"({i.get('num_threads')} threads)".replace("  ", " ")
                 for i in threadpool_info() if i.get("user_api") == "blas"]
    return ", ".join(libraries) or None
