"""``Module``, ``Parameter`` and the containers, shaped like ``torch.nn``.

A Module registers three kinds of attributes as they are assigned:

* ``Parameter``: a leaf Tensor with ``requires_grad=True`` (weights, biases);
* buffers (``register_buffer``): ndarrays that are state but not trained
  (BatchNorm's ``running_mean``, ``running_var``, ``num_batches_tracked``);
* sub-modules.

``state_dict()`` maps dotted names to ndarrays (parameters and buffers, in
registration order, as PyTorch names them), so a PyTorch ``state_dict``
whose tensors are turned into ndarrays loads with ``load_state_dict``.
"""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Iterator, Mapping

import numpy as np

from .. import autograd
from ..ops._args import float_dtype
from ..ops.meta import MetaArray
from ..tensor import Tensor, get_default_dtype


class RemovableHandle:
    """What ``register_forward_hook`` returns: ``remove()`` (or leaving a ``with`` block) unregisters the hook."""

    _next_id = 0

    def __init__(self, hooks: OrderedDict, hook):
        if not callable(hook):
            raise TypeError(f"register hook: hook must be callable, got {type(hook).__name__}")
        RemovableHandle._next_id += 1
        self.id = RemovableHandle._next_id
        self._hooks = hooks
        hooks[self.id] = hook

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


_meta_init = False  # set by meta_init(): new Parameters and buffers hold MetaArrays


@contextlib.contextmanager
def meta_init():
    """Build modules without weights: inside, Parameters and buffers are meta tensors (shape and dtype only).

    As PyTorch's ``torch.device("meta")``: nothing is allocated or
    initialised, so a 138M-parameter VGG-16 is built in milliseconds. Such
    a model can be traced and summarised (``convkit.trace``,
    ``convkit.analysis.summary``), not run on data.

    >>> import convkit.nn as nn
    >>> with nn.meta_init():
    ...     layer = nn.Linear(100_000, 100_000)
    >>> layer.weight
    Parameter containing:
    tensor(..., size=(100000, 100000), dtype=float32, meta)
    """
    global _meta_init
    previous, _meta_init = _meta_init, True
    try:
        yield
    finally:
        _meta_init = previous


def empty(shape, dtype) -> np.ndarray | MetaArray:
    """A new layer's uninitialised weight array: ``np.empty``, or a ``MetaArray`` under ``meta_init``."""
    return MetaArray(shape, dtype) if _meta_init else np.empty(shape, dtype)


class Parameter(Tensor):
    """A Tensor that a Module owns and an optimizer updates (``requires_grad=True``)."""

    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True):
        if isinstance(data, Tensor):
            data = data.data
        if _meta_init or isinstance(data, MetaArray):
            data = data if isinstance(data, MetaArray) else np.asarray(data)
            dtype = data.dtype if data.dtype.kind == "f" else get_default_dtype()
            super().__init__(0.0, requires_grad=requires_grad)
            self.data = MetaArray(data.shape, dtype)
            return
        arr = np.asarray(data)
        if arr.dtype.kind != "f":
            arr = arr.astype(get_default_dtype())
        super().__init__(arr, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of every layer and model.

    Subclasses assign Parameters, buffers and sub-modules in ``__init__`` and
    define ``forward``; calling the module calls ``forward``.
    """

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "training", True)

    # --------------------------------------------------------- registration
    def __setattr__(self, name: str, value) -> None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        if name in self._parameters and not isinstance(value, Parameter):
            if value is not None:
                raise TypeError(
                    f"{type(self).__name__}: cannot assign {type(value).__name__} as parameter {name!r} "
                    f"(a Parameter or None expected)"
                )
            self._parameters[name] = None
            return
        for d in (self._parameters, self._buffers, self._modules):
            d.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        elif name in self.__dict__.get("_buffer_names", ()):
            self._buffers[name] = value
        else:
            object.__setattr__(self, name, value)
            return
        self.__dict__.pop(name, None)

    def __getattr__(self, name: str):
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for store in (self._parameters, self._buffers, self._modules):
            if name in store:
                del store[name]
                return
        object.__delattr__(self, name)

    def register_buffer(self, name: str, value: np.ndarray | None) -> None:
        """Register ``value`` (an ndarray, or None) as non-trainable state saved in ``state_dict``."""
        if value is not None and not isinstance(value, (np.ndarray, MetaArray)):
            raise TypeError(f"register_buffer: {name!r} must be an ndarray or None, got {type(value).__name__}")
        if _meta_init and value is not None:
            value = MetaArray(value.shape, value.dtype)
        self.__dict__.setdefault("_buffer_names", set()).add(name)
        self.__dict__.pop(name, None)
        self._buffers[name] = value

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (or None, for an absent optional parameter such as ``bias=False``)."""
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter: {name!r} must be a Parameter or None, got {type(param).__name__}")
        self.__dict__.pop(name, None)
        self._parameters[name] = param

    def add_module(self, name: str, module: Module | None) -> None:
        self._modules[name] = module

    # ------------------------------------------------------------ traversal
    def children(self) -> Iterator[Module]:
        return (m for m in self._modules.values() if m is not None)

    def named_modules(self, prefix: str = "", remove_duplicate: bool = True,
                      _seen: set[int] | None = None) -> Iterator[tuple[str, Module]]:
        """This module and every sub-module, depth first.

        A module reachable by several names is listed once, under its first
        name, unless ``remove_duplicate=False`` (what ``state_dict`` uses, so
        its keys are PyTorch's).
        """
        seen = set() if _seen is None else _seen
        if remove_duplicate:
            if id(self) in seen:
                return
            seen.add(id(self))
        yield prefix, self
        for name, m in self._modules.items():
            if m is not None:
                yield from m.named_modules(f"{prefix}.{name}" if prefix else name, remove_duplicate, seen)

    def modules(self) -> Iterator[Module]:
        return (m for _, m in self.named_modules())

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        seen: set[int] = set()
        for mod_name, m in self.named_modules(prefix):
            for name, p in m._parameters.items():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self) -> Iterator[Parameter]:
        return (p for _, p in self.named_parameters())

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for mod_name, m in self.named_modules(prefix):
            for name, b in m._buffers.items():
                if b is not None:
                    yield (f"{mod_name}.{name}" if mod_name else name), b

    def buffers(self) -> Iterator[np.ndarray]:
        return (b for _, b in self.named_buffers())

    # ---------------------------------------------------------------- modes
    def train(self, mode: bool = True) -> Module:
        """Set training mode (BatchNorm uses batch statistics, Dropout drops) on this module and all below."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Set inference mode: BatchNorm uses running statistics, Dropout is the identity."""
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear parameter gradients: set them to None (default) or fill them with zeros in place."""
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad[...] = 0

    def requires_grad_(self, flag: bool = True) -> Module:
        for p in self.parameters():
            p.requires_grad_(flag)
        return self

    def apply(self, fn) -> Module:
        """Call ``fn(module)`` on every sub-module, children first, then on this one (e.g. a weight init)."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ---------------------------------------------------------------- dtype
    def to(self, dtype) -> Module:
        """Convert every parameter, its gradient and every float buffer to the float ``dtype``, in place.

        Integer buffers (``num_batches_tracked``) keep their dtype, as in
        PyTorch. Returns the module.
        """
        target = float_dtype(dtype, f"{type(self).__name__}.to: dtype")
        for p in self.parameters():
            p.data = p.data.astype(target, copy=False)
            if p.grad is not None:
                p.grad = np.asarray(p.grad).astype(target, copy=False)
        for m in self.modules():
            for name, b in m._buffers.items():
                if b is not None and b.dtype.kind == "f":
                    m._buffers[name] = b.astype(target, copy=False)
        return self

    def float(self) -> Module:
        """``to(np.float32)``."""
        return self.to(np.float32)

    def double(self) -> Module:
        """``to(np.float64)``."""
        return self.to(np.float64)

    # ---------------------------------------------------------------- hooks
    def register_forward_pre_hook(self, hook) -> RemovableHandle:
        """Call ``hook(module, args)`` before each ``forward``; a value it returns replaces ``args``
        (a tuple, or one value for a single argument). Returns a handle whose ``remove()`` unregisters it."""
        return RemovableHandle(self._forward_pre_hooks, hook)

    def register_forward_hook(self, hook) -> RemovableHandle:
        """Call ``hook(module, args, output)`` after each ``forward``; a value it returns replaces the output.
        Returns a handle whose ``remove()`` unregisters it."""
        return RemovableHandle(self._forward_hooks, hook)

    def has_hooks(self) -> bool:
        """Whether a forward or pre-forward hook is registered on this module."""
        return bool(self._forward_pre_hooks or self._forward_hooks)

    # ----------------------------------------------------------- state dict
    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """Parameters and buffers by dotted name, as ndarray copies (PyTorch's names and order)."""
        out: OrderedDict[str, np.ndarray] = OrderedDict()
        for mod_name, m in self.named_modules(remove_duplicate=False):
            pre = f"{mod_name}." if mod_name else ""
            for name, p in m._parameters.items():
                if p is not None:
                    out[pre + name] = p.data.copy()
            for name, b in m._buffers.items():
                if b is not None:
                    out[pre + name] = np.array(b, copy=True)
        return out

    def load_state_dict(self, state_dict, strict: bool = True) -> tuple[list[str], list[str]]:
        """Copy values from ``state_dict`` (name -> array-like) into parameters and buffers.

        Values are copied in place with the target's dtype. Every value is
        checked before anything is copied: it must be an array (or convert
        to one) of the target's shape holding real numbers (bool, int or
        float: not complex, strings or objects); with ``strict``
        every key must match too. Otherwise ``ValueError`` lists every
        difference and the module is left untouched (as in PyTorch, a shape
        mismatch is an error even when not ``strict``).
        Returns ``(missing_keys, unexpected_keys)``.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"load_state_dict: state_dict must be a mapping of names to arrays, "
                            f"got {type(state_dict).__name__}")
        targets: dict[str, tuple[Module, str, str]] = {}
        for mod_name, m in self.named_modules(remove_duplicate=False):
            pre = f"{mod_name}." if mod_name else ""
            for name, p in m._parameters.items():
                if p is not None:
                    targets[pre + name] = (m, name, "param")
            for name, b in m._buffers.items():
                if b is not None:
                    targets[pre + name] = (m, name, "buffer")
        given, unreadable = {}, []
        for k, v in state_dict.items():
            try:
                given[k] = _to_numpy(v)
            except (ValueError, TypeError) as exc:
                unreadable.append(f"{k}: {type(v).__name__} ({exc})")
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict if k not in targets]
        mismatched, uncastable = [], []
        for k, (m, name, kind) in targets.items():
            if k not in given:
                continue
            current = np.asarray(m._parameters[name].data if kind == "param" else m._buffers[name])
            if current.shape != given[k].shape:
                mismatched.append(f"{k}: checkpoint {given[k].shape} vs model {current.shape}")
            if given[k].dtype.kind not in "biuf":
                uncastable.append(f"{k}: checkpoint {given[k].dtype} vs model {current.dtype}")
        if unreadable or mismatched or uncastable or (strict and (missing or unexpected)):
            parts = []
            if missing and strict:
                parts.append(f"missing keys {missing}")
            if unexpected and strict:
                parts.append(f"unexpected keys {unexpected}")
            if unreadable:
                parts.append("not arrays: " + "; ".join(unreadable))
            if mismatched:
                parts.append("shape mismatch: " + "; ".join(mismatched))
            if uncastable:
                parts.append("dtype mismatch: " + "; ".join(uncastable))
            raise ValueError(f"load_state_dict: {type(self).__name__}: " + ", ".join(parts))
        for k, (m, name, kind) in targets.items():
            if k not in given:
                continue
            if kind == "param":
                dst = m._parameters[name].data
            else:
                dst = m._buffers[name]
            dst[...] = given[k].astype(dst.dtype, copy=False)
        return missing, unexpected

    # ---------------------------------------------------------------- call
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        if autograd.recorder is not None:  # convkit.trace is recording: it sees the call begin and end
            return autograd.recorder.module_call(self, self._call, args, kwargs)
        return self._call(*args, **kwargs)

    def _call(self, *args, **kwargs):
        """``forward`` between the pre-hooks and the hooks."""
        if not self.has_hooks():  # every layer call of every step: no copies of empty hook tables
            return self.forward(*args, **kwargs)
        for hook in list(self._forward_pre_hooks.values()):  # a hook may remove itself
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        output = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, output)
            if result is not None:
                output = result
        return output

    def extra_repr(self) -> str:
        """One line of the module's settings, shown inside its ``repr``."""
        return ""

    def __repr__(self) -> str:
        lines = []
        for name, m in self._modules.items():
            child = repr(m).replace("\n", "\n  ")
            lines.append(f"({name}): {child}")
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"


def _to_numpy(v) -> np.ndarray:
    """An ndarray from an ndarray, a convkit Tensor, or anything with ``.numpy()`` (a torch tensor)."""
    if isinstance(v, np.ndarray):
        return v
    if isinstance(v, Tensor):
        return v.data
    if hasattr(v, "detach") and hasattr(v, "numpy"):
        return v.detach().cpu().numpy()
    return np.asarray(v)


def ends_in_relu(forward):
    """Mark a layer's ``forward(self, input, *, relu_slope=None)`` as able to end in a (leaky) ReLU itself."""
    forward.ends_in_relu = True
    return forward


def rectifier(forward):
    """Mark an activation's ``forward`` as a (leaky) ReLU whose ``relu_slope()`` a layer can apply itself."""
    forward.rectifier = True
    return forward


def fused_relu_slope(layer: Module, activation: Module) -> float | None:
    """The slope ``layer`` is called with to compute ``activation(layer(x))`` in one pass, or None.

    Both classes must mark their ``forward`` (``ends_in_relu``: convolutions,
    batch norm; ``rectifier``: ReLU, leaky ReLU with a slope >= 0); a
    subclass that overrides ``forward`` is not marked, so it runs as written,
    and a module with hooks is called on its own, so its hooks see its call
    (as is every module while ``convkit.trace`` records).
    """
    if layer.has_hooks() or activation.has_hooks() or autograd.recorder is not None:
        return None  # hooks and convkit.trace see each module's own call
    if getattr(type(layer).forward, "ends_in_relu", False) and getattr(type(activation).forward, "rectifier", False):
        return activation.relu_slope()
    return None


class Sequential(Module):
    """Modules applied one after another; children are named ``"0"``, ``"1"``, ...

    Also accepts an ``OrderedDict`` of name -> module, as PyTorch does.

    A convolution or batch norm followed by ``ReLU`` / ``LeakyReLU``
    (slope >= 0) runs as one call, ``layer(x, relu_slope=a)``, which adds
    the bias or affine shift and rectifies in the same pass
    (``fused_relu_slope``); the values and gradients are those of the two
    modules called one after the other, bit for bit.
    """

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, m in modules[0].items():
                self.add_module(name, m)
        else:
            for i, m in enumerate(modules):
                if not isinstance(m, Module):
                    raise TypeError(f"Sequential: argument {i} must be a Module, got {type(m).__name__}")
                self.add_module(str(i), m)

    def forward(self, x):
        modules = list(self._modules.values())
        i = 0
        while i < len(modules):
            slope = fused_relu_slope(modules[i], modules[i + 1]) if i + 1 < len(modules) else None
            if slope is None:
                x = modules[i](x)
                i += 1
            else:
                x = modules[i](x, relu_slope=slope)
                i += 2
        return x

    def __getitem__(self, i):
        if isinstance(i, slice):  # keeps the children's names, as PyTorch does
            return Sequential(OrderedDict(list(self._modules.items())[i]))
        return list(self._modules.values())[i]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module: Module) -> Sequential:
        self.add_module(str(len(self._modules)), module)
        return self


class ModuleList(Module):
    """A list of sub-modules, registered so their parameters are found."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self._modules)), module)
        return self

    def __getitem__(self, i):
        mods = list(self._modules.values())
        return ModuleList(mods[i]) if isinstance(i, slice) else mods[i]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())
