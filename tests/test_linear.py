"""``F.linear`` and ``nn.Linear`` against PyTorch, finite differences, initialisation and bad input."""

import math

import numpy as np
import pytest
from oracle import compare, raises_like_torch, torch

import convkit
import convkit.functional as F
import convkit.nn as nn
from convkit.testing.gradcheck import gradcheck

TF = torch.nn.functional
rng = np.random.default_rng(7)


@pytest.mark.parametrize("lead", [(), (5,), (2, 3), (2, 1, 3), (0,)])
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("features", [(6, 4), (1, 3), (5, 1)])
def test_linear_matches_torch(lead, with_bias, features):
    fin, fout = features
    x = rng.standard_normal(lead + (fin,))
    w = rng.standard_normal((fout, fin))
    if with_bias:
        compare(F.linear, TF.linear, [x, w, rng.standard_normal(fout)])
    else:
        compare(F.linear, TF.linear, [x, w])


def test_gradcheck_linear():
    x = rng.standard_normal((2, 3, 4))
    gradcheck(F.linear, [x, rng.standard_normal((2, 4)), rng.standard_normal(2)])
    gradcheck(lambda a, b: F.linear(a, b), [x[0, 0], rng.standard_normal((3, 4))])


# ------------------------------------------------------------------- module
def test_linear_module_init_is_torchs_default():
    convkit.manual_seed(0)
    layer = nn.Linear(50, 400)
    bound = 1 / math.sqrt(50)
    for p in (layer.weight, layer.bias):
        assert p.dtype == np.float32 and p.requires_grad
        assert np.abs(p.numpy()).max() <= bound
    # U(-b, b): variance b^2 / 3 on 20,000 draws
    assert abs(layer.weight.numpy().var() - bound ** 2 / 3) < 0.05 * bound ** 2 / 3
    assert layer.weight.shape == (400, 50) and layer.bias.shape == (400,)


def test_linear_module_is_reproducible_under_manual_seed():
    convkit.manual_seed(4)
    a = nn.Linear(3, 2).state_dict()
    convkit.manual_seed(4)
    b = nn.Linear(3, 2).state_dict()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


@pytest.mark.parametrize("bias", [True, False])
def test_linear_module_with_torch_weights(bias):
    theirs = torch.nn.Linear(6, 3, bias=bias, dtype=torch.float64)
    ours = nn.Linear(6, 3, bias=bias, dtype=np.float64)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = rng.standard_normal((4, 5, 6))  # 3-D input: (batch, sequence, features)
    compare(lambda a: ours(a), lambda a: theirs(a), [x])
    g_ours, g_theirs = dict(ours.named_parameters()), dict(theirs.named_parameters())
    for name, p in g_theirs.items():
        np.testing.assert_allclose(g_ours[name].grad, p.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


def test_linear_module_float32_default_and_float32_output():
    layer = nn.Linear(4, 2)
    y = layer(rng.standard_normal((3, 4)).astype(np.float32))
    assert layer.weight.dtype == np.float32 and y.dtype == np.float32


# ---------------------------------------------------------------- bad input
def test_bad_shapes():
    x, w, b = np.zeros((3, 5)), np.zeros((2, 4)), np.zeros(2)
    msg = raises_like_torch(lambda: F.linear(x, w, b),
                            lambda: TF.linear(torch.tensor(x), torch.tensor(w), torch.tensor(b)))
    assert "input has 5 features" in msg and "(3, 5)" in msg and "weight expects 4" in msg and "(2, 4)" in msg
    msg = raises_like_torch(lambda: F.linear(np.zeros((3, 4)), w, np.zeros(3)),
                            lambda: TF.linear(torch.zeros(3, 4), torch.tensor(w), torch.zeros(3)))
    assert "bias must have shape" in msg and "(3,)" in msg
    with pytest.raises(ValueError, match=r"weight must be 2-D .* got shape \(2, 4, 1\)"):
        F.linear(np.zeros((3, 4)), np.zeros((2, 4, 1)))
    with pytest.raises(ValueError, match=r"input has no features .* shape \(\)"):
        F.linear(np.zeros(()), w)


def test_mixed_float_dtypes_raise_type_error_naming_both():
    x32, w64 = np.zeros((3, 4), np.float32), np.zeros((2, 4))
    msg = raises_like_torch(lambda: F.linear(x32, w64), lambda: TF.linear(torch.tensor(x32), torch.tensor(w64)),
                            ck_exc=TypeError)
    assert "weight has dtype float64" in msg and "input has dtype float32" in msg
    with pytest.raises(TypeError, match="bias has dtype float64 but input has dtype float32"):
        F.linear(x32, w64.astype(np.float32), np.zeros(2))


def test_bad_module_arguments():
    with pytest.raises(ValueError, match="in_features must be a positive int, got 0"):
        nn.Linear(0, 3)
    with pytest.raises(ValueError, match="out_features must be a positive int, got 2.5"):
        nn.Linear(3, 2.5)
    with pytest.raises(TypeError, match="dtype must be a floating-point dtype, got int64"):
        nn.Linear(3, 2, dtype=np.int64)


# ------------------------------------------------------------------ float32
def test_float32_matches_torch():
    x = rng.standard_normal((16, 7, 32)).astype(np.float32)
    w = rng.standard_normal((24, 32)).astype(np.float32)
    b = rng.standard_normal(24).astype(np.float32)
    out = compare(F.linear, TF.linear, [x, w, b], atol=2e-5, rtol=1e-5)
    assert out.dtype == np.float32
