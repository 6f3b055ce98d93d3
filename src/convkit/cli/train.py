"""``convkit train`` and ``convkit evaluate``: train a model on MNIST / Fashion-MNIST, evaluate a saved one.

``convkit train`` with no options trains LeNet-5 on Fashion-MNIST for 6
epochs (Adam, peak lr 3e-3 on a one-cycle schedule, batch 128, on the thread
count that runs the model's step fastest, measured on its first batch): about
90 % test accuracy in about 40 s of training on two cores. It prints one
line per epoch (stderr) and the test accuracy (stdout). Everything goes
into ``--out`` (default ``runs/<model>-<dataset>``, see below):

* ``checkpoint.safetensors``: the complete training state, rewritten
  atomically after every epoch (``--resume`` continues from it, bit for bit);
* ``model.safetensors``: the trained weights under their ``state_dict`` names;
* ``metrics.json``: test accuracy and loss, the confusion matrix, per-epoch
  history, training seconds, settings, convkit version and machine;
* PNG plots (unless ``--no-plots``): ``curves.png``, ``confusion_matrix.png``,
  ``misclassified.png``, ``filters.png``, ``feature_maps.png``.

A run directory belongs to one process: ``convkit train`` locks it
(``convkit.train.rundir``) before writing anything into it, and a second
run on it is refused, naming the process that holds it. Without
``--out``, the first free one of ``runs/<model>-<dataset>``, ``...-2``,
``...-3``, ... is used, so the same command can run twice. An existing
non-empty ``--out`` is refused unless ``--resume`` is given; a resumed run
takes its settings from the checkpoint, and options that contradict them
are refused, as is data other than the run's (checkpoints and model files
record the fingerprint of the data they were trained on: names, sizes and
SHA-256 of the splits). ``--weights FILE`` starts a new run from the
weights of a model or checkpoint file, with any settings: that is how a
run continues at another learning rate.

Everything that can be checked is checked before anything is created:
options, ``CONVKIT_CONV_ALGORITHM``, the model (it must give one output
per class), the validation split, that ``--out`` can be written (before
the data load). A run that stops on an operating-system error (a full
disk, say) says in one line which file failed and what is kept; temporary
files of killed writes are deleted when a run starts or resumes. The last
training batch of an epoch is dropped when it would hold a single image
(batch normalisation cannot train on one).

Learning-rate schedules are stepped after every batch: ``onecycle`` warms
up to ``--lr`` over the first 30 % of the batches then anneals (cosine) to
``lr / 2.5e5``; ``cosine`` anneals from ``--lr`` to 0; ``step`` multiplies
the lr by 0.1 after each third of the epochs (rounded up).

Exit codes: 0 done, 1 failure (missing data, diverged training, unusable
checkpoint, operating-system error), 2 usage error (bad option, unknown
model, ``--out`` in use, settings or data that differ from the resumed
run's), 130 interrupted (Ctrl-C) and 143 terminated (SIGTERM): the
checkpoint then holds the last complete epoch and the message gives the
command that resumes.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import re
import shlex
import sys
from pathlib import Path
from typing import NamedTuple

import numba
import numpy as np

from .. import __version__, get_default_dtype, manual_seed
from ..autograd import no_grad
from ..backends import get_conv_algorithm, num_threads
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
from ..data.resize import METHODS as FIT_METHODS
from .._io import atomic_file
from ..models import build
from ..nn import Module
from ..ops._args import is_int
from ..models.budget import DEFAULT_MAX_PARAMETERS
from ..optim import SGD, Adam, AdamW
from ..optim.lr_scheduler import CosineAnnealingLR, OneCycleLR, StepLR
from ..train import (
    Checkpoint,
    TrainingDiverged,
    fit,
    load_checkpoint,
    machine_info,
    per_class_accuracy,
    phase,
    predict,
    save_model,
)
from ..train.metrics import ConfusionMatrix, accuracy, confusion_matrix
from ..train.rundir import RunDirectory, RunDirectoryBusy, check_writable
from ..train.threads import fastest_threads
from . import INTERRUPTED, TERMINATED, Terminated

DATASETS = ("fashion-mnist", "mnist")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("onecycle", "cosine", "step", "none")
# Settings a run is defined by: stored in its checkpoint, refused on --resume when they differ.
DEFAULTS = {
    "model": "lenet5", "dataset": "fashion-mnist", "epochs": 6, "batch_size": 128, "lr": None,
    "optimizer": "adam", "momentum": 0.9, "weight_decay": None, "schedule": "onecycle",
    "augment": False, "val_fraction": 0.0, "seed": 0, "input_size": 28, "resize": "pad",
}
# Settings added after checkpoints were first written: a checkpoint without them had their default.
_LATER_SETTINGS = {"input_size": 28, "resize": "pad"}
IMAGE = 28  # the datasets' image side
DEFAULT_LR = {"adam": 3e-3, "adamw": 3e-3, "sgd": 0.05}
DEFAULT_WEIGHT_DECAY = {"adam": 0.0, "adamw": 0.01, "sgd": 0.0}
EVAL_BATCH = 1000
CLASSES = 10  # both datasets
CHECKPOINT, MODEL_FILE, METRICS = "checkpoint.safetensors", "model.safetensors", "metrics.json"
# The state entries each optimizer keeps for a parameter once it has stepped (sgd: with momentum).
_OPTIMIZER_STATE = {"adam": {"step", "exp_avg", "exp_avg_sq"}, "adamw": {"step", "exp_avg", "exp_avg_sq"},
                    "sgd": {"momentum_buffer"}}
# Every epoch record of a resumed run must hold these (``_finish`` and the plots read them).
_HISTORY_KEYS = {"epoch", "lr", "train_loss", "train_accuracy", "seconds"}


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
        epilog="Exit codes: 0 done, 1 failure, 2 usage error, 130 interrupted, 143 terminated (resume with "
               "--resume).")
    p.add_argument("model", nargs="?", metavar="MODEL",
                   help="a built-in model (lenet5, convnet, vgg11, ...) or a spec string such as "
                        "'conv3-16 pool2 conv3-32 pool2 flatten fc10' (default: lenet5)")
    p.add_argument("--dataset", choices=DATASETS, help="default: fashion-mnist")
    p.add_argument("--data-dir", type=Path, metavar="DIR", help="directory holding the dataset's IDX files")
    p.add_argument("--download", action="store_true", help="download the dataset if it is not found (SHA-256 verified)")
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
    p.add_argument("--input-size", type=_positive_int, metavar="N",
                   help="train on N x N images, the 28 x 28 ones fitted by --resize (the VGGs need N >= 32); "
                        "default: 28")
    p.add_argument("--resize", choices=FIT_METHODS,
                   help="how images reach --input-size: pad (background around the picture) or bilinear "
                        "(the picture scaled); default: pad")
    p.add_argument("--weights", metavar="FILE",
                   help="start a new run from the model weights of FILE (a model.safetensors or "
                        "checkpoint.safetensors of the same model), with new optimizer and schedule")
    _add_max_parameters(p)
    _add_format(p, "the final line; json: metrics.json's content (accuracy, history, confusion matrix, settings)")
    p.set_defaults(run=run_train)

    e = subparsers.add_parser(
        "evaluate", help="evaluate a saved model or checkpoint",
        description="Print the accuracy and confusion matrix of a model.safetensors or checkpoint.safetensors "
                    "written by convkit train.")
    e.add_argument("checkpoint", type=Path, metavar="CHECKPOINT", help="a model or checkpoint file")
    e.add_argument("--dataset", choices=DATASETS, help="default: the dataset the model was trained on")
    e.add_argument("--split", choices=("test", "train"), default="test", help="default: test")
    e.add_argument("--data-dir", type=Path, metavar="DIR", help="directory holding the dataset's IDX files")
    e.add_argument("--download", action="store_true", help="download the dataset if it is not found (SHA-256 verified)")
    e.add_argument("--batch-size", type=_positive_int, default=EVAL_BATCH, metavar="B",
                   help=f"default: {EVAL_BATCH}")
    _add_max_parameters(e)
    _add_format(e, "accuracy, loss and the confusion matrix as tables; json: every number")
    e.set_defaults(run=run_evaluate)


def _add_format(parser, text: str) -> None:
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help=f"what goes to stdout: text: {text} (default: text)")


def _add_max_parameters(parser) -> None:
    parser.add_argument("--max-parameters", type=_positive_int, default=DEFAULT_MAX_PARAMETERS, metavar="N",
                        help="refuse a model of more than N parameters, before allocating it "
                             f"(default: {DEFAULT_MAX_PARAMETERS:,})")


# ---------------------------------------------------------------- train
def run_train(args: argparse.Namespace) -> int:
    """``convkit train``; returns the exit code."""
    try:
        return _train(args)
    except _Exit as exc:
        print(f"convkit train: {exc}", file=sys.stderr)
        return exc.code


class _Job(NamedTuple):
    """What a run trains: settings, model, data and loaders, all checked before anything is written."""

    settings: dict
    model: Module
    train_set: Dataset
    test_set: Dataset
    train_loader: DataLoader
    val_loader: DataLoader | None
    test_loader: DataLoader


def _train(args: argparse.Namespace) -> int:
    """Check everything that can be checked, claim the run directory, train; the order keeps failures clean.

    Usage errors (exit 2) are found before anything is created; ``--out``
    is checked for writability before the data load; the run directory is
    locked before anything is written into it.
    """
    _check_environment()
    _check_threads(args.threads)
    given = {k: getattr(args, k) for k in DEFAULTS if getattr(args, k) is not None}
    if args.resume:
        if args.weights is not None:
            raise _Exit("--weights starts a new run from a file's weights; it cannot be combined with --resume", 2)
        out = args.out or _default_out(given)
        if not (out / CHECKPOINT).is_file():
            raise _Exit(f"no checkpoint to resume: {out / CHECKPOINT} does not exist", 1)
        with _claim(out) as run:
            checkpoint = _load(out / CHECKPOINT, "to resume")
            settings = _resumed_settings(out, checkpoint, given)
            job = _prepare(settings, args, checkpoint.path)
            _check_same_data(checkpoint, job)
            return _run(args, run, job, checkpoint)
    settings = _settings(given)
    if args.out is not None:
        _refuse_used(RunDirectory(args.out))
    _check_writable(args.out or Path("runs"))
    job = _prepare(settings, args)
    if args.weights is not None:
        _start_from(job.model, settings["model"], args.weights)
    with (_claim(args.out, new=True) if args.out is not None else _claim_default(_default_out(given))) as run:
        return _run(args, run, job, None)


def _prepare(settings: dict, args: argparse.Namespace, source: Path | None = None) -> _Job:
    """Build and check the model, load the data, make the loaders.

    Usage errors exit 2 here, or 1 for a model named by the checkpoint ``source``.
    """
    manual_seed(settings["seed"])
    model = _build(settings["model"], args.max_parameters, source, settings["input_size"])
    _check_outputs(model, settings["model"], CLASSES, source, settings["input_size"])
    train_set, test_set = (_fitted(_load_data(settings["dataset"], split, args), settings) for split in ("train", "test"))
    train_loader, val_loader = _train_loaders(train_set, settings)
    test_loader = DataLoader(test_set.images, test_set.labels, EVAL_BATCH, mean=test_set.mean, std=test_set.std)
    return _Job(settings, model, train_set, test_set, train_loader, val_loader, test_loader)


def _run(args: argparse.Namespace, run: RunDirectory, job: _Job, checkpoint: Checkpoint | None) -> int:
    """Train ``job`` in the claimed directory (from ``checkpoint`` when resuming), then finish the run."""
    out, settings, model = run.path, job.settings, job.model
    optimizer = _optimizer(model, settings)
    scheduler = _scheduler(optimizer, settings, len(job.train_loader))
    weights = checkpoint.config.get("weights") if checkpoint is not None else args.weights
    config = {**settings, "classes": list(job.train_set.classes),
              "parameters": sum(p.data.size for p in model.parameters()), "weights": weights,
              "data": {"train": job.train_set.fingerprint(), "test": job.test_set.fingerprint()}}
    start_epoch, history = 0, []
    if checkpoint is not None:
        _check_optimizer_entries(checkpoint, settings, len(list(model.parameters())))
        try:
            checkpoint.restore(model, optimizer, scheduler)
        except ValueError as exc:
            raise _Exit(str(exc), 1) from None
        start_epoch, history = checkpoint.epoch, checkpoint.history
        steps = start_epoch * len(job.train_loader)  # schedules are stepped once per batch
        if scheduler is not None and scheduler.last_epoch != steps:
            raise _Exit(f"{checkpoint.path} is corrupt: field state.scheduler.last_epoch is {scheduler.last_epoch}; "
                        f"expected {steps} ({start_epoch} epochs of {len(job.train_loader)} batches)", 1)
        print(f"resuming {out} after epoch {start_epoch} of {settings['epochs']}", file=sys.stderr)
    saved = out / CHECKPOINT
    completed = start_epoch

    def on_epoch_end(record: dict) -> None:
        nonlocal completed
        completed = record["epoch"]

    def kept() -> str:
        if not completed:
            return "no epoch was saved"
        return (f"{saved} holds the last complete epoch ({completed} of {settings['epochs']}) and is intact; "
                f"continue with: {_resume_command(out, args)}")

    try:
        threads = _threads(args.threads, model, job.train_loader)
        # A diverging run overflows before its loss turns NaN; fit reports that in one line.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"), num_threads(threads):
            history = fit(model, job.train_loader, epochs=settings["epochs"], optimizer=optimizer,
                          scheduler=scheduler, val_loader=job.val_loader, test_loader=job.test_loader,
                          checkpoint_path=saved, config=config, start_epoch=start_epoch, history=history,
                          on_epoch_end=on_epoch_end)
        with num_threads(threads):
            _finish(out, model, config, history, job.test_set, job.test_loader, threads, plots=not args.no_plots,
                    json_out=args.format == "json")
    except TrainingDiverged as exc:
        raise _Exit(f"{exc}: {_restart_hint(settings, args, out, saved if completed else None)}", 1) from None
    except KeyboardInterrupt as exc:
        code = TERMINATED if isinstance(exc, Terminated) else INTERRUPTED
        how = "terminated (SIGTERM)" if code == TERMINATED else "interrupted"
        when = f"during epoch {completed + 1}" if completed < settings["epochs"] else "while writing the results"
        print(f"convkit train: {how} {when}; {kept()}", file=sys.stderr)
        return code
    except OSError as exc:
        raise _Exit(f"{_os_error(exc)}; {kept()}", 1) from None
    return 0


def _check_environment() -> None:
    """Environment settings convkit reads (``CONVKIT_CONV_ALGORITHM``), checked up front: exit 2."""
    try:
        get_conv_algorithm()
    except (TypeError, ValueError) as exc:
        raise _Exit(str(exc), 2) from None


def _check_threads(requested: int | None) -> None:
    cores = numba.config.NUMBA_NUM_THREADS
    if requested is not None and requested > cores:
        raise _Exit(f"--threads {requested} is more than the {cores} cores convkit can use here; "
                    f"give 1 to {cores}", 2)


def _threads(requested: int | None, model, train_loader) -> int:
    """``--threads`` (checked by ``_check_threads``), or the fastest count for this model, measured."""
    if requested is not None:
        return requested
    phase("timing a training step on each thread count ...")
    return fastest_threads(model, train_loader)


def _build(spec, max_parameters: int, source: Path | None = None, size: int = IMAGE):
    """The model named by ``spec`` for ``size`` x ``size`` grey images and ten classes.

    A bad spec is a usage error (exit 2), or with ``source`` (the file that
    named it) a failure of that file (exit 1).
    """
    try:
        return build(spec, input_size=(1, size, size), num_classes=CLASSES, max_parameters=max_parameters)
    except (ValueError, TypeError) as exc:
        first, *rest = str(exc).split("\n")  # a spec error shows the spec and a caret below its first line
        if size == IMAGE and ("too small" in first or "at least 32x32" in first):
            first += " (--input-size N trains on N x N images: the 28 x 28 ones padded or resized)"
        message = "\n".join([first, *rest])
        raise _Exit(f"{source}: {message}" if source else message, 1 if source else 2) from None


def _start_from(model, spec: str, weights: str) -> None:
    """Load the model weights of a model or checkpoint file into ``model`` (exit 1 if they do not fit)."""
    source = _load(Path(weights), "to start from")
    try:
        model.load_state_dict(source.model_state)
    except ValueError as exc:
        raise _Exit(f"--weights {weights} does not fit model {spec!r}: {exc}", 1) from None


def _check_outputs(model, spec: str, classes: int, source: Path | None = None, size: int = IMAGE) -> None:
    """Run one blank image through ``model``: it must give ``classes`` logits (exit 2, or 1 with ``source``)."""
    code, prefix = (1, f"{source}: ") if source else (2, "")
    model.eval()
    try:
        with no_grad():
            shape = model(np.zeros((1, 1, size, size), dtype=get_default_dtype())).shape
    except (ValueError, TypeError) as exc:
        hint = "; VGG-style models need --input-size 32 or more" if size < 32 else ""
        raise _Exit(f"{prefix}model {spec!r} does not run on {size}x{size} grey images: {exc}{hint}", code) from None
    finally:
        model.train()
    if shape != (1, classes):
        raise _Exit(f"{prefix}model {spec!r} gives outputs of shape {shape[1:]} per image, but the dataset has "
                    f"{classes} classes; end it with fc{classes}", code)


def _default_out(given: dict) -> Path:
    return Path("runs") / _slug(f"{given.get('model', DEFAULTS['model'])}-{given.get('dataset', DEFAULTS['dataset'])}")


def _refuse_used(run: RunDirectory) -> None:
    """Exit 2 if ``run``'s directory holds anything but a lock file and temporary files (of killed writes)."""
    if run.path.exists() and not run.path.is_dir():
        raise _Exit(f"--out {run.path} is a file, not a directory", 2)
    if run.entries():
        raise _Exit(f"{run.path} already exists and is not empty; pass --resume to continue the run in it "
                    "or choose another --out", 2)


def _check_writable(path: Path) -> None:
    try:
        check_writable(path)
    except OSError as exc:
        raise _Exit(f"{_os_error(exc)}; nothing was written", 1) from None


def _claim(out: Path, new: bool = False) -> RunDirectory:
    """Lock ``out`` for this process (exit 2 if another holds it); a new run also needs it empty."""
    run = RunDirectory(out)
    try:
        run.acquire()
    except RunDirectoryBusy as exc:
        raise _Exit(f"{exc}; wait for it to finish or choose another --out", 2) from None
    except OSError as exc:
        raise _Exit(f"{_os_error(exc)}; nothing was written", 1) from None
    if new:
        try:
            _refuse_used(run)
        except _Exit:
            run.release()
            raise
    return run


def _claim_default(base: Path) -> RunDirectory:
    """The first of ``base``, ``base-2``, ``base-3``, ... that is free (empty or absent, unlocked), locked."""
    for n in itertools.count(1):
        run = RunDirectory(base if n == 1 else base.with_name(f"{base.name}-{n}"))
        if run.path.exists() and (not run.path.is_dir() or run.entries()):
            continue
        try:
            run.acquire()
        except RunDirectoryBusy:
            continue
        except OSError as exc:
            raise _Exit(f"{_os_error(exc)}; nothing was written", 1) from None
        if not run.entries():
            return run
        run.release()
    raise AssertionError("unreachable")


def _checked_settings(path: Path, settings: dict) -> dict:
    """``settings`` read from the file ``path``, each checked by ``_SETTING_RULES`` (exit 1 naming the field)."""
    for key, value in settings.items():
        valid, expected = _SETTING_RULES[key]
        if not valid(value):
            raise _Exit(f"{path} is corrupt: config field {key!r} is {value!r}; expected {expected}", 1)
    return settings


def _resumed_settings(out: Path, checkpoint: Checkpoint, given: dict) -> dict:
    """The settings of the run in ``out`` (validated); exit 2 if options given contradict them."""
    config = {**_LATER_SETTINGS, **checkpoint.config}
    missing = [k for k in DEFAULTS if k not in config]
    if missing:
        raise _Exit(f"{checkpoint.path} was not written by convkit train (its config lacks {missing})", 1)
    settings = _checked_settings(checkpoint.path, {k: config[k] for k in DEFAULTS})
    if checkpoint.epoch > settings["epochs"]:
        raise _Exit(f"{checkpoint.path} is corrupt: state field 'epoch' is {checkpoint.epoch}, more than the "
                    f"run's {settings['epochs']} epochs", 1)
    if len(checkpoint.history) != checkpoint.epoch or any(
            not _HISTORY_KEYS <= record.keys() for record in checkpoint.history):
        raise _Exit(f"{checkpoint.path} is corrupt: state field 'history' does not hold one record "
                    f"({', '.join(sorted(_HISTORY_KEYS))}) per epoch done ({checkpoint.epoch})", 1)
    conflicts = [f"--{k.replace('_', '-')} {v} (the run has {settings[k]})"
                 for k, v in given.items() if settings[k] != v]
    if conflicts:
        raise _Exit(f"{out} was trained with other settings; drop " + ", ".join(conflicts)
                    + " or train into a new --out (to restart from its weights with other settings: "
                    f"--weights {out / CHECKPOINT})", 2)
    return settings


def _check_optimizer_entries(checkpoint: Checkpoint, settings: dict, parameters: int) -> None:
    """After an epoch, the optimizer keeps its own entries for every parameter: exit 1 if the file's differ."""
    if checkpoint.optimizer_state is None or checkpoint.epoch == 0:
        return
    plain_sgd = settings["optimizer"] == "sgd" and settings["momentum"] == 0  # keeps no state
    expected = set() if plain_sgd else _OPTIMIZER_STATE[settings["optimizer"]]
    entries = checkpoint.optimizer_state["state"]
    if any(set(entry) != expected for entry in entries.values()) or len(entries) != (parameters if expected else 0):
        raise _Exit(f"{checkpoint.path} is corrupt: field state.optimizer.state does not hold "
                    f"{sorted(expected)} for each of the {parameters} parameters ({settings['optimizer']} "
                    f"after {checkpoint.epoch} epochs)", 1)


def _check_same_data(checkpoint: Checkpoint, job: _Job) -> None:
    """Exit 2 if the data found now differ from the data the checkpoint was trained on (its fingerprints)."""
    recorded = checkpoint.config.get("data")
    if recorded is None:
        print(f"convkit train: {checkpoint.path} records no data fingerprint (an older convkit wrote it); "
              "the data cannot be checked", file=sys.stderr)
        return
    differences = []
    for dataset in (job.train_set, job.test_set):
        now = dataset.fingerprint()
        then = recorded.get(dataset.split) if isinstance(recorded, dict) else None
        if not isinstance(then, dict):
            raise _Exit(f"{checkpoint.path} is corrupt: config field 'data' lacks the {dataset.split} split", 1)
        differences += [f"{dataset.split} {key} {then.get(key)!r} then, {now[key]!r} now"
                        for key in ("name", "size", "sha256") if then.get(key) != now[key]]
    if differences:
        raise _Exit(f"{checkpoint.path} was trained on other data than found now ({'; '.join(differences)}); "
                    "pass the run's --data-dir, or train into a new --out", 2)


def _resume_command(out: Path, args: argparse.Namespace) -> str:
    words = ["convkit", "train", "--out", str(out), "--resume"]
    if args.data_dir is not None:
        words += ["--data-dir", str(args.data_dir)]
    return shlex.join(words)


def _restart_hint(settings: dict, args: argparse.Namespace, out: Path, saved: Path | None) -> str:
    """The exact command that trains this run again at a tenth of its learning rate (from ``saved``'s weights)."""
    lower = float(f"{settings['lr'] / 10:.3g}")
    options = {**settings, "lr": lower, "weights": None if saved is None else str(saved)}
    words = ["convkit", "train", options.pop("model")]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            words += [flag] if value else []
        elif value is not None:
            words += [flag, str(value)]
    if args.data_dir is not None:
        words += ["--data-dir", str(args.data_dir)]
    words += ["--out", f"{out}-restart" if saved is not None else str(out)]
    where = f"start from the weights {saved} holds with: " if saved is not None else "train again with: "
    return where + shlex.join(words)


def _os_error(exc: OSError) -> str:
    """One line for an OSError: what failed, on which path."""
    where = f" {exc.filename}" if exc.filename is not None else ""
    return f"cannot write{where}: {exc.strerror or exc}"


def _finish(out: Path, model, config: dict, history: list[dict], test_set, test_loader, threads: int,
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
        "hyperparameters": settings, "convkit_version": __version__, "machine": machine_info(), "threads": threads,
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


def _settings(given: dict) -> dict:
    """The run's settings: the options given, the defaults for the rest (lr and weight decay per optimizer)."""
    settings = {**DEFAULTS, **given}
    if settings["lr"] is None:
        settings["lr"] = DEFAULT_LR[settings["optimizer"]]
    if settings["weight_decay"] is None:
        settings["weight_decay"] = DEFAULT_WEIGHT_DECAY[settings["optimizer"]]
    settings["augment"] = bool(settings["augment"])
    if settings["input_size"] < IMAGE:
        raise _Exit(f"--input-size {settings['input_size']} is smaller than the {IMAGE}x{IMAGE} images; "
                    f"expected {IMAGE} or more (32 for the VGGs)", 2)
    return settings


def _fitted(data: Dataset, settings: dict) -> Dataset:
    """``data`` with its images fitted to ``input_size`` (``convkit.data.fit_images``, by ``resize``)."""
    if settings["input_size"] == IMAGE:
        return data
    phase(f"fitting the {data.split} images to {settings['input_size']}x{settings['input_size']} "
          f"({settings['resize']}) ...")
    return dataclasses.replace(data, images=fit_images(data.images, settings["input_size"], settings["resize"]))


def _load_data(name: str, split: str, args: argparse.Namespace):
    phase(f"loading {name} ({split}) ...")
    try:
        return load(name, split, data_dir=args.data_dir, download=args.download)
    except DataError as exc:
        raise _Exit(str(exc), 1) from None
    except (ValueError, OSError) as exc:
        raise _Exit(f"cannot load {name} ({split}): {exc}", 1) from None


def _train_loaders(train_set, settings: dict) -> tuple[DataLoader, DataLoader | None]:
    """The shuffled (and maybe augmented) training loader, and the validation loader if a share is held out.

    A last batch of a single image is dropped (batch normalisation cannot
    train on one image); evaluation loaders keep every image. Exit 2 if the
    validation share leaves fewer than two training images.
    """
    images, labels = train_set.images, train_set.labels
    val_loader = None
    fraction, n = settings["val_fraction"], len(labels)
    if fraction > 0:
        try:
            train_idx, val_idx = train_val_split(n, fraction, settings["seed"])
        except ValueError:
            raise _Exit(f"--val-fraction {fraction} of the {n} training images leaves no validation or no "
                        "training images; choose a smaller (or larger) share", 2) from None
        val_loader = DataLoader(images[val_idx], labels[val_idx], EVAL_BATCH,
                                mean=train_set.mean, std=train_set.std)
        images, labels = images[train_idx], labels[train_idx]
    if len(labels) < 2:
        held = f" after --val-fraction {fraction}" if fraction > 0 else ""
        raise _Exit(f"{len(labels)} training image(s){held}: too few to train on; at least 2 are needed", 2)
    augment = ()
    if settings["augment"]:
        # Mirroring changes digits (a mirrored 2 is no digit), not clothes.
        augment = (RandomCrop(train_set.images.shape[-1], padding=2),) + ((RandomHorizontalFlip(),) if train_set.name != "mnist" else ())
    loader = DataLoader(images, labels, settings["batch_size"], shuffle=True, seed=settings["seed"],
                        mean=train_set.mean, std=train_set.std, augment=augment,
                        drop_last=len(labels) % settings["batch_size"] == 1)
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
                                 out / "misclassified.png", probabilities=result.probabilities)
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
    _check_environment()
    checkpoint = _load(args.checkpoint, "to evaluate")
    settings = checkpoint.config
    if not isinstance(settings.get("model"), str):
        raise _Exit(f"{args.checkpoint} does not say which model it holds (config field 'model' is "
                    f"{settings.get('model')!r}; expected a model name or spec string)", 1)
    dataset = args.dataset or settings.get("dataset")
    if dataset is None:
        raise _Exit(f"{args.checkpoint} does not name its dataset; pass --dataset", 2)
    if dataset not in DATASETS:
        raise _Exit(f"{args.checkpoint}: config field 'dataset' is {dataset!r}; expected one of {DATASETS} "
                    "(or pass --dataset)", 1)
    fitting = _checked_settings(args.checkpoint, {**_LATER_SETTINGS,
                                                  **{k: settings[k] for k in _LATER_SETTINGS if k in settings}})
    size = fitting["input_size"]
    model = _build(settings["model"], args.max_parameters, args.checkpoint, size)
    _check_outputs(model, settings["model"], CLASSES, args.checkpoint, size)
    try:
        checkpoint.restore(model)
    except ValueError as exc:
        raise _Exit(str(exc), 1) from None
    data = _fitted(_load_data(dataset, args.split, args), fitting)
    loader = DataLoader(data.images, data.labels, args.batch_size, mean=data.mean, std=data.std)
    result = predict(model, loader)
    matrix = confusion_matrix(result.labels, result.predicted, len(data.classes))
    correct = int(matrix.trace())
    if args.format == "json":
        print(json.dumps({
            "model": settings["model"], "dataset": dataset, "split": args.split, "images": len(data),
            "accuracy": correct / len(data), "correct": correct, "loss": result.loss,
            "classes": list(data.classes), "confusion_matrix": matrix.tolist(),
            "per_class_accuracy": [None if math.isnan(v) else v for v in per_class_accuracy(matrix).tolist()],
        }, indent=2))
        return 0
    print(f"{settings['model']} on {dataset} ({args.split}, {len(data)} images): accuracy "
          f"{correct / len(data):.4f} ({correct}/{len(data)}), loss {result.loss:.4f}")
    print(ConfusionMatrix(matrix, data.classes))
    return 0


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


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# What each setting read back from a checkpoint must be (the options' own ranges): a check and its description.
_SETTING_RULES = {
    "model": (lambda v: isinstance(v, str), "a model name or spec string"),
    "dataset": (lambda v: v in DATASETS, f"one of {', '.join(DATASETS)}"),
    "epochs": (lambda v: is_int(v) and v >= 1, "a positive integer"),
    "batch_size": (lambda v: is_int(v) and v >= 1, "a positive integer"),
    "lr": (lambda v: _is_number(v) and v > 0, "a positive number"),
    "optimizer": (lambda v: v in OPTIMIZERS, f"one of {', '.join(OPTIMIZERS)}"),
    "momentum": (lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "weight_decay": (lambda v: _is_number(v) and v >= 0, "a non-negative number"),
    "schedule": (lambda v: v in SCHEDULES, f"one of {', '.join(SCHEDULES)}"),
    "augment": (lambda v: isinstance(v, bool), "true or false"),
    "val_fraction": (lambda v: _is_number(v) and 0 <= v < 1, "a number in [0, 1)"),
    "seed": (lambda v: is_int(v) and v >= 0, "a non-negative integer"),
    "input_size": (lambda v: is_int(v) and v >= IMAGE, f"an integer >= {IMAGE}"),
    "resize": (lambda v: v in FIT_METHODS, f"one of {', '.join(FIT_METHODS)}"),
}
