"""The optimizer and the learning-rate schedule of a ``convkit train`` run, made from its settings.

Schedules are stepped after every batch: ``onecycle`` warms up to ``lr``
over the first 30 % of the batches then anneals (cosine) to ``lr / 2.5e5``;
``cosine`` anneals from ``lr`` to 0; ``step`` multiplies the lr by 0.1
after each third of the epochs (rounded up); ``none`` keeps ``lr``.
"""

from __future__ import annotations

import math

from ..optim import SGD, Adam, AdamW
from ..optim.lr_scheduler import CosineAnnealingLR, OneCycleLR, StepLR


def make_optimizer(model, settings: dict):
    """``settings["optimizer"]`` (adam, adamw or sgd) over ``model``'s parameters with the run's lr and decay."""
    params, lr, wd = list(model.parameters()), settings["lr"], settings["weight_decay"]
    if settings["optimizer"] == "sgd":
        return SGD(params, lr=lr, momentum=settings["momentum"], weight_decay=wd)
    return (Adam if settings["optimizer"] == "adam" else AdamW)(params, lr=lr, weight_decay=wd)


def make_scheduler(optimizer, settings: dict, steps_per_epoch: int):
    """The schedule ``settings["schedule"]`` for ``epochs * steps_per_epoch`` steps (None for ``none``)."""
    total = settings["epochs"] * steps_per_epoch
    schedule = settings["schedule"]
    if schedule == "onecycle":
        return OneCycleLR(optimizer, max_lr=settings["lr"], total_steps=total, cycle_momentum=False)
    if schedule == "cosine":
        return CosineAnnealingLR(optimizer, T_max=total)
    if schedule == "step":
        return StepLR(optimizer, step_size=math.ceil(settings["epochs"] / 3) * steps_per_epoch, gamma=0.1)
    return None
