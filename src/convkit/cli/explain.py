"""``convkit explain TOPIC``: a computation shown step by step with the engine's numbers.

Matrices are written inline, rows separated by ``;`` (``"1 1 -2; 0 1 0"``),
channels by ``|``, kernels by ``||``, or read from a ``.npy``/``.csv`` file;
tuples as ``2`` or ``2,1``. Options are named as in ``convkit.functional``.
Bad input prints one line to stderr (the first line of the error, which
names the problem, and a working example) and exits 2.

Examples::

    convkit explain conv2d --input "1 2 3; 4 5 6; 7 8 9" --kernel "1 0; 0 -1" --grad
    convkit explain output-size --spec "conv3-10 pool2" --input 1x28x28
    convkit explain receptive-field --model my_nets.py:make_net --input 1x28x28
    convkit explain maxpool --input "1 3 0 1; 2 4 1 5; 0 1 2 2; 1 0 3 1" --kernel-size 2
    convkit explain conv2d --input "1 2 3; 4 5 6; 7 8 9" --kernel "1 0; 0 -1" --format html -o conv.html

``--format html`` writes one self-contained interactive page (``convkit.explain.html``);
``-o FILE`` writes any format to FILE atomically instead of printing it (a
failed write prints one line and exits 1).
"""

from __future__ import annotations

import argparse
import json
import re
import sys

from .. import explain
from .._io import atomic_file
from ..explain.html import to_html
from ..explain.parse import load_array
from .models import MODEL_HELP, add_factory, load_model

FORMATS = ("text", "markdown", "latex", "html", "json")

_GRID = '"1 2 0; 0 1 2; 2 0 1"'
EXAMPLES = {
    "conv2d": f'convkit explain conv2d --input {_GRID} --kernel "1 0; 0 -1"',
    "conv1d": 'convkit explain conv1d --input "1 2 3 4 5" --kernel "1 0 -1"',
    "convolve2d": f'convkit explain convolve2d --input {_GRID} --kernel "1 0; 0 -1"',
    "convolve1d": 'convkit explain convolve1d --input "1 2 3 4 5" --kernel "1 0 -1"',
    "im2col": f'convkit explain im2col --input {_GRID} --kernel "1 0; 0 -1"',
    "maxpool": 'convkit explain maxpool --input "1 3 0 1; 2 4 1 5; 0 1 2 2; 1 0 3 1" --kernel-size 2',
    "maxpool1d": 'convkit explain maxpool1d --input "1 3 0 1 2 4" --kernel-size 2',
    "avgpool": 'convkit explain avgpool --input "1 3 0 1; 2 4 1 5; 0 1 2 2; 1 0 3 1" --kernel-size 2',
    "avgpool1d": 'convkit explain avgpool1d --input "1 3 0 1 2 4" --kernel-size 2',
    "conv-transpose": 'convkit explain conv-transpose --input "1 2; 3 4" --kernel "1 1; 1 1" --stride 2',
    "conv-transpose1d": 'convkit explain conv-transpose1d --input "1 2 3" --kernel "1 -1" --stride 2',
    "batchnorm": 'convkit explain batchnorm --input "1 2; 2 4; 3 0; 4 6"',
    "fft": 'convkit explain fft --input "1 2 3 4" --kernel "1 0 -1" --mode full',
    "output-size": 'convkit explain output-size --spec "conv3-10 pool2 conv3-10 pool2 flatten fc3" --input 1x28x28',
    "receptive-field": 'convkit explain receptive-field --spec "conv3-10 pool2 conv3-10 pool2" --input 1x28x28',
}


class _OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line on stderr (exit 2), pointing at ``--help``."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _ints(text: str):
    """``2`` -> 2, ``2,1`` -> (2, 1)."""
    parts = [p for p in text.replace(" ", "").split(",") if p]
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int or ints separated by commas like 2 or 2,1, got {text!r}")
    if not values:
        raise argparse.ArgumentTypeError(f"expected an int like 2, got {text!r}")
    return values[0] if len(values) == 1 else values


def _padding(text: str):
    """An int, ints separated by commas, ``same`` or ``valid``."""
    return text if text in ("same", "valid") else _ints(text)


def _shape(text: str) -> tuple[int, ...]:
    """``1x28x28`` -> (1, 28, 28)."""
    try:
        shape = tuple(int(p) for p in text.lower().replace("×", "x").split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a shape like 1x28x28 (C x H x W), got {text!r}")
    if not shape or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected positive sizes like 1x28x28, got {text!r}")
    return shape


def _array(args, name: str, flag: str):
    value = getattr(args, name)
    return None if value is None else load_array(value, flag)


def _conv(args, fn):
    kwargs = dict(stride=args.stride, padding=args.padding, dilation=args.dilation, padding_mode=args.padding_mode)
    if args.topic != "im2col":
        kwargs["groups"] = args.groups
    return fn(_array(args, "input", "--input"), _array(args, "weight", "--kernel"), _array(args, "bias", "--bias"),
              **kwargs)


def _conv_with_grad(args, nsp: int):
    forward = _conv(args, getattr(explain, f"conv{nsp}d"))
    if not args.grad:
        if args.grad_output is not None or args.target is not None:
            raise ValueError("--grad-output and --target need --grad")
        return [forward]
    if args.groups != 1 or args.padding_mode != "zeros":
        raise ValueError("--grad explains groups=1 with zero padding; leave out --groups and --padding-mode")
    grad = getattr(explain, f"conv{nsp}d_grad")(
        _array(args, "input", "--input"), _array(args, "weight", "--kernel"), _array(args, "bias", "--bias"),
        args.stride, args.padding, args.dilation, grad_output=_array(args, "grad_output", "--grad-output"),
        target=_array(args, "target", "--target"))
    return [forward, grad]


def _pool(args, fn, average: bool):
    common = dict(stride=args.stride, padding=args.padding, ceil_mode=args.ceil_mode,
                  grad_output=_array(args, "grad_output", "--grad-output"))
    if average:
        common["count_include_pad"] = args.count_include_pad
        if args.topic == "avgpool":
            common["divisor_override"] = args.divisor_override
    else:
        common["dilation"] = args.dilation
    return fn(_array(args, "input", "--input"), args.kernel_size, **common)


def topic_explanations(args) -> list:
    """The explanations ``args`` asks for (the topic's function, options mapped one to one)."""
    topic = args.topic
    if topic in ("conv1d", "conv2d"):
        return _conv_with_grad(args, int(topic[4]))
    if topic in ("convolve1d", "convolve2d", "im2col"):
        return [_conv(args, getattr(explain, topic))]
    if topic in ("maxpool", "maxpool1d", "avgpool", "avgpool1d"):
        average = topic.startswith("avg")
        name = f"{'avg' if average else 'max'}_pool{'1' if topic.endswith('1d') else '2'}d"
        return [_pool(args, getattr(explain, name), average)]
    if topic in ("conv-transpose", "conv-transpose1d"):
        fn = explain.conv_transpose1d if topic.endswith("1d") else explain.conv_transpose2d
        return [fn(_array(args, "input", "--input"), _array(args, "weight", "--kernel"), _array(args, "bias", "--bias"),
                   args.stride, args.padding, args.output_padding, args.groups, args.dilation)]
    if topic == "batchnorm":
        return [explain.batch_norm(_array(args, "input", "--input"), _array(args, "running_mean", "--running-mean"),
                                   _array(args, "running_var", "--running-var"), _array(args, "weight", "--weight"),
                                   _array(args, "bias", "--bias"), args.training, args.momentum, args.eps)]
    if topic == "fft":
        return [explain.fftconvolve(_array(args, "input", "--input"), _array(args, "weight", "--kernel"), args.mode)]
    fn = explain.output_size if topic == "output-size" else explain.receptive_field
    if args.spec is not None:
        return [fn(args.spec, args.input)]
    from ..models.budget import DEFAULT_MAX_PARAMETERS

    return [fn(load_model(args.model, args.input, None, DEFAULT_MAX_PARAMETERS, factory=args.factory), args.input)]


def run(args) -> int:
    """Print the explanation(s) in ``args.format``; a user mistake is one line on stderr and exit code 2."""
    try:
        explanations = topic_explanations(args)
    except (ValueError, TypeError) as err:
        message = re.sub(r"^[a-z][a-z0-9_]*: ", "", str(err).splitlines()[0])
        if "e.g." not in message:
            message += f"; a working example: {EXAMPLES[args.topic]}"
        print(f"convkit explain {args.topic}: {message}", file=sys.stderr)
        return 2
    if args.format == "html":
        text = to_html(explanations)
    elif args.format == "json":  # one document: the list of the topic's explanations
        text = json.dumps([e.to_dict() for e in explanations], indent=1, ensure_ascii=False) + "\n"
    else:
        text = "\n\n".join(e.render(args.format) for e in explanations) + "\n"
    return write_output(text, args.output, f"convkit explain {args.topic}")


def write_output(text: str, path: str | None, prog: str) -> int:
    """``text`` to stdout, or to ``path`` atomically; a failed write is one line on stderr and exit code 1."""
    if path is None:
        sys.stdout.write(text)
        return 0
    try:
        with atomic_file(path) as f:
            f.write(text.encode("utf-8"))
    except OSError as err:
        print(f"{prog}: could not write {path}: {err.strerror or err}", file=sys.stderr)
        return 1
    return 0


def _add_format(p) -> None:
    p.add_argument("--format", choices=FORMATS, default="text",
                   help="output format (default: text); html is one self-contained interactive page, json "
                        "a list of the explanations' steps and results")
    p.add_argument("--output", "-o", metavar="FILE", help="write to FILE (atomically) instead of stdout")


def _add_operands(p, bias: bool = True) -> None:
    p.add_argument("--input", "-i", required=True, help="the input: inline rows '1 2; 3 4' or a .npy/.csv file")
    p.add_argument("--kernel", "--weight", "-k", dest="weight", required=True, help="the kernel (weight), same syntax")
    if bias:
        p.add_argument("--bias", help="one value per output channel, e.g. '1' or '1 -1'")


def _add_conv_options(p, groups: bool = True) -> None:
    p.add_argument("--stride", type=_ints, default=1, help="int or per-axis ints, e.g. 2 or 2,1 (default 1)")
    p.add_argument("--padding", type=_padding, default=0, help="int, per-axis ints, same or valid (default 0)")
    p.add_argument("--dilation", type=_ints, default=1, help="int or per-axis ints (default 1)")
    if groups:
        p.add_argument("--groups", type=int, default=1, help="channel groups (default 1)")
    p.add_argument("--padding-mode", default="zeros", choices=("zeros", "reflect", "replicate", "circular"),
                   help="how the border is filled (default zeros)")


def register(subparsers) -> None:
    """Add ``convkit explain`` and its topics (``set_defaults(run=run)``)."""
    parser = subparsers.add_parser(
        "explain", help="show a CNN computation step by step, with the engine's numbers",
        description="Show a computation step by step: every formula with its numbers substituted, from the real "
                    "engine. Matrices inline ('1 2; 3 4', ';' between rows, '|' between channels, '||' between "
                    "kernels) or from .npy/.csv files.",
        epilog="examples:\n  " + "\n  ".join(EXAMPLES.values()), formatter_class=argparse.RawDescriptionHelpFormatter)
    topics = parser.add_subparsers(dest="topic", metavar="TOPIC", required=True, parser_class=_OneLineParser)

    def topic(name: str, help_text: str):
        p = topics.add_parser(name, help=help_text, description=f"{help_text}. Example: {EXAMPLES[name]}")
        p.set_defaults(run=run)
        _add_format(p)
        return p

    for nsp in (1, 2):
        p = topic(f"conv{nsp}d", f"cross-correlation (PyTorch's conv{nsp}d) cell by cell; --grad adds the gradients")
        _add_operands(p)
        _add_conv_options(p)
        p.add_argument("--grad", action="store_true", help="also explain ∂L/∂I, ∂L/∂K and ∂L/∂b")
        p.add_argument("--grad-output", help="∂L/∂O for --grad (default: all ones, L = sum of the outputs)")
        p.add_argument("--target", help="target of a mean-squared-error loss for --grad")
        p = topic(f"convolve{nsp}d", f"true convolution (flipped kernel) next to cross-correlation, {nsp}-D")
        _add_operands(p)
        _add_conv_options(p)
    p = topic("im2col", "conv2d as im2col times the flattened kernel, and as a sparse (Toeplitz) matrix")
    _add_operands(p)
    _add_conv_options(p, groups=False)
    for name, what in (("maxpool", "2-D max pooling"), ("maxpool1d", "1-D max pooling"),
                       ("avgpool", "2-D average pooling"), ("avgpool1d", "1-D average pooling")):
        p = topic(name, f"{what}, window by window, with the gradient routing")
        p.add_argument("--input", "-i", required=True, help="the input, inline or a .npy/.csv file")
        p.add_argument("--kernel-size", type=_ints, required=True, help="window size, e.g. 2 or 2,3")
        p.add_argument("--stride", type=_ints, default=None, help="default: the kernel size")
        p.add_argument("--padding", type=_ints, default=0, help="at most half the kernel size (default 0)")
        p.add_argument("--ceil-mode", action="store_true", help="round the output size up")
        p.add_argument("--grad-output", help="∂L/∂O (default: all ones)")
        if name.startswith("max"):
            p.add_argument("--dilation", type=_ints, default=1, help="default 1")
        else:
            p.add_argument("--count-include-pad", action=argparse.BooleanOptionalAction, default=True,
                           help="count the padding in the divisor (default: yes)")
        if name == "avgpool":
            p.add_argument("--divisor-override", type=int, default=None, help="divide every window by this")
    for name, nsp in (("conv-transpose", 2), ("conv-transpose1d", 1)):
        p = topic(name, f"{nsp}-D transposed convolution: each input value stamps a scaled kernel")
        _add_operands(p)
        p.add_argument("--stride", type=_ints, default=1, help="default 1")
        p.add_argument("--padding", type=_ints, default=0, help="cropped from each side (default 0)")
        p.add_argument("--output-padding", type=_ints, default=0, help="extra size on the high side (default 0)")
        p.add_argument("--groups", type=int, default=1, help="default 1")
        p.add_argument("--dilation", type=_ints, default=1, help="default 1")
    p = topic("batchnorm", "batch normalisation: statistics, normalisation, running estimates, inference")
    p.add_argument("--input", "-i", required=True,
                   help="(N, C) rows = samples, or (N, C, H, W) written '...|...||...' (samples by ||)")
    p.add_argument("--running-mean", help="running mean before the step (default zeros)")
    p.add_argument("--running-var", help="running variance before the step (default ones)")
    p.add_argument("--weight", help="γ, one per channel (default 1)")
    p.add_argument("--bias", help="β, one per channel (default 0)")
    p.add_argument("--training", action=argparse.BooleanOptionalAction, default=True,
                   help="batch statistics and running update (default); --no-training: inference")
    p.add_argument("--momentum", type=float, default=0.1, help="default 0.1")
    p.add_argument("--eps", type=float, default=1e-5, help="default 1e-5")
    p = topic("fft", "the convolution theorem: the same convolution through the FFT, and its padding")
    _add_operands(p, bias=False)
    p.add_argument("--mode", choices=("full", "valid", "same"), default="full", help="default full")
    for name, what in (("output-size", "the output shape of every layer"),
                       ("receptive-field", "the receptive field of every layer")):
        p = topic(name, f"{what} of a network spec or model, formula by formula")
        network = p.add_mutually_exclusive_group(required=True)
        network.add_argument("--spec", help="a network spec, e.g. 'conv3-10 pool2 conv3-10 pool2 flatten fc3'")
        network.add_argument("--model", metavar="MODEL", help=MODEL_HELP)
        add_factory(p)
        p.add_argument("--input", "-i", type=_shape, default=(1, 28, 28), help="one sample's shape C×H×W "
                                                                              "(default 1x28x28)")
