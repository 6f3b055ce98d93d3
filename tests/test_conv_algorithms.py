"""Convolution algorithms (im2col, winograd, winograd4, fft, direct, auto) and their selection.

Every algorithm that can run a case is held, forward and both gradients,
to PyTorch (float64 at 1e-10; float32 at a stated relative tolerance) and
to the literal loops of ``convkit.testing.reference_conv``: the forward
directly, the gradients through the adjoint identities
``<dx, x'> = <conv(x', w), g>`` and ``<dw, w'> = <conv(x, w'), g>``, which
hold exactly for a linear map.
"""

import functools

import numpy as np
import pytest
from oracle import torch

import convkit
import convkit.backends as backends
import convkit.functional as F
import convkit.nn as nn
from convkit.ops.conv import conv_backward, conv_forward
from convkit.ops.conv_algorithms import ALGORITHMS, auto, conv_problem, im2col
from convkit.ops.conv_transpose import conv_transpose_backward, conv_transpose_forward
from convkit.testing.reference_conv import conv_reference

TF = torch.nn.functional
TORCH_CONV = {1: TF.conv1d, 2: TF.conv2d, 3: TF.conv3d}
TORCH_CONV_T = {1: TF.conv_transpose1d, 2: TF.conv_transpose2d, 3: TF.conv_transpose3d}
NAMES = tuple(ALGORITHMS)

# Largest float32 error allowed, relative to the largest |value| of the float64 result.
# Measured (README.md, section Speed): 5e-7 for im2col, fft and direct, 1e-6 for
# winograd F(2x2,3x3), 9e-6 for winograd4 F(4x4,3x3), whose transforms carry 1/6, 1/24 and 8.
F32_TOL = {"im2col": 3e-6, "winograd": 3e-6, "winograd4": 3e-5, "fft": 3e-6, "direct": 3e-6}

# (input shape, weight shape, stride, dilation, groups, pads)
CASES = [
    ((2, 4, 9, 9), (6, 4, 3, 3), 1, 1, 1, ((1, 1), (1, 1))),
    ((2, 4, 9, 10), (6, 2, 3, 3), 1, 1, 2, ((0, 1), (2, 0))),
    ((3, 1, 12, 12), (5, 1, 5, 5), 1, 1, 1, ((2, 2), (2, 2))),
    ((2, 4, 11, 11), (6, 4, 3, 3), 2, 1, 1, ((1, 1), (1, 1))),
    ((2, 4, 11, 11), (6, 4, 3, 2), 1, 2, 1, ((1, 1), (0, 0))),
    ((2, 3, 10), (4, 3, 4), 1, 1, 1, ((1, 2),)),
    ((2, 3, 13), (6, 1, 3), 3, 2, 3, ((0, 0),)),
    ((2, 2, 5, 6, 7), (3, 2, 2, 3, 2), (1, 2, 1), 1, 1, ((0, 1), (1, 0), (1, 1))),
    ((1, 4, 12, 12), (4, 2, 9, 9), 1, 1, 2, ((4, 4), (4, 4))),
    ((2, 4, 5, 5), (4, 4, 1, 1), 1, 1, 1, ((0, 0), (0, 0))),
    ((2, 4, 5, 5), (4, 4, 1, 1), 2, 1, 1, ((0, 0), (0, 0))),
    ((3, 6, 4, 4), (6, 1, 3, 3), 1, 1, 6, ((1, 1), (1, 1))),  # depthwise
    ((1, 3, 3, 5), (2, 3, 3, 3), 1, 1, 1, ((0, 0), (0, 0))),  # one-row output
]


def geometry(case):
    xs, ws, s, d, g, pads = case
    nsp = len(xs) - 2
    stride = s if isinstance(s, tuple) else (s,) * nsp
    dilation = (d,) * nsp
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(xs[2:], pads))
    return stride, dilation, g, pads, padded


def runnable(case, dtype=np.float64):
    xs, ws = case[:2]
    stride, dilation, g, _, padded = geometry(case)
    p = conv_problem(xs[:2] + padded, ws, stride, dilation, g, dtype)
    return [(name, case) for name, a in ALGORITHMS.items() if a.unsupported(p) is None]


RUNS = [run for case in CASES for run in runnable(case)]


def data(case, dtype, seed=0):
    rng = np.random.default_rng(seed)
    xs, ws = case[:2]
    x = rng.standard_normal(xs)
    w = rng.standard_normal(ws) / np.sqrt(np.prod(ws[1:]))
    return x.astype(dtype), w.astype(dtype), rng


def torch_results(case, x, w, gy):
    stride, dilation, groups, pads, _ = geometry(case)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    xpt = TF.pad(xt, [p for pair in reversed(pads) for p in pair])
    yt = TORCH_CONV[x.ndim - 2](xpt, wt, stride=stride, dilation=dilation, groups=groups)
    yt.backward(torch.tensor(gy))
    return yt.detach().numpy(), xt.grad.numpy(), wt.grad.numpy()


def run_algorithm(name, case, x, w, gy):
    stride, dilation, groups, pads, _ = geometry(case)
    y, saved = conv_forward(x, w, stride=stride, pads=pads, dilation=dilation, groups=groups, algorithm=ALGORITHMS[name])
    dx, dw, _ = conv_backward(gy, saved, (True, True, False))
    return y, dx, dw


def test_every_case_is_run_by_several_algorithms():
    assert {name for name, _ in RUNS} == set(NAMES)
    assert all(len(runnable(case)) >= 3 for case in CASES)


def forward_and_grads(name, case, x, w, rng):
    """``(y, dx, dw, gy)`` from ``name`` for a random upstream gradient ``gy``."""
    stride, dilation, groups, pads, _ = geometry(case)
    y, saved = conv_forward(x, w, stride=stride, pads=pads, dilation=dilation, groups=groups, algorithm=ALGORITHMS[name])
    gy = rng.standard_normal(y.shape).astype(x.dtype)
    dx, dw, _ = conv_backward(gy, saved, (True, True, False))
    return y, dx, dw, gy


@pytest.mark.parametrize("name,case", RUNS)
def test_float64_matches_torch(name, case):
    x, w, rng = data(case, np.float64)
    y, dx, dw, gy = forward_and_grads(name, case, x, w, rng)
    for got, want in zip((y, dx, dw), torch_results(case, x, w, gy)):
        assert got.shape == want.shape and got.dtype == np.float64
        np.testing.assert_allclose(got, want, atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("name,case", RUNS)
def test_float32_within_stated_tolerance_of_float64_torch(name, case):
    x, w, rng = data(case, np.float32, seed=1)
    y, dx, dw, gy = forward_and_grads(name, case, x, w, rng)
    for got, want in zip((y, dx, dw), torch_results(case, x.astype(np.float64), w.astype(np.float64),
                                                     gy.astype(np.float64))):
        assert got.dtype == np.float32
        assert np.abs(got - want).max() <= F32_TOL[name] * np.abs(want).max()


@functools.cache
def reference(index):
    """Inputs, directions and the reference-loop results for ``CASES[index]`` (shared by the algorithms)."""
    case = CASES[index]
    stride, dilation, groups, pads, _ = geometry(case)
    opts = dict(stride=stride, pads=pads, dilation=dilation, groups=groups)
    x, w, rng = data(case, np.float64, seed=2)
    x2, w2 = rng.standard_normal(x.shape), rng.standard_normal(w.shape)
    y = conv_reference(x, w, **opts)
    gy = rng.standard_normal(y.shape)
    return x, w, x2, w2, gy, y, np.sum(conv_reference(x2, w, **opts) * gy), np.sum(conv_reference(x, w2, **opts) * gy)


@pytest.mark.parametrize("name,case", RUNS)
def test_matches_reference_loops_forward_and_adjoints(name, case):
    stride, dilation, groups, pads, _ = geometry(case)
    x, w, x2, w2, gy, y_ref, dx_dot, dw_dot = reference(CASES.index(case))
    y, saved = conv_forward(x, w, stride=stride, pads=pads, dilation=dilation, groups=groups, algorithm=ALGORITHMS[name])
    dx, dw, _ = conv_backward(gy, saved, (True, True, False))
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.sum(dx * x2), dx_dot, rtol=1e-11)
    np.testing.assert_allclose(np.sum(dw * w2), dw_dot, rtol=1e-11)


@pytest.mark.parametrize("name", NAMES)
def test_transposed_convolution_matches_torch(name):
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal((2, 4, 5, 6)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(3)
    stride = (1, 1) if name.startswith("winograd") else (2, 1)
    opts = dict(stride=stride, pads=((1, 1), (0, 0)), output_padding=(1 if stride[0] > 1 else 0, 0),
                dilation=(1, 1))
    y, saved = conv_transpose_forward(x, w, b, algorithm=ALGORITHMS[name], **opts)
    gy = rng.standard_normal(y.shape)
    dx, dw, db = conv_transpose_backward(gy, saved)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = TF.conv_transpose2d(tx, tw, tb, stride=stride, padding=(1, 0), output_padding=opts["output_padding"])
    ty.backward(torch.tensor(gy))
    for got, want in ((y, ty.detach()), (dx, tx.grad), (dw, tw.grad), (db, tb.grad)):
        np.testing.assert_allclose(got, want.numpy(), atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("minor", [True, False])
def test_im2col_chunked_and_uncached_paths_match_torch(monkeypatch, minor):
    """Tiny budgets force several batch chunks and a backward that unfolds again; both layouts."""
    monkeypatch.setattr(im2col, "CHUNK_BYTES", 1)
    monkeypatch.setattr(im2col, "CACHE_BYTES", 1 if not minor else 1 << 30)
    monkeypatch.setattr(im2col, "BATCH_MINOR_POSITIONS", 10**6 if minor else 0)
    case = ((3, 4, 7, 6), (6, 2, 3, 2), (2, 1), 1, 2, ((1, 1), (0, 1)))
    x, w, rng = data(case, np.float64, seed=5)
    y, dx, dw, gy = forward_and_grads("im2col", case, x, w, rng)
    for got, want in zip((y, dx, dw), torch_results(case, x, w, gy)):
        np.testing.assert_allclose(got, want, atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("name", NAMES)
def test_functional_and_module_keyword_give_the_same_training_gradients(name):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3, 8, 8))
    conv = nn.Conv2d(3, 4, 3, padding=1, dtype=np.float64, algorithm=name)
    ref = nn.Conv2d(3, 4, 3, padding=1, dtype=np.float64)
    ref.load_state_dict(conv.state_dict())
    for m in (conv, ref):
        m(x).sum().backward()
    np.testing.assert_allclose(conv.weight.grad, ref.weight.grad, rtol=1e-10)
    assert f"algorithm={name}" in repr(conv) and "algorithm" not in repr(ref)
    out = F.conv2d(x, conv.weight.data, None, 1, 1, algorithm=name).data
    np.testing.assert_allclose(out, F.conv2d(x, conv.weight.data, None, 1, 1).data, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ selection
@pytest.mark.parametrize("call,reason", [
    (lambda: F.conv2d(np.ones((1, 2, 8, 8)), np.ones((3, 2, 3, 3)), stride=2, algorithm="winograd"), "stride"),
    (lambda: F.conv2d(np.ones((1, 2, 8, 8)), np.ones((3, 2, 5, 5)), algorithm="winograd4"), "3x3"),
    (lambda: F.conv1d(np.ones((1, 2, 8)), np.ones((3, 2, 3)), algorithm="winograd"), "2-D"),
    (lambda: F.conv_transpose2d(np.ones((1, 2, 4, 4)), np.ones((2, 3, 3, 3)), stride=2, algorithm="winograd"),
     "stride"),
])
def test_forcing_an_algorithm_that_cannot_run_the_call_is_a_value_error(call, reason):
    with pytest.raises(ValueError, match=reason) as info:
        call()
    assert "algorithm='winograd" in str(info.value)


def test_bad_algorithm_names_are_rejected_with_the_argument_named():
    with pytest.raises(ValueError, match=r"conv2d: algorithm must be one of .*'im2col'.*got 'gemm'"):
        F.conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), algorithm="gemm")
    with pytest.raises(TypeError, match="conv2d: algorithm must be a string"):
        F.conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), algorithm=3)
    with pytest.raises(ValueError, match="Conv2d: algorithm"):
        nn.Conv2d(1, 1, 3, algorithm="fast")
    with pytest.raises(ValueError, match="set_conv_algorithm: name"):
        backends.set_conv_algorithm("cudnn")


@pytest.mark.parametrize("case", CASES)
def test_auto_only_picks_algorithms_that_can_run_the_problem(case):
    xs, ws = case[:2]
    stride, dilation, groups, _, padded = geometry(case)
    for n, c in ((1, 1), (64, 64)):
        big_ws = (ws[0] * c, ws[1] * c) + ws[2:]
        p = conv_problem((xs[0] * n, xs[1] * c) + padded, big_ws, stride, dilation, groups, np.float32)
        assert auto.rule(p).unsupported(p) is None


def test_rule_picks_winograd4_for_wide_3x3_and_fft_for_large_kernels():
    wide = conv_problem((32, 64, 58, 58), (64, 64, 3, 3), (1, 1), (1, 1), 1, np.float32)
    strided = conv_problem((32, 64, 58, 58), (64, 64, 3, 3), (2, 2), (1, 1), 1, np.float32)
    large = conv_problem((8, 16, 142, 142), (16, 16, 15, 15), (1, 1), (1, 1), 1, np.float32)
    lenet = conv_problem((128, 6, 14, 14), (16, 6, 5, 5), (1, 1), (1, 1), 1, np.float32)
    assert [auto.rule(p).name for p in (wide, strided, large, lenet)] == ["winograd4", "im2col", "fft", "im2col"]


def test_backends_setting_context_manager_and_environment_variable(monkeypatch):
    chosen = []
    monkeypatch.setattr(ALGORITHMS["fft"], "forward",
                        lambda xp, w, p, real=ALGORITHMS["fft"].forward: chosen.append("fft") or real(xp, w, p))
    x, w = np.ones((1, 1, 6, 6)), np.ones((1, 1, 3, 3))
    monkeypatch.setenv(backends.ENV_VAR, "fft")
    assert backends.get_conv_algorithm() == "fft"
    F.conv2d(x, w)
    with backends.conv_algorithm("im2col"):
        assert backends.get_conv_algorithm() == "im2col"
        F.conv2d(x, w)
        F.conv2d(x, w, algorithm="fft")  # the keyword beats the setting
    assert chosen == ["fft", "fft"]
    backends.set_conv_algorithm("direct")
    try:
        assert backends.get_conv_algorithm() == "direct"
    finally:
        backends.set_conv_algorithm(None)
    monkeypatch.setenv(backends.ENV_VAR, "winograd")
    with pytest.raises(ValueError, match=rf"forced by {backends.ENV_VAR}=winograd\).*kernel \(5, 5\)"):
        F.conv2d(np.ones((1, 1, 8, 8)), np.ones((1, 1, 5, 5)))
    monkeypatch.setenv(backends.ENV_VAR, "nope")
    with pytest.raises(ValueError, match=f"environment variable {backends.ENV_VAR} must be one of"):
        F.conv2d(x, w)


def test_benchmark_mode_times_once_per_shape_and_keeps_a_runnable_winner():
    backends.set_conv_benchmark(True)
    try:
        assert backends.get_conv_benchmark()
        x = np.random.default_rng(7).standard_normal((2, 3, 9, 9)).astype(np.float32)
        w = np.ones((4, 3, 3, 3), dtype=np.float32)
        y1 = F.conv2d(x, w, padding=1, stride=2).data
        (p, winner), = backends._timed.items()
        assert winner.unsupported(p) is None and p.stride == (2, 2)
        y2 = F.conv2d(x, w, padding=1, stride=2).data
        assert len(backends._timed) == 1
        np.testing.assert_allclose(y1, y2, rtol=1e-5, atol=1e-5)
    finally:
        backends.set_conv_benchmark(False)
    assert not backends._timed and not backends.get_conv_benchmark()


def test_training_a_small_net_with_each_algorithm_follows_im2col():
    rng = np.random.default_rng(8)
    x, target = rng.standard_normal((4, 2, 8, 8)), rng.integers(0, 3, 4)
    losses = {}
    for name in NAMES:
        convkit.manual_seed(0)
        net = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, dtype=np.float64, algorithm=name), nn.ReLU(),
                            nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 3, dtype=np.float64))
        opt = convkit.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
        for _ in range(3):
            opt.zero_grad()
            loss = F.cross_entropy(net(x), target)
            loss.backward()
            opt.step()
        losses[name] = loss.item()
    np.testing.assert_allclose(list(losses.values()), losses["im2col"], rtol=1e-9)
