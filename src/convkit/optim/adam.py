"""Adam and AdamW (``torch.optim.Adam``, ``torch.optim.AdamW``), PyTorch's exact formulas."""

from __future__ import annotations

import numpy as np

from ..tensor import Tensor
from .optimizer import Optimizer, check_range

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    r"""Adam with bias correction, optional AMSGrad, L2 or decoupled weight decay.

    For a parameter ``theta`` with gradient ``g_t`` at step ``t = 1, 2, ...``
    (``gamma`` = lr, ``lambda`` = weight_decay, ``beta1, beta2`` = betas),
    element-wise::

        g_t     <- -g_t                                   if maximize
        theta   <- theta * (1 - gamma * lambda)           if decoupled (AdamW)
        g_t     <- g_t + lambda * theta                   if lambda != 0, not decoupled
        m_t     = beta1 * m_{t-1} + (1 - beta1) * g_t     (computed as a lerp, like torch)
        v_t     = beta2 * v_{t-1} + (1 - beta2) * g_t**2
        vmax_t  = max(vmax_{t-1}, v_t)                    if amsgrad (then used for v_t below)
        denom   = sqrt(v_t) / sqrt(1 - beta2**t) + eps    (eps added after the corrected sqrt)
        theta_t = theta_{t-1} - (gamma / (1 - beta1**t)) * m_t / denom

    with ``m_0 = v_0 = vmax_0 = 0``. ``state[p]`` holds ``step`` (int),
    ``exp_avg`` (m), ``exp_avg_sq`` (v) and, with amsgrad, ``max_exp_avg_sq``,
    arrays of the parameter's shape and dtype.

    Args:
        params: Parameters or param-group dicts (see ``Optimizer``).
        lr (float): ``gamma`` >= 0. Default: 1e-3.
        betas (tuple[float, float]): ``(beta1, beta2)``, each in [0, 1). Default: (0.9, 0.999).
        eps (float): >= 0. Default: 1e-8.
        weight_decay (float): ``lambda`` >= 0. Default: 0.
        amsgrad (bool): use the running maximum of ``v``. Default: False.
        maximize (bool): ascend the objective instead. Default: False.
        decoupled_weight_decay (bool): AdamW's decay ``theta *= 1 - gamma * lambda``
            instead of adding ``lambda * theta`` to the gradient. Default: False.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False, *,
                 maximize: bool = False, decoupled_weight_decay: bool = False):
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                    "amsgrad": amsgrad, "maximize": maximize,
                    "decoupled_weight_decay": decoupled_weight_decay}
        super().__init__(params, defaults)

    def _check_options(self, options: dict) -> None:
        owner = type(self).__name__
        super()._check_options(options)
        check_range(owner, "eps", options["eps"], "epsilon value", low=0.0)
        betas = options["betas"]
        if isinstance(betas, str) or not hasattr(betas, "__len__") or len(betas) != 2:
            raise TypeError(f"{owner}: betas must be a pair (beta1, beta2), got {betas!r}")
        for i, beta in enumerate(betas):
            check_range(owner, f"betas[{i}]", beta, f"beta parameter at index {i}", low=0.0, high=1.0)
        options["betas"] = (float(betas[0]), float(betas[1]))
        check_range(owner, "weight_decay", options["weight_decay"], "weight_decay value", low=0.0)

    def _update(self, param: Tensor, grad: np.ndarray, state: dict, group: dict) -> None:
        lr, eps, weight_decay = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        beta1, beta2 = group["betas"]
        p = param.data
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p)
            state["exp_avg_sq"] = np.zeros_like(p)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p)
        state["step"] = step = state["step"] + 1
        g = -grad if group["maximize"] else grad
        if weight_decay != 0:
            if group["decoupled_weight_decay"]:
                p *= 1 - lr * weight_decay
            else:
                g = g + weight_decay * p
        m, v = state["exp_avg"], state["exp_avg_sq"]
        # Two scratch arrays for the whole update; the evaluation order is torch's (same rounding).
        tmp, update = np.empty_like(p), np.empty_like(p)
        _lerp_(m, g, 1 - beta1, tmp)
        v *= beta2
        np.multiply(g, 1 - beta2, out=tmp)
        tmp *= g
        v += tmp
        if group["amsgrad"]:
            v = np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
        step_size = lr / (1 - beta1 ** step)
        denom = np.sqrt(v, out=tmp)
        denom /= (1 - beta2 ** step) ** 0.5
        denom += eps
        np.multiply(m, -step_size, out=update)
        update /= denom
        p += update


def _lerp_(start: np.ndarray, end: np.ndarray, weight: float, scratch: np.ndarray) -> None:
    """``start += weight * (end - start)`` in place, evaluated as ``torch.lerp`` does for accuracy.

    For ``|weight| < 0.5``: ``start + weight * (end - start)``; otherwise
    ``end - (end - start) * (1 - weight)``. ``scratch`` (``start``'s shape) holds the difference.
    """
    diff = np.subtract(end, start, out=scratch)
    if abs(weight) < 0.5:
        diff *= weight
        start += diff
    else:
        diff *= 1 - weight
        np.subtract(end, diff, out=start)


class AdamW(Adam):
    """Adam with decoupled weight decay: ``theta *= 1 - lr * weight_decay`` before the Adam step.

    Same update and arguments as ``Adam`` with ``decoupled_weight_decay=True``;
    the default ``weight_decay`` is 1e-2.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False, *,
                 maximize: bool = False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         decoupled_weight_decay=True)
