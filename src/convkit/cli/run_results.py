"""What a finished ``convkit train`` run writes: the model file, ``metrics.json``, the plots and the final line.

``metrics.json`` holds the test accuracy and loss, the confusion matrix
and per-class accuracy, the per-epoch history, the training seconds, the
settings, the factory a ``FILE.py:FACTORY`` model came from (path,
function, SHA-256; null for a built-in or spec), the convkit version, the
machine and the thread count. The plots
(``curves.png``, ``confusion_matrix.png``, ``misclassified.png``,
``filters.png``, ``feature_maps.png``) need matplotlib; without it the run
says so in one line and succeeds.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from .. import __version__
from .._io import atomic_file
from ..train import machine_info, per_class_accuracy, phase, predict, save_model
from ..train.metrics import accuracy, confusion_matrix
from .run_directory import METRICS, MODEL_FILE
from .run_settings import DEFAULTS


def finish(out: Path, model, config: dict, history: list[dict], test_set, test_loader, threads: int,
           plots: bool, json_out: bool = False) -> None:
    """Evaluate on the test set; write the model, metrics.json and the plots; print the final line
    (``json_out``: metrics.json's content instead)."""
    phase(f"evaluating on the test split ({len(test_set):,} images) ...")
    result = predict(model, test_loader)
    test_accuracy = accuracy(result.predicted, result.labels)
    matrix = confusion_matrix(result.labels, result.predicted, len(test_set.classes))
    train_seconds = sum(r["seconds"] for r in history)
    save_model(out / MODEL_FILE, model, config)
    settings = {k: config[k] for k in DEFAULTS}
    metrics = {
        "model": settings["model"], "dataset": settings["dataset"],
        "test_accuracy": test_accuracy, "test_loss": result.loss,
        "train_seconds": train_seconds, "epochs": len(history), "history": history,
        "classes": list(test_set.classes), "confusion_matrix": matrix.tolist(),
        "per_class_accuracy": [None if math.isnan(v) else v for v in per_class_accuracy(matrix).tolist()],
        "hyperparameters": settings, "factory": config.get("factory"),
        "convkit_version": __version__, "machine": machine_info(), "threads": threads,
    }
    with atomic_file(out / METRICS) as f:
        f.write((json.dumps(metrics, indent=2) + "\n").encode("utf-8"))
    if plots:
        phase(f"plotting into {out} ...")
        _plots(out, model, history, test_set, result, matrix, settings)
    phase("")
    if json_out:
        print(json.dumps(metrics, indent=2))
        return
    epochs = f"{len(history)} epoch{'' if len(history) == 1 else 's'}"
    print(f"test accuracy: {test_accuracy:.4f} ({settings['model']}, {settings['dataset']}, "
          f"{epochs}, {train_seconds:.1f} s)")


def _plots(out: Path, model, history, test_set, result, matrix, settings: dict) -> None:
    from ..train import plots

    title = f"{settings['model']} on {settings['dataset']}"
    try:
        plots.plot_history(history, out / "curves.png", title)
        plots.plot_confusion_matrix(matrix, test_set.classes, out / "confusion_matrix.png", title)
        plots.plot_misclassified(test_set.images, result.labels, result.predicted, test_set.classes,
                                 out / "misclassified.png", probabilities=result.probabilities)
        plots.plot_filters(model, out / "filters.png")
        first = (test_set.images[0] / 255.0 - test_set.mean) / test_set.std
        plots.plot_feature_maps(model, first[None].astype("float32"), out / "feature_maps.png")
    except plots.MatplotlibMissing:
        print("convkit train: no plots: matplotlib is missing; pip install 'convkit[plot]'", file=sys.stderr)
