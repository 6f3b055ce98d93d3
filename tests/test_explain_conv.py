"""Convolution explanations (sums, im2col, Toeplitz, gradients) against convkit.functional and torch."""

import re

import numpy as np
import pytest
import torch

import convkit
import convkit.functional as F
from convkit import explain
from convkit.ops import _args
from convkit.ops._args import conv_pads


def _ints(rng, shape, low=-3, high=4):
    return rng.integers(low, high, size=shape).astype(np.float64)


def _sum_checks(formulas):
    """Every written-out sum ``name = a·b + c·d + e = value`` evaluates to its value (unshortened ones)."""
    checked = 0
    for formula in formulas:
        if "…" in formula:
            continue
        _, rhs = formula.split(" = ", 1)
        expression, value = rhs.rsplit(" = ", 1)
        total = eval(expression.replace("·", "*"))  # only digits, signs, parentheses and * + remain
        assert total == pytest.approx(float(value), abs=1e-4), formula
        checked += 1
    return checked


def test_conv2d_hand_example_writes_each_cell_as_its_sum_of_products():
    image = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    e = explain.conv2d(image, [[1, 0], [0, -1]], bias=[1])
    cells = e.steps[3].formulas
    # By hand: the window under O[0,0] is [[1, 2], [4, 5]]; 1·1 + 0·2 + 0·4 + (-1)·5 = -4, plus the bias 1.
    assert cells[0] == "O[0,0] = 1·1 + 0·2 + 0·4 + (-1)·5 + 1 = -3"
    assert cells[3] == "O[1,1] = 1·5 + 0·6 + 0·8 + (-1)·9 + 1 = -3"
    np.testing.assert_array_equal(e.result, F.conv2d(np.array([image], float), np.array([[[[1.0, 0], [0, -1]]]]),
                                                     np.array([1.0])).numpy())
    text = str(e)
    assert "O[y,x] = b + Σ_i Σ_j K[i,j]·I[y + i, x + j]" in text and "O = [ -3  -3 ]" in text


CASES = [
    dict(),
    dict(stride=2, padding=1),
    dict(stride=(2, 1), padding=(1, 0), dilation=2),
    dict(padding="same"),
    dict(padding="same", dilation=(1, 2)),
    dict(padding=1, padding_mode="reflect"),
    dict(padding=2, padding_mode="circular", stride=2),
    dict(padding=1, padding_mode="replicate", groups=2),
]


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("options", CASES)
@pytest.mark.parametrize("name", ["conv2d", "convolve2d"])
def test_conv2d_and_convolve2d_results_equal_functional_and_torch(name, options):
    rng = np.random.default_rng(len(str(options)))
    groups = options.get("groups", 1)
    c_in = 2 * groups
    x = _ints(rng, (c_in, 5, 6))
    w = _ints(rng, (2 * groups, c_in // groups, 3, 2))
    b = _ints(rng, (2 * groups,))
    e = getattr(explain, name)(x, w, b, **options)
    expected = getattr(F, name)(x, w, b, **{k: v for k, v in options.items()}).numpy()
    np.testing.assert_array_equal(e.result, expected)
    wt = np.flip(w, (2, 3)).copy() if name == "convolve2d" else w
    mode = options.get("padding_mode", "zeros")
    kwargs = {k: v for k, v in options.items() if k != "padding_mode"}
    tx = torch.tensor(x)
    if name == "convolve2d" and kwargs.get("padding") == "same":  # SciPy's centring: the mirrored split
        dilation = _args.ntuple(kwargs.get("dilation", 1), 2, "dilation", "t")
        (top, bottom), (left, right) = _args.same_pads((3, 2), dilation, flip=True)
        tx, kwargs["padding"] = torch.nn.functional.pad(tx, (left, right, top, bottom)), 0
    module = torch.nn.Conv2d(c_in, w.shape[0], (3, 2), padding_mode=mode, dtype=torch.float64, **kwargs)
    module.weight.data, module.bias.data = torch.tensor(wt), torch.tensor(b)
    np.testing.assert_allclose(e.result, module(tx).detach().numpy(), atol=1e-10)
    formulas = next(s.formulas for s in e.steps if s.text.startswith("Each output cell"))
    assert _sum_checks(formulas) == len(formulas)


@pytest.mark.parametrize("name", ["conv1d", "convolve1d"])
def test_1d_explanations_equal_functional(name):
    rng = np.random.default_rng(1)
    x, w, b = _ints(rng, (2, 7)), _ints(rng, (3, 2, 3)), _ints(rng, (3,))
    e = getattr(explain, name)(x, w, b, stride=2, padding=2, dilation=2)
    np.testing.assert_array_equal(e.result, getattr(F, name)(x, w, b, 2, 2, 2).numpy())
    formulas = next(s.formulas for s in e.steps if s.text.startswith("Each output cell"))
    assert formulas[0].startswith("O[0,0] = (") and _sum_checks(formulas) == len(formulas)


def test_convolution_flips_the_kernel_and_shows_both_results_side_by_side():
    e = explain.convolve2d([[1, 2, 0], [0, 1, 3], [2, 2, 1]], [[1, 2], [3, 4]])
    flip = e.steps[2]
    assert "K'[i,j] = K[1 − i, 1 − j]" in flip.text and flip.value[1].data.tolist() == [[4, 3], [2, 1]]
    assert e.steps[4].formulas[0] == "O[0,0] = 4·1 + 3·2 + 2·0 + 1·1 = 11"
    last = e.steps[-1]
    conv = F.conv2d(np.array([[[1.0, 2, 0], [0, 1, 3], [2, 2, 1]]]), np.array([[[[1.0, 2], [3, 4]]]])).numpy()
    assert "they differ" in last.text
    np.testing.assert_array_equal(last.value[0].data, conv[0])
    np.testing.assert_array_equal(last.value[1].data, e.result[0])


def test_padding_dilation_and_same_are_shown():
    e = explain.conv2d(np.arange(16.0).reshape(4, 4), np.ones((2, 2)), padding="same", dilation=2)
    text = str(e)
    assert "H: 1 before and 1 after" in text and "padding='same' pads d(k − 1) in total" in text
    assert "K_d = [ 1  0  1 ]" in text  # the dilated kernel: taps 2 apart
    assert "I_p[y + 2i, x + 2j]" in text


def test_large_examples_switch_to_a_summary_saying_so():
    rng = np.random.default_rng(2)
    e = explain.conv2d(_ints(rng, (3, 12, 12)), _ints(rng, (3, 5, 5)))
    cells = next(s for s in e.steps if s.text.startswith("Each output cell"))
    assert "The output has 64 cells, more than the 16 written out one by one" in cells.text
    assert len(cells.formulas) == 4 and all("… +" in f and "(75 products)" in f for f in cells.formulas)
    big = explain.conv2d(np.ones((40, 40)), np.ones((3, 3)))
    assert "I: 40×40 values, too large to show" in str(big)


def test_bad_input_names_the_problem_and_a_fix():
    with pytest.raises(ValueError, match=r"3×3 kernel is larger than the 2×2 padded input .* e\.g\. padding=1"):
        explain.conv2d([[1, 2], [3, 4]], np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"input must be \(H, W\) or \(C, H, W\) — one example"):
        explain.conv2d(np.ones((1, 1, 3, 3)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="bias must have 1 values"):
        explain.conv2d(np.ones((3, 3)), np.ones((2, 2)), bias=[1, 2])
    with pytest.raises(ValueError, match="input has 2 channels but weight expects 1"):
        explain.conv2d(np.ones((2, 3, 3)), np.ones((1, 1, 2, 2)))


# ---------------------------------------------------------------------- im2col and Toeplitz
@pytest.mark.parametrize("options", [dict(), dict(stride=2, padding=1), dict(dilation=2, padding=(1, 2))])
def test_im2col_columns_product_and_toeplitz_match_the_engine(options):
    rng = np.random.default_rng(3)
    x, w, b = _ints(rng, (2, 5, 5)), _ints(rng, (3, 2, 3, 3)), _ints(rng, (3,))
    e = explain.im2col(x, w, b, **options)
    r = e.result
    torch_opts = {k: v for k, v in options.items()}
    unfold = torch.nn.functional.unfold(torch.tensor(x[None]), (3, 3), **torch_opts)[0].numpy()
    np.testing.assert_array_equal(r["columns"], unfold)
    out = F.conv2d(x, w, b, **options).numpy()
    np.testing.assert_array_equal(r["output"], out)
    np.testing.assert_allclose((r["weight_matrix"] @ r["columns"] + b[:, None]).reshape(out.shape), out, atol=1e-12)
    np.testing.assert_allclose(r["toeplitz"] @ x.ravel() + np.repeat(b, out[0].size), out.ravel(), atol=1e-12)
    g = _ints(rng, out.shape)
    xt = convkit.tensor(x, requires_grad=True)
    F.conv2d(xt, w, b, **options).backward(g)
    np.testing.assert_allclose(r["toeplitz"].T @ g.ravel(), xt.grad.ravel(), atol=1e-12)  # Tᵀ is the adjoint
    product = next(s for s in e.steps if s.text.startswith("The whole convolution"))
    assert _sum_checks(product.formulas) == len(product.formulas)


def test_im2col_skips_a_toeplitz_matrix_too_large_to_build():
    e = explain.im2col(np.ones((3, 40, 40)), np.ones((2, 3, 3, 3)))
    assert e.result["toeplitz"] is None and "more than the 1000000 built for an explanation" in e.steps[-1].text
    np.testing.assert_array_equal(e.result["output"], F.conv2d(np.ones((3, 40, 40)), np.ones((2, 3, 3, 3))).numpy())


def test_im2col_hand_example():
    e = explain.im2col([[1, 2, 3], [4, 5, 6], [7, 8, 9]], [[1, 0], [0, -1]])
    text = str(e)
    assert "column 0 = window of O[0,0] = [1, 2, 4, 5]" in text
    assert "Y[0,0] = 1·1 + 0·2 + 0·4 + (-1)·5 = -4" in text
    assert "only 8 of its 36 entries are non-zero" in text
    assert "T = [  1   ·   ·   ·  -1   ·   ·   ·   · ]" in text
    assert "(T·vec(I))[0] = 1·1 + (-1)·5 = -4" in text


# ---------------------------------------------------------------------- gradients
def _torch_grads(x, w, b, g=None, target=None, nsp=2, **options):
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    out = getattr(torch.nn.functional, f"conv{nsp}d")(xt[None], wt, bt, **options)[0]
    if target is not None:
        loss = torch.nn.functional.mse_loss(out, torch.tensor(target))
        loss.backward()
        return xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy(), loss.item()
    out.backward(torch.tensor(g))
    return xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy(), None


@pytest.mark.parametrize("options", [dict(), dict(stride=2, padding=1), dict(stride=(2, 1), dilation=2, padding=2),
                                     dict(padding="same")])
def test_conv2d_grad_equals_torch_and_its_full_correlation_route(options):
    rng = np.random.default_rng(4)
    x, w, b = _ints(rng, (2, 6, 5)), _ints(rng, (3, 2, 2, 3)), _ints(rng, (3,))
    out = F.conv2d(x, w, b, **options).numpy()
    g = _ints(rng, out.shape)
    e = explain.conv2d_grad(x, w, b, grad_output=g, **options)
    dx, dw, db, _ = _torch_grads(x, w, b, g, **options)
    np.testing.assert_allclose(e.result["grad_input"], dx, atol=1e-10)
    np.testing.assert_allclose(e.result["grad_weight"], dw, atol=1e-10)
    np.testing.assert_allclose(e.result["grad_bias"], db, atol=1e-10)
    route = next(s for s in e.steps if s.text.startswith("An input cell was multiplied"))
    padded = route.value[-len(x):]  # the correlation's result, one matrix per input channel
    dilation = options.get("dilation", 1)
    pads = conv_pads(options.get("padding", 0), 2, (2, 3), (1, 1), (dilation,) * 2 if dilation == 2 else (1, 1), "t")
    interior = (slice(None),) + tuple(slice(lo, lo + n) for (lo, _), n in zip(pads, x.shape[1:]))
    np.testing.assert_allclose(np.stack([m.data for m in padded])[interior], dx, atol=1e-10)
    by_tap = next(s for s in e.steps if s.text.startswith("Each kernel tap"))
    assert _sum_checks(by_tap.formulas) == sum("…" not in f for f in by_tap.formulas)
    as_product = next(s for s in e.steps if s.text.startswith("The same as one matrix product"))
    np.testing.assert_allclose(as_product.value[2].data.T.reshape(w.shape), dw, atol=1e-10)
    assert re.search(r"max difference (0|\d\.\de-1\d)\)", e.steps[-1].text)


def test_conv2d_grad_hand_example_and_mse_loss():
    e = explain.conv2d_grad([[1, 2, 3], [4, 5, 6], [7, 8, 9]], [[1, 0], [0, -1]], bias=[0],
                            target=[[0, 0], [0, -5]])
    # O = [[-4, -4], [-4, -4]]; L = (16 + 16 + 16 + 1)/4 = 12.25; ∂L/∂O = 2(O − T)/4 = [[-2, -2], [-2, 0.5]]
    text = str(e)
    assert "L = ((-4 − 0)² + (-4 − 0)² + (-4 − 0)² + (-4 − -5)²)/4 = 12.25" in text
    assert "∂L/∂O[1,1] = 2·(-4 − -5)/4 = 0.5" in text
    assert "∂L/∂b = -2 + -2 + -2 + 0.5 = -5.5" in text
    # ∂L/∂K[0,0] = Σ ∂L/∂O[y,x]·I[y,x] = -2·1 - 2·2 - 2·4 + 0.5·5
    assert "∂L/∂K[0,0] = (-2)·1 + (-2)·2 + (-2)·4 + 0.5·5 = -11.5" in text
    x = np.array([[1.0, 2, 3], [4, 5, 6], [7, 8, 9]])[None]
    dx, dw, db, loss = _torch_grads(x, np.array([[[[1.0, 0], [0, -1]]]]), np.zeros(1),
                                    target=np.array([[[0.0, 0], [0, -5]]]))
    assert e.result["loss"] == pytest.approx(loss)
    np.testing.assert_allclose(e.result["grad_weight"], dw)
    np.testing.assert_allclose(e.result["grad_input"], dx)


def test_conv1d_grad_equals_torch():
    rng = np.random.default_rng(5)
    x, w, b = _ints(rng, (2, 9)), _ints(rng, (2, 2, 3)), _ints(rng, (2,))
    g = _ints(rng, F.conv1d(x, w, b, 2, 1, 2).shape)
    e = explain.conv1d_grad(x, w, b, 2, 1, 2, grad_output=g)
    dx, dw, db, _ = _torch_grads(x, w, b, g, nsp=1, stride=2, padding=1, dilation=2)
    for key, value in (("grad_input", dx), ("grad_weight", dw), ("grad_bias", db)):
        np.testing.assert_allclose(e.result[key], value, atol=1e-10)
    assert "conv_transpose1d(∂L/∂O, K, padding=1, stride=2, output_padding=0, dilation=2)" in str(e)


def test_grad_bad_input():
    with pytest.raises(ValueError, match="give grad_output or target, not both"):
        explain.conv2d_grad(np.ones((3, 3)), np.ones((2, 2)), grad_output=np.ones((2, 2)), target=np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"grad_output must have the output's shape \(1, 2, 2\)"):
        explain.conv2d_grad(np.ones((3, 3)), np.ones((2, 2)), grad_output=np.ones((3, 3)))
    with pytest.raises(ValueError, match="covers groups=1"):
        explain.conv2d_grad(np.ones((2, 3, 3)), np.ones((2, 1, 2, 2)))
