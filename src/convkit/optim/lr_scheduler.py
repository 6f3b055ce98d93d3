"""Learning-rate schedules (``torch.optim.lr_scheduler``), value for value.

A scheduler rewrites ``group["lr"]`` of every param group of its optimizer.
Creating it records each group's starting lr as ``group["initial_lr"]``
(``base_lrs``) and applies epoch 0; each ``step()`` (call it after
``optimizer.step()``) advances ``last_epoch`` by one and sets the lr for
that epoch. Most schedules are recursive, as in PyTorch: the new lr is
computed from the group's current lr, so they compose with other changes
to ``group["lr"]``, and their floating-point values match PyTorch's exactly.

``state_dict()`` holds every attribute but the optimizer, as plain Python
data (numbers, strings, lists, dicts), ready for JSON.

>>> import numpy as np
>>> from convkit.nn import Parameter
>>> from convkit.optim import SGD
>>> from convkit.optim.lr_scheduler import StepLR
>>> opt = SGD([Parameter(np.zeros(2))], lr=1.0)
>>> sched = StepLR(opt, step_size=2, gamma=0.5)
>>> lrs = []
>>> for epoch in range(5):
...     opt.step()
...     lrs.append(sched.get_last_lr()[0])
...     sched.step()
>>> lrs
[1.0, 1.0, 0.5, 0.5, 0.25]
"""

from __future__ import annotations

import copy
import math
import numbers

from ..ops._args import is_int
from .optimizer import Optimizer

__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR",
           "LinearLR", "OneCycleLR"]


class LRScheduler:
    """Base class: keeps ``base_lrs``, ``last_epoch`` and the lrs of the last step.

    Subclasses implement ``get_lr()``, the lrs for epoch ``last_epoch``, one
    per param group (called by ``step``; read the current values with
    ``get_last_lr()``).

    Args:
        optimizer (Optimizer): the optimizer whose lrs are scheduled.
        last_epoch (int): index of the last epoch done; -1 (default) starts
            the schedule. Another value resumes it and needs
            ``group["initial_lr"]`` in every group (restored with the
            optimizer's state dict).
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        name = type(self).__name__
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{name}: optimizer must be an Optimizer, got {type(optimizer).__name__}")
        if not is_int(last_epoch) or last_epoch < -1:
            raise ValueError(f"{name}: last_epoch must be an int >= -1, got {last_epoch!r}")
        self.optimizer = optimizer
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise ValueError(
                    f"{name}: param_groups[{i}] has no 'initial_lr', needed to resume with "
                    f"last_epoch={last_epoch}; load the optimizer's state dict first or use last_epoch=-1"
                )
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._step_count = 0
        self._is_initial = True
        self.step()
        self._is_initial = False

    def get_lr(self) -> list[float]:
        """The lr of every param group for epoch ``last_epoch`` (called by ``step``)."""
        raise NotImplementedError(f"{type(self).__name__} does not define get_lr()")

    def step(self) -> None:
        """Advance one epoch and write the new lrs into the optimizer's param groups."""
        self._step_count += 1
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The lrs the last ``step`` set, one per param group."""
        return list(self._last_lr)

    def _current_lrs(self) -> list[float]:
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        """Every attribute except the optimizer, as a deep copy."""
        return {k: copy.deepcopy(v) for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore attributes saved by ``state_dict``."""
        self.__dict__.update(copy.deepcopy(state_dict))


class StepLR(LRScheduler):
    """Multiply the lr by ``gamma`` every ``step_size`` epochs.

    ``lr_e = lr_{e-1} * gamma`` when ``e`` is a positive multiple of
    ``step_size``, else ``lr_e = lr_{e-1}`` (so ``lr_e = base_lr * gamma**(e // step_size)``).

    Args:
        optimizer (Optimizer): the optimizer.
        step_size (int): period of decay, >= 1.
        gamma (float): decay factor. Default: 0.1.
        last_epoch (int): see ``LRScheduler``. Default: -1.
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        _check_int("StepLR", "step_size", step_size, minimum=1)
        _check_real("StepLR", "gamma", gamma)
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]


class MultiStepLR(LRScheduler):
    """Multiply the lr by ``gamma`` at each milestone epoch.

    ``lr_e = lr_{e-1} * gamma**n`` where ``n`` is how many times ``e``
    appears in ``milestones``. ``milestones`` is kept as a sorted list.

    Args:
        optimizer (Optimizer): the optimizer.
        milestones (iterable of int): epochs at which to decay.
        gamma (float): decay factor. Default: 0.1.
        last_epoch (int): see ``LRScheduler``. Default: -1.
    """

    def __init__(self, optimizer: Optimizer, milestones, gamma: float = 0.1, last_epoch: int = -1):
        if isinstance(milestones, (str, bytes)) or not hasattr(milestones, "__iter__"):
            raise TypeError(f"MultiStepLR: milestones must be an iterable of ints, got {milestones!r}")
        milestones = list(milestones)
        if not all(is_int(m) for m in milestones):
            raise TypeError(f"MultiStepLR: milestones must be ints, got {milestones!r}")
        _check_real("MultiStepLR", "gamma", gamma)
        self.milestones = sorted(int(m) for m in milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        hits = self.milestones.count(self.last_epoch)
        if hits == 0:
            return self._current_lrs()
        return [lr * self.gamma ** hits for lr in self._current_lrs()]


class ExponentialLR(LRScheduler):
    """Multiply the lr by ``gamma`` every epoch: ``lr_e = lr_{e-1} * gamma`` (``lr_0 = base_lr``).

    Args:
        optimizer (Optimizer): the optimizer.
        gamma (float): decay factor.
        last_epoch (int): see ``LRScheduler``. Default: -1.
    """

    def __init__(self, optimizer: Optimizer, gamma: float, last_epoch: int = -1):
        _check_real("ExponentialLR", "gamma", gamma)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        if self._is_initial:
            return self._current_lrs()
        return [lr * self.gamma for lr in self._current_lrs()]


class CosineAnnealingLR(LRScheduler):
    r"""Cosine annealing from ``base_lr`` to ``eta_min`` over ``T_max`` epochs (no restarts).

    The closed form is ``eta_e = eta_min + (base_lr - eta_min) * (1 + cos(pi * e / T_max)) / 2``;
    like PyTorch, the lr is updated recursively::

        eta_e = eta_min + (eta_{e-1} - eta_min) * (1 + cos(pi e / T_max)) / (1 + cos(pi (e-1) / T_max))

    except at ``e = T_max + 1 (mod 2 T_max)``, where the ratio is 0/0 and
    ``eta_e = eta_{e-1} + (base_lr - eta_min) * (1 - cos(pi / T_max)) / 2``
    (the schedule goes back up after ``T_max``, as PyTorch's does). When
    resuming (``last_epoch >= 0``) the first step uses the closed form.

    Args:
        optimizer (Optimizer): the optimizer.
        T_max (int): half-period in epochs, >= 1.
        eta_min (float): minimum lr. Default: 0.0.
        last_epoch (int): see ``LRScheduler``. Default: -1.
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        _check_int("CosineAnnealingLR", "T_max", T_max, minimum=1)
        _check_real("CosineAnnealingLR", "eta_min", eta_min)
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        e, t_max, eta_min = self.last_epoch, self.T_max, self.eta_min
        if self._is_initial:
            return self._current_lrs()
        if self._step_count == 1 and e > 0:
            return [eta_min + (base - eta_min) * (1 + math.cos(e * math.pi / t_max)) / 2
                    for base in self.base_lrs]
        if (e - 1 - t_max) % (2 * t_max) == 0:
            return [lr + (base - eta_min) * (1 - math.cos(math.pi / t_max)) / 2
                    for base, lr in zip(self.base_lrs, self._current_lrs())]
        ratio = (1 + math.cos(math.pi * e / t_max)) / (1 + math.cos(math.pi * (e - 1) / t_max))
        return [ratio * (lr - eta_min) + eta_min for lr in self._current_lrs()]


class LinearLR(LRScheduler):
    """Scale the lr by a factor going linearly from ``start_factor`` to ``end_factor`` in ``total_iters`` epochs.

    Factor at epoch ``e``: ``f_e = start + (end - start) * min(e, total_iters) / total_iters``;
    like PyTorch, the lr is updated recursively, ``lr_0 = base_lr * start`` and
    ``lr_e = lr_{e-1} * (1 + (end - start) / (total_iters * start + (e - 1) * (end - start)))``
    for ``1 <= e <= total_iters``, unchanged afterwards.

    Args:
        optimizer (Optimizer): the optimizer.
        start_factor (float): in (0, 1]. Default: 1/3.
        end_factor (float): in [0, 1]. Default: 1.0.
        total_iters (int): epochs of the ramp, >= 0. Default: 5.
        last_epoch (int): see ``LRScheduler``. Default: -1.
    """

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5, last_epoch: int = -1):
        _check_real("LinearLR", "start_factor", start_factor)
        _check_real("LinearLR", "end_factor", end_factor)
        if not 0 < start_factor <= 1:
            raise ValueError(f"LinearLR: start_factor expected to be greater than 0 and less or equal to 1, "
                             f"got {start_factor!r}")
        if not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: end_factor expected to be between 0 and 1, got {end_factor!r}")
        _check_int("LinearLR", "total_iters", total_iters, minimum=0)
        self.start_factor = start_factor
        self.end_factor = end_factor
        self.total_iters = total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        e, start, end = self.last_epoch, self.start_factor, self.end_factor
        if e == 0:
            return [lr * start for lr in self._current_lrs()]
        if self._is_initial or e > self.total_iters:
            return self._current_lrs()
        factor = 1.0 + (end - start) / (self.total_iters * start + (e - 1) * (end - start))
        return [lr * factor for lr in self._current_lrs()]


class OneCycleLR(LRScheduler):
    """The 1cycle policy: warm up from ``max_lr / div_factor`` to ``max_lr``, then anneal far below.

    Phases (``T`` = total_steps, ``p`` = pct_start), each interpolating with
    ``anneal(start, end, pct)`` where ``pct`` runs from 0 to 1 over the phase:

    * two phases (default): ``initial_lr -> max_lr`` over steps ``[0, p*T - 1]``,
      then ``max_lr -> min_lr`` up to step ``T - 1``;
    * ``three_phase``: ``initial_lr -> max_lr`` up to ``p*T - 1``, ``max_lr ->
      initial_lr`` up to ``2*p*T - 2``, ``initial_lr -> min_lr`` up to ``T - 1``;

    with ``initial_lr = max_lr / div_factor`` and ``min_lr = initial_lr / final_div_factor``.
    ``anneal`` is ``end + (start - end) / 2 * (1 + cos(pi * pct))`` ('cos') or
    ``start + (end - start) * pct`` ('linear'). With ``cycle_momentum`` the
    momentum (SGD's ``momentum``, Adam's ``betas[0]``) moves the opposite
    way between ``max_momentum`` and ``base_momentum``. Stepping past ``T``
    raises ValueError. Call ``step()`` after every batch.

    Args:
        optimizer (Optimizer): the optimizer.
        max_lr (float or list): peak lr, per group if a list.
        total_steps (int | None): steps in the cycle; else ``epochs * steps_per_epoch``.
        epochs (int | None): with ``steps_per_epoch``, gives ``total_steps``.
        steps_per_epoch (int | None): see ``epochs``.
        pct_start (float): fraction of the cycle spent warming up, in [0, 1]. Default: 0.3.
        anneal_strategy (str): 'cos' or 'linear'. Default: 'cos'.
        cycle_momentum (bool): cycle the momentum inversely to the lr. Default: True.
        base_momentum (float or list): momentum at the lr peak. Default: 0.85.
        max_momentum (float or list): momentum at the start and end. Default: 0.95.
        div_factor (float): ``initial_lr = max_lr / div_factor``. Default: 25.
        final_div_factor (float): ``min_lr = initial_lr / final_div_factor``. Default: 1e4.
        three_phase (bool): use the three-phase schedule. Default: False.
        last_epoch (int): index of the last batch done (see ``LRScheduler``). Default: -1.
    """

    def __init__(self, optimizer: Optimizer, max_lr, total_steps: int | None = None,
                 epochs: int | None = None, steps_per_epoch: int | None = None, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True, base_momentum=0.85,
                 max_momentum=0.95, div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"OneCycleLR: optimizer must be an Optimizer, got {type(optimizer).__name__}")
        self.total_steps = _total_steps(total_steps, epochs, steps_per_epoch)
        _check_real("OneCycleLR", "pct_start", pct_start)
        if not 0 <= pct_start <= 1:
            raise ValueError(f"OneCycleLR: Expected float between 0 and 1 pct_start, but got {pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(
                f"OneCycleLR: anneal_strategy must be one of 'cos' or 'linear', instead got {anneal_strategy!r}"
            )
        _check_real("OneCycleLR", "div_factor", div_factor)
        _check_real("OneCycleLR", "final_div_factor", final_div_factor)
        groups = optimizer.param_groups
        max_lrs = _per_group("max_lr", max_lr, len(groups))
        self._schedule_phases = _phases(self.total_steps, float(pct_start), three_phase)
        self._anneal_func_type = anneal_strategy
        self.cycle_momentum = cycle_momentum
        if cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError("OneCycleLR: optimizer must support momentum or beta1 with "
                                 "`cycle_momentum` option enabled (pass cycle_momentum=False)")
            self.use_beta1 = "betas" in optimizer.defaults
            max_moms = _per_group("max_momentum", max_momentum, len(groups))
            base_moms = _per_group("base_momentum", base_momentum, len(groups))
        if last_epoch == -1:
            for i, group in enumerate(groups):
                group["initial_lr"] = max_lrs[i] / div_factor
                group["max_lr"] = max_lrs[i]
                group["min_lr"] = group["initial_lr"] / final_div_factor
                if cycle_momentum:
                    self._set_momentum(group, max_moms[i])
                    group["max_momentum"] = max_moms[i]
                    group["base_momentum"] = base_moms[i]
        super().__init__(optimizer, last_epoch)

    def _set_momentum(self, group: dict, value: float) -> None:
        if self.use_beta1:
            group["betas"] = (value, *group["betas"][1:])
        else:
            group["momentum"] = value

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self._anneal_func_type == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def get_lr(self) -> list[float]:
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(
                f"OneCycleLR: Tried to step {step} times. The specified number of total steps is {self.total_steps}"
            )
        lrs = []
        for group in self.optimizer.param_groups:
            start_step = 0.0
            for i, phase in enumerate(self._schedule_phases):
                end_step = phase["end_step"]
                if step <= end_step or i == len(self._schedule_phases) - 1:
                    pct = (step - start_step) / (end_step - start_step)
                    lrs.append(self._anneal(group[phase["start_lr"]], group[phase["end_lr"]], pct))
                    if self.cycle_momentum:
                        self._set_momentum(group, self._anneal(
                            group[phase["start_momentum"]], group[phase["end_momentum"]], pct))
                    break
                start_step = end_step
        return lrs


def _check_int(owner: str, name: str, value, *, minimum: int) -> None:
    if not is_int(value):
        raise TypeError(f"{owner}: {name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{owner}: {name} must be >= {minimum}, got {value!r}")


def _check_real(owner: str, name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a real number, got {type(value).__name__} {value!r}")


def _per_group(name: str, value, n_groups: int) -> list[float]:
    """``value`` repeated for every group, or a list/tuple with one entry per group."""
    if isinstance(value, (list, tuple)):
        if len(value) != n_groups:
            raise ValueError(f"OneCycleLR: {name} must have the same length as optimizer.param_groups: "
                             f"{name} has {len(value)} values, param_groups has {n_groups}")
        values = list(value)
    else:
        values = [value] * n_groups
    for v in values:
        _check_real("OneCycleLR", name, v)
    return values


def _total_steps(total_steps, epochs, steps_per_epoch) -> int:
    """``total_steps``, or ``epochs * steps_per_epoch`` when it is None."""
    if total_steps is not None:
        _check_int("OneCycleLR", "total_steps", total_steps, minimum=1)
        return total_steps
    if epochs is None or steps_per_epoch is None:
        raise ValueError("OneCycleLR: You must define either total_steps OR (epochs AND steps_per_epoch)")
    _check_int("OneCycleLR", "epochs", epochs, minimum=1)
    _check_int("OneCycleLR", "steps_per_epoch", steps_per_epoch, minimum=1)
    return epochs * steps_per_epoch


def _phases(total: int, pct_start: float, three_phase: bool) -> list[dict]:
    """PyTorch's phase table: the last step of each phase and which group keys it moves between."""
    warm = {"end_step": float(pct_start * total) - 1, "start_lr": "initial_lr", "end_lr": "max_lr",
            "start_momentum": "max_momentum", "end_momentum": "base_momentum"}
    if not three_phase:
        return [warm, {"end_step": total - 1, "start_lr": "max_lr", "end_lr": "min_lr",
                       "start_momentum": "base_momentum", "end_momentum": "max_momentum"}]
    return [warm,
            {"end_step": float(2 * pct_start * total) - 2, "start_lr": "max_lr", "end_lr": "initial_lr",
             "start_momentum": "base_momentum", "end_momentum": "max_momentum"},
            {"end_step": total - 1, "start_lr": "initial_lr", "end_lr": "min_lr",
             "start_momentum": "max_momentum", "end_momentum": "max_momentum"}]
