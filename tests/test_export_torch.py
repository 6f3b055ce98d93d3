"""``convkit.export.to_torch`` and ``from_torch``: the same state_dict keys and the same outputs both ways
(float64 to 1e-10, float32 to 1e-5), in training mode too, a gradient step and DistributedDataParallel in torch;
a torch ResNet-18 with torchvision's layout comes over with its logits."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import convkit
from convkit.export import from_torch, to_torch
from convkit.models import build
from export_models import Branchy, ManyOps, with_running_stats

torch = pytest.importorskip("torch")

from test_resnet import TorchResNet  # noqa: E402  (torchvision's layout, written out in torch)

CASES = [("lenet5", (1, 28, 28)), ("resnet18", (3, 32, 32)), ("branchy", (3, 15, 15)), ("many", (2, 9, 9))]


def make(name, input_size):
    convkit.manual_seed(0)
    if name == "branchy":
        return with_running_stats(Branchy())
    if name == "many":
        return ManyOps("circular")
    return with_running_stats(build(name, input_size=input_size, num_classes=10))


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@pytest.mark.parametrize("name, input_size", CASES)
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
def test_to_torch_has_convkits_keys_and_outputs(name, input_size, dtype, tol):
    model = make(name, input_size).to(dtype).eval()
    twin = to_torch(model, input_size)
    ours = model.state_dict()
    theirs = twin.state_dict()
    assert list(theirs) == list(ours)                                    # the same keys, in the same order
    for k, v in ours.items():
        assert theirs[k].numpy().dtype == v.dtype and np.array_equal(theirs[k].numpy(), v), k
    assert not twin.training
    x = np.random.default_rng(1).standard_normal((4, *input_size)).astype(dtype)
    np.testing.assert_allclose(twin(torch.from_numpy(x)).detach().numpy(), model(x).numpy(), rtol=tol, atol=tol)


def test_training_mode_batch_statistics_and_a_gradient_step_in_torch():
    model = make("resnet18", (3, 32, 32)).double().train()
    twin = to_torch(model, (3, 32, 32))
    assert twin.training and twin.layer1[0].bn1.training
    x = np.random.default_rng(2).standard_normal((4, 3, 32, 32))
    out = twin(torch.from_numpy(x))
    np.testing.assert_allclose(out.detach().numpy(), model(x).numpy(), rtol=1e-10, atol=1e-10)  # batch statistics
    np.testing.assert_allclose(twin.bn1.running_var.numpy(), model.bn1.running_var, rtol=1e-12)  # same update
    assert int(twin.bn1.num_batches_tracked) == int(model.bn1.num_batches_tracked) == 1
    before = twin.fc.weight.detach().clone()
    optimizer = torch.optim.SGD(twin.parameters(), lr=0.1)
    loss = torch.nn.functional.cross_entropy(out, torch.tensor([0, 1, 2, 3]))
    loss.backward()
    optimizer.step()
    assert twin.conv1.weight.grad is not None and not torch.equal(twin.fc.weight, before)


def test_dropout_switches_with_the_torch_modules_mode():
    nn = convkit.nn
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3))
    twin = to_torch(model.eval(), (3, 4))
    assert type(twin.get_submodule("3")) is torch.nn.Dropout
    x = torch.ones(2, 3, 4)
    assert torch.equal(twin(x), twin(x))
    twin.train()
    torch.manual_seed(0)
    assert not torch.equal(twin(x), twin(x))


def test_distributed_data_parallel_wraps_it(tmp_path):
    dist = torch.distributed
    if not dist.is_available():
        pytest.skip("this torch build has no torch.distributed")
    twin = to_torch(make("lenet5", (1, 28, 28)), (1, 28, 28))
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        ddp = torch.nn.parallel.DistributedDataParallel(twin)
        loss = ddp(torch.randn(8, 1, 28, 28)).square().mean()
        loss.backward()
        assert all(p.grad is not None for p in twin.parameters())
    finally:
        dist.destroy_process_group()


def test_from_torch_brings_a_torchvision_layout_resnet18_over_with_its_logits():
    torch.manual_seed(0)
    theirs = TorchResNet("resnet18", 7, 3).eval()
    with torch.no_grad():
        for m in theirs.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1), m.running_var.uniform_(0.5, 1.5)
    ours = from_torch(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert not ours.training and not ours.layer1[0].bn1.training
    x = np.random.default_rng(3).standard_normal((2, 3, 64, 64)).astype(np.float32)
    np.testing.assert_allclose(ours(x).numpy(), theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-5)


class TorchBranchy(torch.nn.Module):
    """A custom forward with torch functions, methods and its own parameter and buffer."""

    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4),
                                        torch.nn.ReLU())
        self.skip = torch.nn.Conv2d(3, 4, 1, bias=False)
        self.scale = torch.nn.Parameter(torch.full((1, 8, 1, 1), 0.5))
        self.register_buffer("shift", torch.linspace(-1, 1, 8).reshape(1, 8, 1, 1))
        self.head = torch.nn.ModuleList([torch.nn.Linear(8 * 4 * 4, 6), torch.nn.Tanh()])

    def forward(self, x):
        h = self.body(x)
        y = torch.cat([h + self.skip(x), torch.nn.functional.leaky_relu(h, 0.2)], dim=1) * self.scale + self.shift
        y = torch.nn.functional.max_pool2d(y, 2)
        return self.head[1](self.head[0](y.view(y.size(0), -1))).softmax(dim=1)


@pytest.mark.parametrize("training", [False, True])
def test_from_torch_runs_a_custom_forward_through_torch_fx(training, float64):
    theirs = TorchBranchy().train(training)
    ours = from_torch(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    x = np.random.default_rng(4).standard_normal((3, 3, 8, 8))
    np.testing.assert_allclose(ours(x).numpy(), theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-10,
                               atol=1e-12)


def test_from_torch_names_an_unsupported_layer_or_function():
    with pytest.raises(ValueError, match=r"from_torch: 1 is a torch.nn.GELU, which convkit has no layer for"):
        from_torch(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.GELU()))

    class Sine(torch.nn.Module):
        def forward(self, x):
            return torch.sin(x)

    with pytest.raises(ValueError, match=r"the root module \(Sine\): forward calls torch.*sin, which convkit does "
                                         r"not map \(node sin\)"):
        from_torch(Sine())
    with pytest.raises(TypeError, match="module must be a torch.nn.Module, got Sequential"):
        from_torch(convkit.nn.Sequential())


def test_a_missing_torch_is_one_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"to_torch needs torch: pip install torch"):
        to_torch(build("lenet5"), (1, 28, 28))
