"""examples/course.ipynb runs end to end in a Jupyter kernel (nbclient), and shows HTML where it should."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

import convkit  # noqa: E402
from convkit.data import DataError  # noqa: E402

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "course.ipynb"
TRAINING = "## 8."  # the section that needs Fashion-MNIST


def _run(cells_up_to_training: bool):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    if cells_up_to_training:
        cut = next(i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and c.source.startswith(TRAINING))
        nb.cells = nb.cells[:cut]
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    return [c for c in nb.cells if c.cell_type == "code"]


def _kinds(cell) -> set[str]:
    return {kind for o in cell.outputs for kind in o.get("data", {})}


def test_the_exercises_run_and_their_reports_show_as_html():
    cells = _run(cells_up_to_training=True)
    assert all(o.output_type != "error" for c in cells for o in c.outputs)
    shown = [c for c in cells if "text/html" in _kinds(c)]
    # the explanations, the summaries, the symmetry reports: each cell ending in one shows HTML
    assert len(shown) >= 10, [c.source[:40] for c in cells]


def test_the_training_section_runs_on_fashion_mnist():
    try:
        convkit.data.load("fashion-mnist", "test")
    except DataError as e:
        pytest.skip(f"Fashion-MNIST is not on this machine ({e}); CI installs Debian's dataset-fashion-mnist")
    cells = _run(cells_up_to_training=False)
    assert all(o.output_type != "error" for c in cells for o in c.outputs)
    pictures = [c for c in cells if "image/png" in _kinds(c)]
    assert len(pictures) == 3                  # the errors, the filters, the receptive fields
    assert "text/html" in _kinds(next(c for c in cells if "ConfusionMatrix" in c.source))
