"""The shared building blocks: argument normalisation, padding modes, sliding windows."""

import numpy as np
import pytest
from oracle import torch

from convkit.ops import _args
from convkit.ops.padding import check_pads, pad_backward, pad_forward
from convkit.ops.windows import fold, out_sizes, windows

TORCH_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("shape,pads", [
    ((2, 3, 7), ((2, 3),)),
    ((1, 2, 5, 6), ((1, 2), (3, 0))),
    ((2, 1, 4, 5, 3), ((1, 1), (0, 2), (2, 1))),
])
def test_pad_matches_torch_forward_and_backward(mode, shape, pads):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    out, saved = pad_forward(x, pads=pads, mode=mode)
    # torch.nn.functional.pad lists the LAST axis first.
    torch_pads = [p for pair in reversed(pads) for p in pair]
    xt = torch.tensor(x, requires_grad=True)
    yt = torch.nn.functional.pad(xt, torch_pads, mode=TORCH_MODE[mode])
    np.testing.assert_array_equal(out, yt.detach().numpy())
    g = rng.standard_normal(out.shape)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(pad_backward(g, saved)[0], xt.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_pad_value_and_no_padding():
    x = np.arange(3.0).reshape(1, 1, 3)
    out, _ = pad_forward(x, pads=((1, 1),), mode="zeros", value=-np.inf)
    assert out.tolist() == [[[-np.inf, 0.0, 1.0, 2.0, -np.inf]]]
    same, saved = pad_forward(x, pads=((0, 0),), mode="reflect")
    assert same is x and pad_backward(x, saved)[0] is x


def test_pad_limits_are_torchs():
    with pytest.raises(ValueError, match="reflect padding .* smaller than the input size 3"):
        check_pads((1, 1, 3), ((3, 0),), "reflect", "conv1d")
    with pytest.raises(ValueError, match="circular padding .* must not exceed"):
        check_pads((1, 1, 3), ((0, 4),), "circular", "conv1d")
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        check_pads((1, 1, 3), ((0, 0),), "mirror", "conv1d")
    check_pads((1, 1, 3), ((2, 2),), "reflect", "conv1d")


def test_windows_view_and_fold_are_adjoint():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 11, 9))
    kernel, stride, dilation = (3, 2), (2, 1), (2, 3)
    w = windows(x, kernel, stride, dilation)
    assert w.shape == (2, 3) + out_sizes((11, 9), kernel, stride, dilation) + kernel
    # view[..., o, j] = x[..., o*s + j*d]
    assert w[1, 2, 3, 4, 2, 1] == x[1, 2, 3 * 2 + 2 * 2, 4 * 1 + 1 * 3]
    c = rng.standard_normal(w.shape)
    # <windows(x), c> == <x, fold(c)>: fold is the adjoint of window extraction.
    np.testing.assert_allclose(np.sum(w * c), np.sum(x * fold(c, x.shape, kernel, stride, dilation)))


def test_conv_pads_forms():
    k, s, d = (3, 4), (1, 1), (1, 2)
    assert _args.conv_pads(1, 2, k, s, d, "op") == ((1, 1), (1, 1))
    assert _args.conv_pads((0, 2), 2, k, s, d, "op") == ((0, 0), (2, 2))
    assert _args.conv_pads(((0, 1), (2, 3)), 2, k, s, d, "op") == ((0, 1), (2, 3))
    assert _args.conv_pads("valid", 2, k, s, d, "op") == ((0, 0), (0, 0))
    # 'same': total d*(k-1); odd totals put the extra element on the high side, as torch.
    assert _args.conv_pads("same", 2, (4, 3), s, (1, 1), "op") == ((1, 2), (1, 1))
    assert _args.conv_pads("same", 2, k, s, d, "op") == ((1, 1), (3, 3))


@pytest.mark.parametrize("padding,exc,msg", [
    ("same", ValueError, "only defined for stride 1"),
    ("full", ValueError, "must be 'valid', 'same'"),
    (-1, ValueError, "padding must be >= 0"),
    ((1, 2, 3), TypeError, "tuple of 2 ints"),
    (1.5, TypeError, "must be an int"),
])
def test_conv_pads_errors(padding, exc, msg):
    with pytest.raises(exc, match=msg):
        _args.conv_pads(padding, 2, (3, 3), (2, 1), (1, 1), "conv2d")


def test_ntuple():
    assert _args.ntuple(3, 2, "kernel_size", "op") == (3, 3)
    assert _args.ntuple((1, 2, 3), 3, "stride", "op") == (1, 2, 3)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        _args.ntuple(0, 2, "stride", "conv2d")
    with pytest.raises(TypeError, match="dilation must be an int"):
        _args.ntuple(True, 2, "dilation", "conv2d")
