"""Layers and containers shaped like ``torch.nn``; ``convkit.nn.functional`` is ``convkit.functional``."""

import sys

from .. import functional
from . import init
from .activation import *  # noqa: F401,F403
from .activation import __all__ as _activation
from .conv import *  # noqa: F401,F403
from .conv import __all__ as _conv
from .fold import *  # noqa: F401,F403
from .fold import __all__ as _fold
from .linear import *  # noqa: F401,F403
from .linear import __all__ as _linear
from .loss import *  # noqa: F401,F403
from .loss import __all__ as _loss
from .module import Module, ModuleList, Parameter, Sequential, meta_init
from .normalization import *  # noqa: F401,F403
from .normalization import __all__ as _normalization
from .pooling import *  # noqa: F401,F403
from .pooling import __all__ as _pooling
from .upsampling import *  # noqa: F401,F403
from .upsampling import __all__ as _upsampling

sys.modules[f"{__name__}.functional"] = functional  # so that ``import convkit.nn.functional as F`` works, as in torch

__all__ = ["Module", "ModuleList", "Parameter", "Sequential", "meta_init", "init", "functional",
           *_activation, *_conv, *_fold, *_linear, *_loss, *_normalization, *_pooling, *_upsampling]
