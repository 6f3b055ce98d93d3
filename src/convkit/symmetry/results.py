"""What ``report`` returns: one ``LayerReport`` per call of a leaf module, in a ``SymmetryReport``.

``str()`` of a ``SymmetryReport`` is the table (one row per call: the
error, how many of the checked group elements fail, the status), the
reasons of the breaking rows and a verdict; ``to_dict()`` the same as
JSON-ready data; ``_repr_html_`` the same as HTML for notebooks. When only a
random sample of the group was checked, the verdict says what the sample
shows of the whole group at 95 % confidence (``SymmetryReport._confidence``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import _html

__all__ = ["LayerReport", "SymmetryReport"]


@dataclass(frozen=True)
class LayerReport:
    """One prefix of the model: the layer that ends it and what holds at its output.

    Attributes:
        index (int): position in the flattened chain.
        name (str): dotted name in the model (``"features.0"``).
        layer (str): short description of the layer.
        output_shape (tuple): the prefix's output shape for the batch of one.
        kind (str): ``"equivariance"`` or ``"invariance"`` (once the spatial map is gone).
        max_error (float): the largest relative error over the group.
        failing (int): how many group elements exceed the tolerance.
        status (str): ``"holds"``, ``"breaks"`` (new failures at this layer),
            ``"inherited"`` (failures already present at its input) or
            ``"restored"`` (holds again after failing at its input).
        reasons (tuple[str, ...]): why the layer breaks the symmetry, from its configuration; for
            ``"inherited"`` rows, what would break it even if its input kept the symmetry.
    """

    index: int
    name: str
    layer: str
    output_shape: tuple[int, ...]
    kind: str
    max_error: float
    failing: int
    status: str
    reasons: tuple[str, ...]

    @property
    def holds(self) -> bool:
        return self.failing == 0


@dataclass(frozen=True)
class SymmetryReport:
    """The result of ``report``: one ``LayerReport`` per call; ``str()`` renders a table.

    ``checked`` is how many group elements were run: all ``group_size`` of
    them, or a random sample of them (``sampled``); the rows' ``failing``
    counts are out of ``checked``.
    """

    model: str
    group: str
    group_size: int
    input_shape: tuple[int, ...]
    dtype: np.dtype
    seed: int
    atol: float
    rows: tuple[LayerReport, ...]
    checked: int = 0

    @property
    def sampled(self) -> bool:
        """Whether only a random sample of the group was checked."""
        return 0 < self.checked < self.group_size

    @property
    def holds(self) -> bool:
        """Whether the whole model keeps the symmetry (its last prefix holds)."""
        return self.rows[-1].holds

    @property
    def breaks(self) -> list[LayerReport]:
        """The layers that break the symmetry, in order."""
        return [r for r in self.rows if r.status == "breaks"]

    def __repr__(self) -> str:
        where = ", ".join(f"{r.index} ({r.layer})" for r in self.breaks) or "nowhere"
        return (f"SymmetryReport({self.model} under {self.group}: "
                f"{'holds' if self.holds else 'broken'}; breaks at {where})")

    def __str__(self) -> str:
        table = [_COLUMNS] + self._cells()
        widths = [max(len(row[i]) for row in table) for i in range(len(_COLUMNS))]
        lines = [self._heading(), ""]
        for row in table:
            lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        return "\n".join(lines + [""] + self._reasons() + [self._verdict()])

    def to_dict(self) -> dict:
        """Every field as JSON-ready data: the settings, ``holds``, the verdict and one dict per row."""
        return {"model": self.model, "group": self.group, "group_size": self.group_size, "checked": self.checked,
                "input_shape": list(self.input_shape), "dtype": str(self.dtype), "seed": self.seed, "atol": self.atol,
                "holds": self.holds, "verdict": self._verdict(),
                "rows": [{"index": r.index, "name": r.name, "layer": r.layer, "output_shape": list(r.output_shape),
                          "kind": r.kind, "max_error": r.max_error, "failing": r.failing, "status": r.status,
                          "reasons": list(r.reasons)} for r in self.rows]}

    def _repr_html_(self) -> str:
        """The same table, reasons and verdict as ``str()``, as HTML (what a notebook shows)."""
        return _html.table(_COLUMNS, self._cells(), caption=self._heading(), notes=self._reasons() + [self._verdict()])

    def _heading(self) -> str:
        checked = f", {self.checked} sampled at random" if self.sampled else ""
        return (f"{self.model} under {self.group} ({self.group_size} elements{checked}), input "
                f"{'x'.join(map(str, self.input_shape))} {self.dtype}, seed {self.seed}, tolerance {self.atol:.0e}")

    def _cells(self) -> list[tuple[str, ...]]:
        return [(str(r.index), r.layer, "x".join(map(str, r.output_shape[1:])), r.kind, f"{r.max_error:.1e}",
                 f"{r.failing}/{self.checked}", r.status) for r in self.rows]

    def _reasons(self) -> list[str]:
        lines = []
        for r in self.rows:
            also = "already broken at its input, and also: " if r.status == "inherited" else ""
            lines += [f"layer {r.index} ({r.layer}): {also}{reason}" for reason in r.reasons]
        return lines

    def _verdict(self) -> str:
        final = self.rows[-1]
        if self.holds:
            return (f"verdict: the model is {'invariant' if final.kind == 'invariance' else 'equivariant'} "
                    f"under {self.group} (largest error {final.max_error:.1e})" + self._confidence(0))
        first = self.breaks[0] if self.breaks else final
        return (f"verdict: {final.kind} fails under {self.group}: first broken at layer {first.index} ({first.layer})"
                + self._confidence(final.failing))

    def _confidence(self, failing: int) -> str:
        """For a sample, what it says of the whole group, at 95 % confidence (nothing when all were checked).

        No failure in ``n``: at most ``3/n`` of the group fails (the rule of
        three); else the Wilson score interval of the failing fraction.
        """
        if not self.sampled:
            return ""
        n = self.checked
        if failing == 0:
            return (f"; {n} of the {self.group_size} elements sampled: with 95 % confidence at most "
                    f"{min(1.0, 3 / n):.1%} of the group fails")
        p, z = failing / n, 1.96
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return (f"; {failing} of {n} sampled elements fail: {max(0.0, centre - half):.1%} to "
                f"{min(1.0, centre + half):.1%} of the group, at 95 % confidence")


_COLUMNS = ("#", "layer", "output", "check", "max error", "fails", "verdict")

