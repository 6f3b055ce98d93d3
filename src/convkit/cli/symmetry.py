"""``convkit symmetry MODEL --group shifts|flips|c4|d4 --input 1x28x28``: where a model keeps or breaks a symmetry.

Builds MODEL (a built-in name, a spec string, ``FILE.py:FACTORY`` or a trained
model file: ``cli.models.load_model``), runs ``convkit.symmetry.report`` on a seeded random input and prints the
layer-by-layer table: the equivariance (then invariance) error of every
prefix of the model under the group, and why each breaking layer breaks it.

Exit codes: 0 when the report is printed (whatever it finds), 2 for a
usage error (unknown model, malformed ``--input``, a model over
``--max-parameters``), 1 when the model
cannot be checked (an input too small for it, calls that change with the input).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from ..random import manual_seed
from ..symmetry import GROUP_NAMES, from_name, report
from ..symmetry.report import COMPARED, MIN_SAMPLES, SAMPLES
from ..tensor import get_default_dtype, set_default_dtype
from .models import MODEL_HELP, add_factory, load_model
from .options import add_max_parameters

_GROUPS = {
    "shifts": "all circular shifts of the input grid",
    "flips": "both flips and the half turn",
    "c4": "rotations by multiples of 90 degrees",
    "d4": "rotations and reflections of the square",
}


def _input_size(text: str) -> tuple[int, int, int]:
    parts = text.lower().split("x")
    if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"expected CxHxW with positive integers, like 1x28x28; got {text!r}")
    return tuple(int(p) for p in parts)  # type: ignore[return-value]


def _samples(text: str) -> int | str | None:
    """``--samples``: a positive int, ``all`` (None: every element) or ``auto``."""
    if text in ("all", "auto"):
        return None if text == "all" else text
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer or 'all' (or 'auto', the default), got {text!r}")
    return int(text)


def register(subparsers) -> None:
    """Add ``convkit symmetry``."""
    p = subparsers.add_parser(
        "symmetry",
        help="where a model keeps or breaks shift/flip/rotation symmetry, layer by layer",
        description="Check every prefix of MODEL for equivariance (then invariance) under a group of "
                    "shifts, flips or rotations, and say why each breaking layer breaks it.",
        epilog="groups: " + "; ".join(f"{k}: {v}" for k, v in _GROUPS.items()),
    )
    p.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    add_factory(p)
    p.add_argument("--group", choices=GROUP_NAMES, default="shifts", help="the symmetry group (default: shifts)")
    p.add_argument("--input", type=_input_size, default=(1, 28, 28), metavar="CxHxW",
                   help="the input size (default: 1x28x28)")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and the random input (default: 0)")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="dtype of the model and input; float64 puts round-off near 1e-16 (default: float64)")
    add_max_parameters(p)
    p.add_argument("--samples", type=_samples, default="auto", metavar="N|all|auto",
                   help=f"check at most N group elements, drawn at random when the group is larger, with what "
                        f"they show of the whole group at 95%% confidence; all: every one; auto: N from "
                        f"{SAMPLES} for small models down to {MIN_SAMPLES} for large ones ({COMPARED:,} values "
                        f"compared in all) (default: auto)")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="text: the table, reasons and verdict; json: every number (default: text)")
    p.set_defaults(run=run)


def run(args) -> int:
    """Build the model, print its symmetry report; return the exit code."""
    if args.seed < 0:
        print(f"convkit symmetry: --seed must be >= 0, got {args.seed}", file=sys.stderr)
        return 2
    previous = get_default_dtype()
    set_default_dtype(np.dtype(args.dtype))
    try:
        manual_seed(args.seed)
        model = load_model(args.model, args.input, None, args.max_parameters, factory=args.factory)
    except ValueError as e:
        print(f"convkit symmetry: {e}", file=sys.stderr)
        return 2
    finally:
        set_default_dtype(previous)
    try:
        group = from_name(args.group, *args.input[1:])
        result = report(model, group, args.input, seed=args.seed, samples=args.samples)
    except (ValueError, TypeError) as e:
        print(f"convkit symmetry: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result.to_dict(), indent=1) if args.format == "json" else result)
    return 0
