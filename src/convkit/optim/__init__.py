"""Optimizers and learning-rate schedules matching ``torch.optim`` step for step."""

from . import lr_scheduler
from .adam import *  # noqa: F401,F403
from .adam import __all__ as _adam
from .optimizer import Optimizer
from .sgd import *  # noqa: F401,F403
from .sgd import __all__ as _sgd

__all__ = ["Optimizer", "lr_scheduler", *_adam, *_sgd]
