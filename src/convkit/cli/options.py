"""Option values of ``convkit train`` and ``convkit evaluate``: argparse ``type=`` checks and shared options.

Each check returns the parsed value or raises ``argparse.ArgumentTypeError``
naming what was expected and what was given, which argparse turns into a
one-line usage error (exit 2).
"""

from __future__ import annotations

import argparse
import math

from ..models.budget import DEFAULT_MAX_PARAMETERS


def positive_int(text: str) -> int:
    value = _parse(int, text, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    value = _parse(int, text, "a non-negative integer")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = _parse(float, text, "a positive number")
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    value = _parse(float, text, "a non-negative number")
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {text!r}")
    return value


def fraction(text: str) -> float:
    value = _parse(float, text, "a number in [0, 1)")
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def _parse(kind, text: str, expected: str):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None


def add_format(parser, text: str) -> None:
    """``--format text|json``; ``text`` says what the text form prints."""
    parser.add_argument("--format", choices=("text", "json"), default="text",
                        help=f"what goes to stdout: text: {text} (default: text)")


def add_max_parameters(parser) -> None:
    """``--max-parameters N``: the parameter budget of a built-in model or spec."""
    parser.add_argument("--max-parameters", type=positive_int, default=DEFAULT_MAX_PARAMETERS, metavar="N",
                        help="refuse a model of more than N parameters, before allocating it "
                             f"(default: {DEFAULT_MAX_PARAMETERS:,})")
