"""One self-contained HTML page for one or more ``Explanation``\\ s: every step static, then a stepper.

The page is built from the same ``Step`` objects as the text, Markdown and
LaTeX formats: each step's sentence, its formulas and its value (matrices as
tables, tables as tables), numbered across the page. A step's ``figure``
(``convkit.explain.figures``) is drawn below it: the stage matrices of its
``Frames``, or the layer grids of a ``FieldStack``. The frames and fields
travel as JSON in the page; ``page.js`` only shows them:

* without scripts (or printed) every step shows at once, with its formulas
  and values (an animated step's stage, the same matrices, shows only with
  scripts);
* with scripts one step shows at a time, with buttons, a slider, play/pause
  and the keys ← → (step), space (play/pause), Home and End; a frame
  highlights its cells, writes its caption and its terms with their running
  totals as text; clicking a unit of a ``FieldStack`` grid shows its field in
  every earlier layer;
* the URL fragment ``#step=N`` opens step N, ``#step=N.F`` its frame F.

JavaScript and CSS are inlined from this package's ``page.js`` and
``page.css``; a Content-Security-Policy forbids every request, so the page
works offline and from ``file://``.

>>> from convkit import explain
>>> page = to_html([explain.conv2d([[1, 2], [3, 4]], [[1, 0], [0, 1]])])
>>> page.startswith("<!DOCTYPE html>"), "O[0,0] = 1·1 + 0·2 + 0·3 + 1·4 = 5" in page
(True, True)
"""

from __future__ import annotations

import html
import json
from importlib import resources

import numpy as np

from ... import __version__
from ..explanation import Explanation, Matrix, Step, Table, fmt
from ..figures import FieldStack, Frames, Mark

__all__ = ["to_html", "iframe", "page_data"]

CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"


def _asset(name: str) -> str:
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def to_html(explanations: list[Explanation], title: str | None = None) -> str:
    """The page for ``explanations`` (steps numbered 1, 2, … across them), titled ``title`` or the first's title."""
    if not explanations:
        raise ValueError("to_html: give at least one Explanation")
    for e in explanations:
        if not isinstance(e, Explanation):
            raise TypeError(f"to_html: expected Explanation objects, got {type(e).__name__}")
    title = explanations[0].title if title is None else title
    sections, number = [], 1
    for e in explanations:
        sections.append(_section(e, number, heading=len(explanations) > 1 or e.title != title))
        number += len(e.steps)
    data = json.dumps(page_data(explanations), ensure_ascii=False, separators=(",", ":"))
    esc = html.escape
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>",
        f"<style>\n{_asset('page.css')}</style>",
        "</head>",
        "<body>",
        f"<header><h1>{esc(title)}</h1>",
        f'<p class="about">Every number on this page was computed by convkit {esc(__version__)}\'s engine. '
        "Step with ← → or the buttons, space plays; <code>#step=N</code> in the address opens step N.</p>",
        "</header>",
        '<nav id="controls" aria-label="steps" hidden>'
        '<button type="button" id="first" title="first step (Home)">|◀</button>'
        '<button type="button" id="prev" title="back (←)">◀ Back</button>'
        '<button type="button" id="play" title="play or pause (space)">▶ Play</button>'
        '<button type="button" id="next" title="next (→)">Next ▶</button>'
        '<button type="button" id="last" title="last step (End)">▶|</button>'
        '<input type="range" id="slider" min="0" max="0" value="0" aria-label="position">'
        '<output id="where" aria-live="polite"></output></nav>',
        "<main>",
        *sections,
        "</main>",
        f'<script type="application/json" id="convkit-data">{_script_safe(data)}</script>',
        f"<script>\n{_asset('page.js')}</script>",
        "</body>",
        "</html>",
        "",
    ])


def iframe(page: str, height: int = 640) -> str:
    """``page`` inside an ``<iframe srcdoc>`` (for Jupyter's ``_repr_html_``), escaped for the attribute."""
    return (f'<iframe srcdoc="{html.escape(page, quote=True)}" sandbox="allow-scripts" '
            f'style="width: 100%; height: {int(height)}px; border: 1px solid #ccc"></iframe>')


def _script_safe(text: str) -> str:
    """JSON inside ``<script>``: ``</`` and ``<!--`` cannot end or confuse the element."""
    return text.replace("<", "\\u003c")


# ---------------------------------------------------------------------- static HTML
def _section(e: Explanation, first: int, heading: bool) -> str:
    """One explanation's steps, numbered from ``first``, under its title when ``heading``."""
    steps = "\n".join(_step(step, first + i) for i, step in enumerate(e.steps))
    title = f"<h2>{html.escape(e.title)}</h2>\n" if heading else ""
    return f'<section class="explanation">\n{title}<ol class="steps" start="{first}">\n{steps}\n</ol>\n</section>'


def _step(step: Step, number: int) -> str:
    animated = " animated" if isinstance(step.figure, Frames) else ""
    parts = [f'<li class="step{animated}" id="step-{number}" data-step="{number}">', f"<p>{_inline(step.text)}</p>"]
    if step.formulas:
        lines = "\n".join(f'<span class="formula">{html.escape(f)}</span>' for f in step.formulas)
        parts.append(f'<pre class="formulas">{lines}</pre>')
    parts.append(_value(step.value))
    if isinstance(step.figure, Frames):
        parts.append(_frames_figure(step.figure, step.formulas))
    elif isinstance(step.figure, FieldStack):
        parts.append(_fields_figure(step.figure))
    parts.append("</li>")
    return "\n".join(p for p in parts if p)


def _inline(text: str) -> str:
    """A sentence with its backticked formulas as ``<code>``, everything escaped."""
    pieces = text.split("`")
    return "".join(f"<code>{html.escape(p)}</code>" if i % 2 else html.escape(p) for i, p in enumerate(pieces))


def _value(value) -> str:
    if isinstance(value, Matrix):
        value = (value,)
    if isinstance(value, tuple):
        return '<div class="value">' + "".join(_matrix(m) for m in value) + "</div>"
    if isinstance(value, Table):
        return _table(value)
    return ""


def _matrix(m: Matrix) -> str:
    """A matrix as a ``<table>``: caption the label, one ``<td>`` per number (marked cells get ``marked``)."""
    label = html.escape(m.label)
    if m.too_large():
        return f'<p class="summary">{html.escape(m.summary())}</p>'
    marks = None if m.marked is None else np.atleast_2d(m.marked)
    rows = []
    for i, row in enumerate(m.grid):
        cells = []
        for j, v in enumerate(row):
            text = "·" if m.blank_zeros and v == 0 else fmt(v)
            cls = ' class="marked"' if marks is not None and marks[i, j] else ""
            cells.append(f"<td{cls}>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table class="matrix"><caption>{label} =</caption><tbody>{"".join(rows)}</tbody></table>')


def _table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in table.header)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in table.rows)
    return f'<table class="data"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def _frames_figure(figure: Frames, formulas: tuple[str, ...]) -> str:
    """The stage matrices, a panel the script fills, and the captions the formulas do not already list."""
    extra = [f.caption for f in figure.frames if f.caption not in formulas]
    listed = ("<ol class=\"captions\">" + "".join(f"<li>{html.escape(c)}</li>" for c in extra) + "</ol>"
              if extra else "")
    return (f'<figure class="frames">\n<div class="stage">{"".join(_matrix(m) for m in figure.stage)}</div>\n'
            f'{listed}<div class="panel" hidden></div>\n</figure>')


def _fields_figure(figure: FieldStack) -> str:
    layers = "".join(f'<div class="layer"><div class="name">{html.escape(name)} '
                     f'<span class="shape">({html.escape("×".join(map(str, shape)))})</span></div></div>'
                     for name, shape in zip(figure.names, figure.shapes))
    return (f'<figure class="fields">\n<p class="hint" hidden>Click a unit of a layer: its receptive field lights '
            f'up in every earlier layer.</p>\n<div class="stack">{layers}</div>\n'
            f'<div class="info" aria-live="polite"></div>\n</figure>')


# ---------------------------------------------------------------------- JSON for the script
def page_data(explanations: list[Explanation]) -> dict:
    """What ``page.js`` reads: per step, in page order, its figure's data (frames or fields; None without one)."""
    steps = []
    for e in explanations:
        for step in e.steps:
            steps.append({"figure": _figure_data(step)})
    return {"steps": steps}


def _figure_data(step: Step):
    figure = step.figure
    if isinstance(figure, Frames):
        return {
            "kind": "frames",
            "running": figure.running,
            "fixed": [_mark(m) for m in figure.fixed],
            "frames": [{
                "caption": f.caption,
                "formula": step.formulas.index(f.caption) if f.caption in step.formulas else -1,
                "marks": [_mark(m) for m in f.marks],
                "terms": list(f.terms),
                "running": [fmt(v) for v in f.running],
                "values": [[i, _grid_text(figure.stage[i], grid)] for i, grid in f.values],
            } for f in figure.frames],
        }
    if isinstance(figure, FieldStack):
        return {
            "kind": "fields",
            "names": list(figure.names),
            "shapes": [list(s) for s in figure.shapes],
            "fields": [{"layer": f.layer, "earlier": f.earlier, "size": [str(v) for v in f.size],
                        "jump": [fmt(v) for v in f.jump], "start": [fmt(v) for v in f.start],
                        "spans": [[None if s is None else [int(s[0]), int(s[1])] for s in axis]
                                  for axis in f.spans]} for f in figure.fields],
        }
    return None


def _mark(m: Mark) -> list:
    return [m.matrix, m.role, [list(c) for c in m.cells]]


def _grid_text(stage: Matrix, grid: np.ndarray) -> list[list[str]]:
    """A frame's values for a stage matrix, formatted as that matrix shows its numbers."""
    return Matrix(stage.label, grid, blank_zeros=stage.blank_zeros).cells()
