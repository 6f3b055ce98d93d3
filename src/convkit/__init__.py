"""convkit: convolutional networks on NumPy, every op with its hand-derived gradient.

>>> import convkit
>>> import convkit.functional as F
>>> x = convkit.tensor([[[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]]]], requires_grad=True)
>>> w = convkit.tensor([[[[1.0, 0.0], [0.0, -1.0]]]], requires_grad=True)
>>> y = F.conv2d(x, w)            # cross-correlation, as in PyTorch
>>> y.shape
(1, 1, 2, 2)
>>> y.sum().backward()
>>> w.grad.shape
(1, 1, 2, 2)
"""

import importlib

from . import functional, nn, optim
from .autograd import is_grad_enabled, no_grad
from .backends import get_num_threads, set_num_threads
from .functional.joining import cat, stack
from .random import manual_seed
from .tensor import Tensor, get_default_dtype, set_default_dtype, tensor

__version__ = "0.1.0"

# Imported on first use (PEP 562), so that ``import convkit`` stays fast: ``convkit.models.build(...)``
# works after ``import convkit`` alone, as ``torch.nn`` does after ``import torch``.
LAZY_SUBPACKAGES = ("analysis", "backends", "data", "explain", "export", "models", "safetensors", "symmetry",
                    "testing", "trace", "train")

__all__ = [
    "Tensor", "tensor", "cat", "stack", "no_grad", "manual_seed", "is_grad_enabled", "get_default_dtype",
    "set_default_dtype", "get_num_threads", "set_num_threads", "functional", "nn", "optim", "__version__",
    *LAZY_SUBPACKAGES,
]


def __getattr__(name: str):
    if name in LAZY_SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")  # the import binds it here too
    raise AttributeError(f"module 'convkit' has no attribute {name!r}; its subpackages are functional, nn, "
                         f"optim, {', '.join(LAZY_SUBPACKAGES)}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(LAZY_SUBPACKAGES))
