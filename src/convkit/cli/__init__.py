"""The ``convkit`` command line: one sub-command per module of this package.

Each module named in ``SUBCOMMANDS`` defines ``register(subparsers)``, which
adds its sub-command(s) with ``set_defaults(run=function)``; ``function(args)``
returns the process exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS = ("train", "summary", "symmetry", "explain")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="convkit",
        description="Convolutional networks on NumPy: train, inspect and check CNNs.",
    )
    parser.add_argument("--version", action="version", version=f"convkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the sub-command, return its exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
