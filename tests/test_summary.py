"""convkit.analysis.summary: shapes against real forward passes, receptive fields against gradient probes,
MACs against torch's FlopCounterMode, VGG and LeNet figures, forward reading, rendering and errors."""

import itertools
import json
import math
import re

import numpy as np
import pytest
from oracle import torch
from torch.utils.flop_counter import FlopCounterMode

import convkit
import convkit.functional as F
import convkit.models as models
import convkit.nn as nn
from convkit.analysis import receptive_field, summary

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
CONVT = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
MAXPOOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
AVGPOOL = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}
ADAPTIVE = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}
BN = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


def _leaves(module):
    """The leaf layers of nested Sequentials, in order."""
    if isinstance(module, nn.Sequential):
        return [leaf for child in module for leaf in _leaves(child)]
    return [module]


def _forward_shapes(net, input_size):
    """Output shape (without the batch axis) after every leaf layer of a real forward pass (in eval mode)."""
    net.eval()
    x = convkit.tensor(np.zeros((1,) + tuple(input_size), dtype=np.float32))
    shapes = []
    with convkit.no_grad():
        for layer in _leaves(net):
            x = layer(x)
            shapes.append(x.shape[1:])
    return shapes


def _random_layer(rng, nsp, shape, positive, max_stride):
    """One random conv / transposed conv / pooling / batch norm / ReLU layer for input ``shape``."""
    channels = shape[0]
    kind = rng.choice(["conv", "conv", "convT", "maxpool", "avgpool", "adaptive", "bn", "relu"])
    k = tuple(int(v) for v in rng.integers(1, 5, nsp))
    s = tuple(int(v) for v in rng.integers(1, max_stride + 1, nsp))
    d = tuple(int(v) for v in rng.integers(1, 3, nsp))
    if kind == "conv":
        groups = int(rng.choice([g for g in (1, 2, 3) if channels % g == 0]))
        out = groups * int(rng.integers(1, 3))
        if rng.random() < 0.25:
            return CONV[nsp](channels, out, k, padding=str(rng.choice(["same", "valid"])), dilation=d,
                             groups=groups, bias=bool(rng.random() < 0.5))
        pad = tuple(int(v) for v in rng.integers(0, 3, nsp))
        return CONV[nsp](channels, out, k, stride=s, padding=pad, dilation=d, groups=groups)
    if kind == "convT":
        out = int(rng.integers(1, 4))
        pad = tuple(int(rng.integers(0, kk)) for kk in k)
        op = tuple(int(rng.integers(0, max(ss, dd))) for ss, dd in zip(s, d))
        return CONVT[nsp](channels, out, k, stride=s, padding=pad, output_padding=op, dilation=d)
    if kind in ("maxpool", "avgpool"):
        pad = tuple(int(rng.integers(0, kk // 2 + 1)) for kk in k)
        ceil = bool(rng.random() < 0.5)
        if kind == "maxpool" and not positive:
            return MAXPOOL[nsp](k, s, pad, d, ceil_mode=ceil)
        return AVGPOOL[nsp](k, s, pad, ceil_mode=ceil)
    if kind == "adaptive":
        return ADAPTIVE[nsp](tuple(max(1, n + int(rng.integers(-4, 3))) for n in shape[1:]))
    if kind == "bn" and not positive:
        return BN[nsp](channels)
    return nn.ReLU()


def _random_net(seed, nsp, *, positive=False, depth=6, sizes=None, max_stride=3):
    """A seeded random Sequential that runs on its input; ``positive``: linear, all weights > 0, no max pool."""
    rng = np.random.default_rng(seed)
    sizes = sizes or {1: (20, 40), 2: (10, 24), 3: (5, 10)}[nsp]
    input_size = (int(rng.integers(1, 4)),) + tuple(int(v) for v in rng.integers(*sizes, nsp))
    layers, shape = [], input_size
    while len(layers) < depth:
        layer = _random_layer(rng, nsp, shape, positive, max_stride)
        if positive and isinstance(layer, nn.ReLU):
            continue
        try:
            out = _forward_shapes(layer, shape)[-1]
        except ValueError:  # too small for this input: draw another
            continue
        if math.prod(out[1:]) <= 4000:
            layers.append(layer)
            shape = out
    net = nn.Sequential(*layers)
    if positive:
        rng_w = np.random.default_rng(seed + 1000)
        for p in net.parameters():
            p.data[...] = rng_w.uniform(0.5, 1.5, p.shape)
    return net, input_size


# ------------------------------------------------------------------ shapes and parameters
@pytest.mark.parametrize("seed,nsp", [(s, 2) for s in range(12)] + [(s, 1) for s in range(4)]
                         + [(s, 3) for s in range(3)])
def test_every_row_shape_matches_a_forward_pass(seed, nsp):
    net, input_size = _random_net(seed, nsp)
    s = summary(net, input_size)
    assert [r.output_shape for r in s.rows] == _forward_shapes(net, input_size)
    assert [r.kind for r in s.rows] == [type(m).__name__ for m in net]
    assert s.total_params == sum(p.data.size for p in net.parameters())
    assert s.param_bytes == 4 * s.total_params


def test_every_layer_kind_matches_a_forward_pass():
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding="same", bias=False), nn.BatchNorm2d(8), nn.LeakyReLU(0.1),
        nn.GroupNorm(2, 8), nn.InstanceNorm2d(8, affine=True), nn.Sigmoid(),
        nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), nn.Tanh(),
        nn.AdaptiveMaxPool2d((None, 3)), nn.LayerNorm((8, 7, 3)), nn.Identity(),
        nn.Sequential(nn.ConvTranspose2d(8, 4, (3, 2), stride=(2, 1), padding=1, output_padding=(1, 0)),
                      nn.AvgPool2d(2, count_include_pad=False), nn.Dropout(0.3)),
        nn.GlobalAvgPool2d(flatten=True), nn.BatchNorm1d(4), nn.Linear(4, 6), nn.Softmax(dim=1), nn.LogSoftmax(1),
    )
    s = summary(net, (3, 13, 9))
    assert [r.output_shape for r in s.rows] == _forward_shapes(net, (3, 13, 9))
    assert [r.name for r in s.rows][11:14] == ["11.0", "11.1", "11.2"]
    assert s.total_params == sum(p.data.size for p in net.parameters())
    assert s.buffer_bytes == sum(b.nbytes for b in net.buffers())
    for nsp in (1, 3):
        shape = (2,) + (6,) * nsp
        pools = nn.Sequential(ADAPTIVE[nsp](3), {1: nn.AdaptiveMaxPool1d, 3: nn.AdaptiveMaxPool3d}[nsp](2),
                              nn.Flatten(), nn.Linear(2 * 2 ** nsp, 3))
        assert [r.output_shape for r in summary(pools, shape).rows] == _forward_shapes(pools, shape)


def test_linear_counts_every_leading_position():
    # Linear acts on the last axis: (4, 7, 5) -> (4, 7, 3) is 28 products of a 5x3 matrix (torchinfo#77)
    s = summary(nn.Sequential(nn.Linear(5, 3)), (4, 7, 5))
    assert s.rows[0].output_shape == (4, 7, 3)
    assert s.total_macs == 4 * 7 * 5 * 3 and s.total_other_ops == 4 * 7 * 3
    assert s.rows[0].receptive_field is None


# ------------------------------------------------------------------ receptive fields
def _probe(net, input_size, unit):
    """Per input axis, the (first, last) position whose gradient is non-zero when one output unit
    (channel 0, spatial index ``unit``) is backpropagated; None when no input reaches it."""
    x = convkit.tensor(np.ones((1,) + tuple(input_size), np.float32), requires_grad=True)
    y = net(x)
    grad = np.zeros(y.shape, np.float32)
    grad[(0, 0) + tuple(unit)] = 1.0
    y.backward(grad)
    support = np.abs(x.grad[0]).sum(axis=0) > 0
    spans = []
    for axis in range(support.ndim):
        hits = np.flatnonzero(support.any(axis=tuple(a for a in range(support.ndim) if a != axis)))
        spans.append((int(hits[0]), int(hits[-1])) if hits.size else None)
    return spans


@pytest.mark.parametrize("seed,nsp", [(s, 2) for s in range(6)] + [(s, 1) for s in range(6)])
def test_receptive_fields_match_a_gradient_probe(seed, nsp):
    net, input_size = _random_net(100 + seed, nsp, positive=True, depth=4,
                                  sizes={1: (60, 100), 2: (30, 40)}[nsp], max_stride=2)
    s = summary(net, input_size)
    units = list(itertools.product(*(range(n) for n in s.output_shape[1:])))
    inside = [u for u in units if all(b is not None and 0 <= b[0] and b[1] < n
                                      for b, n in zip(s.field_of(-1, u), input_size[1:]))]
    assert len(inside) >= 2
    rng = np.random.default_rng(seed)
    for i in rng.choice(len(inside), 5):
        # a field inside the input is exactly the probe's support
        assert _probe(net, input_size, inside[i]) == list(s.field_of(-1, inside[i])), (net, inside[i])
    for i in rng.choice(len(units), 3):
        # near the border the field reaches into padding: the probe sees at most its clipped span
        probe = _probe(net, input_size, units[i])
        for got, span, n in zip(probe, s.field_of(-1, units[i]), input_size[1:]):
            assert got is None or span[0] <= got[0] and got[1] <= min(span[1], n - 1)


def test_receptive_field_columns_follow_the_recurrences_and_the_probe():
    # conv k3 p1 -> avgpool k2 s2 -> conv k3 d2 p2 -> conv k3 s2 p1, 1-D, on 60 positions
    net = nn.Sequential(nn.Conv1d(1, 1, 3, padding=1), nn.AvgPool1d(2), nn.Conv1d(1, 1, 3, padding=2, dilation=2),
                        nn.Conv1d(1, 1, 3, stride=2, padding=1))
    for p in net.parameters():
        p.data[...] = 1.0
    s = summary(net, (1, 60))
    chain = receptive_field([(3, 1, 1, 1), (2, 2, 1, 0), (3, 1, 2, 2), (3, 2, 1, 1)])
    assert [(r.receptive_field[0], r.jump[0], r.start[0]) for r in s.rows] == chain
    r, j, start = chain[-1]
    assert (r, j, start) == (16, 4, 0.5)
    for u in (8, 9, 12):
        centre = start + u * j
        assert _probe(net, (1, 60), (u,)) == [(int(centre - (r - 1) / 2), int(centre + (r - 1) / 2))]
    assert _probe(net, (1, 60), (8,)) == [(25, 40)]


def test_transposed_conv_fields_alternate_and_the_largest_is_reported():
    up = nn.Sequential(nn.ConvTranspose1d(1, 1, 3, stride=2))
    s = summary(up, (1, 10))
    assert [s.field_of(0, (u,)) for u in range(4)] == [((-1, 0),), ((0, 0),), ((0, 1),), ((1, 1),)]
    assert s.rows[0].receptive_field == (2,) and s.rows[0].jump == (0.5,)
    assert "units see 1/2 positions" in s.rows[0].note
    # conv stride 2 then transposed conv stride 2: widths 3 and 5 alternate
    both = nn.Sequential(nn.Conv1d(1, 1, 3, stride=2), nn.ConvTranspose1d(1, 1, 3, stride=2))
    s = summary(both, (1, 21))
    widths = [b[0][1] - b[0][0] + 1 for b in (s.field_of(1, (u,)) for u in range(6))]
    assert widths == [5, 3, 5, 3, 5, 3] and s.rows[1].receptive_field == (5,)
    assert "units see 3/5 positions" in str(s)


def test_global_pooling_and_flatten_end_the_fields():
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.GlobalAvgPool2d(), nn.Flatten(), nn.Linear(2, 2))
    s = summary(net, (1, 8, 8))
    assert s.rows[0].receptive_field == (3, 3)
    assert all(r.receptive_field is r.jump is r.start is None for r in s.rows[1:])
    assert "global pooling" in s.rows[1].note
    with pytest.raises(ValueError, match="no spatial axes left"):
        s.field_of(2, ())


def test_lenet5_c5_sees_the_whole_padded_input():
    lenet = models.lenet5()
    s = summary(lenet, (1, 28, 28))
    assert s.total_params == 61_706 == sum(p.data.size for p in lenet.parameters())
    # C5 as the paper has it: a 5x5 convolution of the 16 S4 maps
    c5 = nn.Sequential(*list(lenet)[:6], nn.Conv2d(16, 120, 5))
    row = summary(c5, (1, 28, 28)).rows[-1]
    r4, j4 = 16, 4
    assert row.output_shape == (120, 1, 1)
    assert row.receptive_field == (r4 + (5 - 1) * j4,) * 2 == (32, 32)
    assert summary(c5, (1, 28, 28)).field_of(-1, (0, 0)) == ((-2, 29), (-2, 29))  # 28 + padding 2 each side


@pytest.fixture(scope="module")
def vgg16_summary():
    return summary(models.vgg16(), (3, 224, 224))


def test_vgg16_params_macs_and_pool5_field(vgg16_summary):
    s = vgg16_summary
    assert s.total_params == 138_357_544 and s.param_bytes == 4 * 138_357_544
    assert s.total_macs == 15_470_264_320  # "15.47 GMACs"
    # torchinfo's "Total mult-adds (G): 15.48" adds every conv and linear bias add
    bias_adds = sum(r.other_ops for r in s.rows if r.kind in ("Conv2d", "Linear"))
    assert round((s.total_macs + bias_adds) / 1e9, 2) == 15.48
    pool5 = s.rows[[r.name for r in s.rows].index("features.30")]
    assert pool5.output_shape == (512, 7, 7)
    assert pool5.receptive_field == (212, 212) and pool5.jump == (32, 32)
    assert pool5.start == (-90 + (212 - 1) / 2,) * 2
    assert s.rows[-1].output_shape == (1000,)
    # VGG.forward is read: features, avgpool, x.flatten(1), classifier
    assert [r.name for r in s.rows][30:34] == ["features.30", "avgpool", "reshape", "classifier.0"]
    assert "Total MACs: 15,470,264,320 (15.47 G)" in str(s)


def test_vgg19_fields():
    features = models.vgg.make_layers(models.vgg.CFGS["E"])
    rows = summary(features, (3, 224, 224)).rows
    assert rows[-2].kind == "ReLU" and rows[-2].receptive_field == (252, 252)  # conv5_4
    assert rows[-1].kind == "MaxPool2d" and rows[-1].receptive_field == (268, 268)  # pool5
    assert rows[-1].start == (-118 + (268 - 1) / 2,) * 2
    assert sum(r.params for r in rows) == 20_024_384


# ------------------------------------------------------------------ MACs
def _torch_flops(layer, shape):
    with FlopCounterMode(display=False) as counter:
        layer(torch.zeros((1,) + shape))
    return counter.get_total_flops()


@pytest.mark.parametrize("nsp,args,kwargs,shape", [
    (2, (3, 10, 3), {}, (3, 32, 32)),
    (2, (4, 6, (3, 2)), {"stride": 2, "padding": 1, "dilation": (1, 2), "groups": 2}, (4, 15, 12)),
    (1, (6, 6, 5), {"groups": 6, "padding": "same"}, (6, 20)),
    (3, (2, 4, 3), {"stride": (1, 2, 2)}, (2, 6, 9, 8)),
])
def test_conv_macs_are_half_of_torch_flops(nsp, args, kwargs, shape):
    s = summary(nn.Sequential(CONV[nsp](*args, **kwargs)), shape)
    theirs = getattr(torch.nn, f"Conv{nsp}d")(*args, **kwargs)
    assert 2 * s.total_macs == s.total_flops == _torch_flops(theirs, shape)


@pytest.mark.parametrize("nsp,args,kwargs,shape", [
    (2, (32, 1, 3), {}, (32, 1, 1)),
    (2, (4, 6, 3), {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2}, (4, 7, 5)),
    (1, (3, 2, 4), {"stride": 3, "dilation": 2}, (3, 11)),
    (3, (2, 2, 2), {"stride": 2}, (2, 3, 4, 5)),
])
def test_transposed_conv_macs_use_the_input_grid(nsp, args, kwargs, shape):
    s = summary(nn.Sequential(CONVT[nsp](*args, **kwargs)), shape)
    c_in, c_out, k = args
    groups = kwargs.get("groups", 1)
    kernel = k ** nsp
    assert s.total_macs == c_in * math.prod(shape[1:]) * (c_out // groups) * kernel
    theirs = getattr(torch.nn, f"ConvTranspose{nsp}d")(*args, **kwargs)
    assert 2 * s.total_macs == _torch_flops(theirs, shape)
    if shape == (32, 1, 1):
        assert s.total_macs == 288  # FlopCounterMode: 576 = 2 * 32 * 9


def test_one_conv_as_each_tool_counts_it():
    s = summary(nn.Sequential(nn.Conv2d(3, 10, 3)), (3, 32, 32))
    assert s.total_macs == 10 * 30 * 30 * 3 * 9 == 243_000  # fvcore, thop
    assert s.total_other_ops == 10 * 30 * 30 == 9_000  # bias adds
    assert s.total_macs + s.total_other_ops == 252_000  # torchinfo "mult-adds", ptflops
    assert s.total_flops == 486_000  # FlopCounterMode


def test_weight_sharing_the_three_by_five_picture():
    # 7 inputs, a 3-tap kernel, 5 outputs: 15 connections and 3 weights; dense: 35 and 35
    row = summary(nn.Sequential(nn.Conv1d(1, 1, 3, bias=False)), (1, 7)).rows[0]
    assert (row.params, row.macs, row.dense_params, row.dense_connections) == (3, 15, 35, 35)
    row = summary(nn.Sequential(nn.Conv2d(1, 6, 5, padding=2)), (1, 28, 28)).rows[0]
    assert row.dense_connections == 28 * 28 * (6 * 28 * 28)
    assert row.dense_params == row.dense_connections + 6 * 28 * 28 and row.params == 156


def test_memory_uses_the_real_itemsize():
    net = nn.Sequential(nn.Conv2d(1, 4, 3, dtype=np.float64), nn.BatchNorm2d(4, dtype=np.float64))
    s = summary(net, (1, 10, 10))
    assert s.dtype == "float64"
    assert s.rows[0].activation_bytes == 4 * 8 * 8 * 8
    assert s.param_bytes == 8 * s.total_params and s.buffer_bytes == 8 * 8 + 8  # running stats + int64 counter
    assert s.rows[0].im2col_bytes == 1 * 9 * 64 * 8
    assert summary(net, (1, 10, 10), dtype=np.float16).rows[0].activation_bytes == 4 * 8 * 8 * 2
    assert s.total_activation_bytes == sum(r.activation_bytes for r in s.rows)


# ------------------------------------------------------------------ forward reading
class TutorialNet(nn.Module):
    """PyTorch's 60-minute-blitz network, written with functional calls."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), (2, 2))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.view(-1, 16 * 5 * 5)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class Tower(nn.Module):
    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([nn.Conv1d(2, 2, 3, padding=1) for _ in range(3)])
        self.act = nn.ReLU()
        self.spare = nn.Linear(4, 4)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * 16, 5))

    def forward(self, x):
        for block in self.blocks:
            x = self.act(block(x))
        x = self.blocks[0](x)
        return self.head(x.reshape(x.shape[0], 2, -1))


def test_functional_calls_and_views_in_forward():
    net = TutorialNet()
    s = summary(net, (1, 32, 32))
    assert [r.name for r in s.rows] == ["conv1", "relu", "max_pool", "conv2", "relu_1", "max_pool_1",
                                        "reshape", "fc1", "relu_2", "fc2", "relu_3", "fc3"]
    assert [r.output_shape for r in s.rows][:7] == [(6, 28, 28), (6, 28, 28), (6, 14, 14), (16, 10, 10),
                                                     (16, 10, 10), (16, 5, 5), (400,)]
    assert s.output_shape == net(np.zeros((2, 1, 32, 32), np.float32)).shape[1:]
    assert s.total_params == sum(p.data.size for p in net.parameters())
    assert s.rows[5].receptive_field == (16, 16)


def test_module_list_loops_shared_and_unused_modules():
    net = Tower()
    s = summary(net, (2, 16))
    assert [r.name for r in s.rows] == ["blocks.0", "act", "blocks.1", "act_1", "blocks.2", "act_2", "blocks.0_1",
                                        "reshape", "head.0", "head.1"]
    assert s.output_shape == net(np.zeros((3, 2, 16), np.float32)).shape[1:]
    assert s.rows[6].params == 0 and "runs blocks.0 again" in s.rows[6].note
    assert s.unused == (("spare", 20),)
    assert s.total_params == sum(p.data.size for p in net.parameters()) - 20
    assert "Not called by forward: spare (20 params, not in the totals)" in str(s)
    assert s.rows[6].receptive_field == (1 + 4 * 2,)


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x):
        return x + self.conv(x)


class Gated(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x):
        if self.training:
            x = self.conv(x)
        return x


class Swish(nn.Module):
    def forward(self, x):
        return x * F.sigmoid(x)


class NoisyConv(nn.Conv2d):
    def forward(self, x):
        return super().forward(x) + 1


@pytest.mark.parametrize("net,names", [
    (nn.Sequential(Residual()), ["0.conv", "0.add"]),
    (Gated(), []),  # summaries describe inference, where this forward skips its conv
    (nn.Sequential(nn.Conv2d(2, 2, 1), Swish()), ["0", "1"]),  # a leaf module's ops make one row
    (nn.Sequential(NoisyConv(2, 2, 1)), ["0"]),
])
def test_any_forward_is_followed_as_it_runs(net, names):
    s = summary(net, (2, 8, 8))
    assert [r.name for r in s.rows] == names
    assert s.output_shape == net.eval()(np.zeros((3, 2, 8, 8), np.float32)).shape[1:]
    assert s.unused == ((("conv", 38),) if isinstance(net, Gated) else ())


def test_a_module_without_forward_is_named():
    with pytest.raises(ValueError, match="ModuleList does not define forward"):
        summary(nn.ModuleList([nn.ReLU()]), (2, 8, 8))


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("net,size,match", [
    (nn.Sequential(nn.Conv2d(1, 6, 5), nn.Conv2d(8, 16, 5)), (1, 28, 28),
     r"summary: layer 1 \(Conv2d\), given an input of shape \(2, 6, 24, 24\): conv2d: input has 6 channels but "
     r"weight expects 8"),
    (nn.Sequential(nn.Conv2d(1, 4, 5), nn.MaxPool2d(2), nn.Conv2d(4, 4, 5)), (1, 12, 12),
     r"layer 2 \(Conv2d\), given an input of shape \(2, 4, 4, 4\): conv2d: the 5×5 kernel is larger than the 4×4 "
     r"padded input"),
    (nn.Sequential(nn.MaxPool2d(2), nn.MaxPool2d(2)), (1, 3, 3),
     r"layer 1 \(MaxPool2d\), given an input of shape \(2, 1, 1, 1\): max_pool2d: input too small"),
    (nn.Sequential(nn.Conv2d(1, 2, 3), nn.Linear(72, 3)), (1, 8, 8),
     r"layer 1 \(Linear\), .* linear: input has 6 features .* but weight expects 72"),
    (nn.Sequential(nn.Conv2d(1, 2, 3)), (1, 8), r"layer 0 \(Conv2d\), given an input of shape \(2, 1, 8\)"),
    (nn.Sequential(nn.Flatten(0)), (1, 8, 8), r"0 \(reshape\) turns a batch of 2 into shape \(128,\): it does not "
                                             r"keep the batch axis first"),
    (nn.Sequential(nn.BatchNorm2d(3)), (2, 8, 8), r"layer 0 \(BatchNorm2d\).*batch_norm"),
])
def test_bad_shapes_name_the_layer_and_what_it_received(net, size, match):
    with pytest.raises(ValueError, match=match):
        summary(net, size)


@pytest.mark.parametrize("size", [(3, 0, 5), "3x224", (), (3, 2.5)])
def test_bad_input_size(size):
    with pytest.raises(ValueError, match="input_size must be one sample's shape"):
        summary(nn.Sequential(nn.ReLU()), size)


def test_model_must_be_a_module():
    with pytest.raises(TypeError, match="model must be a convkit.nn.Module, got function"):
        summary(lambda x: x, (1, 2))


# ------------------------------------------------------------------ rendering
SMALL = """\
Sequential on input (1, 8, 8) (float32), per sample
=======================================================================================================
Layer  Type             Output shape  Params   MACs  Other ops  Activation bytes  RF  Jump  Start  Note
-------------------------------------------------------------------------------------------------------
0      Conv2d           (2, 8, 8)         20  1,152        128               512   3     1      0
1      ReLU             (2, 8, 8)          0      0        128               512   3     1      0
2      MaxPool2d        (2, 4, 4)          0      0         96               128   4     2    0.5
3      ConvTranspose2d  (1, 9, 9)         19    288         81               324   6     1   -0.5  [1]
4      Flatten          (81,)              0      0          0               324   -     -      -
5      Linear           (3,)             246    243          3                12   -     -      -
=======================================================================================================
Input: (1, 8, 8) float32 (256 bytes); output (3,)
Total params: 285 (trainable 285, non-trainable 0)
Params size: 1,140 bytes (1.14 kB); buffers: 0 bytes
Total MACs: 1,683 (1.68 k) per sample; FLOPs ~ 2 x MACs = 3,366 (3.37 k)
Other ops (bias, norm, activation, pooling, merges; not in MACs): 436
Activations: 1,812 bytes (1.81 kB) per sample, the sum of the outputs above
Largest im2col buffer: 2,304 bytes (2.30 kB) in 0 (Conv2d)

[1] non-uniform field: units see 4/6 x 4/6 positions (largest shown)

Weight sharing: each convolution vs a fully connected layer with the same input and output sizes
Layer  Params  Dense params  Connections  Dense connections  Params saved
0          20         8,320        1,152              8,192          416x
3          19         2,673          288              2,592          141x"""


def _small():
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.ConvTranspose2d(2, 1, 3, stride=2), nn.Flatten(), nn.Linear(81, 3))
    return summary(net, (1, 8, 8))


def test_table_snapshot_and_column_sums():
    s = _small()
    text = str(s)
    assert text == SMALL
    lines = text.splitlines()
    header = lines[2]
    body = lines[4:lines.index(lines[1], 2)]
    starts = {name: header.index(name) for name in ("Params", "MACs", "Other ops", "Activation bytes")}
    ends = {"Params": starts["Params"] + len("Params"), "MACs": starts["MACs"] + len("MACs"),
            "Other ops": starts["Other ops"] + len("Other ops"),
            "Activation bytes": starts["Activation bytes"] + len("Activation bytes")}
    sums = {}
    for name, end in ends.items():  # right-aligned: each number ends under its header
        sums[name] = sum(int(re.findall(r"[\d,]+$", line[:end])[0].replace(",", "")) for line in body)
    assert sums == {"Params": s.total_params, "MACs": s.total_macs, "Other ops": s.total_other_ops,
                    "Activation bytes": s.total_activation_bytes}
    assert f"Total params: {s.total_params:,}" in text and f"Total MACs: {s.total_macs:,}" in text


def test_markdown_and_json_carry_the_same_numbers():
    s = _small()
    md = s.to_markdown().splitlines()
    table = [line for line in md if line.startswith("| ")]
    assert table[0].startswith("| Layer | Type | Output shape | Params | MACs |")
    assert table[1].startswith("| --- | --- | --- | ---: |")
    assert len(table) == 2 + len(s.rows) + 2 + len(s.weight_sharing)
    data = json.loads(s.to_json())
    assert data["totals"]["params"] == s.total_params == sum(r["params"] for r in data["rows"])
    assert data["totals"]["macs"] == s.total_macs and data["totals"]["flops"] == 2 * s.total_macs
    assert data["rows"][3]["jump"] == [1, 1] and data["rows"][4]["receptive_field"] is None
    assert data["rows"][0]["dense_connections"] == 8192 and data["output_shape"] == [3]
    assert repr(s) == str(s)
