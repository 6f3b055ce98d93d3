"""The compiled optimizer updates against torch.optim, fed the same gradients: 20-step float32 and float64 trajectories.

The gradients are identical on both sides (drawn here, not computed by two
autograds), so any difference is the update's own rounding: float32 within
1.5e-7 over 20 steps, float64 within 1e-12. Parameters of odd sizes, one
large enough to run on several threads, and non-contiguous ones; groups
wider than one kernel call (``GROUP_WIDTH``), with mixed dtypes, empty
parameters, read-only gradients and parameters that skip steps.
"""

from __future__ import annotations

import numpy as np
import pytest
from oracle import torch

from convkit.nn import Parameter
from convkit.ops.jit import PARALLEL_WORK
from convkit.optim import SGD, Adam, AdamW
from convkit.optim.optimizer import GROUP_WIDTH

STEPS = 20
SHAPES = [(1,), (7,), (33,), (5, 7, 3), (4, 3), (PARALLEL_WORK + 77,)]
ATOL = {np.float32: 1.5e-7, np.float64: 1e-12}

CASES = [
    (SGD, torch.optim.SGD, {"lr": 0.1}),
    (SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.01}),
    (SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.8, "nesterov": True, "maximize": True}),
    (Adam, torch.optim.Adam, {"lr": 0.02}),
    (Adam, torch.optim.Adam, {"lr": 0.02, "betas": (0.3, 0.9), "eps": 1e-6}),
    (Adam, torch.optim.Adam, {"lr": 0.02, "weight_decay": 0.1, "amsgrad": True, "maximize": True}),
    (Adam, torch.optim.Adam, {"lr": 0.02, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    (AdamW, torch.optim.AdamW, {"lr": 0.02, "weight_decay": 0.3, "amsgrad": True}),
]


def run(ck_cls, th_cls, kwargs, dtype, values, *, steps=STEPS):
    """Largest |convkit - torch| over the parameters after each of ``steps`` identical-gradient steps."""
    rng = np.random.default_rng(1)
    ck = [Parameter(v) for v in values]
    for c, v in zip(ck, values):
        c.data = v  # the array itself, strided or not (Parameter copies)
    th = [torch.tensor(np.array(v), requires_grad=True) for v in values]
    ck_opt, th_opt = ck_cls(ck, **kwargs), th_cls(th, **kwargs, foreach=False)
    errors = []
    for _ in range(steps):
        for c, t in zip(ck, th):
            g = rng.standard_normal(c.shape).astype(dtype)
            c.grad = g
            t.grad = torch.tensor(g.copy())
        ck_opt.step()
        th_opt.step()
        errors.append(max(float(np.max(np.abs(c.data - t.detach().numpy()))) for c, t in zip(ck, th)))
        for c in ck:
            assert c.dtype == dtype
    return max(errors), ck, th


def initial(dtype, shapes=SHAPES):
    rng = np.random.default_rng(0)
    return [(rng.standard_normal(s) * 0.5).astype(dtype) for s in shapes]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("ck_cls,th_cls,kwargs", CASES, ids=lambda v: str(v) if isinstance(v, dict) else None)
def test_trajectory_with_the_same_gradients_matches_torch(ck_cls, th_cls, kwargs, dtype):
    error, _, _ = run(ck_cls, th_cls, kwargs, dtype, initial(dtype))
    assert error <= ATOL[dtype]


@pytest.mark.parametrize("ck_cls,th_cls,kwargs", CASES, ids=lambda v: str(v) if isinstance(v, dict) else None)
def test_non_contiguous_parameters_are_updated_in_place(ck_cls, th_cls, kwargs):
    """A transposed and a strided parameter: updated in place (same array object), as torch updates them."""
    bases = [np.random.default_rng(seed).standard_normal((9, 12)).astype(np.float32) for seed in (3, 4)]
    values = [bases[0].T, bases[1][:, ::3]]
    assert not any(v.flags.c_contiguous for v in values)
    error, ck, _ = run(ck_cls, th_cls, kwargs, np.float32, values, steps=5)
    assert error <= ATOL[np.float32]
    assert ck[0].data.base is bases[0] and ck[1].data.base is bases[1]
    np.testing.assert_array_equal(bases[0].T, ck[0].data)


def test_state_loaded_in_another_layout_still_updates():
    """A state dict whose buffers are Fortran-ordered (e.g. from elsewhere) gives the same next step."""
    values = initial(np.float64, [(6, 4), (3,)])
    a = [Parameter(v.copy()) for v in values]
    b = [Parameter(v.copy()) for v in values]
    opt_a, opt_b = Adam(a, lr=0.01, amsgrad=True), Adam(b, lr=0.01, amsgrad=True)
    grads = [np.random.default_rng(5).standard_normal(v.shape) for v in values]
    for p, q, g in zip(a, b, grads):
        p.grad, q.grad = g, g.copy()
    opt_a.step()
    state = opt_a.state_dict()
    state["state"] = {k: {n: np.asfortranarray(v) if isinstance(v, np.ndarray) else v for n, v in s.items()}
                      for k, s in state["state"].items()}
    opt_b.load_state_dict(state)
    for p, q in zip(a, b):
        q.data[...] = p.data
    opt_a.step()
    opt_b.step()
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p.data, q.data)


@pytest.mark.parametrize("ck_cls,th_cls,kwargs", CASES, ids=lambda v: str(v) if isinstance(v, dict) else None)
def test_wide_groups_of_mixed_dtypes_match_torch_parameter_by_parameter(ck_cls, th_cls, kwargs):
    """2.5 kernel calls' worth of parameters, float32 and float64 interleaved, some empty, some large,
    read-only gradients, and every third parameter without a gradient on odd steps (its step count lags)."""
    rng = np.random.default_rng(7)
    count = GROUP_WIDTH * 5 // 2
    sizes = [0 if i % 11 == 5 else PARALLEL_WORK // 3 if i % 9 == 0 else int(rng.integers(1, 50))
             for i in range(count)]
    dtypes = [np.float32 if i % 2 else np.float64 for i in range(count)]
    values = [(rng.standard_normal(n) * 0.5).astype(d) for n, d in zip(sizes, dtypes)]
    ck = [Parameter(v) for v in values]
    th = [torch.tensor(v.copy(), requires_grad=True) for v in values]
    ck_opt, th_opt = ck_cls(ck, **kwargs), th_cls(th, **kwargs, foreach=False)
    for step in range(6):
        for i, (c, t) in enumerate(zip(ck, th)):
            if step % 2 and i % 3 == 0:
                c.grad, t.grad = None, None
                continue
            g = rng.standard_normal(c.shape).astype(c.dtype)
            g.flags.writeable = False
            c.grad, t.grad = g, torch.tensor(g.copy())
        ck_opt.step()
        th_opt.step()
    for c, t in zip(ck, th):
        assert c.dtype == t.detach().numpy().dtype
        np.testing.assert_allclose(c.data, t.detach().numpy(), rtol=0, atol=ATOL[c.dtype.type])
