"""``trace(model, example)``: the graph of one forward pass, every op and every module call.

One recording of what a model computes, shared by everything that walks a
model: ``convkit.analysis.summary`` (shapes, costs, receptive fields), the
explanations of output sizes, and the exports to ONNX and PyTorch. It holds

* ``nodes``: every primitive op the forward ran (``convkit.ops``: conv,
  batch_norm, relu, add, cat, reshape, max_pool, ...), in execution order,
  each with its inputs by name, its normalised options (conv ``pads`` as one
  ``(low, high)`` pair per axis), its output shape and dtype, and the module
  whose call ran it;
* ``calls``: every module call, with the nodes that ran inside it, so that
  nested modules can be folded (a ResNet block as one row);
* the names of the values the ops read: the input, the model's parameters
  and buffers by their ``state_dict`` keys, and constants.

Given a shape, the forward runs on a meta tensor (``convkit.ops.meta``): each
op applies its shape rule only, so nothing is computed or allocated and the
model may itself be meta (``convkit.nn.meta_init``). Given data, it runs for
real and each node keeps its output in ``value``.

What is recorded is what ran: Python control flow is followed for this
input (as ``torch.jit.trace``), a module called twice gives two calls, and
``nn.Sequential`` runs every layer on its own (no fused ReLU) so that each
module's call appears.

>>> import convkit.nn as nn
>>> net = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
...                     nn.Linear(6 * 14 * 14, 10))
>>> g = trace(net, (1, 1, 28, 28))
>>> [(n.name, n.op, n.shape) for n in g.nodes]  # doctest: +NORMALIZE_WHITESPACE
[('0', 'conv', (1, 6, 28, 28)), ('1', 'relu', (1, 6, 28, 28)), ('2', 'max_pool', (1, 6, 14, 14)),
 ('3', 'reshape', (1, 1176)), ('4', 'linear', (1, 10))]
>>> g.nodes[0].inputs, g.nodes[0].options["pads"]
(('input', '0.weight', '0.bias'), ((2, 2), (2, 2)))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from . import autograd
from .nn.module import Module
from .ops._args import WindowGeometry, is_int
from .ops.meta import MetaArray
from .tensor import Tensor, as_tensor, get_default_dtype

__all__ = ["Call", "Graph", "Node", "trace"]


@dataclass(frozen=True)
class Node:
    """One primitive op of the forward pass.

    ``inputs`` names each array argument of the primitive's forward, in
    order (a node, ``"input"``, a parameter or buffer, a constant, or None for
    an absent optional array such as a missing bias); ``options`` are its
    keyword options, array options replaced by the names of those arrays.
    ``scope`` is the qualified name of the innermost module whose call ran
    it (``""``: the model's own forward).
    """

    name: str
    op: str
    inputs: tuple[str | None, ...]
    options: dict
    shape: tuple[int, ...]
    dtype: np.dtype
    scope: str
    value: np.ndarray | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Call:
    """One module call: the module, its qualified name, its depth below the model (the model is 0),
    the values it received and returned, and the ``Graph.nodes`` indices that ran inside it."""

    name: str
    module: Module = field(repr=False)
    depth: int
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    nodes: range


@dataclass(frozen=True)
class Graph:
    """The record of one forward pass (module docstring)."""

    nodes: tuple[Node, ...]
    calls: tuple[Call, ...]
    inputs: tuple[str, ...]
    input_shape: tuple[int, ...]
    outputs: tuple[str, ...]
    parameters: dict
    buffers: dict
    constants: dict

    @property
    def layers(self) -> dict[int, Call]:
        """Node index -> the call of the leaf module (one without children: ``Conv2d``, ``ReLU``...) that ran
        that node and nothing else: the nodes that are a layer, as opposed to an op of some ``forward``."""
        return {c.nodes.start: c for c in self.calls
                if len(c.nodes) == 1 and not any(True for _ in c.module.children())}

    def geometry(self, node: Node) -> WindowGeometry | None:
        """The normalised window geometry of a conv, conv_transpose, max_pool or avg_pool node, else None."""
        o = node.options
        if node.op in ("conv", "conv_transpose"):
            pads = tuple(tuple(p) for p in o["pads"])
            return WindowGeometry(self.shape(node.inputs[1])[2:], tuple(o["stride"]), pads, tuple(o["dilation"]),
                                  node.shape[2:], node.op == "conv_transpose")
        if node.op in ("max_pool", "avg_pool"):
            kernel = tuple(o["kernel"])
            return WindowGeometry(kernel, tuple(o["stride"]), tuple((p, p) for p in o["padding"]),
                                  tuple(o.get("dilation", (1,) * len(kernel))), node.shape[2:])
        return None

    def node(self, name: str) -> Node:
        """The node called ``name``."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"trace: no node {name!r}")

    def kind(self, name: str) -> str:
        """What ``name`` refers to: ``node``, ``input``, ``parameter``, ``buffer`` or ``constant``."""
        for kind, table in (("input", self.inputs), ("parameter", self.parameters), ("buffer", self.buffers),
                            ("constant", self.constants)):
            if name in table:
                return kind
        self.node(name)
        return "node"

    def shape(self, name: str) -> tuple[int, ...]:
        """The shape of any named value."""
        kind = self.kind(name)
        if kind == "node":
            return self.node(name).shape
        if kind == "input":
            return self.input_shape
        table = {"parameter": self.parameters, "buffer": self.buffers, "constant": self.constants}[kind]
        return tuple(table[name].shape)


def trace(model: Module, example, *, training: bool = False, dtype=None) -> Graph:
    """Record the graph of ``model(example)``.

    Args:
        model (Module): the network (meta or not).
        example: a shape with the batch axis, e.g. ``(1, 3, 224, 224)``: a meta
            run, nothing computed; or an ndarray / Tensor: a real run, each
            node's ``value`` set.
        training (bool): run in training mode (batch statistics, dropout);
            default False, inference. The model's modes are restored afterwards;
            a real run in training mode updates the batch norms' running
            statistics, as a training step's forward does.
        dtype: the meta input's dtype. Default: the model's first parameter's
            (``convkit.get_default_dtype()`` without parameters).

    Returns:
        Graph

    Raises:
        TypeError: ``model`` is not a Module, or ``example`` neither a shape nor data.
        ValueError, TypeError: an error of the forward pass, prefixed with the innermost layer whose call
            raised it and the shape that layer received.
        RuntimeError: called while another trace records (traces do not nest).
    """
    if not isinstance(model, Module):
        raise TypeError(f"trace: model must be a convkit.nn.Module, got {type(model).__name__}")
    x = _example(model, example, dtype)
    if autograd.recorder is not None:
        raise RuntimeError("trace: a trace is already recording; traces do not nest")
    modes = [(m, m.training) for m in model.modules()]
    recorder = _Recorder(model, x)
    model.train(training)
    autograd.recorder = recorder
    try:
        with autograd.no_grad():
            out = model(x)
    finally:
        autograd.recorder = None
        for m, mode in modes:
            m.training = mode
    return recorder.graph(out)


def _example(model: Module, example, dtype) -> Tensor:
    if isinstance(example, (Tensor, np.ndarray)):
        return as_tensor(example, name="example", op="trace")
    if (isinstance(example, (str, bytes)) or not isinstance(example, Sequence) or not example
            or not all(is_int(n) and n >= 1 for n in example)):
        raise TypeError(f"trace: example must be an input's shape with the batch axis, e.g. (1, 3, 224, 224), "
                        f"or an input array, got {example!r}")
    if dtype is None:
        first = next(model.parameters(), None)
        dtype = first.dtype if first is not None else get_default_dtype()
    return Tensor._from_op(MetaArray(example, dtype), None)


class _Recorder:
    """Receives every primitive application (``autograd.apply``) and module call while ``trace`` runs."""

    def __init__(self, model: Module, x: Tensor):
        self.names: dict[int, str] = {id(x): "input"}
        self.alive: list = [x]  # every named object stays alive, so that no id is reused during the trace
        self.parameters: dict[str, Tensor] = {}
        self.buffers: dict[str, object] = {}
        self.module_names: dict[int, str] = {}
        for qual, m in model.named_modules():
            self.module_names.setdefault(id(m), qual)
            for key, p in m._parameters.items():
                if p is not None and id(p) not in self.names:
                    self._name(p, _join(qual, key))
                    self.parameters[_join(qual, key)] = p
            for key, b in m._buffers.items():
                if b is not None and id(b) not in self.names:
                    self._name(b, _join(qual, key))
                    self.buffers[_join(qual, key)] = b
        self.constants: dict[str, object] = {}
        self.nodes: list[dict] = []
        self.calls: list[dict] = []
        self.stack: list[dict] = []
        self.input_shape = x.shape

    def _name(self, obj, name: str) -> str:
        self.names[id(obj)] = name
        self.alive.append(obj)
        return name

    def _value(self, obj) -> str | None:
        """The name of a Tensor or array an op reads, naming it as a constant if it is new."""
        if obj is None:
            return None
        key = id(obj)
        if key not in self.names:
            data = obj.data if isinstance(obj, Tensor) else obj
            name = _numbered("constant", self.constants)
            self.constants[name] = data
            self._name(obj, name)
        return self.names[key]

    # ------------------------------------------------------------ callbacks
    def op(self, op, inputs, options, result: Tensor) -> None:
        """One primitive application: ``result = op(*inputs, **options)``."""
        scope = self.stack[-1]["name"] if self.stack else ""
        opts = {}
        for key, value in options.items():
            if key == "algorithm":  # how, not what: the trace describes the computation
                continue
            opts[key] = self._value(value) if isinstance(value, (np.ndarray, MetaArray, Tensor)) else value
        index = len(self.nodes)
        self.nodes.append({"op": op.name, "inputs": tuple(self._value(t) for t in inputs), "options": opts,
                           "shape": tuple(result.shape), "dtype": result.dtype, "scope": scope,
                           "value": None if isinstance(result.data, MetaArray) else result.data})
        self._name(result, f"%{index}")

    def module_call(self, module: Module, call, args, kwargs):
        """Run ``call(*args, **kwargs)`` (the module's hooks and forward) as one recorded call."""
        parent = self.stack[-1]["name"] if self.stack else None
        name = self.module_names.get(id(module))
        if name is None:  # a module made inside forward: named after its class, under its caller
            name = _join(parent or "", type(module).__name__.lower())
        record = {"name": name, "module": module, "depth": len(self.stack), "first": len(self.nodes),
                  "inputs": tuple(self._value(a) for a in _tensors(args))}
        self.calls.append(record)
        self.stack.append(record)
        try:
            out = call(*args, **kwargs)
        except (ValueError, TypeError) as err:
            if getattr(err, "_convkit_layer", False):
                raise
            given = ", ".join(str(tuple(t.shape)) for t in _tensors(args))
            kind = ValueError if isinstance(err, ValueError) else TypeError
            located = kind(f"layer {name or '(the model)'} ({type(module).__name__}), given an input of "
                                f"shape {given}: {err}")
            located._convkit_layer = True
            raise located from None
        finally:
            self.stack.pop()
        record["stop"] = len(self.nodes)
        record["outputs"] = tuple(self._value(t) for t in _tensors((out,)))
        return out

    # ------------------------------------------------------------ the result
    def graph(self, out) -> Graph:
        final = self._final_names()
        rename = {f"%{i}": name for i, name in enumerate(final)}

        def ref(name):
            return rename.get(name, name) if name is not None else None

        nodes = tuple(Node(name=final[i], op=n["op"], inputs=tuple(ref(v) for v in n["inputs"]),
                           options={k: ref(v) if isinstance(v, str) and v.startswith("%") else v
                                    for k, v in n["options"].items()},
                           shape=n["shape"], dtype=np.dtype(n["dtype"]), scope=n["scope"], value=n["value"])
                      for i, n in enumerate(self.nodes))
        calls = tuple(Call(c["name"], c["module"], c["depth"], tuple(ref(v) for v in c["inputs"]),
                           tuple(ref(v) for v in c.get("outputs", ())), range(c["first"], c.get("stop", c["first"])))
                      for c in self.calls)
        outputs = tuple(ref(self._value(t)) for t in _tensors((out,)))
        return Graph(nodes, calls, ("input",), self.input_shape, outputs, dict(self.parameters),
                     dict(self.buffers), dict(self.constants))

    def _final_names(self) -> list[str]:
        """A leaf module's single op takes the module's name; other ops ``<scope>.<op>``, numbered as torch.fx."""
        names: list[str | None] = [None] * len(self.nodes)
        for c in self.calls:
            first, stop = c["first"], c.get("stop", c["first"])
            if stop - first == 1 and not any(True for _ in c["module"].children()) and names[first] is None:
                names[first] = c["name"] or type(c["module"]).__name__.lower()
        used: dict[str, int] = {}
        final = []
        for i, n in enumerate(self.nodes):
            base = names[i] or _join(n["scope"], n["op"])
            count = used.get(base, 0)
            used[base] = count + 1
            final.append(base if count == 0 else f"{base}_{count}")
        return final


def _tensors(values) -> list[Tensor]:
    """The Tensors among ``values``, looking one level into tuples, lists and dicts."""
    found = []
    for v in values:
        if isinstance(v, Tensor):
            found.append(v)
        elif isinstance(v, (tuple, list)):
            found += [t for t in v if isinstance(t, Tensor)]
        elif isinstance(v, dict):
            found += [t for t in v.values() if isinstance(t, Tensor)]
    return found


def _numbered(base: str, taken) -> str:
    name, k = base, 0
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    return name


def _join(*parts: str) -> str:
    return ".".join(p for p in parts if p)
