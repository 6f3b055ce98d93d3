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
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from .. import random as convkit_random
from ..nn import Module
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

        Raises:
            ValueError: the model's parameter names or shapes differ from the
                saved ones (the message lists them and names the saved
                model), or an optimizer/scheduler is given for a file that
                holds none.
        """
        try:
            model.load_state_dict(self.model_state)
        except ValueError as exc:
            saved = f" (saved from model {self.config['model']!r})" if "model" in self.config else ""
            raise ValueError(f"{self.path}{saved} does not fit this model: {exc}") from None
        if optimizer is not None:
            if self.optimizer_state is None:
                raise ValueError(f"{self.path} is a {self.kind} file without optimizer state; "
                                 "resume from a checkpoint file")
            try:
                optimizer.load_state_dict(self.optimizer_state)
            except ValueError as exc:
                raise ValueError(f"{self.path}: the saved optimizer state does not fit: {exc}") from None
        if scheduler is not None:
            if self.scheduler_state is None:
                raise ValueError(f"{self.path} holds no learning-rate scheduler state")
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
    return Checkpoint(
        kind="checkpoint",
        model_state={k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")},
        epoch=state["epoch"],
        history=state["history"],
        optimizer_state=_refs_to_arrays(path, state["optimizer"], tensors),
        scheduler_state=state["scheduler"],
        rng_state=state["rng"],
        **common,
    )


def _json_entry(path: Path, metadata: dict[str, str], key: str) -> dict:
    """The JSON object stored under ``key`` in the metadata; ValueError if absent or invalid."""
    try:
        value = json.loads(metadata[key])
    except (KeyError, json.JSONDecodeError) as exc:
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
