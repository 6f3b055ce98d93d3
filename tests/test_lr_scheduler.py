"""Learning-rate schedules against torch.optim.lr_scheduler: lr (and momentum) sequences, state dicts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from oracle import raises_like_torch, torch

from convkit.nn import Parameter
from convkit.optim import SGD, Adam, lr_scheduler

STEPS = 40
SCHEDULES = [
    ("StepLR", {"step_size": 3, "gamma": 0.5}),
    ("StepLR", {"step_size": 7}),
    ("MultiStepLR", {"milestones": [9, 2, 5, 5], "gamma": 0.3}),
    ("MultiStepLR", {"milestones": [4, 30]}),
    ("ExponentialLR", {"gamma": 0.9}),
    ("CosineAnnealingLR", {"T_max": 10}),
    ("CosineAnnealingLR", {"T_max": 7, "eta_min": 1e-3}),
    ("LinearLR", {}),
    ("LinearLR", {"start_factor": 0.25, "end_factor": 0.5, "total_iters": 8}),
    ("LinearLR", {"start_factor": 1.0, "end_factor": 0.0, "total_iters": 10}),
    ("OneCycleLR", {"max_lr": 0.5, "total_steps": STEPS}),
    ("OneCycleLR", {"max_lr": [0.5, 0.2], "epochs": 4, "steps_per_epoch": 10, "pct_start": 0.25,
                    "anneal_strategy": "linear", "three_phase": True, "div_factor": 10.0,
                    "final_div_factor": 100.0, "base_momentum": [0.8, 0.7], "max_momentum": 0.9}),
    ("OneCycleLR", {"max_lr": 0.3, "total_steps": STEPS, "pct_start": 0.5, "cycle_momentum": False}),
]
OPTIMIZERS = [
    (SGD, torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}),
    (Adam, torch.optim.Adam, {"lr": 0.01}),
]


def make(opt_pair, name, kwargs, groups=2):
    """The same optimizer (``groups`` param groups, different lrs) and schedule in convkit and torch."""
    ck_cls, th_cls, opt_kwargs = opt_pair
    lrs = [opt_kwargs["lr"] * (i + 1) for i in range(groups)]
    ck_opt = ck_cls([{"params": [Parameter(np.ones(2))], "lr": lr} for lr in lrs], **opt_kwargs)
    th_opt = th_cls([{"params": [torch.ones(2, requires_grad=True)], "lr": lr} for lr in lrs], **opt_kwargs)
    return (ck_opt, getattr(lr_scheduler, name)(ck_opt, **kwargs),
            th_opt, getattr(torch.optim.lr_scheduler, name)(th_opt, **kwargs))


def momenta(opt):
    return [g["betas"][0] if "betas" in g else g["momentum"] for g in opt.param_groups]


def run(opt, sched, steps):
    """lrs and momenta of every group, epoch by epoch."""
    seen = []
    for _ in range(steps):
        seen.append((list(sched.get_last_lr()), [g["lr"] for g in opt.param_groups], momenta(opt)))
        opt.step()
        sched.step()
    return seen


def assert_same_sequence(ck_seen, th_seen):
    for epoch, (ck, th) in enumerate(zip(ck_seen, th_seen)):
        for ck_vals, th_vals in zip(ck, th):
            np.testing.assert_allclose(ck_vals, th_vals, rtol=1e-12, atol=1e-15, err_msg=f"epoch {epoch}")


@pytest.mark.parametrize("opt_pair", OPTIMIZERS, ids=["SGD", "Adam"])
@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("name,kwargs", SCHEDULES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(SCHEDULES)])
def test_sequence_matches_torch(opt_pair, groups, name, kwargs):
    if groups == 1 and isinstance(kwargs.get("max_lr"), list):
        kwargs = {k: v[0] if isinstance(v, list) else v for k, v in kwargs.items()}
    ck_opt, ck_sched, th_opt, th_sched = make(opt_pair, name, kwargs, groups)
    ck_seen, th_seen = run(ck_opt, ck_sched, STEPS), run(th_opt, th_sched, STEPS)
    assert_same_sequence(ck_seen, th_seen)
    assert ck_sched.last_epoch == th_sched.last_epoch == STEPS


def test_lr_reaches_the_updates():
    """The scheduled lr is the one the optimizer uses on the next step."""
    p = Parameter(np.zeros(1))
    opt = SGD([p], lr=1.0)
    sched = lr_scheduler.MultiStepLR(opt, milestones=[1], gamma=0.5)
    moves = []
    for _ in range(3):
        p.grad = np.ones(1)
        before = p.data.copy()
        opt.step()
        sched.step()
        moves.append(float(before[0] - p.data[0]))
    assert moves == [1.0, 0.5, 0.5]


def test_one_cycle_raises_past_total_steps():
    ck_opt, ck_sched, th_opt, th_sched = make(OPTIMIZERS[0], "OneCycleLR", {"max_lr": 0.1, "total_steps": 3})
    for opt, sched in ((ck_opt, ck_sched), (th_opt, th_sched)):
        for _ in range(3):
            opt.step()
            sched.step()
    msg = raises_like_torch(ck_sched.step, th_sched.step)
    assert "total steps is 3" in msg


@pytest.mark.parametrize("name,kwargs", SCHEDULES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(SCHEDULES)])
def test_state_dict_round_trip(name, kwargs):
    opt, sched, _, _ = make(OPTIMIZERS[1], name, kwargs)
    run(opt, sched, 12)
    opt_state, sched_state = opt.state_dict(), sched.state_dict()
    sched_state = json.loads(json.dumps(sched_state))  # plain data only
    expected = run(opt, sched, STEPS - 12)

    new_opt, new_sched, _, _ = make(OPTIMIZERS[1], name, kwargs)
    new_opt.load_state_dict(opt_state)
    new_sched.load_state_dict(sched_state)
    assert new_sched.last_epoch == 12
    assert run(new_opt, new_sched, STEPS - 12) == expected


def test_state_dict_excludes_optimizer_and_copies():
    opt, sched, _, _ = make(OPTIMIZERS[0], "MultiStepLR", {"milestones": [3, 1]})
    state = sched.state_dict()
    assert "optimizer" not in state and state["milestones"] == [1, 3]
    state["base_lrs"].append(9.0)
    assert len(sched.base_lrs) == 2


@pytest.mark.parametrize("name,kwargs", [("CosineAnnealingLR", {"T_max": 9, "eta_min": 0.01}),
                                         ("StepLR", {"step_size": 2}),
                                         ("LinearLR", {"total_iters": 8})])
def test_resume_with_last_epoch(name, kwargs):
    ck_opt, ck_sched, th_opt, th_sched = make(OPTIMIZERS[0], name, kwargs)
    run(ck_opt, ck_sched, 5)
    run(th_opt, th_sched, 5)
    ck_resumed = getattr(lr_scheduler, name)(ck_opt, last_epoch=5, **kwargs)
    th_resumed = getattr(torch.optim.lr_scheduler, name)(th_opt, last_epoch=5, **kwargs)
    assert_same_sequence(run(ck_opt, ck_resumed, 15), run(th_opt, th_resumed, 15))


BAD = [
    ("LinearLR", {"start_factor": 0.0}, "start_factor"),
    ("LinearLR", {"end_factor": 1.5}, "end_factor"),
    ("OneCycleLR", {"max_lr": 0.1}, "total_steps"),
    ("OneCycleLR", {"max_lr": 0.1, "total_steps": 0}, "total_steps"),
    ("OneCycleLR", {"max_lr": 0.1, "epochs": 0, "steps_per_epoch": 2}, "epochs"),
    ("OneCycleLR", {"max_lr": 0.1, "epochs": 2, "steps_per_epoch": -1}, "steps_per_epoch"),
    ("OneCycleLR", {"max_lr": 0.1, "total_steps": 10, "pct_start": 1.5}, "pct_start"),
    ("OneCycleLR", {"max_lr": 0.1, "total_steps": 10, "anneal_strategy": "exp"}, "anneal_strategy"),
    ("OneCycleLR", {"max_lr": [0.1, 0.2, 0.3], "total_steps": 10}, "max_lr"),
    ("OneCycleLR", {"max_lr": 0.1, "total_steps": 10, "max_momentum": [0.9]}, "max_momentum"),
]


@pytest.mark.parametrize("name,kwargs,word", BAD)
def test_invalid_arguments_raise_like_torch(name, kwargs, word):
    ck_opt, _, th_opt, _ = make(OPTIMIZERS[0], "StepLR", {"step_size": 1})
    msg = raises_like_torch(lambda: getattr(lr_scheduler, name)(ck_opt, **kwargs),
                            lambda: getattr(torch.optim.lr_scheduler, name)(th_opt, **kwargs))
    assert word in msg and name in msg


def test_invalid_arguments_raise():
    opt = SGD([Parameter(np.ones(1))], lr=0.1)
    with pytest.raises(ValueError, match="step_size must be >= 1, got 0"):
        lr_scheduler.StepLR(opt, step_size=0)
    with pytest.raises(TypeError, match="step_size must be an int"):
        lr_scheduler.StepLR(opt, step_size=2.5)
    with pytest.raises(ValueError, match="T_max must be >= 1"):
        lr_scheduler.CosineAnnealingLR(opt, T_max=0)
    with pytest.raises(TypeError, match="milestones must be ints"):
        lr_scheduler.MultiStepLR(opt, milestones=[1.5])
    with pytest.raises(TypeError, match="gamma must be a real number"):
        lr_scheduler.ExponentialLR(opt, gamma="0.9")
    with pytest.raises(TypeError, match="optimizer must be an Optimizer"):
        lr_scheduler.StepLR([Parameter(np.ones(1))], step_size=1)
    with pytest.raises(ValueError, match="last_epoch must be an int >= -1"):
        lr_scheduler.StepLR(opt, step_size=1, last_epoch=-3)
    msg = raises_like_torch(
        lambda: lr_scheduler.StepLR(SGD([Parameter(np.ones(1))], lr=0.1), step_size=1, last_epoch=3),
        lambda: torch.optim.lr_scheduler.StepLR(
            torch.optim.SGD([torch.ones(1, requires_grad=True)], lr=0.1), step_size=1, last_epoch=3))
    assert "initial_lr" in msg and "last_epoch" in msg
