"""The settings a ``convkit train`` run is defined by: names, defaults, the rules each value must follow.

A run's settings (``DEFAULTS``' keys) are the options given on the command
line and the defaults for the rest; they are stored in the run's
checkpoint and model file, and a resumed run or ``convkit evaluate`` reads
them back through ``checked_settings``, which holds every value to the
same range its option has. The environment (``CONVKIT_CONV_ALGORITHM``)
and ``--threads`` are checked here too, before anything is created.
"""

from __future__ import annotations

import math
from pathlib import Path

import numba

from ..backends import get_conv_algorithm
from ..data.resize import METHODS as FIT_METHODS
from ..ops._args import is_int
from .failure import Exit

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
LATER_SETTINGS = {"input_size": 28, "resize": "pad"}
IMAGE = 28  # the datasets' image side
CLASSES = 10  # both datasets
DEFAULT_LR = {"adam": 3e-3, "adamw": 3e-3, "sgd": 0.05}
DEFAULT_WEIGHT_DECAY = {"adam": 0.0, "adamw": 0.01, "sgd": 0.0}
EVAL_BATCH = 1000


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# What each setting read back from a checkpoint must be (the options' own ranges): a check and its description.
SETTING_RULES = {
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


def new_settings(given: dict) -> dict:
    """The run's settings: the options given, the defaults for the rest (lr and weight decay per optimizer)."""
    settings = {**DEFAULTS, **given}
    if settings["lr"] is None:
        settings["lr"] = DEFAULT_LR[settings["optimizer"]]
    if settings["weight_decay"] is None:
        settings["weight_decay"] = DEFAULT_WEIGHT_DECAY[settings["optimizer"]]
    settings["augment"] = bool(settings["augment"])
    if settings["input_size"] < IMAGE:
        raise Exit(f"--input-size {settings['input_size']} is smaller than the {IMAGE}x{IMAGE} images; "
                   f"expected {IMAGE} or more (32 for the VGGs)", 2)
    return settings


def checked_settings(path: Path, settings: dict) -> dict:
    """``settings`` read from the file ``path``, each checked by ``SETTING_RULES`` (exit 1 naming the field)."""
    for key, value in settings.items():
        valid, expected = SETTING_RULES[key]
        if not valid(value):
            raise Exit(f"{path} is corrupt: config field {key!r} is {value!r}; expected {expected}", 1)
    return settings


def check_environment() -> None:
    """Environment settings convkit reads (``CONVKIT_CONV_ALGORITHM``), checked up front: exit 2."""
    try:
        get_conv_algorithm()
    except (TypeError, ValueError) as exc:
        raise Exit(str(exc), 2) from None


def check_threads(requested: int | None) -> None:
    """``--threads`` must not exceed the cores numba may use (exit 2)."""
    cores = numba.config.NUMBA_NUM_THREADS
    if requested is not None and requested > cores:
        raise Exit(f"--threads {requested} is more than the {cores} cores convkit can use here; "
                   f"give 1 to {cores}", 2)
