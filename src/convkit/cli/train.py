"""``convkit train``: train a model on MNIST / Fashion-MNIST (``convkit evaluate``, in ``evaluate.py``, scores it).

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

``MODEL`` may be ``FILE.py:FACTORY``, the user's own model: FILE.py is run
and ``FACTORY()`` called, with no arguments, except ``num_classes=10``
and ``input_size=(1, N, N)`` for the parameters of those names it declares
(``cli.models``); it must return a ``convkit.nn.Module`` with ten outputs.
The checkpoint and the model file record the path as given, the
function's name and the SHA-256 of the file's bytes. Loading a file never
runs code it names, so the factory is named again to resume
(``convkit train FILE.py:FACTORY --out DIR --resume``) or evaluate
(``convkit evaluate DIR/model.safetensors --factory FILE.py:FACTORY``):
the function must be the recorded one and the file (any path, a relative
one from the current directory) must hold the recorded bytes. Without
it, or with another function, a missing file or other bytes, one line
(exit 2) says what to name. Every problem with the file or its code
(missing, no such function, not a Module, an exception, the wrong number
of outputs) is a usage error, exit 2, before anything is created.

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

This module holds the command, its options and the order of its steps;
the steps live in ``run_settings`` (settings and their rules),
``run_directory`` (``--out``), ``run_model`` (building and checking the
model), ``run_data`` (data and loaders), ``run_optimizer``, ``resume``
(what ``--resume`` checks) and ``run_results`` (what a finished run
writes).
"""


from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import manual_seed
from ..backends import num_threads
from ..data import DataLoader, Dataset
from ..data.resize import METHODS as FIT_METHODS
from ..nn import Module
from ..train import Checkpoint, TrainingDiverged, fit, phase
from ..train.rundir import RunDirectory
from ..train.threads import fastest_threads
from . import INTERRUPTED, TERMINATED, Terminated
from .failure import Exit, os_error
from .models import factory_reference
from .options import (
    add_format,
    add_max_parameters,
    fraction,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from .resume import check_optimizer_entries, check_same_data, resume_command, resumed_settings
from .run_data import fitted, load_data, train_loaders
from .run_directory import CHECKPOINT, check_can_write, claim, claim_default, default_out, refuse_used
from .run_model import build_model, check_outputs, load_file, rebuilt_model, start_from
from .run_optimizer import make_optimizer, make_scheduler
from .run_results import finish
from .run_settings import (
    CLASSES,
    DATASETS,
    DEFAULTS,
    EVAL_BATCH,
    OPTIMIZERS,
    SCHEDULES,
    check_environment,
    check_threads,
    new_settings,
)


def register(subparsers) -> None:
    """Add ``convkit train``."""
    p = subparsers.add_parser(
        "train", help="train a model on MNIST or Fashion-MNIST",
        description="Train a model (default LeNet-5) on Fashion-MNIST or MNIST; writes a checkpoint after "
                    "every epoch, then the model, metrics.json and plots into --out.",
        epilog="Exit codes: 0 done, 1 failure, 2 usage error, 130 interrupted, 143 terminated (resume with "
               "--resume).")
    p.add_argument("model", nargs="?", metavar="MODEL",
                   help="a built-in model (lenet5, convnet, vgg11, ...), a spec string such as "
                        "'conv3-16 pool2 conv3-32 pool2 flatten fc10', or FILE.py:FACTORY (runs FILE.py and "
                        "calls FACTORY(), with num_classes=10 and input_size=(1, N, N) if it declares them); "
                        "with --resume, a run trained from FILE.py:FACTORY needs it named again (the same "
                        "function, the file's bytes unchanged: loading a checkpoint never runs code it names) "
                        "(default: lenet5)")
    p.add_argument("--dataset", choices=DATASETS, help="default: fashion-mnist")
    p.add_argument("--data-dir", type=Path, metavar="DIR", help="directory holding the dataset's IDX files")
    p.add_argument("--download", action="store_true", help="download the dataset if it is not found (SHA-256 verified)")
    p.add_argument("--epochs", type=positive_int, metavar="N", help=f"default: {DEFAULTS['epochs']}")
    p.add_argument("--batch-size", type=positive_int, metavar="B", help=f"default: {DEFAULTS['batch_size']}")
    p.add_argument("--lr", type=positive_float, metavar="LR",
                   help="(peak) learning rate; default: 3e-3 for adam and adamw, 0.05 for sgd")
    p.add_argument("--optimizer", choices=OPTIMIZERS, help="default: adam")
    p.add_argument("--momentum", type=fraction, metavar="M", help="SGD momentum; default: 0.9")
    p.add_argument("--weight-decay", type=non_negative_float, metavar="WD",
                   help="default: 0.01 for adamw, 0 otherwise")
    p.add_argument("--schedule", choices=SCHEDULES, help="learning-rate schedule; default: onecycle")
    p.add_argument("--augment", action="store_true", default=None,
                   help="random 2-pixel shifts (and horizontal flips for fashion-mnist)")
    p.add_argument("--val-fraction", type=fraction, metavar="F",
                   help="hold out this share of the training set for validation; default: 0")
    p.add_argument("--seed", type=non_negative_int, metavar="S", help="seed of weights and batch order; default: 0")
    p.add_argument("--out", type=Path, metavar="DIR", help="output directory; default: runs/<model>-<dataset>")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--no-plots", action="store_true", help="do not write PNG plots")
    p.add_argument("--threads", type=positive_int, metavar="T",
                   help="threads for convkit's kernels and the BLAS matrix products; default: the count "
                        "that runs this model's training step fastest, timed on the first batch")
    p.add_argument("--input-size", type=positive_int, metavar="N",
                   help="train on N x N images, the 28 x 28 ones fitted by --resize (the VGGs need N >= 32); "
                        "default: 28")
    p.add_argument("--resize", choices=FIT_METHODS,
                   help="how images reach --input-size: pad (background around the picture) or bilinear "
                        "(the picture scaled); default: pad")
    p.add_argument("--weights", metavar="FILE",
                   help="start a new run from the model weights of FILE (a model.safetensors or "
                        "checkpoint.safetensors of the same model), with new optimizer and schedule")
    add_max_parameters(p)
    add_format(p, "the final line; json: metrics.json's content (accuracy, history, confusion matrix, settings)")
    p.set_defaults(run=run_train)


def run_train(args: argparse.Namespace) -> int:
    """``convkit train``; returns the exit code."""
    try:
        return _train(args)
    except Exit as exc:
        print(f"convkit train: {exc}", file=sys.stderr)
        return exc.code


class _Job(NamedTuple):
    """What a run trains: settings, model, data and loaders, all checked before anything is written."""

    settings: dict
    model: Module
    factory: dict | None  # where a FILE.py:FACTORY model came from (cli.models.Factory.record), else None
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
    check_environment()
    check_threads(args.threads)
    given = {k: getattr(args, k) for k in DEFAULTS if getattr(args, k) is not None}
    if args.resume:
        if args.weights is not None:
            raise Exit("--weights starts a new run from a file's weights; it cannot be combined with --resume", 2)
        out = args.out or default_out(given)
        if not (out / CHECKPOINT).is_file():
            raise Exit(f"no checkpoint to resume: {out / CHECKPOINT} does not exist", 1)
        with claim(out) as run:
            checkpoint = load_file(out / CHECKPOINT, "to resume")
            settings = resumed_settings(out, checkpoint, given)
            spec = rebuilt_model(checkpoint, args.model if factory_reference(settings["model"]) else None, "resume",
                                 lambda factory: resume_command(out, args, factory), "MODEL")
            job = _prepare(settings, args, checkpoint, spec)
            check_same_data(checkpoint, job.train_set, job.test_set)
            return _run(args, run, job, checkpoint)
    settings = new_settings(given)
    if args.out is not None:
        refuse_used(RunDirectory(args.out))
    check_can_write(args.out or Path("runs"))
    job = _prepare(settings, args, None, settings["model"])
    if args.weights is not None:
        start_from(job.model, settings["model"], args.weights)
    with (claim(args.out, new=True) if args.out is not None else claim_default(default_out(given))) as run:
        return _run(args, run, job, None)


def _prepare(settings: dict, args: argparse.Namespace, checkpoint: Checkpoint | None, spec: str) -> _Job:
    """Build the model ``spec`` names and check it, load the data, make the loaders.

    ``spec`` is the run's model, or for a resumed run the factory the user
    named for it (``rebuilt_model``). Usage errors exit 2 here, or 1 for a
    model named by the resumed ``checkpoint``.
    """
    manual_seed(settings["seed"])
    model, factory = build_model(spec, args.max_parameters, checkpoint, settings["input_size"])
    check_outputs(model, spec, CLASSES, checkpoint.path if checkpoint else None, settings["input_size"])
    train_set, test_set = (fitted(load_data(settings["dataset"], split, args.data_dir, args.download), settings)
                           for split in ("train", "test"))
    train_loader, val_loader = train_loaders(train_set, settings)
    test_loader = DataLoader(test_set.images, test_set.labels, EVAL_BATCH, mean=test_set.mean, std=test_set.std)
    return _Job(settings, model, factory, train_set, test_set, train_loader, val_loader, test_loader)


def _run(args: argparse.Namespace, run: RunDirectory, job: _Job, checkpoint: Checkpoint | None) -> int:
    """Train ``job`` in the claimed directory (from ``checkpoint`` when resuming), then finish the run."""
    out, settings, model = run.path, job.settings, job.model
    optimizer = make_optimizer(model, settings)
    scheduler = make_scheduler(optimizer, settings, len(job.train_loader))
    weights = checkpoint.config.get("weights") if checkpoint is not None else args.weights
    config = {**settings, "classes": list(job.train_set.classes),
              "parameters": sum(p.data.size for p in model.parameters()), "weights": weights, "factory": job.factory,
              "data": {"train": job.train_set.fingerprint(), "test": job.test_set.fingerprint()}}
    start_epoch, history = 0, []
    if checkpoint is not None:
        check_optimizer_entries(checkpoint, settings, len(list(model.parameters())))
        try:
            checkpoint.restore(model, optimizer, scheduler)
        except ValueError as exc:
            raise Exit(str(exc), 1) from None
        start_epoch, history = checkpoint.epoch, checkpoint.history
        steps = start_epoch * len(job.train_loader)  # schedules are stepped once per batch
        if scheduler is not None and scheduler.last_epoch != steps:
            raise Exit(f"{checkpoint.path} is corrupt: field state.scheduler.last_epoch is {scheduler.last_epoch}; "
                        f"expected {steps} ({start_epoch} epochs of {len(job.train_loader)} batches)", 1)
        print(f"resuming {out} after epoch {start_epoch} of {settings['epochs']}", file=sys.stderr)
    saved = out / CHECKPOINT
    completed = start_epoch
    factory = args.model if job.factory is not None else None  # named again to resume (as named now)

    def on_epoch_end(record: dict) -> None:
        nonlocal completed
        completed = record["epoch"]

    def kept() -> str:
        if not completed:
            return "no epoch was saved"
        return (f"{saved} holds the last complete epoch ({completed} of {settings['epochs']}) and is intact; "
                f"continue with: {resume_command(out, args, factory)}")

    try:
        threads = _threads(args.threads, model, job.train_loader)
        # A diverging run overflows before its loss turns NaN; fit reports that in one line.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"), num_threads(threads):
            history = fit(model, job.train_loader, epochs=settings["epochs"], optimizer=optimizer,
                          scheduler=scheduler, val_loader=job.val_loader, test_loader=job.test_loader,
                          checkpoint_path=saved, config=config, start_epoch=start_epoch, history=history,
                          on_epoch_end=on_epoch_end)
        with num_threads(threads):
            finish(out, model, config, history, job.test_set, job.test_loader, threads, plots=not args.no_plots,
                    json_out=args.format == "json")
    except TrainingDiverged as exc:
        raise Exit(f"{exc}: {_restart_hint(settings, args, out, saved if completed else None)}", 1) from None
    except KeyboardInterrupt as exc:
        code = TERMINATED if isinstance(exc, Terminated) else INTERRUPTED
        how = "terminated (SIGTERM)" if code == TERMINATED else "interrupted"
        when = f"during epoch {completed + 1}" if completed < settings["epochs"] else "while writing the results"
        print(f"convkit train: {how} {when}; {kept()}", file=sys.stderr)
        return code
    except OSError as exc:
        raise Exit(f"{os_error(exc)}; {kept()}", 1) from None
    return 0


def _threads(requested: int | None, model, train_loader) -> int:
    """``--threads`` (checked by ``check_threads``), or the fastest count for this model, measured."""
    if requested is not None:
        return requested
    phase("timing a training step on each thread count ...")
    return fastest_threads(model, train_loader)


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
