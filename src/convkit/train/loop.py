"""The training loop (``fit``) and evaluation (``evaluate``, ``predict``).

One epoch of ``fit``, for epoch ``e`` (counted from 0)::

    model.train(); train_loader.set_epoch(e)          # the batch order of epoch e
    for x, y in train_loader:
        loss = loss_fn(model(x), y)                   # stops if not finite
        optimizer.zero_grad(); loss.backward(); optimizer.step()
        scheduler.step()                              # schedules count batches
    val / test: evaluate(...) under eval() and no_grad
    history.append(record); save_checkpoint(...)      # atomically

so the state after epoch ``e`` is a function of the state before it and
``e`` alone: a run stopped after any epoch and resumed from its checkpoint
(``start_epoch``, ``history`` and the restored model, optimizer, scheduler
and generator) ends with the same weights, bit for bit, as a run that never
stopped. (That needs the same convolution algorithms in both processes:
the default rule of ``convkit.backends`` is fixed, its benchmark mode picks
by timing and may choose differently after a restart.) Ctrl-C (KeyboardInterrupt) passes through ``fit`` untouched; since
checkpoints are replaced atomically, the file then holds the last complete
epoch.

Each epoch's record holds ``epoch`` (from 1), ``lr`` (group 0's at the end of
the epoch), ``train_loss`` and ``train_accuracy`` (averaged over the epoch's
batches as the weights changed), ``seconds`` (training time, without
evaluation), ``images_per_second``, and ``val_loss``/``val_accuracy``,
``test_loss``/``test_accuracy`` for the loaders given.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import NamedTuple

import numpy as np

from .. import functional as F
from ..autograd import no_grad
from ..nn import Module
from ..optim import Optimizer
from ..optim.lr_scheduler import LRScheduler
from .checkpoint import save_checkpoint
from .metrics import accuracy, confusion_matrix
from .progress import ProgressBar, format_epoch

__all__ = ["TrainingDiverged", "Predictions", "fit", "evaluate", "predict"]


class TrainingDiverged(ArithmeticError):
    """The loss became NaN or infinite; the message names the epoch and batch."""


class Predictions(NamedTuple):
    """What ``predict`` returns: predicted and true classes ``(N,)``, the mean loss, the class probabilities."""

    predicted: np.ndarray
    labels: np.ndarray
    loss: float
    probabilities: np.ndarray  # (N, K): softmax of the logits


def fit(model: Module, train_loader: Iterable, *, epochs: int, optimizer: Optimizer,
        scheduler: LRScheduler | None = None, val_loader: Iterable | None = None,
        test_loader: Iterable | None = None, loss_fn: Callable = F.cross_entropy,
        checkpoint_path=None, config: dict | None = None, start_epoch: int = 0,
        history: list[dict] | None = None, progress: bool = True,
        on_epoch_end: Callable[[dict], None] | None = None) -> list[dict]:
    """Train ``model`` from epoch ``start_epoch`` up to ``epochs``; returns the metrics history.

    Args:
        model (Module): the network, called on batches ``x``.
        train_loader: a ``convkit.data.DataLoader`` (its ``set_epoch(e)`` is
            called before epoch ``e``, fixing the batch order) or any
            re-iterable of ``(x, y)`` batches.
        epochs (int): the epoch to stop after (the total of the run, not the
            number still to do).
        optimizer (Optimizer): updates the model's parameters.
        scheduler (LRScheduler | None): stepped after every batch, so give
            schedules in batches (``OneCycleLR(total_steps=epochs * len(train_loader))``).
            Default: None.
        val_loader, test_loader: evaluated after every epoch when given. Default: None.
        loss_fn (callable): ``loss_fn(logits, y)`` -> scalar Tensor, mean over
            the batch. Default: ``F.cross_entropy``.
        checkpoint_path (path | None): where to save the checkpoint after
            every epoch (``save_checkpoint``). Default: None (no checkpoint).
        config (dict | None): stored in the checkpoint (model, dataset,
            hyperparameters). Default: None.
        start_epoch (int): epochs already done (from a checkpoint). Default: 0.
        history (list[dict] | None): their records (from a checkpoint). Default: None.
        progress (bool): show progress and one line per epoch on stderr
            (``ProgressBar``). Default: True.
        on_epoch_end (callable | None): called with each epoch's record. Default: None.

    Returns:
        ``history`` followed by one record per epoch trained (see the module docstring).

    Raises:
        TrainingDiverged: the loss of a batch is NaN or infinite; the
            parameters are left as they were before that batch.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"fit: epochs must be a non-negative int, got {epochs!r}")
    if isinstance(start_epoch, bool) or not isinstance(start_epoch, int) or not 0 <= start_epoch <= epochs:
        raise ValueError(f"fit: start_epoch must be an int in [0, epochs={epochs}], got {start_epoch!r}")
    history = list(history or [])
    for epoch in range(start_epoch, epochs):
        bar = ProgressBar(epoch + 1, epochs, len(train_loader)) if progress else None
        record = _train_epoch(model, train_loader, optimizer, scheduler, loss_fn, epoch, bar)
        for split, loader in (("val", val_loader), ("test", test_loader)):
            if loader is not None:
                loss, acc, _ = evaluate(model, loader, loss_fn)
                record[f"{split}_loss"], record[f"{split}_accuracy"] = loss, acc
        history.append(record)
        if checkpoint_path is not None:
            save_checkpoint(checkpoint_path, model, optimizer, scheduler, epoch=epoch + 1,
                            history=history, config=config)
        if bar is not None:
            bar.finish(format_epoch(record, epochs))
        if on_epoch_end is not None:
            on_epoch_end(record)
    return history


def _train_epoch(model: Module, loader: Iterable, optimizer: Optimizer, scheduler: LRScheduler | None,
                 loss_fn: Callable, epoch: int, bar: ProgressBar | None) -> dict:
    """Train one epoch (0-based ``epoch``); returns its record without the evaluation entries."""
    model.train()
    if hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
    total = len(loader)
    loss_sum, correct, seen = 0.0, 0, 0
    start = time.perf_counter()
    for batch, (x, y) in enumerate(loader, start=1):
        logits = model(x)
        loss = loss_fn(logits, y)
        value = loss.item()
        if not math.isfinite(value):
            lr = optimizer.param_groups[0]["lr"]
            raise TrainingDiverged(
                f"training diverged: the loss is {value} at epoch {epoch + 1}, batch {batch}/{total} "
                f"(learning rate {lr:.3g}); try a lower learning rate"
            )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        n = len(y)
        loss_sum += value * n
        correct += int(np.count_nonzero(logits.data.argmax(axis=1) == np.asarray(y)))
        seen += n
        if bar is not None:
            bar.update(batch, loss_sum / seen, correct / seen, seen)
    seconds = time.perf_counter() - start
    if seen == 0:
        raise ValueError(f"fit: the training loader yielded no batches in epoch {epoch + 1}")
    return {"epoch": epoch + 1, "lr": float(optimizer.param_groups[0]["lr"]),
            "train_loss": loss_sum / seen, "train_accuracy": correct / seen,
            "seconds": seconds, "images_per_second": seen / seconds}


def predict(model: Module, loader: Iterable, loss_fn: Callable = F.cross_entropy) -> Predictions:
    """Run ``model`` over ``loader`` in eval mode without gradients.

    The model's train/eval mode is restored afterwards.

    Args:
        model (Module): returns logits ``(B, K)``.
        loader: re-iterable of ``(x, y)`` batches, ``y`` integer ``(B,)``.
        loss_fn (callable): mean loss of a batch. Default: ``F.cross_entropy``.

    Returns:
        ``Predictions(predicted, labels, loss, probabilities)``: the argmax
        classes and the true ones ``(N,)`` int64 in the loader's order, the
        mean loss over the N samples, and the softmax of the logits ``(N, K)``.
    """
    was_training = model.training
    model.eval()
    predicted, labels, probabilities, loss_sum = [], [], [], 0.0
    try:
        with no_grad():
            for x, y in loader:
                logits = model(x)
                loss_sum += loss_fn(logits, y).item() * len(y)
                predicted.append(logits.data.argmax(axis=1))
                probabilities.append(F.softmax(logits, 1).data)
                labels.append(np.asarray(y))
    finally:
        model.train(was_training)
    if not labels:
        raise ValueError("predict: the loader yielded no batches")
    labels_all = np.concatenate(labels).astype(np.int64)
    return Predictions(np.concatenate(predicted).astype(np.int64), labels_all, loss_sum / len(labels_all),
                       np.concatenate(probabilities))


def evaluate(model: Module, loader: Iterable, loss_fn: Callable = F.cross_entropy,
             num_classes: int | None = None) -> tuple[float, float, np.ndarray]:
    """Mean loss, accuracy and confusion matrix of ``model`` on ``loader`` (see ``predict``).

    Args:
        model (Module): returns logits ``(B, K)``.
        loader: re-iterable of ``(x, y)`` batches.
        loss_fn (callable): mean loss of a batch. Default: ``F.cross_entropy``.
        num_classes (int | None): size K of the confusion matrix. Default:
            one more than the largest class seen.

    Returns:
        ``(loss, accuracy, confusion_matrix)``: floats, and an int64 ``(K, K)``
        array with true classes in rows, predictions in columns.
    """
    predicted, labels, loss, _ = predict(model, loader, loss_fn)
    if num_classes is None:
        num_classes = int(max(predicted.max(), labels.max())) + 1
    return loss, accuracy(predicted, labels), confusion_matrix(labels, predicted, num_classes)
