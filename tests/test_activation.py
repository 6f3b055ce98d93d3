"""Activations, softmax, dropout and flatten against PyTorch, finite differences and bad input."""

import warnings

import numpy as np
import pytest
from oracle import compare, raises_like_torch, torch

import convkit
import convkit.functional as F
import convkit.nn as nn
from convkit.testing.gradcheck import gradcheck

TF = torch.nn.functional
rng = np.random.default_rng(20240611)

ELEMENTWISE = [
    ("relu", F.relu, TF.relu),
    ("sigmoid", F.sigmoid, torch.sigmoid),
    ("tanh", F.tanh, torch.tanh),
    ("leaky_relu_default", F.leaky_relu, TF.leaky_relu),
    ("leaky_relu_0.2", lambda x: F.leaky_relu(x, 0.2), lambda x: TF.leaky_relu(x, 0.2)),
    ("leaky_relu_negative", lambda x: F.leaky_relu(x, -0.5), lambda x: TF.leaky_relu(x, -0.5)),
    ("leaky_relu_steep", lambda x: F.leaky_relu(x, 1.5), lambda x: TF.leaky_relu(x, 1.5)),
]


def mixed_values(shape):
    """Normal values plus exact zeros (the kinks) and large magnitudes (sigmoid's tails)."""
    x = rng.standard_normal(shape) * 3
    flat = x.reshape(-1)
    flat[::7] = 0.0
    flat[1::11] = 40.0
    flat[2::13] = -750.0
    return x


@pytest.mark.parametrize("shape", [(17,), (3, 5), (2, 3, 4, 5)])
@pytest.mark.parametrize("name,ck,th", ELEMENTWISE, ids=[e[0] for e in ELEMENTWISE])
def test_elementwise_match_torch(name, ck, th, shape):
    """Forward and gradient, including the kink conventions at exactly 0 (relu' = 0, leaky' = slope)."""
    compare(ck, th, [mixed_values(shape)])


def test_kink_gradients_are_torchs():
    x = convkit.tensor(np.zeros(2), requires_grad=True)
    F.relu(x).sum().backward()
    assert x.grad.tolist() == [0.0, 0.0]
    x.zero_grad()
    F.leaky_relu(x, 0.3).sum().backward()
    assert x.grad.tolist() == [0.3, 0.3]


def test_sigmoid_is_stable_without_warnings():
    x = np.array([-1e4, -800.0, -40.0, 0.0, 40.0, 800.0, 1e4])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = F.sigmoid(x).numpy()
    np.testing.assert_array_equal(y, torch.sigmoid(torch.tensor(x)).numpy())


SHAPES_DIMS = [((7,), 0), ((7,), -1), ((4, 6), 0), ((4, 6), 1), ((4, 6), -2),
               ((2, 3, 4, 5), 0), ((2, 3, 4, 5), 1), ((2, 3, 4, 5), 2), ((2, 3, 4, 5), 3), ((2, 3, 4, 5), -1)]


@pytest.mark.parametrize("shape,dim", SHAPES_DIMS)
@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_over_each_dim_matches_torch(fn, shape, dim):
    x = rng.standard_normal(shape) * 4
    compare(lambda a: getattr(F, fn)(a, dim), lambda a: getattr(TF, fn)(a, dim), [x])
    compare(lambda a: getattr(F, fn)(a, dim=dim), lambda a: getattr(TF, fn)(a, dim=dim), [x * 2500])  # |x| ~ 1e4


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_of_a_scalar_is_torchs(fn):
    compare(lambda a: getattr(F, fn)(a, 0), lambda a: getattr(TF, fn)(a, 0), [np.array(2.5)])


def test_nan_propagates():
    x = np.array([[1.0, np.nan, 2.0], [0.5, 0.1, -1.0]])
    for ck, th in [(F.relu, TF.relu), (F.sigmoid, torch.sigmoid), (F.tanh, torch.tanh),
                   (F.leaky_relu, TF.leaky_relu), (lambda a: F.softmax(a, 1), lambda a: TF.softmax(a, 1)),
                   (lambda a: F.log_softmax(a, 1), lambda a: TF.log_softmax(a, 1))]:
        np.testing.assert_allclose(ck(x).numpy(), th(torch.tensor(x)).numpy(), rtol=1e-12)


def seeded_dropout(x, p):
    """Dropout with the same mask on every call (finite differences call it repeatedly)."""
    convkit.manual_seed(5)
    return F.dropout(x, p)


@pytest.mark.parametrize("name,f,x", [
    ("relu", F.relu, [[0.3, -1.2], [2.0, -0.4]]),
    ("leaky_relu", lambda t: F.leaky_relu(t, -0.3), [[0.3, -1.2], [2.0, -0.4]]),
    ("sigmoid", F.sigmoid, [[0.3, -1.2], [2.0, -4.0]]),
    ("tanh", F.tanh, [[0.3, -1.2], [2.0, -0.4]]),
    ("softmax", lambda t: F.softmax(t, 0), [[0.3, -1.2, 0.5], [2.0, -0.4, 0.1]]),
    ("log_softmax", lambda t: F.log_softmax(t, -1), [[0.3, -1.2, 0.5], [2.0, -0.4, 0.1]]),
    ("flatten", lambda t: F.flatten(t, 0, 1), [[0.3, -1.2, 0.5], [2.0, -0.4, 0.1]]),
    ("dropout", lambda t: seeded_dropout(t, 0.4), [[0.3, -1.2, 0.5], [2.0, -0.4, 0.1]]),
])
def test_gradcheck(name, f, x):
    gradcheck(f, [np.array(x)])


FLATTEN_CASES = [((2, 3, 4, 5), 0, -1), ((2, 3, 4, 5), 1, -1), ((2, 3, 4, 5), 1, 2), ((2, 3, 4, 5), -3, -2),
                 ((2, 3, 4, 5), 2, 2), ((2, 0, 4), 1, 2), ((6,), 0, 0), ((), 0, -1)]


@pytest.mark.parametrize("shape,start,end", FLATTEN_CASES)
def test_flatten_matches_torch(shape, start, end):
    compare(lambda a: F.flatten(a, start, end), lambda a: torch.flatten(a, start, end),
            [rng.standard_normal(shape)])


# ------------------------------------------------------------------- dropout
@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_drops_a_fraction_p_and_scales_the_rest(p):
    convkit.manual_seed(11)
    x = convkit.tensor(rng.uniform(1.0, 2.0, size=(100, 1000)).astype(np.float32), requires_grad=True)
    y = F.dropout(x, p)
    kept = y.numpy() != 0
    n = kept.size
    assert abs((1 - kept.mean()) - p) < 5 * np.sqrt(p * (1 - p) / n)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.numpy()[kept], x.numpy()[kept] / (1 - p), rtol=1e-6)
    g = rng.standard_normal(x.shape).astype(np.float32)
    y.backward(g)
    np.testing.assert_allclose(x.grad, np.where(kept, g / np.float32(1 - p), 0), rtol=1e-6)


def test_dropout_is_reproducible_under_manual_seed():
    x = np.ones((8, 9))
    convkit.manual_seed(3)
    a = F.dropout(x, 0.5).numpy()
    convkit.manual_seed(3)
    b = F.dropout(x, 0.5).numpy()
    c = F.dropout(x, 0.5).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(b, c)


def test_dropout_identity_cases_and_p_one():
    x = convkit.tensor(rng.standard_normal((4, 5)), requires_grad=True)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    y = F.dropout(x, 1.0)
    assert not y.numpy().any()
    y.backward(np.ones((4, 5)))
    assert not x.grad.any()


def test_dropout_module_uses_training_flag():
    convkit.manual_seed(0)
    layer = nn.Dropout(0.5)
    x = np.ones((50, 50))
    assert (layer(x).numpy() == 0).any()
    layer.eval()
    np.testing.assert_array_equal(layer(x).numpy(), x)


# ------------------------------------------------------------------ modules
def test_modules_match_torch_and_repr():
    pairs = [(nn.ReLU(), torch.nn.ReLU()), (nn.LeakyReLU(), torch.nn.LeakyReLU()),
             (nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)), (nn.Sigmoid(), torch.nn.Sigmoid()),
             (nn.Tanh(), torch.nn.Tanh()), (nn.Softmax(1), torch.nn.Softmax(1)),
             (nn.LogSoftmax(dim=-1), torch.nn.LogSoftmax(dim=-1)), (nn.Flatten(), torch.nn.Flatten()),
             (nn.Flatten(0, 2), torch.nn.Flatten(0, 2)), (nn.Identity(3, k=1), torch.nn.Identity(3, k=1))]
    x = rng.standard_normal((2, 3, 4, 5))
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)
        compare(ours, theirs, [x])
    assert repr(nn.Dropout(0.3)) == repr(torch.nn.Dropout(0.3))
    for ours, theirs in [(nn.ReLU(inplace=True), torch.nn.ReLU(inplace=True)),
                         (nn.LeakyReLU(0.2, inplace=True), torch.nn.LeakyReLU(0.2, inplace=True)),
                         (nn.Dropout(0.1, inplace=True), torch.nn.Dropout(0.1, inplace=True))]:
        assert repr(ours) == repr(theirs)


def test_identity_returns_its_input():
    x = convkit.tensor([1.0, 2.0])
    assert nn.Identity()(x) is x


# ---------------------------------------------------------------- bad input
def test_bad_dims():
    x = np.zeros((2, 3))
    msg = raises_like_torch(lambda: F.softmax(x, 2), lambda: TF.softmax(torch.tensor(x), 2))
    assert "dim=2" in msg and "-2 to 1" in msg
    msg = raises_like_torch(lambda: F.log_softmax(x, -3), lambda: TF.log_softmax(torch.tensor(x), -3))
    assert "dim=-3" in msg
    with pytest.raises(TypeError, match="dim must be an int"):
        F.softmax(x, 1.0)
    msg = raises_like_torch(lambda: F.flatten(x, 1, 0), lambda: torch.flatten(torch.tensor(x), 1, 0))
    assert "start_dim=1" in msg and "end_dim=0" in msg
    with pytest.raises(ValueError, match="end_dim=5"):
        F.flatten(x, 0, 5)


def test_bad_dropout_and_slope_and_input_type():
    x = np.zeros(3)
    for p in (-0.1, 1.5):
        msg = raises_like_torch(lambda: F.dropout(x, p), lambda: TF.dropout(torch.tensor(x), p))
        assert "p must be a probability" in msg and repr(p) in msg
    with pytest.raises(ValueError, match=r"Dropout: p must be .* got 2"):
        nn.Dropout(2)
    with pytest.raises(TypeError, match="negative_slope must be a real number"):
        F.leaky_relu(x, "0.1")
    with pytest.raises(TypeError, match="relu: input must be a Tensor or ndarray, got str"):
        F.relu("x")


def test_integer_input_becomes_default_float():
    y = F.sigmoid(np.array([0, 1]))
    assert y.dtype == convkit.get_default_dtype()


# ------------------------------------------------------------------ float32
F32_TOL = dict(atol=2e-6, rtol=1e-5)


@pytest.mark.parametrize("name,ck,th", ELEMENTWISE + [
    ("softmax", lambda a: F.softmax(a, 1), lambda a: TF.softmax(a, 1)),
    ("log_softmax", lambda a: F.log_softmax(a, 1), lambda a: TF.log_softmax(a, 1)),
], ids=[e[0] for e in ELEMENTWISE] + ["softmax", "log_softmax"])
def test_float32_matches_torch(name, ck, th):
    x = (rng.standard_normal((8, 10, 6)) * 3).astype(np.float32)
    out = compare(ck, th, [x], **F32_TOL)
    assert out.dtype == np.float32
