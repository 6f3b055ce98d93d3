"""``from_torch``: a torch module tree as the convkit modules that compute the same, with its weights.

Each torch module becomes, at the same qualified name (so the state_dict
keys are the same and a torch state_dict loads unchanged):

* a supported layer (``LAYERS``: convolutions, batch/instance/layer/group
  norm, linear, activations, dropout, pooling, flatten, upsampling, ...)
  of exactly that class: the convkit layer built with the same arguments;
* a ``Sequential`` or ``ModuleList``: the convkit container of the
  converted children;
* any other module (a custom ``forward``: a residual block, a whole
  ResNet): ``TracedModule``, which runs the graph ``torch.fx`` records of
  that ``forward`` with convkit functions (``FUNCTIONS``, ``METHODS``),
  calling the converted children; its own parameters and buffers are kept.

The weights are copied last with ``load_state_dict`` (strict: every key),
in each parameter's own dtype (float32 or float64), and every module keeps
its ``training`` flag. A layer or function without a convkit counterpart is
a ValueError naming it and where it is.
"""

from __future__ import annotations

import operator
from typing import NamedTuple

import numpy as np

from .. import functional as F
from .. import nn
from ..functional.joining import cat, stack
from ..tensor import Tensor
from .extras import require

__all__ = ["from_torch", "TracedModule"]


def from_torch(module) -> nn.Module:
    """The convkit module that computes what the torch ``module`` computes, with its parameters and buffers.

    Args:
        module: a ``torch.nn.Module`` made of supported layers, containers, and
            modules whose ``forward`` ``torch.fx.symbolic_trace`` can record.
    Returns a ``convkit.nn.Module`` whose ``state_dict()`` has the same keys
    (and values) as ``module.state_dict()``.
    Raises ValueError naming an unsupported layer, function or method.
    """
    torch = require("torch", "from_torch")
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"from_torch: module must be a torch.nn.Module, got {type(module).__name__}")
    converted = _convert(module, "", torch)
    state = {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}
    converted.load_state_dict(state)
    ours = {name: m for name, m in converted.named_modules(remove_duplicate=False)}
    for name, m in module.named_modules(remove_duplicate=False):
        object.__setattr__(ours[name], "training", m.training)
    return converted


# ------------------------------------------------------------------ layers
def _dtype(module, where: str):
    """The numpy dtype of ``module``'s parameters (float32 or float64), None if it has none."""
    dtypes = {str(p.dtype).removeprefix("torch.") for p in module.parameters(recurse=False)}
    dtypes |= {str(b.dtype).removeprefix("torch.") for b in module.buffers(recurse=False) if b.is_floating_point()}
    if not dtypes:
        return None
    if len(dtypes) > 1 or not dtypes <= {"float32", "float64"}:
        raise ValueError(f"from_torch: {where} ({type(module).__name__}) holds {sorted(dtypes)} tensors; convkit "
                         f"takes float32 or float64, one per layer (call .float() or .double() first)")
    return np.dtype(dtypes.pop())


def _conv(cls):
    def build(m, dt):
        return cls(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation, m.groups,
                   m.bias is not None, m.padding_mode, dtype=dt)
    return build


def _conv_transpose(cls):
    def build(m, dt):
        return cls(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.output_padding, m.groups,
                   m.bias is not None, m.dilation, m.padding_mode, dtype=dt)
    return build


def _norm(cls):
    def build(m, dt):
        return cls(m.num_features, m.eps, m.momentum, m.affine, m.track_running_stats, dtype=dt)
    return build


def _max_pool(cls):
    def build(m, dt):
        return cls(m.kernel_size, m.stride, m.padding, m.dilation, m.return_indices, m.ceil_mode)
    return build


def _avg_pool(cls):
    def build(m, dt):
        if cls is nn.AvgPool1d:
            return cls(m.kernel_size, m.stride, m.padding, m.ceil_mode, m.count_include_pad)
        return cls(m.kernel_size, m.stride, m.padding, m.ceil_mode, m.count_include_pad, m.divisor_override)
    return build


def _softmax(cls):
    def build(m, dt):
        if m.dim is None:
            raise ValueError(f"{type(m).__name__} without dim: give dim= (PyTorch's implicit choice is deprecated)")
        return cls(m.dim)
    return build


def _layers(torch) -> dict:
    """torch layer class -> ``build(torch_module, dtype)`` of its convkit counterpart."""
    t = torch.nn
    table = {
        t.Linear: lambda m, dt: nn.Linear(m.in_features, m.out_features, m.bias is not None, dtype=dt),
        t.LayerNorm: lambda m, dt: nn.LayerNorm(m.normalized_shape, m.eps, m.elementwise_affine,
                                                getattr(m, "bias", None) is not None, dtype=dt),
        t.GroupNorm: lambda m, dt: nn.GroupNorm(m.num_groups, m.num_channels, m.eps, m.affine, dtype=dt),
        t.ReLU: lambda m, dt: nn.ReLU(),
        t.LeakyReLU: lambda m, dt: nn.LeakyReLU(m.negative_slope),
        t.Sigmoid: lambda m, dt: nn.Sigmoid(),
        t.Tanh: lambda m, dt: nn.Tanh(),
        t.Softmax: _softmax(nn.Softmax),
        t.LogSoftmax: _softmax(nn.LogSoftmax),
        t.Dropout: lambda m, dt: nn.Dropout(m.p),
        t.Dropout2d: lambda m, dt: nn.Dropout2d(m.p),
        t.Flatten: lambda m, dt: nn.Flatten(m.start_dim, m.end_dim),
        t.Identity: lambda m, dt: nn.Identity(),
        t.Upsample: lambda m, dt: nn.Upsample(m.size, m.scale_factor, m.mode, m.align_corners,
                                              m.recompute_scale_factor),
        t.Unfold: lambda m, dt: nn.Unfold(m.kernel_size, m.dilation, m.padding, m.stride),
        t.Fold: lambda m, dt: nn.Fold(m.output_size, m.kernel_size, m.dilation, m.padding, m.stride),
    }
    for d in (1, 2, 3):
        table[getattr(t, f"Conv{d}d")] = _conv(getattr(nn, f"Conv{d}d"))
        table[getattr(t, f"ConvTranspose{d}d")] = _conv_transpose(getattr(nn, f"ConvTranspose{d}d"))
        table[getattr(t, f"BatchNorm{d}d")] = _norm(getattr(nn, f"BatchNorm{d}d"))
        table[getattr(t, f"InstanceNorm{d}d")] = _norm(getattr(nn, f"InstanceNorm{d}d"))
        table[getattr(t, f"MaxPool{d}d")] = _max_pool(getattr(nn, f"MaxPool{d}d"))
        table[getattr(t, f"AvgPool{d}d")] = _avg_pool(getattr(nn, f"AvgPool{d}d"))
        table[getattr(t, f"AdaptiveAvgPool{d}d")] = (lambda cls: lambda m, dt: cls(m.output_size))(
            getattr(nn, f"AdaptiveAvgPool{d}d"))
        table[getattr(t, f"AdaptiveMaxPool{d}d")] = (lambda cls: lambda m, dt: cls(m.output_size, m.return_indices))(
            getattr(nn, f"AdaptiveMaxPool{d}d"))
        table[getattr(t, f"MaxUnpool{d}d")] = (lambda cls: lambda m, dt: cls(m.kernel_size, m.stride, m.padding))(
            getattr(nn, f"MaxUnpool{d}d"))
    return table


def _convert(module, where: str, torch) -> nn.Module:
    """``module`` (at qualified name ``where``) as a convkit module, weights not yet copied."""
    label = where or "the root module"
    layers = _layers(torch)
    kind = type(module)
    if kind in layers:
        try:
            return layers[kind](module, _dtype(module, label))
        except (ValueError, TypeError) as err:
            raise ValueError(f"from_torch: {label} ({kind.__name__}): {err}") from None
    children = [(name, _convert(child, f"{where}.{name}" if where else name, torch))
                for name, child in module.named_children()]
    if kind is torch.nn.Sequential:
        from collections import OrderedDict

        return nn.Sequential(OrderedDict(children))
    if kind is torch.nn.ModuleList:
        return nn.ModuleList(m for _, m in children)
    if kind.__module__.startswith("torch.nn."):
        raise ValueError(f"from_torch: {label} is a torch.nn.{kind.__name__}, which convkit has no layer for; "
                         f"supported: {', '.join(sorted(c.__name__ for c in layers))}, Sequential, ModuleList "
                         f"and modules with their own forward")
    return TracedModule.build(module, where, dict(children), torch)


# ------------------------------------------------------------------ custom forwards
class Ref(NamedTuple):
    """An argument of a ``Step``: the value of the step (or input) of that name."""

    name: str


class Step(NamedTuple):
    """One call of a recorded forward: ``kind`` "call_module" (``target`` a qualified submodule name),
    "get_attr" (a qualified attribute name), "call_function" (a convkit callable) or "call_method"
    (a method name of ``METHODS``), with ``args``/``kwargs`` in which ``Ref``s stand for earlier values."""

    name: str
    kind: str
    target: object
    args: tuple
    kwargs: dict


class TracedModule(nn.Module):
    """The ``forward`` of a torch module with a custom forward, run with convkit functions.

    ``inputs`` name the forward's arguments, ``steps`` are the calls
    ``torch.fx`` recorded (``Step``), ``output`` is what forward returns
    (``Ref``s inside a value). Children and the module's own parameters and
    buffers sit under the torch names.
    """

    def __init__(self, origin: str, inputs: tuple[str, ...], defaults: dict, steps: tuple[Step, ...], output):
        super().__init__()
        self.origin = origin
        self.inputs = inputs
        self.defaults = defaults
        self.steps = steps
        self.output = output

    @classmethod
    def build(cls, module, where: str, children: dict, torch) -> TracedModule:
        label = f"{where or 'the root module'} ({type(module).__name__})"

        class EveryChildIsALeaf(torch.fx.Tracer):  # children convert on their own: keep their calls whole
            def is_leaf_module(self, m, qualname):
                return True

        try:
            graph = EveryChildIsALeaf().trace(module)
        except Exception as err:  # whatever the user's forward raised under symbolic tracing
            raise ValueError(f"from_torch: {label}: torch.fx cannot trace its forward ({type(err).__name__}: "
                             f"{err})") from None
        functions, inputs, defaults, steps, output = _functions(torch), [], {}, [], None
        for node in graph.nodes:
            args, kwargs = _refs(node.args), _refs(node.kwargs)
            if node.op == "placeholder":
                name = node.target.lstrip("*")
                inputs.append(name)
                if node.args:
                    defaults[name] = node.args[0]
            elif node.op == "output":
                output = args[0]
            elif node.op in ("call_module", "get_attr"):
                steps.append(Step(node.name, node.op, node.target, args, kwargs))
            elif node.op == "call_function":
                if node.target not in functions:
                    raise ValueError(f"from_torch: {label}: forward calls {_qualname(node.target)}, which convkit "
                                     f"does not map (node {node.name})")
                steps.append(Step(node.name, node.op, functions[node.target], args, kwargs))
            else:
                if node.target not in METHODS:
                    raise ValueError(f"from_torch: {label}: forward calls Tensor.{node.target}(), which convkit "
                                     f"does not map (node {node.name}); supported: {', '.join(sorted(METHODS))}")
                steps.append(Step(node.name, node.op, node.target, args, kwargs))
        traced = cls(type(module).__qualname__, tuple(inputs), defaults, tuple(steps), output)
        for name, child in children.items():
            setattr(traced, name, child)
        for name, p in module.named_parameters(recurse=False):
            setattr(traced, name, nn.Parameter(p.detach().cpu().numpy().copy()))
        for name, b in module.named_buffers(recurse=False):
            traced.register_buffer(name, b.detach().cpu().numpy().copy())
        return traced

    def forward(self, *args, **kwargs):
        if len(args) > len(self.inputs):
            raise TypeError(f"{self.origin}: forward takes {len(self.inputs)} arguments, got {len(args)}")
        env = dict(self.defaults)
        env.update(zip(self.inputs, args))
        env.update(kwargs)
        for step in self.steps:
            args, kwargs = _resolve(step.args, env), _resolve(step.kwargs, env)
            if step.kind == "call_module":
                env[step.name] = self._attribute(step.target)(*args, **kwargs)
            elif step.kind == "get_attr":
                env[step.name] = self._attribute(step.target)
            elif step.kind == "call_function":
                env[step.name] = step.target(*args, **kwargs)
            else:
                env[step.name] = METHODS[step.target](*args, **kwargs)
        return _resolve(self.output, env)

    def _attribute(self, qualified: str):
        obj = self
        for part in qualified.split("."):
            obj = getattr(obj, part)
        return obj

    def extra_repr(self) -> str:
        return f"traced from {self.origin}: {len(self.steps)} steps"


def _refs(value):
    """fx node arguments with every Node replaced by its ``Ref``."""
    if hasattr(value, "op") and hasattr(value, "graph"):  # a torch.fx.Node
        return Ref(value.name)
    if isinstance(value, (tuple, list)):
        return type(value)(_refs(v) for v in value)
    if isinstance(value, dict):
        return {k: _refs(v) for k, v in value.items()}
    if isinstance(value, slice):
        return slice(_refs(value.start), _refs(value.stop), _refs(value.step))
    return value


def _resolve(value, env: dict):
    """``value`` with every ``Ref`` replaced by its value in ``env``."""
    if isinstance(value, Ref):
        return env[value.name]
    if isinstance(value, (tuple, list)):
        return type(value)(_resolve(v, env) for v in value)
    if isinstance(value, dict):
        return {k: _resolve(v, env) for k, v in value.items()}
    if isinstance(value, slice):
        return slice(_resolve(value.start, env), _resolve(value.stop, env), _resolve(value.step, env))
    return value


def _qualname(fn) -> str:
    return f"{getattr(fn, '__module__', None) or ''}.{getattr(fn, '__qualname__', repr(fn))}".lstrip(".")


# ------------------------------------------------------------------ functions and methods
def _tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(np.asarray(x))


def _no(option: str, value, default, fn: str):
    if value != default:
        raise ValueError(f"{fn}: {option}={value!r} has no convkit counterpart (only {default!r})")


def _add(input, other, *, alpha=1):
    _no("alpha", alpha, 1, "torch.add")
    return input + other


def _sub(input, other, *, alpha=1):
    _no("alpha", alpha, 1, "torch.sub")
    return input - other


def _div(input, other, *, rounding_mode=None):
    _no("rounding_mode", rounding_mode, None, "torch.div")
    return input / other


def _activation(fn):
    def call(input, inplace=False):
        return fn(input)
    call.__name__ = fn.__name__
    return call


def _leaky_relu(input, negative_slope=0.01, inplace=False):
    return F.leaky_relu(input, negative_slope)


def _softmax_of(fn):
    def call(input, dim=None, _stacklevel=3, dtype=None):
        if dim is None:
            raise ValueError(f"{fn.__name__} without dim: give dim=")
        return fn(input, dim, dtype)
    call.__name__ = fn.__name__
    return call


def _dropout_of(fn):
    def call(input, p=0.5, training=True, inplace=False):
        return fn(input, p, training)
    return call


def _max_pool_of(fn):
    def call(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
        return fn(input, kernel_size, stride if stride else None, padding, dilation, ceil_mode, return_indices)
    return call


def _avg_pool_of(fn, divisor: bool):
    def call(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
             divisor_override=None):
        args = (input, kernel_size, stride if stride else None, padding, ceil_mode, count_include_pad)
        if divisor:
            return fn(*args, divisor_override)
        _no("divisor_override", divisor_override, None, fn.__name__)
        return fn(*args)
    return call


def _batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1, eps=1e-5):
    return F.batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def _layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    return F.layer_norm(input, normalized_shape, weight, bias, eps)


def _pad(input, pad, mode="constant", value=None):
    return F.pad(input, pad, mode, value)


def _interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None, antialias=False):
    _no("antialias", antialias, False, "interpolate")
    return F.interpolate(input, size, scale_factor, mode, align_corners,
                         recompute_scale_factor=recompute_scale_factor)


def _joining(fn):
    def call(tensors, dim=0):
        return fn(list(tensors), dim)
    call.__name__ = fn.__name__
    return call


def _reduction(method: str):
    def call(input, dim=None, keepdim=False, **options):
        if options.get("dtype") is not None:
            raise ValueError(f"{method}: dtype= has no convkit counterpart")
        return getattr(_tensor(input), method)(dim, keepdim)
    return call


def _elementwise(method: str):
    def call(input):
        return getattr(_tensor(input), method)()
    return call


def _shape(method: str):
    def call(input, *shape):
        return _tensor(input).reshape(*shape)
    call.__name__ = method
    return call


def _functions(torch) -> dict:
    """torch function (as ``torch.fx`` records it) -> the convkit callable with the same signature."""
    tF = torch.nn.functional
    table = {
        operator.add: operator.add, operator.sub: operator.sub, operator.mul: operator.mul,
        operator.truediv: operator.truediv, operator.neg: operator.neg, operator.matmul: operator.matmul,
        operator.pow: operator.pow, operator.getitem: operator.getitem,
        torch.add: _add, torch.sub: _sub, torch.mul: operator.mul, torch.div: _div, torch.matmul: operator.matmul,
        torch.neg: operator.neg,
        torch.cat: _joining(cat), torch.concat: _joining(cat), torch.stack: _joining(stack),
        torch.flatten: F.flatten, torch.reshape: lambda input, shape: _tensor(input).reshape(shape),
        torch.relu: F.relu, torch.sigmoid: F.sigmoid, torch.tanh: F.tanh,
        torch.exp: _elementwise("exp"), torch.log: _elementwise("log"), torch.sqrt: _elementwise("sqrt"),
        torch.abs: _elementwise("abs"),
        torch.sum: _reduction("sum"), torch.mean: _reduction("mean"),
        torch.softmax: _softmax_of(F.softmax), torch.log_softmax: _softmax_of(F.log_softmax),
        tF.relu: _activation(F.relu), tF.leaky_relu: _leaky_relu, tF.sigmoid: _activation(F.sigmoid),
        tF.tanh: _activation(F.tanh), tF.softmax: _softmax_of(F.softmax), tF.log_softmax: _softmax_of(F.log_softmax),
        tF.dropout: _dropout_of(F.dropout), tF.dropout2d: _dropout_of(F.dropout2d),
        tF.linear: F.linear, tF.batch_norm: _batch_norm, tF.layer_norm: _layer_norm, tF.group_norm: F.group_norm,
        tF.pad: _pad, tF.interpolate: _interpolate,
    }
    for d in (1, 2, 3):
        table[getattr(tF, f"conv{d}d")] = getattr(F, f"conv{d}d")
        table[getattr(tF, f"conv_transpose{d}d")] = getattr(F, f"conv_transpose{d}d")
        table[getattr(tF, f"adaptive_avg_pool{d}d")] = getattr(F, f"adaptive_avg_pool{d}d")
        table[getattr(tF, f"avg_pool{d}d")] = _avg_pool_of(getattr(F, f"avg_pool{d}d"), d > 1)
        max_pool = _max_pool_of(getattr(F, f"max_pool{d}d"))
        for name in (f"max_pool{d}d", f"_max_pool{d}d", f"max_pool{d}d_with_indices"):  # boolean_dispatch's parts
            if hasattr(tF, name):
                table[getattr(tF, name)] = max_pool
    return table


def _size(input, dim=None):
    return _tensor(input).size(dim)


def _contiguous(input, *args, **kwargs):
    return input


METHODS = {
    "add": _add, "sub": _sub, "mul": operator.mul, "div": _div, "matmul": operator.matmul,
    "neg": operator.neg, "pow": operator.pow,
    "relu": F.relu, "sigmoid": F.sigmoid, "tanh": F.tanh,
    "exp": _elementwise("exp"), "log": _elementwise("log"), "sqrt": _elementwise("sqrt"), "abs": _elementwise("abs"),
    "sum": _reduction("sum"), "mean": _reduction("mean"),
    "softmax": _softmax_of(F.softmax), "log_softmax": _softmax_of(F.log_softmax),
    "flatten": F.flatten, "view": _shape("view"), "reshape": _shape("reshape"),
    "permute": lambda input, *axes: _tensor(input).permute(*axes),
    "transpose": lambda input, dim0, dim1: _tensor(input).transpose(dim0, dim1),
    "size": _size, "dim": lambda input: _tensor(input).ndim, "contiguous": _contiguous,
}
