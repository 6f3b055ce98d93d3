"""``convkit train`` and ``convkit evaluate``: train a model on MNIST / Fashion-MNIST, evaluate a saved one.

``convkit train`` with no options trains LeNet-5 on Fashion-MNIST for 6
epochs (Adam, peak lr 3e-3 on a one-cycle schedule, batch 128, on the thread
count that runs the model's step fastest, measured on its first batch): about
90 % test accuracy in about 40 s of training on two cores. It prints one
line per epoch (stderr) and the test accuracy (stdout). Everything goes
into ``--out`` (default ``runs/<model>-<dataset>``):

* ``checkpoint.safetensors``: the complete training state, rewritten
  atomically after every epoch (``--resume`` continues from it, bit for bit);
* ``model.safetensors``: the trained weights under their ``state_dict`` names;
* ``metrics.json``: test accuracy and loss, the confusion matrix, per-epoch
  history, training seconds, settings, convkit version and machine;
* PNG plots (unless ``--no-plots``): ``curves.png``, ``confusion_matrix.png``,
  ``misclassified.png``, ``filters.png``, ``feature_maps.png``.

An existing non-empty ``--out`` is refused unless ``--resume`` is given; a
resumed run takes its settings from the checkpoint, and options that
contradict them are refused. Learning-rate schedules are stepped after
every batch: ``onecycle`` warms up to ``--lr`` over the first 30 % of the
batches then anneals (cosine) to ``lr / 2.5e5``; ``cosine`` anneals from
``--lr`` to 0; ``step`` multiplies the lr by 0.1 after each third of the
epochs (rounded up).

Exit codes: 0 done, 1 failure (missing data, diverged training, unusable
checkpoint), 2 usage error (bad option, unknown model, ``--out`` in use),
130 interrupted (the checkpoint then holds the last complete epoch).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

import numba
import numpy as np

from .. import __version__, manual_seed
from ..backends import num_threads
from ..data import (
    DataError,
    DataLoader,
    RandomCrop,
    RandomHorizontalFlip,
    load,
    train_val_split,
)
from .._io import atomic_file
from ..models import build
from ..optim import SGD, Adam, AdamW
from ..optim.lr_scheduler import CosineAnnealingLR, OneCycleLR, StepLR
from ..train import (
    Checkpoint,
    TrainingDiverged,
    fit,
    load_checkpoint,
    machine_info,
    per_class_accuracy,
    predict,
    save_model,
)
from ..train.metrics import accuracy, confusion_matrix
from ..train.threads import fastest_threads

DATASETS = ("fashion-mnist", "mnist")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("onecycle", "cosine", "step", "none")
# Settings a run is defined by: stored in its checkpoint, refused on --resume when they differ.
DEFAULTS = {
    "model": "lenet5", "dataset": "fashion-mnist", "epochs": 6, "batch_size": 128, "lr": None,
    "optimizer": "adam", "momentum": 0.9, "weight_decay": None, "schedule": "onecycle",
    "augment": False, "val_fraction": 0.0, "seed": 0,
}
DEFAULT_LR = {"adam": 3e-3, "adamw": 3e-3, "sgd": 0.05}
DEFAULT_WEIGHT_DECAY = {"adam": 0.0, "adamw": 0.01, "sgd": 0.0}
EVAL_BATCH = 1000
CHECKPOINT, MODEL_FILE, METRICS = "checkpoint.safetensors", "model.safetensors", "metrics.json"


class _Exit(Exception):
    """Stop the command: print the message on stderr and exit with ``code``."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def register(subparsers) -> None:
    """Add ``convkit train`` and ``convkit evaluate``."""
    p = subparsers.add_parser(
        "train", help="train a model on MNIST or Fashion-MNIST",
        description="Train a model (default LeNet-5) on Fashion-MNIST or MNIST; writes a checkpoint after "
                    "every epoch, then the model, metrics.json and plots into --out.",
        epilog="Exit codes: 0 done, 1 failure, 2 usage error, 130 interrupted (resume with --resume).")
    p.add_argument("model", nargs="?", metavar="MODEL",
                   help="a built-in model (lenet5, convnet, vgg11, ...) or a spec string such as "
                        "'conv3-16 pool2 conv3-32 pool2 flatten fc10' (default: lenet5)")
    p.add_argument("--dataset", choices=DATASETS, help="default: fashion-mnist")
    p.add_argument("--data-dir", type=Path, metavar="DIR", help="directory holding the dataset's IDX files")
    p.add_argument("--download", action="store_true", help="download MNIST if it is not found (SHA-256 verified)")
    p.add_argument("--epochs", type=_positive_int, metavar="N", help=f"default: {DEFAULTS['epochs']}")
    p.add_argument("--batch-size", type=_positive_int, metavar="B", help=f"default: {DEFAULTS['batch_size']}")
    p.add_argument("--lr", type=_positive_float, metavar="LR",
                   help="(peak) learning rate; default: 3e-3 for adam and adamw, 0.05 for sgd")
    p.add_argument("--optimizer", choices=OPTIMIZERS, help="default: adam")
    p.add_argument("--momentum", type=_fraction, metavar="M", help="SGD momentum; default: 0.9")
    p.add_argument("--weight-decay", type=_non_negative_float, metavar="WD",
                   help="default: 0.01 for adamw, 0 otherwise")
    p.add_argument("--schedule", choices=SCHEDULES, help="learning-rate schedule; default: onecycle")
    p.add_argument("--augment", action="store_true", default=None,
                   help="random 2-pixel shifts (and horizontal flips for fashion-mnist)")
    p.add_argument("--val-fraction", type=_fraction, metavar="F",
                   help="hold out this share of the training set for validation; default: 0")
    p.add_argument("--seed", type=_non_negative_int, metavar="S", help="seed of weights and batch order; default: 0")
    p.add_argument("--out", type=Path, metavar="DIR", help="output directory; default: runs/<model>-<dataset>")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--no-plots", action="store_true", help="do not write PNG plots")
    p.add_argument("--threads", type=_positive_int, metavar="T",
                   help="threads for convkit's kernels and the BLAS matrix products; default: the count "
                        "that runs this model's training step fastest, timed on the first batch")
    p.set_defaults(run=run_train)

    e = subparsers.add_parser(
        "evaluate", help="evaluate a saved model or checkpoint",
        description="Print the accuracy and confusion matrix of a model.safetensors or checkpoint.safetensors "
                    "written by convkit train.")
    e.add_argument("checkpoint", type=Path, metavar="CHECKPOINT", help="a model or checkpoint file")
    e.add_argument("--dataset", choices=DATASETS, help="default: the dataset the model was trained on")
    e.add_argument("--split", choices=("test", "train"), default="test", help="default: test")
    e.add_argument("--data-dir", type=Path, metavar="DIR", help="directory holding the dataset's IDX files")
    e.add_argument("--download", action="store_true", help="download MNIST if it is not found (SHA-256 verified)")
    e.add_argument("--batch-size", type=_positive_int, default=EVAL_BATCH, metavar="B",
                   help=f"default: {EVAL_BATCH}")
    e.set_defaults(run=run_evaluate)


# ---------------------------------------------------------------- train
def run_train(args: argparse.Namespace) -> int:
    """``convkit train``; returns the exit code."""
    try:
        return _train(args)
    except _Exit as exc:
        print(f"convkit train: {exc}", file=sys.stderr)
        return exc.code


def _train(args: argparse.Namespace) -> int:
    out, settings, checkpoint = _run_settings(args)
    manual_seed(settings["seed"])
    try:
        model = build(settings["model"], input_size=(1, 28, 28), num_classes=10)
    except (ValueError, TypeError) as exc:
        raise _Exit(str(exc), 2) from None
    train_set, test_set = _load_data(settings["dataset"], "train", args), _load_data(settings["dataset"], "test", args)
    train_loader, val_loader = _train_loaders(train_set, settings)
    test_loader = DataLoader(test_set.images, test_set.labels, EVAL_BATCH, mean=test_set.mean, std=test_set.std)
    optimizer = _optimizer(model, settings)
    scheduler = _scheduler(optimizer, settings, len(train_loader))
    config = {**settings, "classes": list(train_set.classes)}
    start_epoch, history = 0, []
    if checkpoint is not None:
        try:
            checkpoint.restore(model, optimizer, scheduler)
        except ValueError as exc:
            raise _Exit(str(exc), 1) from None
        start_epoch, history = checkpoint.epoch, checkpoint.history
        print(f"resuming {out} after epoch {start_epoch} of {settings['epochs']}", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    threads = _threads(args.threads, model, train_loader)

    completed = start_epoch

    def on_epoch_end(record: dict) -> None:
        nonlocal completed
        completed = record["epoch"]

    saved = out / CHECKPOINT
    try:
        # A diverging run overflows before its loss turns NaN; fit reports that in one line.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"), num_threads(threads):
            history = fit(model, train_loader, epochs=settings["epochs"], optimizer=optimizer, scheduler=scheduler,
                          val_loader=val_loader, test_loader=test_loader, checkpoint_path=saved, config=config,
                          start_epoch=start_epoch, history=history, on_epoch_end=on_epoch_end)
    except TrainingDiverged as exc:
        raise _Exit(f"{exc}; {saved} holds epoch {completed}" if completed else str(exc), 1) from None
    except KeyboardInterrupt:
        where = (f"{saved} holds the last complete epoch ({completed} of {settings['epochs']}); continue with: "
                 f"convkit train --out {out} --resume") if completed else "no epoch was completed"
        print(f"convkit train: interrupted during epoch {completed + 1}; {where}", file=sys.stderr)
        return 130
    with num_threads(threads):
        _finish(out, model, config, history, test_set, test_loader, threads, plots=not args.no_plots)
    return 0


def _threads(requested: int | None, model, train_loader) -> int:
    """``--threads``, checked against the cores; or the fastest count for this model, measured."""
    cores = numba.config.NUMBA_NUM_THREADS
    if requested is not None:
        if requested > cores:
            raise _Exit(f"--threads {requested} is more than the {cores} cores convkit can use here; "
                        f"give 1 to {cores}", 2)
        return requested
    return fastest_threads(model, train_loader)


def _run_settings(args: argparse.Namespace) -> tuple[Path, dict, Checkpoint | None]:
    """The output directory, the run's settings and, with --resume, the checkpoint they come from.

    Refuses (exit 2) options that contradict a resumed run, and a new run into a non-empty directory.
    """
    given = {k: getattr(args, k) for k in DEFAULTS if getattr(args, k) is not None}
    out = args.out or Path("runs") / _slug(f"{given.get('model', DEFAULTS['model'])}-"
                                           f"{given.get('dataset', DEFAULTS['dataset'])}")
    if not args.resume:
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise _Exit(f"{out} already exists and is not empty; pass --resume to continue the run in it "
                        "or choose another --out", 2)
        return out, _settings(given), None
    checkpoint = _load(out / CHECKPOINT, "to resume")
    missing = [k for k in DEFAULTS if k not in checkpoint.config]
    if missing:
        raise _Exit(f"{out / CHECKPOINT} was not written by convkit train (its config lacks {missing})", 1)
    settings = {k: checkpoint.config[k] for k in DEFAULTS}
    conflicts = [f"--{k.replace('_', '-')} {v} (the run has {settings[k]})"
                 for k, v in given.items() if settings[k] != v]
    if conflicts:
        raise _Exit(f"{out} was trained with other settings; drop " + ", ".join(conflicts)
                    + " or train into a new --out", 2)
    return out, settings, checkpoint


def _finish(out: Path, model, config: dict, history: list[dict], test_set, test_loader, threads: int,
            plots: bool) -> None:
    """Evaluate on the test set; write the model, metrics.json and the plots; print the final line."""
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
        "hyperparameters": settings, "convkit_version": __version__, "machine": machine_info(), "threads": threads,
    }
    with atomic_file(out / METRICS) as f:
        f.write((json.dumps(metrics, indent=2) + "\n").encode("utf-8"))
    if plots:
        _plots(out, model, history, test_set, result, matrix, settings)
    print(f"test accuracy: {test_accuracy:.4f} ({settings['model']}, {settings['dataset']}, "
          f"{len(history)} epochs, {train_seconds:.1f} s)")


def _settings(given: dict) -> dict:
    """The run's settings: the options given, the defaults for the rest (lr and weight decay per optimizer)."""
    settings = {**DEFAULTS, **given}
    if settings["lr"] is None:
        settings["lr"] = DEFAULT_LR[settings["optimizer"]]
    if settings["weight_decay"] is None:
        settings["weight_decay"] = DEFAULT_WEIGHT_DECAY[settings["optimizer"]]
    settings["augment"] = bool(settings["augment"])
    return settings


def _load_data(name: str, split: str, args: argparse.Namespace):
    try:
        return load(name, split, data_dir=args.data_dir, download=args.download)
    except DataError as exc:
        raise _Exit(str(exc), 1) from None
    except (ValueError, OSError) as exc:
        raise _Exit(f"cannot load {name} ({split}): {exc}", 1) from None


def _train_loaders(train_set, settings: dict) -> tuple[DataLoader, DataLoader | None]:
    """The shuffled (and maybe augmented) training loader, and the validation loader if a share is held out."""
    images, labels = train_set.images, train_set.labels
    val_loader = None
    if settings["val_fraction"] > 0:
        train_idx, val_idx = train_val_split(len(labels), settings["val_fraction"], settings["seed"])
        val_loader = DataLoader(images[val_idx], labels[val_idx], EVAL_BATCH,
                                mean=train_set.mean, std=train_set.std)
        images, labels = images[train_idx], labels[train_idx]
    augment = ()
    if settings["augment"]:
        # Mirroring changes digits (a mirrored 2 is no digit), not clothes.
        augment = (RandomCrop(28, padding=2),) + ((RandomHorizontalFlip(),) if train_set.name != "mnist" else ())
    loader = DataLoader(images, labels, settings["batch_size"], shuffle=True, seed=settings["seed"],
                        mean=train_set.mean, std=train_set.std, augment=augment)
    return loader, val_loader


def _optimizer(model, settings: dict):
    params, lr, wd = list(model.parameters()), settings["lr"], settings["weight_decay"]
    if settings["optimizer"] == "sgd":
        return SGD(params, lr=lr, momentum=settings["momentum"], weight_decay=wd)
    return (Adam if settings["optimizer"] == "adam" else AdamW)(params, lr=lr, weight_decay=wd)


def _scheduler(optimizer, settings: dict, steps_per_epoch: int):
    total = settings["epochs"] * steps_per_epoch
    schedule = settings["schedule"]
    if schedule == "onecycle":
        return OneCycleLR(optimizer, max_lr=settings["lr"], total_steps=total, cycle_momentum=False)
    if schedule == "cosine":
        return CosineAnnealingLR(optimizer, T_max=total)
    if schedule == "step":
        return StepLR(optimizer, step_size=math.ceil(settings["epochs"] / 3) * steps_per_epoch, gamma=0.1)
    return None


def _plots(out: Path, model, history, test_set, result, matrix, settings: dict) -> None:
    from ..train import plots

    title = f"{settings['model']} on {settings['dataset']}"
    try:
        plots.plot_history(history, out / "curves.png", title)
        plots.plot_confusion_matrix(matrix, test_set.classes, out / "confusion_matrix.png", title)
        plots.plot_misclassified(test_set.images, result.labels, result.predicted, test_set.classes,
                                 out / "misclassified.png")
        plots.plot_filters(model, out / "filters.png")
        first = (test_set.images[0] / 255.0 - test_set.mean) / test_set.std
        plots.plot_feature_maps(model, first[None].astype("float32"), out / "feature_maps.png")
    except plots.MatplotlibMissing:
        print("convkit train: no plots: matplotlib is missing; pip install 'convkit[plot]'", file=sys.stderr)


# ------------------------------------------------------------- evaluate
def run_evaluate(args: argparse.Namespace) -> int:
    """``convkit evaluate``; returns the exit code."""
    try:
        return _evaluate(args)
    except _Exit as exc:
        print(f"convkit evaluate: {exc}", file=sys.stderr)
        return exc.code


def _evaluate(args: argparse.Namespace) -> int:
    checkpoint = _load(args.checkpoint, "to evaluate")
    settings = checkpoint.config
    if "model" not in settings:
        raise _Exit(f"{args.checkpoint} does not say which model it holds (no 'model' in its config)", 1)
    dataset = args.dataset or settings.get("dataset")
    if dataset is None:
        raise _Exit(f"{args.checkpoint} does not name its dataset; pass --dataset", 2)
    try:
        model = build(settings["model"], input_size=(1, 28, 28), num_classes=10)
        checkpoint.restore(model)
    except ValueError as exc:
        raise _Exit(str(exc), 1) from None
    data = _load_data(dataset, args.split, args)
    loader = DataLoader(data.images, data.labels, args.batch_size, mean=data.mean, std=data.std)
    result = predict(model, loader)
    matrix = confusion_matrix(result.labels, result.predicted, len(data.classes))
    correct = int(matrix.trace())
    print(f"{settings['model']} on {dataset} ({args.split}, {len(data)} images): accuracy "
          f"{correct / len(data):.4f} ({correct}/{len(data)}), loss {result.loss:.4f}")
    print(format_confusion(matrix, data.classes))
    return 0


def format_confusion(matrix, classes) -> str:
    """A text table of the confusion matrix: rows true classes (with names), columns predictions, recall.

    >>> import numpy as np
    >>> print(format_confusion(np.array([[3, 1], [0, 4]]), ["cat", "dog"]))
    confusion matrix (rows: true class, columns: predicted class)
             0    1  accuracy
    0 cat    3    1    0.7500
    1 dog    0    4    1.0000
    """
    recall = per_class_accuracy(matrix)
    names = [f"{i} {name}" for i, name in enumerate(classes)]
    width = max(len(n) for n in names)
    cell = max(5, len(str(int(matrix.max()))) + 1)
    lines = ["confusion matrix (rows: true class, columns: predicted class)",
             " " * width + "".join(f"{j:>{cell}}" for j in range(len(classes))) + "  accuracy"]
    for name, row, r in zip(names, matrix, recall):
        lines.append(f"{name:<{width}}" + "".join(f"{v:>{cell}}" for v in row) + f"{r:>10.4f}")
    return "\n".join(lines)


# ---------------------------------------------------------------- helpers
def _load(path: Path, purpose: str):
    try:
        return load_checkpoint(path)
    except FileNotFoundError:
        raise _Exit(f"no checkpoint {purpose}: {path} does not exist", 1) from None
    except (ValueError, OSError) as exc:
        raise _Exit(str(exc), 1) from None


def _slug(text: str) -> str:
    """``text`` as a directory name: runs of characters other than letters, digits, ``._-`` become ``-``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "run"


def _positive_int(text: str) -> int:
    value = _parse(int, text, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative_int(text: str) -> int:
    value = _parse(int, text, "a non-negative integer")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = _parse(float, text, "a positive number")
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _non_negative_float(text: str) -> float:
    value = _parse(float, text, "a non-negative number")
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text!r}")
    return value


def _fraction(text: str) -> float:
    value = _parse(float, text, "a number in [0, 1)")
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def _parse(kind, text: str, expected: str):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
