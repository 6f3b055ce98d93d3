"""PyTorch-shaped functions on Tensors (``import convkit.functional as F``).

Each accepts Tensors or ndarrays and returns Tensors, with PyTorch's
signature, argument names, defaults and weight layouts.
"""

from .activation import *  # noqa: F401,F403
from .activation import __all__ as _activation
from .conv import *  # noqa: F401,F403
from .conv import __all__ as _conv
from .interpolate import *  # noqa: F401,F403
from .interpolate import __all__ as _interpolate
from .joining import *  # noqa: F401,F403
from .joining import __all__ as _joining
from .linear import *  # noqa: F401,F403
from .linear import __all__ as _linear
from .loss import *  # noqa: F401,F403
from .loss import __all__ as _loss
from .normalization import *  # noqa: F401,F403
from .normalization import __all__ as _normalization
from .padding import *  # noqa: F401,F403
from .padding import __all__ as _padding
from .pooling import *  # noqa: F401,F403
from .pooling import __all__ as _pooling
from .unfold import *  # noqa: F401,F403
from .unfold import __all__ as _unfold

__all__ = [*_activation, *_conv, *_interpolate, *_joining, *_linear, *_loss, *_normalization, *_padding, *_pooling, *_unfold]
