"""Convolution (cross-correlation and true convolution), 1-D/2-D/3-D: functional ops and nn layers.

Held against PyTorch in float64 (forward and every input gradient, random
cotangent), against the literal loops of ``convkit.testing.reference_conv``,
and against finite differences.
"""

import math

import numpy as np
import pytest
from oracle import compare, compare_modules, raises_like_torch, torch

import convkit
import convkit.functional as F
import convkit.nn as nn
from convkit.ops import _args
from convkit.ops.conv import conv_backward, conv_forward
from convkit.testing.gradcheck import gradcheck
from convkit.testing.reference_conv import conv_reference

TF = torch.nn.functional
CK_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
CK_CONVOLVE = {1: F.convolve1d, 2: F.convolve2d, 3: F.convolve3d}
TORCH_CONV = {1: TF.conv1d, 2: TF.conv2d, 3: TF.conv3d}
CK_MODULE = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
TORCH_MODULE = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}
# torch warns that its asymmetric 'same' padding copies the input; that is the case under test.
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")

MODES = ("zeros", "reflect", "replicate", "circular")
TORCH_PAD_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}


def is_pairs(padding):
    return isinstance(padding, tuple) and all(isinstance(p, tuple) for p in padding)


def torch_conv(cfg, x, w, b=None, flip=False):
    """PyTorch's result for ``cfg``: F.conv*d, with F.pad for (low, high) pairs and a module for padding modes.

    ``flip``: true convolution, the kernel mirrored, and ``'same'`` split as ``convolve*d`` splits it.
    """
    nsp = cfg["nsp"]
    if flip:
        w = torch.flip(w, dims=tuple(range(2, 2 + nsp)))
    opts = dict(stride=cfg["stride"], dilation=cfg["dilation"], groups=cfg["groups"])
    padding, mode = cfg["padding"], cfg["mode"]
    if flip and padding == "same":  # true convolution centres an even kernel as SciPy does (the mirrored split)
        padding = _args.same_pads(cfg["kernel"], _args.ntuple(cfg["dilation"], nsp, "dilation", "t"), flip=True)
    if is_pairs(padding):
        x = TF.pad(x, [p for pair in reversed(padding) for p in pair], mode=TORCH_PAD_MODE[mode])
        return TORCH_CONV[nsp](x, w, b, padding=0, **opts)
    if mode == "zeros":
        return TORCH_CONV[nsp](x, w, b, padding=padding, **opts)
    m = TORCH_MODULE[nsp](w.shape[1] * cfg["groups"], w.shape[0], tuple(w.shape[2:]), padding=padding,
                          padding_mode=mode, dtype=torch.float64, **opts)
    return m._conv_forward(x, w, b)


def make_inputs(cfg, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((cfg["n"], cfg["cin"]) + cfg["spatial"]).astype(dtype)
    w = rng.standard_normal((cfg["cout"], cfg["cin"] // cfg["groups"]) + cfg["kernel"]).astype(dtype)
    return [x, w, rng.standard_normal(cfg["cout"]).astype(dtype)] if cfg["bias"] else [x, w]


def ck_conv(cfg, flip=False):
    fn = (CK_CONVOLVE if flip else CK_CONV)[cfg["nsp"]]
    return lambda x, w, b=None: fn(x, w, b, cfg["stride"], cfg["padding"], cfg["dilation"], cfg["groups"],
                                   padding_mode=cfg["mode"])


def cfg_of(spatial, kernel, *, n=2, cin=2, cout=3, stride=1, padding=0, dilation=1, groups=1, bias=True,
           mode="zeros"):
    return dict(nsp=len(spatial), n=n, cin=cin, cout=cout, spatial=tuple(spatial), kernel=tuple(kernel),
                stride=stride, padding=padding, dilation=dilation, groups=groups, bias=bias, mode=mode)


def fits(cfg) -> bool:
    """Whether PyTorch accepts ``cfg`` (kernel fits the padded input, padding-mode limits)."""
    nsp = cfg["nsp"]
    stride = _args.ntuple(cfg["stride"], nsp, "stride", "test")
    dilation = _args.ntuple(cfg["dilation"], nsp, "dilation", "test")
    pads = _args.conv_pads(cfg["padding"], nsp, cfg["kernel"], stride, dilation, "test")
    for n, k, d, (lo, hi) in zip(cfg["spatial"], cfg["kernel"], dilation, pads):
        if d * (k - 1) + 1 > n + lo + hi:
            return False
        if cfg["mode"] == "reflect" and max(lo, hi) >= n or cfg["mode"] == "circular" and max(lo, hi) > n:
            return False
    return True


def random_cfg(seed):
    """A random valid configuration: every option drawn, nsp = 1, 2, 3 in turn."""
    rng = np.random.default_rng(1000 + seed)
    nsp = 1 + seed % 3
    big = 9 if nsp < 3 else 6
    while True:
        groups = int(rng.integers(1, 4))
        cin, cout = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
        kernel = tuple(int(v) for v in rng.integers(1, 5 if nsp < 3 else 4, nsp))
        dilation = tuple(int(v) for v in rng.integers(1, 3, nsp))
        kind = rng.choice(["int", "tuple", "pairs", "valid", "same"])
        stride = (1,) * nsp if kind == "same" else tuple(int(v) for v in rng.integers(1, 4, nsp))
        padding = {
            "int": int(rng.integers(0, 3)),
            "tuple": tuple(int(v) for v in rng.integers(0, 3, nsp)),
            "pairs": tuple((int(a), int(b)) for a, b in rng.integers(0, 3, (nsp, 2))),
            "valid": "valid",
            "same": "same",
        }[kind]
        cfg = cfg_of(tuple(int(v) for v in rng.integers(3, big, nsp)), kernel, n=int(rng.integers(1, 3)),
                     cin=cin, cout=cout, stride=stride, padding=padding, dilation=dilation, groups=groups,
                     bias=bool(rng.random() < 0.7), mode=str(rng.choice(MODES)))
        if fits(cfg):
            return cfg


# Every option at least once, in each dimensionality.
TABLE = [
    cfg_of((9,), (3,)),
    cfg_of((10,), (4,), stride=3, padding=2, dilation=2, bias=False),
    cfg_of((8,), (3,), padding="same", mode="reflect"),
    cfg_of((8,), (4,), padding="same", dilation=3, mode="circular"),
    cfg_of((7,), (2,), cin=4, cout=4, groups=4, padding=1, mode="replicate"),
    cfg_of((7,), (3,), padding=((2, 0),), mode="reflect"),
    cfg_of((7, 8), (3, 3), stride=2, padding=1),
    cfg_of((7, 6), (2, 3), stride=(1, 2), padding=(1, 0), dilation=(2, 1), bias=False),
    cfg_of((6, 7), (4, 2), padding="same"),  # odd and even totals
    cfg_of((6, 7), (3, 2), padding="same", dilation=(1, 2), mode="replicate"),
    cfg_of((6, 6), (3, 3), padding="valid", stride=2),
    cfg_of((5, 6), (3, 3), cin=4, cout=6, groups=2, padding=2, mode="circular"),
    cfg_of((6, 5), (3, 3), cin=3, cout=6, groups=3, padding=(2, 1), mode="reflect"),  # depthwise, multiplier 2
    cfg_of((6, 6), (2, 3), padding=((0, 2), (1, 0)), mode="replicate", stride=(2, 1)),
    cfg_of((5, 5, 4), (3, 2, 2), padding=1, stride=(2, 1, 1)),
    cfg_of((4, 5, 5), (2, 3, 3), padding="same", dilation=(2, 1, 2), mode="circular", bias=False),
    cfg_of((4, 4, 5), (3, 3, 3), cin=2, cout=2, groups=2, padding=(1, 0, 1), mode="reflect"),
    cfg_of((4, 5, 4), (2, 2, 2), padding="valid", mode="replicate", dilation=2),
]


@pytest.mark.parametrize("cfg", TABLE + [random_cfg(s) for s in range(24)], ids=str)
def test_conv_matches_torch(cfg):
    compare(ck_conv(cfg), lambda *a: torch_conv(cfg, *a), make_inputs(cfg))


@pytest.mark.parametrize("cfg", TABLE[::2] + [random_cfg(s) for s in range(30, 36)], ids=str)
def test_convolve_is_conv_with_mirrored_kernel(cfg):
    compare(ck_conv(cfg, flip=True), lambda *a: torch_conv(cfg, *a, flip=True), make_inputs(cfg))


def test_convolve_is_textbook_convolution():
    # out[y] = sum_j w[j] x[y - j] on the 'full' range: a delta kernel shifts, np.convolve agrees.
    x, w = np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, -2.0, 0.5])
    out = F.convolve1d(x[None], w[None, None], padding=2).data[0]
    np.testing.assert_allclose(out, np.convolve(x, w, mode="full"), rtol=1e-14)


@pytest.mark.parametrize("seed", range(12))
def test_fast_path_matches_reference_loops(seed):
    cfg = random_cfg(100 + seed)
    x, w, *b = make_inputs(cfg, seed)
    nsp = cfg["nsp"]
    stride = _args.ntuple(cfg["stride"], nsp, "stride", "t")
    dilation = _args.ntuple(cfg["dilation"], nsp, "dilation", "t")
    opts = dict(stride=stride, dilation=dilation, groups=cfg["groups"], padding_mode=cfg["mode"],
                pads=_args.conv_pads(cfg["padding"], nsp, cfg["kernel"], stride, dilation, "t"))
    for flip in (False, True):
        fast, _ = conv_forward(x, w, *b, flip=flip, **opts)
        slow = conv_reference(x, w, *b, flip=flip, **opts)
        np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fn,cfg", [
    (F.conv2d, cfg_of((4, 4), (2, 3), n=1, cin=2, cout=2, stride=(2, 1), padding=1, dilation=(1, 2))),
    (F.conv2d, cfg_of((4, 3), (2, 2), n=1, cin=2, cout=2, groups=2, padding=((1, 0), (0, 1)), mode="reflect")),
    (F.conv1d, cfg_of((5,), (3,), n=2, cin=1, cout=2, stride=2, padding=2, mode="circular")),
    (F.convolve2d, cfg_of((3, 4), (2, 2), n=1, cin=1, cout=2, padding="same", mode="replicate")),
    (F.conv3d, cfg_of((3, 3, 2), (2, 2, 1), n=1, cin=1, cout=1, padding=(1, 0, 0))),
])
def test_gradcheck(fn, cfg):
    f = lambda x, w, b: fn(x, w, b, cfg["stride"], cfg["padding"], cfg["dilation"], cfg["groups"],  # noqa: E731
                           padding_mode=cfg["mode"])
    gradcheck(f, make_inputs(cfg, seed=3))


def test_backward_skips_unneeded_gradients():
    cfg = TABLE[6]
    x, w, b = make_inputs(cfg)
    out, saved = conv_forward(x, w, b, stride=(2, 2), pads=((1, 1), (1, 1)), dilation=(1, 1))
    dx, dw, db = conv_backward(np.ones_like(out), saved, needs=(False, True, False))
    assert dx is None and db is None and dw.shape == w.shape


def test_unbatched_input_matches_torch():
    cfg = cfg_of((6, 7), (3, 3), stride=2, padding="valid", mode="zeros")
    x, w, b = make_inputs(cfg)
    out = compare(ck_conv(cfg), lambda *a: torch_conv(cfg, *a), [x[0], w, b])
    assert out.shape == (3, 2, 3)


def test_dtype_is_kept_and_integer_input_becomes_float32():
    x = np.arange(2 * 6 * 6).reshape(1, 2, 6, 6)
    w = convkit.tensor(np.ones((3, 2, 3, 3), dtype=np.float32), requires_grad=True)
    y = F.conv2d(x, w)
    assert y.dtype == np.float32
    y.sum().backward()
    assert w.grad.dtype == np.float32
    assert F.conv2d(x.astype(np.float64), w.data.astype(np.float64)).dtype == np.float64


def test_nan_propagates_to_the_windows_that_see_it():
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 0, 0] = np.nan
    y = F.conv2d(x, np.ones((1, 1, 3, 3))).data[0, 0]
    assert np.isnan(y[0, 0]) and np.isfinite(y[1:, :]).all() and np.isfinite(y[:, 1:]).all()


def test_float32_matches_torch():
    """float32 forward and gradients vs torch float32; tolerance covers sums of ~100 float32 products."""
    worst = 0.0
    for cfg in TABLE[6:14] + [random_cfg(s) for s in range(3)]:
        x, w, *b = make_inputs(cfg, dtype=np.float32)
        ck_in = [convkit.tensor(a, requires_grad=True) for a in (x, w, *b)]
        th_in = [torch.tensor(a, requires_grad=True) for a in (x, w, *b)]
        ck_out, th_out = ck_conv(cfg)(*ck_in), torch_conv(cfg, *th_in)
        assert ck_out.dtype == np.float32
        cot = np.random.default_rng(1).standard_normal(ck_out.shape).astype(np.float32)
        ck_out.backward(cot)
        th_out.backward(torch.tensor(cot))
        pairs = [(ck_out.data, th_out)] + [(c.grad, t.grad) for c, t in zip(ck_in, th_in)]
        for ours, theirs in pairs:
            assert ours.dtype == np.float32
            worst = max(worst, float(np.max(np.abs(ours - theirs.detach().numpy()))))
    assert worst < 1e-4, worst


# ------------------------------------------------------------------ bad input
X4 = np.zeros((1, 4, 6, 6))
W8 = np.zeros((8, 4, 3, 3))


@pytest.mark.parametrize("call,torch_call,match", [
    (lambda: F.conv2d(X4[0, 0], W8), lambda: TF.conv2d(torch.zeros(6, 6), torch.zeros(8, 4, 3, 3)),
     "input must be 4-D (N, C_in, H, W)"),
    (lambda: F.conv2d(X4, W8[0]), lambda: TF.conv2d(torch.zeros(1, 4, 6, 6), torch.zeros(4, 3, 3)),
     "weight must be 4-D (C_out, C_in/groups, kH, kW)"),
    (lambda: F.conv2d(np.zeros((1, 3, 6, 6)), W8),
     lambda: TF.conv2d(torch.zeros(1, 3, 6, 6), torch.zeros(8, 4, 3, 3)), "input has 3 channels but weight expects 4"),
    (lambda: F.conv2d(np.zeros((1, 6, 6, 4)), W8),
     lambda: TF.conv2d(torch.zeros(1, 6, 6, 4), torch.zeros(8, 4, 3, 3)), "channels-last (NHWC)"),
    (lambda: F.conv2d(X4, np.zeros((6, 2, 3, 3)), groups=4),
     lambda: TF.conv2d(torch.zeros(1, 4, 6, 6), torch.zeros(6, 2, 3, 3), groups=4),
     "groups=4 must divide the output channels, weight.shape[0] = 6"),
    (lambda: F.conv2d(X4, np.zeros((6, 2, 3, 3)), groups=0),
     lambda: TF.conv2d(torch.zeros(1, 4, 6, 6), torch.zeros(6, 2, 3, 3), groups=0), "groups must be a positive"),
    (lambda: F.conv2d(X4, W8, np.zeros(4)),
     lambda: TF.conv2d(torch.zeros(1, 4, 6, 6), torch.zeros(8, 4, 3, 3), torch.zeros(4)), "bias must have shape (8,)"),
    (lambda: F.conv2d(X4, np.zeros((8, 4, 7, 3))),
     lambda: TF.conv2d(torch.zeros(1, 4, 6, 6), torch.zeros(8, 4, 7, 3)), "the 7×3 kernel is larger than the 6×6"),
    (lambda: F.conv2d(X4, W8, dilation=3),
     lambda: TF.conv2d(torch.zeros(1, 4, 6, 6), torch.zeros(8, 4, 3, 3), dilation=3), "dilation 3×3: it spans 7×7"),
    (lambda: F.conv2d(X4, W8, stride=0),
     lambda: TF.conv2d(torch.zeros(1, 4, 6, 6), torch.zeros(8, 4, 3, 3), stride=0), "stride must be >= 1"),
    (lambda: F.conv2d(X4, W8, dilation=(1, -1)),
     lambda: TF.conv2d(torch.zeros(1, 4, 6, 6), torch.zeros(8, 4, 3, 3), dilation=(1, -1)), "dilation must be >= 1"),
    (lambda: F.conv2d(X4, W8, padding=-1),
     lambda: TF.conv2d(torch.zeros(1, 4, 6, 6), torch.zeros(8, 4, 3, 3), padding=-1), "padding must be >= 0"),
    (lambda: F.conv2d(X4, W8, padding="full"),
     lambda: TF.conv2d(torch.zeros(1, 4, 6, 6), torch.zeros(8, 4, 3, 3), padding="full"), "padding must be 'valid'"),
    (lambda: F.conv2d(X4, W8, stride=2, padding="same"),
     lambda: TF.conv2d(torch.zeros(1, 4, 6, 6), torch.zeros(8, 4, 3, 3), stride=2, padding="same"), "stride 1"),
    (lambda: F.conv2d(X4.astype(np.float32), W8),
     lambda: TF.conv2d(torch.zeros(1, 4, 6, 6), torch.zeros(8, 4, 3, 3, dtype=torch.float64)),
     "input dtype float32 and weight dtype float64"),
    (lambda: F.conv2d(np.zeros((1, 4, 0, 6)), W8, padding=2),
     lambda: TF.conv2d(torch.zeros(1, 4, 0, 6), torch.zeros(8, 4, 3, 3), padding=2), "spatial sizes must be positive"),
    (lambda: F.conv1d(np.zeros((1, 4, 6)), np.zeros((2, 4, 3)), padding=6, padding_mode="reflect"),
     lambda: torch.nn.Conv1d(4, 2, 3, padding=6, padding_mode="reflect")(torch.zeros(1, 4, 6)),
     "reflect padding (6, 6) must be smaller than the input size 6"),
    (lambda: F.conv1d(np.zeros((1, 4, 6)), np.zeros((2, 4, 3)), padding=7, padding_mode="circular"),
     lambda: torch.nn.Conv1d(4, 2, 3, padding=7, padding_mode="circular")(torch.zeros(1, 4, 6)),
     "circular padding (7, 7) must not exceed"),
    (lambda: F.conv3d(np.zeros((4, 6, 6)), np.zeros((2, 4, 3, 3, 3))),
     lambda: TF.conv3d(torch.zeros(4, 6, 6), torch.zeros(2, 4, 3, 3, 3)), "input must be 5-D (N, C_in, D, H, W)"),
    (lambda: F.conv1d(np.zeros((1, 4, 6)), np.zeros((2, 4, 3)), stride=1.5),
     lambda: TF.conv1d(torch.zeros(1, 4, 6), torch.zeros(2, 4, 3), stride=1.5), "stride must be an int"),
    (lambda: F.conv2d(X4, "weights"), lambda: TF.conv2d(torch.zeros(1, 4, 6, 6), "weights"),
     "weight must be a Tensor or ndarray"),
])
def test_bad_input_raises_like_torch(call, torch_call, match):
    assert match in raises_like_torch(call, torch_call)


def test_convkit_only_arguments_are_checked():
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        F.conv2d(X4, W8, padding_mode="mirror")
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        nn.Conv2d(4, 8, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="kernel_size must be >= 1"):  # torch builds an empty weight
        nn.Conv2d(4, 8, 0)


# ----------------------------------------------------------------- nn layers
MODULE_CASES = [
    (1, dict(in_channels=2, out_channels=4, kernel_size=3, stride=2, padding=1, padding_mode="circular"), (2, 2, 9)),
    (2, dict(in_channels=1, out_channels=6, kernel_size=5, padding=2), (2, 1, 8, 8)),
    (2, dict(in_channels=4, out_channels=6, kernel_size=(3, 2), padding="same", dilation=(1, 2), groups=2,
             bias=False, padding_mode="reflect"), (2, 4, 6, 7)),
    (2, dict(in_channels=3, out_channels=3, kernel_size=3, groups=3, padding="valid", padding_mode="replicate"),
     (3, 6, 5)),
    (3, dict(in_channels=2, out_channels=2, kernel_size=2, stride=(1, 2, 1), padding=(1, 0, 1)), (1, 2, 4, 5, 3)),
]


@pytest.mark.parametrize("nsp,kwargs,shape", MODULE_CASES, ids=str)
def test_module_matches_torch_module(nsp, kwargs, shape):
    theirs = TORCH_MODULE[nsp](**kwargs, dtype=torch.float64)
    ours = CK_MODULE[nsp](**kwargs, dtype=np.float64)
    compare_modules(ours, theirs, np.random.default_rng(0).standard_normal(shape))


def test_module_parameters_and_default_init():
    convkit.manual_seed(0)
    m = nn.Conv2d(3, 8, (3, 5), groups=1)
    assert m.weight.shape == (8, 3, 3, 5) and m.bias.shape == (8,)
    assert m.weight.dtype == np.float32 and m.bias.dtype == np.float32
    bound = 1 / math.sqrt(3 * 3 * 5)
    for p in (m.weight, m.bias):
        assert np.abs(p.data).max() <= bound and np.abs(p.data).max() > 0.8 * bound
    assert [name for name, _ in m.named_parameters()] == ["weight", "bias"]
    assert nn.Conv1d(2, 4, 3, bias=False).bias is None


@pytest.mark.parametrize("kwargs,match", [
    (dict(in_channels=3, out_channels=4, kernel_size=3, groups=2), "groups=2 must divide"),
    (dict(in_channels=4, out_channels=4, kernel_size=3, groups=0), "groups must be a positive int"),
    (dict(in_channels=4, out_channels=4, kernel_size=3, padding="full"), "padding must be 'same', 'valid'"),
    (dict(in_channels=4, out_channels=4, kernel_size=3, stride=2, padding="same"), "padding='same' needs stride 1"),
])
def test_module_rejects_bad_arguments_like_torch(kwargs, match):
    assert match in raises_like_torch(lambda: nn.Conv2d(**kwargs), lambda: torch.nn.Conv2d(**kwargs))
