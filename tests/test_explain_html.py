"""The HTML page of an explanation, without a browser: well-formed, self-contained, its data the engine's numbers."""

import html
import json
import re
import shlex
from html.parser import HTMLParser

import numpy as np
import pytest

from convkit import explain, nn
from convkit.analysis import summary
from convkit.cli import build_parser, main
from convkit.cli.explain import EXAMPLES, topic_explanations
from convkit.explain import Explanation, Matrix, Step
from convkit.explain.explanation import fmt
from convkit.explain.figures import FieldStack, Frames
from convkit.explain.html import to_html
from convkit.models import build

VOID = {"meta", "input", "br", "hr", "img", "link", "col", "wbr"}
MAX_PAGE_BYTES = 400_000


class _Checker(HTMLParser):
    """Every element closed in order; collects the text, the JSON data and the iframe srcdoc attributes."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.open, self.errors, self.text, self.srcdoc = [], [], [], []
        self.data, self._in_data = None, False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "iframe":
            self.srcdoc.append(attrs["srcdoc"])
        if tag == "script" and attrs.get("id") == "convkit-data":
            self._in_data = True
        if tag not in VOID:
            self.open.append(tag)

    def handle_endtag(self, tag):
        if not self.open or self.open[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.open[-1:]}")
        else:
            self.open.pop()
        self._in_data = False

    def handle_data(self, data):
        if self._in_data:
            self.data = json.loads(data)
        self.text.append(data)


# Beyond the CLI's examples: channels, groups, bias, dilation, padding modes, ceil_mode, 1-D, 2-D FFT.
_I2 = np.array([[[1.0, 2, 0], [0, 1, 2], [2, 0, 1]], [[1, 0, 1], [0, 1, 0], [1, 0, 1]]])
_K4 = np.array([[[[1.0, 0], [0, -1]], [[1, 1], [0, 0]]], [[[0, 1], [1, 0]], [[2, 0], [0, 2]]]])
MORE_CASES = {
    "conv1d-channels-dilation": lambda: [explain.conv1d([[1, 2, 3, 4, 5, 6], [0, 1, 0, 1, 0, 1]],
                                                        [[1, -1], [2, 0]], [1], dilation=2)],
    "conv2d-groups-reflect": lambda: [explain.conv2d(_I2, _K4[:, :1], [1, -1], padding=1, groups=2,
                                                     padding_mode="reflect")],
    "convolve2d-channels": lambda: [explain.convolve2d(_I2, _K4, stride=2, padding=1)],
    "conv2d-grad-channels": lambda: [explain.conv2d_grad(_I2, _K4, [1, 0], stride=2, padding=1,
                                                         target=[[[1, 0], [0, 1]], [[0, 1], [1, 0]]])],
    "conv1d-grad-dilation": lambda: [explain.conv1d_grad([1, 2, 3, 4, 5], [1, -1], stride=2, padding=1,
                                                         dilation=2)],
    "avgpool-ceil-padding": lambda: [explain.avg_pool2d(np.arange(25.0).reshape(5, 5) % 6, 3, 2, 1, ceil_mode=True,
                                                        count_include_pad=False)],
    "maxpool1d-padding-dilation": lambda: [explain.max_pool1d([1, 3, 0, 1, 2, 4, 5, 0], 2, 2, 1, dilation=2)],
    "conv-transpose-groups": lambda: [explain.conv_transpose1d([[1, 2, 3], [0, 1, -1]], [[1, -1], [2, 1]], [0.5, -1],
                                                               stride=2, padding=1, output_padding=1, groups=2)],
    "batchnorm-conv-inference": lambda: [explain.batch_norm(np.arange(16.0).reshape(2, 2, 2, 2), [1, 2], [2, 1],
                                                            [2, 1], [0, 1], training=False)],
    "batchnorm-conv": lambda: [explain.batch_norm(np.arange(24.0).reshape(6, 2, 2), weight=[2, 1], bias=[0, 1])],
    "fft-2d": lambda: [explain.fftconvolve(np.arange(9.0).reshape(3, 3), [[1, 0], [0, -1]], "valid")],
    "im2col-channels-dilation": lambda: [explain.im2col(_I2, _K4, [1, 2], stride=2, padding=1, dilation=2)],
    "receptive-field-1d": lambda: [explain.receptive_field(
        nn.Sequential(nn.Conv1d(1, 4, 3), nn.MaxPool1d(2), nn.Conv1d(4, 4, 3, dilation=2)), (1, 30))],
}


@pytest.mark.parametrize("case", sorted(MORE_CASES))
def test_every_frame_marks_cells_of_its_stage(case):
    explanations = MORE_CASES[case]()
    checker = _parse(to_html(explanations))
    figures = [s.figure for e in explanations for s in e.steps]
    assert [d["figure"] is not None for d in checker.data["steps"]] == [f is not None for f in figures]
    assert any(isinstance(f, (Frames, FieldStack)) for f in figures)
    for figure in figures:
        if isinstance(figure, Frames):
            for frame in figure.frames:
                for mark in (*figure.fixed, *frame.marks):
                    rows, cols = figure.stage[mark.matrix].grid.shape
                    assert mark.cells and all(0 <= r < rows and 0 <= c < cols for r, c in mark.cells)
                for index, grid in frame.values:
                    assert np.atleast_2d(grid).shape == figure.stage[index].grid.shape
        elif isinstance(figure, FieldStack):
            for field in figure.fields:
                assert [len(axis) for axis in field.spans] == list(figure.shapes[field.layer])


def _parse(page: str) -> _Checker:
    checker = _Checker()
    checker.feed(page)
    checker.close()
    assert checker.errors == [] and checker.open == [], (checker.errors, checker.open)
    return checker


def _topic(topic: str):
    argv = shlex.split(EXAMPLES[topic])[1:]
    return argv, topic_explanations(build_parser().parse_args(argv))


@pytest.mark.parametrize("topic", sorted(EXAMPLES))
def test_every_topic_page_is_well_formed_self_contained_and_small(topic, tmp_path, capsys):
    argv, explanations = _topic(topic)
    target = tmp_path / "page.html"
    assert main([*argv, "--format", "html", "-o", str(target)]) == 0
    page = target.read_text(encoding="utf-8")
    assert capsys.readouterr().out == ""
    assert len(page.encode()) < MAX_PAGE_BYTES
    checker = _parse(page)
    # nothing to fetch: no URL, no external script, style or image, and a policy that forbids requests
    assert not re.search(r"https?:|//[a-z]", page.replace("default-src 'none'", ""))
    assert not re.search(r"<(script|link|img|iframe)[^>]*\b(src|href)=", page)
    assert "default-src 'none'" in page
    # every step of every explanation, numbered across the page, with its formulas as text
    text = "".join(checker.text)
    steps = [s for e in explanations for s in e.steps]
    assert len(re.findall(r'<li class="step[ "]', page)) == len(steps) == len(checker.data["steps"])
    for step in steps:
        for formula in step.formulas:
            assert formula in text
    assert page == to_html(explanations)


def test_without_output_file_the_page_goes_to_stdout(capsys):
    argv, explanations = _topic("maxpool")
    assert main([*argv, "--format", "html"]) == 0
    assert capsys.readouterr().out == to_html(explanations)


def test_summary_and_render_give_the_same_page(capsys):
    assert main(["summary", "lenet5", "--input", "1x28x28", "--format", "html"]) == 0
    assert capsys.readouterr().out == summary(build("lenet5", input_size=(1, 28, 28)), (1, 28, 28)).to_html()
    e = explain.avg_pool1d([1, 2, 3, 4], 2)
    assert e.render("html") == e.to_html() == to_html([e])


def test_an_unwritable_output_is_one_line_and_exit_1(tmp_path, capsys):
    argv, _ = _topic("conv1d")
    assert main([*argv, "--format", "html", "-o", str(tmp_path / "missing" / "page.html")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "could not write" in err and "missing" in err


def _frames(e: Explanation) -> list[tuple[Step, Frames]]:
    return [(s, s.figure) for s in e.steps if isinstance(s.figure, Frames)]


def test_conv_frames_read_the_window_and_sum_to_the_engines_output():
    """Multiplying the marked input cells by the kernel, as the page shows them, gives the engine's cell."""
    x = np.arange(25.0).reshape(5, 5) % 4
    k = np.array([[1.0, 0, -1], [2, 1, 0], [0, -1, 1]])
    e = explain.conv2d(x, k, [0.5], stride=2, padding=1)
    (step, figure), = _frames(e)
    data = _parse(e.to_html()).data["steps"][e.steps.index(step)]["figure"]
    assert len(figure.frames) == e.result.size == len(data["frames"])
    padded, kernel = figure.stage[0].grid, figure.stage[1].grid
    for index, (frame, shown) in enumerate(zip(figure.frames, data["frames"])):
        cell = np.unravel_index(index, e.result.shape)
        window = next(m for m in frame.marks if m.role == "window").cells
        values = [padded[c] for c in window]
        assert np.isclose(np.dot(values, kernel.ravel()) + 0.5, e.result[cell])
        assert shown["caption"] == step.formulas[index] and shown["formula"] == index
        assert shown["running"][-1] == fmt(e.result[cell]) == step.formulas[index].rsplit("= ", 1)[1]
        assert shown["terms"] == list(frame.terms) and len(frame.terms) == 10  # 9 products and the bias
        out = next(m for m in frame.marks if m.role == "out")
        assert out.matrix == 2 and out.cells == (cell[1:],)


def test_max_pool_frames_mark_the_engines_winners_and_route_the_gradient():
    x = np.array([[1.0, 3, 0, 1], [2, 4, 1, 5], [0, 1, 2, 2], [1, 0, 3, 1]])
    e = explain.max_pool2d(x, 2)
    (forward_step, forward), (backward_step, backward) = _frames(e)
    for index, frame in enumerate(forward.frames):
        winner = next(m for m in frame.marks if m.role == "win").cells[0]
        assert np.ravel_multi_index(winner, x.shape) == e.result["indices"].ravel()[index]
        assert frame.running[-1] == e.result["output"].ravel()[index] == max(frame.running)
    for frame in backward.frames:
        target = next(m for m in frame.marks if m.role == "out").cells[0]
        assert frame.running[-1] == e.result["grad_input"][(0, *target)]


def test_transposed_frames_end_at_the_engines_output_and_batch_norm_frames_at_its_statistics():
    e = explain.conv_transpose2d([[1, 2], [3, 4]], [[1, 1, 1], [1, 2, 1], [1, 1, 1]], stride=2)
    (_, stamps), = _frames(e)
    first, last = stamps.frames[0].values[0][1], stamps.frames[-1].values[0][1]
    assert np.array_equal(last, e.result[0]) and np.count_nonzero(first) == 9
    e = explain.batch_norm([[1, 2], [2, 4], [3, 0], [4, 6]])
    (_, means), (_, variances), (_, normalised) = _frames(e)
    assert [f.running[-1] / 4 for f in means.frames] == list(e.result["batch_mean"])
    assert np.allclose([f.running[-1] / 4 for f in variances.frames], e.result["batch_var"])
    for c, frame in enumerate(normalised.frames):  # channel c's column of x becomes channel c's column of x̂
        assert [(m.matrix, m.role, m.cells) for m in frame.marks] == [
            (0, "window", tuple((n, c) for n in range(4))), (1, "out", tuple((n, c) for n in range(4)))]
    assert np.array_equal(normalised.stage[1].data, e.result["normalized"])


def test_receptive_field_stack_spans_follow_the_recurrence_and_the_summary_its_field_of():
    e = explain.receptive_field("conv7-4 conv5-4 conv3-4 pool2", (1, 32, 32))
    stack = next(s.figure for s in e.steps if isinstance(s.figure, FieldStack))
    assert stack.shapes == ((32, 32), (26, 26), (22, 22), (20, 20), (10, 10))
    to_input = next(f for f in stack.fields if (f.layer, f.earlier) == (4, 0))
    _, r, j, start = e.result[-1]
    assert (to_input.size, to_input.jump, to_input.start) == (r, j, start) == ((14, 14), (2, 2), (6.5, 6.5))
    assert to_input.spans[0][3] == (6, 19)  # centre 6.5 + 3·2, ± (14 − 1)/2
    assert len(stack.fields) == 10  # every (layer, earlier layer) pair

    s = summary(build("lenet5", input_size=(1, 28, 28)), (1, 28, 28))
    page = s.to_html()
    data = _parse(page).data
    fields = next(step["figure"] for step in data["steps"] if step["figure"])
    layer = len(fields["names"]) - 1
    last = next(f for f in fields["fields"] if f["layer"] == layer)
    unit = (1, 2)
    expected = s.field_of(fields["names"][layer].split()[0], unit)
    assert tuple(tuple(last["spans"][a][u]) for a, u in enumerate(unit)) == expected
    assert f"{s.total_params:,}" in page


def test_user_text_is_escaped_everywhere():
    nasty = "<script>alert('x')</script> & </script><!--"
    e = Explanation(nasty, [Step(f"A `{nasty}` step {nasty}", (f"{nasty} = 1",), Matrix(nasty, np.eye(2)),
                                 Frames((Matrix(nasty, np.eye(2)),), ()))])
    page = e.to_html()
    assert "<script>alert" not in page and "</script><!--" not in page
    checker = _parse(page)
    assert nasty in "".join(checker.text)
    outer = _parse(e._repr_html_())
    assert outer.srcdoc == [page] and "<" not in e._repr_html_().split("srcdoc=", 1)[1].split('"')[1]
    assert _parse(s_page := summary(build("lenet5", input_size=(1, 28, 28)), (1, 28, 28))._repr_html_()).srcdoc
    assert html.unescape(s_page.split('srcdoc="', 1)[1].split('"', 1)[0]).startswith("<!DOCTYPE html>")
