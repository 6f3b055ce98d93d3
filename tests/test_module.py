"""Module, Parameter and containers: registration, state dicts, modes, compared with torch.nn."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
from oracle import torch

import convkit
from convkit.nn import Module, ModuleList, Parameter, Sequential

RNG = np.random.default_rng(7)


class Affine(Module):
    """``y = x @ weight.T + bias`` with two buffers: built from Parameter directly."""

    def __init__(self, n_in, n_out, bias=True):
        super().__init__()
        self.n_in, self.n_out = n_in, n_out
        self.weight = Parameter(RNG.standard_normal((n_out, n_in)).astype(np.float32))
        if bias:
            self.bias = Parameter(np.zeros(n_out, dtype=np.float32))
        else:
            self.register_parameter("bias", None)
        self.register_buffer("running", np.zeros(n_out, dtype=np.float32))
        self.register_buffer("count", np.array(0))

    def forward(self, x):
        y = x @ self.weight.T
        return y + self.bias if self.bias is not None else y

    def extra_repr(self):
        return f"in={self.n_in}, out={self.n_out}"


class TorchAffine(torch.nn.Module):
    def __init__(self, n_in, n_out, bias=True):
        super().__init__()
        self.n_in, self.n_out = n_in, n_out
        self.weight = torch.nn.Parameter(torch.zeros(n_out, n_in))
        self.bias = torch.nn.Parameter(torch.zeros(n_out)) if bias else None
        self.register_buffer("running", torch.zeros(n_out))
        self.register_buffer("count", torch.tensor(0))

    def forward(self, x):
        y = x @ self.weight.T
        return y + self.bias if self.bias is not None else y

    def extra_repr(self):
        return f"in={self.n_in}, out={self.n_out}"


class Net(Module):
    def __init__(self):
        super().__init__()
        self.scale = Parameter(np.ones(1, dtype=np.float32))
        self.body = Sequential(Affine(3, 4), Affine(4, 4, bias=False))
        self.heads = ModuleList([Affine(4, 2), Affine(4, 1)])
        self.register_buffer("steps", np.array(0))

    def forward(self, x):
        h = self.body(x) * self.scale
        return [head(h) for head in self.heads]


class TorchNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))
        self.body = torch.nn.Sequential(TorchAffine(3, 4), TorchAffine(4, 4, bias=False))
        self.heads = torch.nn.ModuleList([TorchAffine(4, 2), TorchAffine(4, 1)])
        self.register_buffer("steps", torch.tensor(0))

    def forward(self, x):
        h = self.body(x) * self.scale
        return [head(h) for head in self.heads]


def torch_net_like(net):
    """A TorchNet holding ``net``'s values."""
    tnet = TorchNet()
    tnet.load_state_dict({k: torch.tensor(v) for k, v in net.state_dict().items()})
    return tnet


def test_names_and_order_match_torch():
    net, tnet = Net(), TorchNet()
    assert [n for n, _ in net.named_parameters()] == [n for n, _ in tnet.named_parameters()]
    assert [n for n, _ in net.named_buffers()] == [n for n, _ in tnet.named_buffers()]
    assert [n for n, _ in net.named_modules()] == [n for n, _ in tnet.named_modules()]
    assert list(net.state_dict()) == list(tnet.state_dict())
    assert [type(c).__name__ for c in net.children()] == ["Sequential", "ModuleList"]
    assert len(list(net.parameters())) == 8 and len(list(net.modules())) == 7


def test_registration_kinds():
    m = Affine(2, 3)
    assert list(m._parameters) == ["weight", "bias"] and list(m._buffers) == ["running", "count"]
    assert m.weight.requires_grad and m.weight.dtype == np.float32
    assert isinstance(m.running, np.ndarray)
    m.running = np.ones(3, dtype=np.float32)  # assigning to a buffer name updates the buffer
    np.testing.assert_array_equal(m.state_dict()["running"], np.ones(3))
    m.note = "plain attribute"
    assert "note" not in m.state_dict() and m.note == "plain attribute"
    del m.bias
    assert [n for n, _ in m.named_parameters()] == ["weight"]
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        _ = m.missing


def test_absent_optional_parameter_is_skipped_like_torch():
    m, tm = Affine(2, 3, bias=False), TorchAffine(2, 3, bias=False)
    assert m.bias is None
    assert list(m.state_dict()) == list(tm.state_dict()) == ["weight", "running", "count"]
    assert [n for n, _ in m.named_parameters()] == ["weight"]


def test_shared_parameter_listed_once():
    net = Sequential(Affine(2, 2), Affine(2, 2))
    net[1].weight = net[0].weight
    assert [n for n, _ in net.named_parameters()] == ["0.weight", "0.bias", "1.bias"]


def test_named_parameters_prefix():
    assert [n for n, _ in Affine(1, 1).named_parameters(prefix="layer")] == ["layer.weight", "layer.bias"]


def test_forward_and_backward_through_modules_match_torch():
    net = Net()
    for p in net.parameters():
        p.data = p.data.astype(np.float64)
    tnet = torch_net_like(net).double()
    x = RNG.standard_normal((5, 3))
    outs = net(convkit.tensor(x))
    touts = tnet(torch.tensor(x))
    loss = (outs[0] * outs[0]).sum() + outs[1].sum()
    tloss = (touts[0] * touts[0]).sum() + touts[1].sum()
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-12)
    loss.backward()
    tloss.backward()
    tgrads = dict(tnet.named_parameters())
    for name, p in net.named_parameters():
        np.testing.assert_allclose(p.grad, tgrads[name].grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


def test_state_dict_values_are_copies():
    m = Affine(2, 3)
    sd = m.state_dict()
    sd["weight"][...] = 100.0
    sd["running"][...] = 5.0
    assert not np.any(m.weight.data == 100.0) and not np.any(m.running == 5.0)
    assert sd["weight"].dtype == np.float32 and sd["count"].dtype == m.count.dtype


def test_load_torch_state_dict():
    net, tnet = Net(), TorchNet()
    for p in tnet.parameters():
        torch.nn.init.normal_(p)
    tnet.steps += 3
    weight_array = net.body[0].weight.data
    missing, unexpected = net.load_state_dict(tnet.state_dict())
    assert missing == [] and unexpected == []
    assert net.body[0].weight.data is weight_array  # copied in place
    for name, value in net.state_dict().items():
        np.testing.assert_array_equal(value, tnet.state_dict()[name].numpy(), err_msg=name)
    assert net.steps == 3


def test_load_casts_to_the_target_dtype():
    m = Affine(2, 2)
    m.load_state_dict({k: np.asarray(v, dtype=np.float64) for k, v in Affine(2, 2).state_dict().items()})
    assert m.weight.dtype == np.float32 and m.running.dtype == np.float32


def test_load_strict_errors_name_the_keys():
    m = Affine(2, 3)
    good = m.state_dict()
    missing = {k: v for k, v in good.items() if k != "bias"}
    with pytest.raises(ValueError, match=r"missing keys \['bias'\]"):
        m.load_state_dict(missing)
    with pytest.raises(ValueError, match=r"unexpected keys \['extra'\]"):
        m.load_state_dict({**good, "extra": np.zeros(1)})
    with pytest.raises(ValueError, match=r"shape mismatch: weight: checkpoint \(2, 2\) vs model \(3, 2\)"):
        m.load_state_dict({**good, "weight": np.zeros((2, 2))})


def test_load_non_strict():
    m = Affine(2, 3)
    new = {k: np.full_like(v, 2) for k, v in m.state_dict().items() if k != "bias"}
    bias = m.bias.data.copy()
    missing, unexpected = m.load_state_dict({**new, "other.weight": np.zeros(1)}, strict=False)
    assert missing == ["bias"] and unexpected == ["other.weight"]
    np.testing.assert_array_equal(m.weight.data, 2.0)
    np.testing.assert_array_equal(m.bias.data, bias)


def test_shape_mismatch_raises_even_when_not_strict_like_torch():
    m, tm = Affine(2, 3), TorchAffine(2, 3)
    with pytest.raises(RuntimeError, match="size mismatch"):
        tm.load_state_dict({"weight": torch.zeros(2, 2)}, strict=False)
    before = m.state_dict()
    with pytest.raises(ValueError, match="shape mismatch"):
        m.load_state_dict({"weight": np.zeros((2, 2)), "running": np.ones(3)}, strict=False)
    np.testing.assert_array_equal(m.running, before["running"])  # nothing was copied


def test_train_eval_propagate():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.body.train()
    assert net.body[1].training and not net.training and not net.heads[0].training
    net.train()
    assert all(m.training for m in net.modules())


def test_zero_grad_and_requires_grad():
    m = Affine(2, 2)
    (m(convkit.tensor(np.ones((1, 2), dtype=np.float32)))).sum().backward()
    grad = m.weight.grad
    m.zero_grad(set_to_none=False)
    assert m.weight.grad is grad and not np.any(grad)
    m.zero_grad()
    assert m.weight.grad is None and m.bias.grad is None
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())


def test_sequential():
    a, b, c = Affine(3, 4), Affine(4, 2), Affine(2, 2)
    seq = Sequential(a, b, c)
    assert len(seq) == 3 and seq[0] is a and seq[-1] is c and list(seq) == [a, b, c]
    tail = seq[1:]
    assert isinstance(tail, Sequential) and list(tail) == [b, c]
    t_seq = torch.nn.Sequential(TorchAffine(3, 4), TorchAffine(4, 2), TorchAffine(2, 2))
    assert list(tail.state_dict()) == list(t_seq[1:].state_dict())  # names kept: "1.weight", ...
    x = convkit.tensor(np.ones((2, 3), dtype=np.float32))
    np.testing.assert_array_equal(seq(x).data, c(b(a(x))).data)
    seq.append(Affine(2, 1))
    assert len(seq) == 4 and seq(x).shape == (2, 1)
    named = Sequential(OrderedDict([("first", a), ("second", b)]))
    assert [n for n, _ in named.named_parameters()] == ["first.weight", "first.bias", "second.weight",
                                                        "second.bias"]
    with pytest.raises(IndexError):
        _ = seq[10]
    with pytest.raises(TypeError, match="argument 1 must be a Module"):
        Sequential(a, np.ones(2))


def test_module_list():
    layers = ModuleList([Affine(2, 2) for _ in range(3)])
    layers.append(Affine(2, 1))
    assert len(layers) == 4 and layers[-1].n_out == 1
    assert [n for n, _ in layers.named_parameters()][:2] == ["0.weight", "0.bias"]
    part = layers[1:3]
    assert isinstance(part, ModuleList) and list(part) == [layers[1], layers[2]]
    assert sum(1 for _ in layers) == 4


def test_repr_matches_torch():
    net, tnet = Net(), TorchNet()
    assert repr(net).replace("Torch", "") == repr(tnet).replace("Torch", "")


def test_parameter():
    p = Parameter(np.array([1, 2]))
    assert p.dtype == np.float32 and p.requires_grad and p.is_leaf
    assert Parameter(np.zeros(2)).dtype == np.float64
    assert not Parameter(np.zeros(1), requires_grad=False).requires_grad
    assert repr(p).startswith("Parameter containing:\ntensor(")
    q = Parameter(p)
    assert q.data is not p.data


def test_misuse_raises():
    class NoInit(Module):
        def __init__(self):
            self.weight = Parameter(np.ones(1))

    with pytest.raises(RuntimeError, match="super\\(\\).__init__\\(\\)"):
        NoInit()
    with pytest.raises(NotImplementedError, match="Module does not define forward"):
        Module()(1)
    m = Module()
    with pytest.raises(TypeError, match="'buf' must be an ndarray"):
        m.register_buffer("buf", [1.0])
    with pytest.raises(TypeError, match="'w' must be a Parameter"):
        m.register_parameter("w", np.ones(1))


def test_assigning_a_non_parameter_to_a_parameter_name_raises_like_torch():
    lin = torch.nn.Linear(2, 2)
    with pytest.raises(TypeError):
        lin.weight = torch.zeros(2, 2)
    m = convkit.nn.Linear(2, 2)
    with pytest.raises(TypeError, match="cannot assign ndarray as parameter 'weight'"):
        m.weight = np.zeros((2, 2))
    m.bias = None  # allowed: an absent optional parameter
    assert [n for n, _ in m.named_parameters()] == ["weight"]


def test_shared_submodule_is_listed_once():
    shared = convkit.nn.Linear(2, 2)
    seq = convkit.nn.Sequential(shared, convkit.nn.ReLU(), shared)
    assert len(list(seq.modules())) == 3
    assert len(list(seq.parameters())) == 2
    theirs_shared = torch.nn.Linear(2, 2)
    theirs = torch.nn.Sequential(theirs_shared, torch.nn.ReLU(), theirs_shared)
    assert list(seq.state_dict()) == list(theirs.state_dict())
