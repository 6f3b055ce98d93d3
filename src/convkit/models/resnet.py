"""Residual networks (He et al. 2016): ``resnet18``, ``resnet34`` in torchvision's layout, and CIFAR's ``resnet20``.

A residual block learns a correction to its input instead of a new map::

    out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))

where ``conv1`` (3x3, stride ``s``) and ``conv2`` (3x3) have no bias (batch
norm follows), and ``shortcut`` is the identity, or, where the block changes
the stride or the channels, a 1x1 convolution with stride ``s`` and batch
norm (torchvision's ``downsample``; the CIFAR paper's option B). The sum is
what a chain cannot express: gradients reach early layers through the
identity paths.

* ``resnet18`` / ``resnet34``: a 7x7/2 stem with 3x3/2 max pooling, four
  stages of [2, 2, 2, 2] / [3, 4, 6, 3] blocks with 64, 128, 256, 512
  channels (strides 1, 2, 2, 2), global average pooling and a linear layer,
  with torchvision's module names, so a torchvision ``state_dict`` loads
  unchanged; 11,689,512 / 21,797,672 parameters for 1000 classes.
* ``resnet20``: the CIFAR network, a 3x3 stem with 16 channels and three
  stages of 3 blocks with 16, 32, 64 channels (strides 1, 2, 2), then global
  average pooling and a linear layer: 0.27 M parameters, for 28x28 or 32x32
  images.

Weights are initialised as torchvision does: convolutions ``kaiming_normal_``
(fan out, ReLU), batch norm ``gamma = 1``, ``beta = 0``, the linear layer as
``nn.Linear``.

>>> import numpy as np
>>> resnet20()(np.zeros((2, 1, 28, 28), dtype=np.float32)).shape
(2, 10)
"""

from __future__ import annotations

from .. import functional as F
from .. import nn
from . import budget

__all__ = ["BasicBlock", "ResNet", "resnet18", "resnet34", "resnet20", "resnet_parameters"]

# (stem, channels per stage, blocks per stage) of each network
LAYOUTS = {
    "resnet18": ("imagenet", (64, 128, 256, 512), (2, 2, 2, 2)),
    "resnet34": ("imagenet", (64, 128, 256, 512), (3, 4, 6, 3)),
    "resnet20": ("cifar", (16, 32, 64), (3, 3, 3)),
}


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a shortcut: ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``.

    Shape: ``(N, inplanes, H, W)`` -> ``(N, planes, ceil(H/stride), ceil(W/stride))``.
    """

    def __init__(self, inplanes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = (nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False),
                                         nn.BatchNorm2d(planes))
                           if stride != 1 or inplanes != planes else None)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class ResNet(nn.Module):
    """A stem, stages of ``BasicBlock``s, global average pooling and a linear classifier (module docstring).

    Args:
        channels: channels of each stage (the first stage keeps the stem's).
        blocks: blocks of each stage; the first block of every stage but the first has stride 2.
        stem (str): ``"imagenet"`` (7x7/2 convolution, 3x3/2 max pooling) or ``"cifar"`` (3x3 convolution).
        num_classes (int): outputs. in_channels (int): input channels.
    """

    def __init__(self, channels, blocks, stem: str = "imagenet", num_classes: int = 1000, in_channels: int = 3):
        super().__init__()
        first = channels[0]
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, first, 7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        else:
            self.conv1 = nn.Conv2d(in_channels, first, 3, padding=1, bias=False)
            self.maxpool = None
        self.bn1 = nn.BatchNorm2d(first)
        self.relu = nn.ReLU()
        inplanes = first
        for i, (planes, count) in enumerate(zip(channels, blocks)):
            stage = []
            for j in range(count):
                stage.append(BasicBlock(inplanes, planes, stride=2 if i > 0 and j == 0 else 1))
                inplanes = planes
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
        self.stages = len(channels)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        if self.maxpool is not None:
            x = self.maxpool(x)
        for i in range(self.stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(F.flatten(self.avgpool(x), 1))


def _make(name: str, num_classes: int, in_channels: int) -> ResNet:
    stem, channels, blocks = LAYOUTS[name]
    return ResNet(channels, blocks, stem, num_classes, in_channels)


def resnet18(num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    """ResNet-18 in torchvision's layout: 11,689,512 parameters for 1000 classes."""
    return _make("resnet18", num_classes, in_channels)


def resnet34(num_classes: int = 1000, in_channels: int = 3) -> ResNet:
    """ResNet-34 in torchvision's layout: 21,797,672 parameters for 1000 classes."""
    return _make("resnet34", num_classes, in_channels)


def resnet20(num_classes: int = 10, in_channels: int = 1) -> ResNet:
    """The CIFAR ResNet-20 (projection shortcuts): 0.27 M parameters, for 28x28 or 32x32 images."""
    return _make("resnet20", num_classes, in_channels)


def resnet_parameters(name: str, num_classes: int, in_channels: int) -> int:
    """The number of parameters of the network ``name`` of ``LAYOUTS``, counted without building it.

    >>> resnet_parameters("resnet18", 1000, 3)
    11689512
    """
    stem, channels, blocks = LAYOUTS[name]
    first = channels[0]
    total = budget.conv2d(in_channels, first, 7 if stem == "imagenet" else 3, bias=False)
    total += budget.batch_norm(first)
    inplanes = first
    for i, (planes, count) in enumerate(zip(channels, blocks)):
        for j in range(count):
            stride = 2 if i > 0 and j == 0 else 1
            total += budget.conv2d(inplanes, planes, 3, bias=False) + budget.conv2d(planes, planes, 3, bias=False)
            total += 2 * budget.batch_norm(planes)
            if stride != 1 or inplanes != planes:
                total += budget.conv2d(inplanes, planes, 1, bias=False) + budget.batch_norm(planes)
            inplanes = planes
    return total + budget.linear(inplanes, num_classes)
