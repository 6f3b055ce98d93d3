"""``convkit symmetry MODEL --group ... --input CxHxW``: the report on the command line."""

import json

import numpy as np
import pytest

import convkit
import convkit.models
import convkit.nn as nn
from convkit.cli import main


def test_lenet5_under_flips(capsys):
    assert main(["symmetry", "lenet5", "--group", "flips", "--input", "1x28x28"]) == 0
    out = capsys.readouterr().out
    assert "Sequential under Flips (4 elements), input 1x1x28x28 float64, seed 0, tolerance 1e-10" in out
    assert "layer 0 (Conv2d(1->6, k=5, p=2)): kernel not symmetric under the rotations/flips" in out
    assert "verdict: invariance fails under Flips: first broken at layer 0" in out


def test_spec_string_under_shifts(capsys):
    assert main(["symmetry", "conv3-4p1 pool2 flatten fc3", "--input", "1x8x8", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert "under Shifts(8, 8) (64 elements), input 1x1x8x8 float64, seed 2" in out
    assert "zero padding (1, 1) along H at the borders" in out
    assert "MaxPool2d(k=2, s=2)" in out and "Flatten()" in out


def test_a_symmetric_model_passes(monkeypatch, capsys):
    def build(model, input_size, num_classes, max_parameters):   # num_classes None: the model's own
        assert (model, input_size, num_classes) == ("circular", (2, 6, 6), None)
        assert convkit.get_default_dtype() == np.float32
        return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, padding_mode="circular"), nn.ReLU(),
                             nn.GlobalAvgPool2d(flatten=True), nn.Linear(4, 10))

    monkeypatch.setattr(convkit.models, "build", build)
    assert main(["symmetry", "circular", "--input", "2x6x6", "--dtype", "float32"]) == 0
    out = capsys.readouterr().out
    assert "input 1x2x6x6 float32" in out and "tolerance 1e-04" in out
    assert "verdict: the model is invariant under Shifts(6, 6)" in out
    assert convkit.get_default_dtype() == np.float32


def test_default_dtype_is_restored(monkeypatch, capsys):
    seen = []
    monkeypatch.setattr(convkit.models, "build",
                        lambda model, input_size, num_classes, max_parameters: seen.append(convkit.get_default_dtype())
                        or nn.Sequential(nn.ReLU()))
    assert main(["symmetry", "relu", "--group", "d4", "--input", "1x4x4"]) == 0
    assert seen == [np.float64] and convkit.get_default_dtype() == np.float32
    assert "verdict: the model is equivariant under D4" in capsys.readouterr().out


def test_unknown_model_is_a_usage_error(capsys):
    assert main(["symmetry", "lenet7"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("convkit symmetry: build: unknown model 'lenet7'; built-in models are lenet5")
    assert "Traceback" not in err


def test_a_residual_model_is_checked_call_by_call(monkeypatch, capsys):
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3, padding=1, padding_mode="circular")

        def forward(self, x):
            return x + self.conv(x)

    monkeypatch.setattr(convkit.models, "build", lambda model, input_size, num_classes, max_parameters: Residual())
    assert main(["symmetry", "residual", "--input", "1x4x4"]) == 0
    out = capsys.readouterr().out
    assert "Conv2d(1->1, k=3, p=1, circular)" in out and "\n1  Residual " in out     # the sum after the conv
    assert "verdict: the model is equivariant under Shifts(4, 4)" in out


def test_a_model_that_calls_no_module_fails_with_one_line(monkeypatch, capsys):
    class Empty(nn.Module):
        def __init__(self):
            super().__init__()
            self.unused = nn.ReLU()

        def forward(self, x):
            return x

    monkeypatch.setattr(convkit.models, "build", lambda model, input_size, num_classes, max_parameters: Empty())
    assert main(["symmetry", "empty", "--input", "1x4x4"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("convkit symmetry: report: the forward of Empty calls none of its modules")
    assert err.count("\n") == 1


def test_rotations_of_a_non_square_input_fail(capsys):
    assert main(["symmetry", "conv3-2p1", "--group", "c4", "--input", "1x6x8"]) == 1
    assert "quarter turn needs a square map, but the input has a 6x8 map" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--input", "28x28"], "expected CxHxW with positive integers, like 1x28x28; got '28x28'"),
    (["--input", "1x0x28"], "got '1x0x28'"),
    (["--group", "c8"], "invalid choice: 'c8'"),
])
def test_bad_arguments_exit_with_usage(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["symmetry", "lenet5", *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_negative_seed_is_a_usage_error(capsys):
    assert main(["symmetry", "lenet5", "--seed", "-1"]) == 2
    assert "--seed must be >= 0, got -1" in capsys.readouterr().err


def test_a_users_factory_and_a_trained_model_file(tmp_path, capsys):
    """FILE.py:FACTORY runs the user's factory; a model.safetensors brings its trained weights."""
    from convkit.train import save_model

    source = tmp_path / "nets.py"
    source.write_text("import convkit.nn as nn\n\n\ndef make():\n"
                      "    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode='circular'), nn.ReLU(),\n"
                      "                         nn.GlobalAvgPool2d(flatten=True))\n")
    assert main(["symmetry", f"{source}:make", "--input", "1x6x6"]) == 0
    assert "verdict: the model is invariant under Shifts(6, 6)" in capsys.readouterr().out
    convkit.manual_seed(5)
    trained = convkit.models.build("conv3-2p1 relu gap fc10", input_size=(1, 6, 6))
    save_model(tmp_path / "model.safetensors", trained, {"model": "conv3-2p1 relu gap fc10",
                                                          "classes": [str(i) for i in range(10)]})
    assert main(["symmetry", str(tmp_path / "model.safetensors"), "--input", "1x6x6", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows"][0]["status"] == "breaks"              # zero padding under circular shifts
    assert main(["symmetry", str(tmp_path / "missing.safetensors")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_samples_option(capsys):
    assert main(["symmetry", "conv3-2p1 relu gap", "--input", "1x8x8", "--samples", "5", "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["group_size"], result["checked"]) == (64, 5)
    assert main(["symmetry", "conv3-2p1 relu gap", "--input", "1x8x8", "--samples", "all", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["checked"] == 64
    with pytest.raises(SystemExit) as info:
        main(["symmetry", "lenet5", "--samples", "0"])
    assert info.value.code == 2 and "expected a positive integer or 'all'" in capsys.readouterr().err
