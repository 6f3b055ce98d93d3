"""``convkit evaluate``: the accuracy, loss and confusion matrix of a model or checkpoint written by ``convkit train``.

The file names its model, dataset and input size; the model is rebuilt
from them, given the file's weights, and run on the test split (or
``--split train``) of the dataset, fitted to the input size the model was
trained on. Loading a file never runs code it names: a model trained from
``FILE.py:FACTORY`` is rebuilt only by the factory named with ``--factory
FILE.py:FACTORY``, and only when that is the function the file records and
FILE.py holds the bytes it records (SHA-256); without ``--factory``, or
with another function or other bytes, one line (exit 2) says what to name.
Exit codes: 0 done, 1 failure (missing or unusable file or
data), 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from pathlib import Path

from ..data import DataLoader
from ..train import per_class_accuracy, predict
from ..train.metrics import ConfusionMatrix, confusion_matrix
from .failure import Exit
from .models import add_factory
from .options import add_format, add_max_parameters, positive_int
from .run_data import fitted, load_data
from .run_model import build_model, check_outputs, load_file, rebuilt_model
from .run_settings import CLASSES, DATASETS, EVAL_BATCH, LATER_SETTINGS, check_environment, checked_settings


def register(subparsers) -> None:
    """Add ``convkit evaluate``."""
    e = subparsers.add_parser(
        "evaluate", help="evaluate a saved model or checkpoint",
        description="Print the accuracy and confusion matrix of a model.safetensors or checkpoint.safetensors "
                    "written by convkit train.")
    e.add_argument("checkpoint", type=Path, metavar="CHECKPOINT",
                   help="a model or checkpoint file written by convkit train (one trained from FILE.py:FACTORY "
                        "needs --factory FILE.py:FACTORY)")
    e.add_argument("--dataset", choices=DATASETS, help="default: the dataset the model was trained on")
    e.add_argument("--split", choices=("test", "train"), default="test", help="default: test")
    e.add_argument("--data-dir", type=Path, metavar="DIR", help="directory holding the dataset's IDX files")
    e.add_argument("--download", action="store_true", help="download the dataset if it is not found (SHA-256 verified)")
    e.add_argument("--batch-size", type=positive_int, default=EVAL_BATCH, metavar="B",
                   help=f"default: {EVAL_BATCH}")
    add_factory(e)
    add_max_parameters(e)
    add_format(e, "accuracy, loss and the confusion matrix as tables; json: every number")
    e.set_defaults(run=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    """``convkit evaluate``; returns the exit code."""
    try:
        return _evaluate(args)
    except Exit as exc:
        print(f"convkit evaluate: {exc}", file=sys.stderr)
        return exc.code


def _evaluate(args: argparse.Namespace) -> int:
    check_environment()
    checkpoint = load_file(args.checkpoint, "to evaluate")
    settings = checkpoint.config
    if not isinstance(settings.get("model"), str):
        raise Exit(f"{args.checkpoint} does not say which model it holds (config field 'model' is "
                   f"{settings.get('model')!r}; expected a model name or spec string)", 1)
    dataset = args.dataset or settings.get("dataset")
    if dataset is None:
        raise Exit(f"{args.checkpoint} does not name its dataset; pass --dataset", 2)
    if dataset not in DATASETS:
        raise Exit(f"{args.checkpoint}: config field 'dataset' is {dataset!r}; expected one of {DATASETS} "
                   "(or pass --dataset)", 1)
    fitting = checked_settings(args.checkpoint, {**LATER_SETTINGS,
                                                 **{k: settings[k] for k in LATER_SETTINGS if k in settings}})
    size = fitting["input_size"]
    spec = rebuilt_model(checkpoint, args.factory, "evaluate", lambda factory: shlex.join(["--factory", factory]),
                         "--factory")
    model = build_model(spec, args.max_parameters, checkpoint, size, "--factory")[0]
    check_outputs(model, spec, CLASSES, args.checkpoint, size)
    try:
        checkpoint.restore(model)
    except ValueError as exc:
        raise Exit(str(exc), 1) from None
    data = fitted(load_data(dataset, args.split, args.data_dir, args.download), fitting)
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
