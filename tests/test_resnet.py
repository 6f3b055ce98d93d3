"""ResNets: torchvision's layout and keys (a torch ResNet with torchvision's module names loads both ways and
gives the same logits), parameter counts without building, residual gradients against torch."""

from __future__ import annotations

import numpy as np
import pytest

import convkit
from convkit.models import build, parameter_count, resnet18, resnet20, resnet34
from convkit.models.resnet import LAYOUTS

torch = pytest.importorskip("torch")
tnn = torch.nn


class TorchBlock(tnn.Module):
    """torchvision's BasicBlock, written out (torchvision itself is not a test dependency)."""

    def __init__(self, inplanes, planes, stride):
        super().__init__()
        self.conv1 = tnn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(planes)
        self.relu = tnn.ReLU()
        self.conv2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(planes)
        self.downsample = (tnn.Sequential(tnn.Conv2d(inplanes, planes, 1, stride, bias=False), tnn.BatchNorm2d(planes))
                           if stride != 1 or inplanes != planes else None)

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class TorchResNet(tnn.Module):
    def __init__(self, name, num_classes, in_channels):
        super().__init__()
        stem, channels, blocks = LAYOUTS[name]
        first = channels[0]
        if stem == "imagenet":
            self.conv1 = tnn.Conv2d(in_channels, first, 7, 2, 3, bias=False)
            self.maxpool = tnn.MaxPool2d(3, 2, 1)
        else:
            self.conv1 = tnn.Conv2d(in_channels, first, 3, 1, 1, bias=False)
            self.maxpool = tnn.Identity()
        self.bn1, self.relu = tnn.BatchNorm2d(first), tnn.ReLU()
        inplanes = first
        for i, (planes, count) in enumerate(zip(channels, blocks)):
            stage = []
            for j in range(count):
                stage.append(TorchBlock(inplanes, planes, 2 if i > 0 and j == 0 else 1))
                inplanes = planes
            setattr(self, f"layer{i + 1}", tnn.Sequential(*stage))
        self.stages = len(channels)
        self.avgpool, self.fc = tnn.AdaptiveAvgPool2d(1), tnn.Linear(inplanes, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def test_parameter_counts_are_torchvisions_and_counted_without_building():
    assert parameter_count("resnet18", (3, 224, 224)) == 11_689_512
    assert parameter_count("resnet34", (3, 224, 224)) == 21_797_672
    assert parameter_count("resnet20") == 272_186
    for make, args in ((resnet18, (1000, 3)), (resnet34, (10, 1)), (resnet20, (10, 1))):
        model = make(*args)
        assert sum(p.numel() for p in model.parameters()) == parameter_count(
            make.__name__, (args[1], 32, 32), args[0])


@pytest.mark.parametrize("name, training", [("resnet18", False), ("resnet20", True)])
def test_a_torch_resnet_with_torchvisions_names_loads_both_ways_and_agrees(name, training):
    convkit.manual_seed(0)
    model = build(name, input_size=(3, 32, 32), num_classes=7)
    twin = TorchResNet(name, 7, 3).double()
    ours = {k: np.asarray(v) for k, v in model.state_dict().items()}
    assert list(ours) == list(twin.state_dict())                     # the same keys, in the same order
    model.double()
    twin.load_state_dict({k: torch.from_numpy(v.astype(np.float64)) for k, v in ours.items()})
    model.train(training), twin.train(training)
    x = np.random.default_rng(0).standard_normal((4, 3, 32, 32))
    tx = torch.tensor(x, requires_grad=True)
    cx = convkit.tensor(x, requires_grad=True)
    out, expected = model(cx), twin(tx)
    np.testing.assert_allclose(out.numpy(), expected.detach().numpy(), rtol=1e-9, atol=1e-9)
    g = np.random.default_rng(1).standard_normal(out.shape)
    out.backward(g)
    expected.backward(torch.from_numpy(g))
    np.testing.assert_allclose(cx.grad, tx.grad.numpy(), rtol=1e-8, atol=1e-9)    # through the identity paths
    first = model.layer2[0].downsample[0].weight.grad
    np.testing.assert_allclose(first, twin.layer2[0].downsample[0].weight.grad.numpy(), rtol=1e-8, atol=1e-9)
    back = TorchResNet(name, 7, 3).double()                           # and a torch state_dict loads into ours
    model2 = build(name, input_size=(3, 32, 32), num_classes=7).double()
    model2.load_state_dict({k: v.numpy() for k, v in back.state_dict().items()})
    model2.eval(), back.eval()
    np.testing.assert_allclose(model2(x).numpy(), back(torch.from_numpy(x)).detach().numpy(), rtol=1e-9,
                               atol=1e-9)
