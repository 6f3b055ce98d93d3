"""The compiled element-wise, softmax and loss kernels against PyTorch, in float64 and float32.

Odd shapes (batch 1, one class, sizes that are no multiple of the SIMD
width or of the kernels' 32 lanes), non-contiguous inputs and gradients,
normalised axes other than the last, spatial targets, and arrays large
enough to run on several threads (``PARALLEL_WORK`` elements or more).
"""

import numba
import numpy as np
import pytest
from oracle import compare, torch

import convkit
import convkit.functional as F
from convkit.ops import activation as A
from convkit.ops.jit import PARALLEL_WORK
from convkit.random import generator

TF = torch.nn.functional
rng = np.random.default_rng(7)

BIG = PARALLEL_WORK + 1234  # runs the chunks kernel (several threads)
TOL = {np.float64: dict(atol=1e-10, rtol=1e-8), np.float32: dict(atol=2e-6, rtol=2e-5)}
DTYPES = [np.float64, np.float32]


def values(shape, dtype, scale=3.0):
    """Normal values with exact zeros (the kinks) sprinkled in."""
    x = rng.standard_normal(shape) * scale
    x.reshape(-1)[::7] = 0.0
    return x.astype(dtype)


def check(ck_fn, th_fn, inputs, dtype, **kw):
    compare(ck_fn, th_fn, inputs, **(TOL[dtype] | kw))


# ------------------------------------------------------------------------------- element-wise
ELEMENTWISE = [
    ("relu", F.relu, TF.relu),
    ("leaky_relu", lambda x: F.leaky_relu(x, 0.1), lambda x: TF.leaky_relu(x, 0.1)),
    ("leaky_relu_negative", lambda x: F.leaky_relu(x, -0.7), lambda x: TF.leaky_relu(x, -0.7)),
    ("leaky_relu_zero", lambda x: F.leaky_relu(x, 0.0), lambda x: TF.leaky_relu(x, 0.0)),
    ("sigmoid", F.sigmoid, torch.sigmoid),
    ("tanh", F.tanh, torch.tanh),
]
SHAPES = [(1,), (1, 1, 1), (17,), (3, 5), (2, 3, 7, 9), (BIG,)]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("name,ck,th", ELEMENTWISE, ids=[e[0] for e in ELEMENTWISE])
def test_elementwise_matches_torch(name, ck, th, shape, dtype):
    check(ck, th, [values(shape, dtype)], dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("name,ck,th", ELEMENTWISE, ids=[e[0] for e in ELEMENTWISE])
def test_elementwise_non_contiguous_input_and_gradient(name, ck, th, dtype):
    """A strided slice in, a transposed gradient back (the op's output is permuted afterwards)."""
    for shape in [(6, 10), (190, 400)]:
        check(lambda a: ck(a[:, ::2]).T, lambda a: th(a[:, ::2]).T, [values(shape, dtype)], dtype)


def test_relu_and_leaky_relu_are_exact_in_float32():
    x = values((5, BIG // 5 + 3), np.float32)
    g = values(x.shape, np.float32)
    for _, ck, th in ELEMENTWISE[:4]:
        xc, xt = convkit.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        yc, yt = ck(xc), th(xt)
        np.testing.assert_array_equal(yc.numpy(), yt.detach().numpy())
        yc.backward(g)
        yt.backward(torch.tensor(g))
        np.testing.assert_array_equal(xc.grad, xt.grad.numpy())


def test_elementwise_of_an_empty_array():
    for _, ck, _ in ELEMENTWISE:
        x = convkit.tensor(np.zeros((0, 3)), requires_grad=True)
        y = ck(x)
        y.backward(np.zeros((0, 3)))
        assert y.shape == x.grad.shape == (0, 3)


def test_float32_exp_is_correctly_rounded():
    """``ops.activation.exp`` of float32 against float64 exp rounded once, over the whole range."""
    @numba.njit
    def exp_all(x, out):
        for i in range(x.size):
            out[i] = A.exp(x[i])

    x = np.concatenate([np.linspace(-110.0, 95.0, 400_001), rng.uniform(-20, 20, 100_000),
                        [0.0, -0.0, np.inf, -np.inf, np.nan, 88.72283, 88.72284, -87.33655, -103.97]]).astype(np.float32)
    out = np.empty_like(x)
    exp_all(x, out)
    with np.errstate(over="ignore"):
        expected = np.exp(x.astype(np.float64)).astype(np.float32)
    np.testing.assert_array_equal(out, expected)


# ------------------------------------------------------------------------ softmax, log_softmax
SOFTMAX_CASES = [((1, 1), 1), ((1, 7), -1), ((5, 1), 1), ((3, 37), 1), ((4, 33, 5), 1), ((2, 3, 4, 5), 0),
                 ((2, 3, 4, 5), 2), ((64, 1000), 1), ((300, 130), 0), ((7,), 0)]


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("shape,dim", SOFTMAX_CASES, ids=str)
@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_matches_torch(fn, shape, dim, dtype):
    x = values(shape, dtype)
    check(lambda a: getattr(F, fn)(a, dim), lambda a: getattr(TF, fn)(a, dim), [x], dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_of_huge_logits_and_strided_input(fn, dtype):
    x = values((6, 40, 3), dtype, scale=1e4)  # exp of unshifted logits would overflow
    check(lambda a: getattr(F, fn)(a[:, ::3], 1).permute(2, 0, 1),
          lambda a: getattr(TF, fn)(a[:, ::3], 1).permute(2, 0, 1), [x], dtype)


def test_softmax_of_an_empty_axis_and_batch():
    for shape, dim in [((0, 5), 1), ((3, 0), 1), ((2, 0, 4), 2)]:
        x = convkit.tensor(np.zeros(shape), requires_grad=True)
        y = F.log_softmax(x, dim)
        y.backward(np.ones(shape))
        assert y.shape == x.grad.shape == shape


# ------------------------------------------------------------------------------ cross-entropy
def targets(shape, classes, ignore=None):
    t = rng.integers(0, classes, shape)
    if ignore is not None:
        t.reshape(-1)[::4] = ignore
    return t


CE_SHAPES = [((1, 1), (1,)), ((1, 10), (1,)), ((7, 1), (7,)), ((13, 37), (13,)), ((300, 130), (300,)),
             ((2, 5, 3, 4), (2, 3, 4)), ((4, 3, 17), (4, 17)), ((1, 40, 1000), (1, 1000))]
CE_OPTIONS = [dict(), dict(reduction="sum"), dict(reduction="none"), dict(label_smoothing=0.2),
              dict(ignore_index=2, label_smoothing=0.1, reduction="mean"), dict(weight=True, ignore_index=0),
              dict(weight=True, label_smoothing=0.3, reduction="none")]


def _run_ce(options, classes, dtype, module):
    """Options for cross_entropy / nll_loss in ``module``'s terms (a weight array when ``weight=True``)."""
    opts = dict(options)
    if opts.pop("weight", False):
        w = np.random.default_rng(classes).uniform(0.2, 2.0, classes).astype(dtype)
        opts["weight"] = torch.tensor(w) if module is torch else w
    return opts


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("options", CE_OPTIONS, ids=str)
@pytest.mark.parametrize("xshape,tshape", CE_SHAPES, ids=str)
def test_cross_entropy_with_class_indices_matches_torch(xshape, tshape, options, dtype):
    classes = xshape[1]
    t = targets(tshape, classes, ignore=options.get("ignore_index"))
    x = values(xshape, dtype)
    ck_opts, th_opts = _run_ce(options, classes, dtype, convkit), _run_ce(options, classes, dtype, torch)
    check(lambda a, y: F.cross_entropy(a, y, **ck_opts), lambda a, y: TF.cross_entropy(a, y, **th_opts),
          [x, t], dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_cross_entropy_strided_logits_and_all_ignored(dtype):
    x = values((9, 24), dtype)
    t = targets((9,), 8)
    check(lambda a, y: F.cross_entropy(a[:, ::3], y), lambda a, y: TF.cross_entropy(a[:, ::3], y), [x, t], dtype)
    t[:] = -100
    check(lambda a, y: F.cross_entropy(a, y, reduction="sum"), lambda a, y: TF.cross_entropy(a, y, reduction="sum"),
          [x, t], dtype)
    xc = convkit.tensor(x, requires_grad=True)
    loss = F.cross_entropy(xc, t)  # mean over no item: NaN, gradient 0 (torch's)
    assert np.isnan(loss.item()) and np.isnan(TF.cross_entropy(torch.tensor(x), torch.tensor(t)).item())
    loss.backward()
    assert not xc.grad.any()


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("options", [dict(), dict(reduction="none"), dict(reduction="sum", label_smoothing=0.25),
                                     dict(weight=True, label_smoothing=0.1)], ids=str)
@pytest.mark.parametrize("xshape", [(1, 1), (5, 3), (3, 4, 2, 3), (150, 300)], ids=str)
def test_cross_entropy_with_probabilities_matches_torch(xshape, options, dtype):
    x = values(xshape, dtype)
    p = rng.uniform(0, 1, xshape)
    p = (p / p.sum(axis=1, keepdims=True)).astype(dtype)
    ck_opts, th_opts = _run_ce(options, xshape[1], dtype, convkit), _run_ce(options, xshape[1], dtype, torch)
    check(lambda a, q: F.cross_entropy(a, q, **ck_opts), lambda a, q: TF.cross_entropy(a, q, **th_opts),
          [x, p], dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("xshape,tshape", [((1, 1), (1,)), ((6, 11), (6,)), ((2, 5, 3, 4), (2, 3, 4))], ids=str)
def test_nll_loss_matches_torch(xshape, tshape, dtype):
    logp = values(xshape, dtype)
    for options in [dict(ignore_index=1), dict(reduction="none", ignore_index=1), dict(weight=True, reduction="sum")]:
        t = targets(tshape, xshape[1], ignore=options.get("ignore_index"))
        ck_opts, th_opts = _run_ce(options, xshape[1], dtype, convkit), _run_ce(options, xshape[1], dtype, torch)
        check(lambda a, y: F.nll_loss(a, y, **ck_opts), lambda a, y: TF.nll_loss(a, y, **th_opts),
              [logp, t], dtype)


def test_cross_entropy_gradient_of_big_float32_batch_matches_torch():
    """(256, 1000) float32 runs on several threads: loss and gradient to float32 accuracy."""
    x = values((256, 1000), np.float32, scale=2.0)
    t = targets((256,), 1000)
    xc, xt = convkit.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    lc, lt = F.cross_entropy(xc, t), TF.cross_entropy(xt, torch.tensor(t))
    assert lc.dtype == np.float32
    np.testing.assert_allclose(lc.item(), lt.item(), rtol=1e-6)
    lc.backward()
    lt.backward()
    np.testing.assert_allclose(xc.grad, xt.grad.numpy(), rtol=1e-5, atol=1e-10)


# ---------------------------------------------------------------------------------- dropout
@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("p", [0.3, 1.0])
def test_dropout_mask_is_the_generators(p, dtype):
    """Same seed, same numbers as before the mask moved out of the op: keep where u >= p, scale 1/(1-p)."""
    x = values((37, BIG // 37 + 1), dtype)
    convkit.manual_seed(123)
    u = generator().random(x.shape, dtype=x.dtype)
    scale = x.dtype.type(0.0 if p == 1 else 1.0 / (1.0 - p))
    expected = x * ((u >= p) * scale)
    convkit.manual_seed(123)
    xc = convkit.tensor(x, requires_grad=True)
    y = F.dropout(xc, p)
    np.testing.assert_array_equal(y.numpy(), expected)
    g = values(x.shape, dtype)
    y.backward(g)
    np.testing.assert_array_equal(xc.grad, g * ((u >= p) * scale))

