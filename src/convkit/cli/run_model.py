"""The model of a ``convkit train`` or ``convkit evaluate`` run: built from its name, checked, given weights.

A model is named by a built-in name or a spec string
(``convkit.models.build``), for ``size`` x ``size`` grey images and ten
classes. Before a run starts, one blank image goes through it: it must
run, and give one output per class.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import get_default_dtype
from ..autograd import no_grad
from ..models import build
from ..train import Checkpoint, load_checkpoint
from .failure import Exit
from .run_settings import CLASSES, IMAGE


def load_file(path: Path, purpose: str) -> Checkpoint:
    """The checkpoint or model file ``path`` (``purpose`` words the message: "to resume"); exit 1 if unusable."""
    try:
        return load_checkpoint(path)
    except FileNotFoundError:
        raise Exit(f"no checkpoint {purpose}: {path} does not exist", 1) from None
    except (ValueError, OSError) as exc:
        raise Exit(str(exc), 1) from None


def build_model(spec, max_parameters: int, source: Path | None = None, size: int = IMAGE):
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
        raise Exit(f"{source}: {message}" if source else message, 1 if source else 2) from None


def start_from(model, spec: str, weights: str) -> None:
    """Load the model weights of a model or checkpoint file into ``model`` (exit 1 if they do not fit)."""
    source = load_file(Path(weights), "to start from")
    try:
        model.load_state_dict(source.model_state)
    except ValueError as exc:
        raise Exit(f"--weights {weights} does not fit model {spec!r}: {exc}", 1) from None


def check_outputs(model, spec: str, classes: int, source: Path | None = None, size: int = IMAGE) -> None:
    """Run one blank image through ``model``: it must give ``classes`` logits (exit 2, or 1 with ``source``)."""
    code, prefix = (1, f"{source}: ") if source else (2, "")
    model.eval()
    try:
        with no_grad():
            shape = model(np.zeros((1, 1, size, size), dtype=get_default_dtype())).shape
    except (ValueError, TypeError) as exc:
        hint = "; VGG-style models need --input-size 32 or more" if size < 32 else ""
        raise Exit(f"{prefix}model {spec!r} does not run on {size}x{size} grey images: {exc}{hint}", code) from None
    finally:
        model.train()
    if shape != (1, classes):
        raise Exit(f"{prefix}model {spec!r} gives outputs of shape {shape[1:]} per image, but the dataset has "
                   f"{classes} classes; end it with fc{classes}", code)
