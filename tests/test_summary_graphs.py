"""summary on models that branch and merge: shapes against real forward passes, receptive fields through merges
against gradient probes, MACs against torch's FlopCounterMode, shared modules, folding by depth."""

import itertools

import numpy as np
import pytest
from oracle import torch
from torch.utils.flop_counter import FlopCounterMode

import convkit
import convkit.functional as F
import convkit.nn as nn
from convkit.analysis import summary
from convkit.export import to_torch
from convkit.models import build
from convkit.trace import trace


class Residual(nn.Module):
    """``x + conv(conv(x))`` with a strided projection when asked (a ResNet basic block without norms)."""

    def __init__(self, c_in, c_out, stride=1):
        super().__init__()
        self.a = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1)
        self.b = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1, stride=stride) if stride != 1 or c_in != c_out else None

    def forward(self, x):
        shortcut = x if self.skip is None else self.skip(x)
        return self.b(self.a(x)) + shortcut


class Inception(nn.Module):
    """Four branches concatenated along the channels: 1x1, 3x3, 5x5 (dilated 3x3) and pool + 1x1."""

    def __init__(self, c):
        super().__init__()
        self.one = nn.Conv2d(c, 2, 1)
        self.three = nn.Conv2d(c, 2, 3, padding=1)
        self.five = nn.Conv2d(c, 2, 3, padding=2, dilation=2)
        self.pool = nn.AvgPool2d(3, stride=1, padding=1)
        self.proj = nn.Conv2d(c, 2, 1)

    def forward(self, x):
        return convkit.cat([self.one(x), self.three(x), self.five(x), self.proj(self.pool(x))], 1)


class Net(nn.Module):
    """Stem, a residual block, an inception block, a strided residual block, then two heads merged by addition."""

    def __init__(self, c=1, head=True):
        super().__init__()
        self.stem = nn.Conv2d(c, 4, 3, padding=1)
        self.res = Residual(4, 4)
        self.mix = Inception(4)
        self.down = Residual(8, 6, stride=2)
        self.head = head
        if head:
            self.fc_a = nn.Linear(6, 3)
            self.fc_b = nn.Linear(6, 3)

    def forward(self, x):
        x = self.down(self.mix(self.res(self.stem(x))))
        if not self.head:
            return x
        pooled = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc_a(pooled) + self.fc_b(pooled) * 0.5


def _positive(net):
    rng = np.random.default_rng(0)
    for p in net.parameters():
        p.data[...] = rng.uniform(0.5, 1.5, p.shape)
    return net


def _probe(net, input_size, unit):
    """Inputs whose gradient is non-zero when every channel of output unit ``unit`` is back-propagated."""
    x = convkit.tensor(np.ones((1,) + input_size, np.float32), requires_grad=True)
    y = net(x)
    grad = np.zeros(y.shape, np.float32)
    grad[(0, slice(None)) + tuple(unit)] = 1.0
    y.backward(grad)
    support = np.abs(x.grad[0]).sum(axis=0) > 0
    return [(int(h[0]), int(h[-1])) for h in
            (np.flatnonzero(support.any(axis=1 - a)) for a in range(2))]


def test_rows_match_the_real_forward_op_by_op():
    convkit.manual_seed(0)
    net = Net()
    s = summary(net, (1, 16, 16))
    real = trace(net, np.random.default_rng(1).normal(size=(1, 1, 16, 16)).astype(np.float32))
    by_name = {n.name: n for n in real.nodes}
    assert [r.name for r in s.rows] == [n.name for n in real.nodes]
    assert all(r.output_shape == by_name[r.name].value.shape[1:] for r in s.rows)
    kinds = {r.name: r.kind for r in s.rows}
    assert kinds["res.add"] == "add" and kinds["mix.cat"] == "cat" and kinds["down.skip"] == "Conv2d"
    assert s.output_shape == (3,) and s.total_params == sum(p.data.size for p in net.parameters())
    add = next(r for r in s.rows if r.name == "res.add")
    assert add.other_ops == 4 * 16 * 16 and add.macs == 0 and add.params == 0


def test_fields_through_residual_and_concatenation_match_a_gradient_probe():
    net = _positive(Net(head=False))
    size = (1, 24, 24)
    s = summary(net, size)
    # stem 3, res +2 +2 (7), inception: widest branch the dilated 3x3, +4 (11), down: +2, +2·2 (17), jump 2
    assert s.rows[-1].receptive_field == (17, 17) and s.rows[-1].jump == (2, 2)
    cat = next(r for r in s.rows if r.name == "mix.cat")
    assert cat.receptive_field == (11, 11) and cat.note == ""
    units = list(itertools.product(range(s.output_shape[1]), range(s.output_shape[2])))
    inside = [u for u in units if all(0 <= lo and hi < n for (lo, hi), n in zip(s.field_of(-1, u), size[1:]))]
    assert len(inside) >= 4
    for u in inside:
        assert _probe(net, size, u) == list(s.field_of(-1, u)), u


def test_macs_are_half_of_torch_flops_on_branching_nets():
    convkit.manual_seed(0)
    for net, size in ((Net(), (1, 16, 16)), (build("resnet18", input_size=(3, 64, 64), num_classes=10), (3, 64, 64))):
        s = summary(net, size)
        with FlopCounterMode(display=False) as counter:
            to_torch(net, size).eval()(torch.zeros((1,) + size))
        assert s.total_flops == 2 * s.total_macs == counter.get_total_flops()


def test_a_shared_module_is_counted_once_and_folding_keeps_the_totals():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 2, 3, padding=1)
            self.spare = nn.Linear(2, 2)

        def forward(self, x):
            return self.conv(self.conv(x)) + x

    s = summary(Twice(), (2, 6, 6))
    assert [r.params for r in s.rows] == [38, 0, 0] and "runs conv again" in s.rows[1].note
    assert s.unused == (("spare", 6),)
    net = build("resnet20", input_size=(1, 28, 28), num_classes=10, meta=True)
    every = summary(net, (1, 28, 28))
    for depth in (1, 2, 3):
        folded = summary(net, (1, 28, 28), depth=depth)
        assert (folded.total_params, folded.total_macs, folded.total_other_ops, folded.total_activation_bytes) == \
            (every.total_params, every.total_macs, every.total_other_ops, every.total_activation_bytes)
        assert folded.output_shape == every.output_shape == (10,)
    stages = summary(net, (1, 28, 28), depth=1)
    assert [r.name for r in stages.rows] == ["conv1", "bn1", "relu", "layer1", "layer2", "layer3", "avgpool",
                                             "reshape", "fc"]
    assert every.total_params == 272_186 and stages.rows[3].receptive_field == (15, 15)
    with pytest.raises(ValueError, match="depth must be a positive int"):
        summary(net, (1, 28, 28), depth=0)


def test_meta_built_models_summarise_as_the_real_ones():
    real = summary(build("resnet18", input_size=(3, 224, 224)), (3, 224, 224))
    meta = summary(build("resnet18", input_size=(3, 224, 224), meta=True), (3, 224, 224))
    assert str(real) == str(meta)
    assert real.total_params == 11_689_512 and real.total_macs == 1_814_073_344


def test_the_output_is_what_forward_returns_not_the_last_row():
    class Aux(nn.Module):
        def __init__(self):
            super().__init__()
            self.main = nn.Conv2d(1, 4, 3)
            self.side = nn.Conv2d(1, 2, 5)

        def forward(self, x):
            out = self.main(x)
            self.side(x)  # computed last, not returned
            return out

    s = summary(Aux(), (1, 9, 9))
    assert s.rows[-1].name == "side" and s.output_shape == (4, 7, 7)
    assert s.to_dict()["output_shape"] == [4, 7, 7]


def test_element_wise_functions_keep_the_fields():
    class Exp(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)

        def forward(self, x):
            return self.conv(x).exp().sqrt()

    s = summary(Exp(), (1, 8, 8))
    assert [r.kind for r in s.rows] == ["Conv2d", "exp", "sqrt"]
    assert [r.receptive_field for r in s.rows] == [(3, 3)] * 3 and [r.other_ops for r in s.rows[1:]] == [72, 72]
