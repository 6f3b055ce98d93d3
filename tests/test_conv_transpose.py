"""Transposed convolution, 1-D/2-D/3-D: functional ops and nn layers.

Held against PyTorch in float64, against the scatter loops of
``convkit.testing.reference_conv``, against its defining identities (the
adjoint of conv; zero-insertion + true convolution) and finite differences.
"""

import math

import numpy as np
import pytest
from oracle import compare, compare_modules, raises_like_torch, torch

import convkit
import convkit.functional as F
import convkit.nn as nn
from convkit.ops.conv import conv_backward, conv_forward
from convkit.ops.conv_transpose import conv_transpose_forward
from convkit.testing.gradcheck import gradcheck
from convkit.testing.reference_conv import conv_transpose_reference

TF = torch.nn.functional
CK_FN = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
TORCH_FN = {1: TF.conv_transpose1d, 2: TF.conv_transpose2d, 3: TF.conv_transpose3d}
CK_MODULE = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}
TORCH_MODULE = {1: torch.nn.ConvTranspose1d, 2: torch.nn.ConvTranspose2d, 3: torch.nn.ConvTranspose3d}


def cfg_of(spatial, kernel, *, n=2, cin=2, cout=3, stride=1, padding=0, output_padding=0, dilation=1, groups=1,
           bias=True):
    nsp = len(spatial)
    tup = lambda v: (v,) * nsp if isinstance(v, int) else tuple(v)  # noqa: E731
    return dict(nsp=nsp, n=n, cin=cin, cout=cout, spatial=tuple(spatial), kernel=tuple(kernel), stride=tup(stride),
                padding=tup(padding), output_padding=tup(output_padding), dilation=tup(dilation), groups=groups,
                bias=bias)


def out_sizes(cfg):
    return tuple((n - 1) * s - 2 * p + d * (k - 1) + op + 1
                 for n, k, s, p, op, d in zip(cfg["spatial"], cfg["kernel"], cfg["stride"], cfg["padding"],
                                              cfg["output_padding"], cfg["dilation"]))


def random_cfg(seed):
    """A random valid configuration (every option drawn), nsp = 1, 2, 3 in turn."""
    rng = np.random.default_rng(2000 + seed)
    nsp = 1 + seed % 3
    draw = lambda lo, hi: tuple(int(v) for v in rng.integers(lo, hi, nsp))  # noqa: E731
    while True:
        groups = int(rng.integers(1, 4))
        stride, dilation = draw(1, 4), draw(1, 3)
        output_padding = tuple(int(rng.integers(0, max(s, d))) for s, d in zip(stride, dilation))
        cfg = cfg_of(draw(1, 6 if nsp < 3 else 4), draw(1, 5 if nsp < 3 else 4), n=int(rng.integers(1, 3)),
                     cin=groups * int(rng.integers(1, 3)), cout=groups * int(rng.integers(1, 3)), stride=stride,
                     padding=draw(0, 3), output_padding=output_padding, dilation=dilation, groups=groups,
                     bias=bool(rng.random() < 0.7))
        if min(out_sizes(cfg)) >= 1:
            return cfg


def make_inputs(cfg, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((cfg["n"], cfg["cin"]) + cfg["spatial"]).astype(dtype)
    w = rng.standard_normal((cfg["cin"], cfg["cout"] // cfg["groups"]) + cfg["kernel"]).astype(dtype)
    return [x, w, rng.standard_normal(cfg["cout"]).astype(dtype)] if cfg["bias"] else [x, w]


def args(cfg):
    return cfg["stride"], cfg["padding"], cfg["output_padding"], cfg["groups"], cfg["dilation"]


def ck_fn(cfg):
    return lambda x, w, b=None: CK_FN[cfg["nsp"]](x, w, b, *args(cfg))


def torch_fn(cfg):
    return lambda x, w, b=None: TORCH_FN[cfg["nsp"]](x, w, b, *args(cfg))


TABLE = [
    cfg_of((5,), (3,)),
    cfg_of((5,), (3,), stride=2, padding=1, output_padding=1),
    cfg_of((4,), (3,), stride=1, dilation=3, output_padding=2, bias=False),  # output_padding >= stride
    cfg_of((6,), (4,), stride=3, padding=2, output_padding=2, cin=4, cout=6, groups=2),
    cfg_of((4, 5), (3, 3), stride=2, padding=1, output_padding=1),
    cfg_of((4, 3), (2, 3), stride=(2, 3), padding=(0, 2), output_padding=(1, 2), dilation=(2, 1)),
    cfg_of((3, 4), (3, 2), cin=3, cout=3, groups=3, stride=2, bias=False),  # depthwise
    cfg_of((3, 3), (4, 4), cin=4, cout=2, groups=2, stride=2, padding=(1, 3), dilation=2, output_padding=(1, 0)),
    cfg_of((3, 2, 3), (2, 3, 2), stride=(2, 1, 2), padding=(0, 1, 1), output_padding=(1, 0, 0)),
    cfg_of((2, 3, 2), (3, 2, 2), cin=2, cout=4, groups=2, dilation=(1, 2, 1), stride=2, output_padding=(1, 1, 0)),
]


@pytest.mark.parametrize("cfg", TABLE + [random_cfg(s) for s in range(24)], ids=str)
def test_conv_transpose_matches_torch(cfg):
    out = compare(ck_fn(cfg), torch_fn(cfg), make_inputs(cfg))
    assert out.shape[2:] == out_sizes(cfg)


@pytest.mark.parametrize("seed", range(10))
def test_fast_path_matches_scatter_loops(seed):
    cfg = random_cfg(100 + seed)
    x, w, *b = make_inputs(cfg, seed)
    opts = dict(stride=cfg["stride"], pads=tuple((p, p) for p in cfg["padding"]),
                output_padding=cfg["output_padding"], dilation=cfg["dilation"], groups=cfg["groups"])
    fast, _ = conv_transpose_forward(x, w, *b, **opts)
    np.testing.assert_allclose(fast, conv_transpose_reference(x, w, *b, **opts), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cfg", TABLE[3:8], ids=str)
def test_is_the_adjoint_of_conv(cfg):
    """conv_transpose(g, w) is conv's input gradient when output_padding fills the input size back."""
    x_t, w = make_inputs(cfg)[:2]  # x_t is the conv output gradient, w its weight
    pads = tuple((p, p) for p in cfg["padding"])
    size = out_sizes(cfg)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((cfg["n"], cfg["cout"]) + size)  # conv input
    y, saved = conv_forward(x, w, stride=cfg["stride"], pads=pads, dilation=cfg["dilation"], groups=cfg["groups"])
    assert y.shape == x_t.shape
    dx = conv_backward(x_t, saved, needs=(True, False, False))[0]
    out, _ = conv_transpose_forward(x_t, w, stride=cfg["stride"], pads=pads, output_padding=cfg["output_padding"],
                                    dilation=cfg["dilation"], groups=cfg["groups"])
    np.testing.assert_allclose(out, dx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.sum(y * x_t), np.sum(x * out), rtol=1e-12)


@pytest.mark.parametrize("cfg", [TABLE[1], TABLE[5], TABLE[7]], ids=str)
def test_equals_zero_insertion_then_true_convolution(cfg):
    """Insert s-1 zeros, pad d(k-1)-p (plus output_padding high), true-convolve with the in/out-swapped kernel."""
    x, w = make_inputs(cfg)[:2]
    nsp, groups = cfg["nsp"], cfg["groups"]
    stretched = np.zeros(x.shape[:2] + tuple((n - 1) * s + 1 for n, s in zip(cfg["spatial"], cfg["stride"])))
    stretched[(Ellipsis,) + tuple(slice(None, None, s) for s in cfg["stride"])] = x
    cin, og = w.shape[:2]
    swapped = w.reshape((groups, cin // groups, og) + cfg["kernel"]).swapaxes(1, 2)
    swapped = swapped.reshape((groups * og, cin // groups) + cfg["kernel"])
    pads = tuple((d * (k - 1) - p, d * (k - 1) - p + op) for k, p, op, d in
                 zip(cfg["kernel"], cfg["padding"], cfg["output_padding"], cfg["dilation"]))
    convolve = (F.convolve1d, F.convolve2d, F.convolve3d)[nsp - 1]
    expected = convolve(stretched, swapped, padding=pads, dilation=cfg["dilation"], groups=groups).data
    np.testing.assert_allclose(ck_fn(cfg)(x, w).data, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fn,cfg", [
    (F.conv_transpose2d, cfg_of((2, 3), (2, 2), n=1, cin=2, cout=2, stride=2, padding=(1, 0), output_padding=1)),
    (F.conv_transpose1d, cfg_of((3,), (3,), n=2, cin=2, cout=4, groups=2, dilation=2, output_padding=1)),
    (F.conv_transpose3d, cfg_of((2, 2, 2), (2, 1, 2), n=1, cin=1, cout=2, stride=(1, 2, 1), padding=(0, 0, 1))),
])
def test_gradcheck(fn, cfg):
    gradcheck(lambda x, w, b: fn(x, w, b, *args(cfg)), make_inputs(cfg, seed=4))


def test_unbatched_input_matches_torch():
    cfg = TABLE[4]
    x, w, b = make_inputs(cfg)
    out = compare(ck_fn(cfg), torch_fn(cfg), [x[0], w, b])
    assert out.shape == (3,) + out_sizes(cfg)


def test_float32_matches_torch():
    worst = 0.0
    for cfg in TABLE + [random_cfg(s) for s in range(3)]:
        x, w, *b = make_inputs(cfg, dtype=np.float32)
        ck_in = [convkit.tensor(a, requires_grad=True) for a in (x, w, *b)]
        th_in = [torch.tensor(a, requires_grad=True) for a in (x, w, *b)]
        ck_out, th_out = ck_fn(cfg)(*ck_in), torch_fn(cfg)(*th_in)
        cot = np.random.default_rng(1).standard_normal(ck_out.shape).astype(np.float32)
        ck_out.backward(cot)
        th_out.backward(torch.tensor(cot))
        for ours, theirs in [(ck_out.data, th_out)] + [(c.grad, t.grad) for c, t in zip(ck_in, th_in)]:
            assert ours.dtype == np.float32
            worst = max(worst, float(np.max(np.abs(ours - theirs.detach().numpy()))))
    assert worst < 1e-4, worst


# ------------------------------------------------------------------ bad input
X = np.zeros((1, 4, 5, 5))
W = np.zeros((4, 3, 3, 3))
TX, TW = torch.zeros(1, 4, 5, 5), torch.zeros(4, 3, 3, 3)


@pytest.mark.parametrize("call,torch_call,match", [
    (lambda: F.conv_transpose2d(X, W, stride=2, output_padding=2),
     lambda: TF.conv_transpose2d(TX, TW, stride=2, output_padding=2),
     "output_padding must be smaller than either stride or dilation"),
    (lambda: F.conv_transpose2d(X, W, padding=4), lambda: TF.conv_transpose2d(TX, TW, padding=4),
     "output size (-1, -1) is not positive"),
    (lambda: F.conv_transpose2d(X, W, padding="same"), lambda: TF.conv_transpose2d(TX, TW, padding="same"),
     "transposed convolution has no 'same'"),
    (lambda: F.conv_transpose2d(X, W, padding=-1), lambda: TF.conv_transpose2d(TX, TW, padding=-1),
     "padding must be >= 0"),
    (lambda: F.conv_transpose2d(X, W, output_padding=-1), lambda: TF.conv_transpose2d(TX, TW, output_padding=-1),
     "output_padding must be >= 0"),
    (lambda: F.conv_transpose2d(X, W, stride=0), lambda: TF.conv_transpose2d(TX, TW, stride=0),
     "stride must be >= 1"),
    (lambda: F.conv_transpose2d(np.zeros((1, 3, 5, 5)), W),
     lambda: TF.conv_transpose2d(torch.zeros(1, 3, 5, 5), TW), "input has 3 channels but weight expects 4"),
    (lambda: F.conv_transpose2d(X, W, groups=3), lambda: TF.conv_transpose2d(TX, TW, groups=3),
     "groups=3 must divide the input channels, weight.shape[0] = 4"),
    (lambda: F.conv_transpose2d(X, W, np.zeros(4), groups=2),
     lambda: TF.conv_transpose2d(TX, TW, torch.zeros(4), groups=2), "bias must have shape (6,)"),
    (lambda: F.conv_transpose2d(X, W[0]), lambda: TF.conv_transpose2d(TX, TW[0]),
     "weight must be 4-D (C_in, C_out/groups, kH, kW)"),
    (lambda: F.conv_transpose1d(X, W[..., 0]), lambda: TF.conv_transpose1d(TX, TW[..., 0]),
     "input must be 3-D (N, C_in, L)"),
    (lambda: F.conv_transpose2d(X, W.astype(np.float32)), lambda: TF.conv_transpose2d(TX.double(), TW),
     "input dtype float64 and weight dtype float32"),
])
def test_bad_input_raises_like_torch(call, torch_call, match):
    assert match in raises_like_torch(call, torch_call)


# ----------------------------------------------------------------- nn layers
MODULE_CASES = [
    (1, dict(in_channels=2, out_channels=4, kernel_size=3, stride=2, padding=1, output_padding=1), (2, 2, 5)),
    (2, dict(in_channels=4, out_channels=6, kernel_size=(3, 2), stride=(2, 1), groups=2, bias=False, dilation=2),
     (2, 4, 3, 4)),
    (2, dict(in_channels=3, out_channels=2, kernel_size=4, stride=2, padding=1), (3, 4, 4)),
    (3, dict(in_channels=2, out_channels=2, kernel_size=2, stride=2, output_padding=(1, 0, 1)), (1, 2, 2, 3, 2)),
]


@pytest.mark.parametrize("nsp,kwargs,shape", MODULE_CASES, ids=str)
def test_module_matches_torch_module(nsp, kwargs, shape):
    theirs = TORCH_MODULE[nsp](**kwargs, dtype=torch.float64)
    ours = CK_MODULE[nsp](**kwargs, dtype=np.float64)
    compare_modules(ours, theirs, np.random.default_rng(0).standard_normal(shape))


@pytest.mark.parametrize("output_size", [(9, 9), (10, 10), [9, 10], (2, 3, 10, 9)])
def test_output_size_selects_output_padding(output_size):
    theirs = torch.nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, dtype=torch.float64)
    ours = nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1, dtype=np.float64)
    ours.load_state_dict(theirs.state_dict())
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 5))
    out = compare(lambda t: ours(t, output_size=output_size), lambda t: theirs(t, output_size=output_size), [x])
    assert out.shape[2:] == tuple(output_size)[-2:]


def test_output_size_restores_a_strided_conv_input_shape():
    down, up = nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ConvTranspose2d(4, 1, 3, stride=2, padding=1)
    for size in (7, 8):
        x = np.zeros((1, 1, size, size), dtype=np.float32)
        assert up(down(x), output_size=x.shape).shape == x.shape


@pytest.mark.parametrize("output_size,match", [
    ((11, 9), "valid sizes range from (9, 9) to (10, 10)"),
    ((8, 9), "valid sizes range from (9, 9) to (10, 10)"),
    ((9,), "output_size must have 2 or 4 entries"),
])
def test_output_size_out_of_range_raises_like_torch(output_size, match):
    theirs = torch.nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1)
    ours = nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1)
    x = np.zeros((1, 3, 5, 5), dtype=np.float32)
    msg = raises_like_torch(lambda: ours(x, output_size=output_size),
                            lambda: theirs(torch.tensor(x), output_size=output_size))
    assert match in msg


def test_module_parameters_and_default_init():
    convkit.manual_seed(0)
    m = nn.ConvTranspose2d(8, 6, (2, 3), groups=2)
    assert m.weight.shape == (8, 3, 2, 3) and m.bias.shape == (6,) and m.weight.dtype == np.float32
    bound = 1 / math.sqrt(3 * 2 * 3)  # fan_in = out_channels/groups * prod(kernel), as torch
    for p in (m.weight, m.bias):
        assert 0.8 * bound < np.abs(p.data).max() <= bound
    assert nn.ConvTranspose1d(2, 4, 3, bias=False).bias is None


def test_module_rejects_other_padding_modes_like_torch():
    msg = raises_like_torch(lambda: nn.ConvTranspose2d(2, 2, 3, padding_mode="reflect"),
                            lambda: torch.nn.ConvTranspose2d(2, 2, 3, padding_mode="reflect"))
    assert "only padding_mode='zeros'" in msg
