"""Training: the loop, evaluation, metrics, checkpoints, progress and plots.

``fit`` trains a model epoch by epoch and saves an exactly resumable
checkpoint after each; ``evaluate`` gives loss, accuracy and confusion
matrix. Plots live in ``convkit.train.plots`` (needs matplotlib, the
``plot`` extra) and are imported only when used; ``convkit.train.rundir``
gives a run directory to one process at a time (``convkit train --out``).
"""

from .checkpoint import (
    FORMAT_VERSION,
    Checkpoint,
    load_checkpoint,
    save_checkpoint,
    save_model,
)
from .loop import Predictions, TrainingDiverged, evaluate, fit, predict
from .metrics import ConfusionMatrix, accuracy, confusion_matrix, machine_info, per_class_accuracy
from .progress import ProgressBar, format_epoch, phase

__all__ = [
    "fit", "evaluate", "predict", "Predictions", "TrainingDiverged",
    "save_checkpoint", "save_model", "load_checkpoint", "Checkpoint", "FORMAT_VERSION",
    "accuracy", "confusion_matrix", "per_class_accuracy", "ConfusionMatrix", "machine_info",
    "ProgressBar", "format_epoch", "phase",
]
