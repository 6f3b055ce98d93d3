"""The model of a ``convkit train`` or ``convkit evaluate`` run: built from its name, checked, given weights.

A model is named by a built-in name or a spec string
(``convkit.models.build``), or by ``FILE.py:FACTORY``, a function in the
user's file (``cli.models.from_factory``: called with no arguments, or
with ``num_classes=10`` and ``input_size=(1, size, size)`` where it
declares them), for ``size`` x ``size`` grey images and ten classes.
Before a run starts, one blank image goes through it: it must run, and
give one output per class.

A factory's model records where it came from (``config["factory"]``: the
path as given, the function, the SHA-256 of the file's bytes). Loading a
file never runs code it names: a resumed run (``convkit train
FILE.py:FACTORY --resume``) and ``convkit evaluate`` (``--factory
FILE.py:FACTORY``) rebuild it only from a factory the user names, and only
when that is the recorded function and the file holds the recorded bytes;
otherwise they say in one line (exit 2) what to name (``rebuilt_model``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from .. import get_default_dtype
from ..autograd import no_grad
from ..models import build
from ..nn import Module
from ..train import Checkpoint, load_checkpoint
from .failure import Exit
from .models import FactoryChanged, factory_reference, from_factory, named_factory, recorded_factory
from .run_settings import CLASSES, IMAGE


def load_file(path: Path, purpose: str) -> Checkpoint:
    """The checkpoint or model file ``path`` (``purpose`` words the message: "to resume"); exit 1 if unusable."""
    try:
        return load_checkpoint(path)
    except FileNotFoundError:
        raise Exit(f"no checkpoint {purpose}: {path} does not exist", 1) from None
    except (ValueError, OSError) as exc:
        raise Exit(str(exc), 1) from None


def rebuilt_model(source: Checkpoint, named: str | None, verb: str, name_it: Callable[[str], str],
                  flag: str) -> str:
    """The model to rebuild the trained file ``source``'s with: its own spec, or the factory the user ``named``.

    A file trained from a factory names one, but it is run only when the
    user names it too (``cli.models.named_factory``: the recorded function;
    the bytes are checked when it is built): without it, exit 2 saying "to
    ``verb`` it, name it: ``name_it(FILE.py:FACTORY)``". A factory named
    for a file trained from a built-in or spec is refused (exit 2, ``flag``
    names the option). A corrupt record: exit 1.
    """
    spec = source.config["model"]
    if factory_reference(spec) is None:
        if named is not None:
            raise Exit(f"{flag} {named}: {source.path} was trained from {spec!r}, not from a factory; drop {flag}", 2)
        return spec
    try:
        recorded = recorded_factory(source.config, source.path)
    except ValueError as exc:
        raise Exit(str(exc), 1) from None
    try:
        return named_factory(recorded, named, source.path, verb, name_it)
    except ValueError as exc:
        raise Exit(str(exc), 2) from None


def build_model(spec, max_parameters: int, source: Checkpoint | None = None, size: int = IMAGE,
                flag: str = "MODEL") -> tuple[Module, dict | None]:
    """The model named by ``spec`` for ``size`` x ``size`` grey images and ten classes, and its factory's record.

    The record (None for a built-in or spec) goes into the run's config. A
    bad spec is a usage error (exit 2), or with ``source`` (the file that
    named it) a failure of that file (exit 1). A factory's problems are
    usage errors (exit 2), their messages starting with ``flag``, the
    argument that named it: the file and its code are the user's. With
    ``source``, ``spec`` is what ``rebuilt_model`` returned.
    """
    if factory_reference(spec) is not None:
        return _from_factory(spec, source, size, flag)
    try:
        model = build(spec, input_size=(1, size, size), num_classes=CLASSES, max_parameters=max_parameters)
    except (ValueError, TypeError) as exc:
        first, *rest = str(exc).split("\n")  # a spec error shows the spec and a caret below its first line
        if size == IMAGE and ("too small" in first or "at least 32x32" in first):
            first += " (--input-size N trains on N x N images: the 28 x 28 ones padded or resized)"
        message = "\n".join([first, *rest])
        raise Exit(f"{source.path}: {message}" if source else message, 1 if source else 2) from None
    return model, None


def _from_factory(spec: str, source: Checkpoint | None, size: int, flag: str) -> tuple[Module, dict]:
    """``FILE.py:FACTORY``'s model and record; for a trained file ``source``, only from the bytes it records.

    The record returned for ``source`` is its own (the path it records,
    whatever path named the same bytes now).
    """
    expected = None if source is None else recorded_factory(source.config, source.path)  # checked: rebuilt_model
    try:
        model, factory = from_factory(spec, (1, size, size), CLASSES, expected)
    except FactoryChanged as exc:
        raise Exit(f"{source.path} was {exc}", 2) from None
    except ValueError as exc:
        raise Exit(f"{flag} {exc}", 2) from None
    return model, (expected or factory).record()


def start_from(model, spec: str, weights: str) -> None:
    """Load the model weights of a model or checkpoint file into ``model`` (exit 1 if they do not fit)."""
    source = load_file(Path(weights), "to start from")
    try:
        model.load_state_dict(source.model_state)
    except ValueError as exc:
        raise Exit(f"--weights {weights} does not fit model {spec!r}: {exc}", 1) from None


def check_outputs(model, spec: str, classes: int, source: Path | None = None, size: int = IMAGE) -> None:
    """Run one blank image through ``model``: it must give ``classes`` logits.

    Exit 2, or 1 with ``source`` (the file that named a built-in or spec);
    a factory's model is the user's code: exit 2, whatever its forward raises.
    """
    factory = factory_reference(spec) is not None
    code, prefix = (1, f"{source}: ") if source and not factory else (2, "")
    model.eval()
    try:
        with no_grad():
            shape = model(np.zeros((1, 1, size, size), dtype=get_default_dtype())).shape
    except Exception as exc:
        if not (factory or isinstance(exc, (ValueError, TypeError))):
            raise
        hint = "; VGG-style models need --input-size 32 or more" if size < 32 and not factory else ""
        message = " ".join(f"{type(exc).__name__}: {exc}".split()) if factory else exc
        raise Exit(f"{prefix}model {spec!r} does not run on {size}x{size} grey images: {message}{hint}",
                   code) from None
    finally:
        model.train()
    if shape != (1, classes):
        fix = (f"make {spec.rpartition(':')[2]}() end with {classes} outputs (it is given num_classes={classes} "
               "when it declares that parameter)") if factory else f"end it with fc{classes}"
        raise Exit(f"{prefix}model {spec!r} gives outputs of shape {tuple(shape[1:])} per image, but the dataset "
                   f"has {classes} classes; {fix}", code)
