"""The compiled kernels behind convolution: unfold/fold, padding, and every algorithm's passes.

Each is held to PyTorch and to the literal loops of
``convkit.testing.reference_conv``, in float64 (1e-10) and float32 (the
algorithms' stated error, relative to the largest value of the float64
result), on the shapes that catch index mistakes: batch 1, one channel,
sizes that are not multiples of the Winograd tile (4) or of 8/16, strides 2
and 3, dilation, groups and depthwise, 1-D and 3-D, every padding mode,
non-contiguous inputs. The algorithms run both on a padded input and with
the zero padding fused (``conv_problem(..., pads=...)``: the unpadded input
goes in, its own gradient comes out).
"""

import numpy as np
import pytest
from oracle import torch

import convkit.functional as F
from convkit.ops.conv_algorithms import ALGORITHMS, conv_problem
from convkit.ops.padding import pad_backward, pad_forward
from convkit.ops.windows import fold, fold_columns, out_sizes, unfold, windows
from convkit.testing.reference_conv import conv_reference

TF = torch.nn.functional
TORCH_CONV = {1: TF.conv1d, 2: TF.conv2d, 3: TF.conv3d}
CK_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
TORCH_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}
F32_TOL = {"im2col": 3e-6, "winograd": 3e-6, "winograd4": 3e-5, "fft": 3e-6, "direct": 3e-6}
NAMES = tuple(ALGORITHMS)


def rng(seed=0):
    return np.random.default_rng(seed)


def strided(a):
    """``a`` as a non-contiguous view with the same values."""
    wide = np.empty(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    wide[..., ::2] = a
    return wide[..., ::2]


# ------------------------------------------------------------------ unfold / fold
WINDOW_CASES = [  # (shape, kernel, stride, dilation, pads, block)
    ((2, 3, 11), (3,), (2,), (1,), ((1, 2),), 1),
    ((4, 2, 9, 7), (3, 2), (2, 1), (1, 2), ((1, 2), (0, 1)), 2),
    ((1, 1, 5, 6), (5, 5), (1, 1), (1, 1), ((2, 2), (2, 2)), 1),
    ((3, 2, 10, 9), (3, 3), (3, 3), (1, 1), ((0, 0), (1, 1)), 3),
    ((2, 2, 5, 4, 6), (2, 3, 2), (1, 2, 3), (2, 1, 1), ((1, 0), (0, 2), (1, 1)), 2),
    ((2, 2, 3, 4), (1, 1), (2, 3), (1, 1), ((0, 0), (0, 0)), 1),
    ((2, 1, 4, 4), (3, 3), (1, 1), (1, 1), ((3, 3), (3, 3)), 1),  # windows wholly in the padding
]


def unfold_reference(x, kernel, stride, dilation, pads, block):
    xp = np.pad(x, [(0, 0), (0, 0)] + [tuple(p) for p in pads])
    view = windows(xp, kernel, stride, dilation)  # (N, C, *out, *k)
    nsp = len(kernel)
    n, c = x.shape[:2]
    cols = view.reshape((n, c, -1) + tuple(kernel))
    cols = np.moveaxis(cols.reshape(n, c, -1, int(np.prod(kernel))), 2, 3)  # (N, C, K, P)
    cols = cols.reshape(n // block, block, c, cols.shape[2], -1).transpose(0, 2, 3, 1, 4)
    return cols.reshape(n // block, c, cols.shape[2], -1), nsp


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape,kernel,stride,dilation,pads,block", WINDOW_CASES)
def test_unfold_matches_the_strided_view_and_fold_is_its_adjoint(shape, kernel, stride, dilation, pads, block, dtype):
    r = rng(1)
    x = r.standard_normal(shape).astype(dtype)
    cols = unfold(strided(x), kernel, stride, dilation, pads, block=block)
    want, _ = unfold_reference(x, kernel, stride, dilation, pads, block)
    np.testing.assert_array_equal(cols, want)
    c = r.standard_normal(cols.shape).astype(dtype)
    dx = fold_columns(c, shape, kernel, stride, dilation, pads, block=block)
    assert dx.shape == shape and dx.dtype == dtype
    np.testing.assert_allclose(np.sum(cols.astype(np.float64) * c), np.sum(x.astype(np.float64) * dx),
                               rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_fold_of_the_window_view_layout_and_out_sizes_with_padding():
    r = rng(2)
    x = r.standard_normal((2, 3, 8, 7))
    kernel, stride, dilation = (3, 2), (2, 3), (2, 1)
    c = r.standard_normal(windows(x, kernel, stride, dilation).shape)
    dx = fold(strided(c), x.shape, kernel, stride, dilation)
    np.testing.assert_allclose(np.sum(windows(x, kernel, stride, dilation) * c), np.sum(x * dx), rtol=1e-12)
    assert out_sizes((8, 7), kernel, stride, dilation, ((1, 2), (0, 3))) == (4, 3)


# ------------------------------------------------------------------ padding
PAD_CASES = [
    ((1, 1, 5), ((4, 3),)),
    ((2, 3, 7), ((2, 3),)),
    ((1, 2, 5, 6), ((1, 2), (3, 0))),
    ((2, 1, 4, 5, 3), ((1, 1), (0, 2), (2, 1))),
    ((3, 4, 6), ((0, 0), (1, 5))),  # the last two axes of a 3-d array: the first is a batch axis
]


def _paddable(shape, pads, mode) -> bool:
    """Torch's limits: reflect needs padding smaller than the input, circular at most the input."""
    sizes = shape[len(shape) - len(pads):]
    if mode == "reflect":
        return all(lo < n and hi < n for (lo, hi), n in zip(pads, sizes))
    if mode == "circular":
        return all(lo <= n and hi <= n for (lo, hi), n in zip(pads, sizes))
    return True


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape,pads,mode", [(s, p, m) for s, p in PAD_CASES
                                             for m in ("zeros", "reflect", "replicate", "circular")
                                             if _paddable(s, p, m)])
def test_padding_kernels_match_torch(shape, pads, mode, dtype):
    r = rng(3)
    x = r.standard_normal(shape).astype(dtype)
    out, saved = pad_forward(strided(x), pads=pads, mode=mode)
    torch_pads = [p for pair in reversed(pads) for p in pair]
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    lead = xt.ndim - len(pads)
    # torch pads the trailing axes of a (N, C, ...) tensor: view the leading axes as (1, L).
    yt = TF.pad(xt.reshape((1, -1) + tuple(shape[lead:])), torch_pads, mode=TORCH_MODE[mode])
    np.testing.assert_array_equal(out, yt.detach().numpy().reshape(out.shape).astype(dtype))
    g = r.standard_normal(out.shape).astype(dtype)
    yt.backward(torch.tensor(g.astype(np.float64)).reshape(yt.shape))
    dx, = pad_backward(strided(g), saved)
    assert dx.shape == shape and dx.dtype == dtype
    tol = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=tol, atol=tol)


def test_zero_padding_with_a_value():
    x = np.arange(6.0, dtype=np.float32).reshape(1, 2, 3)
    out, saved = pad_forward(x, pads=((1, 2),), mode="zeros", value=-np.inf)
    assert out.dtype == np.float32
    assert out.tolist() == [[[-np.inf, 0, 1, 2, -np.inf, -np.inf], [-np.inf, 3, 4, 5, -np.inf, -np.inf]]]
    np.testing.assert_array_equal(pad_backward(np.ones_like(out), saved)[0], np.ones_like(x))


# ------------------------------------------------------------------ algorithms on odd shapes
# (input shape, weight shape, stride, dilation, groups, pads)
CASES = [
    ((1, 1, 7, 9), (2, 1, 3, 3), (1, 1), (1, 1), 1, ((1, 1), (1, 1))),  # batch 1, one channel, 7x9 out
    ((2, 3, 5, 6), (4, 3, 3, 3), (1, 1), (1, 1), 1, ((0, 2), (1, 0))),  # asymmetric padding, 3x4 out
    ((3, 2, 13, 11), (5, 2, 3, 3), (1, 1), (1, 1), 1, ((1, 1), (1, 1))),  # 13x11: not a multiple of 4
    ((2, 4, 17, 18), (4, 4, 3, 3), (1, 1), (1, 1), 1, ((1, 1), (1, 1))),  # past 16
    ((2, 6, 9, 10), (6, 1, 3, 3), (1, 1), (1, 1), 6, ((1, 1), (1, 1))),  # depthwise
    ((2, 4, 9, 10), (8, 2, 3, 3), (1, 1), (1, 1), 2, ((1, 1), (0, 0))),  # groups, 2 outputs per input
    ((2, 3, 12, 11), (4, 3, 3, 3), (2, 2), (1, 1), 1, ((1, 1), (1, 1))),  # stride 2
    ((2, 2, 14, 13), (3, 2, 5, 5), (3, 2), (1, 1), 1, ((2, 2), (2, 2))),  # stride 3 and 2, 5x5
    ((1, 3, 11, 12), (2, 3, 3, 2), (1, 1), (2, 3), 1, ((2, 1), (0, 1))),  # dilation
    ((2, 1, 28, 28), (6, 1, 5, 5), (1, 1), (1, 1), 1, ((2, 2), (2, 2))),  # LeNet C1, small batch
    ((2, 6, 14, 14), (16, 6, 5, 5), (1, 1), (1, 1), 1, ((0, 0), (0, 0))),  # LeNet C3
    ((2, 3, 23, 21), (4, 3, 7, 7), (2, 2), (1, 1), 1, ((3, 3), (3, 3))),  # stem-like 7x7 stride 2
    ((2, 4, 6, 6), (5, 4, 1, 1), (2, 2), (1, 1), 1, ((0, 0), (0, 0))),  # 1x1 stride 2
    ((2, 4, 6, 5), (5, 4, 1, 1), (1, 1), (1, 1), 1, ((1, 0), (0, 1))),  # 1x1 with padding
    ((1, 2, 4, 4), (3, 2, 3, 3), (1, 1), (1, 1), 1, ((4, 3), (3, 4))),  # padding wider than the kernel
    ((2, 3, 15), (4, 3, 3), (1,), (1,), 1, ((1, 1),)),  # 1-D
    ((2, 4, 19), (4, 2, 4), (3,), (2,), 2, ((2, 3),)),  # 1-D, stride 3, dilation, groups
    ((1, 2, 5, 6, 7), (3, 2, 3, 2, 3), (1, 2, 1), (1, 1, 2), 1, ((1, 1), (0, 1), (2, 1))),  # 3-D
    ((2, 4, 4, 5, 3), (4, 1, 2, 2, 2), (1, 1, 1), (1, 1, 1), 4, ((1, 0), (0, 0), (1, 1))),  # 3-D depthwise
]


def runs(fused_options=(False, True)):
    out = []
    for case in CASES:
        xs, ws, s, d, g, pads = case
        p = conv_problem(xs, ws, s, d, g, np.float64, pads=pads)
        for name, algo in ALGORITHMS.items():
            if algo.unsupported(p) is None:
                out += [(name, case, fused) for fused in fused_options]
    return out


def case_id(run):
    name, (xs, ws, s, d, g, pads), fused = run
    return f"{name}-{'x'.join(map(str, xs))}-w{'x'.join(map(str, ws))}-s{s}-d{d}-g{g}-{'fused' if fused else 'padded'}"


RUNS = runs()


def torch_conv(x, w, gy, case):
    xs, ws, s, d, g, pads = case
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    yt = TORCH_CONV[x.ndim - 2](TF.pad(xt, [q for pr in reversed(pads) for q in pr]), wt, stride=s, dilation=d, groups=g)
    yt.backward(torch.tensor(gy))
    return yt.detach().numpy(), xt.grad.numpy(), wt.grad.numpy()


def run_algorithm(name, case, x, w, rng_, fused):
    """``(y, dx, dw, gy)`` of one algorithm, called directly (padding fused into it, or done first)."""
    xs, ws, s, d, g, pads = case
    algo = ALGORITHMS[name]
    if fused:
        p = conv_problem(x.shape, w.shape, s, d, g, x.dtype, pads=pads)
        xin = strided(x)
    else:
        xin = np.pad(x, [(0, 0), (0, 0)] + [tuple(q) for q in pads])
        p = conv_problem(xin.shape, w.shape, s, d, g, x.dtype)
    y, cache = algo.forward(xin, w, p)
    gy = rng_.standard_normal(y.shape).astype(x.dtype)
    dx, dw = algo.backward(strided(gy), xin, w, p, cache, True, True)
    if not fused:
        dx = dx[(slice(None), slice(None)) + tuple(slice(lo, lo + n) for (lo, _), n in zip(pads, x.shape[2:]))]
    return y, dx, dw, gy


def data(case, dtype, seed):
    r = rng(seed)
    xs, ws = case[:2]
    x = r.standard_normal(xs)
    w = r.standard_normal(ws) / np.sqrt(np.prod(ws[1:]))
    return x.astype(dtype), w.astype(dtype), r


@pytest.mark.parametrize("run", RUNS, ids=case_id)
def test_float64_matches_torch(run):
    name, case, fused = run
    x, w, r = data(case, np.float64, 4)
    y, dx, dw, gy = run_algorithm(name, case, x, w, r, fused)
    for got, want in zip((y, dx, dw), torch_conv(x, w, gy, case)):
        assert got.shape == want.shape and got.dtype == np.float64
        np.testing.assert_allclose(got, want, atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("run", RUNS, ids=case_id)
def test_float32_within_the_stated_error(run):
    name, case, fused = run
    x, w, r = data(case, np.float32, 5)
    y, dx, dw, gy = run_algorithm(name, case, x, w, r, fused)
    wants = torch_conv(x.astype(np.float64), w.astype(np.float64), gy.astype(np.float64), case)
    for got, want in zip((y, dx, dw), wants):
        assert got.dtype == np.float32 and got.shape == want.shape
        assert np.abs(got - want).max() <= F32_TOL[name] * np.abs(want).max()


# The literal loops are slow: they check the cases whose input and weight sizes multiply to at most
# 2e5 (torch checks every case above).
SMALL_RUNS = [run for run in runs((True,)) if np.prod(run[1][0]) * np.prod(run[1][1]) <= 2e5]


@pytest.mark.parametrize("run", SMALL_RUNS, ids=case_id)
def test_forward_matches_the_reference_loops(run):
    name, case, fused = run
    xs, ws, s, d, g, pads = case
    x, w, r = data(case, np.float64, 6)
    y = run_algorithm(name, case, x, w, r, fused)[0]
    np.testing.assert_allclose(y, conv_reference(x, w, stride=s, pads=pads, dilation=d, groups=g),
                               rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ the public API
@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("name", NAMES)
def test_public_conv_with_every_padding_mode_and_non_contiguous_input(name, mode):
    r = rng(7)
    x = r.standard_normal((2, 3, 9, 14))[..., ::2]  # (2, 3, 9, 7), non-contiguous
    w = r.standard_normal((4, 3, 3, 3))
    b = r.standard_normal(4)
    xt, wt, bt = (torch.tensor(np.ascontiguousarray(a), requires_grad=True) for a in (x, w, b))
    module = torch.nn.Conv2d(3, 4, 3, padding=(2, 1), padding_mode=mode, dtype=torch.float64)
    yt = module._conv_forward(xt, wt, bt)
    from convkit import tensor
    xk, wk, bk = (tensor(a, requires_grad=True) for a in (x, w, b))
    yk = F.conv2d(xk, wk, bk, padding=(2, 1), padding_mode=mode, algorithm=name)
    np.testing.assert_allclose(yk.data, yt.detach().numpy(), atol=1e-10, rtol=1e-8)
    g = r.standard_normal(yk.shape)
    yk.backward(g)
    yt.backward(torch.tensor(g))
    for ours, theirs in ((xk, xt), (wk, wt), (bk, bt)):
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("nsp", [1, 3])
@pytest.mark.parametrize("name", ["im2col", "direct", "fft"])
def test_public_1d_and_3d_float32(name, nsp):
    r = rng(8)
    shape = (2, 3) + (11, 7, 6)[:nsp] if nsp == 3 else (2, 3, 13)
    x = r.standard_normal(shape).astype(np.float32)
    w = (r.standard_normal((4, 3) + (3,) * nsp) / 5).astype(np.float32)
    y = CK_CONV[nsp](x, w, None, 2, 1, algorithm=name).data
    want = TORCH_CONV[nsp](torch.tensor(x.astype(np.float64)), torch.tensor(w.astype(np.float64)), None, 2, 1)
    assert y.dtype == np.float32
    assert np.abs(y - want.numpy()).max() <= F32_TOL[name] * np.abs(want.numpy()).max()


def test_winograd_on_every_small_output_size():
    """Outputs of 1 to 9 per axis: every remainder of the 2x2 and 4x4 tiles, with fused padding."""
    r = rng(9)
    for h in range(1, 10):
        for wd in (1, 3, 4, 5, 8):
            x = r.standard_normal((1, 2, h, wd))
            w = r.standard_normal((3, 2, 3, 3))
            want = TF.conv2d(torch.tensor(x), torch.tensor(w), padding=1).numpy()
            for name in ("winograd", "winograd4"):
                p = conv_problem(x.shape, w.shape, (1, 1), (1, 1), 1, np.float64, pads=((1, 1), (1, 1)))
                y, _ = ALGORITHMS[name].forward(x, w, p)
                np.testing.assert_allclose(y, want, atol=1e-10, rtol=1e-8, err_msg=f"{name} {h}x{wd}")
