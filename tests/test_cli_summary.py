"""``convkit summary``: built-in names, spec strings and FILE.py:FACTORY, the three formats, one-line errors."""

import json

import pytest

from convkit.cli import main


def test_lenet5_table(capsys):
    assert main(["summary", "lenet5", "--input", "1x28x28"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Sequential on input (1, 28, 28) (float32), per sample")
    assert "Total params: 61,706 (trainable 61,706, non-trainable 0)" in out
    assert "Total MACs: 416,520" in out


def test_json_and_markdown_formats(capsys):
    assert main(["summary", "convnet", "--format", "json", "--num-classes", "7"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["input_size"] == [1, 28, 28] and data["output_shape"] == [7]
    assert data["totals"]["params"] == sum(r["params"] for r in data["rows"])
    assert main(["summary", "lenet5", "--format", "markdown"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "**Sequential** on input (1, 28, 28) (float32), per sample"
    assert lines[2].startswith("| Layer | Type | Output shape | Params |")


def test_spec_string(capsys):
    assert main(["summary", "conv3-10 pool2 conv3-10 pool2 flatten fc3", "--input", "1x28x28"]) == 0
    out = capsys.readouterr().out
    assert "output (3,)" in out


def test_model_from_a_file(tmp_path, capsys):
    source = tmp_path / "nets.py"
    source.write_text(
        "import convkit.nn as nn\n\n"
        "def make_net():\n"
        "    return nn.Sequential(nn.Conv1d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 14, 5))\n"
        "\n"
        "not_a_function = 3\n"
        "def broken():\n"
        "    raise RuntimeError('no weights here')\n"
        "def wrong_type():\n"
        "    return [1, 2]\n"
    )
    assert main(["summary", f"{source}:make_net", "--input", "2x16"]) == 0
    out = capsys.readouterr().out
    assert "Conv1d" in out and "Total params: 313" in out
    for factory, message in [("missing", "defines no function missing()"),
                             ("not_a_function", "defines no function not_a_function()"),
                             ("broken", "RuntimeError: no weights here"),
                             ("wrong_type", "wrong_type() returned list, not a convkit.nn.Module")]:
        assert main(["summary", f"{source}:{factory}", "--input", "2x16"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("convkit summary: error: MODEL ") and message in err
        assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("argv,message", [
    (["lenet5", "--input", "3x2a"], "--input must be positive sizes joined by 'x', such as 3x224x224, got '3x2a'"),
    (["lenet5", "--input", "1x0x28"], "--input must be positive sizes"),
    (["vgg16", "--input", "3x28x28"], "vgg16 needs inputs of at least 32x32"),
    (["resnet50"], "unknown model 'resnet50'"),
    (["nowhere.py:make"], "no such file 'nowhere.py'"),
])
def test_errors_are_one_line_with_exit_code_2(argv, message, capsys):
    assert main(["summary", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("convkit summary: error: ") and message in captured.err
    assert captured.err.count("\n") == 1


def test_help_says_a_file_model_runs_its_code(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["summary", "--help"])
    assert exit_info.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "imports FILE.py, which runs the code in it" in help_text


def test_input_too_small_for_a_layer(tmp_path, capsys):
    source = tmp_path / "small.py"
    source.write_text("import convkit.nn as nn\n\ndef net():\n"
                      "    return nn.Sequential(nn.Conv2d(1, 8, 5), nn.MaxPool2d(2), nn.Conv2d(8, 8, 5))\n")
    assert main(["summary", f"{source}:net", "--input", "1x12x12"]) == 2
    err = capsys.readouterr().err
    assert err == ("convkit summary: error: summary: layer 2 (Conv2d), given an input of shape (2, 8, 4, 4): conv2d: "
                   "the 5×5 kernel is larger than the 4×4 padded input (input 4×4); use a kernel of at most 4×4, or "
                   "pad the input, e.g. padding=1\n")


def test_spec_errors_keep_their_caret(capsys):
    assert main(["summary", "conv3-10 pool2 conv3-1O", "--input", "1x28x28"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("convkit summary: error: spec: unknown token 'conv3-1O'") and "^^^^^^^^" in err


def test_built_in_models_keep_their_canonical_class_count(capsys):
    from convkit.cli import main

    assert main(["summary", "vgg16", "--input", "3x224x224"]) == 0
    assert "Total params: 138,357,544" in capsys.readouterr().out          # torchvision's VGG-16
    assert main(["summary", "vgg16", "--input", "3x224x224", "--num-classes", "10"]) == 0
    assert "Total params: 134,301,514" in capsys.readouterr().out
