"""The Explanation object, its three renderers, number formatting, and inline/file matrix parsing."""

import numpy as np
import pytest

from convkit.explain import Explanation, Matrix, Step, Table, conv2d
from convkit.explain.explanation import MAX_COLS, fmt, latex_math, latex_text
from convkit.explain.parse import load_array, parse_array


def _demo() -> Explanation:
    return Explanation("demo: a 2×2 sum", [
        Step("Add the cells, `s = Σ A`.", ("s = 1 + 2 + 3 + 4 = 10",), Matrix("A", np.array([[1.0, 2], [3, 4]]))),
        Step("Side by side.", value=(Matrix("A", np.eye(2)), Matrix("B", -np.eye(2)))),
        Step("A table.", value=Table(("layer", "r"), (("conv", "3"), ("pool|x", "4")))),
    ], 10)


@pytest.mark.parametrize("value, text", [
    (3.0, "3"), (-0.0, "0"), (2.5, "2.5"), (1 / 3, "0.3333"), (-2 / 3, "-0.6667"), (1e-5, "1e-05"),
    (4.999999999999, "5"), (1e-17, "0"), (float("inf"), "inf"), (float("nan"), "nan"), (np.int64(7), "7"),
    (3 + 0j, "3"), (1.5 - 2j, "1.5-2i"), (complex(0, 1e-18), "0"),
])
def test_fmt_shows_numbers_as_a_learner_reads_them(value, text):
    assert fmt(value) == text


def test_text_rendering_numbers_steps_and_aligns_matrices():
    text = _demo().to_text()
    lines = text.splitlines()
    assert lines[0] == "demo: a 2×2 sum" and set(lines[1]) == {"="}
    assert "1. Add the cells, s = Σ A." in lines  # backticks dropped
    assert "     s = 1 + 2 + 3 + 4 = 10" in lines
    assert "     A = [ 1  2 ]" in lines and "         [ 3  4 ]" in lines
    assert any(line.startswith("     A = [ 1  0 ]    B = [ -1   0 ]") for line in lines)
    assert any("pool|x" in line for line in lines) and str(_demo()) == text


def test_markdown_rendering_uses_code_blocks_and_pipe_tables():
    md = _demo().to_markdown()
    assert md.startswith("### demo: a 2×2 sum\n")
    assert "**1.** Add the cells, `s = Σ A`." in md
    assert "```text\ns = 1 + 2 + 3 + 4 = 10\nA = [ 1  2 ]\n    [ 3  4 ]\n```" in md
    assert "| layer | r |\n|---|---|\n| conv | 3 |\n| pool\\|x | 4 |" in md
    assert _demo()._repr_markdown_() == md and _demo().render("markdown") == md


def test_latex_rendering_converts_formulas_matrices_and_tables():
    tex = _demo().to_latex()
    assert tex.startswith("\\subsection*{demo: a 2$\\times$2 sum}\n\\begin{enumerate}")
    assert "\\item Add the cells, $s = \\sum  A$." in tex
    assert "\\[ s = 1 + 2 + 3 + 4 = 10 \\]" in tex
    assert "A = \\begin{bmatrix} 1 & 2 \\\\ 3 & 4 \\end{bmatrix}" in tex
    assert "\\qquad" in tex and "\\begin{tabular}{rr}" in tex and tex.rstrip().endswith("\\end{enumerate}")


def test_latex_math_handles_words_subscripts_roots_and_small_numbers():
    assert latex_math("x̂ = (x − μ)/√(σ² + ε)") == r"\hat{x} = (x - \mu )/\sqrt{\sigma ^{2} + \varepsilon }"
    assert latex_math("k_eff = 1e-05") == r"k_{\text{eff}} = 1\times 10^{-5}"
    assert latex_math("running_mean = 0.9·0") == r"\text{running\_mean}\ = 0.9\cdot 0"
    assert latex_math("∂L/∂K = Xᵀ·G") == r"\partial L/\partial K = X^{\top}\cdot G"
    assert latex_text("50% of a_b & `r_1 = 3`") == r"50\% of a\_b \& $r_{1} = 3$"


def test_render_rejects_an_unknown_format():
    with pytest.raises(ValueError, match="format must be one of .*'text'.*got 'pdf'"):
        _demo().render("pdf")


def test_marked_cells_and_blank_zeros():
    m = Matrix("I", np.array([[0.0, 4.0]]), marked=np.array([[False, True]]))
    assert Explanation("t", [Step("s", value=m)]).to_text().endswith("I = [ 0   4* ]")
    assert "\\boxed{4}" in Explanation("t", [Step("s", value=m)]).to_latex()
    sparse = Matrix("T", np.array([[1.0, 0.0]]), blank_zeros=True)
    assert Explanation("t", [Step("s", value=sparse)]).to_text().endswith("T = [ 1  · ]")


def test_a_matrix_too_large_to_show_becomes_a_summary_line_saying_so():
    big = Matrix("I", np.arange(2.0 * (MAX_COLS + 1)).reshape(2, MAX_COLS + 1))
    text = Explanation("t", [Step("s", value=big)]).to_text()
    assert f"I: 2×{MAX_COLS + 1} values, too large to show" in text and "min 0, max 73" in text
    assert "too large to show" in Explanation("t", [Step("s", value=big)]).to_latex()


def test_long_sentences_wrap_but_never_inside_an_inline_formula():
    formula = "`O[y,x] = b + Σ_i Σ_j K[i,j]·I_p[2y + i, 2x + j]`"
    text = Explanation("t", [Step("word " * 15 + formula + " and more words after it." * 3)]).to_text()
    assert "O[y,x] = b + Σ_i Σ_j K[i,j]·I_p[2y + i, 2x + j]" in text
    assert max(len(line) for line in text.splitlines()) <= 100


def test_every_renderer_handles_a_real_explanation():
    e = conv2d([[1, 2], [3, 4]], [[1]], bias=[0.5])
    for fmt_name in ("text", "markdown", "latex"):
        assert "O[1,1] = 1·4 + 0.5 = 4.5" in e.render(fmt_name).replace("\\cdot ", "·")


# ---------------------------------------------------------------------- parsing
def test_parse_array_nests_rows_channels_and_kernels():
    assert parse_array("1 1 -2; 0 1 0").tolist() == [[1, 1, -2], [0, 1, 0]]
    assert parse_array("1, 2, 3").tolist() == [1, 2, 3]
    assert parse_array("1 2; 3 4 | 5 6; 7 8").shape == (2, 2, 2)
    assert parse_array("1 2 | 3 4").shape == (2, 2)
    assert parse_array("1 2; 3 4 | 5 6; 7 8 || 1 0; 0 1 | 0 1; 1 0").shape == (2, 2, 2, 2)
    assert parse_array("−1 0.5 -inf").tolist() == [-1, 0.5, -np.inf]


@pytest.mark.parametrize("text, match", [
    ("1 2 3; 4 5", r"--input: row 2 has 2 numbers but row 1 has 3 numbers; .*e\.g\. '1 2 3; 4 5 0'"),
    ("1 2; 3 4 | 5 6", r"--input: channel 2 is 1×2 but channel 1 is 2×2"),
    ("1 x; 3 4", r"--input: 'x' is not a number"),
    ("   ", r"--input is empty"),
    ("1 2;; 3 4", r"--input has an empty row"),
])
def test_parse_array_errors_name_the_problem_and_show_a_fix(text, match):
    with pytest.raises(ValueError, match=match):
        parse_array(text, "--input")


def test_load_array_reads_npy_and_csv_files_without_pickle(tmp_path):
    np.save(tmp_path / "k.npy", np.arange(6.0).reshape(2, 3))
    assert load_array(str(tmp_path / "k.npy"), "--kernel").tolist() == [[0, 1, 2], [3, 4, 5]]
    (tmp_path / "i.csv").write_text("1,2\n3,4\n\n")
    assert load_array(str(tmp_path / "i.csv")).tolist() == [[1, 2], [3, 4]]
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="not a plain numeric .npy file"):
        load_array(str(tmp_path / "obj.npy"))
    with pytest.raises(ValueError, match="--input: no such file"):
        load_array(str(tmp_path / "missing.npy"), "--input")
    (tmp_path / "ragged.csv").write_text("1,2\n3\n")
    with pytest.raises(ValueError, match="row 2 has 1 number but row 1 has 2 numbers"):
        load_array(str(tmp_path / "ragged.csv"))
