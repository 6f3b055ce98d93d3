"""Ready-made networks and a spec-string language for sketching new ones.

* ``lenet5``: LeNet-5 (1998 layout with ReLU and max pooling), 61,706 parameters;
* ``convnet``: a small batch-norm CNN for Fashion-MNIST-sized images;
* ``VGG``, ``vgg11`` ... ``vgg19`` and the ``_bn`` variants: torchvision's layout,
  so torchvision ``state_dict`` keys load unchanged;
* ``resnet18``, ``resnet34`` (torchvision's layout and keys) and CIFAR's
  ``resnet20``: residual networks, whose forward adds (no Sequential);
* ``from_spec("conv3-10 pool2 conv3-10 pool2 flatten fc3")``: a Sequential
  from a spec string (grammar in ``convkit.models.spec``);
* ``build(name_or_spec, input_size, num_classes, max_parameters=200_000_000)`` and
  ``available()``: by name; ``parameter_count(name_or_spec, input_size, num_classes)``:
  the size of what ``build`` would make, counted without building it. ``build``
  and ``from_spec`` refuse a model over ``max_parameters`` before allocating
  (``convkit.models.budget``), since a name or spec may come from an untrusted file.
"""

from .convnet import convnet
from .lenet import lenet5
from .registry import available, build, parameter_count
from .resnet import ResNet, resnet18, resnet20, resnet34
from .spec import from_spec
from .vgg import VGG, vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn

__all__ = ["lenet5", "convnet", "VGG", "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn",
           "vgg16_bn", "vgg19_bn", "ResNet", "resnet18", "resnet34", "resnet20", "from_spec", "build",
           "parameter_count", "available"]
