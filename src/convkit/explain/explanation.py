"""``Explanation``: an ordered list of ``Step``\\ s, rendered as plain text, Markdown or LaTeX.

A ``Step`` is one short sentence, the formulas of that step with the numbers
substituted (plain Unicode, e.g. ``O[0,0] = 1·2 + 0·1 = 2``), and an optional
value: a ``Matrix``, several matrices shown side by side, or a ``Table``.
Inline formulas inside a sentence are written between backticks.

The renderers hold all the layout:

* ``to_text()`` (also ``str()``): aligned matrices and tables for a terminal;
* ``to_markdown()`` (also ``_repr_markdown_`` for Jupyter): a heading, one
  paragraph per step, formulas and matrices in ``text`` code blocks, tables
  as pipe tables;
* ``to_latex()``: a fragment (``\\subsection*`` and an ``enumerate``) for a
  document that loads ``amsmath``; formulas become display math, matrices
  ``bmatrix``, tables ``tabular``;
* ``to_html()`` (``_repr_html_`` in an iframe): a self-contained page that
  also animates each step's ``figure`` (``convkit.explain.html``).

Matrices larger than ``MAX_ROWS`` x ``MAX_COLS`` (or ``MAX_CELLS`` numbers)
render as one summary line that says so.

>>> import numpy as np
>>> e = Explanation("demo", [Step("The sum `s = 1 + 2`.", ("s = 1 + 2 = 3",), Matrix("A", np.eye(2)))], 3)
>>> print(e)
demo
====
1. The sum s = 1 + 2.
     s = 1 + 2 = 3
     A = [ 1  0 ]
         [ 0  1 ]
"""

from __future__ import annotations

import json
import math
import re
import textwrap
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAX_ROWS = 32
MAX_COLS = 36
MAX_CELLS = 576
TEXT_WIDTH = 100

__all__ = ["Explanation", "Step", "Matrix", "Table", "fmt", "roundoff", "MAX_ROWS", "MAX_COLS", "MAX_CELLS"]


def fmt(value) -> str:
    """A number as a learner reads it: ``3`` not ``3.0``, at most 4 decimals, ``1e-05`` for small ones.

Below 1e-9 it is ``0``: round-off of a float64 sum, not a value of an example.

    Complex numbers print as ``a+bi`` (``a`` alone when the imaginary part
    rounds to 0).

    >>> fmt(3.0), fmt(-0.0), fmt(1 / 3), fmt(1e-5), fmt(2 - 1j), fmt(float("-inf"))
    ('3', '0', '0.3333', '1e-05', '2-1i', '-inf')
    """
    if isinstance(value, (complex, np.complexfloating)):
        re_part, im_part = fmt(value.real), fmt(abs(value.imag))
        if im_part == "0":
            return re_part
        return f"{re_part}{'-' if value.imag < 0 else '+'}{im_part}i"
    v = float(value)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if abs(v) < 1e-9:
        return "0"
    if abs(v) < 1e-3:
        return f"{v:.3g}"
    r = round(v, 4)
    if r == int(r):
        return str(int(r))
    return f"{r:.4f}".rstrip("0")


def roundoff(value: float) -> str:
    """A round-off size in scientific notation, ``4.4e-16`` (``0`` when exact)."""
    return "0" if value == 0 else f"{value:.1e}"


@dataclass(frozen=True)
class Matrix:
    """A 1-D or 2-D array to show, with its label.

    Attributes:
        label (str): name shown before it, e.g. ``"K"`` or ``"∂L/∂O"``.
        data (ndarray): the values (1-D shows as one row).
        marked (ndarray | None): bool mask of the same shape; marked cells
            show with a ``*`` (text, Markdown) or boxed (LaTeX).
        blank_zeros (bool): show zeros as ``·`` (for sparse matrices).
    """

    label: str
    data: np.ndarray
    marked: np.ndarray | None = None
    blank_zeros: bool = False

    @property
    def grid(self) -> np.ndarray:
        """``data`` as 2-D (a 1-D array is one row)."""
        return np.atleast_2d(self.data)

    def too_large(self) -> bool:
        rows, cols = self.grid.shape
        return rows > MAX_ROWS or cols > MAX_COLS or rows * cols > MAX_CELLS

    def summary(self) -> str:
        """One line saying the matrix is too large to show, with its shape and range."""
        d = np.asarray(self.data)
        shape = "×".join(str(n) for n in d.shape)
        real = d.real if np.iscomplexobj(d) else d
        return (f"{self.label}: {shape} values, too large to show (limit {MAX_ROWS}×{MAX_COLS}, "
                f"{MAX_CELLS} numbers); min {fmt(real.min())}, max {fmt(real.max())}, mean {fmt(real.mean())}")

    def cells(self) -> list[list[str]]:
        """The cells as strings, marks and blanks applied."""
        grid = self.grid
        marks = None if self.marked is None else np.atleast_2d(self.marked)
        rows = []
        for i, row in enumerate(grid):
            cells = []
            for j, v in enumerate(row):
                text = "·" if self.blank_zeros and v == 0 else fmt(v)
                if marks is not None:
                    text += "*" if marks[i, j] else " "
                cells.append(text)
            rows.append(cells)
        return rows


@dataclass(frozen=True)
class Table:
    """Rows of preformatted cells under a header.

    Attributes:
        header (tuple of str): column titles.
        rows (tuple of tuple of str): one tuple per row, as long as ``header``.
    """

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Step:
    """One step: a short sentence, its formulas with numbers, and the value it produces.

    Attributes:
        text (str): the sentence; inline formulas between backticks.
        formulas (tuple of str): one formula per line, numbers substituted.
        value (Matrix | tuple of Matrix | Table | None): what the step
            produces; a tuple of matrices shows side by side.
        figure (Frames | FieldStack | None): what the HTML page animates
            (``convkit.explain.figures``); the other formats show the formulas.
    """

    text: str
    formulas: tuple[str, ...] = ()
    value: Matrix | tuple[Matrix, ...] | Table | None = None
    figure: Any = None


@dataclass
class Explanation:
    """A worked computation: a title, ordered steps and the final result.

    Attributes:
        title (str): what is computed, e.g. ``"conv2d: 3×3 input, 2×2 kernel"``.
        steps (list of Step): in order.
        result: the final value(s) from the engine: an ndarray, a tuple, or a
            dict of named arrays (e.g. gradients).
    """

    title: str
    steps: list[Step] = field(default_factory=list)
    result: Any = None

    def __str__(self) -> str:
        return self.to_text()

    def render(self, format: str = "text") -> str:
        """``to_text()``, ``to_markdown()``, ``to_latex()``, ``to_html()`` or ``to_json()`` by name."""
        renderers = {"text": self.to_text, "markdown": self.to_markdown, "latex": self.to_latex, "html": self.to_html,
                     "json": self.to_json}
        if format not in renderers:
            raise ValueError(f"render: format must be one of {tuple(renderers)}, got {format!r}")
        return renderers[format]()

    # ------------------------------------------------------------------ text
    def to_text(self) -> str:
        """Plain text for a terminal: numbered steps, formulas and values indented."""
        lines = [self.title, "=" * min(len(self.title), TEXT_WIDTH)]
        for number, step in enumerate(self.steps, 1):
            head = f"{number}. "
            lines.extend(_wrap(step.text, head))
            lines.extend("     " + line for line in _body_lines(step))
        return "\n".join(lines)

    # ------------------------------------------------------------------ markdown
    def to_markdown(self, level: int = 3) -> str:
        """Markdown: a heading of ``level``, one paragraph per step, code blocks for formulas and matrices."""
        parts = [f"{'#' * level} {self.title}"]
        for number, step in enumerate(self.steps, 1):
            parts.append(f"**{number}.** {step.text}")
            if isinstance(step.value, Table):
                if step.formulas:
                    parts.append(_fence(list(step.formulas)))
                parts.append(_markdown_table(step.value))
            else:
                body = _body_lines(step)
                if body:
                    parts.append(_fence(body))
        return "\n\n".join(parts) + "\n"

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    # ------------------------------------------------------------------ latex
    def to_latex(self) -> str:
        """A LaTeX fragment (needs ``amsmath``): a ``\\subsection*`` and an ``enumerate`` of the steps."""
        out = [f"\\subsection*{{{latex_text(self.title)}}}", "\\begin{enumerate}"]
        for step in self.steps:
            out.append(f"\\item {latex_text(step.text)}")
            out.extend(f"\\[ {latex_math(f)} \\]" for f in step.formulas)
            out.extend(_latex_value(step.value))
        out.append("\\end{enumerate}")
        return "\n".join(out) + "\n"

    # ------------------------------------------------------------------ json
    def to_dict(self) -> dict:
        """Every step and the result as JSON-ready data: ``title``, ``steps`` (``text``, ``formulas``,
        ``value``: a matrix as ``{"label", "data"}`` (complex numbers as ``[re, im]``), several as a list, a
        table as ``{"header", "rows"}``) and ``result`` (arrays as nested lists)."""
        return {"title": self.title,
                "steps": [{"text": s.text, "formulas": list(s.formulas), "value": _plain_value(s.value)}
                          for s in self.steps],
                "result": _plain(self.result)}

    def to_json(self) -> str:
        """``to_dict()`` as JSON text."""
        return json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n"

    # ------------------------------------------------------------------ html
    def to_html(self) -> str:
        """A self-contained interactive HTML page (``convkit.explain.html``): every step, then a stepper."""
        from .html import to_html

        return to_html([self])

    def _repr_html_(self) -> str:
        """The page in an ``<iframe srcdoc>``, for Jupyter."""
        from .html import iframe

        return iframe(self.to_html())


# ---------------------------------------------------------------------- text layout
def _wrap(text: str, head: str) -> list[str]:
    """``text`` wrapped at ``TEXT_WIDTH`` after ``head``, never inside an inline formula, backticks dropped."""
    parts = text.split("`")
    joined = "".join(p.replace(" ", "\u00a0") if i % 2 else p for i, p in enumerate(parts))
    lines = textwrap.wrap(joined, TEXT_WIDTH, initial_indent=head, subsequent_indent=" " * len(head),
                          break_long_words=False, break_on_hyphens=False)
    return [line.replace("\u00a0", " ") for line in lines]


def _body_lines(step: Step) -> list[str]:
    """Formulas, then the value, as text lines (shared by text and Markdown)."""
    lines = list(step.formulas)
    value = step.value
    if isinstance(value, Matrix):
        lines.extend(_side_by_side([value]))
    elif isinstance(value, tuple):
        lines.extend(_side_by_side(list(value)))
    elif isinstance(value, Table):
        lines.extend(_text_table(value))
    return lines


def _matrix_block(m: Matrix) -> list[str]:
    """``label = [ ... ]`` rows, columns right-aligned; or the summary line."""
    if m.too_large():
        return [m.summary()]
    cells = m.cells()
    width = max(len(c) for row in cells for c in row)
    head = f"{m.label} = "
    rows = ["[ " + "  ".join(c.rjust(width) for c in row) + " ]" for row in cells]
    return [(head if i == 0 else " " * len(head)) + row for i, row in enumerate(rows)]


def _side_by_side(matrices: list[Matrix]) -> list[str]:
    """Matrix blocks next to each other while they fit in ``TEXT_WIDTH``, else on the next band."""
    blocks = [_matrix_block(m) for m in matrices]
    lines: list[str] = []
    band: list[list[str]] = []
    for block in blocks:
        width = sum(max(map(len, b)) + 4 for b in band) + max(map(len, block))
        if band and width > TEXT_WIDTH:
            lines.extend(_join_band(band))
            band = []
        band.append(block)
    lines.extend(_join_band(band))
    return lines


def _join_band(band: list[list[str]]) -> list[str]:
    height = max(len(b) for b in band)
    widths = [max(map(len, b)) for b in band]
    return ["    ".join((b[i] if i < len(b) else "").ljust(w) for b, w in zip(band, widths)).rstrip()
            for i in range(height)]


def _text_table(table: Table) -> list[str]:
    widths = [max(len(str(r[i])) for r in (table.header, *table.rows)) for i in range(len(table.header))]
    def line(row):
        return "  ".join(str(c).rjust(w) for c, w in zip(row, widths)).rstrip()
    return [line(table.header), "  ".join("-" * w for w in widths), *(line(r) for r in table.rows)]


def _fence(lines: list[str]) -> str:
    return "```text\n" + "\n".join(lines) + "\n```"


def _markdown_table(table: Table) -> str:
    def line(row):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |"
    return "\n".join([line(table.header), "|" + "---|" * len(table.header), *(line(r) for r in table.rows)])


# ---------------------------------------------------------------------- LaTeX
_LATEX_SYMBOLS = {
    "·": r"\cdot ", "−": "-", "×": r"\times ", "…": r"\dots ", "⌊": r"\lfloor ", "⌋": r"\rfloor ",
    "⌈": r"\lceil ", "⌉": r"\rceil ", "Σ": r"\sum ", "∂": r"\partial ", "μ": r"\mu ", "σ": r"\sigma ",
    "ε": r"\varepsilon ", "γ": r"\gamma ", "β": r"\beta ", "²": "^{2}", "ᵀ": r"^{\top}", "≈": r"\approx ",
    "←": r"\leftarrow ", "→": r"\rightarrow ", "⋆": r"\star ", "∗": r"\ast ", "≤": r"\le ", "≥": r"\ge ",
    "≠": r"\ne ", "ℱ": r"\mathcal{F}", "⁻¹": "^{-1}", "∈": r"\in ", "⊙": r"\odot ", "ω": r"\omega ",
    "π": r"\pi ", "%": r"\%", "#": r"\#", "&": r"\&", "{": r"\{", "}": r"\}",
    "∞": r"\infty ", "±": r"\pm ", "⊛": r"\circledast ", "x̂": r"\hat{x}", "|": r"\vert ", "√": r"\surd ",
}
_TOKEN = re.compile(r"x̂|⁻¹|[A-Za-z]{2,}[A-Za-z0-9]*(?:_[A-Za-z0-9]+)*|[A-Za-z][A-Za-z0-9]*"
                    r"|\d+(?:\.\d+)?(?:e[-+]?\d+)?|\s+|.", re.S)
_TEXT_SPECIAL = {"\\": r"\textbackslash{}", "%": r"\%", "#": r"\#", "&": r"\&", "_": r"\_", "{": r"\{",
                 "}": r"\}", "$": r"\$", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_math(formula: str) -> str:
    """A plain Unicode formula as LaTeX math (without the delimiters).

    Words of two or more letters (``running_mean``, ``conv2d``) become
    ``\\text`` with the spaces around them kept, ``_x`` after a one-letter
    name is a subscript, ``√(…)`` becomes ``\\sqrt{…}``, and the symbols of
    ``_LATEX_SYMBOLS`` their commands.

    >>> latex_math("O[0,1] = 1·2 + (-1)·3 = -1")
    'O[0,1] = 1\\\\cdot 2 + (-1)\\\\cdot 3 = -1'
    >>> latex_math("x̂ = (x − μ)/√(σ² + ε)")
    '\\\\hat{x} = (x - \\\\mu )/\\\\sqrt{\\\\sigma ^{2} + \\\\varepsilon }'
    """
    tokens = _TOKEN.findall(formula)
    out: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "√" and i + 1 < len(tokens) and tokens[i + 1] == "(":
            depth, j = 0, i + 1
            while j < len(tokens):
                depth += {"(": 1, ")": -1}.get(tokens[j], 0)
                if depth == 0:
                    break
                j += 1
            out.append(r"\sqrt{" + latex_math("".join(tokens[i + 2:j])) + "}")
            i = j + 1
            continue
        if tok == "_" and i + 1 < len(tokens):
            out.append("_{" + latex_math(tokens[i + 1]) + "}")
            i += 2
            continue
        if tok.isspace():
            after_word = i > 0 and _is_word(tokens[i - 1]) and not (i > 1 and tokens[i - 2] == "_")
            before_word = i + 1 < len(tokens) and _is_word(tokens[i + 1])
            out.append("\\ " if after_word or before_word else " ")
        else:
            out.append(_latex_token(tok))
        i += 1
    return "".join(out)


def _is_word(tok: str) -> bool:
    """A name of two or more letters, set as text (``max`` is the operator)."""
    return re.fullmatch(r"[A-Za-z]{2,}[A-Za-z0-9_]*", tok) is not None and tok != "max"


def _latex_token(tok: str) -> str:
    if tok in _LATEX_SYMBOLS:
        return _LATEX_SYMBOLS[tok]
    if m := re.fullmatch(r"(\d+(?:\.\d+)?)e([-+]?\d+)", tok):
        return rf"{m[1]}\times 10^{{{int(m[2])}}}"
    if tok == "max":
        return r"\max "
    if _is_word(tok):
        return r"\text{" + tok.replace("_", r"\_") + "}"
    return tok


def latex_text(text: str) -> str:
    """A sentence as LaTeX text: specials escaped, backticked parts as inline math, stray symbols in math."""
    parts = text.split("`")
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append(f"${latex_math(part)}$")
            continue
        for ch in part:
            if ch in _TEXT_SPECIAL:
                out.append(_TEXT_SPECIAL[ch])
            elif ch in _LATEX_SYMBOLS and ord(ch) > 127:
                out.append(f"${_LATEX_SYMBOLS[ch].strip()}$")
            else:
                out.append(ch)
    return "".join(out)


def _latex_matrix(m: Matrix) -> str:
    if m.too_large():
        return latex_text(m.summary())
    grid = m.grid
    marks = None if m.marked is None else np.atleast_2d(m.marked)
    rows = []
    for i, row in enumerate(grid):
        cells = []
        for j, v in enumerate(row):
            cell = r"\cdot" if m.blank_zeros and v == 0 else latex_math(fmt(v))
            cells.append(rf"\boxed{{{cell}}}" if marks is not None and marks[i, j] else cell)
        rows.append(" & ".join(cells))
    body = r" \\ ".join(rows)
    return f"{latex_math(m.label)} = \\begin{{bmatrix}} {body} \\end{{bmatrix}}"


def _latex_value(value) -> list[str]:
    if isinstance(value, Matrix):
        value = (value,)
    if isinstance(value, tuple):
        shown = [v for v in value if not v.too_large()]
        lines = [latex_text(v.summary()) for v in value if v.too_large()]
        if shown:
            lines.insert(0, "\\[ " + r" \qquad ".join(_latex_matrix(v) for v in shown) + " \\]")
        return lines
    if isinstance(value, Table):
        spec = "r" * len(value.header)
        rows = [" & ".join(latex_text(str(c)) for c in row) + r" \\" for row in value.rows]
        return ["\\begin{center}", f"\\begin{{tabular}}{{{spec}}}",
                " & ".join(latex_text(h) for h in value.header) + r" \\ \hline", *rows,
                "\\end{tabular}", "\\end{center}"]
    return []


def _plain(value):
    """``value`` with arrays, NumPy scalars, tuples and dicts made JSON-ready (complex as ``[re, im]``)."""
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, (complex, np.complexfloating)):
        return [float(value.real), float(value.imag)]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _plain_value(value):
    """A step's value as JSON-ready data (see ``Explanation.to_dict``)."""
    if isinstance(value, Matrix):
        return {"label": value.label, "data": _plain(value.data)}
    if isinstance(value, Table):
        return {"header": list(value.header), "rows": [list(r) for r in value.rows]}
    if isinstance(value, tuple):
        return [_plain_value(v) for v in value]
    return _plain(value)
