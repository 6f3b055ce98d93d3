"""What ``convkit train --resume`` checks before it continues a run from the checkpoint in ``--out``.

The run's settings are read back from the checkpoint (each checked, exit 1
naming a corrupt field) and options given with ``--resume`` that
contradict them are refused (exit 2; MODEL of a run trained from
``FILE.py:FACTORY`` is not a contradiction but the factory named again,
checked by ``run_model.rebuilt_model``); the optimizer's saved entries must
be the ones its kind keeps; the data found now must be the data the run
was trained on (names, sizes and SHA-256 of the splits, exit 2 naming what
differs).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from ..data import Dataset
from ..train import Checkpoint
from .failure import Exit
from .models import factory_reference
from .run_directory import CHECKPOINT
from .run_settings import DEFAULTS, LATER_SETTINGS, checked_settings

# The state entries each optimizer keeps for a parameter once it has stepped (sgd: with momentum).
_OPTIMIZER_STATE = {"adam": {"step", "exp_avg", "exp_avg_sq"}, "adamw": {"step", "exp_avg", "exp_avg_sq"},
                    "sgd": {"momentum_buffer"}}
# Every epoch record of a resumed run must hold these (the final metrics and the plots read them).
_HISTORY_KEYS = {"epoch", "lr", "train_loss", "train_accuracy", "seconds"}


def resumed_settings(out: Path, checkpoint: Checkpoint, given: dict) -> dict:
    """The settings of the run in ``out`` (validated); exit 2 if options given contradict them."""
    config = {**LATER_SETTINGS, **checkpoint.config}
    missing = [k for k in DEFAULTS if k not in config]
    if missing:
        raise Exit(f"{checkpoint.path} was not written by convkit train (its config lacks {missing})", 1)
    settings = checked_settings(checkpoint.path, {k: config[k] for k in DEFAULTS})
    if checkpoint.epoch > settings["epochs"]:
        raise Exit(f"{checkpoint.path} is corrupt: state field 'epoch' is {checkpoint.epoch}, more than the "
                   f"run's {settings['epochs']} epochs", 1)
    if len(checkpoint.history) != checkpoint.epoch or any(
            not _HISTORY_KEYS <= record.keys() for record in checkpoint.history):
        raise Exit(f"{checkpoint.path} is corrupt: state field 'history' does not hold one record "
                   f"({', '.join(sorted(_HISTORY_KEYS))}) per epoch done ({checkpoint.epoch})", 1)
    factory = factory_reference(settings["model"]) is not None  # MODEL names the run's factory: not a setting
    conflicts = [f"{'MODEL' if k == 'model' else '--' + k.replace('_', '-')} {v} (the run has {settings[k]})"
                 for k, v in given.items() if settings[k] != v and not (k == "model" and factory)]
    if conflicts:
        raise Exit(f"{out} was trained with other settings; drop " + ", ".join(conflicts)
                   + " or train into a new --out (to restart from its weights with other settings: "
                   f"--weights {out / CHECKPOINT})", 2)
    return settings


def check_optimizer_entries(checkpoint: Checkpoint, settings: dict, parameters: int) -> None:
    """After an epoch, the optimizer keeps its own entries for every parameter: exit 1 if the file's differ."""
    if checkpoint.optimizer_state is None or checkpoint.epoch == 0:
        return
    plain_sgd = settings["optimizer"] == "sgd" and settings["momentum"] == 0  # keeps no state
    expected = set() if plain_sgd else _OPTIMIZER_STATE[settings["optimizer"]]
    entries = checkpoint.optimizer_state["state"]
    if any(set(entry) != expected for entry in entries.values()) or len(entries) != (parameters if expected else 0):
        raise Exit(f"{checkpoint.path} is corrupt: field state.optimizer.state does not hold "
                   f"{sorted(expected)} for each of the {parameters} parameters ({settings['optimizer']} "
                   f"after {checkpoint.epoch} epochs)", 1)


def check_same_data(checkpoint: Checkpoint, train_set: Dataset, test_set: Dataset) -> None:
    """Exit 2 if the data found now differ from the data the checkpoint was trained on (its fingerprints)."""
    recorded = checkpoint.config.get("data")
    if recorded is None:
        print(f"convkit train: {checkpoint.path} records no data fingerprint (an older convkit wrote it); "
              "the data cannot be checked", file=sys.stderr)
        return
    differences = []
    for dataset in (train_set, test_set):
        now = dataset.fingerprint()
        then = recorded.get(dataset.split) if isinstance(recorded, dict) else None
        if not isinstance(then, dict):
            raise Exit(f"{checkpoint.path} is corrupt: config field 'data' lacks the {dataset.split} split", 1)
        differences += [f"{dataset.split} {key} {then.get(key)!r} then, {now[key]!r} now"
                        for key in ("name", "size", "sha256") if then.get(key) != now[key]]
    if differences:
        raise Exit(f"{checkpoint.path} was trained on other data than found now ({'; '.join(differences)}); "
                   "pass the run's --data-dir, or train into a new --out", 2)


def resume_command(out: Path, args: argparse.Namespace, factory: str | None = None) -> str:
    """The command that continues the run in ``out`` (naming ``factory``, FILE.py:FACTORY, for a factory's run)."""
    words = ["convkit", "train", *([factory] if factory else []), "--out", str(out), "--resume"]
    if args.data_dir is not None:
        words += ["--data-dir", str(args.data_dir)]
    return shlex.join(words)
