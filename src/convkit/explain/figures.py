"""What an explanation page animates: the frames of a step, and the receptive fields of a layer stack.

Text, Markdown and LaTeX show a step's sentence, formulas and value; the
HTML page (``convkit.explain.html``) also draws the step's ``figure``:

* ``Frames``: a stage of matrices and one ``Frame`` per moment of the
  computation: which cells light up (the window, the kernel taps, the output
  cell, a winner, a stamp), the terms of the sum being built with their
  running totals, and matrices whose values change from frame to frame (the
  output a transposed convolution stamps into). A frame's caption is the
  formula the other formats print for that moment.
* ``FieldStack``: the layers of a network drawn as grids, and for each layer
  and each earlier layer the span of positions every unit sees, per axis.

The topics fill these from the engine's own numbers; the page only shows
them (the running totals are computed here, not in JavaScript).

>>> import numpy as np
>>> f = Frames((Matrix("I", np.arange(4.0)),), (Frame("I[1]", (Mark(0, "window", ((0, 1),)),)),))
>>> f.frames[0].marks[0].cells
((0, 1),)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .explanation import Matrix

__all__ = ["ROLES", "Mark", "Frame", "Frames", "Field", "FieldStack", "cell_of", "running_sums"]

ROLES = {
    "window": "the input cells being read",
    "tap": "the kernel taps (or weights) multiplying them",
    "out": "the cell being computed",
    "win": "the window's winner (max pooling)",
    "grad": "the gradient cells it comes from",
    "pad": "padding",
}


@dataclass(frozen=True)
class Mark:
    """Cells of one stage matrix highlighted in one role.

    Attributes:
        matrix (int): index into ``Frames.stage``.
        role (str): a key of ``ROLES``.
        cells (tuple of (row, col)): positions in the matrix's 2-D ``grid`` (a 1-D matrix is row 0).
    """

    matrix: int
    role: str
    cells: tuple[tuple[int, int], ...]

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"Mark: role must be one of {tuple(ROLES)}, got {self.role!r}")


@dataclass(frozen=True)
class Frame:
    """One moment of an animated step.

    Attributes:
        caption (str): what happens, usually the formula of this cell as the other formats print it.
        marks (tuple of Mark): the highlighted cells.
        terms (tuple of str): the terms of the sum (or max) being built, e.g. ``("1·2", "0·3")``.
        running (tuple of float): the total after each term (``len(terms)`` values).
        values (tuple of (int, ndarray)): stage matrices shown with other values in this frame.
    """

    caption: str
    marks: tuple[Mark, ...] = ()
    terms: tuple[str, ...] = ()
    running: tuple[float, ...] = ()
    values: tuple[tuple[int, np.ndarray], ...] = ()

    def __post_init__(self):
        if len(self.running) != len(self.terms):
            raise ValueError(f"Frame: running needs one total per term ({len(self.terms)}), got {len(self.running)}")


@dataclass(frozen=True)
class Frames:
    """The animated figure of a step: the matrices drawn, and the frames stepping through them.

    Attributes:
        stage (tuple of Matrix): the matrices drawn side by side.
        frames (tuple of Frame): in order.
        running (str): what ``Frame.running`` holds, e.g. ``"running sum"`` or ``"running max"``.
        fixed (tuple of Mark): marks shown in every frame (the padding of a padded input).
    """

    stage: tuple[Matrix, ...]
    frames: tuple[Frame, ...]
    running: str = "running sum"
    fixed: tuple[Mark, ...] = ()


@dataclass(frozen=True)
class Field:
    """Where the units of one layer look in one earlier layer (or the input), per spatial axis.

    Attributes:
        layer (int), earlier (int): indices into ``FieldStack.names`` (0 is the input), ``earlier < layer``.
        size, jump, start (tuple per axis): the field's size ``r``, the jump ``j`` and the centre of
            unit 0's field, in units of the earlier layer.
        spans (tuple per axis of tuple per unit of (first, last) or None): the positions each unit
            sees; below 0 or past the end is padding, None a unit that sees nothing.
    """

    layer: int
    earlier: int
    size: tuple[int, ...]
    jump: tuple[int | float, ...]
    start: tuple[int | float, ...]
    spans: tuple[tuple[tuple[int, int] | None, ...], ...]


@dataclass(frozen=True)
class FieldStack:
    """Layers drawn as grids; clicking a unit shows its ``Field`` in every earlier layer that has one.

    Attributes:
        names (tuple of str): the input, then the layers.
        shapes (tuple of tuple of int): each one's spatial shape.
        fields (tuple of Field): the known (layer, earlier) pairs.
    """

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    fields: tuple[Field, ...]


def cell_of(index) -> tuple[int, int]:
    """A spatial index (``(i,)`` or ``(y, x)``) as a ``(row, col)`` of ``Matrix.grid``.

    >>> cell_of((3,)), cell_of((1, 2))
    ((0, 3), (1, 2))
    """
    index = tuple(int(i) for i in index)
    return (0, index[0]) if len(index) == 1 else index


def running_sums(values, start: float = 0.0) -> tuple[float, ...]:
    """The totals after each value, ``start + v_0``, ``start + v_0 + v_1``, … (``np.cumsum``)."""
    return tuple(float(v) for v in start + np.cumsum(np.asarray(values, dtype=np.float64)))
