"""LeNet-5 (LeCun, Bottou, Bengio and Haffner, 1998) in its common modern form.

>>> import numpy as np
>>> net = lenet5()
>>> sum(p.numel() for p in net.parameters())
61706
>>> net(np.zeros((2, 1, 28, 28), dtype=np.float32)).shape
(2, 10)
"""

from __future__ import annotations

from .. import nn
from . import budget

__all__ = ["lenet5", "lenet5_parameters"]


def lenet5(num_classes: int = 10, in_channels: int = 1) -> nn.Sequential:
    """LeNet-5 for 28×28 images, with full C3 connections, ReLU and max pooling.

    Layout (shapes for a ``(N, 1, 28, 28)`` input)::

        C1  Conv2d(in_channels, 6, 5, padding=2)  -> (N, 6, 28, 28)   ReLU
        S2  MaxPool2d(2)                          -> (N, 6, 14, 14)
        C3  Conv2d(6, 16, 5)                      -> (N, 16, 10, 10)  ReLU
        S4  MaxPool2d(2)                          -> (N, 16, 5, 5)
            Flatten                               -> (N, 400)
        C5  Linear(400, 120)  ReLU
        F6  Linear(120, 84)   ReLU
            Linear(84, num_classes)               -> (N, num_classes)

    61,706 parameters for one input channel and 10 classes. The padding of
    2 in C1 stands in for the paper's 32×32 inputs (MNIST digits centred in
    a 32×32 field), so that C3 still sees 14×14 maps and S4 ends at 5×5.

    What differs from the 1998 paper, and why:

    * **C3 connections.** The paper connects each of the 16 C3 maps to a
      subset of the 6 S2 maps (its Table I), 1,516 parameters instead of
      2,416, to save computation and to break the symmetry between maps.
      Today's hardware makes the dense layer cheap, and random
      initialisation already breaks the symmetry.
    * **Subsampling.** S2 and S4 in the paper average each 2×2 window, then
      multiply by a trainable coefficient and add a trainable bias (12 and
      32 parameters) before a sigmoid. Max pooling without parameters
      trains faster and generalises at least as well.
    * **Nonlinearity.** The paper uses the scaled ``1.7159 tanh(2x/3)``;
      ReLU avoids saturating units and needs no special scaling.
    * **Output.** The paper's F6 feeds 10 Euclidean RBF units with fixed
      7×12 bitmap prototypes; a linear layer trained with cross-entropy
      is simpler and as accurate.

    Args:
        num_classes (int): size of the output layer. Default: 10.
        in_channels (int): channels of the input images. Default: 1.

    Shape:
        - Input: ``(N, in_channels, 28, 28)``
        - Output: ``(N, num_classes)``
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, num_classes),
    )


def lenet5_parameters(num_classes: int = 10, in_channels: int = 1) -> int:
    """The number of parameters of ``lenet5(num_classes, in_channels)``, counted without building it.

    >>> lenet5_parameters()
    61706
    """
    return (budget.conv2d(in_channels, 6, 5) + budget.conv2d(6, 16, 5) + budget.linear(16 * 5 * 5, 120)
            + budget.linear(120, 84) + budget.linear(84, num_classes))
