"""Pooling, transposed convolution, batch norm and FFT explanations against convkit.functional and torch."""

import numpy as np
import pytest
import torch

import convkit
import convkit.functional as F
from convkit import explain


def _ints(rng, shape, low=-3, high=4):
    return rng.integers(low, high, size=shape).astype(np.float64)


def _backward(fn, x, g, *args, **kwargs):
    xt = convkit.tensor(x, requires_grad=True)
    fn(xt, *args, **kwargs).backward(g)
    return xt.grad


# ---------------------------------------------------------------------- pooling
def test_max_pool_hand_example_marks_winners_and_routes_the_gradient():
    x = [[1, 3, 0, 1], [2, 4, 1, 5], [0, 1, 2, 2], [1, 0, 3, 1]]
    e = explain.max_pool2d(x, 2, grad_output=[[1, 2], [3, 4]])
    text = str(e)
    assert "O[0,0] = max(1, 3, 2, 4) = 4, at I[1,1]" in text
    assert "O[1,1] = max(2, 2, 3, 1) = 3, at I[3,2]" in text
    assert "I = [ 1   3   0   1  ]" in text and "[ 2   4*  1   5* ]" in text  # winners marked
    assert "∂L/∂I[1,3] = ∂L/∂O[0,1] = 2" in text
    np.testing.assert_array_equal(e.result["grad_input"][0], [[0, 0, 0, 0], [0, 1, 0, 2], [0, 3, 0, 0], [0, 0, 4, 0]])


@pytest.mark.parametrize("options", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                     dict(kernel_size=(2, 3), stride=1, dilation=(2, 1)),
                                     dict(kernel_size=2, ceil_mode=True),
                                     dict(kernel_size=3, stride=2, ceil_mode=True)])
def test_max_pool2d_equals_functional_and_torch(options):
    rng = np.random.default_rng(0)
    x = rng.permutation(2 * 5 * 7).astype(np.float64).reshape(2, 5, 7)  # no ties
    out, idx = F.max_pool2d(x, return_indices=True, **options)
    g = _ints(rng, out.shape)
    e = explain.max_pool2d(x, grad_output=g, **options)
    np.testing.assert_array_equal(e.result["output"], out.numpy())
    np.testing.assert_array_equal(e.result["indices"], idx.numpy())
    np.testing.assert_array_equal(e.result["grad_input"], _backward(F.max_pool2d, x, g, **options))
    xt = torch.tensor(x, requires_grad=True)
    torch.nn.functional.max_pool2d(xt, **options).backward(torch.tensor(g))
    np.testing.assert_array_equal(e.result["grad_input"], xt.grad.numpy())


def test_max_pool1d_ties_go_to_the_first_maximum():
    e = explain.max_pool1d([2, 2, 1, 3], 2)
    assert e.steps[2].formulas[0] == "O[0] = max(2, 2) = 2, at I[0]"
    np.testing.assert_array_equal(e.result["grad_input"], [[1, 0, 0, 1]])


@pytest.mark.parametrize("options", [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                                     dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
                                     dict(kernel_size=2, ceil_mode=True), dict(kernel_size=2, divisor_override=3)])
def test_avg_pool2d_equals_functional_and_torch(options):
    rng = np.random.default_rng(1)
    x = _ints(rng, (2, 5, 5))
    out = F.avg_pool2d(x, **options).numpy()
    g = _ints(rng, out.shape)
    e = explain.avg_pool2d(x, grad_output=g, **options)
    np.testing.assert_array_equal(e.result["output"], out)
    xt = torch.tensor(x, requires_grad=True)
    torch.nn.functional.avg_pool2d(xt, **options).backward(torch.tensor(g))
    np.testing.assert_allclose(e.result["grad_input"], xt.grad.numpy(), atol=1e-12)
    windows = next(s for s in e.steps if s.text.startswith("Each output cell"))
    for formula in windows.formulas:  # O[...] = (a + b + …)/D = value
        expression, value = formula.split(" = ", 1)[1].rsplit(" = ", 1)
        assert eval(expression) == pytest.approx(float(value), abs=1e-4)


def test_avg_pool_spreads_one_over_k_squared():
    e = explain.avg_pool1d([1, 2, 3, 4, 5, 6, 7], 3, 2, 1, count_include_pad=False)
    text = str(e)
    assert "O[0] = (0 + 1 + 2)/2 = 1.5" in text and "O[1] = (2 + 3 + 4)/3 = 3" in text
    assert "∂L/∂I[1] = 1/2 + 1/3 = 0.8333" in text
    full = explain.avg_pool2d(np.arange(16.0).reshape(4, 4), 2)
    assert "(1/2² = 1/4 of it for a full window)" in full.steps[-1].text
    np.testing.assert_array_equal(full.result["grad_input"], np.full((1, 4, 4), 0.25))


def test_pooling_bad_input():
    with pytest.raises(ValueError, match="input too small"):
        explain.max_pool2d([[1, 2], [3, 4]], 3)
    with pytest.raises(ValueError, match="grad_output must have the output's shape"):
        explain.avg_pool2d(np.ones((4, 4)), 2, grad_output=np.ones((3, 3)))


# ---------------------------------------------------------------------- transposed convolution
@pytest.mark.parametrize("options", [dict(), dict(stride=2), dict(stride=2, padding=1, output_padding=1),
                                     dict(stride=(2, 3), dilation=2, output_padding=(1, 0)), dict(groups=2)])
def test_conv_transpose2d_equals_functional_and_torch(options):
    rng = np.random.default_rng(2)
    groups = options.get("groups", 1)
    x, w, b = _ints(rng, (2 * groups, 3, 2)), _ints(rng, (2 * groups, 2, 3, 2)), _ints(rng, (2 * groups,))
    e = explain.conv_transpose2d(x, w, b, **options)
    np.testing.assert_array_equal(e.result, F.conv_transpose2d(x, w, b, **options).numpy())
    expected = torch.nn.functional.conv_transpose2d(torch.tensor(x[None]), torch.tensor(w), torch.tensor(b),
                                                    **options)[0].numpy()
    np.testing.assert_allclose(e.result, expected, atol=1e-10)
    summed = next(s for s in e.steps if s.text.startswith("Adding all the stamps"))
    for formula in summed.formulas:
        if "no stamp" not in formula and "…" not in formula:
            expression, value = formula.split(" = ", 1)[1].rsplit(" = ", 1)
            assert eval(expression.replace("·", "*")) == pytest.approx(float(value))


def test_conv_transpose_stamps_add_up_to_the_output():
    e = explain.conv_transpose2d([[1, 2], [3, 4]], [[1, 1], [1, 1]], stride=2)
    stamps = e.steps[3].value
    assert [m.label for m in stamps] == ["I[0,0]·K", "I[0,1]·K", "I[1,0]·K", "I[1,1]·K"]
    np.testing.assert_array_equal(sum(m.data for m in stamps), e.result[0])
    assert e.steps[3].formulas[1] == "I[0,1]·K = 2·K, corner at (0·2 = 0, 1·2 = 2)"
    one_d = explain.conv_transpose1d([1, 2, 3], [1, -1], stride=2)
    assert "O_full[3] = 2·(-1) = -2" in str(one_d)
    many = explain.conv_transpose2d(np.ones((4, 4)), np.ones((2, 2)))
    assert "There are 16 stamps, more than the 9 shown" in str(many) and len(many.steps[3].formulas) == 4


# ---------------------------------------------------------------------- batch norm
def test_batch_norm_dense_layer_hand_example_and_running_estimates():
    e = explain.batch_norm([[1.0], [2.0], [3.0], [4.0]])
    text = str(e)
    assert "μ[0] = (1 + 2 + 3 + 4)/4 = 2.5" in text
    assert "σ²[0] = ((1 − 2.5)² + (2 − 2.5)² + (3 − 2.5)² + (4 − 2.5)²)/4 = 1.25" in text
    assert "running_var[0] = 0.9·1 + 0.1·1.25·4/3 = 1.0667" in text  # stored unbiased (pytorch#3122)
    assert "per unit (column), over the batch" in text
    bn = torch.nn.BatchNorm1d(1, dtype=torch.float64)
    y = bn(torch.tensor([[1.0], [2.0], [3.0], [4.0]], dtype=torch.float64))
    np.testing.assert_allclose(e.result["output"], y.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(e.result["running_var"], bn.running_var.numpy(), atol=1e-12)
    bn.eval()
    np.testing.assert_allclose(e.result["eval_output"],
                               bn(torch.tensor([[1.0], [2.0], [3.0], [4.0]], dtype=torch.float64)).detach().numpy())


def test_batch_norm_conv_layer_per_channel_over_batch_and_space():
    rng = np.random.default_rng(3)
    x, gamma, beta = _ints(rng, (3, 2, 2, 3)), np.array([2.0, -1.0]), np.array([0.5, 1.0])
    rm, rv = np.array([0.5, -1.0]), np.array([2.0, 3.0])
    e = explain.batch_norm(x, rm, rv, gamma, beta, momentum=0.3, eps=1e-3)
    frm, frv = rm.copy(), rv.copy()
    np.testing.assert_array_equal(e.result["output"], F.batch_norm(x, frm, frv, gamma, beta, True, 0.3, 1e-3).numpy())
    np.testing.assert_array_equal(e.result["running_mean"], frm)
    np.testing.assert_array_equal(e.result["running_var"], frv)
    np.testing.assert_array_equal(rm, [0.5, -1.0])  # the caller's estimates are left alone
    np.testing.assert_allclose(e.result["batch_mean"], x.mean(axis=(0, 2, 3)))
    assert "N·H·W = 3·2·3 = 18 values" in str(e)
    inference = explain.batch_norm(x, rm, rv, gamma, beta, training=False)
    np.testing.assert_array_equal(inference.result["output"],
                                  F.batch_norm(x, rm.copy(), rv.copy(), gamma, beta, False).numpy())
    assert "Inference (training=False)" in str(inference)


def test_batch_norm_bad_input():
    with pytest.raises(ValueError, match=r"input must be \(N, C\), \(N, C, L\) or \(N, C, H, W\)"):
        explain.batch_norm([1, 2, 3])
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        explain.batch_norm([[1, 2]])
    with pytest.raises(ValueError, match=r"weight must have 2 values \(γ, one per channel\)"):
        explain.batch_norm([[1, 2], [3, 4]], weight=[1, 2, 3])


# ---------------------------------------------------------------------- FFT
@pytest.mark.parametrize("mode", ["full", "valid", "same"])
def test_fftconvolve_equals_the_engines_convolution(mode):
    rng = np.random.default_rng(4)
    for x, w in ((_ints(rng, (7,)), _ints(rng, (4,))), (_ints(rng, (5, 6)), _ints(rng, (3, 2)))):
        e = explain.fftconvolve(x, w, mode)
        nsp = x.ndim
        padding = tuple(k - 1 for k in w.shape) if mode == "full" else mode
        engine = getattr(F, f"convolve{nsp}d")(x[None], w[None, None], padding=padding).numpy()[0]
        np.testing.assert_allclose(e.result["output"], engine, atol=1e-9)
        correlation = getattr(F, f"conv{nsp}d")(x[None], w[None, None]).numpy()[0]
        np.testing.assert_allclose(e.result["correlation"], correlation, atol=1e-9)
        circular = getattr(F, f"convolve{nsp}d")(x[None], w[None, None], padding=tuple((k - 1, 0) for k in w.shape),
                                                 padding_mode="circular").numpy()[0]
        np.testing.assert_allclose(e.result["circular"], circular, atol=1e-9)


def test_fftconvolve_shows_the_wrap_around_and_the_padding():
    e = explain.fftconvolve([1, 2, 3, 4], [1, 1])
    text = str(e)
    assert "x ∗ w = [ 1  3  5  7  4 ]" in text
    assert "ifft(fft(x)·fft(w, n)) = [ 5  3  5  7 ]" in text  # the 4 wrapped around onto position 0
    assert "x_pad = [ 1  2  3  4  0 ]" in text and "w_pad = [ 1  1  0  0  0 ]" in text
    with pytest.raises(ValueError, match="must not be larger than the input"):
        explain.fftconvolve([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="mode must be one of"):
        explain.fftconvolve([1, 2], [1], "circular")
