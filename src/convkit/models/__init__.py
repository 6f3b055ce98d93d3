"""Ready-made networks and a spec-string language for sketching new ones.

* ``lenet5``: LeNet-5 (1998 layout with ReLU and max pooling), 61,706 parameters;
* ``convnet``: a small batch-norm CNN for Fashion-MNIST-sized images;
* ``VGG``, ``vgg11`` ... ``vgg19`` and the ``_bn`` variants: torchvision's layout,
  so torchvision ``state_dict`` keys load unchanged;
* ``from_spec("conv3-10 pool2 conv3-10 pool2 flatten fc3")``: a Sequential
  from a spec string (grammar in ``convkit.models.spec``);
* ``build(name_or_spec, input_size, num_classes)`` and ``available()``: by name.
"""

from .convnet import convnet
from .lenet import lenet5
from .registry import available, build
from .spec import from_spec
from .vgg import VGG, vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn

__all__ = ["lenet5", "convnet", "VGG", "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn",
           "vgg16_bn", "vgg19_bn", "from_spec", "build", "available"]
