"""``convkit summary``: a model's per-layer shapes, parameters, MACs, memory and receptive fields.

The numbers come from ``convkit.analysis.summary``: computed from the layer
settings, without running the model.
"""

from __future__ import annotations

import argparse
import contextlib
import sys

from .models import MODEL_HELP, add_factory, load_model
from .options import add_max_parameters

_EPILOG = """\
examples:
  convkit summary lenet5 --input 1x28x28
  convkit summary vgg16 --input 3x224x224 --format markdown
  convkit summary "conv3-10 pool2 conv3-10 pool2 flatten fc3" --input 1x28x28 --format json
  convkit summary my_nets.py:make_net --input 3x32x32
  convkit summary lenet5 --format html -o lenet5.html
  convkit summary runs/mine/model.safetensors --factory my_nets.py:make_net

MODEL as FILE.py:FACTORY imports FILE.py, which runs the code in it, and
calls FACTORY() for the model: with input_size=(C, H, W) from --input if it
declares a parameter input_size, and num_classes=N if it declares
num_classes and --num-classes N is given. Use it on your own files.
A model.safetensors trained from FILE.py:FACTORY loads only with
--factory FILE.py:FACTORY: loading a file never runs the code it names,
and the function and the file's bytes (SHA-256) must be those it records.
"""


def register(subparsers) -> None:
    """Add ``convkit summary MODEL [--input CxHxW] [--format ...] [--num-classes N]``."""
    parser = subparsers.add_parser(
        "summary", help="per-layer shapes, parameters, MACs, memory and receptive fields of a model",
        description="Print a model's per-layer output shapes, parameters, MACs, activation memory and "
                    "receptive fields, from one trace of its forward on a shape: nothing is computed, and a "
                    "model other than a trained file is built without weights.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    parser.add_argument("--input", default="1x28x28", metavar="CxHxW",
                        help="one sample's shape without the batch axis, e.g. 3x224x224 (default: 1x28x28)")
    parser.add_argument("--format", choices=("table", "markdown", "json", "html"), default="table",
                        help="output format (default: table); html is a self-contained page with a clickable "
                             "receptive-field view")
    parser.add_argument("--output", "-o", metavar="FILE", help="write to FILE (atomically) instead of stdout")
    parser.add_argument("--num-classes", type=int, default=None, metavar="N",
                        help="outputs of a built-in model (default: its own: 10 for lenet5 and convnet, "
                             "1000 for the VGGs)")
    parser.add_argument("--depth", type=int, default=None, metavar="N",
                        help="fold every module N levels below the model into one row (1: its children, "
                             "e.g. whole ResNet stages; default: a row per layer and per op of a forward)")
    add_max_parameters(parser)
    add_factory(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    """Print the summary in the chosen format; one line on stderr and exit code 2 on a bad argument."""
    from ..analysis import summary
    from ..nn import meta_init
    from .explain import write_output

    try:
        input_size = parse_size(args.input)
        # Weights are not needed to describe a model: build it without them (a trained file is read whole).
        with contextlib.nullcontext() if args.model.endswith(".safetensors") else meta_init():
            model = load_model(args.model, input_size, args.num_classes, args.max_parameters,
                               factory=args.factory)
        result = summary(model, input_size, depth=args.depth)
    except (ValueError, TypeError) as err:
        print(f"convkit summary: error: {err}", file=sys.stderr)
        return 2
    renderings = {"json": result.to_json, "markdown": result.to_markdown, "html": result.to_html,
                  "table": result.__str__}
    text = renderings[args.format]()
    return write_output(text if text.endswith("\n") else text + "\n", args.output, "convkit summary")


def parse_size(text: str) -> tuple[int, ...]:
    """``'3x224x224'`` -> ``(3, 224, 224)``; ValueError unless every part is a positive int."""
    parts = text.lower().split("x")
    if not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"--input must be positive sizes joined by 'x', such as 3x224x224, got {text!r}")
    return tuple(int(p) for p in parts)
