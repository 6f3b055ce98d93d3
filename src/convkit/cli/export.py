"""``convkit export``: a model as an ONNX file or a TorchScript file, checked against convkit's own outputs.

``--onnx OUT``: ``convkit.export.to_onnx`` (``onnx.checker`` with the full
check), then the file runs in onnxruntime on a random batch of two and
its outputs must match convkit's (``|a - b| <= 1e-4 + 1e-4 |b|``).

``--torch OUT``: ``convkit.export.to_torch`` scripted with
``torch.jit.script`` and saved with ``torch.jit.save``. A TorchScript file
loads with ``torch.jit.load`` alone (no convkit, no Python class to import,
no pickle of arbitrary objects), keeps the parameter names, trains
(``train()``/``eval()``, ``backward``) and takes any batch size; the saved
module's outputs must match convkit's as above.

Exit codes: 0 written and matching; 2 a usage error (a bad ``--input`` or
MODEL, a missing extra: the message gives the pip command); 1 a model that
cannot be exported (the message names the op) or outputs that differ.
"""

from __future__ import annotations

import argparse
import io
import sys
import warnings

import numpy as np

from .models import MODEL_HELP, add_factory, load_model
from .options import add_max_parameters
from .summary import parse_size

RTOL = ATOL = 1e-4

_EPILOG = """\
examples:
  convkit export lenet5 --input 1x28x28 --onnx lenet5.onnx
  convkit export resnet18 --input 3x224x224 --num-classes 10 --torch resnet18.pt
  convkit export runs/mnist/model.safetensors --input 1x28x28 --onnx mnist.onnx
  convkit export my_nets.py:make_net --input 3x32x32 --onnx net.onnx

The ONNX file's input is "input", of shape (N, C, H, W) for any batch size N.
Load the TorchScript file with torch.jit.load(OUT): its state_dict keys are convkit's.
MODEL as FILE.py:FACTORY imports FILE.py, which runs the code in it.
"""


def register(subparsers) -> None:
    """Add ``convkit export MODEL --input CxHxW (--onnx OUT | --torch OUT)``."""
    parser = subparsers.add_parser(
        "export", help="write a model as an ONNX file or a TorchScript file, checked against convkit",
        description="Write a model as an ONNX file (opset 17) or a TorchScript file for PyTorch, and check that "
                    "the file computes what convkit computes.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    parser.add_argument("--input", required=True, metavar="CxHxW",
                        help="one sample's shape without the batch axis, e.g. 3x224x224")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--onnx", metavar="OUT", help="write an ONNX file (needs pip install 'convkit[export]')")
    target.add_argument("--torch", metavar="OUT", help="write a TorchScript file (needs torch)")
    parser.add_argument("--num-classes", type=int, default=None, metavar="N",
                        help="outputs of a built-in model (default: its own)")
    add_max_parameters(parser)
    add_factory(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    """Export, reload, compare; one line on stderr and exit 2 (usage) or 1 (failure) on a problem."""
    prog = "convkit export"
    try:
        input_size = parse_size(args.input)
        model = load_model(args.model, input_size, args.num_classes, args.max_parameters,
                           factory=args.factory)
        write, check = (_write_onnx, _run_onnx) if args.onnx else (_write_torch, _run_torch)
        _require(args)
    except (ValueError, TypeError, ImportError) as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    path = args.onnx or args.torch
    try:
        model.eval()
        what = write(model, input_size, path)
        x = np.random.default_rng(0).standard_normal((2, *input_size)).astype(_dtype(model))
        expected = _outputs(model(x))
        got = check(path, x)
    except ValueError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"{prog}: error: could not write {path}: {err.strerror or err}", file=sys.stderr)
        return 1
    except Exception as err:  # the checker's or runtime's own errors on a file we wrote: one line
        print(f"{prog}: error: {path}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}",
              file=sys.stderr)
        return 1
    worst = max(float(np.max(np.abs(a - b), initial=0.0)) for a, b in zip(got, expected))
    if len(got) != len(expected) or not all(a.shape == b.shape and np.allclose(a, b, rtol=RTOL, atol=ATOL)
                                            for a, b in zip(got, expected)):
        print(f"{prog}: error: {path} computes other outputs than convkit (largest difference {worst:.3g})",
              file=sys.stderr)
        return 1
    print(f"{path}: {what}; outputs match convkit's on a batch of 2 (largest difference {worst:.2g})")
    return 0


def _require(args) -> None:
    from ..export.extras import require

    if args.onnx:
        require("onnx", "convkit export --onnx")
        require("onnxruntime", "convkit export --onnx")
    else:
        require("torch", "convkit export --torch")


def _dtype(model):
    first = next(model.parameters(), None)
    return np.float32 if first is None else first.dtype


def _outputs(result) -> list[np.ndarray]:
    values = result if isinstance(result, (tuple, list)) else (result,)
    return [np.asarray(v.numpy() if hasattr(v, "numpy") else v) for v in values]


def _write_onnx(model, input_size, path) -> str:
    import onnx

    from ..export import to_onnx

    to_onnx(model, input_size, path)
    opset = onnx.load(path, load_external_data=False).opset_import[0].version
    return f"ONNX opset {opset}, input 'input' of shape (N, {', '.join(map(str, input_size))}), onnx.checker passed"


def _run_onnx(path, x) -> list[np.ndarray]:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return [np.asarray(v) for v in session.run(None, {"input": x})]


def _write_torch(model, input_size, path) -> str:
    import torch

    from .._io import atomic_file
    from ..export import to_torch

    module = to_torch(model, input_size)
    with warnings.catch_warnings():  # torch's own notes (GraphModule's attributes; TorchScript deprecated in 2.13)
        warnings.filterwarnings("ignore", "The TorchScript type system doesn't support instance-level annotations")
        warnings.filterwarnings("ignore", r"`torch\.jit\.", DeprecationWarning)
        scripted = torch.jit.script(module)
        buffer = io.BytesIO()
        torch.jit.save(scripted, buffer)
    with atomic_file(path) as f:
        f.write(buffer.getvalue())
    return "TorchScript (load with torch.jit.load), the state_dict keys of convkit's model"


def _run_torch(path, x) -> list[np.ndarray]:
    import torch

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"`torch\.jit\.", DeprecationWarning)
        loaded = torch.jit.load(str(path)).eval()
    with torch.no_grad():
        return _outputs(loaded(torch.from_numpy(x)))
