"""Adam and AdamW (``torch.optim.Adam``, ``torch.optim.AdamW``), PyTorch's exact formulas."""

from __future__ import annotations

import math

import numpy as np

from ..ops.jit import fma, kernel, prange
from .optimizer import Optimizer, Slot, check_range, flat_state, foreach, overlap

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

    One kernel pass over a group's parameters (``optimizer.foreach``) does
    the whole update in place, in the parameters' dtype, evaluated as PyTorch does: scalars (``1 - beta1``,
    ``gamma / (1 - beta1**t)``, ...) computed in float64 and rounded to that
    dtype; the lerp ``m + w (g - m)`` (``w = 1 - beta1``) as
    ``fma(w, g - m, m)`` for ``w < 0.5``, else ``fma(w - 1, g - m, g)``;
    ``v`` as ``fma((1 - beta2) g, g, beta2 v)``; the decay
    ``g + lambda theta`` as ``fma(theta, lambda, g)``; then
    ``theta + (-step_size * m) / denom``.

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

    def _update_group(self, slots: list[Slot], group: dict) -> None:
        lr, eps, weight_decay = float(group["lr"]), float(group["eps"]), float(group["weight_decay"])
        beta1, beta2 = group["betas"]
        amsgrad, decoupled = bool(group["amsgrad"]), bool(group["decoupled_weight_decay"])
        decay = (1 - lr * weight_decay) if decoupled else weight_decay
        rows, m, v, vmax = [], [], [], []
        for slot in slots:
            state = slot.state
            if not state:
                state["step"] = 0
                for key in ("exp_avg", "exp_avg_sq") + (("max_exp_avg_sq",) if amsgrad else ()):
                    state[key] = np.zeros(slot.param.shape, slot.p.dtype)
            state["step"] = step = state["step"] + 1
            rows.append([-(lr / (1 - beta1 ** step)), math.sqrt(1 - beta2 ** step), eps, 1 - beta1, beta2,
                         1 - beta2, decay])
            m.append(flat_state(state, "exp_avg"))
            v.append(flat_state(state, "exp_avg_sq"))
            vmax.append(flat_state(state, "max_exp_avg_sq") if amsgrad else slot.p[:0])
        mode = 0 if weight_decay == 0 else 2 if decoupled else 1
        foreach(_adam_range, _adam_ranges, [[s.p for s in slots], [s.grad for s in slots], m, v, vmax], rows,
                mode, amsgrad, bool(group["maximize"]))


@kernel
def _adam_span(p, g, m, v, vmax, h, decay_mode, amsgrad, maximize, start, stop):
    """Elements ``start..stop`` of the update (class docstring).

    ``h = (-gamma / (1 - beta1**t), sqrt(1 - beta2**t), eps, 1 - beta1, beta2, 1 - beta2, d)`` in
    ``p``'s dtype, ``d = 1 - gamma lambda`` (``decay_mode`` 2, decoupled) or ``lambda`` (1, L2; 0: none).
    """
    step_size, correction2, eps, w1, beta2, w2, decay = h[0], h[1], h[2], h[3], h[4], h[5], h[6]
    small = abs(w1) < 0.5
    w1_minus_one = w1 - h.dtype.type(1)
    p, g, m, v, vmax = p[start:stop], g[start:stop], m[start:stop], v[start:stop], vmax[start:stop]
    for i in range(p.size):
        theta = p[i]
        gi = -g[i] if maximize else g[i]
        if decay_mode == 2:
            theta = theta * decay
        elif decay_mode == 1:
            gi = fma(theta, decay, gi)
        diff = gi - m[i]
        mi = fma(w1, diff, m[i]) if small else fma(w1_minus_one, diff, gi)
        m[i] = mi
        vi = fma(w2 * gi, gi, v[i] * beta2)
        v[i] = vi
        if amsgrad:
            vm = vmax[i]
            if vi > vm or vi != vi:  # torch.maximum: a NaN wins
                vm = vi
            vmax[i] = vm
            vi = vm
        p[i] = theta + step_size * mi / (np.sqrt(vi) / correction2 + eps)


@kernel
def _adam_range(ps, gs, ms, vs, vmaxs, hs, count, decay_mode, amsgrad, maximize, start, stop):
    """Elements ``start..stop`` of the first ``count`` parameters laid end to end (``optimizer.foreach``)."""
    offset = 0
    for i in range(count):
        lo, hi = overlap(start, stop, offset, ps[i].size)
        if lo < hi:
            _adam_span(ps[i], gs[i], ms[i], vs[i], vmaxs[i], hs[i], decay_mode, amsgrad, maximize, lo, hi)
        offset += ps[i].size


@kernel(parallel=True)
def _adam_ranges(ps, gs, ms, vs, vmaxs, hs, count, decay_mode, amsgrad, maximize, items, threads):
    for t in prange(threads):
        _adam_range(ps, gs, ms, vs, vmaxs, hs, count, decay_mode, amsgrad, maximize, t * items // threads,
                    (t + 1) * items // threads)


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
