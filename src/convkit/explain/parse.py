"""Arrays written inline (``"1 1 -2; 0 1 0"``) or read from ``.npy`` / ``.csv`` files.

Inline syntax, from the innermost level out:

* numbers separated by spaces or commas form a row: ``"1 2 3"`` is 1-D;
* ``;`` separates rows: ``"1 2; 3 4"`` is 2-D (2×2);
* ``|`` separates channels: ``"1 2; 3 4 | 5 6; 7 8"`` is 3-D (2×2×2);
* ``||`` separates output channels (kernels): 4-D.

Each level present adds one dimension, so ``"1 2 | 3 4"`` is 2-D (two
channels of length 2). Every row of a matrix, and every block of a level,
must have the same shape; the error message names the first that does not
and shows the input corrected with zeros.

Files: ``.npy`` is read with ``allow_pickle=False`` (loading never runs
code); ``.csv`` holds one matrix row per line, numbers separated by commas.

>>> parse_array("1 1 -2; 0 1 0")
array([[ 1.,  1., -2.],
       [ 0.,  1.,  0.]])
>>> parse_array("1 2 | 3 4").shape
(2, 2)
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["parse_array", "load_array"]

_LEVELS = ("||", "|", ";")


def parse_array(text: str, name: str = "input") -> np.ndarray:
    """The float64 array written in ``text`` (syntax in the module docstring).

    Args:
        text (str): e.g. ``"1 0 -1; 2 0 -2; 1 0 -1"``.
        name (str): the argument's name for error messages, e.g. ``"--kernel"``. Default: ``"input"``.

    Raises:
        ValueError: empty text, a token that is not a number, or ragged rows
            or blocks (the message shows a corrected example).
    """
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a string like '1 2; 3 4', got {type(text).__name__}")
    text = text.replace("−", "-").strip()
    if not text:
        raise ValueError(f"{name} is empty; write numbers with ';' between rows, e.g. '1 2; 3 4'")
    present = {"||": "||" in text, "|": "|" in text.replace("||", ""), ";": ";" in text}
    levels = [sep for sep in _LEVELS if present[sep]]
    return np.array(_parse_level(text, levels, name), dtype=np.float64)


def _parse_level(text: str, levels: list[str], name: str):
    if not levels:
        return _parse_row(text, name)
    sep, rest = levels[0], levels[1:]
    pieces = _split(text, sep)
    parts = [_parse_level(piece, rest, name) for piece in pieces]
    shapes = [np.shape(p) for p in parts]
    for i, shape in enumerate(shapes):
        if shape != shapes[0]:
            raise ValueError(_ragged_message(name, sep, i, shapes, pieces, rest))
    return parts


def _split(text: str, sep: str) -> list[str]:
    """``text`` split at ``sep`` (``|`` never splits a ``||``)."""
    if sep == "|":
        return [p.replace("\0", "||") for p in text.replace("||", "\0").split("|")]
    return text.split(sep)


def _parse_row(text: str, name: str) -> list[float]:
    tokens = text.replace(",", " ").split()
    if not tokens:
        raise ValueError(f"{name} has an empty row or block in {text!r}; every row needs numbers, e.g. '1 2; 3 4'")
    row = []
    for tok in tokens:
        try:
            row.append(float(tok))
        except ValueError:
            raise ValueError(f"{name}: {tok!r} is not a number; write numbers like 1, -2 or 0.5, "
                             f"e.g. '1 0 -1; 2 0 -2'") from None
    return row


_WHAT = {";": "row", "|": "channel", "||": "kernel"}


def _ragged_message(name: str, sep: str, i: int, shapes, pieces: list[str], rest: list[str]) -> str:
    what = _WHAT[sep]
    def size(shape):
        if len(shape) > 1:
            return "is " + "×".join(map(str, shape))
        return f"has {shape[0]} number{'' if shape[0] == 1 else 's'}"
    message = (f"{name}: {what} {i + 1} {size(shapes[i])} but {what} 1 {size(shapes[0])}; "
               f"every {what} needs the same shape")
    if sep == ";":
        rows = [p.replace(",", " ").split() for p in pieces]
        width = max(len(r) for r in rows)
        fixed = "; ".join(" ".join(r + ["0"] * (width - len(r))) for r in rows)
        message += f", e.g. '{fixed}'"
    return message


def load_array(value: str, name: str = "input") -> np.ndarray:
    """An array from ``value``: a ``.npy`` or ``.csv`` file path, else inline text (``parse_array``).

    Args:
        value (str): a path ending in ``.npy``/``.csv``, or inline numbers.
        name (str): the argument's name for error messages. Default: ``"input"``.
    """
    lower = value.strip().lower()
    if not lower.endswith((".npy", ".csv")):
        return parse_array(value, name)
    path = value.strip()
    if not os.path.isfile(path):
        raise ValueError(f"{name}: no such file {path!r}; give an existing .npy/.csv file or numbers like '1 2; 3 4'")
    if lower.endswith(".csv"):
        with open(path, encoding="utf-8") as f:
            rows = [line for line in f.read().splitlines() if line.strip()]
        return parse_array("; ".join(rows), f"{name} ({path})")
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as err:
        raise ValueError(f"{name}: {path!r} is not a plain numeric .npy file ({err})") from None
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name}: {path!r} holds {array.dtype} values; expected real numbers")
    return array.astype(np.float64)
