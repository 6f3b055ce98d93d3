"""Finite groups of actions: ``C4``, ``D4``, ``Flips`` and ``Shifts(h, w)``.

A ``Group`` is an ordered, duplicate-free collection of ``Action``s. The
ones defined here are closed under composition and inverses (the tests
check every group law on them); a ``Group`` built from a hand-picked list,
or ``Shifts`` given an explicit subset, need not be (``is_closed()``
tells).

Shifts of an ``h``×``w`` map are periodic, so a ``Shifts`` group knows its
grid and takes circular shifts modulo it: ``g in Shifts(4, 4)`` for
``g = Shift(3, 0) * Shift(2, 0)`` because ``Shift(5, 0)`` is ``Shift(1, 0)``
on that grid (``reduce`` gives the element it stands for).

>>> len(D4), all(g in D4 for g in C4)
(8, True)
>>> Shifts(4, 4, stride=2)
Shifts(4, 4, stride=2): 4 elements [Identity(), Shift(0, 2), Shift(2, 0), Shift(2, 2)]
"""

from __future__ import annotations

from collections.abc import Iterable

from ..ops._args import is_int
from .actions import Action, Flip, Identity, Rot90, Shift

__all__ = ["Group", "Shifts", "C4", "D4", "Flips", "from_name", "GROUP_NAMES"]


class Group:
    """A finite collection of actions, in a fixed order, without repeats.

    Args:
        elements (iterable of Action): the members.
        name (str): shown by ``repr`` and in reports. Default: ``"Group"``.
        grid (tuple[int, int] or None): ``(h, w)`` of the map the group acts
            on; circular shifts are then taken modulo it. Default: None.
    """

    def __init__(self, elements: Iterable[Action], name: str = "Group", grid: tuple[int, int] | None = None):
        if grid is not None:
            if (not isinstance(grid, (tuple, list)) or len(grid) != 2
                    or not all(is_int(v) and v >= 1 for v in grid)):
                raise ValueError(f"Group: grid must be a pair of positive ints (h, w), got {grid!r}")
            grid = (int(grid[0]), int(grid[1]))
        self.name = str(name)
        self.grid = grid
        members: dict[Action, None] = {}
        for i, g in enumerate(elements):
            if not isinstance(g, Action):
                raise TypeError(f"Group: element {i} must be an Action, got {type(g).__name__} {g!r}")
            members[self.reduce(g)] = None
        if not members:
            raise ValueError("Group: needs at least one element, got none")
        self._elements = tuple(members)

    def reduce(self, g: Action) -> Action:
        """``g`` with its circular shift taken modulo the group's grid (``g`` itself without a grid)."""
        return g.wrapped(*self.grid) if self.grid is not None else g

    def __len__(self) -> int:
        return len(self._elements)

    def __iter__(self):
        return iter(self._elements)

    def __getitem__(self, i: int) -> Action:
        return self._elements[i]

    def __contains__(self, g) -> bool:
        return isinstance(g, Action) and self.reduce(g) in self._elements

    def is_closed(self) -> bool:
        """Whether every product and every inverse of members is a member (|G|² products)."""
        members = set(self._elements)
        try:
            return (all(self.reduce(a * b) in members for a in self for b in self)
                    and all(self.reduce(a.inverse()) in members for a in self))
        except ValueError:  # zero-filled shifts that do not compose or invert
            return False

    def __repr__(self) -> str:
        shown = ", ".join(repr(g) for g in self._elements[:8])
        more = f", ... ({len(self) - 8} more)" if len(self) > 8 else ""
        return f"{self.name}: {len(self)} elements [{shown}{more}]"


class Shifts(Group):
    """Circular shifts of an ``h``×``w`` map: all ``h*w`` of them, those by multiples of a stride, or a subset.

    Args:
        h (int), w (int): the map's height and width (shifts are taken modulo them).
        stride (int or tuple[int, int]): keep the shifts by multiples of
            ``(sy, sx)``, which must divide ``(h, w)`` so that they form a
            group (the shifts a stride-``s`` network can be equivariant to). Default: 1.
        shifts (iterable of (dy, dx) or None): exactly these shifts instead
            (the identity is added first); such a subset is not a group in
            general. Default: None.
    """

    def __init__(self, h: int, w: int, stride=1, shifts: Iterable[tuple[int, int]] | None = None):
        for arg, v in (("h", h), ("w", w)):
            if not is_int(v) or v < 1:
                raise ValueError(f"Shifts: {arg} must be a positive int, got {v!r}")
        sy, sx = (stride, stride) if is_int(stride) else tuple(stride)
        if not (is_int(sy) and is_int(sx) and sy >= 1 and sx >= 1):
            raise ValueError(f"Shifts: stride must be a positive int or a pair, got {stride!r}")
        if shifts is not None:
            if (sy, sx) != (1, 1):
                raise ValueError(f"Shifts: give either stride ({stride!r}) or shifts, not both")
            pairs = [(0, 0)] + [_pair(s) for s in shifts]
            name = f"Shifts({h}, {w}, {len(set(pairs))} given)"
        else:
            if h % sy or w % sx:
                raise ValueError(
                    f"Shifts: stride ({sy}, {sx}) must divide the grid ({h}, {w}); otherwise the shifts by "
                    f"its multiples do not form a group (they wrap onto other shifts)"
                )
            pairs = [(dy, dx) for dy in range(0, h, sy) for dx in range(0, w, sx)]
            name = f"Shifts({h}, {w})" if (sy, sx) == (1, 1) else \
                f"Shifts({h}, {w}, stride={sy if sy == sx else (sy, sx)})"
        super().__init__((Shift(dy, dx) for dy, dx in pairs), name=name, grid=(h, w))


def _pair(s) -> tuple[int, int]:
    if not isinstance(s, (tuple, list)) or len(s) != 2 or not all(is_int(v) for v in s):
        raise TypeError(f"Shifts: each shift must be a pair of ints (dy, dx), got {s!r}")
    return int(s[0]), int(s[1])


C4 = Group([Rot90(k) for k in range(4)], name="C4")
"""The four rotations by multiples of 90°."""

D4 = Group([*C4, *(Rot90(k) * Flip("w") for k in range(4))], name="D4")
"""The symmetries of the square: four rotations and four reflections (both flips and both diagonals)."""

Flips = Group([Identity(), Flip("h"), Flip("w"), Flip("h") * Flip("w")], name="Flips")
"""Both flips and their product, the half turn ``Rot90(2)`` (the smallest group holding both flips)."""

GROUP_NAMES = ("shifts", "flips", "c4", "d4")


def from_name(name: str, h: int, w: int) -> Group:
    """The group called ``name`` (``GROUP_NAMES``) for an ``h``×``w`` input: ``Shifts(h, w)`` or a constant."""
    groups = {"flips": Flips, "c4": C4, "d4": D4}
    if name == "shifts":
        return Shifts(h, w)
    if name not in groups:
        raise ValueError(f"from_name: name must be one of {', '.join(GROUP_NAMES)}, got {name!r}")
    return groups[name]
