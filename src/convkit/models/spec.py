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
(``dropout1.5``), an option given twice, or an input too small for a layer
(naming the shape the layer receives).

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

from .. import nn
from ..ops._args import conv_output_size, conv_pads, is_int

__all__ = ["from_spec"]

_NUM = r"(\d+(?:\.\d*)?|\.\d+)"
_CONV = re.compile(r"(?:conv|c)(\d+)(?:-(\d+))?((?:s\d+|p(?:\d+|same|valid)|d\d+)*)")
_POOL = re.compile(r"(maxpool|pool|p|avgpool|a)(\d+)((?:s\d+|p\d+)*)")
_FC = re.compile(r"fc(\d+)")
_DROPOUT = re.compile(r"dropout" + _NUM + "?")
_LRELU = re.compile(r"lrelu" + _NUM + "?")
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


def from_spec(spec: str, input_size: Sequence[int] = (1, 28, 28)) -> nn.Sequential:
    """Build an ``nn.Sequential`` from a spec string (grammar in the module docstring).

    Args:
        spec (str): whitespace-separated tokens, e.g. ``"C7s2 C5 C3p1 P2"``.
        input_size (tuple of 3 ints): ``(C, H, W)`` of one input sample, used
            to infer channel counts and ``in_features``. Default: ``(1, 28, 28)``.

    Returns:
        The layers in spec order, children named ``"0"``, ``"1"``, ...

    Raises:
        TypeError: ``spec`` is not a string.
        ValueError: ``input_size`` is not three positive ints, the spec is
            empty, or a token is unknown, invalid or too large for the
            shape it receives (the message points at it).
    """
    if not isinstance(spec, str):
        raise TypeError(f"from_spec: spec must be a str, got {type(spec).__name__} {spec!r}")
    if (not isinstance(input_size, Sequence) or len(input_size) != 3
            or not all(is_int(v) and v >= 1 for v in input_size)):
        raise ValueError(f"from_spec: input_size must be (C, H, W), three positive ints, got {input_size!r}")
    tokens = [_parse(spec, m.group(), m.start()) for m in re.finditer(r"\S+", spec)]
    if not tokens:
        raise ValueError(f"from_spec: spec is empty; {_EXPECTED}")
    weighted = [i for i, t in enumerate(tokens) if t.kind in ("conv", "fc")]
    last_weighted = weighted[-1] if weighted else -1
    layers: list[nn.Module] = []
    shape = tuple(int(v) for v in input_size)
    relu_pending = False
    for i, tok in enumerate(tokens):
        if relu_pending and tok.kind != "bn":
            relu_pending = False
            if tok.kind not in _ACTIVATIONS:
                layers.append(nn.ReLU())
        try:
            new_layers, shape = _layers(tok, shape)
        except (ValueError, TypeError) as err:
            raise ValueError(_message(spec, tok, str(err))) from None
        layers.extend(new_layers)
        if tok.kind in ("conv", "fc") and i != last_weighted:
            relu_pending = True
    return nn.Sequential(*layers)


def _parse(spec: str, text: str, start: int) -> _Token:
    """The token at ``start``, or a ValueError with the caret lines and the grammar."""
    low = text.lower()
    if low in _WORDS:
        return _Token(text, start, low, {})
    if m := _CONV.fullmatch(low):
        args = {"kernel": int(m[1]), "channels": None if m[2] is None else int(m[2])}
        args.update(_options(spec, text, start, m[3], {"s": "stride", "p": "padding", "d": "dilation"}))
        return _Token(text, start, "conv", args)
    if m := _POOL.fullmatch(low):
        kind = "avgpool" if m[1] in ("avgpool", "a") else "maxpool"
        args = {"kernel": int(m[2])}
        args.update(_options(spec, text, start, m[3], {"s": "stride", "p": "padding"}))
        return _Token(text, start, kind, args)
    if m := _FC.fullmatch(low):
        return _Token(text, start, "fc", {"features": int(m[1])})
    if m := _DROPOUT.fullmatch(low):
        return _Token(text, start, "dropout", {"p": 0.5 if m[1] is None else float(m[1])})
    if m := _LRELU.fullmatch(low):
        return _Token(text, start, "lrelu", {"slope": 0.01 if m[1] is None else float(m[1])})
    raise ValueError(_caret(spec, start, text, f"unknown token {text!r} at column {start + 1}") + "\n" + _EXPECTED)


def _options(spec: str, text: str, start: int, opts: str, names: dict[str, str]) -> dict:
    """``s2p1``-style suffixes as ``{"stride": 2, "padding": 1}``; an option given twice is an error."""
    out: dict = {}
    for letter, value in re.findall(r"([a-z])(\d+|same|valid)", opts):
        name = names[letter]
        if name in out:
            raise ValueError(_caret(spec, start, text,
                                    f"option {letter!r} ({name}) given twice in {text!r} at column {start + 1}"))
        out[name] = value if value in ("same", "valid") else int(value)
    return out


def _layers(tok: _Token, shape: tuple[int, ...]) -> tuple[list[nn.Module], tuple[int, ...]]:
    """The layers of one token and the shape of one sample after them."""
    a = tok.args
    if tok.kind in ("conv", "maxpool", "avgpool", "gap"):
        if len(shape) != 3:
            raise ValueError(f"needs a (C, H, W) feature map but receives shape {shape}")
    if tok.kind == "conv":
        c_in = shape[0]
        c_out = c_in if a["channels"] is None else a["channels"]
        layer = nn.Conv2d(c_in, c_out, a["kernel"], stride=a.get("stride", 1), padding=a.get("padding", 0),
                          dilation=a.get("dilation", 1))
        pads = conv_pads(a.get("padding", 0), 2, layer.kernel_size, layer.stride, layer.dilation, "Conv2d")
        hw = [conv_output_size(n, k, s, d, p) for n, k, s, d, p in
              zip(shape[1:], layer.kernel_size, layer.stride, layer.dilation, pads)]
        return [layer], _spatial(tok, shape, (c_out, *hw), f"kernel {a['kernel']}, stride {layer.stride[0]}, "
                                 f"padding {a.get('padding', 0)}, dilation {layer.dilation[0]}")
    if tok.kind in ("maxpool", "avgpool"):
        cls = nn.MaxPool2d if tok.kind == "maxpool" else nn.AvgPool2d
        k, p = a["kernel"], a.get("padding", 0)
        s = a.get("stride", k)
        layer = cls(k, stride=s, padding=p)
        hw = [conv_output_size(n, k, s, 1, (p, p)) for n in shape[1:]]
        return [layer], _spatial(tok, shape, (shape[0], *hw), f"kernel {k}, stride {s}, padding {p}")
    if tok.kind == "gap":
        return [nn.GlobalAvgPool2d(flatten=True)], (shape[0],)
    if tok.kind == "flatten":
        return [nn.Flatten()], (_size(shape),)
    if tok.kind == "fc":
        layers: list[nn.Module] = [nn.Flatten()] if len(shape) > 1 else []
        layers.append(nn.Linear(_size(shape), a["features"]))
        return layers, (a["features"],)
    if tok.kind == "bn":
        return [(nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d)(shape[0])], shape
    if tok.kind == "dropout":
        return [nn.Dropout(a["p"])], shape
    if tok.kind == "lrelu":
        return [nn.LeakyReLU(a["slope"])], shape
    simple = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
    return ([simple[tok.kind]()] if tok.kind in simple else []), shape


def _spatial(tok: _Token, shape, out, settings: str) -> tuple[int, ...]:
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
