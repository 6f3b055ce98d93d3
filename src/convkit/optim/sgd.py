"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay (``torch.optim.SGD``)."""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer, check_range

__all__ = ["SGD"]


class SGD(Optimizer):
    r"""Stochastic gradient descent, PyTorch's exact update.

    For a parameter :math:`\theta` with gradient :math:`g_t` at step ``t``
    (``mu`` = momentum, ``tau`` = dampening, ``lambda`` = weight_decay,
    ``gamma`` = lr), element-wise::

        g_t   <- -g_t                         if maximize
        g_t   <- g_t + lambda * theta_{t-1}   if lambda != 0
        b_t   <- g_t                          at the first step (no dampening)
        b_t   <- mu * b_{t-1} + (1 - tau) * g_t   later steps        (if mu != 0)
        g_t   <- g_t + mu * b_t  if nesterov, else  g_t <- b_t       (if mu != 0)
        theta_t <- theta_{t-1} - gamma * g_t

    The momentum buffer ``b`` has the parameter's shape and dtype and is kept
    in ``state[p]["momentum_buffer"]`` (only when momentum != 0).

    Args:
        params: Parameters or param-group dicts (see ``Optimizer``).
        lr (float): learning rate ``gamma`` >= 0. Default: 1e-3.
        momentum (float): ``mu`` >= 0. Default: 0.
        dampening (float): ``tau``. Default: 0.
        weight_decay (float): L2 penalty ``lambda`` >= 0. Default: 0.
        nesterov (bool): Nesterov momentum (needs momentum > 0 and dampening = 0). Default: False.
        maximize (bool): ascend the objective instead. Default: False.
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False):
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening,
                    "weight_decay": weight_decay, "nesterov": nesterov, "maximize": maximize}
        super().__init__(params, defaults)

    def _check_options(self, options: dict) -> None:
        super()._check_options(options)
        check_range("SGD", "momentum", options["momentum"], "momentum value", low=0.0)
        check_range("SGD", "dampening", options["dampening"], "dampening value", low=-float("inf"))
        check_range("SGD", "weight_decay", options["weight_decay"], "weight_decay value", low=0.0)
        if options["nesterov"] and (options["momentum"] <= 0 or options["dampening"] != 0):
            raise ValueError(
                "SGD: Nesterov momentum requires a momentum and zero dampening: nesterov=True needs "
                f"momentum > 0 and dampening = 0, got momentum={options['momentum']!r}, "
                f"dampening={options['dampening']!r}"
            )

    def _update(self, param: Tensor, grad: np.ndarray, state: dict, group: dict) -> None:
        momentum, lr = float(group["momentum"]), float(group["lr"])
        weight_decay = float(group["weight_decay"])
        p = param.data
        d = np.negative(grad) if group["maximize"] else grad
        if weight_decay != 0:
            d = d + weight_decay * p  # a new array: param.grad itself is never changed
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = d.copy()
            else:
                buf *= momentum
                buf += (1 - float(group["dampening"])) * d
            d = d + momentum * buf if group["nesterov"] else buf
        p -= lr * d
