"""``convkit export``: ONNX and TorchScript end to end, and one-line errors with exit codes 2 and 1."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from convkit.cli import main

pytest.importorskip("onnx", reason="convkit export --onnx needs onnx (in the test extra)")
ort = pytest.importorskip("onnxruntime", reason="convkit export --onnx runs the file in onnxruntime")
torch = pytest.importorskip("torch")

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.")  # torch 2.13 deprecates TorchScript


def test_onnx_of_a_built_in_model(tmp_path, capsys):
    out = tmp_path / "lenet5.onnx"
    assert main(["export", "lenet5", "--input", "1x28x28", "--onnx", str(out)]) == 0
    line = capsys.readouterr().out
    assert line.startswith(f"{out}: ONNX opset 17, input 'input' of shape (N, 1, 28, 28), onnx.checker passed; "
                           "outputs match convkit's")
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.run(None, {"input": np.zeros((5, 1, 28, 28), np.float32)})[0].shape == (5, 10)


def test_torchscript_of_a_users_factory_loads_with_torch_alone(tmp_path, capsys):
    source = tmp_path / "nets.py"
    source.write_text("import convkit.nn as nn\n\n"
                      "def make():\n"
                      "    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),\n"
                      "                         nn.Linear(4 * 6 * 6, 3))\n")
    out = tmp_path / "net.pt"
    assert main(["export", f"{source}:make", "--input", "3x8x8", "--torch", str(out)]) == 0
    assert "TorchScript" in capsys.readouterr().out
    loaded = torch.jit.load(str(out))
    assert list(loaded.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                                         "1.running_var", "1.num_batches_tracked", "4.weight", "4.bias"]
    assert loaded(torch.zeros(7, 3, 8, 8)).shape == (7, 3)


def exit_code(argv) -> int:
    """``main``'s exit code, also where argparse exits (usage errors)."""
    try:
        return main(argv)
    except SystemExit as stop:
        return stop.code


@pytest.mark.parametrize("argv, code, message", [
    (["lenet5", "--onnx", "x.onnx"], 2, "convkit export: error: the following arguments are required: --input"),
    (["nosuch", "--input", "1x28x28", "--onnx", "x.onnx"], 2, "convkit export: error: build: unknown model 'nosuch'"),
    (["lenet5", "--input", "1x0", "--onnx", "x.onnx"], 2, "convkit export: error: --input must be positive sizes"),
    (["lenet5", "--input", "1x28x28"], 2, "convkit export: error: one of the arguments --onnx --torch is required"),
    (["nets.py:make", "--input", "1x8x8", "--onnx", "x.onnx"], 1,
     "convkit export: error: to_onnx: cannot export op 'unfold' (node '1', in module '1' (Unfold))"),
])
def test_bad_cases_are_one_line_with_their_exit_code(argv, code, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nets.py").write_text("import convkit.nn as nn\n\n"
                                      "def make():\n"
                                      "    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.Unfold(2))\n")
    assert exit_code(["export", *argv]) == code
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err
    assert not (tmp_path / "x.onnx").exists()


def test_a_missing_extra_names_the_pip_command(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert main(["export", "lenet5", "--input", "1x28x28", "--onnx", str(tmp_path / "x.onnx")]) == 2
    assert capsys.readouterr().err == ("convkit export: error: convkit export --onnx needs onnxruntime: "
                                       "pip install 'convkit[export]'\n")
