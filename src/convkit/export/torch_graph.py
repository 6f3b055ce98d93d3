"""``to_torch``: a convkit model as a ``torch.fx.GraphModule`` that computes the same and trains in PyTorch.

The module tree is convkit's, at the same qualified names, so the
state_dict keys are the same (``features.0.weight``, ``bn1.running_mean``,
``bn1.num_batches_tracked``, ...) and so are the values and dtypes:

* each leaf layer with a torch counterpart (``LAYERS``: ``Conv2d``,
  ``BatchNorm2d``, ``Linear``, ``ReLU``, ``Dropout``, pooling, ...) becomes
  that torch layer, its parameters and buffers copied;
* every other module becomes a container (``Sequential``, ``ModuleList``,
  or ``torch_modules.Container``) holding its own parameters and buffers.

The forward is the traced graph (``walk.Walk``): an op that is the one op
of a leaf layer's call is a ``call_module`` of that layer (so ``train()`` /
``eval()`` switch batch norm and dropout as in PyTorch), every other op a
``call_function`` of ``torch`` / ``torch.nn.functional`` (``HANDLERS``) on
``get_attr`` of the parameters. A ``Dropout`` (which runs no op in the eval
trace) is called on the value it received, and what follows reads its
output. Arrays made inside forward are non-persistent buffers (not in the
state_dict); a reshape keeps its batch axis as ``-1``.
"""

from __future__ import annotations

import operator
from collections import OrderedDict

import numpy as np

from .. import nn
from ..ops.meta import MetaArray
from .extras import require
from .walk import Walk

__all__ = ["to_torch"]

_PAD_MODES = {"zeros": "constant", "constant": "constant", "reflect": "reflect", "replicate": "replicate",
              "circular": "circular"}


def to_torch(model, input_size):
    """The ``torch.fx.GraphModule`` equivalent to ``model`` for inputs ``(N, *input_size)`` (module docstring).

    Args:
        model (convkit.nn.Module): the network, with its weights (float32 or float64).
        input_size (tuple of ints): one sample's shape, e.g. ``(3, 32, 32)``; the forward is
            traced for it (Python control flow follows that input, as in ``torch.jit.trace``).
    Returns a ``torch.fx.GraphModule`` whose ``state_dict()`` keys are ``model.state_dict()``'s and whose
    modules are in ``model``'s modes.
    Raises:
        ImportError: torch is not installed.
        ValueError: an op without a torch mapping (named with its node and module), a bad input size.
    """
    torch = require("torch", "to_torch")
    walk = Walk(model, input_size, "to_torch")
    root = _skeleton(model, torch)
    builder = _FxBuilder(walk, torch, root)
    walk.run(builder.handlers())
    module = builder.graph_module(type(model).__name__)
    twins = dict(module.named_modules(remove_duplicate=False))
    for name, m in model.named_modules(remove_duplicate=False):
        twins[name].training = m.training
    return module


# ------------------------------------------------------------------ the module tree
def _layers(torch) -> dict:
    """convkit layer class -> (the op it runs, ``build(layer, torch_dtype)`` of its torch counterpart)."""
    t = torch.nn
    table = {
        nn.Linear: ("linear", lambda m, dt: t.Linear(m.in_features, m.out_features, m.bias is not None, dtype=dt)),
        nn.LayerNorm: ("layer_norm", lambda m, dt: t.LayerNorm(m.normalized_shape, m.eps, m.elementwise_affine,
                                                               m.bias is not None, dtype=dt)),
        nn.GroupNorm: ("group_norm", lambda m, dt: t.GroupNorm(m.num_groups, m.num_channels, m.eps, m.affine,
                                                               dtype=dt)),
        nn.ReLU: ("relu", lambda m, dt: t.ReLU()),
        nn.LeakyReLU: ("leaky_relu", lambda m, dt: t.LeakyReLU(m.negative_slope)),
        nn.Sigmoid: ("sigmoid", lambda m, dt: t.Sigmoid()),
        nn.Tanh: ("tanh", lambda m, dt: t.Tanh()),
        nn.Softmax: ("softmax", lambda m, dt: t.Softmax(m.dim)),
        nn.LogSoftmax: ("log_softmax", lambda m, dt: t.LogSoftmax(m.dim)),
        nn.Dropout: ("dropout", lambda m, dt: t.Dropout(m.p)),
        nn.Dropout2d: ("dropout", lambda m, dt: t.Dropout2d(m.p)),
        nn.Flatten: ("reshape", lambda m, dt: t.Flatten(m.start_dim, m.end_dim)),
    }
    for d in (1, 2, 3):
        table[getattr(nn, f"Conv{d}d")] = ("conv", (lambda cls: lambda m, dt: cls(
            m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation, m.groups,
            m.bias is not None, m.padding_mode, dtype=dt))(getattr(t, f"Conv{d}d")))
        table[getattr(nn, f"ConvTranspose{d}d")] = ("conv_transpose", (lambda cls: lambda m, dt: cls(
            m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.output_padding, m.groups,
            m.bias is not None, m.dilation, dtype=dt))(getattr(t, f"ConvTranspose{d}d")))
        for kind, op in (("BatchNorm", "batch_norm"), ("InstanceNorm", "instance_norm")):
            table[getattr(nn, f"{kind}{d}d")] = (op, (lambda cls: lambda m, dt: cls(
                m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats, dtype=dt))(
                getattr(t, f"{kind}{d}d")))
        table[getattr(nn, f"MaxPool{d}d")] = ("max_pool", (lambda cls: lambda m, dt: cls(
            m.kernel_size, m.stride, m.padding, m.dilation, False, m.ceil_mode))(getattr(t, f"MaxPool{d}d")))
        table[getattr(nn, f"AvgPool{d}d")] = ("avg_pool", (lambda cls, d: lambda m, dt: cls(
            m.kernel_size, m.stride, m.padding, m.ceil_mode, m.count_include_pad,
            *((m.divisor_override,) if d > 1 else ())))(getattr(t, f"AvgPool{d}d"), d))
        table[getattr(nn, f"AdaptiveAvgPool{d}d")] = ("adaptive_avg_pool", (lambda cls: lambda m, dt: cls(
            m.output_size))(getattr(t, f"AdaptiveAvgPool{d}d")))
        table[getattr(nn, f"AdaptiveMaxPool{d}d")] = ("adaptive_max_pool", (lambda cls: lambda m, dt: cls(
            m.output_size))(getattr(t, f"AdaptiveMaxPool{d}d")))
    return table


def _torch_dtype(module, torch):
    """The torch dtype of ``module``'s own float parameters and buffers (None without any)."""
    arrays = [p.data for p in module._parameters.values() if p is not None]
    arrays += [b for b in module._buffers.values() if b is not None and b.dtype.kind == "f"]
    if any(isinstance(a, MetaArray) for a in arrays):
        raise ValueError(f"to_torch: {type(module).__name__} holds meta arrays (built under meta_init): build the "
                         f"model with its weights to export it")
    kinds = {np.dtype(a.dtype) for a in arrays}
    return getattr(torch, kinds.pop().name) if kinds else None


def _skeleton(model, torch):
    """``model``'s module tree in torch (module docstring), weights copied."""
    from .torch_modules import Container

    layers = _layers(torch)

    def convert(m):
        dt = _torch_dtype(m, torch)
        if type(m) in layers and not getattr(m, "return_indices", False):
            twin = layers[type(m)][1](m, dt)
            twin.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in m.state_dict().items()})
            return twin
        children = OrderedDict((name, convert(c)) for name, c in m._modules.items() if c is not None)
        if type(m) is nn.Sequential:
            twin = torch.nn.Sequential(children)
        elif type(m) is nn.ModuleList:
            twin = torch.nn.ModuleList(children.values())
        else:
            twin = Container(type(m).__name__)
            for name, c in children.items():
                twin.add_module(name, c)
        for name, p in m._parameters.items():
            twin.register_parameter(name, None if p is None else torch.nn.Parameter(torch.from_numpy(p.data.copy())))
        for name, b in m._buffers.items():
            twin.register_buffer(name, None if b is None else torch.from_numpy(np.array(b)))
        return twin

    return convert(model)


# ------------------------------------------------------------------ the graph
class _FxBuilder:
    """The ``torch.fx.Graph`` being written, and the fx node of every graph value emitted so far."""

    def __init__(self, walk: Walk, torch, root):
        self.walk, self.graph, self.torch, self.root = walk, walk.graph, torch, root
        self.F = torch.nn.functional
        self.fx = torch.fx.Graph()
        self.env = {"input": self.fx.placeholder("input")}
        self.layers = _layers(torch)
        self.modules = dict(walk.model.named_modules())

    def value(self, name):
        """The fx node (or Python number) of a graph value; parameters and buffers by ``get_attr``."""
        if name is None:
            return None
        if name in self.env:
            return self.env[name]
        kind = self.graph.kind(name)
        if kind in ("parameter", "buffer"):
            self.env[name] = self.fx.get_attr(name)
        elif kind == "constant":
            data = np.asarray(self.graph.constants[name])
            if data.ndim == 0:
                return data.item()
            attr = f"_{name}"
            self.root.register_buffer(attr, self.torch.from_numpy(data.copy()), persistent=False)
            self.env[name] = self.fx.get_attr(attr)
        return self.env[name]

    def call(self, fn, *args, **kwargs):
        return self.fx.call_function(fn, args, kwargs)

    def done(self, node, result, slope_option: bool = False):
        """Bind ``result`` to the node, through its fused (leaky) ReLU when ``slope_option``."""
        slope = node.options.get("relu_slope") if slope_option else None
        if slope is not None:
            result = self.call(self.torch.relu, result) if slope == 0 else \
                self.call(self.F.leaky_relu, result, float(slope))
        self.env[node.name] = result

    def handlers(self) -> dict:
        torch = self.torch
        simple = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "neg": operator.neg,
                  "exp": torch.exp, "log": torch.log, "sqrt": torch.sqrt, "abs": torch.abs, "add": operator.add,
                  "sub": operator.sub, "mul": operator.mul, "div": operator.truediv, "matmul": torch.matmul}
        table = {op: self._simple(fn) for op, fn in simple.items()}
        table |= {op: getattr(self, f"_{op}") for op in (
            "conv", "conv_transpose", "linear", "batch_norm", "instance_norm", "layer_norm", "group_norm",
            "leaky_relu", "softmax", "log_softmax", "pow", "sum", "mean", "max", "reshape", "transpose", "getitem",
            "cast", "cat", "stack", "max_pool", "avg_pool", "adaptive_avg_pool", "adaptive_max_pool",
            "global_avg_pool", "pad", "interpolate")}
        for op, handler in list(table.items()):
            table[op] = self._layer_or(handler)
        table["empty_call"] = self._empty_call
        return table

    def _layer_or(self, handler):
        """Emit the node as a ``call_module`` of its leaf layer where it is that layer's own op, else ``handler``."""
        def emit(index, node):
            call = self.walk.leaf_call(index, node)
            entry = self.layers.get(type(call.module)) if call is not None else None
            if (entry is not None and entry[0] == node.op and call.inputs[:1] == node.inputs[:1]
                    and self._natural(call.module, node)):
                result = self.fx.call_module(call.name, (self.value(node.inputs[0]),))
                self.done(node, result, slope_option=True)
            else:
                handler(index, node)
        return emit

    @staticmethod
    def _natural(module, node) -> bool:
        """Whether ``node`` is what calling the torch twin of ``module`` on its input computes."""
        if node.op == "conv_transpose":
            return tuple(node.options["output_padding"]) == tuple(module.output_padding)
        return not getattr(module, "return_indices", False)

    def _empty_call(self, call):
        """A ``Dropout`` that ran no op (eval mode): call it, and let what follows read its output."""
        if type(call.module) in (nn.Dropout, nn.Dropout2d) and call.inputs:
            self.env[call.inputs[0]] = self.fx.call_module(call.name, (self.value(call.inputs[0]),))

    def _simple(self, fn):
        def emit(index, node):
            self.done(node, self.call(fn, *(self.value(v) for v in node.inputs)))
        return emit

    def _conv(self, index, node):
        o = node.options
        x, w, b = (self.value(v) for v in node.inputs)
        k = len(o["stride"])
        pads = o["pads"]
        symmetric = all(lo == hi for lo, hi in pads)
        if o["padding_mode"] != "zeros" or not symmetric:
            flat = [p for lo_hi in reversed(pads) for p in lo_hi]  # F.pad: the last axis first
            x = self.call(self.F.pad, x, flat, _PAD_MODES[o["padding_mode"]])
            pads = ((0, 0),) * k
        if o["flip"]:
            w = self.call(self.torch.flip, w, tuple(range(2, 2 + k)))
        fn = getattr(self.F, f"conv{k}d")
        y = self.call(fn, x, w, b, tuple(o["stride"]), tuple(lo for lo, _ in pads), tuple(o["dilation"]),
                      o["groups"])
        self.done(node, y, slope_option=True)

    def _conv_transpose(self, index, node):
        o = node.options
        if any(lo != hi for lo, hi in o["pads"]):
            raise self.walk.refuse(node, f"asymmetric pads {o['pads']} have no torch mapping")
        x, w, b = (self.value(v) for v in node.inputs)
        fn = getattr(self.F, f"conv_transpose{len(o['stride'])}d")
        self.done(node, self.call(fn, x, w, b, tuple(o["stride"]), tuple(lo for lo, _ in o["pads"]),
                                  tuple(o["output_padding"]), o["groups"], tuple(o["dilation"])))

    def _linear(self, index, node):
        self.done(node, self.call(self.F.linear, *(self.value(v) for v in node.inputs)))

    def _batch_norm(self, index, node):
        o = node.options
        x, w, b = (self.value(v) for v in node.inputs)
        y = self.call(self.F.batch_norm, x, self.value(o["running_mean"]), self.value(o["running_var"]), w, b,
                      bool(o["training"]), float(o["momentum"]), float(o["eps"]))
        self.done(node, y, slope_option=True)

    def _instance_norm(self, index, node):
        o = node.options
        x, w, b = (self.value(v) for v in node.inputs)
        self.done(node, self.call(self.F.instance_norm, x, self.value(o["running_mean"]),
                                  self.value(o["running_var"]), w, b, bool(o["use_input_stats"]),
                                  float(o["momentum"]), float(o["eps"])))

    def _layer_norm(self, index, node):
        o = node.options
        x, w, b = (self.value(v) for v in node.inputs)
        shape = tuple(self.graph.shape(node.inputs[0])[-o["normalized_ndim"]:])
        self.done(node, self.call(self.F.layer_norm, x, shape, w, b, float(o["eps"])))

    def _group_norm(self, index, node):
        o = node.options
        x, w, b = (self.value(v) for v in node.inputs)
        self.done(node, self.call(self.F.group_norm, x, int(o["num_groups"]), w, b, float(o["eps"])))

    def _leaky_relu(self, index, node):
        self.done(node, self.call(self.F.leaky_relu, self.value(node.inputs[0]),
                                  float(node.options["negative_slope"])))

    def _softmax(self, index, node):
        self.done(node, self.call(self.torch.softmax, self.value(node.inputs[0]), int(node.options["axis"])))

    def _log_softmax(self, index, node):
        self.done(node, self.call(self.torch.log_softmax, self.value(node.inputs[0]), int(node.options["axis"])))

    def _pow(self, index, node):
        self.done(node, self.call(operator.pow, self.value(node.inputs[0]), float(node.options["exponent"])))

    def _reduction(self, node, fn):
        axis = node.options["axis"]
        ndim = len(self.graph.shape(node.inputs[0]))
        dims = tuple(range(ndim)) if axis is None else (axis,) if isinstance(axis, int) else tuple(axis)
        self.done(node, self.call(fn, self.value(node.inputs[0]), dims, bool(node.options["keepdims"])))

    def _sum(self, index, node):
        self._reduction(node, self.torch.sum)

    def _mean(self, index, node):
        self._reduction(node, self.torch.mean)

    def _max(self, index, node):
        self._reduction(node, self.torch.amax)

    def _reshape(self, index, node):
        shape = tuple(self.walk.shape_with_batch(node, node.shape))  # the option may hold a -1
        self.done(node, self.call(self.torch.reshape, self.value(node.inputs[0]), shape))

    def _transpose(self, index, node):
        self.done(node, self.call(self.torch.permute, self.value(node.inputs[0]), tuple(node.options["axes"])))

    def _getitem(self, index, node):
        key = node.options["index"]
        parts = key if isinstance(key, tuple) else (key,)
        if any(isinstance(k, (np.ndarray, MetaArray, list)) for k in parts):
            raise self.walk.refuse(node, f"an index by arrays ({key!r}) has no torch mapping here")
        self.done(node, self.call(operator.getitem, self.value(node.inputs[0]), key))

    def _cast(self, index, node):
        dtype = getattr(self.torch, np.dtype(node.options["dtype"]).name)
        self.done(node, self.fx.call_method("to", (self.value(node.inputs[0]), dtype)))

    def _cat(self, index, node):
        self.done(node, self.call(self.torch.cat, [self.value(v) for v in node.inputs], int(node.options["axis"])))

    def _stack(self, index, node):
        self.done(node, self.call(self.torch.stack, [self.value(v) for v in node.inputs],
                                  int(node.options["axis"])))

    def _max_pool(self, index, node):
        o = node.options
        fn = getattr(self.F, f"max_pool{len(o['kernel'])}d")
        self.done(node, self.call(fn, self.value(node.inputs[0]), tuple(o["kernel"]), tuple(o["stride"]),
                                  tuple(o["padding"]), tuple(o["dilation"]), bool(o["ceil_mode"])))

    def _avg_pool(self, index, node):
        o = node.options
        d = len(o["kernel"])
        args = [self.value(node.inputs[0]), tuple(o["kernel"]), tuple(o["stride"]), tuple(o["padding"]),
                bool(o["ceil_mode"]), bool(o["count_include_pad"])]
        if d > 1:
            args.append(o["divisor_override"])
        elif o["divisor_override"] is not None:
            raise self.walk.refuse(node, "divisor_override of a 1-D average pool has no torch mapping")
        self.done(node, self.call(getattr(self.F, f"avg_pool{d}d"), *args))

    def _adaptive_avg_pool(self, index, node):
        size = tuple(node.options["output_size"])
        fn = getattr(self.F, f"adaptive_avg_pool{len(size)}d")
        self.done(node, self.call(fn, self.value(node.inputs[0]), size))

    def _adaptive_max_pool(self, index, node):
        size = tuple(node.options["output_size"])
        fn = getattr(self.F, f"adaptive_max_pool{len(size)}d")
        self.done(node, self.call(fn, self.value(node.inputs[0]), size))

    def _global_avg_pool(self, index, node):
        nsp = len(node.shape) - 2
        self.done(node, self.call(self.torch.mean, self.value(node.inputs[0]), tuple(range(2, 2 + nsp)), True))

    def _pad(self, index, node):
        o = node.options
        flat = [p for lo_hi in reversed(o["pads"]) for p in lo_hi]
        mode = _PAD_MODES[o["mode"]]
        args = (self.value(node.inputs[0]), flat, mode) + ((float(o.get("value", 0.0)),) if mode == "constant" else ())
        self.done(node, self.call(self.F.pad, *args))

    def _interpolate(self, index, node):
        o = node.options
        kwargs = {"mode": o["mode"]}
        if o["mode"] not in ("nearest", "nearest-exact"):
            kwargs["mode"] = {1: "linear", 2: "bilinear", 3: "trilinear"}[len(o["size"])]
            kwargs["align_corners"] = bool(o["align_corners"])
        if o["scale_factor"] is not None:
            kwargs["scale_factor"] = tuple(float(s) for s in o["scale_factor"])
        else:
            kwargs["size"] = tuple(o["size"])
        self.done(node, self.fx.call_function(self.F.interpolate, (self.value(node.inputs[0]),), kwargs))

    # ------------------------------------------------------------ the module
    def graph_module(self, class_name: str):
        outputs = [self.value(name) for name in self.graph.outputs]
        self.fx.output(outputs[0] if len(outputs) == 1 else tuple(outputs))
        module = self.torch.fx.GraphModule(self.root, self.fx, class_name=class_name)
        # GraphModule copies only what the graph reads, as persistent buffers: take the whole tree instead,
        # in the model's order, with the constants non-persistent.
        for store in (module._modules, module._parameters, module._buffers):
            store.clear()
        module._non_persistent_buffers_set.clear()
        for name, child in self.root.named_children():
            module.add_module(name, child)
        for name, p in self.root._parameters.items():
            module.register_parameter(name, p)
        for name, b in self.root._buffers.items():
            module.register_buffer(name, b, persistent=name not in self.root._non_persistent_buffers_set)
        return module
