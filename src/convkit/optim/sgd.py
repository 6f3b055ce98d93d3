"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay (``torch.optim.SGD``)."""

from __future__ import annotations

import numpy as np

from ..ops.jit import fma, kernel, prange
from .optimizer import Optimizer, Slot, check_range, flat_state, foreach, overlap

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

    One kernel pass over a group's parameters (``optimizer.foreach``) does
    the whole update in place, in the parameters' dtype, with PyTorch's roundings: the hyperparameters are
    rounded to that dtype first, and every ``x + a * y`` above is one fused
    multiply-add (``ops.jit.fma``), as in PyTorch's vectorised kernels.

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

    def _update_group(self, slots: list[Slot], group: dict) -> None:
        momentum, weight_decay = float(group["momentum"]), float(group["weight_decay"])
        rows, bufs = [], []
        for slot in slots:
            first = momentum != 0 and slot.state.get("momentum_buffer") is None
            if first:
                slot.state["momentum_buffer"] = np.empty(slot.param.shape, slot.p.dtype)
            bufs.append(flat_state(slot.state, "momentum_buffer") if momentum != 0 else slot.p[:0])
            rows.append([group["lr"], momentum, 1 - float(group["dampening"]), weight_decay, first])
        foreach(_sgd_range, _sgd_ranges, [[s.p for s in slots], [s.grad for s in slots], bufs], rows,
                weight_decay != 0, momentum != 0, bool(group["nesterov"]), bool(group["maximize"]))


@kernel
def _sgd_span(p, g, buf, h, decay, use_momentum, nesterov, maximize, start, stop):
    """Elements ``start..stop`` of the update (class docstring).

    ``h = (gamma, mu, 1 - tau, lambda, first)`` in ``p``'s dtype; ``first`` (1 or 0): the buffer starts as ``d``.
    """
    lr, momentum, undamped, weight_decay, first = h[0], h[1], h[2], h[3], h[4] != 0
    p, g, buf = p[start:stop], g[start:stop], buf[start:stop]
    for i in range(p.size):
        d = -g[i] if maximize else g[i]
        if decay:
            d = fma(p[i], weight_decay, d)
        if use_momentum:
            b = d if first else fma(d, undamped, buf[i] * momentum)
            buf[i] = b
            d = fma(b, momentum, d) if nesterov else b
        p[i] = fma(d, -lr, p[i])


@kernel
def _sgd_range(ps, gs, bufs, hs, count, decay, use_momentum, nesterov, maximize, start, stop):
    """Elements ``start..stop`` of the first ``count`` parameters laid end to end (``optimizer.foreach``)."""
    offset = 0
    for i in range(count):
        lo, hi = overlap(start, stop, offset, ps[i].size)
        if lo < hi:
            _sgd_span(ps[i], gs[i], bufs[i], hs[i], decay, use_momentum, nesterov, maximize, lo, hi)
        offset += ps[i].size


@kernel(parallel=True)
def _sgd_ranges(ps, gs, bufs, hs, count, decay, use_momentum, nesterov, maximize, items, threads):
    for t in prange(threads):
        _sgd_range(ps, gs, bufs, hs, count, decay, use_momentum, nesterov, maximize, t * items // threads,
                   (t + 1) * items // threads)
