"""Training checkpoints and trained models as safetensors files.

Two kinds of file, both safetensors (``convkit.safetensors``), so nothing is
executed on loading:

* **model file** (``save_model``): the model's ``state_dict`` under its own
  names (``0.weight``, ``0.bias``, ...), so other tools read it as is (e.g.
  ``safetensors.torch.load_file`` then ``load_state_dict`` into the same
  network in PyTorch), and in the metadata the run's ``config`` (model,
  dataset, hyperparameters).
* **checkpoint** (``save_checkpoint``): everything an exact resume needs.
  Arrays go into the tensor table: the model's as ``model.<name>``, the
  optimizer's as ``optimizer.<path>`` (``optimizer.state.0.exp_avg``). The
  rest is JSON in the metadata: the optimizer state dict with each array
  replaced by ``{"__tensor__": "<its tensor name>"}``, the scheduler's state,
  the number of epochs done, the state of convkit's random generator
  (``convkit.random``, which drives dropout), the metrics history, and the
  config.

Metadata keys of both (all strings, as the format requires): ``format``
(``convkit.model`` or ``convkit.checkpoint``), ``format_version`` (``"1"``),
``convkit_version``, ``config`` (JSON) and for checkpoints ``state`` (JSON).
A file of another format version is refused with a message naming both
versions, rather than misread.

Everything read from the JSON is checked before use, field by field, and a
wrong one raises ValueError naming the file and the field (``state.epoch``,
``state.optimizer.param_groups[0].lr``, ...): ``load_checkpoint`` checks
types and ranges (epoch a non-negative int, history a list of records of
numbers, the optimizer state's layout, the generator state);
``Checkpoint.restore`` checks the saved optimizer and scheduler states
against the layout of the ones it restores into (same entries, same kinds
of value, arrays of the parameters' shapes) before loading anything.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from .. import random as convkit_random
from ..nn import Module
from ..ops._args import is_int
from ..optim import Optimizer
from ..optim.lr_scheduler import LRScheduler
from ..safetensors import load_file, load_metadata, save_file

__all__ = ["FORMAT_VERSION", "Checkpoint", "save_checkpoint", "save_model", "load_checkpoint"]

FORMAT_VERSION = 1
_MODEL, _CHECKPOINT = "convkit.model", "convkit.checkpoint"
_TENSOR = "__tensor__"


@dataclass
class Checkpoint:
    """What ``load_checkpoint`` read from a checkpoint or a model file.

    Attributes:
        path (Path): the file.
        kind (str): ``"checkpoint"`` or ``"model"``.
        model_state (dict[str, ndarray]): the model's ``state_dict``.
        config (dict): the run's settings as saved (model, dataset, hyperparameters, ...).
        convkit_version (str): the convkit that wrote the file.
        epoch (int): epochs completed (0 for a model file).
        history (list[dict]): per-epoch metrics (empty for a model file).
        optimizer_state (dict | None): the optimizer's ``state_dict`` (None for a model file).
        scheduler_state (dict | None): the scheduler's ``state_dict``, if one was saved.
        rng_state (dict | None): ``bit_generator.state`` of convkit's generator.
    """

    path: Path
    kind: str
    model_state: dict[str, np.ndarray]
    config: dict
    convkit_version: str
    epoch: int = 0
    history: list[dict] = field(default_factory=list)
    optimizer_state: dict | None = None
    scheduler_state: dict | None = None
    rng_state: dict | None = None

    def restore(self, model: Module, optimizer: Optimizer | None = None,
                scheduler: LRScheduler | None = None) -> None:
        """Load the saved state into ``model`` (and ``optimizer``, ``scheduler``, convkit's generator).

        The saved optimizer and scheduler states are checked against
        ``optimizer`` and ``scheduler`` (module docstring) before anything
        is loaded, so a refused file leaves them and the model as they were.

        Raises:
            ValueError: the model's parameter names or shapes differ from the
                saved ones (the message lists them and names the saved
                model), an optimizer/scheduler is given for a file that
                holds none, or their saved states do not fit them (the
                message names the field).
        """
        if optimizer is not None:
            if self.optimizer_state is None:
                raise ValueError(f"{self.path} is a {self.kind} file without optimizer state; "
                                 "resume from a checkpoint file")
            _check_optimizer_fits(self.path, self.optimizer_state, optimizer)
        if scheduler is not None:
            if self.scheduler_state is None:
                raise ValueError(f"{self.path} holds no learning-rate scheduler state")
            _check_like(self.path, self.scheduler_state, scheduler.state_dict(), "state.scheduler")
        try:
            model.load_state_dict(self.model_state)
        except ValueError as exc:
            saved = f" (saved from model {self.config['model']!r})" if "model" in self.config else ""
            raise ValueError(f"{self.path}{saved} does not fit this model: {exc}") from None
        if optimizer is not None:
            try:
                optimizer.load_state_dict(self.optimizer_state)
            except ValueError as exc:
                raise ValueError(f"{self.path}: the saved optimizer state does not fit: {exc}") from None
        if scheduler is not None:
            scheduler.load_state_dict(self.scheduler_state)
        if self.rng_state is not None:
            convkit_random.generator().bit_generator.state = self.rng_state


def save_model(path: str | os.PathLike, model: Module, config: dict | None = None) -> None:
    """Write ``model``'s ``state_dict`` and ``config`` (JSON-able) to a safetensors file, atomically."""
    save_file(dict(model.state_dict()), path, metadata=_metadata(_MODEL, config))


def save_checkpoint(path: str | os.PathLike, model: Module, optimizer: Optimizer | None = None,
                    scheduler: LRScheduler | None = None, *, epoch: int, history: list[dict] | None = None,
                    config: dict | None = None) -> None:
    """Write the complete training state to ``path``, atomically.

    Args:
        path: the safetensors file to write; the previous one stays whole
            until the new one replaces it (temporary file, fsync, ``os.replace``).
        model (Module): its ``state_dict``.
        optimizer (Optimizer | None): its ``state_dict``. Default: None.
        scheduler (LRScheduler | None): its ``state_dict``. Default: None.
        epoch (int): epochs completed.
        history (list[dict] | None): per-epoch metrics (JSON-able). Default: none.
        config (dict | None): the run's settings (JSON-able). Default: none.
    """
    if not is_int(epoch) or epoch < 0:
        raise ValueError(f"save_checkpoint: epoch must be a non-negative int, got {epoch!r}")
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    optimizer_state = None
    if optimizer is not None:
        optimizer_state = _arrays_to_refs(optimizer.state_dict(), "optimizer", tensors)
    state = {
        "epoch": int(epoch),
        "history": list(history or []),
        "optimizer": optimizer_state,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "rng": convkit_random.generator().bit_generator.state,
    }
    metadata = _metadata(_CHECKPOINT, config)
    metadata["state"] = json.dumps(state)
    save_file(tensors, path, metadata=metadata)


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint (``save_checkpoint``) or a model file (``save_model``).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a safetensors file, or corrupt; a safetensors file
            that convkit did not write; a file of another format version.
    """
    path = Path(path)
    metadata = load_metadata(path)
    kind = metadata.get("format")
    if kind not in (_MODEL, _CHECKPOINT):
        raise ValueError(f"{path} is a safetensors file but not a convkit checkpoint or model "
                         f"(metadata 'format' is {kind!r}, expected {_CHECKPOINT!r} or {_MODEL!r})")
    version = metadata.get("format_version")
    if version != str(FORMAT_VERSION):
        raise ValueError(f"{path} has convkit file format version {version}, written by convkit "
                         f"{metadata.get('convkit_version', '?')}; this convkit ({__version__}) reads version "
                         f"{FORMAT_VERSION}")
    tensors = load_file(path)
    common = {"path": path, "config": _json_entry(path, metadata, "config"),
              "convkit_version": metadata.get("convkit_version", "?")}
    if kind == _MODEL:
        return Checkpoint(kind="model", model_state=tensors, **common)
    state = _json_entry(path, metadata, "state")
    missing = {"epoch", "history", "optimizer", "scheduler", "rng"} - state.keys()
    if missing:
        raise ValueError(f"{path} is corrupt: its training state lacks {sorted(missing)}")
    state["optimizer"] = _refs_to_arrays(path, state["optimizer"], tensors)
    _check_state(path, state)
    return Checkpoint(
        kind="checkpoint",
        model_state={k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")},
        epoch=state["epoch"],
        history=state["history"],
        optimizer_state=state["optimizer"],
        scheduler_state=state["scheduler"],
        rng_state=state["rng"],
        **common,
    )


def _json_entry(path: Path, metadata: dict[str, str], key: str) -> dict:
    """The JSON object stored under ``key`` in the metadata; ValueError if absent or invalid."""
    try:
        value = json.loads(metadata[key])
    except (KeyError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"{path} is corrupt: its metadata entry {key!r} is missing or not JSON ({exc})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path} is corrupt: its metadata entry {key!r} is not a JSON object")
    return value


def _metadata(kind: str, config: dict | None) -> dict[str, str]:
    return {"format": kind, "format_version": str(FORMAT_VERSION), "convkit_version": __version__,
            "config": json.dumps(config or {})}


def _arrays_to_refs(value, name: str, tensors: dict[str, np.ndarray]):
    """``value`` with every ndarray moved into ``tensors`` under a dotted name and replaced by a reference."""
    if isinstance(value, np.ndarray):
        tensors[name] = value
        return {_TENSOR: name}
    if isinstance(value, dict):
        return {str(k): _arrays_to_refs(v, f"{name}.{k}", tensors) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_arrays_to_refs(v, f"{name}.{i}", tensors) for i, v in enumerate(value)]
    return value


def _refs_to_arrays(path: Path, value, tensors: dict[str, np.ndarray]):
    """Undo ``_arrays_to_refs``: every ``{"__tensor__": name}`` becomes ``tensors[name]``."""
    if isinstance(value, dict):
        if value.keys() == {_TENSOR}:
            if value[_TENSOR] not in tensors:
                raise ValueError(f"{path} is corrupt: its state refers to tensor {value[_TENSOR]!r}, "
                                 "which the file does not hold")
            return tensors[value[_TENSOR]]
        return {k: _refs_to_arrays(path, v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [_refs_to_arrays(path, v, tensors) for v in value]
    return value


def _corrupt(path: Path, field: str, value, expected: str) -> ValueError:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return ValueError(f"{path} is corrupt: field {field} is {shown}; expected {expected}")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_state(path: Path, state: dict) -> None:
    """The training state's JSON fields, checked for type and range; ValueError naming the field."""
    epoch = state["epoch"]
    if not is_int(epoch) or epoch < 0:
        raise _corrupt(path, "state.epoch", epoch, "a non-negative integer")
    history = state["history"]
    if not isinstance(history, list):
        raise _corrupt(path, "state.history", history, "a list of epoch records")
    for i, record in enumerate(history):
        if not isinstance(record, dict):
            raise _corrupt(path, f"state.history[{i}]", record, "an object of numbers")
        for key, value in record.items():
            if not _is_number(value):
                raise _corrupt(path, f"state.history[{i}].{key}", value, "a number")
        if not is_int(record.get("epoch")) or record["epoch"] != i + 1:
            raise _corrupt(path, f"state.history[{i}].epoch", record.get("epoch"), f"the integer {i + 1}")
    if state["optimizer"] is not None:
        _check_optimizer_layout(path, state["optimizer"])
    if state["scheduler"] is not None and not isinstance(state["scheduler"], dict):
        raise _corrupt(path, "state.scheduler", state["scheduler"], "an object or null")
    if state["rng"] is not None:
        _check_rng(path, state["rng"])


def _check_optimizer_layout(path: Path, value) -> None:
    """``{"state": {index: {name: array or number}}, "param_groups": [{..., "params": [index, ...]}]}``."""
    field = "state.optimizer"
    if not isinstance(value, dict) or value.keys() != {"state", "param_groups"}:
        raise _corrupt(path, field, value, "an object of 'state' and 'param_groups'")
    groups = value["param_groups"]
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise _corrupt(path, f"{field}.param_groups", groups, "a list of objects")
    indices = []
    for i, group in enumerate(groups):
        params = group.get("params")
        if not isinstance(params, list) or not all(is_int(k) and k >= 0 for k in params):
            raise _corrupt(path, f"{field}.param_groups[{i}].params", params, "a list of parameter indices")
        indices += params
        for key, option in group.items():
            if key != "params" and not _plain_option(option):
                raise _corrupt(path, f"{field}.param_groups[{i}].{key}", option,
                               "a number, boolean, string or list of numbers")
    if len(set(indices)) != len(indices):
        raise _corrupt(path, f"{field}.param_groups", indices, "each parameter index once")
    entries = value["state"]
    if not isinstance(entries, dict):
        raise _corrupt(path, f"{field}.state", entries, "an object")
    for key, entry in entries.items():
        if not key.isdigit() or int(key) not in indices:
            raise _corrupt(path, f"{field}.state", key, f"keys among the parameter indices {sorted(indices)}")
        if not isinstance(entry, dict) or not all(isinstance(v, np.ndarray) or (_is_number(v) and math.isfinite(v))
                                                  for v in entry.values()):
            raise _corrupt(path, f"{field}.state.{key}", entry, "an object of arrays and finite numbers")
        if "step" in entry and not (is_int(entry["step"]) and entry["step"] >= 0):
            raise _corrupt(path, f"{field}.state.{key}.step", entry["step"], "a non-negative integer")
    # One optimizer makes every parameter's state alike: the same entries, each an array or a number throughout.
    layouts = {tuple(sorted((k, isinstance(v, np.ndarray)) for k, v in entry.items())) for entry in entries.values()}
    if len(layouts) > 1:
        raise _corrupt(path, f"{field}.state", sorted(layouts), "the same entries (arrays, numbers) for every parameter")


def _plain_option(value) -> bool:
    """An optimizer option as JSON holds one: a finite number, a boolean, a string, None, or a list of numbers."""
    if isinstance(value, list):
        return all(_is_number(v) and math.isfinite(v) for v in value)
    return value is None or isinstance(value, (bool, str)) or (_is_number(value) and math.isfinite(value))


def _check_rng(path: Path, rng) -> None:
    """The generator state must be one that convkit's generator accepts (tried on a fresh generator)."""
    kind = type(convkit_random.generator().bit_generator)
    try:
        if not isinstance(rng, dict) or rng.get("bit_generator") != kind.__name__:
            raise ValueError
        kind().state = rng
    except (ValueError, TypeError, KeyError, OverflowError):
        raise _corrupt(path, "state.rng", rng, f"the state of a {kind.__name__} generator") from None


def _check_optimizer_fits(path: Path, saved: dict, optimizer: Optimizer) -> None:
    """The saved optimizer state against ``optimizer``'s own layout: groups, options, and array shapes."""
    own = optimizer.state_dict()
    if len(saved["param_groups"]) != len(own["param_groups"]):
        raise _corrupt(path, "state.optimizer.param_groups", saved["param_groups"],
                       f"{len(own['param_groups'])} parameter group(s)")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for i, (group, reference) in enumerate(zip(saved["param_groups"], own["param_groups"])):
        field = f"state.optimizer.param_groups[{i}]"
        if len(group["params"]) != len(reference["params"]):
            raise _corrupt(path, f"{field}.params", group["params"], f"{len(reference['params'])} indices")
        for key, value in group.items():
            if key != "params" and key in reference:
                _check_like(path, value, reference[key], f"{field}.{key}")
    order = [k for group in saved["param_groups"] for k in group["params"]]
    for key, entry in saved["state"].items():
        param = params[order.index(int(key))]
        for name, value in entry.items():
            if isinstance(value, np.ndarray) and (value.shape not in (param.shape, ()) or value.dtype.kind != "f"):
                raise _corrupt(path, f"state.optimizer.state.{key}.{name}", f"{value.dtype} of shape {value.shape}",
                               f"floats of the parameter's shape {param.shape}")


def _check_like(path: Path, value, reference, field: str) -> None:
    """``value`` must have ``reference``'s structure: the same keys, lengths and kinds of value, recursively.

    Numbers may differ in value (finite; an int where the reference has
    one), as may booleans; strings and None must be the same.
    """
    if isinstance(reference, dict):
        if not isinstance(value, dict) or value.keys() != reference.keys():
            raise _corrupt(path, field, value, f"an object with the entries {sorted(reference)}")
        for key in reference:
            _check_like(path, value[key], reference[key], f"{field}.{key}")
    elif isinstance(reference, (list, tuple)):
        if not isinstance(value, list) or len(value) != len(reference):
            raise _corrupt(path, field, value, f"a list of {len(reference)}")
        for i, (v, r) in enumerate(zip(value, reference)):
            _check_like(path, v, r, f"{field}[{i}]")
    elif isinstance(reference, bool):
        if not isinstance(value, bool):
            raise _corrupt(path, field, value, "true or false")
    elif reference is None or isinstance(reference, str):
        if value != reference:
            raise _corrupt(path, field, value, repr(reference))
    elif is_int(reference):
        if not is_int(value):
            raise _corrupt(path, field, value, "an integer")
    elif _is_number(reference):
        if not (_is_number(value) and math.isfinite(value)):
            raise _corrupt(path, field, value, "a finite number")
