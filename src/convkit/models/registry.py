"""Models by name or spec string: ``build("lenet5")``, ``build("conv3-10 pool2 flatten fc10")``.

``parameter_count`` gives a model's size without building it; ``build``
refuses a model over its ``max_parameters`` budget before allocating a weight.

>>> build("lenet5")[0]
Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1), padding=(2, 2))
>>> build("C3-8 gap fc5", input_size=(3, 16, 16))[-1]
Linear(in_features=8, out_features=5, bias=True)
>>> available()[0]
'lenet5: LeNet-5 (1998 layout, ReLU, max pooling), 61,706 parameters, 28x28 input'
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from functools import partial
from typing import NamedTuple

from .. import nn
from ..ops._args import is_int
from . import budget, resnet, vgg
from .budget import DEFAULT_MAX_PARAMETERS
from .convnet import convnet, convnet_parameters
from .lenet import lenet5, lenet5_parameters
from .spec import from_spec, spec_parameters

__all__ = ["build", "parameter_count", "available"]


class _Entry(NamedTuple):
    factory: Callable[..., nn.Module]   # (num_classes=, in_channels=) -> Module
    parameters: Callable[..., int]      # (num_classes=, in_channels=) -> the factory's parameter count
    description: str
    sizes: str                          # "28" (28 to 31: two pools down to 7 or 5), "32+" (five pools) or "any"
    classes: int                        # the canonical number of outputs (the dataset it was made for)


def _vgg_entries() -> dict[str, _Entry]:
    out = {}
    for depth, cfg in ((11, "A"), (13, "B"), (16, "D"), (19, "E")):
        for suffix, batch_norm, what in (("", False, ""), ("_bn", True, " with batch norm")):
            name = f"vgg{depth}{suffix}"
            out[name] = _Entry(getattr(vgg, name), partial(vgg.vgg_parameters, cfg, batch_norm),
                               f"VGG-{depth}{what} (torchvision layout, 1000 ImageNet classes), inputs >= 32x32",
                               "32+", 1000)
    return out


_MODELS: dict[str, _Entry] = {
    "lenet5": _Entry(lenet5, lenet5_parameters,
                     "LeNet-5 (1998 layout, ReLU, max pooling), 61,706 parameters, 28x28 input", "28", 10),
    "convnet": _Entry(convnet, convnet_parameters,
                      "small CNN: 2 x [conv3 BN ReLU, conv3 BN ReLU, maxpool2], dropout, linear; 28x28 input",
                      "28", 10),
    **_vgg_entries(),
    **{name: _Entry(getattr(resnet, name), partial(resnet.resnet_parameters, name), description, "any", classes)
       for name, description, classes in (
           ("resnet18", "ResNet-18 (torchvision layout, 1000 ImageNet classes), residual blocks, any input size",
            1000),
           ("resnet34", "ResNet-34 (torchvision layout, 1000 ImageNet classes), residual blocks, any input size",
            1000),
           ("resnet20", "CIFAR ResNet-20, 0.27 M parameters, residual blocks; 28x28 or 32x32 input", 10))},
}


def available() -> list[str]:
    """The built-in models, one ``"name: description"`` line each (the name is the text before ``": "``)."""
    return [f"{name}: {e.description}" for name, e in _MODELS.items()]


def build(model: str, input_size: Sequence[int] = (1, 28, 28), num_classes: int | None = None, *,
          max_parameters: int | None = DEFAULT_MAX_PARAMETERS, meta: bool = False) -> nn.Module:
    """A built-in model by name, or a network from a spec string.

    Built-in names (see ``available()``): ``lenet5`` and ``convnet`` take
    28×28 inputs (sizes 28 to 31 give the same flattened size); ``vgg11``,
    ``vgg13``, ``vgg16``, ``vgg19`` and their ``_bn`` variants take inputs of
    at least 32×32 — five 2×2 pools halve each side five times, so 28×28
    would shrink to 0×0; resize (e.g. pad) 28×28 images to 32×32 first. The
    model is built for ``input_size[0]`` channels and ``num_classes`` outputs.

    Anything else is read as a spec string (``convkit.models.spec``), built
    for ``input_size``; its last layer is as written (``num_classes`` is not
    used: write ``fc<num_classes>``).

    The parameters are counted first (``parameter_count``), and a model over
    the budget is refused before any weight is allocated.

    Args:
        model (str): a built-in name or a spec string.
        input_size (tuple of 3 ints): ``(C, H, W)`` of one sample. Default: ``(1, 28, 28)``.
        num_classes (int | None): outputs of a built-in model. Default: its
            canonical count (10 for LeNet-5 and convnet, ImageNet's 1000 for
            the VGGs, as torchvision's; a dataset sets its own).
        max_parameters (int | None): refuse a model with more parameters
            (None: no limit). Default: ``DEFAULT_MAX_PARAMETERS`` of
            ``convkit.models.budget``, 200 M, which every built-in model fits.
        meta (bool): build it without weights (``convkit.nn.meta_init``): for
            ``convkit.trace`` and ``summary``, in milliseconds whatever its size.

    Raises:
        TypeError: ``model`` is not a string, or ``max_parameters`` not an int.
        ValueError: the input size does not fit the built-in model, the
            name is neither a built-in nor a valid spec (the message lists
            the built-in names), or the model has more than ``max_parameters``
            parameters (the message says how to raise the budget).
    """
    with nn.meta_init() if meta else contextlib.nullcontext():
        entry = _entry(model, input_size, num_classes, "build")
        if entry is None:
            return _as_spec(model, "build", lambda: from_spec(model, input_size, max_parameters=max_parameters))
        num_classes = entry.classes if num_classes is None else num_classes
        budget.check("build", f"model {model.strip()!r}",
                     entry.parameters(num_classes=num_classes, in_channels=input_size[0]), max_parameters)
        return entry.factory(num_classes=num_classes, in_channels=input_size[0])


def parameter_count(model: str, input_size: Sequence[int] = (1, 28, 28), num_classes: int | None = None) -> int:
    """The number of parameters of ``build(model, input_size, num_classes)``, counted without building it.

    Equal to ``sum(p.numel() for p in build(...).parameters())``; raises the
    same errors as ``build`` for a bad model, and allocates no weight.

    >>> parameter_count("vgg16", input_size=(3, 224, 224))       # torchvision's count
    138357544
    >>> parameter_count("fc100000 fc100000 fc10")
    10079600010
    """
    entry = _entry(model, input_size, num_classes, "parameter_count")
    if entry is None:
        return _as_spec(model, "parameter_count", lambda: spec_parameters(model, input_size))
    return entry.parameters(num_classes=entry.classes if num_classes is None else num_classes,
                            in_channels=input_size[0])


def _entry(model: str, input_size: Sequence[int], num_classes: int, op: str) -> _Entry | None:
    """The checked arguments' built-in model, or None for a spec string."""
    if not isinstance(model, str):
        raise TypeError(f"{op}: model must be a str (a built-in name or a spec string), "
                        f"got {type(model).__name__} {model!r}")
    if (not isinstance(input_size, Sequence) or len(input_size) != 3
            or not all(is_int(v) and v >= 1 for v in input_size)):
        raise ValueError(f"{op}: input_size must be (C, H, W), three positive ints, got {input_size!r}")
    if num_classes is not None and (not is_int(num_classes) or num_classes < 1):
        raise ValueError(f"{op}: num_classes must be a positive int or None (the model's own), got {num_classes!r}")
    entry = _MODELS.get(model.strip().lower())
    if entry is None:
        return None
    c, h, w = input_size
    if entry.sizes == "28" and not (28 <= h <= 31 and 28 <= w <= 31):
        raise ValueError(f"{op}: {model.strip()} takes 28x28 inputs (its first Linear layer expects the "
                         f"feature map of a 28x28 image), got input_size {tuple(input_size)}; "
                         f"resize the images or describe the network as a spec string")
    if entry.sizes == "32+" and min(h, w) < 32:
        raise ValueError(f"{op}: {model.strip()} needs inputs of at least 32x32 (five 2x2 max pools halve "
                         f"each side five times: {h}x{w} -> {h // 32}x{w // 32}), got input_size "
                         f"{tuple(input_size)}; pad or resize the images to 32x32 or more")
    return entry


def _as_spec(model: str, op: str, read: Callable):
    """``read()`` of ``model`` as a spec; a one-word model that is not a spec token is reported as an unknown name."""
    try:
        return read()
    except ValueError as err:
        if len(model.split()) == 1 and str(err).startswith("spec: unknown token"):
            names = ", ".join(_MODELS)
            raise ValueError(f"{op}: unknown model {model!r}; built-in models are {names}, "
                             f"or give a spec string such as 'conv3-10 pool2 conv3-10 pool2 flatten fc10' "
                             f"(see convkit.models.spec)") from None
        raise
