"""Sums written out term by term, and which cells of a large result get written out.

A sum longer than ``MAX_TERMS`` terms keeps its first and last terms around
a ``…`` and says how many there are; a result with more than
``MAX_FORMULAS`` cells has only a few of them written out, and the step says
so (``cells_note``). The HTML page animates every cell up to ``MAX_FRAMES``
(``frame_cells``).
"""

from __future__ import annotations

import itertools
import math

from .explanation import fmt

MAX_TERMS = 18
MAX_FORMULAS = 16
MAX_FRAMES = 64
HEAD_TERMS, TAIL_TERMS = 6, 3
SHOWN_WHEN_LARGE = 4


def operand(value) -> str:
    """A number as a factor: negatives in parentheses, ``(-2)``."""
    text = fmt(value)
    return f"({text})" if text.startswith("-") else text


def product(a, b) -> str:
    """``a·b`` with ``operand`` formatting.

    >>> product(2, -1)
    '2·(-1)'
    """
    return f"{operand(a)}·{operand(b)}"


def join_terms(terms: list[str], noun: str = "products") -> str:
    """``t1 + t2 + …``, shortened to ``HEAD_TERMS`` … ``TAIL_TERMS`` terms beyond ``MAX_TERMS``.

    >>> join_terms([str(i) for i in range(20)], "terms")
    '0 + 1 + 2 + 3 + 4 + 5 + … + 17 + 18 + 19 (20 terms)'
    """
    if len(terms) <= MAX_TERMS:
        return " + ".join(terms)
    return " + ".join(terms[:HEAD_TERMS] + ["…"] + terms[-TAIL_TERMS:]) + f" ({len(terms)} {noun})"


def grouped_terms(groups: list[list[str]], noun: str = "products") -> str:
    """Terms grouped in parentheses (one group per channel), or flat when shortened or a single group."""
    flat = [t for g in groups for t in g]
    if len(groups) == 1 or len(flat) > MAX_TERMS:
        return join_terms(flat, noun)
    return " + ".join("(" + " + ".join(g) + ")" for g in groups)


def cells(shape) -> list[tuple[int, ...]]:
    """Cells of an array of ``shape`` to write out: all of them up to ``MAX_FORMULAS``, else a few."""
    every = list(itertools.product(*(range(n) for n in shape)))
    if len(every) <= MAX_FORMULAS:
        return every
    return every[:SHOWN_WHEN_LARGE - 1] + every[-1:]


def frame_cells(shape) -> list[tuple[int, ...]]:
    """Cells an HTML page animates one frame each: all of them up to ``MAX_FRAMES``, else those ``cells`` picks."""
    every = list(itertools.product(*(range(n) for n in shape)))
    return every if len(every) <= MAX_FRAMES else cells(shape)


def cells_note(shape, what: str = "output") -> str:
    """The sentence for a result too large to write out cell by cell, or ``""``."""
    total = math.prod(shape)
    if total <= MAX_FORMULAS:
        return ""
    return (f" The {what} has {total} cells, more than the {MAX_FORMULAS} written out one by one, so this "
            f"shows {SHOWN_WHEN_LARGE} of them (the first {SHOWN_WHEN_LARGE - 1} and the last); "
            f"every other cell follows the same rule.")
