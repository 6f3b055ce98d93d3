"""``Optimizer``: parameter groups, per-parameter state and plain-data state dicts.

An optimizer holds

* ``param_groups``: a list of dicts, each with a ``"params"`` list of
  Parameters and that group's hyperparameters (``lr``, ``momentum``, ...);
  options a group does not set are taken from the optimizer's ``defaults``;
* ``state``: a dict from Parameter to that parameter's buffers (momentum,
  moment estimates, step count), created on the parameter's first update
  (plain SGD keeps none).

``step()`` skips parameters whose ``.grad`` is None and hands the others
of a group, a dtype at a time, to the subclass's ``_update_group``, which
updates every ``p.data`` in place in its own dtype. The updates are
compiled kernels run by ``foreach``: one call per ``GROUP_WIDTH`` parameters
(PyTorch's multi-tensor apply), their elements split evenly over the threads.

``state_dict()`` names parameters by their position across the groups
(0, 1, ... in group order), as PyTorch does, and holds only ndarrays (copies),
ints, floats, bools, strings, lists and dicts, so it can be stored as arrays
plus JSON. ``load_state_dict`` also accepts string indices (what JSON gives
back) and torch tensors (objects with ``.detach().numpy()``), so a PyTorch
optimizer's ``state_dict()`` for the same parameters loads too.

>>> import numpy as np
>>> from convkit.nn import Parameter
>>> from convkit.optim import SGD
>>> w = Parameter(np.array([1.0, 2.0]))
>>> opt = SGD([w], lr=0.5, momentum=0.9)
>>> w.grad = np.array([1.0, -1.0])
>>> opt.step()
>>> w.data
array([0.5, 2.5])
>>> opt.state_dict()["state"]
{0: {'momentum_buffer': array([ 1., -1.])}}
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable
from typing import NamedTuple

import numpy as np

from ..ops.jit import kernel, parallel_spans
from ..tensor import Tensor

__all__ = ["Optimizer"]

GROUP_WIDTH = 16  # parameters per kernel call: one compiled signature per dtype, whatever the model


class Slot(NamedTuple):
    """One parameter in an update: flat C-contiguous views (or copies) of its data and gradient, and its state."""

    param: Tensor
    p: np.ndarray          # the parameter's data, flat; written back after the update when ``copied``
    grad: np.ndarray       # the gradient, flat, the parameter's dtype
    state: dict
    copied: bool


class Optimizer:
    """Base class of the optimizers: parameter groups, state, ``zero_grad`` and state dicts.

    Args:
        params: an iterable of Parameters, of ``(name, Parameter)`` pairs
            (``module.named_parameters()``), or of dicts ``{"params": ...,
            <option>: value}`` giving each group its own options.
        defaults (dict): the options of every group that does not set them.
    """

    def __init__(self, params, defaults: dict):
        name = type(self).__name__
        if isinstance(params, (Tensor, dict, set, frozenset)) or not isinstance(params, Iterable):
            raise TypeError(
                f"{name}: params must be an ordered iterable (list) of Parameters or of dicts, "
                f"got {type(params).__name__}"
            )
        self.defaults = dict(defaults)
        self._check_options(self.defaults)
        self.param_groups: list[dict] = []
        self.state: dict[Tensor, dict] = {}
        groups = list(params)
        if not groups:
            raise ValueError(f"{name}: params is an empty list; pass at least one Parameter")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # -------------------------------------------------------------- groups
    def add_param_group(self, param_group: dict) -> None:
        """Add a group (``{"params": [...], <option>: value}``); missing options come from ``defaults``.

        Raises ValueError if a parameter is already in a group, or is not a
        leaf of the graph.
        """
        name = type(self).__name__
        if not isinstance(param_group, dict) or "params" not in param_group:
            raise TypeError(f"{name}: param_group must be a dict with a 'params' entry, got {param_group!r}")
        group = dict(param_group)
        tensors, names = _split_names(name, group["params"])
        group["params"] = tensors
        if names is not None:
            group["param_names"] = names
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._check_options(group)
        if any(("param_names" in g) != ("param_names" in group) for g in self.param_groups):
            raise ValueError(f"{name}: all param groups must be given with names or all without names")
        taken = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in tensors}) != len(tensors) or any(id(p) in taken for p in tensors):
            raise ValueError(f"{name}: some parameters appear more than once in the param groups")
        self.param_groups.append(group)

    def _check_options(self, options: dict) -> None:
        """Raise ValueError/TypeError for an invalid hyperparameter in ``options`` (defaults or a group).

        Subclasses extend this; they may also normalise a value in place
        (Adam turns ``betas`` into a tuple of two floats).
        """
        if "lr" in options:
            check_range(type(self).__name__, "lr", options["lr"], "learning rate", low=0.0)

    # ---------------------------------------------------------------- step
    def step(self, closure: Callable[[], float] | None = None):
        """Update every parameter that has a gradient; returns ``closure()`` if given."""
        loss = closure() if closure is not None else None
        owner = type(self).__name__
        for group in self.param_groups:
            by_dtype: dict[np.dtype, list[Slot]] = {}
            for param in group["params"]:
                if param.grad is None:
                    continue
                p, copied = flat_param(param.data)
                grad = _grad_of(owner, param).reshape(-1)
                by_dtype.setdefault(p.dtype, []).append(Slot(param, p, grad, self.state.get(param, {}), copied))
            for slots in by_dtype.values():
                self._update_group(slots, group)
                for slot in slots:
                    if slot.copied:
                        slot.param.data[...] = slot.p.reshape(slot.param.shape)
                    if slot.state:
                        self.state[slot.param] = slot.state
        return loss

    def _update_group(self, slots: list[Slot], group: dict) -> None:
        """Update the parameters of ``slots`` (one group, one dtype) in place, creating their state on first use."""
        raise NotImplementedError(f"{type(self).__name__} does not define _update_group()")

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients: set them to None (default) or fill them with zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad[...] = 0

    # ---------------------------------------------------------- state dict
    def state_dict(self) -> dict:
        """``{"state": {index: {...}}, "param_groups": [{..., "params": [index, ...]}]}`` as plain data.

        Arrays are copies, so later steps do not change a saved state dict.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: _plain(v) for k, v in group.items() if k != "params"}
            packed["params"] = [index.setdefault(id(p), len(index)) for p in group["params"]]
            groups.append(packed)
        state = {index[id(p)]: _plain(s) for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore hyperparameters and state saved by ``state_dict`` for the same parameter layout.

        Raises ValueError when the number of groups or of parameters in a
        group differs, or a state entry names a parameter that does not exist.
        Float arrays are copied in each parameter's dtype.
        """
        name = type(self).__name__
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= state_dict.keys():
            raise ValueError(f"{name}.load_state_dict: expected a dict with 'state' and 'param_groups', "
                             f"got {type(state_dict).__name__}")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"{name}.load_state_dict: state dict has {len(saved_groups)} param groups, "
                f"the optimizer has {len(self.param_groups)}"
            )
        params: list[Tensor] = []
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"{name}.load_state_dict: param group {i} has {len(saved['params'])} parameters "
                    f"in the state dict but {len(group['params'])} in the optimizer"
                )
            params.extend(group["params"])
        by_index = dict(zip((int(k) for g in saved_groups for k in g["params"]), params))
        state = {}
        for key, entry in state_dict["state"].items():
            if int(key) not in by_index:
                raise ValueError(
                    f"{name}.load_state_dict: state refers to parameter {key}, "
                    f"but the param groups hold {len(params)} parameters"
                )
            p = by_index[int(key)]
            state[p] = {k: _restore(k, v, p.dtype) for k, v in entry.items()}
        new_groups = []
        for group, saved in zip(self.param_groups, saved_groups):
            new = {k: _restore(k, v, None) for k, v in saved.items() if k != "params"}
            new["params"] = group["params"]
            if "param_names" in group and "param_names" not in new:
                new["param_names"] = group["param_names"]
            self._check_options(new)
            new_groups.append(new)
        self.param_groups = new_groups
        self.state = state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {k}: {group[k]}" for k in sorted(group) if k not in ("params", "param_names"))
        return "\n".join(lines) + "\n)"


def check_range(owner: str, name: str, value, what: str, *, low: float, high: float | None = None) -> None:
    """Raise unless ``value`` is a real number with ``low <= value`` (and ``value < high`` if given).

    The message follows PyTorch's (``Invalid learning rate: -0.1``) and names
    the argument: ``SGD: Invalid learning rate: lr=-0.1, expected lr >= 0.0``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a real number, got {type(value).__name__} {value!r}")
    ok = low <= value and (high is None or value < high)
    if not ok:
        expected = f"{low} <= {name} < {high}" if high is not None else f"{name} >= {low}"
        raise ValueError(f"{owner}: Invalid {what}: {name}={value!r}, expected {expected}")


def _split_names(owner: str, params) -> tuple[list[Tensor], list[str] | None]:
    """The Parameters of a group and their names (None when given without names)."""
    if isinstance(params, Tensor):
        params = [params]
    elif isinstance(params, (set, frozenset)):
        raise TypeError(f"{owner}: params must be an ordered collection (list), not a set: "
                        "the order of a set changes between runs")
    params = list(params)
    named = [isinstance(p, tuple) for p in params]
    if any(named) and not all(named):
        raise ValueError(f"{owner}: give either all parameters with names or none")
    names = [p[0] for p in params] if params and all(named) else None
    tensors = [p[1] for p in params] if names is not None else params
    for p in tensors:
        if not isinstance(p, Tensor):
            raise TypeError(f"{owner}: can only optimize Tensors, but one of the params is {type(p).__name__}")
        if not p.is_leaf:
            raise ValueError(f"{owner}: can't optimize a non-leaf Tensor (a result of an operation)")
        if p.dtype.kind != "f":
            raise TypeError(f"{owner}: can only optimize floating-point Tensors, got dtype {p.dtype}")
    return tensors, names


def flat_param(data: np.ndarray) -> tuple[np.ndarray, bool]:
    """``(flat, copied)``: the flat C-contiguous view of a parameter's data, updated in place by a kernel.

    A non-contiguous array has no such view: ``flat`` is then a copy, and
    ``copied`` says to write it back (``data[...] = flat.reshape(data.shape)``).
    """
    if data.flags.c_contiguous:
        return data.reshape(-1), False
    return np.ascontiguousarray(data).reshape(-1), True


def flat_state(state: dict, key: str) -> np.ndarray:
    """The flat view of ``state[key]``, made C-contiguous and writeable first (a loaded state dict may hold any)."""
    a = state[key]
    if not (a.flags.c_contiguous and a.flags.writeable):
        a = state[key] = np.array(a, order="C")
    return a.reshape(-1)


def _grad_of(owner: str, p: Tensor) -> np.ndarray:
    """``p.grad`` as a C-contiguous, writeable ndarray of ``p``'s shape and dtype (a copy only when needed).

    (Writeable because the kernels take a group's arrays as one tuple of a single array type.)
    """
    grad = np.asarray(p.grad)
    if grad.shape != p.shape:
        raise ValueError(f"{owner}.step: a parameter of shape {p.shape} has a gradient of shape {grad.shape}")
    if grad.dtype == p.dtype and grad.flags.c_contiguous and grad.flags.writeable:
        return grad
    return np.array(grad, dtype=p.dtype, order="C")


@kernel
def overlap(start: int, stop: int, offset: int, size: int) -> tuple[int, int]:
    """The part ``(lo, hi)`` of elements ``start..stop`` of a concatenation that falls in the array at
    ``offset`` of ``size`` elements, in that array's own indices (``lo >= hi``: none)."""
    return max(start - offset, 0), min(stop - offset, size)


def foreach(span, chunks, columns: list[list[np.ndarray]], scalars: list[list[float]], *options) -> None:
    """Run an update kernel over many parameters, ``GROUP_WIDTH`` per call.

    ``columns`` are lists of flat arrays of one dtype, one entry per
    parameter (its data, its gradient, each state buffer); ``scalars`` holds
    one row of numbers per parameter (its step sizes). Each call passes one
    tuple of ``GROUP_WIDTH`` arrays per column (padded with empty arrays),
    the rows as an array ``h (GROUP_WIDTH, k)``, the number of parameters
    in the call, then ``options``; ``span(*arrays, h, count, *options, start,
    stop)`` updates elements ``start..stop`` of the parameters laid end to
    end (``overlap`` gives each parameter's part), and ``ops.jit.parallel_spans``
    splits them over the threads.
    """
    dtype = columns[0][0].dtype
    empty = columns[0][0][:0]
    for first in range(0, len(scalars), GROUP_WIDTH):
        count = min(GROUP_WIDTH, len(scalars) - first)
        packed = [tuple(column[first:first + count]) + (empty,) * (GROUP_WIDTH - count) for column in columns]
        h = np.zeros((GROUP_WIDTH, len(scalars[0])), dtype)
        h[:count] = scalars[first:first + count]
        total = sum(a.size for a in packed[0])
        parallel_spans(span, chunks, total, total, *packed, h, count, *options)


def _plain(value):
    """A deep copy of ``value`` made of ndarrays, Python scalars, strings, lists and dicts."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _restore(key: str, value, dtype: np.dtype | None):
    """A loaded state or group value: tensors become ndarrays (float ones in ``dtype``), ``step`` an int."""
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        value = value.detach().cpu().numpy()
    if key == "step":
        return int(value)
    if isinstance(value, np.ndarray):
        if dtype is not None and value.dtype.kind == "f":
            return value.astype(dtype, copy=True)
        return value.copy()
    return _plain(value)
