"""Module idioms as in torch: forward hooks with removable handles, ``apply``, ``to``/``float``/``double``;
``convkit.cat`` and ``convkit.stack`` with gradients, against torch."""

from __future__ import annotations

import numpy as np
import pytest

import convkit
import convkit.functional as F
import convkit.nn as nn
from oracle import compare

torch = pytest.importorskip("torch")


def _net():
    convkit.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(), nn.Flatten(),
                         nn.Linear(2 * 4 * 4, 3))


def test_forward_hooks_see_and_may_replace_inputs_and_outputs_and_can_be_removed():
    net = _net()
    x = np.random.default_rng(0).standard_normal((2, 1, 4, 4)).astype(np.float32)
    plain = net(x).numpy()
    seen = []
    pre = net[4].register_forward_pre_hook(lambda m, args: seen.append(("pre", args[0].shape)))
    post = net[2].register_forward_hook(lambda m, args, out: seen.append(("relu", out.shape)))
    np.testing.assert_array_equal(net(x).numpy(), plain)       # hooks that return None change nothing
    assert seen == [("relu", (2, 2, 4, 4)), ("pre", (2, 32))]    # the ReLU ran as its own call (no fusion)
    pre.remove()
    post.remove()
    seen.clear()
    net(x)
    assert seen == []
    with net[4].register_forward_hook(lambda m, args, out: out * 0.0):
        assert not net(x).numpy().any()                           # a returned value replaces the output
    np.testing.assert_array_equal(net(x).numpy(), plain)         # leaving the block removed it
    with net[0].register_forward_pre_hook(lambda m, args: args[0] * 0.0):
        zeros_in = net(x).numpy()
    np.testing.assert_allclose(zeros_in, net(np.zeros_like(x)).numpy())
    with pytest.raises(TypeError, match="hook must be callable"):
        net.register_forward_hook("not a function")


def test_apply_visits_children_first_then_the_module():
    net = _net()
    order = []
    assert net.apply(lambda m: order.append(type(m).__name__)) is net
    assert order == ["Conv2d", "BatchNorm2d", "ReLU", "Flatten", "Linear", "Sequential"]

    def zero_biases(m):
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.bias.data[...] = 0

    net.apply(zero_biases)
    assert not net[0].bias.data.any() and not net[4].bias.data.any()


def test_to_double_converts_parameters_gradients_and_float_buffers_only():
    net = _net()
    x = np.random.default_rng(1).standard_normal((2, 1, 4, 4))
    net(x.astype(np.float32)).sum().backward()
    assert net.double() is net
    assert all(p.dtype == np.float64 and p.grad.dtype == np.float64 for p in net.parameters())
    assert net[1].running_mean.dtype == np.float64 and net[1].num_batches_tracked.dtype == np.int64
    twin = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3, padding=1), torch.nn.BatchNorm2d(2), torch.nn.ReLU(),
                               torch.nn.Flatten(), torch.nn.Linear(32, 3)).double()
    twin.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in net.state_dict().items()})
    net.eval(), twin.eval()
    np.testing.assert_allclose(net(x).numpy(), twin(torch.from_numpy(x)).detach().numpy(), rtol=1e-12, atol=1e-12)
    assert net.float()[0].weight.dtype == np.float32
    with pytest.raises(TypeError, match="Sequential.to: dtype must be a floating-point dtype"):
        net.to(np.int32)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat_matches_torch(dim):
    rng = np.random.default_rng(2)
    shapes = {0: [(1, 3, 2), (4, 3, 2)], 1: [(2, 1, 2), (2, 5, 2)], -1: [(2, 3, 1), (2, 3, 3)]}[dim]
    compare(lambda a, b: convkit.cat([a, b], dim=dim), lambda a, b: torch.cat([a, b], dim=dim),
            [rng.standard_normal(s) for s in shapes])


@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_stack_matches_torch(dim):
    rng = np.random.default_rng(3)
    compare(lambda a, b, c: F.stack([a, b, c], dim=dim), lambda a, b, c: torch.stack([a, b, c], dim=dim),
            [rng.standard_normal((2, 3)) for _ in range(3)])


def test_cat_and_stack_refuse_bad_input_naming_it():
    with pytest.raises(ValueError, match=r"cat: tensors\[1\] has shape \(2, 3\) but tensors\[0\] has \(2, 2\)"):
        convkit.cat([np.zeros((2, 2)), np.zeros((2, 3))])
    with pytest.raises(ValueError, match="stacked tensors must all have one shape"):
        convkit.stack([np.zeros(2), np.zeros(3)])
    with pytest.raises(ValueError, match="expected a non-empty list"):
        convkit.cat([])
    with pytest.raises(TypeError, match="tensors must be a list or tuple"):
        convkit.cat(np.zeros(3))
    with pytest.raises(TypeError, match="different dtypes"):
        convkit.cat([np.zeros(2, np.float32), np.zeros(2)])
    with pytest.raises(ValueError, match="cat: dim=2 is out of range"):
        convkit.cat([np.zeros((2, 2))], dim=2)
