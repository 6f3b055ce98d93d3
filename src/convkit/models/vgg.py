"""VGG (Simonyan and Zisserman, 2014), laid out exactly as torchvision's ``vgg*``.

The attribute names, layer order and initialisation are torchvision's, so
a torchvision ``state_dict`` (tensors as ndarrays) loads unchanged: keys
``features.0.weight`` ... ``classifier.6.bias``.

Configurations (numbers are conv output channels, ``'M'`` a 2×2 max pool):

=====  ======  ==================================================================
name   layers  cfg
=====  ======  ==================================================================
A      11      64 M 128 M 256 256 M 512 512 M 512 512 M
B      13      64 64 M 128 128 M 256 256 M 512 512 M 512 512 M
D      16      64 64 M 128 128 M 256 256 256 M 512 512 512 M 512 512 512 M
E      19      64 64 M 128 128 M 256 256 256 256 M 512 512 512 512 M 512 512 512 512 M
=====  ======  ==================================================================

Parameters (``num_classes=1000``, 3 input channels): VGG-11 132,863,336,
VGG-13 133,047,848, VGG-16 138,357,544, VGG-19 143,667,240; with batch norm
add ``2 * (sum of conv channels)``. Five pools divide the input size by 32,
so inputs must be at least 32×32; ``avgpool`` then resizes to 7×7.
"""

from __future__ import annotations

from .. import nn
from . import budget

__all__ = ["VGG", "make_layers", "CFGS", "vgg_parameters", "vgg11", "vgg13", "vgg16", "vgg19",
           "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn"]

CFGS: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
          512, 512, 512, 512, "M"],
}


class VGG(nn.Module):
    """``features`` → ``avgpool`` (adaptive, to 7×7) → flatten → ``classifier``.

    ``classifier`` is ``Linear(512*7*7, 4096), ReLU, Dropout, Linear(4096, 4096),
    ReLU, Dropout, Linear(4096, num_classes)``.

    Initialisation (torchvision's): conv weights ``kaiming_normal_(mode='fan_out',
    nonlinearity='relu')``, i.e. ``N(0, 2 / (C_out * 9))``, conv biases 0;
    batch-norm weight 1, bias 0; linear weights ``N(0, 0.01^2)``, biases 0.

    Args:
        features (Module): the convolutional part, ending with 512 channels
            (see ``make_layers``).
        num_classes (int): outputs of the last linear layer. Default: 1000.
        init_weights (bool): apply the initialisation above (otherwise the
            layers keep PyTorch's default initialisation). Default: True.
        dropout (float): drop probability of both dropout layers. Default: 0.5.

    Shape:
        - Input: ``(N, C, H, W)`` with ``H, W >= 32`` for the standard features
        - Output: ``(N, num_classes)``
    """

    def __init__(self, features: nn.Module, num_classes: int = 1000, init_weights: bool = True,
                 dropout: float = 0.5):
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        if init_weights:
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.ones_(m.weight)
                    nn.init.zeros_(m.bias)
                elif isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, 0.0, 0.01)
                    nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(x.flatten(1))


def make_layers(cfg: list[int | str], batch_norm: bool = False, in_channels: int = 3) -> nn.Sequential:
    """The ``features`` Sequential of a VGG configuration.

    Each int ``c`` adds ``Conv2d(prev, c, 3, padding=1)`` [``BatchNorm2d(c)``]
    ``ReLU``; each ``'M'`` adds ``MaxPool2d(2, 2)``.

    Args:
        cfg (list): ints (output channels) and ``'M'`` (pool), e.g. ``CFGS['D']``.
        batch_norm (bool): insert batch norm after every convolution. Default: False.
        in_channels (int): channels of the input images. Default: 3.
    """
    layers: list[nn.Module] = []
    channels = in_channels
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers.append(nn.Conv2d(channels, v, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(v))
            layers.append(nn.ReLU(True))
            channels = v
    return nn.Sequential(*layers)


def vgg_parameters(cfg: str, batch_norm: bool = False, num_classes: int = 1000, in_channels: int = 3) -> int:
    """The number of parameters of a VGG of configuration ``cfg`` (a key of ``CFGS``), counted without building it.

    >>> vgg_parameters("D")
    138357544
    """
    channels = [in_channels] + [v for v in CFGS[cfg] if v != "M"]
    features = sum(budget.conv2d(c_in, c_out, 3) + (budget.batch_norm(c_out) if batch_norm else 0)
                   for c_in, c_out in zip(channels, channels[1:]))
    classifier = budget.linear(512 * 7 * 7, 4096) + budget.linear(4096, 4096) + budget.linear(4096, num_classes)
    return features + classifier


def _vgg(cfg: str, batch_norm: bool, num_classes: int, in_channels: int, dropout: float) -> VGG:
    return VGG(make_layers(CFGS[cfg], batch_norm, in_channels), num_classes=num_classes, dropout=dropout)


def vgg11(batch_norm: bool = False, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-11 (configuration A): 8 convolutions and 3 linear layers; see ``VGG`` for the arguments."""
    return _vgg("A", batch_norm, num_classes, in_channels, dropout)


def vgg13(batch_norm: bool = False, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-13 (configuration B): 10 convolutions and 3 linear layers; see ``VGG`` for the arguments."""
    return _vgg("B", batch_norm, num_classes, in_channels, dropout)


def vgg16(batch_norm: bool = False, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-16 (configuration D): 13 convolutions and 3 linear layers, 138,357,544 parameters.

    See ``VGG`` for the layout and the arguments (``batch_norm`` inserts
    ``BatchNorm2d`` after every convolution, as torchvision's ``vgg16_bn``).
    """
    return _vgg("D", batch_norm, num_classes, in_channels, dropout)


def vgg19(batch_norm: bool = False, num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """VGG-19 (configuration E): 16 convolutions and 3 linear layers, 143,667,240 parameters.

    See ``VGG`` for the layout and the arguments.
    """
    return _vgg("E", batch_norm, num_classes, in_channels, dropout)


def vgg11_bn(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """``vgg11(batch_norm=True, ...)``."""
    return vgg11(True, num_classes, in_channels, dropout)


def vgg13_bn(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """``vgg13(batch_norm=True, ...)``."""
    return vgg13(True, num_classes, in_channels, dropout)


def vgg16_bn(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """``vgg16(batch_norm=True, ...)``."""
    return vgg16(True, num_classes, in_channels, dropout)


def vgg19_bn(num_classes: int = 1000, in_channels: int = 3, dropout: float = 0.5) -> VGG:
    """``vgg19(batch_norm=True, ...)``."""
    return vgg19(True, num_classes, in_channels, dropout)
