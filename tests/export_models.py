"""Models the export tests share: a user-defined network with a residual sum, a concatenation and branches,
and one that runs many ops (padding modes, asymmetric pads, pooling variants, uneven adaptive windows)."""

from __future__ import annotations

import numpy as np

import convkit
import convkit.functional as F
from convkit import nn


class Branchy(nn.Module):
    """stem -> two branches (a residual 3x3 and a leaky 1x1) joined by cat -> pooling -> two heads summed."""

    def __init__(self, classes: int = 5):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.left = nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.right = nn.Conv2d(8, 8, 1)
        self.pool = nn.MaxPool2d(2, ceil_mode=True)
        self.drop = nn.Dropout(0.3)
        self.head = nn.Linear(16, classes)
        self.side = nn.Linear(16, classes)

    def forward(self, x):
        x = F.relu(self.bn(self.stem(x)))
        a = self.left(x) + x                                    # residual addition
        b = F.leaky_relu(self.right(x), 0.1)                    # a second branch
        y = self.pool(convkit.cat([a, b], dim=1))               # concatenation
        z = self.drop(F.flatten(F.adaptive_avg_pool2d(y, 1), 1))
        return self.head(z) + 0.5 * self.side(z)


class ManyOps(nn.Module):
    """Padding modes, asymmetric 'same' pads, average pooling variants, uneven adaptive windows, softmax."""

    def __init__(self, padding_mode: str = "reflect"):
        super().__init__()
        self.a = nn.Conv2d(2, 4, 3, padding=1, padding_mode=padding_mode)
        self.b = nn.Conv2d(4, 4, 2, padding="same")            # an even kernel: pads (0, 1) per axis
        self.norm = nn.GroupNorm(2, 4)
        self.avg = nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
        self.adapt = nn.AdaptiveAvgPool2d((3, 2))              # 5x5 -> 3x2: windows of unequal sizes
        self.fc = nn.Linear(4 * 3 * 2, 6)

    def forward(self, x):
        y = self.norm(self.b(F.tanh(self.a(x))))
        y = self.adapt(self.avg(y)) * F.sigmoid(y.mean((2, 3), keepdim=True))
        return F.log_softmax(self.fc(y.reshape(y.shape[0], -1)), 1)


def with_running_stats(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every batch norm non-trivial running statistics and affine parameters (eval differs from init)."""
    rng = np.random.default_rng(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean[...] = rng.normal(0, 0.1, m.running_mean.shape)
            m.running_var[...] = rng.uniform(0.5, 1.5, m.running_var.shape)
            m.weight.data[...] = rng.uniform(0.5, 1.5, m.weight.shape)
            m.bias.data[...] = rng.normal(0, 0.1, m.bias.shape)
    return model
