"""Functional normalisation (batch, instance, layer, group) against PyTorch, finite differences and bad input."""

from __future__ import annotations

import itertools
import zlib

import numpy as np
import pytest
from oracle import compare, raises_like_torch, torch

import convkit
import convkit.functional as F
from convkit.testing.gradcheck import gradcheck

TF = torch.nn.functional
AFFINE = ("weight+bias", "weight", "bias", "none")


def _params(rng, shape, affine, dtype=np.float64):
    """Random gamma/beta of ``shape`` as present per ``affine`` (None where absent)."""
    w = rng.uniform(0.5, 1.5, shape).astype(dtype) if affine in ("weight+bias", "weight") else None
    b = rng.normal(0.0, 1.0, shape).astype(dtype) if affine in ("weight+bias", "bias") else None
    return w, b


def _inputs(x, w, b):
    """The differentiable inputs for ``compare`` (absent parameters left out)."""
    return [a for a in (x, w, b) if a is not None]


def _unpack(args, w, b):
    """Split ``compare``'s arguments back into ``(x, weight, bias)`` with None where absent."""
    it = iter(args)
    x = next(it)
    return x, (next(it) if w is not None else None), (next(it) if b is not None else None)


def _rng(*key) -> np.random.Generator:
    """A generator seeded from the test case (stable across runs, unlike ``hash``)."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def _data(rng, shape, dtype=np.float64):
    """Input with a non-zero mean and a non-unit scale per call."""
    return (rng.normal(rng.uniform(-2, 2), rng.uniform(0.5, 3), shape)).astype(dtype)


# ----------------------------------------------------------------------------- batch norm
BN_SHAPES = [(5, 3), (4, 3, 7), (3, 2, 4, 5), (2, 3, 3, 2, 4)]
BN_MODES = ("train", "train_no_buffers", "eval")


@pytest.mark.parametrize("shape,affine,mode", list(itertools.product(BN_SHAPES, AFFINE, BN_MODES)))
def test_batch_norm_matches_torch(shape, affine, mode):
    rng = _rng((shape, affine, mode))
    c = shape[1]
    x = _data(rng, shape)
    w, b = _params(rng, (c,), affine)
    momentum, eps = float(rng.uniform(0.05, 0.9)), float(rng.choice([1e-5, 1e-3, 0.5]))
    rm0, rv0 = rng.normal(size=c), rng.uniform(0.5, 2.0, c)
    rm, rv = (None, None) if mode == "train_no_buffers" else (rm0.copy(), rv0.copy())
    trm, trv = (None, None) if mode == "train_no_buffers" else (torch.tensor(rm0), torch.tensor(rv0))
    training = mode != "eval"

    def ck(*args):
        xx, ww, bb = _unpack(args, w, b)
        return F.batch_norm(xx, rm, rv, ww, bb, training=training, momentum=momentum, eps=eps)

    def th(*args):
        xx, ww, bb = _unpack(args, w, b)
        return TF.batch_norm(xx, trm, trv, ww, bb, training=training, momentum=momentum, eps=eps)

    compare(ck, th, _inputs(x, w, b))
    if rm is not None:
        np.testing.assert_allclose(rm, trm.numpy(), atol=1e-12, rtol=1e-12)
        np.testing.assert_allclose(rv, trv.numpy(), atol=1e-12, rtol=1e-12)
    if mode == "eval":
        np.testing.assert_array_equal(rm, rm0)
        np.testing.assert_array_equal(rv, rv0)


def test_batch_norm_running_var_is_unbiased_and_momentum_is_torch_convention():
    # One step on [1, 2, 3, 4]: batch mean 2.5, biased var 1.25, unbiased 5/3.
    rm, rv = np.zeros(1), np.ones(1)
    x = np.array([[1.0], [2.0], [3.0], [4.0]])
    y = F.batch_norm(x, rm, rv, training=True, momentum=0.1, eps=1e-12)
    np.testing.assert_allclose(rm, [0.25])
    np.testing.assert_allclose(rv, [0.9 + 0.1 * 5 / 3])
    np.testing.assert_allclose(y.data[:, 0], (x[:, 0] - 2.5) / np.sqrt(1.25), rtol=1e-9)


def test_batch_norm_gradients_of_selected_inputs_only():
    rng = np.random.default_rng(1)
    x, w, b = _data(rng, (4, 3, 5)), rng.uniform(0.5, 1.5, 3), rng.normal(size=3)
    for grad_inputs in ([0], [1], [2], [1, 2]):
        compare(lambda xx, ww, bb: F.batch_norm(xx, None, None, ww, bb, training=True),
                lambda xx, ww, bb: TF.batch_norm(xx, None, None, ww, bb, training=True),
                [x, w, b], grad_inputs=grad_inputs)


# -------------------------------------------------------------------------- instance norm
IN_SHAPES = [(3, 2, 7), (2, 3, 4, 5), (2, 2, 3, 2, 4), (1, 3, 6)]
IN_MODES = ("input_stats", "input_stats_with_buffers", "running_stats")


@pytest.mark.parametrize("shape,affine,mode", list(itertools.product(IN_SHAPES, AFFINE, IN_MODES)))
def test_instance_norm_matches_torch(shape, affine, mode):
    rng = _rng((shape, affine, mode))
    c = shape[1]
    x = _data(rng, shape)
    w, b = _params(rng, (c,), affine)
    momentum, eps = float(rng.uniform(0.05, 0.9)), float(rng.choice([1e-5, 1e-3, 0.5]))
    rm0, rv0 = rng.normal(size=c), rng.uniform(0.5, 2.0, c)
    rm, rv = (None, None) if mode == "input_stats" else (rm0.copy(), rv0.copy())
    trm, trv = (None, None) if mode == "input_stats" else (torch.tensor(rm0), torch.tensor(rv0))
    use_input_stats = mode != "running_stats"

    def ck(*args):
        xx, ww, bb = _unpack(args, w, b)
        return F.instance_norm(xx, rm, rv, ww, bb, use_input_stats=use_input_stats,
                               momentum=momentum, eps=eps)

    def th(*args):
        xx, ww, bb = _unpack(args, w, b)
        return TF.instance_norm(xx, trm, trv, ww, bb, use_input_stats=use_input_stats,
                                momentum=momentum, eps=eps)

    compare(ck, th, _inputs(x, w, b))
    if rm is not None:
        np.testing.assert_allclose(rm, trm.numpy(), atol=1e-12, rtol=1e-12)
        np.testing.assert_allclose(rv, trv.numpy(), atol=1e-12, rtol=1e-12)


# ----------------------------------------------------------------------------- layer norm
LN_CASES = [((7,), 7), ((4, 5), (5,)), ((3, 4, 5), [4, 5]), ((2, 3, 4, 5), (3, 4, 5)),
            ((2, 3, 4), (2, 3, 4)), ((2, 1, 3, 2, 3), (3, 2, 3))]


@pytest.mark.parametrize("case,affine", list(itertools.product(LN_CASES, AFFINE)))
def test_layer_norm_matches_torch(case, affine):
    shape, normalized_shape = case
    rng = _rng((shape, affine))
    x = _data(rng, shape)
    nshape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    w, b = _params(rng, nshape, affine)
    eps = float(rng.choice([1e-5, 1e-3, 0.5]))

    def ck(*args):
        xx, ww, bb = _unpack(args, w, b)
        return F.layer_norm(xx, normalized_shape, ww, bb, eps=eps)

    def th(*args):
        xx, ww, bb = _unpack(args, w, b)
        return TF.layer_norm(xx, nshape, ww, bb, eps=eps)

    compare(ck, th, _inputs(x, w, b))


# ----------------------------------------------------------------------------- group norm
GN_CASES = [((4, 6), 3), ((2, 6, 5), 2), ((3, 6, 4, 3), 3), ((2, 4, 3, 2, 2), 1), ((2, 4, 5), 4),
            ((1, 6, 2, 2), 6)]


@pytest.mark.parametrize("case,affine", list(itertools.product(GN_CASES, AFFINE)))
def test_group_norm_matches_torch(case, affine):
    shape, groups = case
    rng = _rng((shape, groups, affine))
    x = _data(rng, shape)
    w, b = _params(rng, (shape[1],), affine)
    eps = float(rng.choice([1e-5, 1e-3, 0.5]))

    def ck(*args):
        xx, ww, bb = _unpack(args, w, b)
        return F.group_norm(xx, groups, ww, bb, eps=eps)

    def th(*args):
        xx, ww, bb = _unpack(args, w, b)
        if ww is None and bb is not None:  # torch 2.13's backward fails on bias without weight
            ww = torch.ones(shape[1], dtype=torch.float64)
        return TF.group_norm(xx, groups, ww, bb, eps=eps)

    compare(ck, th, _inputs(x, w, b))


def test_group_norm_extremes_equal_layer_and_instance_norm():
    rng = np.random.default_rng(2)
    x = _data(rng, (2, 4, 3, 3))
    np.testing.assert_allclose(F.group_norm(x, 1).data, F.layer_norm(x, (4, 3, 3)).data, atol=1e-12)
    np.testing.assert_allclose(F.group_norm(x, 4).data, F.instance_norm(x).data, atol=1e-12)


# ------------------------------------------------------------------------ finite differences
def _rng_params(seed, c):
    rng = np.random.default_rng(seed)
    return rng, rng.uniform(0.5, 1.5, c), rng.normal(size=c)


GRADCHECK_CASES = {
    "batch_norm_train": ((3, 2, 2), lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True)),
    "batch_norm_eval": ((3, 2, 2), lambda x, w, b: F.batch_norm(
        x, np.array([0.3, -0.2]), np.array([0.8, 1.7]), w, b, training=False)),
    "instance_norm": ((2, 2, 3), lambda x, w, b: F.instance_norm(x, weight=w, bias=b)),
    "instance_norm_running": ((2, 2, 3), lambda x, w, b: F.instance_norm(
        x, np.array([0.3, -0.2]), np.array([0.8, 1.7]), w, b, use_input_stats=False)),
    "group_norm": ((2, 2, 3), lambda x, w, b: F.group_norm(x, 1, w, b)),
}


@pytest.mark.parametrize("name", sorted(GRADCHECK_CASES))
def test_gradcheck(name):
    shape, fn = GRADCHECK_CASES[name]
    rng, w, b = _rng_params(3, shape[1])
    gradcheck(fn, [_data(rng, shape), w, b])


def test_gradcheck_layer_norm():
    rng = np.random.default_rng(4)
    gradcheck(lambda x, w, b: F.layer_norm(x, (2, 3), w, b),
              [_data(rng, (2, 2, 3)), rng.uniform(0.5, 1.5, (2, 3)), rng.normal(size=(2, 3))])


# ----------------------------------------------------------------------------------- float32
def _float32_error(ck_fn, th_fn, inputs) -> float:
    """Largest |convkit - torch| over the output and every input gradient, all in float32."""
    rng = np.random.default_rng(0)
    ck_in = [convkit.tensor(a, requires_grad=True) for a in inputs]
    th_in = [torch.tensor(a, requires_grad=True) for a in inputs]
    ck_out, th_out = ck_fn(*ck_in), th_fn(*th_in)
    assert ck_out.dtype == np.float32
    cot = rng.standard_normal(ck_out.shape).astype(np.float32)
    ck_out.backward(cot)
    th_out.backward(torch.tensor(cot))
    pairs = [(ck_out.data, th_out.detach().numpy())] + [(c.grad, t.grad.numpy()) for c, t in zip(ck_in, th_in)]
    for c, _ in pairs:
        assert c.dtype == np.float32
    return max(float(np.max(np.abs(c - t))) for c, t in pairs)


FLOAT32_FAMILIES = {
    "batch_norm": (1, lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                   lambda x, w, b: TF.batch_norm(x, None, None, w, b, training=True)),
    "instance_norm": (1, lambda x, w, b: F.instance_norm(x, weight=w, bias=b),
                      lambda x, w, b: TF.instance_norm(x, weight=w, bias=b)),
    "group_norm": (1, lambda x, w, b: F.group_norm(x, 4, w, b),
                   lambda x, w, b: TF.group_norm(x, 4, w, b)),
    "layer_norm": (None, lambda x, w, b: F.layer_norm(x, (8, 6, 6), w, b),
                   lambda x, w, b: TF.layer_norm(x, (8, 6, 6), w, b)),
}


@pytest.mark.parametrize("family", sorted(FLOAT32_FAMILIES))
def test_float32_close_to_torch(family):
    param_axis, ck_fn, th_fn = FLOAT32_FAMILIES[family]
    rng = np.random.default_rng(5)
    x = rng.normal(3.0, 2.0, (16, 8, 6, 6)).astype(np.float32)
    pshape = (8,) if param_axis == 1 else (8, 6, 6)
    w = rng.uniform(0.5, 1.5, pshape).astype(np.float32)
    b = rng.normal(size=pshape).astype(np.float32)
    err = _float32_error(ck_fn, th_fn, [x, w, b])
    # Largest errors seen: 7e-7 (outputs, input grads), 1.1e-5 (dgamma, a sum of 576 products, |dgamma| ~ 35).
    assert err < 1e-4, f"{family}: float32 max abs error {err:.3e}"


def test_float32_running_stats_stay_float32():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(4, 3, 5)).astype(np.float32)
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    y = F.batch_norm(x, rm, rv, training=True)
    trm, trv = torch.zeros(3), torch.ones(3)
    TF.batch_norm(torch.tensor(x), trm, trv, training=True)
    assert y.dtype == rm.dtype == rv.dtype == np.float32
    np.testing.assert_allclose(rm, trm.numpy(), atol=1e-6)
    np.testing.assert_allclose(rv, trv.numpy(), atol=1e-6)


# ------------------------------------------------------------------------------ edge cases
def test_nan_propagates_per_normalisation_set():
    x = np.random.default_rng(7).normal(size=(4, 3, 5))
    x[1, 0, 2] = np.nan
    y = F.batch_norm(x, None, None, training=True).data
    assert np.isnan(y[:, 0]).all() and np.isfinite(y[:, 1:]).all()
    y = F.instance_norm(x).data
    assert np.isnan(y[1, 0]).all() and np.isfinite(y[0]).all()


def test_integer_input_becomes_default_float():
    y = F.layer_norm(np.arange(6).reshape(2, 3), 3)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.data[0], [-1.2247356, 0.0, 1.2247356], rtol=1e-5)


def test_running_stats_in_a_tensor_are_updated_in_place():
    rm = convkit.tensor(np.zeros(2))
    F.batch_norm(np.array([[1.0, 2.0], [3.0, 6.0]]), rm, np.ones(2), training=True)
    np.testing.assert_allclose(rm.data, [0.2, 0.4])


# ------------------------------------------------------------------------------- bad input
X64 = np.random.default_rng(8).normal(size=(4, 3, 5))
ONE, ONES3 = np.ones(1), np.ones(3)
T64 = torch.tensor(X64)


def _bad(name, ck, th, substrings):
    return pytest.param(ck, th, substrings, id=name)


BAD_CALLS = [
    _bad("bn_batch_size_1", lambda: F.batch_norm(np.ones((1, 3)), None, None, training=True),
         lambda: TF.batch_norm(torch.ones(1, 3), None, None, training=True),
         ["Expected more than 1 value per channel when training", "(1, 3)", "GroupNorm", "eval()"]),
    _bad("bn_one_value_per_channel_spatial",
         lambda: F.batch_norm(np.ones((1, 3, 1, 1)), None, None, training=True),
         lambda: TF.batch_norm(torch.ones(1, 3, 1, 1), None, None, training=True),
         ["more than 1 value per channel"]),
    _bad("bn_eval_without_buffers", lambda: F.batch_norm(X64, None, None),
         lambda: TF.batch_norm(T64, None, None), ["running_mean", "training=False"]),
    _bad("bn_weight_shape", lambda: F.batch_norm(X64, None, None, np.ones(4), training=True),
         lambda: TF.batch_norm(T64, None, None, torch.ones(4, dtype=torch.float64), training=True),
         ["weight", "(3,)", "(4,)"]),
    _bad("bn_bias_shape", lambda: F.batch_norm(X64, ONES3, ONES3, bias=np.ones(4)),
         lambda: TF.batch_norm(T64, torch.tensor(ONES3), torch.tensor(ONES3),
                               bias=torch.ones(4, dtype=torch.float64)), ["bias", "(4,)"]),
    _bad("bn_running_mean_shape", lambda: F.batch_norm(X64, np.zeros(4), ONES3, training=True),
         lambda: TF.batch_norm(T64, torch.zeros(4, dtype=torch.float64), torch.tensor(ONES3),
                               training=True), ["running_mean", "(4,)"]),
    _bad("bn_running_var_dtype", lambda: F.batch_norm(X64, np.zeros(3), np.ones(3, np.float32)),
         lambda: TF.batch_norm(T64, torch.zeros(3, dtype=torch.float64), torch.ones(3)),
         ["running_var", "float32", "float64"]),
    _bad("bn_weight_dtype", lambda: F.batch_norm(X64, None, None, np.ones(3, np.float32), training=True),
         lambda: TF.batch_norm(T64, None, None, torch.ones(3), training=True),
         ["weight", "float32", "float64"]),
    _bad("bn_input_1d", lambda: F.batch_norm(ONES3, None, None, training=True),
         lambda: TF.batch_norm(torch.ones(3), None, None, training=True), ["input", "(3,)"]),
    _bad("bn_momentum_none", lambda: F.batch_norm(X64, None, None, training=True, momentum=None),
         lambda: TF.batch_norm(T64, None, None, training=True, momentum=None), ["momentum"]),
    _bad("bn_eps_zero_training", lambda: F.batch_norm(X64, None, None, training=True, eps=0.0),
         lambda: TF.batch_norm(T64, None, None, training=True, eps=0.0), ["eps", "> 0"]),
    _bad("bn_eps_negative", lambda: F.batch_norm(X64, np.zeros(3), ONES3, eps=-1e-3),
         lambda: TF.batch_norm(T64, torch.zeros(3, dtype=torch.float64), torch.tensor(ONES3), eps=-1e-3),
         ["eps", ">= 0"]),
    _bad("bn_running_mean_list", lambda: F.batch_norm(X64, [0.0, 0.0, 0.0], ONES3),
         lambda: TF.batch_norm(T64, [0.0, 0.0, 0.0], torch.tensor(ONES3)), ["running_mean", "list"]),
    _bad("in_one_spatial_element", lambda: F.instance_norm(np.ones((4, 3, 1))),
         lambda: TF.instance_norm(torch.ones(4, 3, 1)),
         ["Expected more than 1 spatial element", "(4, 3, 1)"]),
    _bad("in_no_spatial_axis", lambda: F.instance_norm(np.ones((4, 3))),
         lambda: TF.instance_norm(torch.ones(4, 3)), ["spatial element"]),
    _bad("in_running_stats_missing", lambda: F.instance_norm(X64, use_input_stats=False),
         lambda: TF.instance_norm(T64, use_input_stats=False), ["running_mean", "use_input_stats"]),
    _bad("in_weight_shape", lambda: F.instance_norm(X64, weight=np.ones(2)),
         lambda: TF.instance_norm(T64, weight=torch.ones(2, dtype=torch.float64)), ["weight", "(2,)"]),
    _bad("ln_shape_mismatch", lambda: F.layer_norm(X64, (4,)), lambda: TF.layer_norm(T64, (4,)),
         ["normalized_shape=(4,)", "(4, 3, 5)"]),
    _bad("ln_longer_than_input", lambda: F.layer_norm(ONES3, (1, 3)),
         lambda: TF.layer_norm(torch.ones(3), (1, 3)), ["normalized_shape"]),
    _bad("ln_weight_shape", lambda: F.layer_norm(X64, (5,), np.ones(4)),
         lambda: TF.layer_norm(T64, (5,), torch.ones(4, dtype=torch.float64)), ["weight", "(5,)", "(4,)"]),
    _bad("ln_bias_dtype", lambda: F.layer_norm(X64, (5,), None, np.ones(5, np.float32)),
         lambda: TF.layer_norm(T64, (5,), None, torch.ones(5)), ["bias", "float32", "float64"]),
    _bad("ln_normalized_shape_type", lambda: F.layer_norm(X64, "5"), lambda: TF.layer_norm(T64, "5"),
         ["normalized_shape", "'5'"]),
    _bad("gn_not_divisible", lambda: F.group_norm(X64, 2), lambda: TF.group_norm(T64, 2),
         ["divisible by num_groups", "num_groups=2"]),
    _bad("gn_zero_groups", lambda: F.group_norm(X64, 0), lambda: TF.group_norm(T64, 0), ["num_groups"]),
    _bad("gn_groups_float", lambda: F.group_norm(X64, 1.5), lambda: TF.group_norm(T64, 1.5), ["num_groups"]),
    _bad("gn_input_1d", lambda: F.group_norm(ONES3, 1), lambda: TF.group_norm(torch.ones(3), 1),
         ["input", "at least 2"]),
    _bad("gn_weight_shape", lambda: F.group_norm(X64, 3, np.ones(6)),
         lambda: TF.group_norm(T64, 3, torch.ones(6, dtype=torch.float64)), ["weight", "(3,)"]),
]


@pytest.mark.parametrize("ck,th,substrings", BAD_CALLS)
def test_bad_input_raises_with_clear_message(ck, th, substrings):
    message = raises_like_torch(ck, th)
    for s in substrings:
        assert s in message, f"{s!r} not in {message!r}"


def test_failed_batch_norm_leaves_running_stats_unchanged():
    rm, rv = np.zeros(3), np.ones(3)
    with pytest.raises(ValueError, match="weight"):
        F.batch_norm(X64, rm, rv, np.ones(2), training=True)
    np.testing.assert_array_equal(rm, 0.0)
    np.testing.assert_array_equal(rv, 1.0)


def test_weight_of_wrong_type_raises_type_error():
    with pytest.raises(TypeError, match="weight must be a Tensor or ndarray"):
        F.group_norm(X64, 3, weight="ones")
