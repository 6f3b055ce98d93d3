"""Normalisation layers against torch.nn layers with the same (loaded) state, over training steps and eval."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from oracle import torch

import convkit
from convkit import nn

TOL = dict(atol=1e-10, rtol=1e-8)


def _randomize(tmod, rng) -> None:
    """Give a torch module random parameters, running statistics and a batch count."""
    with torch.no_grad():
        for name, t in tmod.state_dict().items():
            if name == "num_batches_tracked":
                t.fill_(3)
            elif name == "running_var":
                t.copy_(torch.tensor(rng.uniform(0.5, 2.0, t.shape)))
            elif name == "weight":
                t.copy_(torch.tensor(rng.uniform(0.5, 1.5, t.shape)))
            else:
                t.copy_(torch.tensor(rng.normal(size=t.shape)))


def _twins(ck_cls, th_cls, args, kwargs, seed):
    """A torch module in float64 with random state and a convkit module loaded from its state_dict."""
    tmod = th_cls(*args, **kwargs, dtype=torch.float64)
    _randomize(tmod, np.random.default_rng(seed))
    cmod = ck_cls(*args, **kwargs, dtype=np.float64)
    missing, unexpected = cmod.load_state_dict(tmod.state_dict())
    assert not missing and not unexpected
    return cmod, tmod


def _step(cmod, tmod, x, rng) -> None:
    """One forward/backward through both modules; compare output, input grad, parameter grads, buffers."""
    cmod.zero_grad()
    tmod.zero_grad()
    cx = convkit.tensor(x, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    cy, ty = cmod(cx), tmod(tx)
    np.testing.assert_allclose(cy.data, ty.detach().numpy(), err_msg="forward", **TOL)
    cot = rng.standard_normal(cy.shape)
    cy.backward(cot)
    ty.backward(torch.tensor(cot))
    np.testing.assert_allclose(cx.grad, tx.grad.numpy(), err_msg="input grad", **TOL)
    tparams = dict(tmod.named_parameters())
    assert set(dict(cmod.named_parameters())) == set(tparams)
    for name, p in cmod.named_parameters():
        np.testing.assert_allclose(p.grad, tparams[name].grad.numpy(), err_msg=f"grad of {name}", **TOL)
    _assert_same_state(cmod, tmod)


def _assert_same_state(cmod, tmod) -> None:
    cstate, tstate = cmod.state_dict(), tmod.state_dict()
    assert list(cstate) == list(tstate)
    for name, t in tstate.items():
        assert cstate[name].dtype == t.numpy().dtype, name
        np.testing.assert_allclose(cstate[name], t.numpy(), err_msg=name, **TOL)


BATCH_NORMS = [(nn.BatchNorm1d, torch.nn.BatchNorm1d, (6, 3)), (nn.BatchNorm1d, torch.nn.BatchNorm1d, (4, 3, 5)),
               (nn.BatchNorm2d, torch.nn.BatchNorm2d, (3, 3, 4, 5)),
               (nn.BatchNorm3d, torch.nn.BatchNorm3d, (2, 3, 3, 2, 4))]
BN_OPTIONS = [dict(momentum=m, affine=a, track_running_stats=t, bias=bias)
              for m, a, t, bias in itertools.product((0.1, None, 0.35), (True, False), (True, False), (True, False))
              if a or bias]


@pytest.mark.parametrize("case,options", list(itertools.product(BATCH_NORMS, BN_OPTIONS)))
def test_batch_norm_module_training_steps_then_eval(case, options):
    ck_cls, th_cls, shape = case
    cmod, tmod = _twins(ck_cls, th_cls, (shape[1],), options, seed=0)
    rng = np.random.default_rng(1)
    for _ in range(3):
        _step(cmod, tmod, rng.normal(1.0, 2.0, shape), rng)
    cmod.eval()
    tmod.eval()
    _step(cmod, tmod, rng.normal(1.0, 2.0, shape), rng)
    assert cmod.training is False


def test_batch_norm_momentum_none_is_cumulative_average():
    bn = nn.BatchNorm1d(2, momentum=None, dtype=np.float64)
    rng = np.random.default_rng(2)
    batches = [rng.normal(size=(5, 2)) for _ in range(4)]
    for x in batches:
        bn(x)
    np.testing.assert_allclose(bn.running_mean, np.mean([x.mean(0) for x in batches], axis=0), **TOL)
    np.testing.assert_allclose(bn.running_var, np.mean([x.var(0, ddof=1) for x in batches], axis=0), **TOL)
    assert bn.num_batches_tracked.dtype == np.int64 and bn.num_batches_tracked.shape == ()
    assert int(bn.num_batches_tracked) == 4


INSTANCE_NORMS = [(nn.InstanceNorm1d, torch.nn.InstanceNorm1d, (3, 2, 7)),
                  (nn.InstanceNorm1d, torch.nn.InstanceNorm1d, (2, 7)),
                  (nn.InstanceNorm2d, torch.nn.InstanceNorm2d, (2, 2, 4, 5)),
                  (nn.InstanceNorm2d, torch.nn.InstanceNorm2d, (2, 4, 5)),
                  (nn.InstanceNorm3d, torch.nn.InstanceNorm3d, (2, 2, 3, 2, 4)),
                  (nn.InstanceNorm3d, torch.nn.InstanceNorm3d, (2, 3, 2, 4))]
IN_OPTIONS = [dict(momentum=m, affine=a, track_running_stats=t)
              for m, a, t in itertools.product((0.1, 0.6), (False, True), (False, True))]


@pytest.mark.parametrize("case,options", list(itertools.product(INSTANCE_NORMS, IN_OPTIONS)))
def test_instance_norm_module_training_steps_then_eval(case, options):
    ck_cls, th_cls, shape = case
    channels = shape[-{nn.InstanceNorm1d: 2, nn.InstanceNorm2d: 3, nn.InstanceNorm3d: 4}[ck_cls]]
    cmod, tmod = _twins(ck_cls, th_cls, (channels,), options, seed=3)
    rng = np.random.default_rng(4)
    for _ in range(2):
        _step(cmod, tmod, rng.normal(-1.0, 2.0, shape), rng)
    cmod.eval()
    tmod.eval()
    _step(cmod, tmod, rng.normal(-1.0, 2.0, shape), rng)


LAYER_NORMS = [((4, 6), 6), ((2, 3, 4, 5), (4, 5)), ((2, 3, 4), [2, 3, 4])]
LN_OPTIONS = [dict(elementwise_affine=a, bias=b) for a, b in ((True, True), (True, False), (False, True))]


@pytest.mark.parametrize("case,options", list(itertools.product(LAYER_NORMS, LN_OPTIONS)))
def test_layer_norm_module(case, options):
    shape, normalized_shape = case
    cmod, tmod = _twins(nn.LayerNorm, torch.nn.LayerNorm, (normalized_shape,), dict(options, eps=1e-3), 5)
    assert cmod.normalized_shape == tmod.normalized_shape
    _step(cmod, tmod, np.random.default_rng(6).normal(2.0, 3.0, shape), np.random.default_rng(7))


GROUP_NORMS = [(3, 6, (4, 6)), (2, 6, (2, 6, 5)), (1, 4, (2, 4, 3, 3)), (4, 4, (2, 4, 2, 2, 3))]


@pytest.mark.parametrize("case,affine", list(itertools.product(GROUP_NORMS, (True, False))))
def test_group_norm_module(case, affine):
    groups, channels, shape = case
    cmod, tmod = _twins(nn.GroupNorm, torch.nn.GroupNorm, (groups, channels), dict(affine=affine), 8)
    _step(cmod, tmod, np.random.default_rng(9).normal(2.0, 3.0, shape), np.random.default_rng(10))


# ----------------------------------------------------------------- construction, state, repr
CONSTRUCTIONS = [
    ("BatchNorm1d", (3,), {}), ("BatchNorm2d", (4,), dict(momentum=None, affine=False)),
    ("BatchNorm3d", (2,), dict(eps=1e-3, track_running_stats=False)), ("BatchNorm2d", (3,), dict(bias=False)),
    ("InstanceNorm1d", (3,), {}), ("InstanceNorm2d", (3,), dict(affine=True, track_running_stats=True)),
    ("InstanceNorm3d", (2,), dict(affine=True, bias=False)),
    ("LayerNorm", (5,), {}), ("LayerNorm", ([4, 5],), dict(elementwise_affine=False)),
    ("LayerNorm", ((2, 3),), dict(bias=False, eps=1e-6)),
    ("GroupNorm", (2, 4), {}), ("GroupNorm", (3, 6), dict(affine=False, eps=0.01)),
]


@pytest.mark.parametrize("name,args,kwargs", CONSTRUCTIONS)
def test_defaults_state_dict_and_repr_match_torch(name, args, kwargs):
    cmod, tmod = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(cmod) == repr(tmod)
    _assert_same_state(cmod, tmod)
    for p in cmod.parameters():
        assert p.dtype == np.float32 and p.requires_grad


def test_num_batches_tracked_is_an_int64_scalar_buffer_loaded_from_torch():
    tmod = torch.nn.BatchNorm2d(3)
    tmod.num_batches_tracked.fill_(7)
    cmod = nn.BatchNorm2d(3)
    cmod.load_state_dict(tmod.state_dict())
    assert cmod.num_batches_tracked.dtype == np.int64 and int(cmod.num_batches_tracked) == 7


def test_reset_parameters_restores_initial_state():
    cmod, _ = _twins(nn.BatchNorm2d, torch.nn.BatchNorm2d, (3,), {}, seed=11)
    cmod.reset_parameters()
    fresh = nn.BatchNorm2d(3, dtype=np.float64).state_dict()
    for name, value in cmod.state_dict().items():
        np.testing.assert_array_equal(value, fresh[name])


def test_eval_mode_without_running_stats_uses_batch_statistics():
    bn = nn.BatchNorm1d(2, track_running_stats=False, dtype=np.float64).eval()
    x = np.random.default_rng(12).normal(3.0, 2.0, (6, 2))
    np.testing.assert_allclose(bn(x).data, (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5), **TOL)


def test_float32_module_against_torch():
    rng = np.random.default_rng(13)
    cmod, tmod = nn.BatchNorm2d(4), torch.nn.BatchNorm2d(4)
    err = 0.0
    for _ in range(3):
        x = rng.normal(2.0, 3.0, (8, 4, 5, 5)).astype(np.float32)
        cy, ty = cmod(x), tmod(torch.tensor(x))
        assert cy.dtype == np.float32 and cmod.running_var.dtype == np.float32
        err = max(err, float(np.max(np.abs(cy.data - ty.detach().numpy()))))
        err = max(err, float(np.max(np.abs(cmod.running_var - tmod.running_var.numpy()))))
    assert err < 1e-5, err


# ------------------------------------------------------------------------------- bad input
def test_batch_size_one_in_training_raises_and_leaves_state_alone():
    bn = nn.BatchNorm1d(3)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training") as info:
        bn(np.ones((1, 3), np.float32))
    assert "GroupNorm" in str(info.value) and "eval()" in str(info.value)
    assert int(bn.num_batches_tracked) == 0
    np.testing.assert_array_equal(bn.running_mean, 0.0)
    assert bn.eval()(np.ones((1, 3), np.float32)).shape == (1, 3)


@pytest.mark.parametrize("module,shape,message", [
    (nn.BatchNorm1d(3), (2, 3, 4, 5), "BatchNorm1d: expected 2D or 3D input (got 4D input"),
    (nn.BatchNorm2d(3), (3, 4, 5), "BatchNorm2d: expected 4D input (got 3D input"),
    (nn.BatchNorm3d(3), (2, 3, 4, 5), "BatchNorm3d: expected 5D input (got 4D input"),
    (nn.InstanceNorm1d(3), (3,), "InstanceNorm1d: expected 2D or 3D input (got 1D input"),
    (nn.InstanceNorm2d(3), (2, 2, 3, 4, 5), "InstanceNorm2d: expected 3D or 4D input (got 5D input"),
    (nn.InstanceNorm3d(3, affine=True), (2, 4, 2, 2, 2), "expected input's size at dim=1 to match num_features (3)"),
    (nn.BatchNorm2d(3, affine=False), (2, 4, 5, 5), "running_mean must have shape (4,) (one per channel"),
    (nn.GroupNorm(2, 4), (2, 6, 3), "weight must have shape (6,)"),
    (nn.LayerNorm((4, 5)), (2, 5, 4), "normalized_shape=(4, 5)"),
])
def test_module_rejects_bad_input_shapes(module, shape, message):
    with pytest.raises(ValueError) as info:
        module(np.ones(shape, np.float32))
    assert message in str(info.value)


def test_instance_norm_channel_mismatch_without_affine_warns_like_torch():
    with pytest.warns(UserWarning, match="does not match num_features"):
        nn.InstanceNorm1d(4)(np.random.default_rng(14).normal(size=(2, 3, 5)).astype(np.float32))


def test_float64_input_into_float32_module_raises_type_error():
    with pytest.raises(TypeError, match="weight has dtype float32 but input has dtype float64"):
        nn.GroupNorm(1, 3)(np.ones((2, 3, 4)))


@pytest.mark.parametrize("make,exc,message", [
    (lambda: nn.GroupNorm(4, 6), ValueError, "num_channels (6) must be divisible by num_groups (4)"),
    (lambda: nn.GroupNorm(0, 6), ValueError, "num_groups must be >= 1"),
    (lambda: nn.BatchNorm2d(0), ValueError, "num_features must be >= 1"),
    (lambda: nn.BatchNorm2d(2.5), TypeError, "num_features must be an int"),
    (lambda: nn.InstanceNorm2d(3, dtype=np.int32), TypeError, "dtype must be a floating-point dtype"),
    (lambda: nn.LayerNorm("5"), TypeError, "normalized_shape"),
    (lambda: nn.LayerNorm((4, -1)), ValueError, "normalized_shape must be >= 1"),
])
def test_constructor_rejects_bad_arguments(make, exc, message):
    with pytest.raises(exc) as info:
        make()
    assert message in str(info.value)
