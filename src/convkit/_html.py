"""Static HTML tables for notebooks (``_repr_html_`` of reports that are tables): escaped, no script."""

from __future__ import annotations

import html
from collections.abc import Sequence


def table(header: Sequence[str], rows: Sequence[Sequence[object]], *, caption: str = "",
          shades: Sequence[Sequence[float | None]] | None = None, notes: Sequence[str] = ()) -> str:
    """An HTML ``<table>``: ``header`` cells, then ``rows`` (each cell shown with ``str``), every text escaped.

    ``shades`` (same shape as ``rows``) gives cells a blue background of
    that strength in ``[0, 1]`` (None: none), for heat maps; ``notes`` are
    paragraphs after the table.
    """
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = []
    for i, row in enumerate(rows):
        cells = []
        for j, value in enumerate(row):
            level = shades[i][j] if shades is not None else None
            style = ""
            if level is not None:
                ink = "white" if level > 0.5 else "black"
                style = f' style="background: rgba(31, 119, 180, {level:.2f}); color: {ink}"'
            cells.append(f"<td{style}>{html.escape(str(value))}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    title = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    after = "".join(f"<p>{html.escape(n)}</p>" for n in notes)
    return (f'<table style="border-collapse: collapse; text-align: right">{title}<thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>{after}")
