"""Networks from spec strings: ``from_spec("conv3-10 pool2 conv3-10 pool2 flatten fc3")``.

A spec is a list of tokens separated by whitespace, read left to right;
each token adds one layer (except ``id``, see below). Tokens are
case-insensitive. The running shape of one sample — ``(C, H, W)``, or
``(F,)`` after ``flatten``, ``gap`` or ``fc`` — is tracked while parsing, so
channel counts and ``in_features`` are inferred.

Convolution (``Conv2d``)::

    conv<k>[-<channels>][s<stride>][p<pad>][d<dilation>]      e.g. conv3-32s2p1d2
    C<k>[-<channels>][s<stride>][p<pad>][d<dilation>]         e.g. C3-64, C7s2, C3p1

``k`` is the square kernel size; ``<pad>`` is an int, ``same`` or ``valid``
(``psame`` needs stride 1, as in PyTorch); the ``s``/``p``/``d`` options may
come in any order, each at most once. Defaults: channels = the input's
channel count (``C5`` keeps the number of channels), stride 1, padding 0
(``valid``), dilation 1, with bias.

Pooling::

    pool<k>, maxpool<k>, P<k>  [s<stride>][p<pad>]    MaxPool2d(k, stride, pad)   e.g. pool2, maxpool3s2p1
    avgpool<k>, A<k>           [s<stride>][p<pad>]    AvgPool2d(k, stride, pad)   e.g. A2
    gap                                               GlobalAvgPool2d(flatten=True): (C, H, W) -> (C,)

The stride defaults to the kernel size, the padding to 0.

Other layers::

    bn              BatchNorm2d on (C, H, W), BatchNorm1d on (F,)
    relu, tanh, sigmoid, lrelu[<slope>]     ReLU, Tanh, Sigmoid, LeakyReLU (slope 0.01 by default)
    dropout[<p>]    Dropout(p), p = 0.5 by default; e.g. dropout0.25
    flatten         Flatten: (C, H, W) -> (C*H*W,)
    fc<N>           Linear(in_features, N), in_features = the running size;
                    on a (C, H, W) input a Flatten is inserted first
    id              no layer: marks "no activation here" (see below)

Implicit ReLU — the one rule to remember: every ``conv`` and ``fc`` except
the last one in the spec is followed by a ``ReLU``, placed after the
``bn`` that directly follows it, if any. It is not inserted when the
layer (or its ``bn``) is directly followed by an explicit activation
(``relu``, ``lrelu``, ``tanh``, ``sigmoid``) or by ``id``. The last ``conv``
or ``fc`` is the output and gets no activation unless one is written.
So ``"conv3-10 pool2 conv3-10 pool2 flatten fc3"`` is::

    Conv2d(1, 10, 3), ReLU, MaxPool2d(2), Conv2d(10, 10, 3), ReLU, MaxPool2d(2), Flatten, Linear(250, 3)

and ``"conv3-16 bn tanh fc10"`` is ``Conv2d, BatchNorm2d, Tanh, Flatten, Linear``.

Errors are ``ValueError`` messages that quote the spec and point at the
token with a caret line: an unknown token, an invalid value
(``dropout1.5``), a number of more than 18 digits, an option given twice,
or an input too small for a layer (naming the shape the layer receives).

The spec is untrusted input: it is checked whole and its parameters are
counted (``spec_parameters``) before any layer is built, and ``from_spec``
refuses a network over its ``max_parameters`` budget (200 M by default,
see ``convkit.models.budget``) without allocating a weight, and a spec of
more than 10,000 tokens.

>>> net = from_spec("conv3-10 pool2 conv3-10 pool2 flatten fc3")
>>> [type(m).__name__ for m in net]
['Conv2d', 'ReLU', 'MaxPool2d', 'Conv2d', 'ReLU', 'MaxPool2d', 'Flatten', 'Linear']
>>> net[-1]
Linear(in_features=250, out_features=3, bias=True)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from itertools import islice

from .. import nn
from ..ops._args import conv_pads, is_int, ntuple
from ..ops.windows import out_sizes
from . import budget
from .budget import DEFAULT_MAX_PARAMETERS

__all__ = ["from_spec", "spec_parameters"]

_NUM = r"(\d+(?:\.\d*)?|\.\d+)"
_CONV = re.compile(r"(?:conv|c)(\d+)(?:-(\d+))?((?:s\d+|p(?:\d+|same|valid)|d\d+)*)")
_POOL = re.compile(r"(maxpool|pool|p|avgpool|a)(\d+)((?:s\d+|p\d+)*)")
_FC = re.compile(r"fc(\d+)")
_DROPOUT = re.compile(r"dropout" + _NUM + "?")
_LRELU = re.compile(r"lrelu" + _NUM + "?")
# A spec from a file or a command line could list millions of parameter-free layers (``relu relu ...``),
# each a Python object; VGG-19 written as a spec has fewer than 60 tokens.
_MAX_TOKENS = 10_000
_WORDS = ("gap", "bn", "relu", "tanh", "sigmoid", "flatten", "id")
_ACTIVATIONS = ("relu", "lrelu", "tanh", "sigmoid", "id")

_EXPECTED = ("expected conv<k>[-<channels>][s<stride>][p<pad>|psame|pvalid][d<dil>] (or C<k>...), "
             "pool<k>|maxpool<k>|P<k>[s<stride>][p<pad>], avgpool<k>|A<k>[s<stride>][p<pad>], gap, bn, "
             "relu, lrelu[<slope>], tanh, sigmoid, id, dropout[<p>], flatten, fc<N>")


@dataclass(frozen=True)
class _Token:
    text: str      # as written
    start: int     # 0-based offset in the spec
    kind: str      # conv, maxpool, avgpool, fc, dropout, lrelu, or one of _WORDS
    args: dict     # parsed numbers and options


def from_spec(spec: str, input_size: Sequence[int] = (1, 28, 28), *,
              max_parameters: int | None = DEFAULT_MAX_PARAMETERS) -> nn.Sequential:
    """Build an ``nn.Sequential`` from a spec string (grammar in the module docstring).

    The whole spec is checked and its parameters counted (``spec_parameters``)
    before any layer is built, so a spec over the budget allocates nothing.

    Args:
        spec (str): whitespace-separated tokens, e.g. ``"C7s2 C5 C3p1 P2"``.
        input_size (tuple of 3 ints): ``(C, H, W)`` of one input sample, used
            to infer channel counts and ``in_features``. Default: ``(1, 28, 28)``.
        max_parameters (int | None): refuse a network with more parameters
            (None: no limit). Default: ``convkit.models.budget.DEFAULT_MAX_PARAMETERS``
            (200 M).

    Returns:
        The layers in spec order, children named ``"0"``, ``"1"``, ...

    Raises:
        TypeError: ``spec`` is not a string.
        ValueError: ``input_size`` is not three positive ints, the spec is
            empty, a token is unknown, invalid or too large for the shape it
            receives (the message points at it), or the network has more
            than ``max_parameters`` parameters.
    """
    layers, count = _plan(spec, input_size, "from_spec")
    budget.check("from_spec", f"spec {spec.strip()!r:.200}", count, max_parameters)
    return nn.Sequential(*(layer() if isinstance(layer, partial) else layer for layer in layers))


def spec_parameters(spec: str, input_size: Sequence[int] = (1, 28, 28)) -> int:
    """The number of parameters of ``from_spec(spec, input_size)``, counted without building it.

    Raises the same errors as ``from_spec`` for a bad spec; allocates no weight.

    >>> spec_parameters("fc100000 fc100000 fc10")
    10079600010
    """
    return _plan(spec, input_size, "spec_parameters")[1]


def _plan(spec: str, input_size: Sequence[int], op: str) -> tuple[list, int]:
    """The network's layers and its parameter count, with every check done and no weight allocated.

    Layers without parameters are built (cheap, and their constructors check
    their settings); those with parameters are ``functools.partial``
    constructors, called once the count is known to fit the budget.
    """
    if not isinstance(spec, str):
        raise TypeError(f"{op}: spec must be a str, got {type(spec).__name__} {spec!r}")
    if (not isinstance(input_size, Sequence) or len(input_size) != 3
            or not all(is_int(v) and v >= 1 for v in input_size)):
        raise ValueError(f"{op}: input_size must be (C, H, W), three positive ints, got {input_size!r}")
    tokens = [_parse(spec, m.group(), m.start()) for m in islice(re.finditer(r"\S+", spec), _MAX_TOKENS + 1)]
    if not tokens:
        raise ValueError(f"{op}: spec is empty; {_EXPECTED}")
    if len(tokens) > _MAX_TOKENS:
        raise ValueError(f"{op}: spec has more than {_MAX_TOKENS:,} tokens (it is {len(spec):,} characters "
                         f"long); each token is a layer, and no network needs that many")
    weighted = [i for i, t in enumerate(tokens) if t.kind in ("conv", "fc")]
    last_weighted = weighted[-1] if weighted else -1
    layers: list = []
    count = 0
    shape = tuple(int(v) for v in input_size)
    relu_pending = False
    for i, tok in enumerate(tokens):
        if relu_pending and tok.kind != "bn":
            relu_pending = False
            if tok.kind not in _ACTIVATIONS:
                layers.append(nn.ReLU())
        try:
            new_layers, shape, parameters = _layers(tok, shape)
        except (ValueError, TypeError) as err:
            raise ValueError(_message(spec, tok, str(err))) from None
        layers.extend(new_layers)
        count += parameters
        if tok.kind in ("conv", "fc") and i != last_weighted:
            relu_pending = True
    return layers, count


def _parse(spec: str, text: str, start: int) -> _Token:
    """The token at ``start``, or a ValueError with the caret lines (and the grammar if it is unknown)."""
    low = text.lower()
    try:
        kind_args = _match(low)
    except ValueError as err:
        raise ValueError(_caret(spec, start, text, f"{text!r} at column {start + 1}: {err}")) from None
    if kind_args is None:
        raise ValueError(_caret(spec, start, text, f"unknown token {text!r} at column {start + 1}") + "\n"
                         + _EXPECTED)
    return _Token(text, start, *kind_args)


def _match(low: str) -> tuple[str, dict] | None:
    """``(kind, args)`` of a lower-case token, or None if it is no token of the grammar."""
    if low in _WORDS:
        return low, {}
    if m := _CONV.fullmatch(low):
        args = {"kernel": _int(m[1]), "channels": None if m[2] is None else _int(m[2])}
        args.update(_options(m[3], {"s": "stride", "p": "padding", "d": "dilation"}))
        return "conv", args
    if m := _POOL.fullmatch(low):
        kind = "avgpool" if m[1] in ("avgpool", "a") else "maxpool"
        return kind, {"kernel": _int(m[2]), **_options(m[3], {"s": "stride", "p": "padding"})}
    if m := _FC.fullmatch(low):
        return "fc", {"features": _int(m[1])}
    if m := _DROPOUT.fullmatch(low):
        return "dropout", {"p": 0.5 if m[1] is None else float(m[1])}
    if m := _LRELU.fullmatch(low):
        return "lrelu", {"slope": 0.01 if m[1] is None else float(m[1])}
    return None


def _options(opts: str, names: dict[str, str]) -> dict:
    """``s2p1``-style suffixes as ``{"stride": 2, "padding": 1}``; an option given twice is an error."""
    out: dict = {}
    for letter, value in re.findall(r"([a-z])(\d+|same|valid)", opts):
        name = names[letter]
        if name in out:
            raise ValueError(f"option {letter!r} ({name}) given twice")
        out[name] = value if value in ("same", "valid") else _int(value)
    return out


def _int(digits: str) -> int:
    """``int(digits)``, refusing more than 18 digits: no layer setting needs them (and Python
    refuses to convert more than 4300)."""
    if len(digits) > 18:
        raise ValueError(f"the number {digits[:18]}... has {len(digits)} digits; no setting needs more than 18")
    return int(digits)


def _layers(tok: _Token, shape: tuple[int, ...]) -> tuple[list, tuple[int, ...], int]:
    """The layers of one token (see ``_plan``), the shape of one sample after them, and their parameters."""
    a = tok.args
    if tok.kind in ("conv", "maxpool", "avgpool", "gap"):
        if len(shape) != 3:
            raise ValueError(f"needs a (C, H, W) feature map but receives shape {shape}")
    if tok.kind == "conv":
        c_in = shape[0]
        c_out = c_in if a["channels"] is None else a["channels"]
        if c_out < 1:
            raise ValueError(f"Conv2d: out_channels must be a positive int, got {c_out}")
        padding = a.get("padding", 0)
        kernel = ntuple(a["kernel"], 2, "kernel_size", "Conv2d")
        stride = ntuple(a.get("stride", 1), 2, "stride", "Conv2d")
        dilation = ntuple(a.get("dilation", 1), 2, "dilation", "Conv2d")
        pads = conv_pads(padding, 2, kernel, stride, dilation, "Conv2d")
        hw = out_sizes(shape[1:], kernel, stride, dilation, pads)
        out = _spatial(shape, (c_out, *hw), f"kernel {a['kernel']}, stride {stride[0]}, padding {padding}, "
                       f"dilation {dilation[0]}")
        layer = partial(nn.Conv2d, c_in, c_out, a["kernel"], stride=stride[0], padding=padding,
                        dilation=dilation[0])
        return [layer], out, budget.conv2d(c_in, c_out, a["kernel"])
    if tok.kind in ("maxpool", "avgpool"):
        cls = nn.MaxPool2d if tok.kind == "maxpool" else nn.AvgPool2d
        k, p = a["kernel"], a.get("padding", 0)
        s = a.get("stride", k)
        layer = cls(k, stride=s, padding=p)
        hw = out_sizes(shape[1:], (k, k), (s, s), (1, 1), ((p, p), (p, p)))
        return [layer], _spatial(shape, (shape[0], *hw), f"kernel {k}, stride {s}, padding {p}"), 0
    if tok.kind == "gap":
        return [nn.GlobalAvgPool2d(flatten=True)], (shape[0],), 0
    if tok.kind == "flatten":
        return [nn.Flatten()], (_size(shape),), 0
    if tok.kind == "fc":
        if a["features"] < 1:
            raise ValueError(f"Linear: out_features must be a positive int, got {a['features']}")
        layers: list = [nn.Flatten()] if len(shape) > 1 else []
        layers.append(partial(nn.Linear, _size(shape), a["features"]))
        return layers, (a["features"],), budget.linear(_size(shape), a["features"])
    if tok.kind == "bn":
        cls = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
        return [partial(cls, shape[0])], shape, budget.batch_norm(shape[0])
    if tok.kind == "dropout":
        return [nn.Dropout(a["p"])], shape, 0
    if tok.kind == "lrelu":
        return [nn.LeakyReLU(a["slope"])], shape, 0
    simple = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
    return ([simple[tok.kind]()] if tok.kind in simple else []), shape, 0


def _spatial(shape, out, settings: str) -> tuple[int, ...]:
    """``out``, or the error for an input too small to give an output of at least 1×1."""
    if min(out[1:]) < 1:
        raise ValueError(f"receives shape {shape} (C, H, W), too small for {settings}: "
                         f"the output would be {out[1]}x{out[2]}")
    return tuple(out)


def _size(shape: tuple[int, ...]) -> int:
    n = 1
    for v in shape:
        n *= v
    return n


def _message(spec: str, tok: _Token, detail: str) -> str:
    return _caret(spec, tok.start, tok.text, f"{tok.text!r} at column {tok.start + 1}: {detail}")


def _caret(spec: str, start: int, text: str, headline: str) -> str:
    """``spec: headline``, the spec, and a ``^^^`` line under the token (whitespace shown as spaces)."""
    shown = re.sub(r"\s", " ", spec)
    return f"spec: {headline}\n  {shown}\n  {' ' * start}{'^' * len(text)}"
