"""``convkit.export.to_onnx``: the file passes onnx.checker, runs in onnxruntime at any batch size and gives
convkit's logits within 1e-4 (float32) for LeNet-5, VGG-11, ResNet-18 and user-defined networks."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import convkit
from convkit import nn
from convkit.export import to_onnx
from convkit.models import build
from export_models import Branchy, ManyOps, with_running_stats

onnx = pytest.importorskip("onnx", reason="the ONNX export needs onnx (in the test extra)")
ort = pytest.importorskip("onnxruntime", reason="the exported files run in onnxruntime (in the test extra)")


def run_onnx(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def exported_matches(model, input_size, path, batch=3):
    """Export, load, run at ``batch`` (not the traced 1) and compare with convkit; return the ONNX model."""
    model.eval()
    to_onnx(model, input_size, path)
    x = np.random.default_rng(0).standard_normal((batch, *input_size)).astype(np.float32)
    np.testing.assert_allclose(run_onnx(path, x), model(x).numpy(), rtol=1e-4, atol=1e-4)
    return onnx.load(path)


@pytest.mark.parametrize("name, input_size", [("lenet5", (1, 28, 28)), ("resnet18", (3, 64, 64)),
                                              ("vgg11", (3, 32, 32))])
def test_built_in_models_give_convkits_logits_in_onnxruntime(name, input_size, tmp_path):
    convkit.manual_seed(0)
    model = with_running_stats(build(name, input_size=input_size, num_classes=10))
    if name == "vgg11":  # its features and 1x1 -> 7x7 adaptive pool; a narrow classifier: 40 MB, not 500 MB
        model.classifier = nn.Sequential(nn.Linear(512 * 7 * 7, 16), nn.ReLU(), nn.Dropout(), nn.Linear(16, 10))
    proto = exported_matches(model, input_size, tmp_path / f"{name}.onnx")
    assert proto.opset_import[0].version == 17
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["N", *input_size]      # any batch size
    initializers = {i.name for i in proto.graph.initializer}
    assert {k for k in model.state_dict() if not k.endswith("num_batches_tracked")} <= initializers  # by their keys


def test_a_users_network_with_a_residual_sum_a_concatenation_and_branches(tmp_path):
    convkit.manual_seed(1)
    proto = exported_matches(with_running_stats(Branchy()), (3, 15, 15), tmp_path / "branchy.onnx", batch=5)
    ops = {n.op_type for n in proto.graph.node}
    assert {"Add", "Concat", "LeakyRelu", "BatchNormalization", "MaxPool", "GlobalAveragePool"} <= ops


@pytest.mark.parametrize("padding_mode, opset", [("zeros", 17), ("reflect", 17), ("replicate", 17),
                                                 ("circular", 19)])
def test_padding_modes_asymmetric_pads_pooling_variants_and_uneven_windows(padding_mode, opset, tmp_path):
    convkit.manual_seed(2)
    proto = exported_matches(ManyOps(padding_mode), (2, 9, 9), tmp_path / "many.onnx")
    assert proto.opset_import[0].version == opset                        # Pad(mode="wrap") needs opset 19
    pads = [list(a.ints) for n in proto.graph.node if n.op_type == "Conv" for a in n.attribute if a.name == "pads"]
    assert [0, 0, 1, 1] in pads                                          # padding='same', kernel 2: (0, 1)


def test_an_op_without_a_mapping_is_refused_naming_the_op_the_node_and_the_module(tmp_path):
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Unfold(2))
    with pytest.raises(ValueError, match=r"op 'unfold' \(node '1', in module '1' \(Unfold\)\)"):
        to_onnx(model, (1, 8, 8), tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()


def test_bad_arguments_and_a_missing_onnx_give_one_clear_error(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"input_size must be one sample's shape .* got \(0, 28\)"):
        to_onnx(build("lenet5"), (0, 28), tmp_path / "x.onnx")
    with pytest.raises(TypeError, match="model must be a convkit.nn.Module, got str"):
        to_onnx("lenet5", (1, 28, 28), tmp_path / "x.onnx")
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"to_onnx needs onnx: pip install 'convkit\[export\]'"):
        to_onnx(build("lenet5"), (1, 28, 28), tmp_path / "x.onnx")


def test_importing_convkit_and_convkit_export_imports_neither_torch_nor_onnx():
    code = ("import sys, convkit, convkit.export; "
            "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
