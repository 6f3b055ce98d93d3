"""convkit.trace: the graph of a forward pass, meta tensors and models built without weights."""

import time
import tracemalloc

import numpy as np
import pytest

import convkit
import convkit.functional as F
import convkit.nn as nn
from convkit.models import available, build
from convkit.ops.meta import MetaArray
from convkit.trace import trace


class Branchy(nn.Module):
    """Residual addition, channel concatenation, a functional pooling, a shared conv called twice, a scalar."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
        self.left = nn.Conv2d(8, 8, 3, padding=1)
        self.right = nn.Conv2d(8, 4, 1)
        self.shared = nn.Conv2d(12, 12, 3, padding=1, padding_mode="reflect")
        self.head = nn.Linear(12, 5)

    def forward(self, x):
        x = self.stem(x)
        y = F.relu(self.left(x)) + x
        z = convkit.cat([y, self.right(x)], 1)
        z = self.shared(self.shared(z)) * 0.5
        z = F.max_pool2d(z, 2).mean((2, 3))
        return self.head(z)


def _ops(graph):
    return [n.op for n in graph.nodes]


def test_a_branching_forward_is_recorded_op_by_op():
    convkit.manual_seed(0)
    net = Branchy()
    g = trace(net, (2, 3, 8, 8))
    assert _ops(g) == ["conv", "batch_norm", "relu", "conv", "relu", "add", "conv", "cat", "conv", "conv", "mul",
                       "max_pool", "mean", "linear"]
    names = [n.name for n in g.nodes]
    assert names == ["stem.0", "stem.1", "stem.2", "left", "relu", "add", "right", "cat", "shared", "shared_1",
                     "mul", "max_pool", "mean", "head"]
    add = g.node("add")
    assert add.inputs == ("relu", "stem.2") and add.scope == "" and add.shape == (2, 8, 8, 8)
    assert g.node("cat").inputs == ("add", "right") and g.node("cat").options == {"axis": 1}
    assert g.node("shared_1").inputs == ("shared", "shared.weight", "shared.bias")
    assert g.node("shared").options["padding_mode"] == "reflect" and g.node("shared").options["pads"] == ((1, 1),) * 2
    assert "algorithm" not in g.node("shared").options
    assert g.kind(g.node("mul").inputs[1]) == "constant"
    assert g.node("stem.1").options["running_mean"] == "stem.1.running_mean"
    assert g.kind("stem.1.running_mean") == "buffer" and g.kind("stem.0.weight") == "parameter"
    assert g.outputs == ("head",) and g.inputs == ("input",) and g.input_shape == (2, 3, 8, 8)
    assert list(g.parameters) == [name for name, _ in net.named_parameters()]
    calls = {c.name: c for c in g.calls}
    assert calls[""].depth == 0 and calls["stem"].depth == 1 and calls["stem.0"].depth == 2
    assert calls["stem"].nodes == range(0, 3) and calls["stem"].outputs == ("stem.2",)
    assert [c.name for c in g.calls].count("shared") == 2  # one call each time it runs
    assert all(n.value is None for n in g.nodes)
    assert g.layers[0].module is net.stem[0] and 5 not in g.layers  # the addition is no layer's


def test_a_meta_trace_gives_the_shapes_of_a_real_one_and_a_real_one_the_activations():
    convkit.manual_seed(1)
    net = Branchy()
    x = np.random.default_rng(0).normal(size=(2, 3, 8, 8)).astype(np.float32)
    real, meta = trace(net, x), trace(net, x.shape)
    assert [(n.name, n.op, n.inputs, n.shape, n.dtype) for n in real.nodes] == \
        [(n.name, n.op, n.inputs, n.shape, n.dtype) for n in meta.nodes]
    np.testing.assert_array_equal(real.node("head").value, net.eval()(x).numpy())
    stem = net.stem(x).numpy()
    np.testing.assert_array_equal(real.node("stem.2").value, stem)
    np.testing.assert_array_equal(real.node("add").value, F.relu(net.left(stem)).numpy() + stem)


def test_the_model_keeps_its_modes_and_runs_in_eval_unless_asked():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Dropout(0.5))
    g = trace(net, (4, 1, 6, 6))
    assert g.node("1").options["training"] is False and [n.op for n in g.nodes] == ["conv", "batch_norm"]
    assert net.training and net[1].training
    g = trace(net, (4, 1, 6, 6), training=True)
    assert g.node("1").options["training"] is True and "dropout" in _ops(g)
    net.eval()
    trace(net, (4, 1, 6, 6), training=True)
    assert not net.training and not net[1].training


def test_sequential_runs_each_layer_on_its_own_while_tracing():
    """Outside a trace, conv + ReLU is one fused call; the trace shows both layers, as they are written."""
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.BatchNorm2d(2), nn.LeakyReLU(0.1))
    g = trace(net, (1, 1, 5, 5))
    assert _ops(g) == ["conv", "relu", "batch_norm", "leaky_relu"]
    assert g.node("0").options["relu_slope"] is None


NAMES = [line.split(":")[0] for line in available()]


@pytest.mark.parametrize("name,size", [(n, (3, 32, 32) if n.startswith("vgg") else (3, 64, 64) if "resnet" in n
                                        and n != "resnet20" else (1, 28, 28)) for n in NAMES])
def test_every_built_in_model_traces_on_meta_weights_as_it_runs(name, size):
    convkit.manual_seed(0)
    meta = trace(build(name, input_size=size, meta=True), (1, *size))
    real = trace(build(name, input_size=size), np.zeros((1, *size), np.float32))
    assert [(n.name, n.op, n.inputs, n.shape) for n in meta.nodes] == \
        [(n.name, n.op, n.inputs, n.shape) for n in real.nodes]


def test_meta_models_allocate_nothing():
    tracemalloc.start()
    start = time.perf_counter()
    net = build("vgg16", input_size=(3, 224, 224), meta=True)  # 138 M parameters
    g = trace(net, (1, 3, 224, 224))
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert g.node(g.outputs[0]).shape == (1, 1000)
    assert all(isinstance(p.data, MetaArray) for p in net.parameters())
    bn = build("vgg11_bn", input_size=(3, 32, 32), meta=True).features[1]
    assert isinstance(bn.running_mean, MetaArray) and bn.running_mean.shape == (64,)
    assert sum(p.data.size for p in net.parameters()) == 138_357_544
    assert peak < 20_000_000 and seconds < 5  # bytes of Python objects only; about 0.01 s here


def test_meta_tensors_refuse_to_give_values():
    with nn.meta_init():
        layer = nn.Linear(4, 2)
    assert "meta" in repr(layer.weight)
    with pytest.raises(TypeError, match="has no values"):
        np.asarray(layer.weight.data)
    with pytest.raises(TypeError, match="has no values"):
        layer(np.ones((1, 4), np.float32)).tolist()


def test_errors_name_the_layer_and_the_shape_it_received():
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Sequential(nn.Conv2d(3, 4, 3)))
    with pytest.raises(ValueError, match=r"^layer 1\.0 \(Conv2d\), given an input of shape \(1, 4, 6, 6\): conv2d: "
                                         r"input has 4 channels but weight expects 3"):
        trace(net, (1, 1, 8, 8))


@pytest.mark.parametrize("example,match", [
    ("1x3x8x8", "example must be an input's shape"), ((1, 0, 8), "example must be"), ((), "example must be"),
])
def test_bad_examples(example, match):
    with pytest.raises(TypeError, match=match):
        trace(nn.ReLU(), example)
    with pytest.raises(TypeError, match="model must be a convkit.nn.Module"):
        trace(lambda x: x, (1, 2))


def test_one_normalised_geometry_per_window_layer():
    net = nn.Sequential(nn.Conv2d(1, 2, 4, padding="same", dilation=(1, 2)), nn.MaxPool2d(3, 2, 1, ceil_mode=True),
                        nn.ConvTranspose2d(2, 1, 3, stride=2, padding=1, output_padding=1), nn.ReLU())
    g = trace(net, (1, 1, 9, 9))
    conv, pool, up, relu = (g.geometry(n) for n in g.nodes)
    assert (conv.kernel, conv.stride, conv.dilation, conv.pads, conv.output) == \
        ((4, 4), (1, 1), (1, 2), ((1, 2), (3, 3)), (9, 9))  # 'same': the odd extra element after, as torch
    assert (pool.kernel, pool.stride, pool.pads, pool.output) == ((3, 3), (2, 2), ((1, 1), (1, 1)), (5, 5))
    assert up.transposed and up.pads == ((1, 1), (1, 1)) and up.output == (10, 10)
    assert relu is None
