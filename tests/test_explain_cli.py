"""``convkit explain``: topics, formats, file input and one-line errors with exit code 2."""

import numpy as np
import pytest

import convkit.functional as F
from convkit.cli import main
from convkit.cli.explain import EXAMPLES
from convkit.explain import Explanation, Matrix, Step


def _run(capsys, *argv):
    code = main(["explain", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_conv2d_with_gradients(capsys):
    code, out, err = _run(capsys, "conv2d", "--input", "1 2 3; 4 5 6; 7 8 9", "--kernel", "1 0; 0 -1", "--grad")
    assert code == 0 and err == ""
    assert "O[0,0] = 1·1 + 0·2 + 0·4 + (-1)·5 = -4" in out
    assert "conv2d_grad: gradients of conv2d" in out and "∂L/∂K[1,1] = 1·5 + 1·6 + 1·8 + 1·9 = 28" in out


@pytest.mark.parametrize("topic", sorted(EXAMPLES))
def test_every_documented_example_runs(capsys, topic):
    import shlex

    argv = shlex.split(EXAMPLES[topic])[2:]
    code, out, err = _run(capsys, *argv)
    assert code == 0 and err == "" and out.splitlines()[1].startswith("===")


def test_formats(capsys):
    args = ["maxpool", "--input", "1 3; 2 4", "--kernel-size", "2"]
    assert "**3.** Each output cell is the maximum" in _run(capsys, *args, "--format", "markdown")[1]
    latex = _run(capsys, *args, "--format", "latex")[1]
    assert latex.startswith("\\subsection*{max\\_pool2d") and "\\boxed{4}" in latex


def test_options_map_to_the_functional_arguments(capsys, tmp_path):
    x = np.arange(25.0).reshape(5, 5)
    np.save(tmp_path / "x.npy", x)
    (tmp_path / "k.csv").write_text("1,0,-1\n2,0,-2\n1,0,-1\n")
    code, out, _ = _run(capsys, "conv2d", "-i", str(tmp_path / "x.npy"), "--weight", str(tmp_path / "k.csv"),
                        "--stride", "2,1", "--padding", "1", "--bias", "0.5", "--padding-mode", "reflect")
    expected = F.conv2d(x[None], np.array([[[[1.0, 0, -1], [2, 0, -2], [1, 0, -1]]]]), np.array([0.5]), (2, 1), 1,
                        padding_mode="reflect").numpy()
    block = Explanation("t", [Step("s", value=Matrix("O", expected[0, 0]))]).to_text().splitlines()[3:]
    assert code == 0 and "\n".join(block) in out  # the engine's output, rendered
    code, out, _ = _run(capsys, "batchnorm", "--input", "1 2; 3 4", "--running-mean", "1 2", "--running-var",
                        "4 4", "--no-training")
    assert code == 0 and "Inference (training=False)" in out
    code, out, _ = _run(capsys, "avgpool1d", "--input", "1 2 3 4 5 6 7", "--kernel-size", "3", "--stride", "2",
                        "--padding", "1", "--no-count-include-pad")
    assert code == 0 and "O[0] = (0 + 1 + 2)/2 = 1.5" in out
    code, out, _ = _run(capsys, "receptive-field", "--spec", "C3 P2", "--input", "3x10x10")
    assert code == 0 and "1 MaxPool2d: r_2 = 3 + (2 − 1)·1·1 = 4" in out


@pytest.mark.parametrize("argv, message", [
    (["conv2d", "--input", "1 2 3; 4 5", "--kernel", "1"], "row 2 has 2 numbers but row 1 has 3 numbers"),
    (["conv2d", "--input", "1 2; 3 4", "--kernel", "1 0 1; 0 1 0; 1 1 1"], "kernel is larger than the 2×2"),
    (["conv2d", "--input", "1 2; 3 4", "--kernel", "1 0; 0 1", "--padding", "same", "--stride", "2"],
     "padding='same' is only defined for stride 1"),
    (["conv2d", "--input", "1 2; 3 4", "--kernel", "1", "--target", "1"], "need --grad"),
    (["maxpool", "--input", "1 2; 3 4", "--kernel-size", "3"], "input too small"),
    (["output-size", "--spec", "conv3 poool2"], "unknown token 'poool2'"),
    (["fft", "--input", "1 2", "--kernel", "1 2 3"], "must not be larger than the input"),
    (["conv2d", "--input", "missing.npy", "--kernel", "1"], "--input: no such file"),
])
def test_bad_input_is_one_line_with_an_example_and_exit_2(capsys, argv, message):
    code, out, err = _run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"convkit explain {argv[0]}: ") and message in err
    assert "e.g." in err or "a working example: convkit explain" in err


def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["explain", "conv2d", "--input", "1", "--kernel", "1", "--stride", "x"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert "argument --stride: expected an int or ints separated by commas" in err
